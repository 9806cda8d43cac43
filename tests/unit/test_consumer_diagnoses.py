"""iterator-age choosing between remedies from the evidence, and consumer-stalled: alarm and diagnoses.

The issue's examples: lag with idle shards and a Lambda consumer -> tune-event-source, not a reshard; lag
with saturated shards -> reshard; lag at half the retention -> raise-retention as well as the fix for the lag.
"""

from __future__ import annotations

from typing import Any

import pytest
from remediator.core.consumers import LAMBDA_MAPPINGS, MappingFacts
from remediator.core.evidence import Evidence, StreamState
from remediator.core.history import ActionHistory
from remediator.core.metrics import Comparison, MetricMath, MissingData
from remediator.core.plan import Advice, Cause, Diagnosis, Plan, Proposal
from remediator.core.planner import make_plan
from remediator.core.policy import StreamPolicy
from remediator.core.ports import DeclaredOnly, UndeclaredCall
from remediator.core.registry import REGISTRY
from remediator.core.symptoms.consumer_stalled import MAX_EFO_IN_ALARM
from remediator.core.symptoms.lag import MAPPINGS_UNREADABLE, gather_mappings

from tests.fakes import NOW, evidence, policy, stream_arn

AGE = REGISTRY.symptoms["iterator-age"]
STALLED = REGISTRY.symptoms["consumer-stalled"]
ARN = stream_arn("orders")
HOUR_MS = 3_600_000
IDLE = {"shards": 2, "bytes_per_second": 200_000}  # 10 % of 2 shards
SATURATED = {"shards": 2, "bytes_per_second": 1_800_000}  # 90 % of 2 shards


def mapping(function: str, **fields: Any) -> MappingFacts:
    values: dict[str, Any] = {
        "uuid": f"uuid-{function}",
        "state": "Enabled",
        "source_arn": ARN,
        "batch_size": 100,
        "parallelization_factor": 1,
        "last_processing_result": "OK",
        "function_timeout_seconds": 60,
        "reserved_concurrency": None,
    }
    return MappingFacts(function=function, **(values | fields))


def with_mappings(ev: Evidence, *mappings: MappingFacts) -> Evidence:
    return ev.model_copy(update={"facts": {LAMBDA_MAPPINGS: [m.model_dump(mode="json") for m in mappings]}})


def plan(symptom: str, ev: Evidence, p: StreamPolicy) -> Plan:
    return make_plan(alarm_name="a", symptom=symptom, policy=p, evidence=ev, history=ActionHistory(), now=NOW)


def proposed(diagnosis: Diagnosis) -> list[tuple[str, dict[str, Any]]]:
    return [(p.action, p.parameters) for p in diagnosis.proposals]


LAMBDA = [{"function": "orders-processor"}]


# iterator-age: the issue's examples ------------------------------------------------------------------------
def test_lag_with_idle_shards_and_a_lambda_consumer_tunes_the_mapping_not_a_reshard() -> None:
    # Given consumers 2 minutes behind on shards at 10 %, read by a Lambda function whose mapping is Enabled
    ev = with_mappings(evidence(**IDLE, iterator_age_ms=120_000), mapping("orders-processor"))
    p = policy(consumers=LAMBDA)
    # When diagnosed
    diagnosis = AGE.diagnose(ev, p)
    # Then its mapping is tuned for throughput, and nothing is resharded
    assert diagnosis.cause == Cause.SLOW_CONSUMER
    assert diagnosis.proposals == (
        Proposal(
            action="tune-event-source",
            parameters={"function": "orders-processor", "goal": "throughput"},
            reason="orders-processor reads with batch size 100 and parallelization factor 1 while the shards are "
            "not saturated (writes peaked at 10% of capacity)",
        ),
    )
    assert diagnosis.summary == (
        "Consumers fall behind (max iterator age 120 s) although writes peaked at only 10% of capacity: resharding "
        "would not help. The Lambda consumer(s) orders-processor poll the stream; tuning their mappings for "
        "throughput (parallelization factor, then batch size) gives them more parallel work."
    )
    assert diagnosis.advice == ()
    shown = {f.name: f.value for f in diagnosis.figures}
    assert (shown["orders-processor: batch size"], shown["orders-processor: parallelization factor"]) == (100, 1)
    # And the plan holds that one step
    assert [s.action for s in plan("iterator-age", ev, p).steps] == ["tune-event-source"]


