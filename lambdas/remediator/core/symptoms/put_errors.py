"""put-errors: producers' writes fail: PutRecords records rejected (FailedRecords over TotalRecords above 1 %, by
metric math) or PutRecord calls failing (PutRecord.Success, Average, below 99 %).

aws-facts.md §6: PutRecords.TotalRecords, .FailedRecords and .ThrottledRecords are Sums by StreamName;
FailedRecords counts records rejected by internal failures and ThrottledRecords those rejected by throttling,
so the two are counted apart and the throttled share of the rejected records is throttled / (failed + throttled).
PutRecord.Success is alarmed on its Average, the share of PutRecord calls that succeeded.
WriteProvisionedThroughputExceeded counts the records throttled by PutRecord and PutRecords together.

The diagnosis is advice (retry the failed records with backoff and jitter, batch, and what the throttled share
says), except when the failures are throttles on saturated shards: then the reshard every saturated symptom
proposes.
"""

from __future__ import annotations

from statistics import fmean

from pydantic import Field

from remediator.core.evidence import Evidence
from remediator.core.metrics import Comparison, MetricMath, MetricQuery, MissingData, kinesis_stream_metric
from remediator.core.plan import Advice, Cause, Diagnosis, Figure
from remediator.core.policy import DetectorPolicy, StreamPolicy
from remediator.core.registry import REGISTRY
from remediator.core.symptoms.base import AlarmSpec, Symptom
from remediator.core.symptoms.capacity import capacity_figures, is_saturated, on_demand, saturated

PUT_TOTAL = kinesis_stream_metric("PutRecords.TotalRecords", "Sum")
PUT_FAILED = kinesis_stream_metric("PutRecords.FailedRecords", "Sum")
PUT_THROTTLED = kinesis_stream_metric("PutRecords.ThrottledRecords", "Sum")
# Average = the share of PutRecord calls that succeeded (aws-facts.md: "Alarm on the Average of *.Success").
PUT_RECORD_SUCCESS = kinesis_stream_metric("PutRecord.Success", "Average")
WRITE_THROTTLED = kinesis_stream_metric("WriteProvisionedThroughputExceeded", "Sum")

FAILED_RECORDS = "failed-records"
PUT_RECORD_FAILING = "put-record-success"

PUT_THROTTLED_CAUSE = "put-records-throttled"
PUT_FAILURES_CAUSE = "put-internal-failures"

# From this share of the rejected records being throttles, the failures are "mostly throttles".
MOSTLY = 0.5


class PutErrorsDetector(DetectorPolicy):
    max_failed_percent: float = Field(
        1.0,
        gt=0,
        le=100,
        description=f"Alarm when 100 x {PUT_FAILED.name} / {PUT_TOTAL.name} (both {PUT_TOTAL.statistic} per minute) "
        "is above this percentage.",
    )
    min_put_record_success_percent: float = Field(
        99.0,
        gt=0,
        le=100,
        description=f"Alarm when 100 x {PUT_RECORD_SUCCESS.name} ({PUT_RECORD_SUCCESS.statistic}) falls below this "
        "percentage.",
    )


def share(part: float, whole: float) -> float | None:
    """part / whole, or None when there is no whole (no division by zero)."""
    return part / whole if whole > 0 else None


def failure_rates(failed: tuple[float, ...], total: tuple[float, ...]) -> list[float]:
    """Per-minute failed / total, for the minutes that had records. The two series are paired minute by minute only
    when CloudWatch returned both for the same minutes (as many values); otherwise none is paired."""
    if len(failed) != len(total):
        return []
    return [f / t for f, t in zip(failed, total, strict=True) if t > 0]


