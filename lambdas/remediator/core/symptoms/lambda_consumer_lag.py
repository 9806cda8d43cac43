"""lambda-consumer-lag: a Lambda consumer falls behind (AWS/Lambda IteratorAge, Maximum, per consumer function).

The diagnosis decides between remedies from the evidence: saturated shards -> reshard (more shards, more
parallel work); shards that are not saturated -> tune the lagging function's mapping for throughput; a mapping
that is disabled or missing -> advice naming it (the remediator never re-enables a mapping someone stopped).
In every case, once the worst lagging function's IteratorAge has used `retention_share` of the retention period:
raise-retention as well, ahead of the fix for the lag.
"""

from __future__ import annotations

import shlex
from datetime import datetime
from typing import Any

from pydantic import Field

from remediator.core import limits
from remediator.core.consumers import (
    LAMBDA_MAPPINGS,
    MAPPING_READ_ACTIONS,
    MAPPING_READ_GRANTS,
    MappingFacts,
    lambda_mappings,
    read_error,
    read_failure_advice,
    unreadable_consumers,
)
from remediator.core.evidence import Evidence, StreamMode, StreamState
from remediator.core.metrics import MetricName, MetricQuery, MissingData
from remediator.core.plan import Advice, Cause, Diagnosis, Figure, Proposal
from remediator.core.policy import DetectorPolicy, StreamPolicy
from remediator.core.ports import ReadPorts
from remediator.core.registry import REGISTRY
from remediator.core.symptoms.base import AlarmSpec, Symptom
from remediator.core.symptoms.capacity import capacity_figures, insufficient, is_saturated, saturated
from remediator.core.symptoms.lag import gather_mappings, protect_data, retention_share, retention_share_field

LAMBDA_ITERATOR_AGE = MetricName("AWS/Lambda", "IteratorAge", "Maximum")
DISABLED = ("Disabled", "Disabling")
# The cause when the lag is not on saturated shards and the mappings could not be read.
MAPPINGS_UNREADABLE = "mappings-unreadable"


def age_key(index: int) -> str:
    """The evidence key of the index-th Lambda consumer's IteratorAge (function names may hold '-')."""
    return f"lambda_iterator_age_{index}"


class LambdaConsumerLagDetector(DetectorPolicy):
    threshold_ms: int = Field(
        60_000,
        ge=1_000,
        le=limits.MAX_RETENTION_HOURS * 3_600_000,
        description=f"Alarm when a consumer function's {LAMBDA_ITERATOR_AGE.name} ({LAMBDA_ITERATOR_AGE.statistic}) "
        "reaches this.",
    )
    retention_share: float = retention_share_field()


