"""tune-event-source: the tuning maths, AWS's ranges, the policy's bounds, the plan it shapes from the mapping's
facts, its guardrails, and what apply calls (against recording ports; moto runs it in tests/integration)."""

from __future__ import annotations

import re
from typing import Any

import pytest
from pydantic import ValidationError
from remediator.core.actions.base import ValidationContext
from remediator.core.actions.tune_event_source import (
    BATCH_SIZE,
    BISECT,
    DESTINATION,
    PARALLELIZATION,
    RETRIES,
    MappingChanged,
    MappingNotReady,
    TuneEventSourcePolicy,
    aws_range_problems,
    failure_handling,
    more_throughput,
    smaller_batches,
)
from remediator.core.consumers import LAMBDA_MAPPINGS, MappingFacts
from remediator.core.evidence import Evidence
from remediator.core.history import ActionHistory
from remediator.core.plan import PlannedStep, Proposal
from remediator.core.planner import make_plan
from remediator.core.ports import DeclaredOnly
from remediator.core.registry import REGISTRY

from tests.fakes import NOW, evidence, policy, stream_arn

ACTION = REGISTRY.actions["tune-event-source"]
FUNCTION = "orders-processor"
UUID = "a1b2c3d4-0000-4000-8000-000000000001"
QUEUE = "arn:aws:sqs:us-east-1:123456789012:orders-failed"
OTHER_QUEUE = "arn:aws:sqs:us-east-1:123456789012:someone-elses"


def bounds(**fields: Any) -> TuneEventSourcePolicy:
    return TuneEventSourcePolicy(**fields)


def settings(
    batch: int = 100,
    factor: int = 1,
    bisect: bool = False,
    retries: int = -1,
    destination: str | None = None,
) -> dict[str, Any]:
    return {BATCH_SIZE: batch, PARALLELIZATION: factor, BISECT: bisect, RETRIES: retries, DESTINATION: destination}


# --- The maths ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("factor", "batch", "policy_bounds", "expected"),
    [
        pytest.param(1, 100, {}, {PARALLELIZATION: 2}, id="factor-first"),
        pytest.param(2, 100, {}, {PARALLELIZATION: 4}, id="factor-doubles"),
        pytest.param(3, 100, {}, {PARALLELIZATION: 4}, id="factor-clamped-to-bound"),
        pytest.param(4, 100, {}, {BATCH_SIZE: 200}, id="then-batch-size"),
        pytest.param(4, 800, {}, {BATCH_SIZE: 1_000}, id="batch-clamped-to-bound"),
        pytest.param(4, 1_000, {}, {}, id="both-at-bounds"),
        pytest.param(6, 2_000, {}, {}, id="above-bounds-is-never-lowered"),
        pytest.param(1, 100, {"max_parallelization_factor": 1}, {BATCH_SIZE: 200}, id="factor-bound-1"),
        pytest.param(5, 100, {"max_parallelization_factor": 10}, {PARALLELIZATION: 10}, id="aws-max-factor"),
        pytest.param(
            10, 6_000, {"max_parallelization_factor": 10, "max_batch_size": 10_000}, {BATCH_SIZE: 10_000}, id="aws-max"
        ),
    ],
)
def test_throughput_raises_the_parallelization_factor_first_then_the_batch_size(factor, batch, policy_bounds, expected):
    # Given a mapping's factor and batch size and the policy's bounds
    # When more throughput is asked for
    # Then the factor doubles up to its bound, and only then the batch size, never past a bound
    assert more_throughput(settings(batch=batch, factor=factor), bounds(**policy_bounds)) == expected


@pytest.mark.parametrize(
    ("batch", "minimum", "expected"),
    [
        (100, 10, {BATCH_SIZE: 50}),
        (15, 10, {BATCH_SIZE: 10}),
        (10, 10, {}),
        (5, 10, {}),
        (2, 1, {BATCH_SIZE: 1}),
        (1, 1, {}),
        (10_000, 10, {BATCH_SIZE: 5_000}),
    ],
)
def test_smaller_batches_halve_the_batch_size_down_to_the_bound(batch, minimum, expected):
    assert smaller_batches(settings(batch=batch), bounds(min_batch_size=minimum)) == expected


