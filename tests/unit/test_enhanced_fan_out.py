"""enhanced-fan-out: how a proposal becomes one step (what to register, which function moves, from where), the
guardrails (AWS's 20 consumers per stream and 5 in CREATING, the policy's max_consumers), the move itself
against scripted AWS answers, and how people read the step (summary, changes, CLI)."""

from __future__ import annotations

import shlex
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from remediator.core.actions import enhanced_fan_out
from remediator.core.actions.base import ValidationContext
from remediator.core.actions.enhanced_fan_out import MoveIncomplete
from remediator.core.consumers import LAMBDA_MAPPINGS
from remediator.core.evidence import Evidence
from remediator.core.history import ActionHistory
from remediator.core.iam import permissions
from remediator.core.plan import PlannedStep, Proposal
from remediator.core.policy import StreamPolicy
from remediator.core.ports import DeclaredOnly
from remediator.core.registry import REGISTRY
from remediator.core.stream_consumers import STREAM_CONSUMERS, read_stream_consumers

from tests.fakes import NOW, evidence, policy, stream_arn
from tests.integration.contract import arn

EFO = REGISTRY.actions["enhanced-fan-out"]
ARN = stream_arn("orders")
PROPOSAL = Proposal(action="enhanced-fan-out", parameters={}, reason="3 polling consumers compete")
WINDOW_S = 15 * 60


def consumer_fact(name: str, status: str = "ACTIVE") -> dict[str, str]:
    return {"name": name, "arn": f"{ARN}/consumer/{name}:1700000000", "status": status}


def mapping_fact(function: str, *, uuid: str = "old-1", source: str = ARN, state: str = "Enabled") -> dict[str, Any]:
    return {"function": function, "uuid": uuid, "state": state, "source_arn": source}


def efo_evidence(
    *,
    registered: list[dict[str, str]] | None = None,
    mappings: list[dict[str, Any]] | None = None,
    age_ms: float | None = 120_000,
    retention_hours: int = 24,
) -> Evidence:
    facts: dict[str, Any] = {}
    if registered is not None:
        facts[STREAM_CONSUMERS] = registered
    if mappings is not None:
        facts[LAMBDA_MAPPINGS] = mappings
    return evidence(iterator_age_ms=age_ms, retention_hours=retention_hours).model_copy(update={"facts": facts})


def efo_policy(block: dict[str, Any] | None = None, **consumers: bool) -> StreamPolicy:
    """A policy whose Lambda consumers are the keywords (value: move_to_efo), plus a KCL application."""
    entries: list[dict[str, Any]] = [{"function": f, "move_to_efo": move} for f, move in consumers.items()]
    raw: dict[str, Any] = {"consumers": [*entries, {"kcl": "orders-kcl"}]}
    if block is not None:
        return policy(**raw, actions={"reshard": {"max_shards": 16}, "enhanced_fan_out": block})
    return policy(**raw)


def context(p: StreamPolicy, ev: Evidence) -> ValidationContext:
    return ValidationContext(policy=p, evidence=ev, history=ActionHistory(), now=NOW)


def shaped(p: StreamPolicy, ev: Evidence) -> Proposal:
    return EFO.shape(PROPOSAL, context(p, ev))


def step_of(parameters: dict[str, Any]) -> PlannedStep:
    return PlannedStep(
        action=EFO.id,
        stream="orders",
        stream_arn=ARN,
        parameters=parameters,
        reason="test",
        summary=EFO.summary(parameters),
        cli_command=EFO.cli_command(ARN, parameters),
    )


def verdicts(p: StreamPolicy, ev: Evidence) -> dict[str, tuple[bool, str]]:
    step = step_of(shaped(p, ev).parameters)
    return {v.name: (v.passed, v.detail) for v in EFO.checks(step, context(p, ev))}


START = (NOW - timedelta(seconds=120 + WINDOW_S)).isoformat()