@REGISTRY.symptom
class LambdaConsumerLag(Symptom[LambdaConsumerLagDetector]):
    id = "lambda-consumer-lag"
    title = "Lambda consumer lagging"
    meaning = (
        f"A consumer function's {LAMBDA_ITERATOR_AGE.name} ({LAMBDA_ITERATOR_AGE.statistic}) is high: the last record "
        "of its batches was that old when the batch finished. Past the retention period, unread records are lost."
    )
    detector_schema = LambdaConsumerLagDetector
    read_grants = MAPPING_READ_GRANTS

    def alarms(self, policy: StreamPolicy, detector: LambdaConsumerLagDetector) -> list[AlarmSpec]:
        # IteratorAge is emitted only when a batch finishes: an idle stream invokes nothing, and a slow batch
        # reports minutes later. A minute without a datapoint says nothing about lag, so the alarm keeps its
        # state (ignore): neither a quiet stream nor the gap between two slow batches flips it. A consumer that
        # stops altogether is consumer-stalled's to detect.
        return [
            self.alarm(
                detector,
                LAMBDA_ITERATOR_AGE.on(FunctionName=consumer.function),
                detector.threshold_ms,
                missing_data=MissingData.IGNORE,
                qualifier=consumer.function,
            )
            for consumer in policy.lambda_consumers
        ]

    def evidence_queries(self, policy: StreamPolicy) -> tuple[MetricQuery, ...]:
        own = tuple(
            MetricQuery(age_key(index), LAMBDA_ITERATOR_AGE.on(FunctionName=consumer.function))
            for index, consumer in enumerate(policy.lambda_consumers)
        )
        return (*super().evidence_queries(policy), *own)

    def gather(self, policy: StreamPolicy, stream: StreamState, aws: ReadPorts, now: datetime) -> dict[str, Any]:
        # A denied or throttled read becomes a fact: the diagnosis still protects the data and reshards.
        return gather_mappings(policy, stream, aws)

    def diagnose(self, evidence: Evidence, policy: StreamPolicy) -> Diagnosis:
        detector = self.detector(policy)
        threshold = detector.threshold_ms
        figures = capacity_figures(evidence)
        ages = {
            consumer.function: evidence.maximum(age_key(index))
            for index, consumer in enumerate(policy.lambda_consumers)
        }
        figures += [
            Figure(name=f"max IteratorAge of {function}", value=age / 1000, unit="s")
            for function, age in ages.items()
            if age is not None
        ]
        if not policy.lambda_consumers:
            return Diagnosis(
                cause=Cause.NOT_REPRODUCED,
                summary="The stream's policy lists no Lambda consumer; nothing to diagnose.",
                figures=tuple(figures),
            )
        if all(age is None for age in ages.values()):
            early = insufficient(evidence, figures, missing=f"{LAMBDA_ITERATOR_AGE.name} of the consumer functions")
            assert early is not None
            return early
        lagging = sorted(
            ((function, age) for function, age in ages.items() if age is not None and age >= threshold),
            key=lambda item: -item[1],
        )
        if not lagging:
            return Diagnosis(
                cause=Cause.NOT_REPRODUCED,
                summary=f"No consumer function's {LAMBDA_ITERATOR_AGE.name} reached {threshold / 1000:,.0f} s in "
                f"the last {evidence.window_minutes} minutes; nothing to change.",
                figures=tuple(figures),
            )
        worst_function, worst = lagging[0]
        figures.append(
            Figure(name="worst IteratorAge / retention", value=100 * retention_share(evidence, worst), unit="%")
        )
        # Protecting the data comes first: it is the one step that cannot wait for the lag to be fixed. IteratorAge
        # (the age of a batch's last record when the batch finished) is how old the records the function has yet
        # to read are, as near as the metric says: the age of the oldest unread record.
        protect = protect_data(evidence, worst, detector.retention_share, self.id, reader=worst_function)
        mappings = {m.function: m for m in lambda_mappings(evidence)}
        unread = read_error(evidence, LAMBDA_MAPPINGS)
        # Mappings that could not be read are neither stuck nor tunable: the advice names the failed read.
        stuck = [
            (function, mappings.get(function))
            for function, _ in lagging
            if not unread and not self._tunable(mappings, function)
        ]
        advice = [self._mapping_advice(function, mapping, evidence.stream) for function, mapping in stuck]
        advice += unreadable_consumers(evidence, named={function for function, _ in lagging})
        advice += read_failure_advice(
            evidence, LAMBDA_MAPPINGS, "the consumer functions' event-source mappings", MAPPING_READ_ACTIONS
        )
        tunable = [(function, age) for function, age in lagging if self._tunable(mappings, function)]
        names = ", ".join(f"{function} ({age / 1000:,.0f} s)" for function, age in lagging)

        provisioned = evidence.stream.mode == StreamMode.PROVISIONED
        if provisioned and not evidence.has_write_traffic_data():
            early = insufficient(evidence, figures, advice=tuple(advice))
            assert early is not None
            return early.model_copy(update={"proposals": protect})
        if provisioned and is_saturated(evidence, policy):
            peak = evidence.write_utilisation(peak=True)
            return saturated(
                evidence,
                policy,
                f"Lambda consumers fall behind ({names}) while the shards are saturated (writes peaked at "
                f"{peak:.0%} of capacity): more shards give each function more batches to run in parallel; tuning "
                "the mappings would not get past the shards' own limits.",
                figures,
                before=protect,
                advice=advice,
            )
        load = (
            f"although writes peaked at only {evidence.write_utilisation(peak=True):.0%} of the shards' capacity"
            if provisioned
            else "on an on-demand stream, whose shards AWS scales"
        )
        tunings = tuple(
            Proposal(
                action="tune-event-source",
                parameters={"function": function, "goal": "throughput"},
                reason=f"{function}'s {LAMBDA_ITERATOR_AGE.name} peaked at {age / 1000:,.0f} s {load}: the function, "
                "not the stream, is the bottleneck",
            )
            for function, age in tunable
        )
        if unread:
            return Diagnosis(
                cause=MAPPINGS_UNREADABLE,
                summary=f"Lambda consumers fall behind ({names}) {load}, but their event-source mappings could not "
                f"be read ({unread}): without their settings the remediator proposes no tuning.",
                figures=tuple(figures),
                proposals=protect,
                advice=tuple(advice),
            )
        if not tunings:
            first_mapping = stuck[0][1]
            return Diagnosis(
                cause="mapping-missing" if first_mapping is None or not first_mapping.found else "mapping-disabled",
                summary=f"Lambda consumers fall behind ({names}), and no mapping of theirs on this stream can be "
                "tuned: " + "; ".join(self._mapping_problem(function, mapping) for function, mapping in stuck) + ".",
                figures=tuple(figures),
                proposals=protect,
                advice=tuple(advice),
            )
        return Diagnosis(
            cause=Cause.SLOW_CONSUMER,
            summary=f"Lambda consumers fall behind ({names}) {load}: resharding would not help; their mappings can "
            "run more batches in parallel.",
            figures=tuple(figures),
            proposals=(*protect, *tunings),
            advice=tuple(advice),
        )

    @staticmethod
    def _tunable(mappings: dict[str, MappingFacts], function: str) -> bool:
        """A mapping on this stream that is not disabled (one that is Updating is proposed, and the action waits)."""
        mapping = mappings.get(function)
        return mapping is not None and mapping.found and mapping.state not in DISABLED

    @staticmethod
    def _mapping_problem(function: str, mapping: MappingFacts | None) -> str:
        if mapping is not None and mapping.read_error:
            return f"{function} could not be read ({mapping.read_error})"
        if mapping is None or not mapping.found:
            return f"{function} has no event-source mapping on the stream"
        return f"mapping {mapping.uuid} of {function} is {mapping.state}"

    @staticmethod
    def _mapping_advice(function: str, mapping: MappingFacts | None, stream: StreamState) -> Advice:
        if mapping is None or not mapping.found:
            why = (
                f"{function} could not be read ({mapping.read_error}): check its name in the policy's consumers."
                if mapping is not None and mapping.read_error
                else f"{function} has no event-source mapping on stream {stream.name}, so its IteratorAge comes "
                "from another source, or its mapping was deleted. List its mappings and check the policy's consumers."
            )
            return Advice(
                title=f"Mapping of {function} not found",
                detail=why,
                cli_command=shlex.join(["aws", "lambda", "list-event-source-mappings", "--function-name", function]),
            )
        return Advice(
            title=f"Mapping of {function} is {mapping.state}",
            detail=f"Mapping {mapping.uuid} of {function} on stream {stream.name} is {mapping.state}: records wait "
            "in the stream until it is enabled again (the remediator never re-enables a mapping someone stopped). "
            "Enable it when the function is fixed.",
            cli_command=shlex.join(
                ["aws", "lambda", "update-event-source-mapping", "--uuid", str(mapping.uuid), "--enabled"]
            ),
        )
