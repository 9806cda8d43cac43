"""The symptom registry: each symptom declares the alarm that detects it and how to diagnose it."""

from __future__ import annotations

import shlex
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import ClassVar

from remediator.core import limits
from remediator.core.evidence import Evidence
from remediator.core.plan import Advice, Cause, Diagnosis, Figure, Proposal
from remediator.core.policy import Detector, StreamPolicy
from remediator.core.reshard import required_shards, scale_up_target


@dataclass(frozen=True)
class AlarmSpec:
    """A CloudWatch alarm on one AWS/Kinesis stream metric; the CDK side builds it as is."""

    metric_name: str
    statistic: str
    threshold: float
    evaluation_periods: int
    datapoints_to_alarm: int
    description: str
    namespace: str = "AWS/Kinesis"
    period_seconds: int = 60


def _figures(evidence: Evidence) -> list[Figure]:
    stream = evidence.stream
    figures = [
        Figure(name="open shards", value=stream.open_shards),
        Figure(name="peak write utilisation", value=100 * evidence.write_utilisation(peak=True), unit="%"),
        Figure(name="average write utilisation", value=100 * evidence.write_utilisation(peak=False), unit="%"),
        Figure(name="peak incoming bytes", value=evidence.peak_bytes_per_second, unit="B/s"),
        Figure(name="peak incoming records", value=evidence.peak_records_per_second, unit="records/s"),
        Figure(name="throttled writes", value=evidence.throttled_writes, unit="records"),
    ]
    age = evidence.max_iterator_age_ms
    if age is not None:
        figures.append(Figure(name="max iterator age", value=age / 1000, unit="s"))
        figures.append(
            Figure(name="iterator age / retention", value=100 * age / (stream.retention_hours * 3.6e6), unit="%")
        )
    return figures


def _reshard_up(evidence: Evidence, policy: StreamPolicy, why: str) -> Proposal:
    bounds = policy.actions.reshard
    current = evidence.stream.open_shards
    desired = required_shards(
        evidence.peak_bytes_per_second, evidence.peak_records_per_second, bounds.target_utilisation
    )
    step = scale_up_target(current, desired, bounds.min_shards, bounds.max_shards)
    reason = f"{why}; {desired} shards would put the observed peak at {bounds.target_utilisation:.0%} of capacity"
    if step.limited_by:
        reason += f"; this call goes to {step.target} because " + " and ".join(step.limited_by)
    return Proposal(
        action="reshard",
        parameters={"current_shards": current, "desired_shards": desired, "target_shards": step.target},
        reason=reason,
    )


ENABLE_SHARD_METRICS = (
    "aws kinesis enable-enhanced-monitoring --stream-arn {arn} "
    "--shard-level-metrics IncomingBytes IncomingRecords WriteProvisionedThroughputExceeded"
)


class Symptom(ABC):
    key: ClassVar[str]
    title: ClassVar[str]
    meaning: ClassVar[str]

    @abstractmethod
    def detector(self, policy: StreamPolicy) -> Detector: ...

    @abstractmethod
    def alarm_spec(self, policy: StreamPolicy) -> AlarmSpec: ...

    @abstractmethod
    def diagnose(self, evidence: Evidence, policy: StreamPolicy) -> Diagnosis: ...

    def _spec(self, detector: Detector, metric: str, statistic: str, threshold: float) -> AlarmSpec:
        return AlarmSpec(
            metric_name=metric,
            statistic=statistic,
            threshold=threshold,
            evaluation_periods=detector.evaluation_periods,
            datapoints_to_alarm=detector.datapoints_to_alarm,
            description=f"Kinesis Remediator: {self.title}. {self.meaning}",
        )


ON_DEMAND_SUMMARY = "The stream is on-demand: AWS scales its capacity, so it is never resharded."


def _on_demand(evidence: Evidence, advice: tuple[Advice, ...]) -> Diagnosis | None:
    if evidence.stream.mode == "PROVISIONED":
        return None
    return Diagnosis(cause=Cause.ON_DEMAND, summary=ON_DEMAND_SUMMARY, figures=tuple(_figures(evidence)), advice=advice)


def _insufficient(evidence: Evidence, missing: str | None = None, advice: tuple[Advice, ...] = ()) -> Diagnosis | None:
    if missing is None and evidence.has_write_traffic_data():
        return None
    what = missing or "IncomingBytes or IncomingRecords"
    return Diagnosis(
        cause=Cause.INSUFFICIENT_EVIDENCE,
        summary=f"CloudWatch returned no {what} for the last {evidence.window_minutes} minutes; "
        "without these datapoints the remediator does not guess.",
        figures=tuple(_figures(evidence)),
        advice=(
            *advice,
            Advice(
                title="Check the metrics",
                detail="Confirm that the stream receives traffic and that its metrics reach CloudWatch.",
            ),
        ),
    )


ON_DEMAND_THROTTLING = Advice(
    title="On-demand stream",
    detail="Throttling on an on-demand stream usually means traffic more than doubled its previous peak "
    "within 15 minutes, or a hot partition key. Spread partition keys and retry with exponential backoff.",
)


