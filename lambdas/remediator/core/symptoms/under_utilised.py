"""under-utilised: writes stay far below the shards' capacity for an hour; fewer shards would do.

The alarm is metric math over IncomingBytes and IncomingRecords: write utilisation, the larger of the bytes
share and the records share of the capacity of `N` shards, below a threshold in every minute of an hour.

`N` is a constant in the alarm. CloudWatch has no metric of a stream's shard count, and the stack does not
read the stream at synth, so the alarm cannot follow a reshard by itself. `N` is the detector's `shards` (the
count the stream is deployed at, which the team redeploys after a reshard), or else the policy's floor,
`actions.reshard.min_shards`. Why the floor: with `N` at or below the stream's real count the alarm computes a
utilisation at or above the real one, so it never goes off on a stream that is busy at its real count; it only
goes off later (for a stream well above its floor, once the writes would fit the floor). With `N` above the
real count (a stale `shards` after a scale-in) it may go off early, and may then sit in ALARM without
re-firing. Either way the alarm only starts a diagnosis: `diagnose` re-reads the open shard count and judges
utilisation against it, proposes a scale-in only when the stream really is under-utilised at its current
count, and sizes it with the capacity maths every reshard uses (`required_shards`, at
`capacity.target_utilisation`). The reshard action then keeps the scale-in within AWS's per-call limits and
the policy's bounds, and waits out the stabilisation window.
"""

from __future__ import annotations

from pydantic import Field

from remediator.core import limits
from remediator.core.evidence import INCOMING_BYTES, INCOMING_RECORDS, Evidence
from remediator.core.metrics import Comparison, MetricMath, MetricQuery, MissingData
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


class UnderUtilisedDetector(DetectorPolicy):
    evaluation_periods: int = Field(
        60, ge=1, le=60, description="Minutes the alarm looks back over (an hour: a quiet spell is not a trend)."
    )
    datapoints_to_alarm: int = Field(
        60, ge=1, le=60, description="Minutes below the threshold needed to alarm (every one of them by default)."
    )
    threshold_utilisation: float = Field(
        0.3,
        gt=0.0,
        lt=1.0,
        description=f"Alarm when write utilisation (the larger of the {INCOMING_BYTES.name} and "
        f"{INCOMING_RECORDS.name} shares of `shards` shards' capacity) stays below this.",
    )
    shards: int | None = Field(
        None,
        ge=1,
        le=limits.MAX_SHARDS_PER_STREAM,
        description="The shard count the alarm measures utilisation against: CloudWatch knows no stream's shard "
        "count, so it is a constant in the alarm. Set the count the stream is deployed at (and redeploy after a "
        "reshard); empty: actions.reshard.min_shards, which never alarms on a stream busy at its real count but "
        "alarms only once the writes would fit that floor. The diagnosis always re-reads the real count.",
    )


def reference_shards(policy: StreamPolicy, detector: UnderUtilisedDetector) -> int:
    """The `N` of the alarm (see the module docstring)."""
    if detector.shards is not None:
        return detector.shards
    reshard = getattr(policy.actions, "reshard", None)
    return int(getattr(reshard, "min_shards", 1))


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
        shards = reference_shards(policy, detector)
        period = limits.METRIC_PERIOD_SECONDS
        # Sums per minute, divided by the minute's capacity of `shards` shards: the share of each in use.
        bytes_capacity = period * shards * limits.SHARD_WRITE_BYTES_PER_SECOND
        records_capacity = period * shards * limits.SHARD_WRITE_RECORDS_PER_SECOND
        utilisation = MetricMath(
            f"MAX([bytes / {bytes_capacity}, records / {records_capacity}])",
            {
                "bytes": INCOMING_BYTES.on(StreamName=policy.name),
                "records": INCOMING_RECORDS.on(StreamName=policy.name),
            },
            label=f"write utilisation of {shards} shard(s)",
        )
        # No datapoint means no write in that minute, or metrics that did not arrive. Neither counts towards the
        # alarm: the remediator never shrinks a stream on absent data (the diagnosis needs datapoints), so an
        # idle stream is left to the people who own it.
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