@pytest.mark.parametrize(
    ("current", "policy_bounds", "expected"),
    [
        pytest.param(
            settings(),
            {"on_failure_destination": QUEUE, "max_retry_attempts": 2},
            {BISECT: True, DESTINATION: QUEUE, RETRIES: 2},
            id="everything",
        ),
        pytest.param(settings(), {}, {BISECT: True}, id="no-destination-retries-left-alone"),
        pytest.param(
            settings(destination=OTHER_QUEUE),
            {"on_failure_destination": QUEUE, "max_retry_attempts": 3},
            {BISECT: True, RETRIES: 3},
            id="a-destination-someone-set-is-kept",
        ),
        pytest.param(
            settings(bisect=True, retries=10, destination=QUEUE),
            {"on_failure_destination": QUEUE, "max_retry_attempts": 2},
            {RETRIES: 2},
            id="retries-above-the-cap",
        ),
        pytest.param(
            settings(bisect=True, retries=1, destination=QUEUE),
            {"on_failure_destination": QUEUE, "max_retry_attempts": 2},
            {},
            id="already-in-place",
        ),
        pytest.param(
            settings(bisect=True, retries=0, destination=QUEUE), {"max_retry_attempts": 0}, {}, id="zero-retries"
        ),
    ],
)
def test_failure_handling_bisects_and_caps_retries_only_where_records_have_somewhere_to_go(
    current, policy_bounds, expected
):
    assert failure_handling(current, bounds(**policy_bounds)) == expected


@pytest.mark.parametrize(
    ("setting", "value", "inside"),
    [
        (BATCH_SIZE, 0, False),
        (BATCH_SIZE, 1, True),
        (BATCH_SIZE, 10_000, True),
        (BATCH_SIZE, 10_001, False),
        (PARALLELIZATION, 0, False),
        (PARALLELIZATION, 1, True),
        (PARALLELIZATION, 10, True),
        (PARALLELIZATION, 11, False),
        ("MaximumBatchingWindowInSeconds", -1, False),
        ("MaximumBatchingWindowInSeconds", 0, True),
        ("MaximumBatchingWindowInSeconds", 300, True),
        ("MaximumBatchingWindowInSeconds", 301, False),
        (RETRIES, -2, False),
        (RETRIES, -1, True),
        (RETRIES, 10_000, True),
        (RETRIES, 10_001, False),
        ("MaximumRecordAgeInSeconds", -1, True),
        ("MaximumRecordAgeInSeconds", 0, False),
        ("MaximumRecordAgeInSeconds", 59, False),
        ("MaximumRecordAgeInSeconds", 60, True),
        ("MaximumRecordAgeInSeconds", 604_800, True),
        ("MaximumRecordAgeInSeconds", 604_801, False),
        (BISECT, True, True),
        (BISECT, 1, False),
        (BATCH_SIZE, True, False),
        (DESTINATION, QUEUE, True),
        (DESTINATION, "arn:aws:sns:us-east-1:123456789012:alerts", True),
        (DESTINATION, "arn:aws:s3:::orders-failed-records", True),
        (DESTINATION, "arn:aws:lambda:us-east-1:123456789012:function:f", False),
        ("Enabled", False, False),
    ],
)
def test_aws_ranges(setting, value, inside):
    # Given one setting's value, When AWS's ranges check it, Then only values AWS accepts pass
    assert (aws_range_problems({setting: value}) == []) is inside


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"min_batch_size": 500, "max_batch_size": 100}, "min_batch_size (500) is above max_batch_size (100)"),
        ({"max_parallelization_factor": 11}, "less than or equal to 10"),
        ({"max_batch_size": 10_001}, "less than or equal to 10000"),
        ({"max_retry_attempts": -1}, "greater than or equal to 0"),
        (
            {"on_failure_destination": "arn:aws:lambda:us-east-1:123456789012:function:f"},
            "must be the ARN of an SQS queue, an SNS topic or an S3 bucket",
        ),
    ],
)
def test_the_policy_block_refuses_bounds_aws_or_sense_would_not(fields, message):
    with pytest.raises(ValidationError, match=re.escape(message)):
        TuneEventSourcePolicy(**fields)


def test_the_policy_defaults_are_the_safe_ones():
    block = TuneEventSourcePolicy()
    # Failure handling decides which records may be skipped: off until a person turns it on
    assert block.allow_failure_handling is False
    assert block.on_failure_destination is None
    assert (block.min_batch_size, block.max_batch_size, block.max_parallelization_factor) == (10, 1_000, 4)