def test_lag_with_saturated_shards_reshards_even_with_a_lambda_consumer() -> None:
    # Given the same Lambda consumer, but writes at 90 % of the shards
    ev = with_mappings(evidence(**SATURATED, iterator_age_ms=120_000), mapping("orders-processor"))
    # When diagnosed
    diagnosis = AGE.diagnose(ev, policy(consumers=LAMBDA))
    # Then more shards are the fix, not the mapping
    assert diagnosis.cause == Cause.SATURATED
    assert proposed(diagnosis) == [("reshard", {"desired_shards": 3})]


@pytest.mark.parametrize(
    ("load", "fix"),
    [
        pytest.param(IDLE, ("tune-event-source", {"function": "orders-processor", "goal": "throughput"}), id="tune"),
        pytest.param(SATURATED, ("reshard", {"desired_shards": 3}), id="reshard"),
    ],
)
def test_lag_at_half_the_retention_raises_it_as_well_as_the_fix_for_the_lag(
    load: dict[str, Any], fix: tuple[str, dict[str, Any]]
) -> None:
    # Given the oldest unread record at half of the 24 h retention
    ev = with_mappings(evidence(**load, iterator_age_ms=12 * HOUR_MS, retention_hours=24), mapping("orders-processor"))
    p = policy(consumers=LAMBDA)
    # When diagnosed
    diagnosis = AGE.diagnose(ev, p)
    # Then retention is raised first, and the lag gets its fix as well
    assert proposed(diagnosis) == [("raise-retention", {"oldest_record_age_ms": 12 * HOUR_MS}), fix]
    # And both become allowed steps: 24 -> 48 h, then the fix
    steps = plan("iterator-age", ev, p).steps
    assert [s.action for s in steps] == ["raise-retention", fix[0]]
    assert steps[0].summary == "raise retention 24 -> 48 h (+$29.20/month)"
    assert all(s.allowed for s in steps), [s.blocking_reasons for s in steps]


def test_lag_with_idle_shards_and_no_lambda_consumer_gets_advice_as_before() -> None:
    # Given a KCL application only
    ev = evidence(**IDLE, iterator_age_ms=120_000)
    diagnosis = AGE.diagnose(ev, policy(consumers=[{"kcl": "orders-kcl"}]))
    # Then there is nothing to tune: the advice to speed up the consumer, naming it
    assert diagnosis.cause == Cause.SLOW_CONSUMER
    assert diagnosis.proposals == ()
    assert [a.title for a in diagnosis.advice] == ["Speed up the consumer"]
    assert "orders-kcl" in diagnosis.advice[0].detail


# iterator-age: which Lambda consumers are tuned ------------------------------------------------------------
@pytest.mark.parametrize(
    ("facts", "advice"),
    [
        pytest.param(
            mapping("orders-processor", state="Disabled"),
            Advice(
                title="Mapping of orders-processor is Disabled",
                detail=f"The mapping uuid-orders-processor of orders-processor on {ARN} is Disabled: it reads "
                "nothing. Enable it once the reason it was disabled is fixed.",
                cli_command="aws lambda update-event-source-mapping --uuid uuid-orders-processor --enabled",
            ),
            id="disabled mapping",
        ),
        pytest.param(
            MappingFacts(function="orders-processor", function_timeout_seconds=60),
            Advice(
                title="No mapping for orders-processor",
                detail="orders-processor has no event-source mapping on this stream, so it reads nothing from it: "
                "create one, or correct the policy's consumers.",
                cli_command="aws lambda list-event-source-mappings --function-name orders-processor",
            ),
            id="no mapping on the stream",
        ),
        pytest.param(
            mapping("orders-processor", last_processing_result="PROBLEM: Function call failed"),
            Advice(
                title="orders-processor fails its batches",
                detail="The mapping's last processing result is 'PROBLEM: Function call failed'. A batch that keeps "
                "failing is retried and holds its shard: read the function's errors (its timeout is 60 s).",
                cli_command="aws logs tail /aws/lambda/orders-processor --since 30m",
            ),
            id="failing batches (more throughput would not help)",
        ),
        pytest.param(
            mapping("orders-processor", source_arn=f"{ARN}/consumer/fast:1700000000"),
            None,
            id="mapping on an EFO consumer (not what GetRecords' iterator age measures)",
        ),
    ],
)
def test_only_a_mapping_that_reads_normally_from_the_stream_is_tuned(
    facts: MappingFacts, advice: Advice | None
) -> None:
    # Given lag on idle shards and a Lambda consumer whose mapping does not poll the stream
    ev = with_mappings(evidence(**IDLE, iterator_age_ms=120_000), facts)
    # When diagnosed
    diagnosis = AGE.diagnose(ev, policy(consumers=LAMBDA))
    # Then nothing is tuned; the advice says what the facts show, then how to speed up the consumer
    assert diagnosis.proposals == ()
    speed_up = Advice(
        title="Speed up the consumer",
        detail="Optimise the record processing of orders-processor, or give it more capacity (for Lambda: a larger "
        "batch size or parallelization factor).",
    )
    assert list(diagnosis.advice) == [*([advice] if advice else []), speed_up]


