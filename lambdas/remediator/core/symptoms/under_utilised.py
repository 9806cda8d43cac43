"""under-utilised: writes stay far below the shards' capacity for an hour; fewer shards would do.

The alarm is metric math over IncomingBytes, IncomingRecords and the stream's own OpenShards: write utilisation,
the larger of the bytes share and the records share of the capacity of the stream's current shards, below a
threshold in every 5-minute period of an hour.

CloudWatch publishes no shard count, so the remediator does: its shard census (service.census), run every
CENSUS_RATE_MINUTES by a scheduled rule, reads every protected stream's open shard count and publishes it as
OpenShards (namespace KinesisRemediator, dimensions service and StreamName). The alarm's period is the census's
rate, so each period holds one census datapoint and the alarm follows a reshard, whoever made it, within one
period. A period without a census datapoint (no census yet, a stream it could not read) has no utilisation, and
missing data is not breaching: no census, no alarm, the safe side for a symptom that removes shards.

The alarm only starts a diagnosis: `diagnose` re-reads the open shard count and judges utilisation against it,
proposes a scale-in only when the stream really is under-utilised at its current count, and sizes it with the
capacity maths every reshard uses (`required_shards`, at `capacity.target_utilisation`). The reshard action then
keeps the scale-in within AWS's per-call limits and the policy's bounds, and waits out the stabilisation window.

The diagnosis and the alarm mean the same by "under-utilised" (`judge`): the same window (the alarm's
`evaluation_periods` x 5 minutes, an hour by default), the same periods (5-minute sums, the newest period ending at
the evidence's end), the same threshold and the same M of N (`datapoints_to_alarm` periods below it). Decided so
because a diagnosis that judged a longer window than the alarm (it used to take the peak of the last 120 minutes)
answers "no shard to remove" to every alarm fired on an evening's falling load: the alarm looks back an hour, the
diagnosis two, and the hour before the alarm's is always busier. The alarm, staying in ALARM all night, then never
fires again, and the opt-in scale-in removed no shard on any benchmark trace. The evidence still covers 120
minutes (CALM_EVIDENCE_MINUTES), but only for the stabilisation window (at most that long) that the reshard's
guardrail judges on the throttles and the consumers' lag: not for the load. The scale-in is sized from the busiest
*minute* of the alarm's window (not the 5-minute mean the alarm judges), at `target_utilisation`: the judgement
agrees with the alarm, the sizing keeps the headroom every reshard keeps.

A "not yet" (the window no longer under-utilised at the current count, its peak minute still needing every shard,
or the stabilisation window not over) is looked at again while the alarm stays in ALARM (`looks_again`, see
core.follow_through): a night is long, and an alarm that stays in ALARM sends no new event.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from pydantic import Field

from remediator.core import limits
from remediator.core.deployment import CENSUS_RATE_MINUTES, METRICS_NAMESPACE, SERVICE_NAME, RemediatorMetric
from remediator.core.evidence import INCOMING_BYTES, INCOMING_RECORDS, Evidence
from remediator.core.metrics import Comparison, Metric, MetricMath, MetricQuery, MissingData
from remediator.core.plan import Advice, Cause, Diagnosis, Figure, Proposal
from remediator.core.policy import DetectorPolicy, StreamPolicy
from remediator.core.registry import REGISTRY
from remediator.core.reshard import required_shards, shard_hours_per_month
from remediator.core.symptoms.base import AlarmSpec, Symptom
from remediator.core.symptoms.calm import CALM_EVIDENCE_MINUTES, calm_queries
from remediator.core.symptoms.capacity import capacity_figures, insufficient, on_demand

UNDER_UTILISED = "shards-under-utilised"
# A final answer, not a "not yet": one shard is the fewest a stream has, and follow-through does not look again.
ONE_SHARD = "one-shard"

ON_DEMAND_IDLE = Advice(
    title="On-demand stream",
    detail="An on-demand stream is billed by the data it carries, not by shards: there is nothing to remove.",
)


# The alarm's period: the census's rate (core.deployment), so that each period holds one OpenShards datapoint.
PERIOD_SECONDS = CENSUS_RATE_MINUTES * 60
PERIODS_PER_HOUR = 3600 // PERIOD_SECONDS


class UnderUtilisedDetector(DetectorPolicy):
    evaluation_periods: int = Field(
        PERIODS_PER_HOUR,
        ge=1,
        le=2 * PERIODS_PER_HOUR,
        description=f"{CENSUS_RATE_MINUTES}-minute periods the alarm looks back over ({PERIODS_PER_HOUR}: an hour; "
        "a quiet spell is not a trend).",
    )
    datapoints_to_alarm: int = Field(
        PERIODS_PER_HOUR,
        ge=1,
        le=2 * PERIODS_PER_HOUR,
        description=f"{CENSUS_RATE_MINUTES}-minute periods below the threshold needed to alarm (every one of them "
        "by default).",
    )
    threshold_utilisation: float = Field(
        0.3,
        gt=0.0,
        lt=1.0,
        description=f"Alarm when write utilisation (the larger of the {INCOMING_BYTES.name} and "
        f"{INCOMING_RECORDS.name} shares of the capacity of the stream's open shards, as the remediator's shard "
        "census publishes them) stays below this.",
    )


def open_shards_metric(stream: str, period_seconds: int = PERIOD_SECONDS) -> Metric:
    """The census's OpenShards of a stream (observability.publish_open_shards), per alarm period by default."""
    return Metric(
        METRICS_NAMESPACE,
        RemediatorMetric.OPEN_SHARDS,
        "Maximum",
        tuple(
            sorted(
                {RemediatorMetric.SERVICE_DIMENSION: SERVICE_NAME, RemediatorMetric.STREAM_DIMENSION: stream}.items()
            )
        ),
        period_seconds,
    )