# --- shape ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("p", "ev", "parameters", "reason_tail"),
    [
        pytest.param(
            efo_policy(processor=True),
            efo_evidence(registered=[consumer_fact("x"), consumer_fact("y")], mappings=[mapping_fact("processor")]),
            {
                "register": "efo-processor",
                "move": "processor",
                "max_consumers": 5,
                "consumers_before": 2,
                "consumers_after": 3,
                "consumer_prefix": "efo-",
                "from_mappings": "old-1",
                "starting_position": "AT_TIMESTAMP",
                "starting_timestamp": START,
                "lookback_seconds": 120 + WINDOW_S,
            },
            "",
            id="an opted-in function: its own consumer, AT_TIMESTAMP = now - (max iterator age + 15 min)",
        ),
        pytest.param(
            efo_policy(processor=False),
            efo_evidence(registered=[], mappings=[mapping_fact("processor")]),
            {"register": "", "move": "", "consumers_before": 0, "consumers_after": 0},
            "; nothing to register: opt a Lambda consumer in with `move_to_efo: true`, or name a consumer for your "
            "own reader in actions.enhanced_fan_out.consumer_name",
            id="a function that does not opt in never moves",
        ),
        pytest.param(
            efo_policy({"move_lambda_consumers": False}, processor=True),
            efo_evidence(registered=[], mappings=[mapping_fact("processor")]),
            {"register": "", "move": "", "consumers_before": 0, "consumers_after": 0},
            "; nothing to register: opt a Lambda consumer in with `move_to_efo: true`, or name a consumer for your "
            "own reader in actions.enhanced_fan_out.consumer_name",
            id="move_lambda_consumers false overrides the opt-in",
        ),
        pytest.param(
            efo_policy({"consumer_name": "analytics-efo"}),
            efo_evidence(registered=[consumer_fact("x")], mappings=[]),
            {"register": "analytics-efo", "move": "", "max_consumers": 5, "consumers_before": 1, "consumers_after": 2},
            "",
            id="consumer_name: registered for a reader pointed at it by hand",
        ),
        pytest.param(
            efo_policy({"consumer_name": "analytics-efo"}),
            efo_evidence(registered=[consumer_fact("analytics-efo")], mappings=[]),
            {"register": "", "move": "", "consumers_before": 1, "consumers_after": 1},
            "; nothing to register: opt a Lambda consumer in with `move_to_efo: true`, or name a consumer for your "
            "own reader in actions.enhanced_fan_out.consumer_name",
            id="consumer_name already registered: never twice",
        ),
        pytest.param(
            efo_policy({"consumer_prefix": "fan-"}, processor=True),
            efo_evidence(registered=[consumer_fact("fan-processor")], mappings=[mapping_fact("processor")]),
            {
                "register": "",
                "move": "processor",
                "consumers_before": 1,
                "consumers_after": 1,
                "consumer_prefix": "fan-",
                "from_mappings": "old-1",
                "starting_position": "AT_TIMESTAMP",
                "starting_timestamp": START,
                "lookback_seconds": 120 + WINDOW_S,
            },
            "",
            id="a move cut short: its consumer exists, so it only moves",
        ),
        pytest.param(
            efo_policy(processor=True, audit=True),
            efo_evidence(
                registered=[],
                mappings=[
                    mapping_fact("processor", source=f"{ARN}/consumer/efo-processor:1"),
                    mapping_fact("audit", state="Disabled"),
                ],
            ),
            {"register": "", "move": "", "consumers_before": 0, "consumers_after": 0},
            "; processor stays: it reads through a consumer already; audit stays: its mapping is Disabled (a "
            "mapping that is not Enabled is never changed); nothing to register: opt a Lambda consumer in with "
            "`move_to_efo: true`, or name a consumer for your own reader in actions.enhanced_fan_out.consumer_name",
            id="moved already, or disabled: stays, and the reason says why",
        ),
        pytest.param(
            efo_policy(processor=True),
            efo_evidence(registered=[], mappings=[{"function": "processor"}]),
            {"register": "", "move": "", "consumers_before": 0, "consumers_after": 0},
            "; processor stays: it has no mapping on this stream; nothing to register: opt a Lambda consumer in "
            "with `move_to_efo: true`, or name a consumer for your own reader in "
            "actions.enhanced_fan_out.consumer_name",
            id="no mapping on the stream",
        ),
        pytest.param(
            efo_policy(processor=True),
            efo_evidence(mappings=[mapping_fact("processor")]),
            {
                "register": "efo-processor",
                "move": "processor",
                "max_consumers": 5,
                "consumer_prefix": "efo-",
                "from_mappings": "old-1",
                "starting_position": "AT_TIMESTAMP",
                "starting_timestamp": START,
                "lookback_seconds": 120 + WINDOW_S,
            },
            "",
            id="the stream's consumers were not read: no count",
        ),
        pytest.param(
            efo_policy(processor=True),
            efo_evidence(registered=[], mappings=[mapping_fact("processor")], age_ms=23.8 * 3_600_000),
            {
                "register": "efo-processor",
                "move": "processor",
                "max_consumers": 5,
                "consumers_before": 0,
                "consumers_after": 1,
                "consumer_prefix": "efo-",
                "from_mappings": "old-1",
                "starting_position": "TRIM_HORIZON",
                "lookback_seconds": int(23.8 * 3600) + WINDOW_S,
            },
            "",
            id="reaching back beyond the retention: TRIM_HORIZON",
        ),
        pytest.param(
            efo_policy(processor=True),
            efo_evidence(registered=[], mappings=[mapping_fact("processor")], age_ms=None),
            {
                "register": "efo-processor",
                "move": "processor",
                "max_consumers": 5,
                "consumers_before": 0,
                "consumers_after": 1,
                "consumer_prefix": "efo-",
                "from_mappings": "old-1",
            },
            "",
            id="no iterator age: no starting position (a guardrail blocks the step)",
        ),
    ],
)
def test_shape(p: StreamPolicy, ev: Evidence, parameters: dict[str, Any], reason_tail: str) -> None:
    # Given the policy, the stream's consumers and the mapping facts the symptom gathered
    # When the action shapes the symptom's proposal
    result = shaped(p, ev)
    # Then the step's parameters are flat (they go to the audit's history) and say exactly what it does
    assert result.parameters == parameters
    assert all(isinstance(v, int | str) for v in result.parameters.values())
    assert result.reason == PROPOSAL.reason + reason_tail


