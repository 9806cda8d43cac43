"""What came of a trigger, and the audit row that records it: typed, so no string does an enum's job."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from remediator.core.policy import Mode


class StepResult(StrEnum):
    """What happened to one planned step."""

    APPLIED = "applied"
    DRY_RUN = "dry-run"
    BLOCKED = "blocked"
    FAILED = "failed"
    # AWS refused the change for one of its limits (LimitExceededException): no change made, not retried.
    LIMIT_REACHED = "limit-reached"
    # The change may or may not have been made (a 5xx, a timeout), and re-reading could not tell.
    UNCERTAIN = "uncertain"


class OutcomeStatus(StrEnum):
    """What happened to one alarm trigger as a whole."""

    IGNORED = "ignored"
    NO_ACTION = "no-action"
    DRY_RUN = "dry-run"
    APPLIED = "applied"
    BLOCKED = "blocked"
    FAILED = "failed"
    # Follow-through (remediator.core.follow_through): a follow-up of the same alarm state change was scheduled;
    # the alarm went back to OK after an action (the "resolved" e-mail).
    FOLLOW_UP_SCHEDULED = "follow-up-scheduled"
    RESOLVED = "resolved"
    LIMIT_REACHED = "limit-reached"
    UNCERTAIN = "uncertain"
    # Write-ahead (remediator.writeahead): a change about to be made. Finished as applied, failed,
    # limit-reached or uncertain; a row left in-flight counts as applied for cooldowns and budgets.
    IN_FLIGHT = "in-flight"
    # Another alarm of the same stream held the stream's lease: its plan covers the stream.
    COORDINATED = "coordinated"

    @classmethod
    def of_steps(cls, results: set[StepResult]) -> OutcomeStatus:
        """The most telling result wins: a failure, a change that may have been made, a limit, then an applied
        change, then a rehearsal."""
        for result in (
            StepResult.FAILED,
            StepResult.UNCERTAIN,
            StepResult.LIMIT_REACHED,
            StepResult.APPLIED,
            StepResult.DRY_RUN,
        ):
            if result in results:
                return cls(result.value)
        return cls.BLOCKED


class StepOutcome(BaseModel):
    action: str
    outcome: StepResult
    detail: str
    # What the kill switch read right before the step was carried out ("off", "engaged", or why it could not be
    # read), for the e-mail's guardrails; None when it was not read (blocked, dry run). Not in results or logs.
    kill_switch: str | None = Field(default=None, exclude=True)


class Outcome(BaseModel):
    status: OutcomeStatus
    stream: str
    symptom: str
    detail: str
    steps: list[StepOutcome] = []
    plan: dict[str, Any] | None = None
    # For the remediator's metrics only, so left out of the Lambda's result and logs (exclude=True):
    # a no-action outcome whose advice e-mail went out (not held back by notify.advice_interval_minutes);
    advice_sent: bool = Field(default=False, exclude=True)
    # the stream's open shards as the remediator last knew them: read with the evidence, or the target of a
    # reshard it applied (None when no evidence was read).
    open_shards: int | None = Field(default=None, exclude=True)


class AuditEntry(BaseModel):
    """One row of the audit table: every decision, including "did nothing, and why"."""

    model_config = ConfigDict(frozen=True)

    at: datetime
    stream: str
    alarm_name: str
    symptom: str
    outcome: OutcomeStatus  # a step's result is recorded as the status of the same name
    reason: str
    mode: Mode | None = None
    action: str | None = None
    parameters: dict[str, Any] | None = None
    plan: dict[str, Any] | None = None
    # An advice e-mail went out with this row: the next one for the stream and symptom waits its interval.
    notified: bool = False
    # A member's stream (issue 11.4): the account and region it is in. None for the hub's own streams (their
    # rows are as before members existed); the audit log keyed for a member fills them in.
    account: str | None = None
    region: str | None = None


# Rows that count as a change made, for cooldowns and budgets: an applied change, a change that may have been
# made, and a change about to be made (or whose invocation died before finishing its row).
COUNTED_AS_APPLIED = (OutcomeStatus.APPLIED, OutcomeStatus.UNCERTAIN, OutcomeStatus.IN_FLIGHT)