@REGISTRY.symptom
class UnderUtilised(Symptom[UnderUtilisedDetector]):
    id = "under-utilised"
    title = "shards under-utilised"
    meaning = (
        "Writes stayed well below the shards' capacity (1 MB/s or 1,000 records/s per shard) for an hour: the "
        "stream pays for shards it does not use."
    )
    detector_schema = UnderUtilisedDetector
    # Two hours of the throttles and the consumers' lag, for the reshard's stabilisation window (at most this long);
    # the load is judged, and the scale-in sized, on the alarm's own window only (`judge`).
    evidence_window_minutes = CALM_EVIDENCE_MINUTES
    # A quiet night is long, and the alarm stays in ALARM through it: a "not yet" is looked at again.
    looks_again = True

    def alarms(self, policy: StreamPolicy, detector: UnderUtilisedDetector) -> list[AlarmSpec]:
        # Sums per period, divided by the period's capacity of the stream's open shards (the census's count).
        period = PERIOD_SECONDS
        bytes_capacity = f"{period * limits.SHARD_WRITE_BYTES_PER_SECOND} * shards"
        records_capacity = f"{period * limits.SHARD_WRITE_RECORDS_PER_SECOND} * shards"
        utilisation = MetricMath(
            f"MAX([bytes / ({bytes_capacity}), records / ({records_capacity})])",
            {
                "bytes": _per_period(INCOMING_BYTES.on(StreamName=policy.name)),
                "records": _per_period(INCOMING_RECORDS.on(StreamName=policy.name)),
                "shards": open_shards_metric(policy.name),
            },
            label="write utilisation of the open shards",
            period_seconds=period,
        )
        # No utilisation in a period means no write in it, metrics that did not arrive, or no census datapoint
        # (the census has not run, or could not read the stream). None counts towards the alarm (notBreaching):
        # no census, no alarm. The remediator never shrinks a stream on absent data (the diagnosis needs
        # datapoints), so an idle stream is left to the people who own it.
        # UNCONFIRMED (aws-facts.md is silent): that CloudWatch metric math yields no datapoint, rather than an
        # error or a zero, for a period in which one input (`shards`) has none. And the census's datapoints are
        # stamped when it publishes, not at the period's start: a census that drifts across a period boundary can
        # leave one period empty and another with two (Maximum keeps one), which only delays the alarm by up to
        # an hour (12 of 12 periods), the safe side.
        return [
            self.alarm(
                detector,
                utilisation,
                detector.threshold_utilisation,
                missing_data=MissingData.NOT_BREACHING,
                comparison=Comparison.LESS_THAN_THRESHOLD,
            )
        ]

    def evidence_queries(self, policy: StreamPolicy) -> tuple[MetricQuery, ...]:
        # The write load to size the scale-in, and what the reshard's stabilisation window is judged on.
        return (*super().evidence_queries(policy), *calm_queries(policy))

    def diagnose(self, evidence: Evidence, policy: StreamPolicy) -> Diagnosis:
        figures = capacity_figures(evidence)
        early = on_demand(evidence, figures, (ON_DEMAND_IDLE,)) or insufficient(evidence, figures)
        if early:
            return early
        detector = self.detector(policy)
        current = evidence.stream.open_shards
        if current <= 1:
            return Diagnosis(
                cause=ONE_SHARD,
                summary=f"The stream has {current} open shard, the fewest a stream can have: no shard to remove.",
                figures=tuple(figures),
            )
        seen = judge(evidence, detector)
        target = policy.capacity.target_utilisation
        desired = required_shards(seen.peak_bytes_per_second, seen.peak_records_per_second, target)
        threshold = detector.threshold_utilisation
        window = f"the last {seen.minutes} minutes (the alarm's window)"
        if not seen.under_utilised or desired >= current:
            why = (
                f"write utilisation was below {threshold:.0%} in {seen.below} of the {seen.periods} "
                f"{CENSUS_RATE_MINUTES}-minute periods of {window} (the alarm needs {detector.datapoints_to_alarm}), "
                f"{seen.highest:.0%} at most, of the capacity of the stream's {current} open shards"
                if not seen.under_utilised
                else f"writes peaked at {seen.peak:.0%} of the capacity of the stream's {current} open shards in "
                f"{window}; at {target:.0%} target utilisation that peak needs {desired}"
            )
            return Diagnosis(
                cause=Cause.NOT_REPRODUCED,
                summary=f"{why[0].upper()}{why[1:]}: no shard to remove yet.",
                figures=tuple(figures),
            )
        after = seen.peak * current / desired
        saved = shard_hours_per_month(current - desired)
        return Diagnosis(
            cause=UNDER_UTILISED,
            summary=f"The stream is under-utilised: write utilisation stayed below {threshold:.0%} in "
            f"{seen.below} of the {seen.periods} {CENSUS_RATE_MINUTES}-minute periods of {window}, and writes "
            f"peaked at only {seen.peak:.0%} of its {current} shards' capacity; {desired} would carry that peak at "
            f"{after:.0%}.",
            figures=(*figures, Figure(name="shards the peak needs", value=desired)),
            proposals=(
                Proposal(
                    action="reshard",
                    parameters={"desired_shards": desired},
                    reason=f"writes peaked at {seen.peak:.0%} of {current} shards in {window}; {desired} "
                    f"shard{'s' if desired > 1 else ''} would put that peak at {after:.0%} (target {target:.0%}), "
                    f"{saved:,} shard-hours a month fewer",
                ),
            ),
        )