def test_every_lagging_function_is_tuned_and_a_kcl_application_is_named() -> None:
    # Given two Lambda consumers polling the stream, and a KCL application (the iterator age is the oldest of all)
    ev = with_mappings(
        evidence(**IDLE, iterator_age_ms=120_000),
        mapping("orders-processor"),
        mapping("audit", batch_size=None, parallelization_factor=None),
    )
    p = policy(consumers=[*LAMBDA, {"function": "audit"}, {"kcl": "orders-kcl"}])
    # When diagnosed
    diagnosis = AGE.diagnose(ev, p)
    # Then both functions are tuned, and the advice names the KCL application as a possible laggard
    assert [p.parameters["function"] for p in diagnosis.proposals] == ["orders-processor", "audit"]
    assert diagnosis.proposals[1].reason.startswith(
        "audit reads with batch size AWS's default and parallelization factor AWS's default while"
    )
    assert [a.title for a in diagnosis.advice] == ["Speed up the consumer"]
    assert "orders-kcl" in diagnosis.advice[0].detail
    assert "orders-processor" not in diagnosis.advice[0].detail


def test_unreadable_mapping_facts_leave_the_other_remedies() -> None:
    # Given the mapping facts could not be read, and the lag is at 75 % of the retention on saturated shards
    ev = evidence(**SATURATED, iterator_age_ms=18 * HOUR_MS)
    ev = ev.model_copy(update={"facts": {MAPPINGS_UNREADABLE: "ResourceNotFoundException: Function not found"}})
    # When diagnosed
    diagnosis = AGE.diagnose(ev, policy(consumers=LAMBDA))
    # Then retention and shards are still raised, and the advice says what could not be read
    assert [p.action for p in diagnosis.proposals] == ["raise-retention", "reshard"]
    assert diagnosis.advice == (
        Advice(
            title="Check the Lambda consumers",
            detail="The event-source mappings of orders-processor could not be read (ResourceNotFoundException: "
            "Function not found); check that the functions exist under these names and read this stream.",
        ),
    )


# gather: the mapping facts, read through the symptom's declared reads ------------------------------------------
class Ports:
    def __init__(self, error: Exception | None = None) -> None:
        self.error, self.calls = error, []  # type: ignore[var-annotated]

    def service(self, name: str) -> Any:
        ports = self

        class Port:
            def call(self, operation: str, **parameters: Any) -> dict[str, Any]:
                ports.calls.append(operation)
                if ports.error:
                    raise ports.error
                if operation == "ListEventSourceMappings":
                    return {"EventSourceMappings": [{"UUID": "u1", "State": "Enabled", "EventSourceArn": ARN}]}
                return {"Timeout": 30}

        return Port()


STATE = StreamState(name="orders", arn=ARN, status="ACTIVE", mode="PROVISIONED", open_shards=2, retention_hours=24)


