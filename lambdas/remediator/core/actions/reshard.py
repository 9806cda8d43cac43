"""reshard: UpdateShardCount with UNIFORM_SCALING, within AWS's per-call and per-day limits."""

from __future__ import annotations

import shlex
from dataclasses import replace
from typing import Any, ClassVar

from pydantic import Field, model_validator

from remediator.core import limits
from remediator.core.actions.base import Action, ValidationContext
from remediator.core.cost import Usage
from remediator.core.evidence import StreamMode
from remediator.core.grants import ACCOUNT, STREAM, IamGrant
from remediator.core.plan import OPEN_SHARDS_SETTING, Change, GuardrailVerdict, PlannedStep, Proposal
from remediator.core.policy import ActionPolicy
from remediator.core.ports import ReadPorts, WritePorts
from remediator.core.registry import REGISTRY
from remediator.core.reshard import min_scale_down, scale_up_target


class ReshardPolicy(ActionPolicy):
    min_shards: int = Field(1, ge=1, le=limits.MAX_SHARDS_PER_STREAM, description="Never go below this.")
    max_shards: int = Field(
        ..., ge=1, le=limits.MAX_SHARDS_PER_STREAM, description="Never go above this (required: no default)."
    )
    daily_budget: int = Field(
        4,
        ge=0,
        le=limits.MAX_POLICY_DAILY_BUDGET,
        description=f"Reshards per rolling 24 h; AWS allows {limits.MAX_SCALINGS_PER_24H}, "
        f"and {limits.RESHARD_RESERVE} stay in reserve for people.",
    )

    @model_validator(mode="after")
    def _bounds_are_consistent(self) -> ReshardPolicy:
        if self.min_shards > self.max_shards:
            raise ValueError(f"min_shards ({self.min_shards}) is above max_shards ({self.max_shards})")
        return self


