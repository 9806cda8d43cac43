"""get-latency: GetRecords calls are slow (GetRecords.Latency, Average; Maximum as evidence)."""

from __future__ import annotations

import shlex

from pydantic import Field

from remediator.core.evidence import Evidence
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
from remediator.core.symptoms.get_errors import cpu_and_memory, polling_consumer_names

GET_LATENCY = kinesis_stream_metric("GetRecords.Latency", "Average")
GET_LATENCY_MAX = kinesis_stream_metric("GetRecords.Latency", "Maximum")


class GetLatencyDetector(DetectorPolicy):
    threshold_ms: int = Field(
        1_000,
        ge=1,
        le=600_000,
        description=f"Alarm when {GET_LATENCY.name} ({GET_LATENCY.statistic}, milliseconds) reaches this.",
    )


@REGISTRY.symptom
class GetLatency(Symptom[GetLatencyDetector]):
    id = "get-latency"
    title = "GetRecords calls slow"
    meaning = (
        f"{GET_LATENCY.name} ({GET_LATENCY.statistic}) is high: the consumers' GetRecords calls take long, so "
        "records reach them late."
    )
    detector_schema = GetLatencyDetector

    def alarms(self, policy: StreamPolicy, detector: GetLatencyDetector) -> list[AlarmSpec]:
        # No data means no GetRecords call in that minute (a stream read only through enhanced fan-out, or not
        # read at all): nothing was slow. A consumer that stops reading altogether is consumer-stalled's to catch.
        metric = GET_LATENCY.on(StreamName=policy.name)
        return [self.alarm(detector, metric, detector.threshold_ms, missing_data=MissingData.NOT_BREACHING)]

    def evidence_queries(self, policy: StreamPolicy) -> tuple[MetricQuery, ...]:
        return (
            *super().evidence_queries(policy),
            MetricQuery("get_latency_ms", GET_LATENCY.on(StreamName=policy.name)),
            MetricQuery("get_latency_max_ms", GET_LATENCY_MAX.on(StreamName=policy.name)),
        )

    @staticmethod
    def _advice(evidence: Evidence, policy: StreamPolicy) -> tuple[Advice, ...]:
        name = next(iter(polling_consumer_names(policy)), policy.name)
        register = ["aws", "kinesis", "register-stream-consumer", "--stream-arn", evidence.stream.arn]
        return (
            cpu_and_memory(policy),
            Advice(
                title="Fewer, larger GetRecords calls",
                detail="Each shard serves 5 GetRecords calls per second, shared by every polling consumer "
                f"({policy.polling_consumers} in the policy). Poll less often and take more per call: the KCL's "
                "maxRecords (up to 10,000) and idleTimeBetweenReadsInMillis, or a Lambda mapping's batch size "
                "and batching window.",
            ),
            Advice(
                title="Enhanced fan-out for latency-sensitive consumers",
                detail="An enhanced fan-out consumer gets records pushed over HTTP/2 with its own 2 MB/s per "
                "shard, independent of the other consumers and without polling.",
                cli_command=shlex.join([*register, "--consumer-name", f"{name}-efo"]),
            ),
        )

    def diagnose(self, evidence: Evidence, policy: StreamPolicy) -> Diagnosis:
        figures = capacity_figures(evidence)
        average = evidence.maximum("get_latency_ms")
        if average is None:
            early = insufficient(evidence, figures, missing=GET_LATENCY.name)
            assert early is not None
            return early
        threshold = self.detector(policy).threshold_ms
        slow = sum(1 for value in evidence.values("get_latency_ms") if value >= threshold)
        figures += [
            Figure(name="highest average GetRecords latency", value=average, unit="ms"),
            Figure(name="maximum GetRecords latency", value=evidence.maximum("get_latency_max_ms") or 0, unit="ms"),
            Figure(name=f"minutes at or above {threshold:,} ms", value=slow),
        ]
        advice = self._advice(evidence, policy)
        early = on_demand(evidence, figures, advice) or insufficient(evidence, figures)
        if early:
            return early
        if slow == 0:
            return Diagnosis(
                cause=Cause.NOT_REPRODUCED,
                summary=f"GetRecords latency stayed below {threshold:,} ms in the last {evidence.window_minutes} "
                "minutes; nothing to change.",
                figures=tuple(figures),
            )
        peak = evidence.write_utilisation(peak=True)
        if is_saturated(evidence, policy):
            return saturated(
                evidence,
                policy,
                f"GetRecords calls are slow (average up to {average:,.0f} ms) while the shards are saturated "
                f"(writes peaked at {peak:.0%} of capacity): more shards spread the reads.",
                figures,
                advice=advice,
            )
        return Diagnosis(
            cause="get-records-slow",
            summary=f"GetRecords calls are slow (average up to {average:,.0f} ms, {slow} minutes at or above "
            f"{threshold:,} ms) although writes peaked at only {peak:.0%} of capacity: no automatic fix applies, "
            "see the advice.",
            figures=tuple(figures),
            advice=advice,
        )
