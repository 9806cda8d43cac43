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
"""

from __future__ import annotations

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


def open_shards_metric(stream: str) -> Metric:
    """The census's OpenShards of a stream (observability.publish_open_shards), per alarm period."""
    return Metric(
        METRICS_NAMESPACE,
        RemediatorMetric.OPEN_SHARDS,
        "Maximum",
        tuple(
            sorted(
                {RemediatorMetric.SERVICE_DIMENSION: SERVICE_NAME, RemediatorMetric.STREAM_DIMENSION: stream}.items()
            )
        ),
        PERIOD_SECONDS,
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
    # Two hours of the write load, the throttles and the consumers' lag: the scale-in is sized to the peak of that
    # window, and the reshard's stabilisation window (at most this long) is judged on it.
    evidence_window_minutes = CALM_EVIDENCE_MINUTES

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
        window = evidence.window_minutes
        peak = evidence.write_utilisation(peak=True)
        target = policy.capacity.target_utilisation
        desired = required_shards(evidence.peak_bytes_per_second, evidence.peak_records_per_second, target)
        if peak >= detector.threshold_utilisation or desired >= current:
            return Diagnosis(
                cause=Cause.NOT_REPRODUCED,
                summary=f"Writes peaked at {peak:.0%} of the capacity of the stream's {current} open shards in the "
                f"last {window} minutes"
                + (
                    f" (under-utilised below {detector.threshold_utilisation:.0%})"
                    if peak >= detector.threshold_utilisation
                    else f"; at {target:.0%} target utilisation that peak needs {desired}"
                )
                + ": no shard to remove.",
                figures=tuple(figures),
            )
        after = peak * current / desired
        saved = shard_hours_per_month(current - desired)
        return Diagnosis(
            cause=UNDER_UTILISED,
            summary=f"The stream is under-utilised: writes peaked at only {peak:.0%} of its {current} shards' "
            f"capacity in the last {window} minutes; {desired} would carry that peak at {after:.0%}.",
            figures=(*figures, Figure(name="shards the peak needs", value=desired)),
            proposals=(
                Proposal(
                    action="reshard",
                    parameters={"desired_shards": desired},
                    reason=f"writes peaked at {peak:.0%} of {current} shards for {window} minutes; {desired} "
                    f"shard{'s' if desired > 1 else ''} would put that peak at {after:.0%} (target {target:.0%}), "
                    f"{saved:,} shard-hours a month fewer",
                ),
            ),
        )


def _per_period(metric: Metric) -> Metric:
    return Metric(metric.namespace, metric.name, metric.statistic, metric.dimensions, PERIOD_SECONDS)