@pytest.mark.parametrize(
    ("age_ms", "retention_hours", "position", "lookback"),
    [
        pytest.param(0, 24, "AT_TIMESTAMP", WINDOW_S, id="caught up: the window alone"),
        pytest.param(1, 24, "AT_TIMESTAMP", 1 + WINDOW_S, id="a millisecond rounds up to a second"),
        pytest.param(86_400_000 - WINDOW_S * 1000 - 1000, 24, "AT_TIMESTAMP", 86_399, id="a second inside"),
        pytest.param(86_400_000 - WINDOW_S * 1000, 24, "TRIM_HORIZON", 86_400, id="exactly the retention"),
        pytest.param(86_400_000 - WINDOW_S * 1000, 48, "AT_TIMESTAMP", 86_400, id="a longer retention"),
    ],
)
def test_starting_position(age_ms: float, retention_hours: int, position: str, lookback: int) -> None:
    ev = efo_evidence(registered=[], mappings=[mapping_fact("p")], age_ms=age_ms, retention_hours=retention_hours)
    parameters = shaped(efo_policy(p=True), ev).parameters
    assert (parameters["starting_position"], parameters["lookback_seconds"]) == (position, lookback)
    if position == "AT_TIMESTAMP":
        assert parameters["starting_timestamp"] == (NOW - timedelta(seconds=lookback)).isoformat()


# --- checks -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("existing", "max_consumers", "aws", "policy_max"),
    [
        pytest.param(18, 20, True, True, id="18 + 1 = 19"),
        pytest.param(19, 20, True, True, id="19 + 1 = 20: AWS's last one"),
        pytest.param(20, 20, False, False, id="20 + 1 = 21: beyond AWS's 20"),
        pytest.param(4, 5, True, True, id="4 + 1 = 5: the policy's last one"),
        pytest.param(5, 5, True, False, id="5 + 1 = 6: beyond max_consumers"),
    ],
)
def test_the_20_consumer_limit_and_max_consumers(
    existing: int, max_consumers: int, aws: bool, policy_max: bool
) -> None:
    # Given a stream with `existing` registered consumers and one opted-in function to move
    ev = efo_evidence(registered=[consumer_fact(f"c{i}") for i in range(existing)], mappings=[mapping_fact("p")])
    found = verdicts(efo_policy({"max_consumers": max_consumers}, p=True), ev)
    # Then AWS's 20 and the policy's bound are each checked on the count after registering
    assert found["aws-max-consumers"] == (
        aws,
        f"{existing} + 1 = {existing + 1} of at most 20 consumers per stream",
    )
    assert found["policy-max-consumers"] == (policy_max, f"{existing + 1} of at most max_consumers {max_consumers}")


def test_max_consumers_cannot_exceed_aws_20() -> None:
    with pytest.raises(ValueError, match="less than or equal to 20"):
        efo_policy({"max_consumers": 21})


def test_unknown_consumer_count_blocks() -> None:
    found = verdicts(efo_policy(p=True), efo_evidence(mappings=[mapping_fact("p")]))
    unknown = "the stream's registered consumers were not read (its symptom gathered no ListStreamConsumers)"
    assert found["aws-max-consumers"] == (False, unknown)
    assert found["policy-max-consumers"] == (False, unknown)


@pytest.mark.parametrize(
    ("creating", "passed"),
    [pytest.param(4, True, id="4 creating + 1 = 5"), pytest.param(5, False, id="5 creating + 1 = 6")],
)
def test_at_most_5_consumers_in_creating(creating: int, passed: bool) -> None:
    ev = efo_evidence(
        registered=[consumer_fact(f"c{i}", "CREATING") for i in range(creating)], mappings=[mapping_fact("p")]
    )
    found = verdicts(efo_policy({"max_consumers": 20}, p=True), ev)
    assert found["aws-consumers-creating"] == (passed, f"{creating} in CREATING + 1 new, of at most 5 at once")