@pytest.mark.parametrize("symptom", [AGE, STALLED], ids=["iterator-age", "consumer-stalled"])
def test_gather_reads_the_mapping_facts_through_declared_reads(symptom: Any) -> None:
    ports = Ports()
    view = DeclaredOnly(ports, symptom.read_iam_actions, symptom.id, read_only=True)
    facts = symptom.gather(policy(consumers=LAMBDA), STATE, view, NOW)
    assert ports.calls == ["ListEventSourceMappings", "GetFunctionConfiguration", "GetFunctionConcurrency"]
    (read,) = facts[LAMBDA_MAPPINGS]
    assert (read["uuid"], read["state"], read["function_timeout_seconds"]) == ("u1", "Enabled", 30)


def test_gather_reads_nothing_without_a_lambda_consumer() -> None:
    ports = Ports()
    assert AGE.gather(policy(consumers=[{"kcl": "app"}]), STATE, ports, NOW) == {}
    assert ports.calls == []


def test_gather_turns_a_failed_read_into_a_fact_but_not_an_undeclared_call() -> None:
    # A function AWS does not know must not stop the diagnosis of the lag
    facts = gather_mappings(policy(consumers=LAMBDA), STATE, Ports(LookupError("Function not found")))
    assert facts == {MAPPINGS_UNREADABLE: "LookupError: Function not found"}
    # A call outside the declared reads is a bug, and is raised
    undeclared = DeclaredOnly(Ports(), frozenset(), "iterator-age", read_only=True)
    with pytest.raises(UndeclaredCall):
        gather_mappings(policy(consumers=LAMBDA), STATE, undeclared)


# consumer-stalled: the alarm --------------------------------------------------------------------------------
def test_consumer_stalled_alarm_compares_incoming_records_with_every_read() -> None:
    # Given a stream with two enhanced fan-out consumers
    p = policy(consumers=[{"function": "f"}, {"efo": "analytics"}, {"efo": "audit.v2"}])
    # When the symptom declares its alarm
    (spec,) = STALLED.alarms(p, STALLED.detector(p))
    # Then it is metric math: 1 in a minute when records arrived and no consumer read one
    assert isinstance(spec.metric, MetricMath)
    assert spec.metric.expression == (
        "IF(FILL(incoming, 0) > 0 AND (FILL(reads, 0) + FILL(efo0, 0) + FILL(efo1, 0)) == 0, 1, 0)"
    )
    inputs = {name: (m.name, m.statistic, m.dimension_map) for name, m in spec.metric.inputs.items()}
    assert inputs == {
        "incoming": ("IncomingRecords", "Sum", {"StreamName": "orders"}),
        "reads": ("GetRecords.Records", "Sum", {"StreamName": "orders"}),
        "efo0": ("SubscribeToShardEvent.Records", "Sum", {"StreamName": "orders", "ConsumerName": "analytics"}),
        "efo1": ("SubscribeToShardEvent.Records", "Sum", {"StreamName": "orders", "ConsumerName": "audit.v2"}),
    }
    # And it alarms after every one of 5 minutes, a minute without data counting as not breaching
    assert (spec.threshold, spec.comparison, spec.missing_data) == (
        1,
        Comparison.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        MissingData.NOT_BREACHING,
    )
    assert (spec.evaluation_periods, spec.datapoints_to_alarm) == (5, 5)


def test_consumer_stalled_alarm_keeps_within_cloudwatchs_metrics_per_alarm() -> None:
    p = policy(consumers=[{"efo": f"c{i}"} for i in range(12)])
    (spec,) = STALLED.alarms(p, STALLED.detector(p))
    assert isinstance(spec.metric, MetricMath)
    assert len(spec.metric.inputs) == 2 + MAX_EFO_IN_ALARM == 10
    # The diagnosis still reads every consumer
    keys = [q.key for q in STALLED.evidence_queries(p)]
    assert {f"efo_reads_{i}" for i in range(12)} <= set(keys)


# consumer-stalled: diagnoses ----------------------------------------------------------------------------------
def stalled_evidence(
    *,
    incoming: list[float],
    polling: list[float],
    iterator_age_ms: list[float] = (),  # type: ignore[assignment]
    retention_hours: int = 24,
    extra: dict[str, tuple[float, ...]] | None = None,
) -> Evidence:
    base = evidence(shards=2, retention_hours=retention_hours)
    series = {
        "incoming_bytes": tuple(v * 1000 for v in incoming),
        "incoming_records": tuple(incoming),
        "polling_reads": tuple(polling),
        "iterator_age_ms": tuple(iterator_age_ms),
        **(extra or {}),
    }
    return base.model_copy(update={"series": series})


