"""Write-ahead intents and the per-stream lease, as data (the rules are in remediator.writeahead).

- An Intent is the audit log's record that a mutating step is about to run for one trigger: its key is a
  function of the trigger's identity and the step's action, so every delivery of the same trigger (Lambda's
  retries, a duplicate EventBridge delivery) finds the same intent.
- A Lease says which trigger is planning and acting on a stream right now, and until when at the latest.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict

from remediator.core.alarm import AlarmTrigger
from remediator.core.outcome import AuditEntry
from remediator.core.plan import PlannedStep

# Separates the parts of a key. Keys are only ever compared whole (never split), so the separator need not be
# impossible in an alarm name.
SEP = "#"


def trigger_identity(trigger: AlarmTrigger) -> str:
    """What makes one trigger one unit of work: the alarm and its state change.

    The only place the identity is spelled. A trigger kind that acts more than once per state change (a
    follow-through attempt) must add what tells its attempts apart here, so each attempt gets its own
    intents and each retry of one attempt finds the same ones.
    """
    parts = [trigger.alarm_name, trigger.state_timestamp]
    if trigger.member:  # a member's alarm may bear the same name, at the same time, as one in another account
        parts = [f"{trigger.account}/{trigger.region}", *parts]
    attempt = getattr(trigger, "attempt", None)  # follow-through (H-FOLLOW): the attempt number, if any
    if attempt:
        parts.append(f"attempt-{attempt}")
    return SEP.join(parts)


def step_slot(action: str, occurrence: int) -> str:
    """A step's place in its trigger: the action, and which of that action's steps (a plan may tune two
    functions' mappings) counted from 1."""
    return action if occurrence <= 1 else f"{action}{SEP}{occurrence}"


class Intent(BaseModel):
    """A mutating step claimed by one trigger, and the audit row that tells what became of it."""

    model_config = ConfigDict(frozen=True)

    trigger: str  # trigger_identity(...)
    slot: str  # step_slot(...)
    step: PlannedStep
    # The audit row (in-flight until finished); None when a delivery died between claiming and writing it.
    entry: AuditEntry | None = None
    # Where the row is, for finishing it (the audit log's own reference).
    row: dict[str, Any] = {}
    # True on the intent AuditLog.begin returns when that call claimed it; False when found claimed before.
    claimed: bool = False


class Lease(BaseModel):
    """Who holds a stream's lease (a trigger planning and acting on it) and until when."""

    model_config = ConfigDict(frozen=True)

    stream: str
    holder: str  # trigger_identity(...)
    alarm_name: str
    symptom: str
    until: datetime
