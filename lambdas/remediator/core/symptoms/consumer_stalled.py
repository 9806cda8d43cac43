"""consumer-stalled: records keep arriving, but no consumer reads them.

The iterator-age alarm treats a minute without data as not breaching, and a consumer that stops calling
GetRecords publishes no iterator age: the worst data-loss case, a consumer that stops completely, never
alarms there. This symptom compares what arrives (IncomingRecords) with what every consumer reads:
GetRecords.Records for the polling consumers (Lambda mappings, KCL, anything calling GetRecords) and
SubscribeToShardEvent.Records for each enhanced fan-out consumer the policy lists.

SubscribeToShardEvent.Records (StreamName, ConsumerName) is UNCONFIRMED: aws-facts.md lists the EFO
metrics SubscribeToShardEvent.MillisBehindLatest and SubscribeToShard.RateExceeded, not this one. If AWS
does not publish it, an EFO consumer's reads count as none, and a stream read only by EFO consumers
alarms while they read; its diagnosis then shows each consumer's MillisBehindLatest to tell.
"""

from __future__ import annotations

import shlex
from datetime import datetime
from typing import Any

from pydantic import Field

from remediator.core import limits
from remediator.core.consumers import MAPPING_READ_GRANTS, lambda_mappings
from remediator.core.evidence import INCOMING_RECORDS, Evidence, StreamState
from remediator.core.metrics import Comparison, MetricMath, MetricQuery, MissingData, kinesis_stream_metric
from remediator.core.plan import Advice, Cause, Diagnosis, Figure
from remediator.core.policy import DetectorPolicy, StreamPolicy
from remediator.core.ports import ReadPorts
from remediator.core.registry import REGISTRY
from remediator.core.symptoms.base import AlarmSpec, Symptom
from remediator.core.symptoms.capacity import insufficient
from remediator.core.symptoms.iterator_age import ITERATOR_AGE
from remediator.core.symptoms.lag import (
    HOUR_MS,
    gather_mappings,
    hours_until_expiry,
    logs_command,
    mapping_problems,
    raise_retention,
    reads_normally,
    retention_share,
    retention_share_field,
)

POLLING_READS = kinesis_stream_metric("GetRecords.Records", "Sum")
EFO_READS = kinesis_stream_metric("SubscribeToShardEvent.Records", "Sum")  # UNCONFIRMED (see above)
EFO_LAG = kinesis_stream_metric("SubscribeToShardEvent.MillisBehindLatest", "Maximum")
# The alarm reads IncomingRecords and GetRecords.Records, then one metric per EFO consumer, within
# CloudWatch's metrics per metric-math alarm (limits.MAX_ALARM_METRICS, UNCONFIRMED). EFO consumers
# beyond that count as not reading in the alarm (never in the diagnosis, which reads each one).
MAX_EFO_IN_ALARM = limits.MAX_ALARM_METRICS - 2
MINUTE_MS = 60_000
STOPPED = "consumers-stopped"


class ConsumerStalledDetector(DetectorPolicy):
    evaluation_periods: int = Field(5, ge=1, le=60, description="Minutes the alarm looks back over.")
    datapoints_to_alarm: int = Field(
        5,
        ge=1,
        le=60,
        description="Minutes with records arriving and none read needed to alarm (by default every minute looked "
        "at: a consumer that pauses for a minute, say while restarting, has not stalled).",
    )
    retention_share: float = retention_share_field()


def _positive_minutes(values: tuple[float, ...]) -> int:
    return sum(1 for value in values if value > 0)