@REGISTRY.action
class Reshard(Action[ReshardPolicy]):
    id = "reshard"
    title = "UpdateShardCount (uniform scaling) towards the shards the observed peak needs"
    policy_schema = ReshardPolicy
    grants = (
        IamGrant(
            actions=("kinesis:UpdateShardCount",),
            scope=ACCOUNT,
            why="The Service Authorization Reference lists no resource type for kinesis:UpdateShardCount, "
            "so a statement scoped to stream ARNs may be denied in a real account. The remediator refuses "
            "any stream that is not in a policy before it calls AWS.",
        ),
        IamGrant(
            actions=("kinesis:DescribeStreamSummary",),
            scope=STREAM,
            why="Re-read the stream after an UpdateShardCount that failed without saying whether AWS took it "
            "(a 5xx, a timeout): UPDATING or at the target means it did.",
        ),
    )
    sample_parameters: ClassVar[dict[str, Any]] = {"current_shards": 2, "desired_shards": 4, "target_shards": 4}

    def shape(self, proposal: Proposal, context: ValidationContext) -> Proposal:
        bounds = self.block(context.policy)
        current = context.evidence.stream.open_shards
        desired = int(proposal.parameters["desired_shards"])
        step = scale_up_target(current, desired, bounds.min_shards, bounds.max_shards)
        reason = proposal.reason
        if step.limited_by:
            reason += f"; this call goes to {step.target} because " + " and ".join(step.limited_by)
        return proposal.model_copy(
            update={
                "parameters": {"current_shards": current, "desired_shards": desired, "target_shards": step.target},
                "reason": reason,
            }
        )

    def checks(self, step: PlannedStep, context: ValidationContext) -> list[GuardrailVerdict]:
        policy = self.block(context.policy)
        stream = context.evidence.stream
        current = stream.open_shards
        target = int(step.parameters["target_shards"])
        provisioned = stream.mode == StreamMode.PROVISIONED
        verdicts = [
            GuardrailVerdict(
                name="provisioned-mode",
                passed=provisioned,
                detail=f"stream is {stream.mode}" + ("" if provisioned else "; on-demand streams are never resharded"),
            ),
            GuardrailVerdict(
                name="aws-step-limit",
                passed=min_scale_down(current) <= target <= current * limits.MAX_SCALE_UP_FACTOR,
                detail=f"{current} -> {target}; one call may go from {min_scale_down(current)} "
                f"to {current * limits.MAX_SCALE_UP_FACTOR}",
            ),
            GuardrailVerdict(
                name="aws-max-shards",
                passed=target <= limits.MAX_SHARDS_PER_STREAM,
                detail=f"{target} of at most {limits.MAX_SHARDS_PER_STREAM:,} shards per stream",
            ),
            self._policy_bounds(current, target, policy),
        ]
        used = context.history.count_in_rolling_day(self.id, stream.name, context.now)
        verdicts.append(
            GuardrailVerdict(
                name="aws-daily-scalings",
                passed=used < limits.MAX_SCALINGS_PER_24H,
                detail=f"{used} of AWS's {limits.MAX_SCALINGS_PER_24H} scalings used in the last 24 h",
            )
        )
        return verdicts

    @staticmethod
    def _policy_bounds(current: int, target: int, policy: ReshardPolicy) -> GuardrailVerdict:
        name = "policy-bounds"
        if target == current:
            return GuardrailVerdict(
                name=name, passed=False, detail=f"already at {current} shards, the most the bounds allow"
            )
        if target > policy.max_shards:
            return GuardrailVerdict(name=name, passed=False, detail=f"{target} is above max_shards {policy.max_shards}")
        if target < policy.min_shards and not current < target:
            return GuardrailVerdict(name=name, passed=False, detail=f"{target} is below min_shards {policy.min_shards}")
        if target < policy.min_shards:
            # A stream below its floor may climb towards it, one call's reach at a time.
            return GuardrailVerdict(
                name=name, passed=True, detail=f"{target} moves towards the floor of {policy.min_shards}"
            )
        return GuardrailVerdict(
            name=name, passed=True, detail=f"{target} within [{policy.min_shards}, {policy.max_shards}]"
        )

    def apply(self, step: PlannedStep, aws: WritePorts) -> dict[str, Any]:
        response = aws.service("kinesis").call(
            "UpdateShardCount",
            StreamARN=step.stream_arn,
            TargetShardCount=int(step.parameters["target_shards"]),
            ScalingType="UNIFORM_SCALING",
        )
        return {"current_shards": response.get("CurrentShardCount"), "target_shards": response.get("TargetShardCount")}

    def confirm(self, step: PlannedStep, aws: ReadPorts) -> bool | None:
        """UPDATING (a reshard under way: UpdateShardCount makes the stream UPDATING as it accepts the call) or
        ACTIVE at the target: made. ACTIVE at the count the step started from: not made. Otherwise (another
        count, another status) someone else is changing the stream: cannot tell."""
        summary = aws.service("kinesis").call("DescribeStreamSummary", StreamARN=step.stream_arn)
        stream = summary.get("StreamDescriptionSummary", {})
        status, shards = stream.get("StreamStatus"), stream.get("OpenShardCount")
        if status == "UPDATING" or (status == "ACTIVE" and shards == int(step.parameters["target_shards"])):
            return True
        if status == "ACTIVE" and shards == int(step.parameters["current_shards"]):
            return False
        return None

    def cli_command(self, stream_arn: str, parameters: dict[str, Any]) -> str:
        return shlex.join(
            [
                "aws", "kinesis", "update-shard-count",
                "--stream-arn", stream_arn,
                "--target-shard-count", str(int(parameters["target_shards"])),
                "--scaling-type", "UNIFORM_SCALING",
            ]
        )  # fmt: skip

    def summary(self, parameters: dict[str, Any]) -> str:
        return f"reshard {parameters['current_shards']} -> {parameters['target_shards']} shards"

    def changes(self, parameters: dict[str, Any]) -> list[Change]:
        return [
            Change(setting=OPEN_SHARDS_SETTING, before=parameters["current_shards"], after=parameters["target_shards"])
        ]

    def usage_after(self, usage: Usage, parameters: dict[str, Any]) -> Usage:
        # Up or down: the stream is billed for the shards this call goes to (target, not desired).
        return replace(usage, shards=int(parameters["target_shards"]))

    def more_to_do(self, parameters: dict[str, Any], block: ReshardPolicy) -> bool:
        # The cross-helper contract: an applied reshard short of what the diagnosis asked (one call's reach), unless
        # it stopped at the policy's bound (a next call would be refused by policy-bounds).
        target, desired = int(parameters["target_shards"]), int(parameters["desired_shards"])
        if desired > target:
            return target < block.max_shards
        if desired < target:
            return target > block.min_shards
        return False

    def bounds(self, block: ReshardPolicy) -> str:
        return f"{block.min_shards}..{block.max_shards} shards"
