"""iterator-age: consumers fall behind (GetRecords.IteratorAgeMilliseconds, Maximum)."""

from __future__ import annotations

import shlex

from pydantic import Field

from remediator.core import limits
from remediator.core.evidence import Evidence
from remediator.core.metrics import MetricQuery, MissingData, kinesis_stream_metric
from remediator.core.plan import Advice, Cause, Diagnosis, Figure
from remediator.core.policy import DetectorPolicy, StreamPolicy
from remediator.core.registry import REGISTRY
from remediator.core.symptoms.base import AlarmSpec, Symptom
from remediator.core.symptoms.capacity import capacity_figures, insufficient, is_saturated, on_demand, reshard_up

ITERATOR_AGE = kinesis_stream_metric("GetRecords.IteratorAgeMilliseconds", "Maximum")
# AWS: past half the retention period, unread records are at risk of expiring.
DATA_LOSS_SHARE = 0.5


class IteratorAgeDetector(DetectorPolicy):
    threshold_ms: int = Field(
        60_000,
        ge=1_000,
        le=limits.MAX_RETENTION_HOURS * 3_600_000,
        description=f"Alarm when {ITERATOR_AGE.name} ({ITERATOR_AGE.statistic}) reaches this.",
    )


@REGISTRY.symptom
class IteratorAge(Symptom[IteratorAgeDetector]):
    id = "iterator-age"
    title = "consumers falling behind"
    meaning = (
        f"{ITERATOR_AGE.name} ({ITERATOR_AGE.statistic}) is high: the oldest record a consumer read is that "
        "old. Past the retention period, unread records expire and are lost."
    )
    detector_schema = IteratorAgeDetector

    def alarms(self, policy: StreamPolicy, detector: IteratorAgeDetector) -> list[AlarmSpec]:
        # No data means no consumer read in that minute; a consumer that stops altogether is a
        # different symptom, so a quiet stream does not alarm here.
        metric = ITERATOR_AGE.on(StreamName=policy.name)
        return [self.alarm(detector, metric, detector.threshold_ms, missing_data=MissingData.NOT_BREACHING)]

    def evidence_queries(self, policy: StreamPolicy) -> tuple[MetricQuery, ...]:
        own = MetricQuery("iterator_age_ms", ITERATOR_AGE.on(StreamName=policy.name))
        return (*super().evidence_queries(policy), own)

    @staticmethod
    def _consumer_advice(policy: StreamPolicy) -> Advice:
        consumers = ", ".join(c.name for c in policy.consumers) or "the stream's consumers"
        return Advice(
            title="Speed up the consumer",
            detail=f"Optimise the record processing of {consumers}, or give it more capacity "
            "(for Lambda: a larger batch size or parallelization factor).",
        )

    def diagnose(self, evidence: Evidence, policy: StreamPolicy) -> Diagnosis:
        figures = capacity_figures(evidence)
        age = evidence.maximum("iterator_age_ms")
        if age is None:
            early = insufficient(evidence, figures, missing=ITERATOR_AGE.name)
            assert early is not None
            return early
        retention = evidence.stream.retention_hours
        share = age / (retention * 3.6e6)
        figures += [
            Figure(name="max iterator age", value=age / 1000, unit="s"),
            Figure(name="iterator age / retention", value=100 * share, unit="%"),
        ]
        advice: list[Advice] = []
        if share >= DATA_LOSS_SHARE:
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
        early = on_demand(evidence, figures, (*advice, consumer_advice)) or insufficient(
            evidence, figures, advice=tuple(advice)
        )
        if early:
            return early
        peak = evidence.write_utilisation(peak=True)
        if is_saturated(evidence, policy):
            return Diagnosis(
                cause=Cause.SATURATED,
                summary=f"Consumers fall behind while the shards are saturated (writes peaked at {peak:.0%} "
                "of capacity): more shards give consumers more parallel work.",
                figures=tuple(figures),
                proposals=(reshard_up(evidence, policy, f"peak write utilisation {peak:.0%}"),),
                advice=tuple(advice),
            )
        advice.append(consumer_advice)
        return Diagnosis(
            cause=Cause.SLOW_CONSUMER,
            summary=f"Consumers fall behind (max iterator age {age / 1000:,.0f} s) although writes peaked "
            f"at only {peak:.0%} of capacity: resharding would not help.",
            figures=tuple(figures),
            advice=tuple(advice),
        )