# 10 minutes read, then 5 minutes with records and no reads (the alarm's 5 of 5)
TEN_THEN_STOP = {"incoming": [600.0] * 15, "polling": [600.0] * 10}


def test_a_stopped_lambda_consumer_is_named_with_what_its_mapping_shows() -> None:
    # Given records arriving for 15 minutes, read for 10, and a Lambda consumer whose mapping is Disabled
    ev = with_mappings(
        stalled_evidence(**TEN_THEN_STOP, iterator_age_ms=[1_000.0] * 10),
        mapping("orders-processor", state="Disabled"),
    )
    # When diagnosed
    diagnosis = STALLED.diagnose(ev, policy(consumers=LAMBDA))
    # Then the consumers stopped, with the figures, the data-loss clock and what the facts show
    assert diagnosis.cause == "consumers-stopped"
    assert diagnosis.summary == (
        "9,000 records arrived in the last 15 minutes, but in 5 of those minutes no consumer read any (consumers: "
        "orders-processor). The oldest unread record is at least 0.1 h old, 0% of the 24 h retention: if no "
        "consumer reads, records start to expire in about 23.9 h. The facts show: Mapping of orders-processor is "
        "Disabled."
    )
    shown = {f.name: (f.value, f.unit) for f in diagnosis.figures}
    assert shown["records written"] == (9_000, "records")
    assert shown["records read by polling consumers"] == (6_000, "records")
    assert shown["minutes with records and no reads"] == (5, "min")
    assert shown["oldest unread record (at least)"] == (301.0, "s")
    # And no retention raise yet: the advice says when records expire and how to raise it by hand
    assert diagnosis.proposals == ()
    assert [a.title for a in diagnosis.advice] == ["Mapping of orders-processor is Disabled", "Before records expire"]
    assert diagnosis.advice[-1].cli_command == (
        f"aws kinesis increase-stream-retention-period --stream-arn {ARN} --retention-period-hours 48"
    )


def test_a_stall_that_threatens_data_raises_retention() -> None:
    # Given consumers already 12 h behind on 24 h retention when they stopped
    ev = stalled_evidence(**TEN_THEN_STOP, iterator_age_ms=[12 * HOUR_MS] * 10)
    # When diagnosed
    diagnosis = STALLED.diagnose(ev, policy())
    # Then retention is raised for the oldest unread record (the lag then, plus the 5 minutes since)
    assert diagnosis.proposals == (
        Proposal(
            action="raise-retention",
            parameters={"oldest_record_age_ms": 12 * HOUR_MS + 5 * 60_000},
            reason="the oldest unread record is 50% of the way to expiry (retention 24 h; "
            "detectors.consumer_stalled.retention_share is 50%)",
        ),
    )
    # And since no consumer is listed, the advice says to list them
    assert [a.title for a in diagnosis.advice] == ["List the stream's consumers"]


def test_each_kind_of_consumer_gets_its_own_steps() -> None:
    # Given a Lambda consumer whose mapping looks fine, an EFO consumer and a KCL application, all stopped
    ev = with_mappings(
        stalled_evidence(**TEN_THEN_STOP, extra={"efo_reads_0": (5.0,) * 10, "efo_lag_ms_0": (2_000.0,) * 10}),
        mapping("orders-processor", reserved_concurrency=0),
    )
    p = policy(consumers=[*LAMBDA, {"efo": "analytics"}, {"kcl": "orders-kcl", "lease_table": "orders-leases"}])
    # When diagnosed
    diagnosis = STALLED.diagnose(ev, p)
    # Then each gets concrete steps with the command to start from
    commands = {a.title: a.cli_command for a in diagnosis.advice}
    assert commands == {
        "orders-processor has reserved concurrency 0": "aws lambda delete-function-concurrency --function-name "
        "orders-processor",
        "Check analytics": f"aws kinesis describe-stream-consumer --stream-arn {ARN} --consumer-name analytics",
        "Check orders-kcl": "aws dynamodb scan --table-name orders-leases --max-items 50",
        "Before records expire": f"aws kinesis increase-stream-retention-period --stream-arn {ARN} "
        "--retention-period-hours 48",
    }
    # And the EFO consumer's reads and lag count: the oldest unread record starts from its lag
    shown = {f.name: f.value for f in diagnosis.figures}
    assert shown["records read by analytics"] == 50
    assert shown["lag when consumers last read"] == 2