def test_nothing_to_do_is_blocked() -> None:
    found = verdicts(efo_policy(p=False), efo_evidence(registered=[], mappings=[mapping_fact("p")]))
    assert found["work-to-do"] == (False, "no consumer to register and no Lambda consumer to move (see the reason)")


def test_a_consumer_being_deleted_blocks_its_move() -> None:
    ev = efo_evidence(registered=[consumer_fact("efo-p", "DELETING")], mappings=[mapping_fact("p")])
    found = verdicts(efo_policy(p=True), ev)
    assert found["consumers-usable"] == (False, "consumer efo-p is DELETING: wait until it is gone")
    assert found["work-to-do"][0] is True


def test_a_move_without_an_iterator_age_is_blocked() -> None:
    found = verdicts(efo_policy(p=True), efo_evidence(registered=[], mappings=[mapping_fact("p")], age_ms=None))
    assert found["move-start-known"][0] is False
    found = verdicts(efo_policy(p=True), efo_evidence(registered=[], mappings=[mapping_fact("p")]))
    assert found["move-start-known"] == (True, f"new mappings start at {START} ({120 + WINDOW_S} s back)")


def test_a_register_only_step_passes_every_check() -> None:
    ev = efo_evidence(registered=[consumer_fact("x")], mappings=[])
    found = verdicts(efo_policy({"consumer_name": "analytics-efo"}), ev)
    assert all(passed for passed, _ in found.values()), found
    assert "move-start-known" not in found


# --- apply, against scripted AWS answers ------------------------------------------------------------------------


Answer = dict[str, Any] | Exception | Callable[[dict[str, Any]], dict[str, Any]]


class ScriptedAws:
    """WritePorts whose answers are scripted per operation (a list is answered in order, its last one repeated)."""

    def __init__(self, answers: dict[str, Answer | list[Answer]]) -> None:
        self.answers = answers
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def service(self, name: str) -> Any:
        aws = self

        class Port:
            def call(self, operation: str, **parameters: Any) -> dict[str, Any]:
                aws.calls.append((operation, parameters))
                script = aws.answers.get(operation, {})
                answer = (script.pop(0) if len(script) > 1 else script[0]) if isinstance(script, list) else script
                if isinstance(answer, Exception):
                    raise answer
                return answer(parameters) if callable(answer) else answer

        return Port()

    def operations(self) -> list[str]:
        return [operation for operation, _ in self.calls]


CONSUMER_ARN = f"{ARN}/consumer/efo-processor:1700000000"
OLD = {
    "UUID": "old-1",
    "State": "Enabled",
    "EventSourceArn": ARN,
    "FunctionArn": "arn:aws:lambda:us-east-1:123456789012:function:processor",
    "BatchSize": 500,
    "ParallelizationFactor": 2,
    "MaximumBatchingWindowInSeconds": 5,
    "BisectBatchOnFunctionError": True,
    "MaximumRetryAttempts": 3,
    "MaximumRecordAgeInSeconds": 3600,
    "DestinationConfig": {"OnSuccess": {}, "OnFailure": {"Destination": "arn:aws:sqs:us-east-1:123456789012:dlq"}},
    "FunctionResponseTypes": ["ReportBatchItemFailures"],
    "StartingPosition": "LATEST",
    "LastProcessingResult": "OK",
}
MOVE = {
    "register": "efo-processor",
    "move": "processor",
    "consumers_before": 2,
    "consumers_after": 3,
    "consumer_prefix": "efo-",
    "from_mappings": "old-1",
    "starting_position": "AT_TIMESTAMP",
    "starting_timestamp": START,
    "lookback_seconds": 120 + WINDOW_S,
}


def registered(status: str) -> dict[str, Any]:
    return {"Consumer": {"ConsumerName": "efo-processor", "ConsumerARN": CONSUMER_ARN, "ConsumerStatus": status}}


def described(status: str) -> dict[str, Any]:
    return {
        "ConsumerDescription": {"ConsumerName": "efo-processor", "ConsumerARN": CONSUMER_ARN, "ConsumerStatus": status}
    }


@pytest.fixture
def sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """No real sleeping: the seconds apply would have slept, in order."""
    slept: list[float] = []
    monkeypatch.setattr(enhanced_fan_out, "sleep", slept.append)
    return slept