# --- Shape, checks, CLI ---------------------------------------------------------------------------------------


def mapping(**fields: Any) -> MappingFacts:
    values: dict[str, Any] = {
        "function": FUNCTION,
        "uuid": UUID,
        "state": "Enabled",
        "source_arn": stream_arn("orders"),
        "batch_size": 100,
        "parallelization_factor": 1,
        "function_timeout_seconds": 60,
        "function_role_arn": "arn:aws:iam::123456789012:role/orders-processor",
    }
    return MappingFacts(**(values | fields))


def stream_policy(**block: Any) -> Any:
    return policy(
        consumers=[{"function": FUNCTION}], actions={"reshard": {"max_shards": 16}, "tune_event_source": block}
    )


def with_mappings(*mappings: MappingFacts, shards: int = 2) -> Evidence:
    base = evidence(shards=shards)
    return base.model_copy(update={"facts": {LAMBDA_MAPPINGS: [m.model_dump(mode="json") for m in mappings]}})


def plan_step(goal: str, facts: Evidence, **block: Any) -> PlannedStep:
    """The step the planner makes from a symptom's proposal, with every guardrail's verdict."""
    from remediator.core.guardrails import evaluate

    p = stream_policy(**block)
    context = ValidationContext(policy=p, evidence=facts, history=ActionHistory(), now=NOW)
    proposal = Proposal(action=ACTION.id, parameters={"function": FUNCTION, "goal": goal}, reason="test")
    shaped = ACTION.shape(proposal, context)
    step = PlannedStep(
        action=ACTION.id,
        stream="orders",
        stream_arn=facts.stream.arn,
        parameters=shaped.parameters,
        reason=shaped.reason,
        summary=ACTION.summary(shaped.parameters),
        cli_command=ACTION.cli_command(facts.stream.arn, shaped.parameters),
        changes=tuple(ACTION.changes(shaped.parameters)),
    )
    return evaluate(step, context)


def verdicts(step: PlannedStep) -> dict[str, tuple[bool, str]]:
    return {v.name: (v.passed, v.detail) for v in step.guardrails}


def test_shape_turns_a_goal_into_concrete_settings_before_and_after():
    # Given a mapping at factor 1, batch 100, and the default bounds
    # When a symptom asks for throughput
    step = plan_step("throughput", with_mappings(mapping()))
    # Then the step names the mapping, its function, and each setting before -> after
    assert step.parameters == {
        "function": FUNCTION,
        "goal": "throughput",
        "uuid": UUID,
        "state": "Enabled",
        "before": {PARALLELIZATION: 1},
        "after": {PARALLELIZATION: 2},
    }
    assert [c.render() for c in step.changes] == [f"{FUNCTION} ParallelizationFactor 1 -> 2"]
    assert step.summary == f"tune {FUNCTION}: ParallelizationFactor 1 -> 2"
    assert step.cli_command == f"aws lambda update-event-source-mapping --uuid {UUID} --parallelization-factor 2"
    # And every guardrail passes
    assert step.allowed, step.blocking_reasons


def test_the_cli_command_of_failure_handling_spells_each_setting():
    step = plan_step(
        "failure-handling", with_mappings(mapping()), allow_failure_handling=True, on_failure_destination=QUEUE
    )
    assert step.cli_command == (
        f"aws lambda update-event-source-mapping --uuid {UUID} --bisect-batch-on-function-error "
        f'--destination-config \'{{"OnFailure":{{"Destination":"{QUEUE}"}}}}\' --maximum-retry-attempts 2'
    )
    assert step.allowed, step.blocking_reasons


@pytest.mark.parametrize(
    ("state", "detail"),
    [
        ("Disabled", "mapping is Disabled: a disabled mapping is never changed (someone stopped it on purpose)"),
        ("Disabling", "mapping is Disabling: a disabled mapping is never changed (someone stopped it on purpose)"),
        ("Updating", "mapping is Updating; the next alarm retries"),
        ("Creating", "mapping is Creating; the next alarm retries"),
        ("Enabling", "mapping is Enabling; the next alarm retries"),
        ("Deleting", "mapping is Deleting; the next alarm retries"),
    ],
)
def test_a_mapping_that_is_not_enabled_is_never_changed(state, detail):
    # Given the mapping is not Enabled when the plan is made
    step = plan_step("throughput", with_mappings(mapping(state=state)))
    # Then the step is blocked, and says why
    assert verdicts(step)["mapping-enabled"] == (False, detail)
    assert not step.allowed