@dataclass(frozen=True)
class Judgement:
    """The write load over the alarm's window, as the alarm judges it (5-minute periods) and as a reshard is sized
    (its busiest minute)."""

    minutes: int  # the window judged: the alarm's evaluation periods x 5 minutes (less when the evidence is shorter)
    periods: int  # the periods with data in it
    below: int  # of which below the threshold
    needed: int  # below the threshold needed to call it under-utilised: the alarm's datapoints_to_alarm
    highest: float  # the highest period's utilisation
    peak: float  # the busiest minute's utilisation
    peak_bytes_per_second: float
    peak_records_per_second: float

    @property
    def under_utilised(self) -> bool:
        return self.below >= self.needed


def judge(evidence: Evidence, detector: UnderUtilisedDetector) -> Judgement:
    """Under-utilised as the alarm means it: over its window (`evaluation_periods` periods of CENSUS_RATE_MINUTES),
    each period's utilisation the period's sums over the capacity of the stream's open shards, below the threshold
    in at least `datapoints_to_alarm` of them. Series are per-minute values, oldest first, minutes without data left
    out (core.calm); periods are cut from the newest minute back, and a last, partial period is judged on its mean.
    A period with no data is not below the threshold (the alarm's notBreaching: no data, no scale-in)."""
    minutes = min(detector.evaluation_periods * CENSUS_RATE_MINUTES, evidence.window_minutes)
    in_bytes = evidence.values("incoming_bytes")[-minutes:]
    in_records = evidence.values("incoming_records")[-minutes:]
    shards = max(evidence.stream.open_shards, 1)
    bytes_capacity = shards * limits.SHARD_WRITE_BYTES_PER_SECOND * evidence.period_seconds
    records_capacity = shards * limits.SHARD_WRITE_RECORDS_PER_SECOND * evidence.period_seconds

    def share(b: Sequence[float], r: Sequence[float]) -> float:
        count = max(len(b), len(r), 1)
        return max(sum(b) / (count * bytes_capacity), sum(r) / (count * records_capacity))

    size = CENSUS_RATE_MINUTES
    length = max(len(in_bytes), len(in_records))
    cuts = [(max(end - size, 0), end) for end in range(length, 0, -size)]
    periods = [share(_cut(in_bytes, length, s, e), _cut(in_records, length, s, e)) for s, e in cuts]
    threshold = detector.threshold_utilisation
    peak_bytes = max(in_bytes, default=0.0) / evidence.period_seconds
    peak_records = max(in_records, default=0.0) / evidence.period_seconds
    return Judgement(
        minutes=minutes,
        periods=len(periods),
        below=sum(1 for u in periods if u < threshold),
        needed=detector.datapoints_to_alarm,
        highest=max(periods, default=0.0),
        peak=max(
            peak_bytes / (shards * limits.SHARD_WRITE_BYTES_PER_SECOND),
            peak_records / (shards * limits.SHARD_WRITE_RECORDS_PER_SECOND),
        ),
        peak_bytes_per_second=peak_bytes,
        peak_records_per_second=peak_records,
    )


def _cut(values: Sequence[float], length: int, start: int, end: int) -> Sequence[float]:
    """The minutes [start, end) of a series aligned at its newest end with the longest series (`length`)."""
    offset = length - len(values)
    return values[max(start - offset, 0) : max(end - offset, 0)]


def _per_period(metric: Metric) -> Metric:
    return Metric(metric.namespace, metric.name, metric.statistic, metric.dimensions, PERIOD_SECONDS)