def apply(aws: ScriptedAws, parameters: dict[str, Any] = MOVE) -> dict[str, Any]:
    return EFO.apply(step_of(parameters), DeclaredOnly(aws, EFO.iam_actions, EFO.id))


def test_a_move_registers_waits_for_active_creates_at_timestamp_then_disables_the_old_mapping(
    sleeps: list[float],
) -> None:
    # Given AWS that registers the consumer as CREATING, reports ACTIVE on the second poll, and holds the old mapping
    aws = ScriptedAws(
        {
            "ListStreamConsumers": {"Consumers": []},
            "RegisterStreamConsumer": registered("CREATING"),
            "DescribeStreamConsumer": [described("CREATING"), described("ACTIVE")],
            "GetEventSourceMapping": OLD,
            "ListEventSourceMappings": {"EventSourceMappings": []},
            "CreateEventSourceMapping": {"UUID": "new-1", "State": "Creating"},
            "UpdateEventSourceMapping": {"UUID": "old-1", "State": "Disabling"},
        }
    )
    # When the move is applied
    result = apply(aws)
    # Then the calls come in this order: count, register, poll until ACTIVE, re-read, look for a leftover, create,
    # and only then disable the old mapping
    assert aws.operations() == [
        "ListStreamConsumers",
        "RegisterStreamConsumer",
        "DescribeStreamConsumer",
        "DescribeStreamConsumer",
        "GetEventSourceMapping",
        "ListEventSourceMappings",
        "CreateEventSourceMapping",
        "UpdateEventSourceMapping",
    ]
    assert sleeps == [2.0, 2.0]
    calls = dict(aws.calls)
    assert calls["RegisterStreamConsumer"] == {"StreamARN": ARN, "ConsumerName": "efo-processor"}
    assert calls["DescribeStreamConsumer"] == {"ConsumerARN": CONSUMER_ARN}
    # And the new mapping reads the consumer from the planned timestamp, with the old mapping's settings
    assert calls["CreateEventSourceMapping"] == {
        "FunctionName": OLD["FunctionArn"],
        "EventSourceArn": CONSUMER_ARN,
        "Enabled": True,
        "StartingPosition": "AT_TIMESTAMP",
        "StartingPositionTimestamp": START,
        "BatchSize": 500,
        "ParallelizationFactor": 2,
        "MaximumBatchingWindowInSeconds": 5,
        "BisectBatchOnFunctionError": True,
        "MaximumRetryAttempts": 3,
        "MaximumRecordAgeInSeconds": 3600,
        "DestinationConfig": {"OnFailure": {"Destination": "arn:aws:sqs:us-east-1:123456789012:dlq"}},
        "FunctionResponseTypes": ["ReportBatchItemFailures"],
    }
    assert calls["UpdateEventSourceMapping"] == {"UUID": "old-1", "Enabled": False}
    assert result == {
        "registered": ["efo-processor"],
        "moved": {"processor": "old-1 -> new-1"},
        "waiting_for_active": [],
        "left_alone": [],
    }


def test_a_consumer_still_creating_after_the_bounded_polls_leaves_the_function_on_the_stream(
    sleeps: list[float],
) -> None:
    # Given a consumer that stays CREATING
    aws = ScriptedAws(
        {
            "ListStreamConsumers": {"Consumers": []},
            "RegisterStreamConsumer": registered("CREATING"),
            "DescribeStreamConsumer": described("CREATING"),
        }
    )
    # When the move is applied
    result = apply(aws)
    # Then it polled 5 times, 2 s apart (10 s at most), and touched no mapping: the next alarm moves it
    assert aws.operations() == ["ListStreamConsumers", "RegisterStreamConsumer", *["DescribeStreamConsumer"] * 5]
    assert sleeps == [2.0] * 5
    assert result["waiting_for_active"] == ["processor"]
    assert result["moved"] == {}


def test_an_active_consumer_is_not_polled(sleeps: list[float]) -> None:
    # Given the consumer exists already and is ACTIVE (a move cut short)
    active = {"ConsumerName": "efo-processor", "ConsumerARN": CONSUMER_ARN, "ConsumerStatus": "ACTIVE"}
    aws = ScriptedAws(
        {
            "ListStreamConsumers": {"Consumers": [active]},
            "GetEventSourceMapping": OLD,
            "ListEventSourceMappings": {"EventSourceMappings": []},
            "CreateEventSourceMapping": {"UUID": "new-1"},
        }
    )
    result = apply(aws)
    # Then it is not registered again, nor waited for
    assert "RegisterStreamConsumer" not in aws.operations()
    assert "DescribeStreamConsumer" not in aws.operations()
    assert sleeps == []
    assert result["registered"] == []
    assert result["moved"] == {"processor": "old-1 -> new-1"}


