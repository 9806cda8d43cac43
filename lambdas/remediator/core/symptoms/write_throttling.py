"""write-throttling: producers are throttled (WriteProvisionedThroughputExceeded)."""

from __future__ import annotations

import shlex

from pydantic import Field

from remediator.core.evidence import INCOMING_BYTES, INCOMING_RECORDS, Evidence
from remediator.core.metrics import MetricQuery, MissingData, kinesis_stream_metric
from remediator.core.plan import Advice, Cause, Diagnosis, Figure
from remediator.core.policy import DetectorPolicy, StreamPolicy
from remediator.core.registry import REGISTRY
from remediator.core.symptoms.base import AlarmSpec, Symptom
from remediator.core.symptoms.capacity import (
    capacity_figures,
    insufficient,
    is_saturated,
    on_demand,
    saturated,
)

WRITE_THROTTLED = kinesis_stream_metric("WriteProvisionedThroughputExceeded", "Sum")

# Shard-level metrics carry the stream-level metric names.
ENABLE_SHARD_METRICS = "aws kinesis enable-enhanced-monitoring --stream-arn {arn} --shard-level-metrics " + " ".join(
    metric.name for metric in (INCOMING_BYTES, INCOMING_RECORDS, WRITE_THROTTLED)
)

ON_DEMAND_THROTTLING = Advice(
    title="On-demand stream",
    detail="Throttling on an on-demand stream usually means traffic more than doubled its previous peak "
    "within 15 minutes, or a hot partition key. Spread partition keys and retry with exponential backoff.",
)


class WriteThrottlingDetector(DetectorPolicy):
    threshold_records: int = Field(
        1, ge=1, description=f"Alarm when {WRITE_THROTTLED.name} ({WRITE_THROTTLED.statistic} per minute) reaches this."
    )
    datapoints_to_alarm: int = Field(2, ge=1, le=60, description="Breaching minutes needed to alarm.")


@REGISTRY.symptom
class WriteThrottling(Symptom[WriteThrottlingDetector]):
    id = "write-throttling"
    title = "producers throttled"
    meaning = (
        f"Records were rejected with {WRITE_THROTTLED.name}: producers write faster than the "
        "shards accept (1 MB/s or 1,000 records/s per shard), overall or on one hot shard."
    )
    detector_schema = WriteThrottlingDetector

    def alarms(self, policy: StreamPolicy, detector: WriteThrottlingDetector) -> list[AlarmSpec]:
        # No data means no producer was throttled.
        metric = WRITE_THROTTLED.on(StreamName=policy.name)
        return [self.alarm(detector, metric, detector.threshold_records, missing_data=MissingData.NOT_BREACHING)]

    def evidence_queries(self, policy: StreamPolicy) -> tuple[MetricQuery, ...]:
        own = MetricQuery("write_throttled", WRITE_THROTTLED.on(StreamName=policy.name))
        return (*super().evidence_queries(policy), own)

    def diagnose(self, evidence: Evidence, policy: StreamPolicy) -> Diagnosis:
        throttled = evidence.total("write_throttled")
        figures = [*capacity_figures(evidence), Figure(name="throttled writes", value=throttled, unit="records")]
        early = on_demand(evidence, figures, (ON_DEMAND_THROTTLING,)) or insufficient(evidence, figures)
        if early:
            return early
        peak = evidence.write_utilisation(peak=True)
        if is_saturated(evidence, policy):
            return saturated(
                evidence,
                policy,
                f"The shards are saturated: writes peaked at {peak:.0%} of the stream's capacity "
                f"(saturated from {policy.capacity.saturated_at:.0%}).",
                figures,
            )
        if throttled <= 0:
            return Diagnosis(
                cause=Cause.NOT_REPRODUCED,
                summary="No throttled writes in the evidence window and the shards are not saturated; "
                "nothing to change.",
                figures=tuple(figures),
            )
        return Diagnosis(
            cause=Cause.HOT_PARTITION_KEY,
            summary=f"Writes were throttled although the stream as a whole peaked at only {peak:.0%} of "
            "its capacity: the load is uneven, most likely a hot partition key. More shards would not help.",
            figures=tuple(figures),
            advice=(
                Advice(
                    title="Find the hot shard",
                    detail="Turn on shard-level metrics to see which shard takes the load "
                    "(they cost extra; turn them off afterwards).",
                    cli_command=ENABLE_SHARD_METRICS.format(arn=shlex.quote(evidence.stream.arn)),
                ),
                Advice(
                    title="Spread the partition keys",
                    detail="Use random or better-spread partition keys so records land evenly on shards.",
                ),
                Advice(
                    title="Batch and back off",
                    detail="Batch with PutRecords or the KPL's aggregation; retry throttled records with "
                    "exponential backoff and rate-limit the producers.",
                ),
            ),
        )