def test_no_mapping_on_the_stream_blocks_the_step_and_the_command_finds_it():
    # Given the function has no mapping on this stream
    step = plan_step("throughput", with_mappings(MappingFacts(function=FUNCTION)))
    # Then the step is blocked, and its command is the one that lists the function's mappings
    assert verdicts(step)["mapping-found"][0] is False
    assert step.summary == f"tune {FUNCTION} (throughput): no mapping on the stream"
    assert step.cli_command == (
        f"aws lambda list-event-source-mappings --function-name {FUNCTION} --event-source-arn {stream_arn('orders')}"
    )


def test_a_step_at_the_policys_bounds_is_a_blocked_no_op():
    step = plan_step("throughput", with_mappings(mapping(parallelization_factor=4, batch_size=1_000)))
    assert verdicts(step)["changes-something"] == (
        False,
        "already at the policy's bounds (ParallelizationFactor 4, BatchSize 1000); nothing left to raise",
    )
    assert step.summary.endswith("(throughput): nothing to change")


def test_failure_handling_is_blocked_unless_the_policy_allows_it():
    # Given the default policy (allow_failure_handling false)
    step = plan_step("failure-handling", with_mappings(mapping()))
    # Then the plan still shows what it would do, blocked by the policy
    assert step.parameters["after"] == {BISECT: True}
    passed, detail = verdicts(step)["failure-handling-allowed"]
    assert passed is False
    assert "allow_failure_handling is false" in detail
    # And the reason says why retries are left alone: there is no destination
    assert "capped retries would drop the failing records" in step.reason
    # When the policy allows it, Then the same step passes
    assert plan_step("failure-handling", with_mappings(mapping()), allow_failure_handling=True).allowed


@pytest.mark.parametrize(
    ("reserved", "shards", "passed"),
    [(None, 2, True), (4, 2, True), (3, 2, False), (0, 1, False), (100, 50, True)],
)
def test_raising_the_factor_needs_reserved_concurrency_for_every_batch(reserved, shards, passed):
    # Given the function's reserved concurrency (None: none reserved) and the stream's shards
    facts = with_mappings(mapping(reserved_concurrency=reserved), shards=shards)
    # When the factor goes 1 -> 2
    step = plan_step("throughput", facts)
    # Then the step passes only if shards x 2 concurrent batches fit in the reservation
    assert verdicts(step)["concurrency-headroom"][0] is passed


@pytest.mark.parametrize(
    ("after", "blocked_by"),
    [
        ({BATCH_SIZE: 20_000}, "aws-ranges"),
        ({PARALLELIZATION: 11}, "aws-ranges"),
        ({PARALLELIZATION: 8}, "policy-bounds"),
        ({BATCH_SIZE: 5}, "policy-bounds"),
        ({RETRIES: 50}, "policy-bounds"),
        ({DESTINATION: OTHER_QUEUE}, "policy-bounds"),
    ],
)
def test_checks_refuse_settings_outside_aws_ranges_or_the_policys_bounds(after, blocked_by):
    # Given a step whose settings were changed by hand (checks do not trust shape)
    step = plan_step("throughput", with_mappings(mapping()))
    tampered = step.model_copy(
        update={"parameters": step.parameters | {"before": {k: settings()[k] for k in after}, "after": after}}
    )
    context = ValidationContext(
        policy=stream_policy(), evidence=with_mappings(mapping()), history=ActionHistory(), now=NOW
    )
    # When the action's checks look at it, Then the right one refuses it
    found = {v.name: v.passed for v in ACTION.checks(tampered, context)}
    assert found[blocked_by] is False


def test_the_planner_turns_a_proposal_into_a_step_with_its_changes():
    # Given the lag symptom's proposal path through the planner, with the mapping facts in the evidence
    facts = with_mappings(mapping())
    facts = facts.model_copy(update={"series": facts.series | {"lambda_iterator_age_0": (600_000.0,) * 15}})
    plan = make_plan(
        alarm_name="a",
        symptom="lambda-consumer-lag",
        policy=stream_policy(),
        evidence=facts,
        history=ActionHistory(),
        now=NOW,
    )
    # Then the plan's JSON lists the step with its action id, parameters and changes
    (entry,) = plan.as_report()["actions"]
    assert entry["action"] == "tune-event-source"
    assert entry["changes"] == [{"setting": f"{FUNCTION} ParallelizationFactor", "before": 1, "after": 2}]


