"""Reshard: UpdateShardCount with UNIFORM_SCALING, within AWS's per-call and per-day limits."""

from __future__ import annotations

import shlex
from typing import Any, ClassVar

from pydantic import Field, model_validator

from remediator.core import limits
from remediator.core.actions.base import Action, ActionPolicy, IamGrant, ValidationContext
from remediator.core.plan import GuardrailVerdict, PlannedStep
from remediator.core.ports import MutatingPorts
from remediator.core.reshard import min_scale_down


class ReshardPolicy(ActionPolicy):
    min_shards: int = Field(1, ge=1, le=limits.MAX_SHARDS_PER_STREAM, description="Never go below this.")
    max_shards: int = Field(
        ..., ge=1, le=limits.MAX_SHARDS_PER_STREAM, description="Never go above this (required: no default)."
    )
    target_utilisation: float = Field(
        0.6, gt=0.05, le=0.9, description="Write utilisation a reshard up aims for at the observed peak."
    )
    saturated_at: float = Field(
        0.8, gt=0.1, le=1.0, description="Peak write utilisation from which the shards count as saturated."
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
        if self.target_utilisation >= self.saturated_at:
            raise ValueError(
                f"target_utilisation ({self.target_utilisation}) must be below saturated_at "
                f"({self.saturated_at}), or a reshard would leave the stream saturated"
            )
        return self


class ReshardAction(Action):
    name: ClassVar[str] = "reshard"
    policy_schema: ClassVar[type[ReshardPolicy]] = ReshardPolicy
    iam_grants: ClassVar[tuple[IamGrant, ...]] = (
        IamGrant(
            actions=("kinesis:UpdateShardCount",),
            scope="account",
            why="The Service Authorization Reference lists no resource type for kinesis:UpdateShardCount, "
            "so a statement scoped to stream ARNs may be denied in a real account. The remediator refuses "
            "any stream that is not in a policy before it calls AWS.",
        ),
    )

    def validate(self, step: PlannedStep, context: ValidationContext) -> list[GuardrailVerdict]:
        policy = context.policy.actions.reshard
        stream = context.evidence.stream
        current = stream.open_shards
        target = int(step.parameters["target_shards"])
        verdicts = [
            GuardrailVerdict(
                name="provisioned-mode",
                passed=stream.mode == "PROVISIONED",
                detail=f"stream is {stream.mode}"
                + ("" if stream.mode == "PROVISIONED" else "; on-demand streams are never resharded"),
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
        used = context.history.count_in_rolling_day(self.name, stream.name, context.now)
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

    def apply(self, step: PlannedStep, ports: MutatingPorts) -> dict[str, Any]:
        return ports.streams.update_shard_count(step.stream_arn, int(step.parameters["target_shards"]))

    def cli_command(self, stream_arn: str, parameters: dict[str, Any]) -> str:
        return (
            f"aws kinesis update-shard-count --stream-arn {shlex.quote(stream_arn)} "
            f"--target-shard-count {int(parameters['target_shards'])} --scaling-type UNIFORM_SCALING"
        )
