"""The action contract, in the style of Cloud Custodian. An action is one file in this package that declares:

- `id`, `title`: the same id everywhere (policy block, plans, audit rows, docs);
- `policy_schema`: its block under `actions:` in a stream's policy (an ActionPolicy: enabled, cooldown,
  daily budget, plus its own bounds);
- `grants`: the IAM it needs, each on a resource scope (stream, stream consumer, Lambda function,
  event-source mapping, DynamoDB table, or account-wide where the Service Authorization Reference lists
  no resource type). The stack builds the role from these, and `apply` may call nothing else;
- `shape(proposal, context)`: turns what a diagnosis asked for into this call's parameters;
- `checks(step, context)`: its guardrails (AWS's limits for the call, the policy's bounds);
- `apply(step, aws)`: the change, through the write ports (one per AWS service);
- `confirm(step, aws)`: whether the change was made, re-read through the read ports after a call that failed
  without saying (a 5xx, a timeout): True made, False not made, None cannot tell. Every action implements it
  (a test fails otherwise); it reads only what its grants allow;
- `cli_command(step)`: the AWS CLI command a person would type, shell-quoted;
- `summary(parameters)`: the one line e-mails and CLI tables print; `changes(parameters)`: each
  setting it changes, before -> after;
- `usage_after(usage, parameters)`: what the step changes in what the stream is billed for (shards,
  retention, consumers; core/cost.py), so that every plan shows its monthly cost before -> after;
- `sample_parameters`: a representative step's parameters, for the contract tests and the docs;
- `gather(policy, stream, aws, now=...)` and `read_grants`: facts the action's shape and checks need beyond
  the symptom's evidence (AWS's own count of a stream's scalings, the account's shard quota), read through a
  read-only view limited to `read_grants`, only when a diagnosis proposes the action; kept, JSON-able, in
  `Evidence.facts[<action id>]` so a plan can be replayed. A failed read should be a fact too (the checks
  then say what they could not read), not an exception.
- `more_to_do(parameters, block)`: whether an applied step of these parameters left part of the need undone (AWS's
  per-call limits): follow-through (remediator.core.follow_through) then takes the next step. Default: no.

It registers itself with `@REGISTRY.action` (remediator.core.registry).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, ClassVar, Generic, TypeVar

from remediator.core.cost import Usage
from remediator.core.evidence import Evidence, StreamState
from remediator.core.grants import IamGrant
from remediator.core.history import ActionHistory
from remediator.core.plan import Change, GuardrailVerdict, PlannedStep, Proposal
from remediator.core.policy import ActionPolicy, StreamPolicy

if TYPE_CHECKING:
    from remediator.core.ports import ReadPorts, WritePorts

PolicyT = TypeVar("PolicyT", bound=ActionPolicy)


@dataclass(frozen=True)
class ValidationContext:
    policy: StreamPolicy
    evidence: Evidence
    history: ActionHistory
    now: datetime


class Action(ABC, Generic[PolicyT]):
    id: ClassVar[str]
    title: ClassVar[str]
    policy_schema: ClassVar[type[ActionPolicy]]
    grants: ClassVar[tuple[IamGrant, ...]]
    sample_parameters: ClassVar[dict[str, Any]]
    # Reads for `gather`: granted whenever the action is enabled, in dry-run too (a dry-run plan runs the checks).
    read_grants: ClassVar[tuple[IamGrant, ...]] = ()

    def block(self, policy: StreamPolicy) -> PolicyT:
        block: PolicyT = policy.block("actions", self.id, self.policy_schema)  # type: ignore[assignment]
        return block

    @property
    def iam_actions(self) -> frozenset[str]:
        return frozenset(action for grant in self.grants for action in grant.actions)

    @property
    def read_iam_actions(self) -> frozenset[str]:
        return frozenset(action for grant in self.read_grants for action in grant.actions)

    def gather(
        self, policy: StreamPolicy, stream: StreamState, aws: ReadPorts, *, now: datetime | None = None
    ) -> dict[str, Any]:
        """Facts beyond the evidence, read through `aws` (only the reads in `read_grants`). None by default.

        `now` is the evidence's time (the core reads no clock)."""
        return {}

    def facts(self, context: ValidationContext) -> dict[str, Any]:
        """What this action's gather read for the plan being made ({} when it read nothing)."""
        facts = context.evidence.facts.get(self.id, {})
        return facts if isinstance(facts, dict) else {}

    def shape(self, proposal: Proposal, context: ValidationContext) -> Proposal:
        """What this call does about the proposal (by default, exactly what was asked)."""
        return proposal

    @abstractmethod
    def checks(self, step: PlannedStep, context: ValidationContext) -> list[GuardrailVerdict]:
        """Action-specific guardrails: AWS's limits for this call and the policy's bounds."""

    @abstractmethod
    def apply(self, step: PlannedStep, aws: WritePorts) -> dict[str, Any]:
        """Make the change. Called only after every guardrail passed and the kill switch was read."""

    def confirm(self, step: PlannedStep, aws: ReadPorts) -> bool | None:
        """After `apply` raised without AWS saying whether it made the change (a 5xx, a timeout, a failure after
        an earlier change of the step): re-read and answer True (made), False (not made) or None (cannot tell;
        counted as made for cooldowns and budgets). The default cannot tell."""
        return None

    @abstractmethod
    def cli_command(self, stream_arn: str, parameters: dict[str, Any]) -> str:
        """The AWS CLI command a person would type to make the same change (every value shell-quoted)."""

    @abstractmethod
    def summary(self, parameters: dict[str, Any]) -> str:
        """One line for e-mail subjects and CLI tables: 'reshard 2 -> 4 shards'."""

    def changes(self, parameters: dict[str, Any]) -> list[Change]:
        """What the step changes, before -> after, for `plan --json` and the e-mails."""
        return []

    def usage_after(self, usage: Usage, parameters: dict[str, Any]) -> Usage:
        """The stream's billed usage once this step is done (core/cost.py). By default, unchanged: override it
        when the step changes shards, retention, consumers or the readers that poll."""
        return usage

    def more_to_do(self, parameters: dict[str, Any], block: PolicyT) -> bool:
        """True when this applied step reached only part of what was asked, and a next step within the policy's
        bounds (`block`) would go further."""
        return False

    def recheck(self, parameters: dict[str, Any], block: PolicyT) -> bool:
        """True when this applied step, having reached its target, may still leave the alarm in ALARM and a fresh
        plan on the minutes after it could go further within the policy's bounds (`block`): follow-through then
        looks again once the change shows in the alarm's metrics (remediator.core.follow_through)."""
        return False

    def next_step_after(self, parameters: dict[str, Any], block: PolicyT) -> timedelta | None:
        """How long the follow-up of an applied step with more to do waits before planning again (and, in a chain
        that looks again, the least wait before its next look); None: the default settle time
        (remediator.core.follow_through.SETTLE)."""
        return None

    def bounds(self, block: PolicyT) -> str:
        """The policy's bounds for this action, in a few words, for the `validate` table."""
        return ""