# --- Apply ----------------------------------------------------------------------------------------------------


class LambdaPorts:
    """Write ports whose Lambda answers GetEventSourceMapping with `mapping` and records every call."""

    def __init__(self, mapping: dict[str, Any]) -> None:
        self.mapping = mapping
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def service(self, name: str) -> Any:
        assert name == "lambda"
        ports = self

        class Port:
            def call(self, operation: str, **parameters: Any) -> dict[str, Any]:
                ports.calls.append((operation, parameters))
                if operation == "GetEventSourceMapping":
                    return dict(ports.mapping)
                return {**ports.mapping, "State": "Updating", **parameters}

        return Port()


def response(**fields: Any) -> dict[str, Any]:
    """GetEventSourceMapping's response for the mapping, as AWS documents it."""
    return {
        "UUID": UUID,
        "State": "Enabled",
        "FunctionArn": f"arn:aws:lambda:us-east-1:123456789012:function:{FUNCTION}",
        "EventSourceArn": stream_arn("orders"),
        "BatchSize": 100,
        "ParallelizationFactor": 1,
        "MaximumRetryAttempts": -1,
        "BisectBatchOnFunctionError": False,
        "DestinationConfig": {"OnFailure": {}},
    } | fields


def apply(step: PlannedStep, ports: LambdaPorts) -> dict[str, Any]:
    return ACTION.apply(step, DeclaredOnly(ports, ACTION.iam_actions, ACTION.id))


def test_apply_rereads_the_mapping_then_updates_exactly_the_planned_settings():
    step = plan_step(
        "failure-handling", with_mappings(mapping()), allow_failure_handling=True, on_failure_destination=QUEUE
    )
    ports = LambdaPorts(response())
    result = apply(step, ports)
    assert ports.calls == [
        ("GetEventSourceMapping", {"UUID": UUID}),
        (
            "UpdateEventSourceMapping",
            {
                "UUID": UUID,
                "BisectBatchOnFunctionError": True,
                "MaximumRetryAttempts": 2,
                "DestinationConfig": {"OnFailure": {"Destination": QUEUE}},
            },
        ),
    ]
    assert result == {"uuid": UUID, "state": "Updating", BISECT: True, RETRIES: 2, DESTINATION: QUEUE}


@pytest.mark.parametrize("state", ["Disabled", "Updating", "Creating", "Disabling"])
def test_apply_refuses_a_mapping_that_is_no_longer_enabled(state):
    # Given a step planned on an Enabled mapping, which is <state> when apply re-reads it
    step = plan_step("throughput", with_mappings(mapping()))
    ports = LambdaPorts(response(State=state))
    # When it applies, Then it refuses, having changed nothing
    with pytest.raises(MappingNotReady, match=f"is {state}, not Enabled; no change made"):
        apply(step, ports)
    assert [operation for operation, _ in ports.calls] == ["GetEventSourceMapping"]


@pytest.mark.parametrize(
    ("now", "message"),
    [
        ({"ParallelizationFactor": 3}, "ParallelizationFactor is 3, planned from 1"),
        ({"FunctionArn": "arn:aws:lambda:us-east-1:123456789012:function:other"}, "belongs to function 'other'"),
    ],
)
def test_apply_refuses_a_mapping_that_changed_since_the_plan(now, message):
    step = plan_step("throughput", with_mappings(mapping()))
    ports = LambdaPorts(response(**now))
    with pytest.raises(MappingChanged, match=message):
        apply(step, ports)
    assert [operation for operation, _ in ports.calls] == ["GetEventSourceMapping"]


def test_apply_reads_settings_aws_left_out_as_their_defaults():
    # Given AWS's answer without ParallelizationFactor (moto leaves unset members out), planned from the default 1
    step = plan_step("throughput", with_mappings(mapping(parallelization_factor=None)))
    ports = LambdaPorts({k: v for k, v in response().items() if k != "ParallelizationFactor"})
    # When it applies, Then the default counts as the planned value, and the update goes ahead
    apply(step, ports)
    assert ports.calls[-1] == ("UpdateEventSourceMapping", {"UUID": UUID, "ParallelizationFactor": 2})
