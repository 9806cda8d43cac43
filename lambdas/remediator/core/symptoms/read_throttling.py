"""read-throttling: polling consumers are throttled (ReadProvisionedThroughputExceeded).

Every polling consumer of a shard (a Lambda event-source mapping, a KCL application, a custom GetRecords
client) shares the shard's 5 GetRecords calls per second and 2 MB/s. The diagnosis tells apart:
- two or more polling consumers: they compete, and an enhanced fan-out consumer gives a reader its own 2 MB/s
  per shard and takes its calls off the shared budget -> `enhanced-fan-out`;
- one polling consumer, reads saturating the shards -> `reshard` (more shards, more read capacity);
- one polling consumer that is a Lambda function -> `tune-event-source` with the goal "smaller-batches"
  (a GetRecords call may return 10 MB, after which the shard refuses reads for 5 s), and backoff advice;
- one KCL application -> advice: fewer GetRecords calls, smaller maxRecords, backoff;
- an on-demand stream -> advice (AWS scales it; never resharded).
Who polls is read from the policy, narrowed by the facts gathered: a Lambda consumer whose mapping reads
through a consumer already (or is disabled, or missing) does not poll, nor does a KCL application with a
registered consumer of its own name (KCL 2.x registers its fan-out consumer under the application name).
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any

from pydantic import Field

from remediator.core import limits
from remediator.core.consumers import (
    LAMBDA_MAPPINGS,
    MAPPING_READ_ACTIONS,
    MAPPING_READ_GRANTS,
    gather_or_error,
    lambda_mappings,
    read_failure_advice,
)
from remediator.core.evidence import Evidence, StreamMode, StreamState
from remediator.core.metrics import MetricQuery, MissingData, kinesis_stream_metric
from remediator.core.plan import Advice, Cause, Diagnosis, Figure, Proposal
from remediator.core.policy import DetectorPolicy, StreamPolicy
from remediator.core.ports import ReadPorts
from remediator.core.registry import REGISTRY
from remediator.core.reshard import peak_share, required_shards
from remediator.core.stream_consumers import (
    STREAM_CONSUMER_READ_GRANTS,
    STREAM_CONSUMERS,
    gather_stream_consumers,
    stream_consumers,
)
from remediator.core.symptoms.base import AlarmSpec, Symptom
from remediator.core.symptoms.iterator_age import ITERATOR_AGE
from remediator.core.symptoms.lag import gather_mappings

READ_THROTTLED = kinesis_stream_metric("ReadProvisionedThroughputExceeded", "Sum")
READ_BYTES = kinesis_stream_metric("GetRecords.Bytes", "Sum")

# Lambda mapping states in which the function does not poll the stream.
NOT_POLLING_STATES = ("Disabled", "Disabling", "Deleting")

COMPETE = "polling-consumers-compete"
ONE_CONSUMER = "single-consumer-throttled"
UNKNOWN_CONSUMERS = "unknown-consumers"

BACKOFF = Advice(
    title="Retry with backoff",
    detail="Lambda and the KCL retry throttled GetRecords calls by themselves; a custom consumer must retry with "
    "exponential backoff and jitter, and all the consumers of a shard together must stay under 5 GetRecords calls "
    "per second.",
)


class ReadThrottlingDetector(DetectorPolicy):
    threshold_calls: int = Field(
        10,
        ge=1,
        description=f"Alarm when {READ_THROTTLED.name} ({READ_THROTTLED.statistic} per minute) reaches this many "
        "throttled GetRecords calls. Lambda and the KCL retry a throttled call, so an occasional one is harmless.",
    )


def polling_consumers(evidence: Evidence, policy: StreamPolicy) -> list[tuple[str, str]]:
    """(kind, name) of each consumer that reads the stream with GetRecords, as far as the facts tell."""
    mappings = {m.function: m for m in lambda_mappings(evidence)} if LAMBDA_MAPPINGS in evidence.facts else None
    registered = {c.name for c in stream_consumers(evidence) or []}
    found: list[tuple[str, str]] = []
    for consumer in policy.lambda_consumers:
        mapping = mappings.get(consumer.function) if mappings is not None else None
        if mappings is not None and (
            mapping is None or not mapping.found or mapping.on_efo or mapping.state in NOT_POLLING_STATES
        ):
            continue
        found.append(("Lambda function", consumer.function))
    found += [("KCL application", app.kcl) for app in policy.kcl_applications if app.kcl not in registered]
    return found


def read_utilisation(evidence: Evidence) -> float | None:
    """Peak GetRecords bytes per second as a share of the shards' 2 MB/s each (None without the metric)."""
    peak = evidence.maximum("read_bytes")
    if peak is None:
        return None
    return peak / evidence.period_seconds / (max(evidence.stream.open_shards, 1) * limits.SHARD_READ_BYTES_PER_SECOND)


