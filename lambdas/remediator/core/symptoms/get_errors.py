"""get-errors: GetRecords calls fail (GetRecords.Success, Average, below 99 %), by metric math."""

from __future__ import annotations

from statistics import fmean

from pydantic import Field

from remediator.core.evidence import Evidence
from remediator.core.metrics import Comparison, MetricMath, MetricQuery, MissingData, kinesis_stream_metric
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

# Average = the share of GetRecords calls that succeeded (aws-facts.md: "Alarm on the Average of *.Success").
GET_SUCCESS = kinesis_stream_metric("GetRecords.Success", "Average")
READ_THROTTLED = kinesis_stream_metric("ReadProvisionedThroughputExceeded", "Sum")


def polling_consumer_names(policy: StreamPolicy) -> list[str]:
    """The consumers that call GetRecords: Lambda functions (through their mappings) and KCL applications."""
    return [c.name for c in policy.lambda_consumers] + [a.name for a in policy.kcl_applications]


def polling_consumers(policy: StreamPolicy) -> str:
    return ", ".join(polling_consumer_names(policy)) or "the stream's consumers"


def cpu_and_memory(policy: StreamPolicy) -> Advice:
    return Advice(
        title="Check the consumers' CPU and memory",
        detail=f"An overloaded consumer ({polling_consumers(policy)}) reads slowly and its calls time out and "
        "fail: look at its CPU, memory and garbage collection, and scale it up or out (for Lambda, more memory "
        "also gives more CPU).",
    )


class GetErrorsDetector(DetectorPolicy):
    min_success_percent: float = Field(
        99.0,
        gt=0,
        le=100,
        description=f"Alarm when 100 x {GET_SUCCESS.name} ({GET_SUCCESS.statistic}) falls below this percentage.",
    )


@REGISTRY.symptom
class GetErrors(Symptom[GetErrorsDetector]):
    id = "get-errors"
    title = "GetRecords calls failing"
    meaning = (
        f"{GET_SUCCESS.name} ({GET_SUCCESS.statistic}) is low (below 99 % by default): more than 1 % of the "
        "consumers' GetRecords calls fail (500 and 503 errors, throttling)."
    )
    detector_schema = GetErrorsDetector

    def alarms(self, policy: StreamPolicy, detector: GetErrorsDetector) -> list[AlarmSpec]:
        # No data means no GetRecords call in that minute (a stream read only through enhanced fan-out, or not
        # read at all): nothing failed. A consumer that stops reading altogether is consumer-stalled's to catch.
        success = MetricMath(
            "100 * success", {"success": GET_SUCCESS.on(StreamName=policy.name)}, label="GetRecords success (%)"
        )
        return [
            self.alarm(
                detector,
                success,
                detector.min_success_percent,
                missing_data=MissingData.NOT_BREACHING,
                comparison=Comparison.LESS_THAN_THRESHOLD,
            )
        ]

    def evidence_queries(self, policy: StreamPolicy) -> tuple[MetricQuery, ...]:
        # The plain metric, not the expression: the percentage is taken here (and moto evaluates no metric math).
        return (
            *super().evidence_queries(policy),
            MetricQuery("get_success", GET_SUCCESS.on(StreamName=policy.name)),
            MetricQuery("read_throttled", READ_THROTTLED.on(StreamName=policy.name)),
        )

    def diagnose(self, evidence: Evidence, policy: StreamPolicy) -> Diagnosis:
        figures = capacity_figures(evidence)
        success = [100 * value for value in evidence.values("get_success")]
        if not success:
            early = insufficient(evidence, figures, missing=GET_SUCCESS.name)
            assert early is not None
            return early
        threshold = self.detector(policy).min_success_percent
        lowest, failing = min(success), sum(1 for value in success if value < threshold)
        throttled = evidence.total("read_throttled")
        figures += [
            Figure(name="lowest GetRecords success", value=lowest, unit="%"),
            Figure(name="average GetRecords success", value=fmean(success), unit="%"),
            Figure(name=f"minutes below {threshold:g} %", value=failing),
            Figure(name="throttled GetRecords calls", value=throttled),
        ]
        advice = [
            Advice(
                title="Retry with backoff",
                detail=f"In the worst minute {100 - lowest:.1f} % of GetRecords calls failed. Errors 500 "
                "(InternalFailure) and 503 (ServiceUnavailable) are transient: above 1 % errors, retry GetRecords "
                "with exponential backoff and jitter (the AWS SDKs' standard or adaptive retry mode and the KCL do; "
                "a hand-written consumer must), and never in a tight loop.",
            ),
            cpu_and_memory(policy),
        ]
        if throttled > 0:
            advice.append(
                Advice(
                    title="GetRecords throttled",
                    detail=f"{throttled:,.0f} GetRecords calls were throttled: each shard serves 5 GetRecords calls "
                    f"and 2 MB per second, shared by every polling consumer ({policy.polling_consumers} in the "
                    "policy). See the read-throttling alarm.",
                )
            )
        early = on_demand(evidence, figures, tuple(advice)) or insufficient(evidence, figures)
        if early:
            return early
        if failing == 0:
            return Diagnosis(
                cause=Cause.NOT_REPRODUCED,
                summary=f"GetRecords success stayed at or above {threshold:g} % in the last "
                f"{evidence.window_minutes} minutes; nothing to change.",
                figures=tuple(figures),
            )
        peak = evidence.write_utilisation(peak=True)
        if is_saturated(evidence, policy):
            return saturated(
                evidence,
                policy,
                f"GetRecords calls fail (lowest success {lowest:.1f} %) while the shards are saturated "
                f"(writes peaked at {peak:.0%} of capacity): more shards spread the reads.",
                figures,
                advice=advice,
            )
        return Diagnosis(
            cause="get-records-errors",
            summary=f"GetRecords calls fail (lowest success {lowest:.1f} %, {failing} minutes below {threshold:g} %) "
            f"although writes peaked at only {peak:.0%} of capacity: no automatic fix applies, see the advice.",
            figures=tuple(figures),
            advice=tuple(advice),
        )