def test_the_20_limit_is_checked_again_right_before_registering(sleeps: list[float]) -> None:
    # Given a stream that filled up to 20 consumers since the plan was made
    full = [
        {"ConsumerName": f"c{i}", "ConsumerARN": f"{ARN}/consumer/c{i}:1", "ConsumerStatus": "ACTIVE"}
        for i in range(20)
    ]
    aws = ScriptedAws({"ListStreamConsumers": {"Consumers": full}})
    # When applied, Then nothing is registered, and the failure says why
    with pytest.raises(
        MoveIncomplete, match="nothing changed: the stream has 20 consumers now, and 1 more would exceed AWS's 20"
    ):
        apply(aws)
    assert aws.operations() == ["ListStreamConsumers"]


def test_a_failed_create_leaves_the_old_mapping_reading(sleeps: list[float]) -> None:
    aws = ScriptedAws(
        {
            "ListStreamConsumers": {"Consumers": []},
            "RegisterStreamConsumer": registered("ACTIVE"),
            "GetEventSourceMapping": OLD,
            "ListEventSourceMappings": {"EventSourceMappings": []},
            "CreateEventSourceMapping": RuntimeError("AccessDenied"),
        }
    )
    with pytest.raises(MoveIncomplete) as failure:
        apply(aws)
    # Then the old mapping was never disabled, and the message says what was done and that nothing was lost
    assert "UpdateEventSourceMapping" not in aws.operations()
    assert str(failure.value) == (
        "registered efo-processor; then mapping processor onto efo-processor failed: AccessDenied; mapping old-1 "
        "still reads the stream (nothing lost)"
    )


def test_a_failed_disable_names_the_command_that_finishes_the_move(sleeps: list[float]) -> None:
    aws = ScriptedAws(
        {
            "ListStreamConsumers": {"Consumers": []},
            "RegisterStreamConsumer": registered("ACTIVE"),
            "GetEventSourceMapping": OLD,
            "ListEventSourceMappings": {"EventSourceMappings": []},
            "CreateEventSourceMapping": {"UUID": "new-1"},
            "UpdateEventSourceMapping": RuntimeError("ResourceConflictException"),
        }
    )
    with pytest.raises(MoveIncomplete) as failure:
        apply(aws)
    assert str(failure.value) == (
        "registered efo-processor; then created mapping new-1 for processor on efo-processor, but disabling mapping "
        "old-1 failed: ResourceConflictException; both read, so every record is processed twice until you run: "
        "aws lambda update-event-source-mapping --uuid old-1 --no-enabled"
    )


def test_a_mapping_left_on_the_consumer_is_reused_never_doubled(sleeps: list[float]) -> None:
    # Given an earlier move that created the new mapping but did not disable the old one
    leftover = {"UUID": "new-0", "State": "Enabled", "EventSourceArn": CONSUMER_ARN}
    aws = ScriptedAws(
        {
            "ListStreamConsumers": {"Consumers": []},
            "RegisterStreamConsumer": registered("ACTIVE"),
            "GetEventSourceMapping": OLD,
            "ListEventSourceMappings": {"EventSourceMappings": [leftover]},
        }
    )
    result = apply(aws)
    # Then no second mapping is created; the old one is disabled
    assert "CreateEventSourceMapping" not in aws.operations()
    assert dict(aws.calls)["ListEventSourceMappings"] == {
        "FunctionName": OLD["FunctionArn"],
        "EventSourceArn": CONSUMER_ARN,
    }
    assert dict(aws.calls)["UpdateEventSourceMapping"] == {"UUID": "old-1", "Enabled": False}
    assert result["moved"] == {"processor": "old-1 -> new-0"}


@pytest.mark.parametrize(
    ("old", "leftover", "why"),
    [
        pytest.param(
            OLD | {"State": "Disabled"},
            [],
            f"processor: mapping old-1 is Disabled on {ARN} now",
            id="the old mapping was disabled since the plan",
        ),
        pytest.param(
            OLD,
            [{"UUID": "new-0", "State": "Disabled"}],
            "processor: its mapping new-0 on efo-processor is Disabled (a move rolled back?); mapping old-1 keeps "
            "reading the stream",
            id="a move rolled back by hand",
        ),
    ],
)
def test_mappings_someone_changed_are_left_alone(sleeps: list[float], old: dict, leftover: list, why: str) -> None:
    aws = ScriptedAws(
        {
            "ListStreamConsumers": {"Consumers": []},
            "RegisterStreamConsumer": registered("ACTIVE"),
            "GetEventSourceMapping": old,
            "ListEventSourceMappings": {"EventSourceMappings": leftover},
        }
    )
    result = apply(aws)
    assert not {"CreateEventSourceMapping", "UpdateEventSourceMapping"} & set(aws.operations())
    assert result["left_alone"] == [why]