def test_a_failing_lambda_is_pointed_to_its_logs() -> None:
    ev = with_mappings(
        stalled_evidence(**TEN_THEN_STOP),
        mapping("orders-processor", last_processing_result="PROBLEM: Function call failed"),
    )
    (problem, *_) = STALLED.diagnose(ev, policy(consumers=LAMBDA)).advice
    assert problem == Advice(
        title="orders-processor fails its batches",
        detail="The mapping's last processing result is 'PROBLEM: Function call failed'. A batch that keeps failing "
        "is retried and holds its shard: read the function's errors (its timeout is 60 s).",
        cli_command="aws logs tail /aws/lambda/orders-processor --since 30m",
    )


@pytest.mark.parametrize("result", ["OK", "No records processed"])
def test_a_healthy_looking_lambda_consumer_is_still_checked(result: str) -> None:
    ev = with_mappings(stalled_evidence(**TEN_THEN_STOP), mapping("orders-processor", last_processing_result=result))
    advice = STALLED.diagnose(ev, policy(consumers=LAMBDA)).advice
    assert advice[0] == Advice(
        title="Check orders-processor",
        detail=f"Its mapping is Enabled (last processing result: {result}). Read the function's errors, throttles "
        "and logs: a batch that keeps failing is retried and holds its shard.",
        cli_command="aws logs tail /aws/lambda/orders-processor --since 30m",
    )


@pytest.mark.parametrize(
    ("incoming", "polling", "cause", "summary"),
    [
        pytest.param(
            [600.0] * 15,
            [600.0] * 15,
            Cause.NOT_REPRODUCED,
            "Consumers read 9,000 records in the last 15 minutes, in every minute that records arrived (9,000): "
            "they read again.",
            id="reading in every minute",
        ),
        pytest.param(
            [600.0] * 10 + [0.0] * 5,
            [600.0] * 10,
            Cause.NOT_REPRODUCED,
            "Consumers read 6,000 records in the last 15 minutes, in every minute that records arrived (6,000): "
            "they read again.",
            id="no reads only while no records arrived",
        ),
        pytest.param(
            [0.0] * 15,
            [],
            Cause.NOT_REPRODUCED,
            "No records arrived in the last 15 minutes, so none waits to be read.",
            id="no records arrived",
        ),
        pytest.param(
            [],
            [],
            Cause.INSUFFICIENT_EVIDENCE,
            "CloudWatch returned no IncomingRecords for the last 15 minutes; without these datapoints the "
            "remediator does not guess.",
            id="no IncomingRecords",
        ),
    ],
)
def test_consumer_stalled_without_a_stall(
    incoming: list[float], polling: list[float], cause: str, summary: str
) -> None:
    diagnosis = STALLED.diagnose(stalled_evidence(incoming=incoming, polling=polling), policy())
    assert (diagnosis.cause, diagnosis.summary, diagnosis.proposals) == (cause, summary, ())


def test_a_stall_over_the_whole_window_is_a_lower_bound() -> None:
    # Given no reads at all in the window, and no iterator age (the consumer stopped before it)
    ev = stalled_evidence(incoming=[600.0] * 15, polling=[])
    shown = {f.name: f.value for f in STALLED.diagnose(ev, policy()).figures}
    # Then the oldest unread record is at least the window old
    assert shown["minutes with records and no reads"] == 15
    assert shown["oldest unread record (at least)"] == 900


def test_at_the_maximum_retention_no_manual_raise_is_advised() -> None:
    ev = stalled_evidence(**TEN_THEN_STOP, retention_hours=8_760)
    titles = [a.title for a in STALLED.diagnose(ev, policy()).advice]
    assert "Before records expire" not in titles