class WriteThrottling(Symptom):
    key = "write-throttling"
    title = "producers throttled"
    meaning = (
        "Records were rejected with WriteProvisionedThroughputExceeded: producers write faster than the "
        "shards accept (1 MB/s or 1,000 records/s per shard), overall or on one hot shard."
    )

    def detector(self, policy: StreamPolicy) -> Detector:
        return policy.detectors.write_throttling

    def alarm_spec(self, policy: StreamPolicy) -> AlarmSpec:
        d = policy.detectors.write_throttling
        return self._spec(d, "WriteProvisionedThroughputExceeded", "Sum", d.threshold_records)

    def diagnose(self, evidence: Evidence, policy: StreamPolicy) -> Diagnosis:
        early = _on_demand(evidence, (ON_DEMAND_THROTTLING,)) or _insufficient(evidence)
        if early:
            return early
        bounds = policy.actions.reshard
        peak = evidence.write_utilisation(peak=True)
        figures = tuple(_figures(evidence))
        if peak >= bounds.saturated_at:
            return Diagnosis(
                cause=Cause.SATURATED,
                summary=f"The shards are saturated: writes peaked at {peak:.0%} of the stream's capacity "
                f"(saturated from {bounds.saturated_at:.0%}).",
                figures=figures,
                proposals=(_reshard_up(evidence, policy, f"peak write utilisation {peak:.0%}"),),
            )
        if evidence.throttled_writes <= 0:
            return Diagnosis(
                cause=Cause.NOT_REPRODUCED,
                summary="No throttled writes in the evidence window and the shards are not saturated; "
                "nothing to change.",
                figures=figures,
            )
        arn = evidence.stream.arn
        return Diagnosis(
            cause=Cause.HOT_PARTITION_KEY,
            summary=f"Writes were throttled although the stream as a whole peaked at only {peak:.0%} of "
            "its capacity: the load is uneven, most likely a hot partition key. More shards would not help.",
            figures=figures,
            advice=(
                Advice(
                    title="Find the hot shard",
                    detail="Turn on shard-level metrics to see which shard takes the load "
                    "(they cost extra; turn them off afterwards).",
                    cli_command=ENABLE_SHARD_METRICS.format(arn=arn),
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


class IteratorAge(Symptom):
    key = "iterator-age"
    title = "consumers falling behind"
    meaning = (
        "GetRecords.IteratorAgeMilliseconds (Maximum) is high: the oldest record a consumer read is that "
        "old. Past the retention period, unread records expire and are lost."
    )

    def detector(self, policy: StreamPolicy) -> Detector:
        return policy.detectors.iterator_age

    @staticmethod
    def _consumer_advice(policy: StreamPolicy) -> Advice:
        consumers = ", ".join(c.function for c in policy.consumers) or "the stream's consumers"
        return Advice(
            title="Speed up the consumer",
            detail=f"Optimise the record processing of {consumers}, or give it more capacity "
            "(for Lambda: a larger batch size or parallelization factor).",
        )

    def alarm_spec(self, policy: StreamPolicy) -> AlarmSpec:
        d = policy.detectors.iterator_age
        return self._spec(d, "GetRecords.IteratorAgeMilliseconds", "Maximum", d.threshold_ms)

    def diagnose(self, evidence: Evidence, policy: StreamPolicy) -> Diagnosis:
        age = evidence.max_iterator_age_ms
        if age is None:
            early = _insufficient(evidence, missing="GetRecords.IteratorAgeMilliseconds")
            assert early is not None
            return early
        retention = evidence.stream.retention_hours
        share = age / (retention * 3.6e6)
        advice: list[Advice] = []
        if share >= 0.5:
            advice.append(
                Advice(
                    title="Data-loss risk: raise retention",
                    detail=f"The oldest unread record is {share:.0%} of the way to expiry "
                    f"(retention {retention} h). AWS warns from 50 %.",
                    cli_command="aws kinesis increase-stream-retention-period --stream-arn "
                    f"{shlex.quote(evidence.stream.arn)} --retention-period-hours "
                    f"{min(retention * 2, limits.MAX_RETENTION_HOURS)}",
                )
            )
        consumer_advice = self._consumer_advice(policy)
        early = _on_demand(evidence, (*advice, consumer_advice)) or _insufficient(evidence, advice=tuple(advice))
        if early:
            return early
        bounds = policy.actions.reshard
        peak = evidence.write_utilisation(peak=True)
        figures = tuple(_figures(evidence))
        if peak >= bounds.saturated_at:
            return Diagnosis(
                cause=Cause.SATURATED,
                summary=f"Consumers fall behind while the shards are saturated (writes peaked at {peak:.0%} "
                "of capacity): more shards give consumers more parallel work.",
                figures=figures,
                proposals=(_reshard_up(evidence, policy, f"peak write utilisation {peak:.0%}"),),
                advice=tuple(advice),
            )
        advice.append(consumer_advice)
        return Diagnosis(
            cause=Cause.SLOW_CONSUMER,
            summary=f"Consumers fall behind (max iterator age {age / 1000:,.0f} s) although writes peaked "
            f"at only {peak:.0%} of capacity: resharding would not help.",
            figures=figures,
            advice=tuple(advice),
        )


SYMPTOMS: dict[str, Symptom] = {symptom.key: symptom for symptom in (IteratorAge(), WriteThrottling())}