@REGISTRY.symptom
class PutErrors(Symptom[PutErrorsDetector]):
    id = "put-errors"
    title = "producers' writes failing"
    meaning = (
        f"More than 1 % of the records producers send with PutRecords are rejected ({PUT_FAILED.name} over "
        f"{PUT_TOTAL.name}), or {PUT_RECORD_SUCCESS.name} ({PUT_RECORD_SUCCESS.statistic}) is below 99 %: records "
        "that producers do not retry are lost."
    )
    detector_schema = PutErrorsDetector

    def alarms(self, policy: StreamPolicy, detector: PutErrorsDetector) -> list[AlarmSpec]:
        stream = policy.name
        # Both inputs have the expression's period (MetricMath checks it). A minute with PutRecords calls but no
        # FailedRecords datapoint counts as 0 failed (FILL); a minute whose TotalRecords is 0 or missing yields 0, not
        # a division by zero. Missing data (no PutRecords call in the evaluation range) is not breaching: no record
        # was sent, so none was rejected; a producer that stops writing is not this alarm's to catch.
        # IF and FILL in an alarm's expression, as consumer-stalled's alarm uses them: UNCONFIRMED in aws-facts.md
        # (CloudWatch's metric-math documentation lists both as supported in alarms).
        failure_rate = MetricMath(
            "IF(FILL(total, 0) > 0, 100 * FILL(failed, 0) / FILL(total, 0), 0)",
            {"failed": PUT_FAILED.on(StreamName=stream), "total": PUT_TOTAL.on(StreamName=stream)},
            label="PutRecords failed records (%)",
        )
        # No data means no PutRecord call in that minute (producers that batch with PutRecords never publish it):
        # nothing failed.
        success = MetricMath(
            "100 * success", {"success": PUT_RECORD_SUCCESS.on(StreamName=stream)}, label="PutRecord success (%)"
        )
        return [
            self.alarm(
                detector,
                failure_rate,
                detector.max_failed_percent,
                missing_data=MissingData.NOT_BREACHING,
                comparison=Comparison.GREATER_THAN_THRESHOLD,
                qualifier=FAILED_RECORDS,
            ),
            self.alarm(
                detector,
                success,
                detector.min_put_record_success_percent,
                missing_data=MissingData.NOT_BREACHING,
                comparison=Comparison.LESS_THAN_THRESHOLD,
                qualifier=PUT_RECORD_FAILING,
            ),
        ]

    def evidence_queries(self, policy: StreamPolicy) -> tuple[MetricQuery, ...]:
        # The plain metrics, not the expressions: the rates are taken here (and moto evaluates no metric math).
        stream = policy.name
        return (
            *super().evidence_queries(policy),
            MetricQuery("put_total", PUT_TOTAL.on(StreamName=stream)),
            MetricQuery("put_failed", PUT_FAILED.on(StreamName=stream)),
            MetricQuery("put_throttled", PUT_THROTTLED.on(StreamName=stream)),
            MetricQuery("put_record_success", PUT_RECORD_SUCCESS.on(StreamName=stream)),
            MetricQuery("write_throttled", WRITE_THROTTLED.on(StreamName=stream)),
        )

    def diagnose(self, evidence: Evidence, policy: StreamPolicy) -> Diagnosis:
        detector = self.detector(policy)
        total, failed = evidence.total("put_total"), evidence.total("put_failed")
        throttled, all_throttled = evidence.total("put_throttled"), evidence.total("write_throttled")
        rejected = failed + throttled
        rate = share(failed, total)
        minute_rates = failure_rates(evidence.values("put_failed"), evidence.values("put_total"))
        worst = max(minute_rates, default=rate)
        throttled_share = share(throttled, rejected)
        success = [100 * value for value in evidence.values("put_record_success")]
        lowest = min(success, default=None)

        figures = capacity_figures(evidence)
        figures += [
            Figure(name="PutRecords records", value=total, unit="records"),
            Figure(name="PutRecords failed records", value=failed, unit="records"),
            Figure(name="PutRecords throttled records", value=throttled, unit="records"),
        ]
        if rate is not None:
            figures.append(Figure(name="failure rate", value=100 * rate, unit="%"))
        if worst is not None:
            figures.append(Figure(name="worst minute's failure rate", value=100 * worst, unit="%"))
        if throttled_share is not None:
            figures.append(Figure(name="throttled share of rejected records", value=100 * throttled_share, unit="%"))
        if lowest is not None:
            figures += [
                Figure(name="lowest PutRecord success", value=lowest, unit="%"),
                Figure(name="average PutRecord success", value=fmean(success), unit="%"),
            ]
        figures.append(Figure(name="throttled writes (all put calls)", value=all_throttled, unit="records"))

        if not evidence.values("put_total") and not success:
            return Diagnosis(
                cause=Cause.INSUFFICIENT_EVIDENCE,
                summary=f"CloudWatch returned no {PUT_TOTAL.name} and no {PUT_RECORD_SUCCESS.name} for the last "
                f"{evidence.window_minutes} minutes; without these datapoints the remediator does not guess.",
                figures=tuple(figures),
                advice=(
                    Advice(
                        title="Check the metrics",
                        detail="Confirm that producers write to the stream and that its metrics reach CloudWatch.",
                    ),
                ),
            )
        records_failing = worst is not None and 100 * worst > detector.max_failed_percent
        calls_failing = lowest is not None and lowest < detector.min_put_record_success_percent
        if not (records_failing or calls_failing):
            return Diagnosis(
                cause=Cause.NOT_REPRODUCED,
                summary=f"PutRecords rejected at most {detector.max_failed_percent:g} % of the records in any minute "
                f"and PutRecord succeeded at least {detector.min_put_record_success_percent:g} % of the time in the "
                f"last {evidence.window_minutes} minutes; nothing to change.",
                figures=tuple(figures),
            )

        what = self._what_failed(worst, lowest, records_failing, calls_failing)
        # Mostly throttles: by the PutRecords split when there were rejected records, else (PutRecord calls only)
        # when any write was throttled at all.
        mostly_throttles = throttled_share >= MOSTLY if throttled_share is not None else all_throttled > 0
        advice = [*self._retry_and_batch(), self._throttle_advice(throttled_share, all_throttled, mostly_throttles)]
        early = on_demand(evidence, figures, tuple(advice))
        if early:
            return early
        peak = evidence.write_utilisation(peak=True)
        if mostly_throttles and is_saturated(evidence, policy):
            return saturated(
                evidence,
                policy,
                f"{what}, mostly throttled while the shards are saturated (writes peaked at {peak:.0%} of the "
                f"stream's capacity, saturated from {policy.capacity.saturated_at:.0%}): more shards take the load.",
                figures,
                advice=advice,
            )
        if mostly_throttles:
            return Diagnosis(
                cause=PUT_THROTTLED_CAUSE,
                summary=f"{what}, mostly throttled although writes peaked at only {peak:.0%} of the stream's capacity "
                "in any minute: a hot shard or bursts shorter than a minute (the write-throttling alarm's diagnosis "
                "tells which). No automatic change: see the advice.",
                figures=tuple(figures),
                advice=tuple(advice),
            )
        return Diagnosis(
            cause=PUT_FAILURES_CAUSE,
            summary=f"{what}, and not because of throttling: the failures are internal errors or rejected "
            "requests. No automatic change: see the advice.",
            figures=tuple(figures),
            advice=tuple(advice),
        )

    @staticmethod
    def _what_failed(worst: float | None, lowest: float | None, records: bool, calls: bool) -> str:
        parts = []
        if records and worst is not None:
            parts.append(f"PutRecords rejected up to {100 * worst:.1f} % of the records in a minute")
        if calls and lowest is not None:
            parts.append(f"PutRecord calls succeeded only {lowest:.1f} % of the time in the worst minute")
        return "; ".join(parts)

    @staticmethod
    def _retry_and_batch() -> list[Advice]:
        return [
            Advice(
                title="Retry failed records with backoff",
                detail="A PutRecords call succeeds even when some of its records fail: read FailedRecordCount and "
                "each record's ErrorCode, and send again only the failed records, with exponential backoff and "
                "jitter (the SDKs retry whole calls, not the records a successful call rejected). A record that is "
                "not retried is lost.",
            ),
            Advice(
                title="Batch with PutRecords or the KPL",
                detail="Send up to 500 records per PutRecords call, or use the Kinesis Producer Library, which "
                "aggregates and collects records and retries failed ones: fewer calls, fewer rejected.",
            ),
        ]

    @staticmethod
    def _throttle_advice(throttled_share: float | None, all_throttled: float, mostly: bool) -> Advice:
        if throttled_share is not None:
            split = f"{throttled_share:.0%} of the rejected PutRecords records were throttled"
        else:
            split = f"{all_throttled:,.0f} records were throttled (PutRecord and PutRecords together)"
        if mostly:
            return Advice(
                title="Mostly throttling",
                detail=f"{split}: the producers exceed a shard's 1 MB/s or 1,000 records/s, on the whole stream "
                "(capacity) or on one shard (a hot partition key). See the write-throttling alarm's diagnosis, "
                "which tells a hot shard from short bursts; spread the partition keys.",
            )
        return Advice(
            title="Not throttling",
            detail=f"{split}: the rest are internal failures or rejected requests. Check the producers' logs for "
            "each record's ErrorCode and ErrorMessage (InternalFailure is transient: retry it); on a stream "
            "encrypted with a KMS key, KMS errors (KMSThrottlingException, KMSAccessDeniedException, "
            "KMSDisabledException, KMSNotFoundException) reject writes: check the key's state, its policy for the "
            "producers' role, and the account's KMS request quota.",
        )