def test_trim_horizon_start_has_no_timestamp(sleeps: list[float]) -> None:
    aws = ScriptedAws(
        {
            "ListStreamConsumers": {"Consumers": []},
            "RegisterStreamConsumer": registered("ACTIVE"),
            "GetEventSourceMapping": OLD,
            "ListEventSourceMappings": {"EventSourceMappings": []},
            "CreateEventSourceMapping": {"UUID": "new-1"},
        }
    )
    parameters = {k: v for k, v in MOVE.items() if k != "starting_timestamp"} | {"starting_position": "TRIM_HORIZON"}
    apply(aws, parameters)
    create = dict(aws.calls)["CreateEventSourceMapping"]
    assert create["StartingPosition"] == "TRIM_HORIZON"
    assert "StartingPositionTimestamp" not in create


def test_register_only_touches_no_mapping(sleeps: list[float]) -> None:
    aws = ScriptedAws({"ListStreamConsumers": {"Consumers": []}, "RegisterStreamConsumer": registered("CREATING")})
    result = apply(aws, {"register": "analytics-efo", "move": "", "consumers_before": 0, "consumers_after": 1})
    assert aws.operations() == ["ListStreamConsumers", "RegisterStreamConsumer"]
    assert sleeps == []
    assert result["registered"] == ["analytics-efo"]


def test_stream_consumers_are_read_page_by_page() -> None:
    pages = ScriptedAws(
        {
            "ListStreamConsumers": [
                {
                    "Consumers": [{"ConsumerName": "a", "ConsumerARN": "arn-a", "ConsumerStatus": "ACTIVE"}],
                    "NextToken": "t",
                },
                {"Consumers": [{"ConsumerName": "b", "ConsumerARN": "arn-b", "ConsumerStatus": "CREATING"}]},
            ]
        }
    )
    found = read_stream_consumers(ARN, pages.service("kinesis"))
    assert [(c.name, c.status) for c in found] == [("a", "ACTIVE"), ("b", "CREATING")]
    assert [params for _, params in pages.calls] == [{"StreamARN": ARN}, {"StreamARN": ARN, "NextToken": "t"}]


# --- How people read it -----------------------------------------------------------------------------------------


def test_summary_and_changes_of_a_move() -> None:
    assert EFO.summary(MOVE) == (
        "enhanced fan-out: register 1 EFO consumer (efo-processor) and move processor onto its own consumer; "
        "consumers 2 -> 3"
    )
    assert [c.render() for c in EFO.changes(MOVE)] == [
        "registered consumers 2 -> 3",
        "consumer efo-processor none -> registered",
        "processor reads the stream (GetRecords, mapping old-1) -> consumer efo-processor "
        f"(a new mapping from {START})",
        "mapping old-1 Enabled -> Disabled",
    ]


def test_summary_of_nothing_to_do() -> None:
    assert EFO.summary({"register": "", "move": ""}) == "enhanced fan-out: nothing to register"


def test_cli_of_a_move_is_one_quoted_command_per_call() -> None:
    command = EFO.cli_command(ARN, MOVE)
    parts = command.split(" && ")
    assert parts == [
        f"aws kinesis register-stream-consumer --stream-arn {ARN} --consumer-name efo-processor",
        "aws lambda create-event-source-mapping --function-name processor --event-source-arn "
        f'"$(aws kinesis describe-stream-consumer --stream-arn {ARN} --consumer-name efo-processor --query '
        'ConsumerDescription.ConsumerARN --output text)" --starting-position AT_TIMESTAMP '
        f"--starting-position-timestamp {shlex.quote(START)}",
        "aws lambda update-event-source-mapping --uuid old-1 --no-enabled",
    ]
    # Each command (and the one inside "$(...)") is one shell command whose words survive a round trip
    inner = parts[1].split('"$(')[1].split(')"')[0]
    outer = parts[1].replace(f'"$({inner})"', "ARN")
    for command in (parts[0], inner, outer, parts[2]):
        assert shlex.join(shlex.split(command)) == command


def test_cli_of_nothing_to_do_lists_the_consumers() -> None:
    assert EFO.cli_command(ARN, {"register": "", "move": ""}) == f"aws kinesis list-stream-consumers --stream-arn {ARN}"