@REGISTRY.symptom
class ConsumerStalled(Symptom[ConsumerStalledDetector]):
    id = "consumer-stalled"
    title = "consumers stopped reading"
    meaning = (
        f"Records arrive ({INCOMING_RECORDS.name}) but no consumer reads them ({POLLING_READS.name}, and "
        f"{EFO_READS.name} for each enhanced fan-out consumer): unread records expire at the end of the "
        "retention period and are lost."
    )
    detector_schema = ConsumerStalledDetector
    read_grants = MAPPING_READ_GRANTS

    def alarms(self, policy: StreamPolicy, detector: ConsumerStalledDetector) -> list[AlarmSpec]:
        stream = policy.name
        inputs = {"incoming": INCOMING_RECORDS.on(StreamName=stream), "reads": POLLING_READS.on(StreamName=stream)}
        for index, consumer in enumerate(policy.efo_consumers[:MAX_EFO_IN_ALARM]):
            inputs[f"efo{index}"] = EFO_READS.on(StreamName=stream, ConsumerName=consumer.efo)
        read = " + ".join(f"FILL({name}, 0)" for name in inputs if name != "incoming")
        # 1 in a minute when records arrived and no consumer read one; FILL turns a reader's missing
        # datapoint (no call at all, the stall itself) into 0.
        metric = MetricMath(
            expression=f"IF(FILL(incoming, 0) > 0 AND ({read}) == 0, 1, 0)",
            inputs=inputs,
            label="records arrived and none was read",
        )
        # Missing data: not breaching. A minute with no value at all has no IncomingRecords either, so
        # nothing waited to be read; a stall always yields a value, because records do arrive.
        return [
            self.alarm(
                detector,
                metric,
                1,
                missing_data=MissingData.NOT_BREACHING,
                comparison=Comparison.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            )
        ]

    def evidence_queries(self, policy: StreamPolicy) -> tuple[MetricQuery, ...]:
        stream = policy.name
        own = [
            MetricQuery("polling_reads", POLLING_READS.on(StreamName=stream)),
            MetricQuery("iterator_age_ms", ITERATOR_AGE.on(StreamName=stream)),
        ]
        for index, consumer in enumerate(policy.efo_consumers):
            own += [
                MetricQuery(f"efo_reads_{index}", EFO_READS.on(StreamName=stream, ConsumerName=consumer.efo)),
                MetricQuery(f"efo_lag_ms_{index}", EFO_LAG.on(StreamName=stream, ConsumerName=consumer.efo)),
            ]
        return (*super().evidence_queries(policy), *own)

    def gather(self, policy: StreamPolicy, stream: StreamState, aws: ReadPorts, now: datetime) -> dict[str, Any]:
        # The Lambda consumers' mapping state, last result and concurrency: why a function stopped reading.
        return gather_mappings(policy, stream, aws)

    def diagnose(self, evidence: Evidence, policy: StreamPolicy) -> Diagnosis:
        detector = self.detector(policy)
        incoming = evidence.values("incoming_records")
        window = evidence.window_minutes
        figures = [Figure(name="records written", value=sum(incoming), unit="records")]
        if not incoming:
            early = insufficient(evidence, figures, missing=INCOMING_RECORDS.name)
            assert early is not None
            return early
        written = sum(incoming)
        efo = policy.efo_consumers
        polling_read = evidence.total("polling_reads")
        efo_read = [evidence.total(f"efo_reads_{index}") for index in range(len(efo))]
        figures.append(Figure(name="records read by polling consumers", value=polling_read, unit="records"))
        figures += [
            Figure(name=f"records read by {consumer.efo}", value=count, unit="records")
            for consumer, count in zip(efo, efo_read, strict=True)
        ]
        if written <= 0:
            return Diagnosis(
                cause=Cause.NOT_REPRODUCED,
                summary=f"No records arrived in the last {window} minutes, so none waits to be read.",
                figures=tuple(figures),
            )
        # Series hold no timestamps, so the minutes are counted: minutes with records arriving, less the
        # minutes in which some consumer read (the most any one reader had).
        reading = max(
            [_positive_minutes(evidence.values("polling_reads"))]
            + [_positive_minutes(evidence.values(f"efo_reads_{index}")) for index in range(len(efo))]
        )
        stalled = max(_positive_minutes(incoming) - reading, 0)
        if stalled == 0:
            return Diagnosis(
                cause=Cause.NOT_REPRODUCED,
                summary=f"Consumers read {sum([polling_read, *efo_read]):,.0f} records in the last {window} minutes, "
                f"in every minute that records arrived ({written:,.0f}): they read again.",
                figures=tuple(figures),
            )
        # The oldest unread record: how far behind the consumers were when they last read, plus the time
        # since. The window shows at most `window` minutes of the stall, so this is a lower bound.
        lags = [evidence.values("iterator_age_ms")] + [evidence.values(f"efo_lag_ms_{i}") for i in range(len(efo))]
        lag_before = max((series[-1] for series in lags if series), default=0.0)
        oldest = lag_before + stalled * MINUTE_MS
        share = retention_share(evidence, oldest)
        left = hours_until_expiry(evidence, oldest)
        figures += [
            Figure(name="minutes with records and no reads", value=stalled, unit="min"),
            Figure(name="lag when consumers last read", value=lag_before / 1000, unit="s"),
            Figure(name="oldest unread record (at least)", value=oldest / 1000, unit="s"),
            Figure(name="oldest unread record / retention", value=100 * share, unit="%"),
            Figure(name="retention period", value=evidence.stream.retention_hours, unit="h"),
        ]
        retention = raise_retention(
            evidence, oldest, detector.retention_share, "detectors.consumer_stalled.retention_share"
        )
        problems = mapping_problems(evidence, policy)
        named = ", ".join(c.name for c in policy.consumers) or "none listed in the policy"
        summary = (
            f"{written:,.0f} records arrived in the last {window} minutes, but in {stalled} of those minutes no "
            f"consumer read any (consumers: {named}). The oldest unread record is at least "
            f"{oldest / HOUR_MS:,.1f} h old, {share:.0%} of the {evidence.stream.retention_hours} h retention: "
            f"if no consumer reads, records start to expire in about {left:,.1f} h."
        )
        if problems:
            summary += " The facts show: " + "; ".join(a.title for a in problems) + "."
        advice = [*problems, *self._steps(evidence, policy)]
        if retention is None and evidence.stream.retention_hours < limits.MAX_RETENTION_HOURS:
            advice.append(self._before_expiry(evidence, left))
        return Diagnosis(
            cause=STOPPED,
            summary=summary,
            figures=tuple(figures),
            proposals=(retention,) if retention else (),
            advice=tuple(advice),
        )

    @staticmethod
    def _steps(evidence: Evidence, policy: StreamPolicy) -> list[Advice]:
        """Where to look, consumer by consumer."""
        arn = evidence.stream.arn
        steps = []
        for mapping in lambda_mappings(evidence):
            if not reads_normally(mapping):
                continue  # mapping_problems already names what is wrong with it
            result = mapping.last_processing_result or "not reported"
            steps.append(
                Advice(
                    title=f"Check {mapping.function}",
                    detail=f"Its mapping is {mapping.state} (last processing result: {result}). Read the function's "
                    "errors, throttles and logs: a batch that keeps failing is retried and holds its shard.",
                    cli_command=logs_command(mapping.function),
                )
            )
        for consumer in policy.efo_consumers:
            steps.append(
                Advice(
                    title=f"Check {consumer.efo}",
                    detail=f"Check that the application of the enhanced fan-out consumer {consumer.efo} runs and "
                    "renews its SubscribeToShard subscriptions (each lasts up to 5 minutes), and read its logs.",
                    cli_command=shlex.join(
                        [
                            "aws",
                            "kinesis",
                            "describe-stream-consumer",
                            "--stream-arn",
                            arn,
                            "--consumer-name",
                            consumer.efo,
                        ]
                    ),
                )
            )
        for app in policy.kcl_applications:
            steps.append(
                Advice(
                    title=f"Check {app.kcl}",
                    detail=f"Check that the workers of the KCL application {app.kcl} run and hold the leases in "
                    f"{app.lease_table_name} (a worker that lost its leases, or a throttled lease table, stops "
                    "reading), and read their logs.",
                    cli_command=shlex.join(
                        ["aws", "dynamodb", "scan", "--table-name", app.lease_table_name, "--max-items", "50"]
                    ),
                )
            )
        if not policy.consumers:
            steps.append(
                Advice(
                    title="List the stream's consumers",
                    detail="The policy lists no consumer, so the remediator cannot say which one stopped. Check the "
                    "applications that read this stream (their logs and errors), and list them under `consumers`.",
                )
            )
        return steps

    @staticmethod
    def _before_expiry(evidence: Evidence, left_hours: float) -> Advice:
        current = evidence.stream.retention_hours
        command = [
            "aws", "kinesis", "increase-stream-retention-period",
            "--stream-arn", evidence.stream.arn,
            "--retention-period-hours", str(min(current * 2, limits.MAX_RETENTION_HOURS)),
        ]  # fmt: skip
        return Advice(
            title="Before records expire",
            detail=f"If the consumers stay stopped, the first unread records expire in about {left_hours:,.1f} h "
            f"(retention {current} h). If the fix may take longer, raise the retention first.",
            cli_command=shlex.join(command),
        )
