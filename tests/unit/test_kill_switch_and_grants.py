"""The kill switch is read before every change a step makes, and write grants come with enforce only."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any, ClassVar

import pytest
from remediator.core.actions.base import Action, ValidationContext
from remediator.core.grants import STREAM, IamGrant
from remediator.core.iam import grants_for
from remediator.core.outcome import StepResult
from remediator.core.plan import GuardrailVerdict, PlannedStep
from remediator.core.policy import ActionPolicy
from remediator.core.ports import KillSwitchEngaged, KillSwitchGuard, KillSwitchUnreadable, WritePorts
from remediator.core.registry import REGISTRY
from remediator.writeahead import Run, apply, why_not

from tests.fakes import policy, stream_arn


class Switch:
    """Engaged from the n-th read on (never, by default)."""

    def __init__(self, engaged_from: int | None = None) -> None:
        self.reads, self.engaged_from = 0, engaged_from

    def engaged(self) -> bool:
        self.reads += 1
        return self.engaged_from is not None and self.reads >= self.engaged_from


class Recorder:
    def __init__(self) -> None:
        self.calls: list[str] = []

    def service(self, name: str) -> Any:
        recorder = self

        class Port:
            def call(self, operation: str, **parameters: Any) -> dict[str, Any]:
                recorder.calls.append(f"{name}:{operation}")
                return {}

        return Port()


def test_reads_pass_and_every_change_after_the_first_reads_the_switch() -> None:
    # Given a guard whose switch is engaged from its first read on
    aws, switch = Recorder(), Switch(engaged_from=1)
    guard = KillSwitchGuard(aws, switch)
    # When a step reads, changes, reads again and tries a second change
    guard.service("lambda").call("GetEventSourceMapping", UUID="u")
    guard.service("kinesis").call("RegisterStreamConsumer", ConsumerName="c")
    guard.service("kinesis").call("DescribeStreamConsumer", ConsumerName="c")
    with pytest.raises(KillSwitchEngaged) as stopped:
        guard.service("lambda").call("CreateEventSourceMapping", FunctionName="f")
    # Then the first change (checked by the caller just before) went out, the second did not, and reads never
    # read the switch
    assert aws.calls == [
        "lambda:GetEventSourceMapping",
        "kinesis:RegisterStreamConsumer",
        "kinesis:DescribeStreamConsumer",
    ]
    assert switch.reads == 1
    assert str(stopped.value) == (
        "kill-switch: engaged before lambda:CreateEventSourceMapping; 1 change(s) already made: "
        "kinesis:RegisterStreamConsumer"
    )


class TwoChangesPolicy(ActionPolicy):
    pass


class TwoChanges(Action[TwoChangesPolicy]):
    id = "two-changes"
    title = "two changes in one step"
    policy_schema = TwoChangesPolicy
    grants = (IamGrant(("kinesis:AddTagsToStream", "kinesis:RemoveTagsFromStream"), STREAM, "toy"),)
    sample_parameters: ClassVar[dict[str, Any]] = {}

    def checks(self, step: PlannedStep, context: ValidationContext) -> list[GuardrailVerdict]:
        return []

    def apply(self, step: PlannedStep, aws: WritePorts) -> dict[str, Any]:
        aws.service("kinesis").call("AddTagsToStream", StreamARN=step.stream_arn, Tags={"a": "1"})
        aws.service("kinesis").call("RemoveTagsFromStream", StreamARN=step.stream_arn, TagKeys=["b"])
        return {}

    def cli_command(self, stream_arn: str, parameters: dict[str, Any]) -> str:
        return "aws kinesis add-tags-to-stream"

    def summary(self, parameters: dict[str, Any]) -> str:
        return "two changes"


STEP = PlannedStep(
    action="two-changes",
    stream="orders",
    stream_arn=stream_arn("orders"),
    parameters={},
    reason="toy",
    summary="two changes",
    cli_command="aws kinesis add-tags-to-stream",
)


@pytest.mark.parametrize(
    ("engaged_from", "result", "calls"),
    [
        (None, StepResult.APPLIED, ["kinesis:AddTagsToStream", "kinesis:RemoveTagsFromStream"]),
        (1, StepResult.BLOCKED, []),  # engaged before the step: nothing is sent
        (2, StepResult.FAILED, ["kinesis:AddTagsToStream"]),  # engaged between the changes: half done, a failure
    ],
)
def test_a_step_stops_at_the_first_change_the_switch_forbids(
    engaged_from: int | None, result: StepResult, calls: list[str]
) -> None:
    # Given an enforce step that makes two changes, and a switch engaged from its n-th read
    aws, switch = Recorder(), Switch(engaged_from)
    deps = SimpleNamespace(writes=aws, kill_switch=switch, time_left=lambda: 300.0, seconds_after_change=0.0)
    # When the step is carried out
    with REGISTRY.registered(TwoChanges):
        mode = policy(mode="enforce").mode
        outcome = why_not(STEP, mode, deps, Run()) or apply(STEP, deps)  # type: ignore[arg-type]
    # Then it goes as far as the switch allows, and says so
    assert (outcome.outcome, aws.calls) == (result, calls)
    if engaged_from == 2:
        assert outcome.detail.endswith("1 change(s) already made: kinesis:AddTagsToStream")


class UnreadableSwitch:
    """Reads fine (off) until its n-th read, which fails (throttled, denied, AWS failing)."""

    def __init__(self, fails_at: int) -> None:
        self.reads, self.fails_at = 0, fails_at

    def engaged(self) -> bool:
        self.reads += 1
        if self.reads >= self.fails_at:
            raise KillSwitchUnreadable("cannot read the kill switch: ThrottlingException")
        return False


def test_an_unreadable_switch_before_any_change_fails_the_invocation() -> None:
    # Given a switch that cannot be read, and nothing changed yet in this invocation
    deps = SimpleNamespace(writes=Recorder(), kill_switch=UnreadableSwitch(1), time_left=lambda: 300.0)
    # When the step is about to run, then the invocation fails (Lambda retries; never taken as 'off')
    with REGISTRY.registered(TwoChanges), pytest.raises(KillSwitchUnreadable):
        why_not(STEP, policy(mode="enforce").mode, deps, Run())  # type: ignore[arg-type]


def test_an_unreadable_switch_after_a_change_stops_like_an_engaged_one() -> None:
    # Given a switch that cannot be read once a change was made in this invocation
    aws = Recorder()
    deps = SimpleNamespace(writes=aws, kill_switch=UnreadableSwitch(1), time_left=lambda: 300.0)
    with REGISTRY.registered(TwoChanges):
        # When a later step is about to run, then it is blocked: nothing raises into a retry
        outcome = why_not(STEP, policy(mode="enforce").mode, deps, Run(changed=True))  # type: ignore[arg-type]
        assert outcome is not None and outcome.outcome == StepResult.BLOCKED
        assert "taken as engaged, no change made" in outcome.detail
        # And between two changes of one step (the guard reads it before the second), it stops the step there,
        # saying what was made
        deps.kill_switch = UnreadableSwitch(1)
        outcome = apply(STEP, deps)  # type: ignore[arg-type]
    assert (outcome.outcome, aws.calls) == (StepResult.FAILED, ["kinesis:AddTagsToStream"])
    assert outcome.detail.startswith("kill-switch: unreadable (cannot read the kill switch: ThrottlingException)")


def test_write_grants_come_with_enforce_only() -> None:
    # Given the same stream's policy in dry-run and in enforce
    def actions(mode: str) -> set[str]:
        return {a for grant in grants_for(policy(mode=mode)) for a in grant.actions}

    # Then the reads are the same, and only enforce adds the actions' grants (UpdateShardCount among them)
    assert actions("dry-run") < actions("enforce")
    assert "kinesis:UpdateShardCount" in actions("enforce") - actions("dry-run")
    assert "kinesis:DescribeStreamSummary" in actions("dry-run")
