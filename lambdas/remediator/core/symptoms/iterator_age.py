"""iterator-age: consumers fall behind (GetRecords.IteratorAgeMilliseconds, Maximum).

The diagnosis chooses the fix for the lag from the evidence, and protects the data as well:
- shards saturated: reshard (more shards, more parallel work for every consumer), sized from the load producers
  offered when writes were throttled too (capacity.reshard_up);
- shards not saturated and a Lambda consumer polling the stream (its mapping Enabled on the stream):
  tune that mapping for throughput (tune-event-source: parallelization factor, then batch size), since
  more shards would not make the function faster;
- shards not saturated and no such Lambda consumer: advice to speed up the consumer;
- in every case, once the oldest unread record has used `retention_share` of the retention period:
  raise-retention as well, ahead of the fix for the lag.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import Field

from remediator.core import limits
from remediator.core.consumers import MAPPING_READ_GRANTS
from remediator.core.evidence import WRITE_THROTTLED, WRITE_THROTTLED_KEY, Evidence, StreamState
from remediator.core.metrics import MetricQuery, MissingData, kinesis_stream_metric
from remediator.core.plan import Advice, Cause, Diagnosis, Figure, Proposal
from remediator.core.policy import DetectorPolicy, StreamPolicy
from remediator.core.ports import ReadPorts
from remediator.core.registry import REGISTRY
from remediator.core.symptoms.base import AlarmSpec, Symptom
from remediator.core.symptoms.capacity import (
    capacity_figures,
    insufficient,
    is_saturated,
    on_demand,
    saturated,
)
from remediator.core.symptoms.lag import (
    gather_mappings,
    mapping_figures,
    mapping_problems,
    polling_mappings,
    raise_retention,
    retention_share,
    retention_share_field,
    tune_for_throughput,
)

ITERATOR_AGE = kinesis_stream_metric("GetRecords.IteratorAgeMilliseconds", "Maximum")


class IteratorAgeDetector(DetectorPolicy):
    threshold_ms: int = Field(
        60_000,
        ge=1_000,
        le=limits.MAX_RETENTION_HOURS * 3_600_000,
        description=f"Alarm when {ITERATOR_AGE.name} ({ITERATOR_AGE.statistic}) reaches this.",
    )
    retention_share: float = retention_share_field()


@REGISTRY.symptom
class IteratorAge(Symptom[IteratorAgeDetector]):
    id = "iterator-age"
    title = "consumers falling behind"
    meaning = (
        f"{ITERATOR_AGE.name} ({ITERATOR_AGE.statistic}) is high: the oldest record a consumer read is that "
        "old. Past the retention period, unread records expire and are lost."
    )
    detector_schema = IteratorAgeDetector
    read_grants = MAPPING_READ_GRANTS

    def alarms(self, policy: StreamPolicy, detector: IteratorAgeDetector) -> list[AlarmSpec]:
        # No data means no consumer read in that minute; a consumer that stops altogether is a
        # different symptom (consumer-stalled), so a quiet stream does not alarm here.
        metric = ITERATOR_AGE.on(StreamName=policy.name)
        return [self.alarm(detector, metric, detector.threshold_ms, missing_data=MissingData.NOT_BREACHING)]

    def evidence_queries(self, policy: StreamPolicy) -> tuple[MetricQuery, ...]:
        own = MetricQuery("iterator_age_ms", ITERATOR_AGE.on(StreamName=policy.name))
        # Throttled writes: a reshard for saturated shards is sized from the load producers offered (reshard_up).
        throttled = MetricQuery(WRITE_THROTTLED_KEY, WRITE_THROTTLED.on(StreamName=policy.name))
        return (*super().evidence_queries(policy), throttled, own)

    def gather(self, policy: StreamPolicy, stream: StreamState, aws: ReadPorts, now: datetime) -> dict[str, Any]:
        # Which Lambda consumers poll the stream, and how: the tune-event-source action shapes its step
        # from these facts.
        return gather_mappings(policy, stream, aws)

    @staticmethod
    def _consumer_advice(names: list[str]) -> Advice:
        consumers = ", ".join(names) or "the stream's consumers"
        return Advice(
            title="Speed up the consumer",
            detail=f"Optimise the record processing of {consumers}, or give it more capacity "
            "(for Lambda: a larger batch size or parallelization factor).",
        )

    def diagnose(self, evidence: Evidence, policy: StreamPolicy) -> Diagnosis:
        detector = self.detector(policy)
        figures = capacity_figures(evidence)
        age = evidence.maximum("iterator_age_ms")
        if age is None:
            early = insufficient(evidence, figures, missing=ITERATOR_AGE.name)
            assert early is not None
            return early
        figures += [
            Figure(name="max iterator age", value=age / 1000, unit="s"),
            Figure(name="iterator age / retention", value=100 * retention_share(evidence, age), unit="%"),
        ]
        retention = raise_retention(evidence, age, detector.retention_share, "detectors.iterator_age.retention_share")
        # Protecting the data comes first: it is the one step that cannot wait for the lag to be fixed.
        protect: tuple[Proposal, ...] = (retention,) if retention else ()
        problems = mapping_problems(evidence, policy)
        everyone = self._consumer_advice([c.name for c in policy.consumers])
        early = on_demand(evidence, figures, (*problems, everyone)) or insufficient(
            evidence, figures, advice=tuple(problems)
        )
        if early:
            return early.model_copy(update={"proposals": protect})
        peak = evidence.write_utilisation(peak=True)
        if is_saturated(evidence, policy):
            return saturated(
                evidence,
                policy,
                f"Consumers fall behind while the shards are saturated (writes peaked at {peak:.0%} "
                "of capacity): more shards give consumers more parallel work.",
                figures,
                before=protect,
                advice=problems,
            )
        lagging = polling_mappings(evidence)
        if lagging:
            names = ", ".join(m.function for m in lagging)
            why = f"the shards are not saturated (writes peaked at {peak:.0%} of capacity)"
            others = [app.name for app in policy.kcl_applications]
            return Diagnosis(
                cause=Cause.SLOW_CONSUMER,
                summary=f"Consumers fall behind (max iterator age {age / 1000:,.0f} s) although writes peaked at "
                f"only {peak:.0%} of capacity: resharding would not help. The Lambda consumer(s) {names} poll the "
                "stream; tuning their mappings for throughput (parallelization factor, then batch size) gives "
                "them more parallel work.",
                figures=(*figures, *mapping_figures(lagging)),
                proposals=(*protect, *(tune_for_throughput(m, why) for m in lagging)),
                # The iterator age is the oldest over every polling consumer: a KCL application may be the one.
                advice=(*problems, *([self._consumer_advice(others)] if others else [])),
            )
        return Diagnosis(
            cause=Cause.SLOW_CONSUMER,
            summary=f"Consumers fall behind (max iterator age {age / 1000:,.0f} s) although writes peaked "
            f"at only {peak:.0%} of capacity: resharding would not help.",
            figures=tuple(figures),
            proposals=protect,
            advice=(*problems, everyone),
        )