def read_reshard(evidence: Evidence, policy: StreamPolicy, utilisation: float) -> Proposal:
    """The fewest shards that put the peak read rate (and the write peak) at or below the target utilisation; the
    reason states the shares that count gives."""
    target = policy.capacity.target_utilisation
    peak = (evidence.maximum("read_bytes") or 0.0) / evidence.period_seconds
    by_reads = max(1, math.ceil(round(peak / limits.SHARD_READ_BYTES_PER_SECOND / target, 6)))
    by_writes = required_shards(evidence.peak_bytes_per_second, evidence.peak_records_per_second, target)
    desired = max(by_reads, by_writes)
    return Proposal(
        action="reshard",
        parameters={"desired_shards": desired},
        reason=f"peak read utilisation {utilisation:.0%}; {desired} shards would put the observed read peak at "
        f"{peak / (desired * limits.SHARD_READ_BYTES_PER_SECOND):.0%} and the write peak at "
        f"{peak_share(evidence.peak_bytes_per_second, evidence.peak_records_per_second, desired):.0%} of capacity "
        f"(target {target:.0%})",
    )


@REGISTRY.symptom
class ReadThrottling(Symptom[ReadThrottlingDetector]):
    id = "read-throttling"
    title = "consumers throttled"
    meaning = (
        f"GetRecords calls were rejected with {READ_THROTTLED.name}: the stream's polling consumers together "
        f"exceed a shard's {limits.SHARD_GET_RECORDS_PER_SECOND} GetRecords calls per second or 2 MB/s."
    )
    detector_schema = ReadThrottlingDetector
    read_grants = (*MAPPING_READ_GRANTS, *STREAM_CONSUMER_READ_GRANTS)

    def alarms(self, policy: StreamPolicy, detector: ReadThrottlingDetector) -> list[AlarmSpec]:
        # No data means no GetRecords call was throttled in that minute (a stream nobody polls publishes none).
        metric = READ_THROTTLED.on(StreamName=policy.name)
        return [self.alarm(detector, metric, detector.threshold_calls, missing_data=MissingData.NOT_BREACHING)]

    def evidence_queries(self, policy: StreamPolicy) -> tuple[MetricQuery, ...]:
        own = (
            MetricQuery("read_throttled", READ_THROTTLED.on(StreamName=policy.name)),
            MetricQuery("read_bytes", READ_BYTES.on(StreamName=policy.name)),
            # Where the polling consumers stand: an enhanced-fan-out move starts its new mappings from it.
            MetricQuery("iterator_age_ms", ITERATOR_AGE.on(StreamName=policy.name)),
        )
        return (*super().evidence_queries(policy), *own)

    def gather(self, policy: StreamPolicy, stream: StreamState, aws: ReadPorts, now: datetime) -> dict[str, Any]:
        # A denied or throttled read becomes a fact: who polls is then read from the policy alone (polling_consumers),
        # and the advice names the read that failed.
        return gather_mappings(policy, stream, aws) | gather_or_error(
            STREAM_CONSUMERS, lambda: gather_stream_consumers(policy, stream, aws)
        )

    @staticmethod
    def _figures(evidence: Evidence, throttled: float, polling: int, utilisation: float | None) -> list[Figure]:
        figures = [
            Figure(name="throttled GetRecords calls", value=throttled, unit="calls"),
            Figure(name="polling consumers", value=polling),
            Figure(name="open shards", value=evidence.stream.open_shards),
        ]
        if utilisation is not None:
            peak = (evidence.maximum("read_bytes") or 0.0) / evidence.period_seconds
            figures += [
                Figure(name="peak read bytes", value=peak, unit="B/s"),
                Figure(name="peak read utilisation", value=100 * utilisation, unit="%"),
            ]
        registered = stream_consumers(evidence)
        if registered is not None:
            figures.append(Figure(name="registered EFO consumers", value=len(registered)))
        age = evidence.maximum("iterator_age_ms")
        if age is not None:
            figures.append(Figure(name="max iterator age", value=age / 1000, unit="s"))
        return figures

    def diagnose(self, evidence: Evidence, policy: StreamPolicy) -> Diagnosis:
        diagnosis = self._diagnose(evidence, policy)
        unread = [
            *read_failure_advice(
                evidence, LAMBDA_MAPPINGS, "the Lambda consumers' event-source mappings", MAPPING_READ_ACTIONS
            ),
            *read_failure_advice(
                evidence,
                STREAM_CONSUMERS,
                "the stream's registered consumers",
                [a for g in STREAM_CONSUMER_READ_GRANTS for a in g.actions],
            ),
        ]
        if not unread:
            return diagnosis
        return diagnosis.model_copy(update={"advice": (*unread, *diagnosis.advice)})

    def _diagnose(self, evidence: Evidence, policy: StreamPolicy) -> Diagnosis:
        throttled = evidence.total("read_throttled")
        polling = polling_consumers(evidence, policy)
        utilisation = read_utilisation(evidence)
        figures = self._figures(evidence, throttled, len(polling), utilisation)
        named = ", ".join(f"{kind} {name}" for kind, name in polling)
        if evidence.stream.mode != StreamMode.PROVISIONED:
            return Diagnosis(
                cause=Cause.ON_DEMAND,
                summary=f"The stream is {evidence.stream.mode}: AWS scales its capacity, so it is never resharded. "
                f"{throttled:,.0f} GetRecords calls were throttled; on-demand read capacity follows the write "
                "peak, so a sudden surge of reads, or several polling consumers, can still exceed it.",
                figures=tuple(figures),
                advice=(*self._fan_out_advice(policy, polling), BACKOFF),
            )
        if not evidence.values("read_throttled"):
            return Diagnosis(
                cause=Cause.INSUFFICIENT_EVIDENCE,
                summary=f"CloudWatch returned no {READ_THROTTLED.name} for the last {evidence.window_minutes} minutes; "
                "without these datapoints the remediator does not guess.",
                figures=tuple(figures),
                advice=(BACKOFF,),
            )
        if throttled <= 0:
            return Diagnosis(
                cause=Cause.NOT_REPRODUCED,
                summary=f"No GetRecords call was throttled in the last {evidence.window_minutes} minutes; "
                "nothing to change.",
                figures=tuple(figures),
            )
        reads = f" (reads peaked at {utilisation:.0%} of the shards' 2 MB/s)" if utilisation is not None else ""
        if len(polling) >= 2:
            return Diagnosis(
                cause=COMPETE,
                summary=f"{throttled:,.0f} GetRecords calls were throttled while {len(polling)} polling consumers "
                f"({named}) read the stream{reads}: they share each shard's {limits.SHARD_GET_RECORDS_PER_SECOND} "
                "GetRecords calls per second and 2 MB/s. An enhanced fan-out consumer gives a reader its own 2 MB/s "
                "per shard and takes its calls off the shared budget.",
                figures=tuple(figures),
                proposals=(
                    Proposal(
                        action="enhanced-fan-out",
                        parameters={},
                        reason=f"{len(polling)} polling consumers ({named}) compete for each shard's GetRecords "
                        f"calls; {throttled:,.0f} were throttled",
                    ),
                ),
                advice=(*self._fan_out_advice(policy, polling), BACKOFF),
            )
        if utilisation is not None and utilisation >= policy.capacity.saturated_at:
            return Diagnosis(
                cause=Cause.SATURATED,
                summary=f"{throttled:,.0f} GetRecords calls were throttled and reads peaked at {utilisation:.0%} of "
                f"the {evidence.stream.open_shards} shards' 2 MB/s each (saturated from "
                f"{policy.capacity.saturated_at:.0%}), with {len(polling) or 'no'} polling consumer"
                f"{'' if len(polling) == 1 else 's'} listed: more shards give more read capacity.",
                figures=tuple(figures),
                proposals=(read_reshard(evidence, policy, utilisation),),
                advice=(BACKOFF,),
            )
        if not polling:
            return Diagnosis(
                cause=UNKNOWN_CONSUMERS,
                summary=f"{throttled:,.0f} GetRecords calls were throttled{reads}, but the policy lists no consumer "
                "that polls the stream: the remediator cannot tell who competes for the reads.",
                figures=tuple(figures),
                advice=(
                    Advice(
                        title="List the consumers",
                        detail="Add every reader of the stream to its policy (`function`, `kcl` or `efo`), so the "
                        "remediator can tell polling consumers from enhanced fan-out ones.",
                    ),
                    BACKOFF,
                ),
            )
        kind, name = polling[0]
        summary = (
            f"{throttled:,.0f} GetRecords calls were throttled with one polling consumer, {kind} {name}{reads}: "
            "it alone calls GetRecords too often or reads too much per call (a call may return 10 MB, after which "
            "the shard refuses reads for 5 seconds)."
        )
        if kind == "Lambda function":
            return Diagnosis(
                cause=ONE_CONSUMER,
                summary=summary + " Smaller batches and backoff keep it under the shard's limits.",
                figures=tuple(figures),
                proposals=(
                    Proposal(
                        action="tune-event-source",
                        parameters={"function": name, "goal": "smaller-batches"},
                        reason=f"{throttled:,.0f} throttled GetRecords calls with {name} the only polling consumer; "
                        "a smaller batch size makes each GetRecords call smaller",
                    ),
                ),
                advice=(BACKOFF,),
            )
        return Diagnosis(
            cause=ONE_CONSUMER,
            summary=summary + " The KCL's settings decide how often and how much it reads.",
            figures=tuple(figures),
            advice=(
                Advice(
                    title="Fewer GetRecords calls",
                    detail=f"In {name}'s KCL configuration, raise idleTimeBetweenReadsInMillis (KCL 2.x: "
                    "PollingConfig) so each worker calls GetRecords less often, and lower maxRecords so each "
                    "call returns less.",
                ),
                Advice(
                    title="Or switch it to enhanced fan-out",
                    detail=f"KCL 2.x reads through its own enhanced fan-out consumer with FanOutConfig (it registers "
                    f"a consumer named {name}), with no GetRecords call at all.",
                ),
                BACKOFF,
            ),
        )

    @staticmethod
    def _fan_out_advice(policy: StreamPolicy, polling: list[tuple[str, str]]) -> list[Advice]:
        """How each polling consumer can leave the shared budget (the action moves only opted-in functions)."""
        opted = {c.function for c in policy.lambda_consumers if c.move_to_efo}
        stay = [name for kind, name in polling if kind == "Lambda function" and name not in opted]
        kcl = [name for kind, name in polling if kind == "KCL application"]
        advice = []
        if stay:
            verb = "keeps" if len(stay) == 1 else "keep"
            advice.append(
                Advice(
                    title="Opt Lambda consumers in to enhanced fan-out",
                    detail=f"{', '.join(stay)} {verb} polling: with `move_to_efo: true` on a consumer's entry, the "
                    "remediator moves its mapping onto a consumer of its own (at-least-once: records near the move "
                    "are processed twice).",
                )
            )
        if kcl:
            advice.append(
                Advice(
                    title="Switch KCL applications to enhanced fan-out",
                    detail=f"{', '.join(kcl)}: KCL 2.x reads through its own consumer with FanOutConfig (it "
                    "registers one named after the application), instead of PollingConfig.",
                )
            )
        return advice