def test_the_start_is_rounded_down_to_a_whole_second() -> None:
    # Given evidence collected a hair before the next second: earlier is safe, later could skip a record
    ev = efo_evidence(registered=[], mappings=[mapping_fact("p")])
    ev = ev.model_copy(update={"collected_at": NOW + timedelta(microseconds=999_999)})
    # Then the start keeps the whole second, never the fraction
    assert shaped(efo_policy(p=True), ev).parameters["starting_timestamp"] == START


def test_a_register_that_failed_after_aws_took_it_is_resolved_by_re_reading(sleeps: list[float]) -> None:
    # Given RegisterStreamConsumer fails (a timeout), but the consumer turns out registered when re-read
    active = {"ConsumerName": "efo-processor", "ConsumerARN": CONSUMER_ARN, "ConsumerStatus": "ACTIVE"}
    aws = ScriptedAws(
        {
            "ListStreamConsumers": [{"Consumers": []}, {"Consumers": [active]}],
            "RegisterStreamConsumer": TimeoutError("read timeout"),
            "GetEventSourceMapping": OLD,
            "ListEventSourceMappings": {"EventSourceMappings": []},
            "CreateEventSourceMapping": {"UUID": "new-1"},
        }
    )
    # When applied
    result = apply(aws)
    # Then it was registered once, never again, and the move went on
    assert aws.operations().count("RegisterStreamConsumer") == 1
    assert result["moved"] == {"processor": "old-1 -> new-1"}


def test_a_register_that_failed_and_left_nothing_stops_the_step(sleeps: list[float]) -> None:
    aws = ScriptedAws({"ListStreamConsumers": {"Consumers": []}, "RegisterStreamConsumer": RuntimeError("Throttled")})
    with pytest.raises(MoveIncomplete, match=r"^nothing changed: registering efo-processor failed: Throttled$"):
        apply(aws)
    assert aws.operations() == ["ListStreamConsumers", "RegisterStreamConsumer", "ListStreamConsumers"]


def test_a_create_that_failed_after_aws_took_it_still_disables_the_old_mapping(sleeps: list[float]) -> None:
    # Given CreateEventSourceMapping times out, but the mapping is there when re-read
    aws = ScriptedAws(
        {
            "ListStreamConsumers": {"Consumers": []},
            "RegisterStreamConsumer": registered("ACTIVE"),
            "GetEventSourceMapping": OLD,
            "ListEventSourceMappings": [
                {"EventSourceMappings": []},
                {"EventSourceMappings": [{"UUID": "new-1", "State": "Creating"}]},
            ],
            "CreateEventSourceMapping": TimeoutError("read timeout"),
        }
    )
    # When applied
    result = apply(aws)
    # Then no second mapping was created, and the old one is disabled: the move is complete
    assert aws.operations().count("CreateEventSourceMapping") == 1
    assert dict(aws.calls)["UpdateEventSourceMapping"] == {"UUID": "old-1", "Enabled": False}
    assert result["moved"] == {"processor": "old-1 -> new-1"}


# --- IAM ----------------------------------------------------------------------------------------------------------


def granted(p: StreamPolicy) -> dict[str, tuple[tuple[str, ...], dict[str, Any]]]:
    """What an enforce policy like `p` is granted (dry-run policies get no write grants)."""
    enforced = p.model_copy(update={"mode": "enforce"})
    return {a: (perm.resources, perm.conditions) for perm in permissions([enforced], arn) for a in perm.actions}


def test_mapping_grants_name_only_the_policys_consumer_functions() -> None:
    # Given a policy with a Lambda consumer
    found = granted(efo_policy(processor=True))
    function = "arn:aws:lambda:us-east-1:123456789012:function:processor"
    # Then creating a mapping is account-wide (no resource type) but narrowed to that function, and the mapping
    # calls name mappings of that function only
    assert found["lambda:CreateEventSourceMapping"] == (("*",), {"StringEquals": {"lambda:FunctionArn": [function]}})
    assert found["lambda:UpdateEventSourceMapping"] == (
        ("arn:aws:lambda:us-east-1:123456789012:event-source-mapping:*",),
        {"StringEquals": {"lambda:FunctionArn": [function]}},
    )
    assert found["kinesis:RegisterStreamConsumer"] == ((ARN,), {})
    assert found["kinesis:DescribeStreamConsumer"] == ((f"{ARN}/consumer/*",), {})


def test_a_policy_without_a_lambda_consumer_gets_no_mapping_grant() -> None:
    # Given a stream read by a KCL application only: no mapping can move, and '*' must not carry an empty condition
    found = granted(policy(consumers=[{"kcl": "orders-kcl"}]))
    assert "lambda:CreateEventSourceMapping" not in found
    assert "lambda:UpdateEventSourceMapping" not in found
    assert "kinesis:RegisterStreamConsumer" in found
