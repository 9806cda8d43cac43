"""The action registry's contract, in the style of Cloud Custodian: every action declares its policy
schema, the IAM it needs, how it validates a step, how it applies it, and the equivalent AWS CLI command.
The CDK stack builds the remediator's IAM policy from `iam_grants`; a meta-test checks every action."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field

from remediator.core.evidence import Evidence
from remediator.core.grants import IamGrant
from remediator.core.history import ActionHistory
from remediator.core.plan import GuardrailVerdict, PlannedStep

if TYPE_CHECKING:
    from remediator.core.policy import StreamPolicy
    from remediator.core.ports import MutatingPorts


class ActionPolicy(BaseModel):
    """Fields every action's policy block has: whether it may run, how often, and how soon again."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = Field(True, description="Let the remediator propose this action at all.")
    cooldown_minutes: int = Field(
        30, ge=1, le=1440, description="Minimum time between two applied actions of this kind on the stream."
    )
    daily_budget: int = Field(4, ge=0, le=100, description="Applied actions of this kind per stream per rolling 24 h.")


@dataclass(frozen=True)
class ValidationContext:
    policy: StreamPolicy
    evidence: Evidence
    history: ActionHistory
    now: datetime


class Action(ABC):
    name: ClassVar[str]
    policy_schema: ClassVar[type[ActionPolicy]]
    iam_grants: ClassVar[tuple[IamGrant, ...]]

    @abstractmethod
    def validate(self, step: PlannedStep, context: ValidationContext) -> list[GuardrailVerdict]:
        """Action-specific guardrails: AWS's limits for this call and the policy's bounds."""

    @abstractmethod
    def apply(self, step: PlannedStep, ports: MutatingPorts) -> dict[str, Any]:
        """Make the change. Called only after every guardrail passed and the kill switch was read."""

    @abstractmethod
    def cli_command(self, stream_arn: str, parameters: dict[str, Any]) -> str:
        """The AWS CLI command a person would type to make the same change."""
