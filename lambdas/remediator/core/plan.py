"""What the core produces: a diagnosis, the steps it would take with each guardrail's verdict, and advice."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, computed_field

from remediator.core.cost import CostEstimate
from remediator.core.policy import Mode


class Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Figure(Frozen):
    """One number of evidence, as people read it: 'peak write utilisation = 92 %' ('n/a' without data)."""

    name: str
    value: float | None  # None: no datapoint to compute it from; shown as n/a, never as 0
    unit: str = ""

    def render(self) -> str:
        if self.value is None:
            return "n/a"
        whole = self.value == int(self.value)
        shown = f"{self.value:,.0f}" if whole or abs(self.value) >= 100 else f"{self.value:,.2f}"
        return f"{shown} {self.unit}".strip()


class Advice(Frozen):
    title: str
    detail: str
    cli_command: str | None = None


class Cause(StrEnum):
    """Causes several symptoms share. A symptom may name its own (any kebab-case id)."""

    SATURATED = "shards-saturated"
    HOT_PARTITION_KEY = "hot-partition-key"
    SLOW_CONSUMER = "slow-consumer"
    ON_DEMAND = "on-demand-stream"
    NOT_REPRODUCED = "not-reproduced"
    INSUFFICIENT_EVIDENCE = "insufficient-evidence"


class Proposal(Frozen):
    """A change the diagnosis asks for, before any guardrail has looked at it."""

    action: str
    parameters: dict[str, Any]
    reason: str


class Diagnosis(Frozen):
    cause: Annotated[str, StringConstraints(pattern=r"^[a-z0-9]+(-[a-z0-9]+)*$")]
    summary: str
    figures: tuple[Figure, ...] = ()
    proposals: tuple[Proposal, ...] = ()
    advice: tuple[Advice, ...] = ()


class GuardrailVerdict(Frozen):
    name: str
    passed: bool
    detail: str


# The setting a reshard's Change names: the remediator's OpenShards metric follows an applied one.
OPEN_SHARDS_SETTING = "open shards"


class Change(Frozen):
    """One setting a step changes: `shards 2 -> 4`, `retention_hours 24 -> 48`."""

    setting: str
    before: Any
    after: Any

    def render(self) -> str:
        return f"{self.setting} {self.before} -> {self.after}"


class PlannedStep(Frozen):
    action: str
    stream: str
    stream_arn: str
    parameters: dict[str, Any]
    reason: str
    summary: str  # one line, as e-mails and CLI tables print it: "reshard 2 -> 4 shards"
    cli_command: str
    changes: tuple[Change, ...] = ()
    guardrails: tuple[GuardrailVerdict, ...] = ()
    # The stream's monthly cost before -> after this step (the lines it changes), on top of the allowed
    # steps before it; None only when it could not be estimated.
    cost: CostEstimate | None = None

    @computed_field  # type: ignore[prop-decorator]
    @property
    def allowed(self) -> bool:
        return all(verdict.passed for verdict in self.guardrails)

    @property
    def changes_nothing(self) -> bool:
        """A step whose every change leaves its setting as it is (`reshard 1 -> 1`): nothing to run."""
        return bool(self.changes) and all(change.before == change.after for change in self.changes)

    @property
    def blocking_reasons(self) -> list[str]:
        return [f"{v.name}: {v.detail}" for v in self.guardrails if not v.passed]


class Plan(Frozen):
    stream: str
    symptom: str
    mode: Mode
    alarm_name: str
    created_at: datetime
    diagnosis: Diagnosis
    steps: tuple[PlannedStep, ...] = Field(default=())
    # The stream's monthly cost now -> after every allowed step, itemised (core/cost.py).
    cost: CostEstimate | None = None
    # Minutes of metrics the diagnosis read (a follow-through recheck reads fewer: only those after the change).
    evidence_minutes: int | None = None

    @property
    def actions(self) -> list[PlannedStep]:
        return [step for step in self.steps if step.allowed]

    @property
    def blocked(self) -> list[PlannedStep]:
        return [step for step in self.steps if not step.allowed]

    def as_report(self) -> dict[str, Any]:
        """The machine-readable form printed by `plan --json` and stored in the audit table."""
        return {
            "stream": self.stream,
            "symptom": self.symptom,
            "mode": self.mode.value,
            "alarm_name": self.alarm_name,
            "created_at": self.created_at.isoformat(),
            "diagnosis": {
                "cause": str(self.diagnosis.cause),
                "summary": self.diagnosis.summary,
                "figures": [f.model_dump() for f in self.diagnosis.figures],
            },
            "actions": [
                {
                    "action": s.action,
                    "summary": s.summary,
                    "parameters": s.parameters,
                    "changes": [c.model_dump(mode="json") for c in s.changes],
                    "reason": s.reason,
                    "cli_command": s.cli_command,
                    "guardrails": [g.model_dump() for g in s.guardrails],
                    "cost": s.cost.report() if s.cost else None,
                }
                for s in self.actions
            ],
            "blocked": [
                {
                    "action": s.action,
                    "summary": s.summary,
                    "parameters": s.parameters,
                    "changes": [c.model_dump(mode="json") for c in s.changes],
                    # None for a step that changes nothing (`reshard 1 -> 1`): there is no command to run.
                    "cli_command": None if s.changes_nothing else s.cli_command,
                    "reasons": s.blocking_reasons,
                    "cost": s.cost.report() if s.cost else None,
                }
                for s in self.blocked
            ],
            "advice": [a.model_dump() for a in self.diagnosis.advice],
            "cost": self.cost.report() if self.cost else None,
        }
