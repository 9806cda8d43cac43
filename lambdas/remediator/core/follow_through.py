"""Follow-through: a remedy that needs more than one step continues while its alarm stays in ALARM.

An alarm that stays in ALARM sends no new event, so a stream that needs 8x would get 2x and then nothing.
After each trigger, this module decides (pure: no AWS, no clock) whether a follow-up of the same alarm state
change is needed, and when. The service then creates a one-time EventBridge Scheduler schedule that invokes
the remediator with a `FollowUp` payload; the follow-up checks that the alarm is still in ALARM and runs the
same use case again (a new plan, every guardrail re-checked) as its own unit of work (trigger attempt n).

A follow-up is needed when a step
- was applied and its action says there is more to do (`Action.more_to_do`: a reshard whose target_shards is
  short of desired_shards, because one call may at most double or halve): at `SETTLE` after it, the time a
  reshard takes, or as long as the action says (`Action.next_step_after`: a scale-in waits out its
  stabilisation window); the stream must be ACTIVE again by then, or the follow-up polls;
- was blocked only by transient guardrails (`TRANSIENT_GUARDRAILS`): the stream not ACTIVE (UPDATING) -> poll
  after `POLL_INTERVAL`; a cooldown -> when that cooldown ends.
Any other outcome ends the chain: nothing to do, a failed step (never retried blindly), a guardrail that time
does not lift (bounds, budgets, AWS's daily scalings, a disabled action), the kill switch, a dry run.

Cooldown within a chain: the cooldown stops a *new* trigger from acting again too soon. A follow-up of the
same alarm state change is not held by the cooldown its own chain's steps started (core.history
`ActionHistory.for_chain`); it waits `SETTLE` for the reshard instead, and the daily budget, AWS's daily
scalings and every other guardrail apply as they are. A cooldown started by anything else (another alarm,
an earlier state change, a person through the remediator) blocks it, and it is retried when that ends.

Bounds: at most `MAX_FOLLOW_UPS` follow-ups per alarm state change, none later than `MAX_CHAIN` after the
alarm went to ALARM. When the alarm goes back to OK, pending follow-ups are deleted (service.resolve).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final, Literal

from pydantic import BaseModel, ConfigDict, Field

from remediator.core.history import ActionHistory
from remediator.core.outcome import StepOutcome, StepResult
from remediator.core.plan import Plan
from remediator.core.policy import Mode, StreamPolicy
from remediator.core.registry import REGISTRY

# Follow-ups per alarm state change: 1 -> 8 shards takes two, 1 -> 64 six, with room for two polls.
MAX_FOLLOW_UPS = 8
# No follow-up runs later than this after the alarm went to ALARM.
MAX_CHAIN = timedelta(hours=6)
# After an applied step, before re-planning: UpdateShardCount takes "a few minutes" (UNCONFIRMED: AWS gives
# no bound; a stream still UPDATING then is polled again, which costs one follow-up).
SETTLE = timedelta(minutes=2)
# A stream not ACTIVE (UPDATING) is looked at again after this.
POLL_INTERVAL = timedelta(minutes=2)
# Never schedule closer than this: an at() expression in the past would not fire (UNCONFIRMED) and the
# schedule is created after the step, so a minute of lead is kept.
MIN_LEAD = timedelta(minutes=1)
# Guardrails that time lifts by itself.
TRANSIENT_GUARDRAILS = frozenset({"stream-active", "cooldown"})

FOLLOW_UP_SOURCE: Final = "kinesis-remediator.follow-through"


class FollowUp(BaseModel):
    """The remediator's own event: the Input of a follow-through schedule (parsed by the handler)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    source: Literal["kinesis-remediator.follow-through"] = FOLLOW_UP_SOURCE
    version: Literal[1] = 1
    alarm_name: str = Field(..., min_length=1, max_length=255)
    stream: str
    symptom: str
    state_timestamp: str  # when the alarm went to ALARM: the origin of the chain
    attempt: int = Field(..., ge=1, le=MAX_FOLLOW_UPS)
    account: str
    region: str
    # A member's stream (issue 11.4): its alarm is read, and the stream reached, in `account`/`region`. Left out of
    # the hub's own follow-ups' payloads (clients.follow_through), which are as before members existed.
    member: bool = False

    @property
    def alarm_key(self) -> str:
        """The alarm, as the schedule's name digests it (service.alarm_key)."""
        return f"{self.account}/{self.region}/{self.alarm_name}" if self.member else self.alarm_name


@dataclass(frozen=True)
class StepFacts:
    """What the decision needs to know of one step of the plan just carried out."""

    action: str
    result: StepResult
    more_to_do: bool = False  # applied, and the action reached only part of what was asked
    blocked_by: frozenset[str] = frozenset()  # the guardrails that failed (empty when none did)
    cooldown_ends: datetime | None = None  # when the cooldown blocking it ends
    wait: timedelta | None = None  # how long an applied step's follow-up waits (None: SETTLE)


@dataclass(frozen=True)
class Decision:
    """A follow-up `attempt` at `at`, or none (at is None); `reason` says why, in a sentence."""

    at: datetime | None
    attempt: int
    reason: str
    needed: bool = False  # more was needed, whether or not the bounds let a follow-up be scheduled

    @property
    def follow_up(self) -> bool:
        return self.at is not None


def step_facts(
    plan: Plan, outcomes: Sequence[StepOutcome], policy: StreamPolicy, history: ActionHistory
) -> list[StepFacts]:
    """The facts of each carried-out step, from the plan's verdicts and the history the plan was made with."""
    facts = []
    for step, outcome in zip(plan.steps, outcomes, strict=True):
        action = REGISTRY.actions[step.action]
        failing = frozenset(v.name for v in step.guardrails if not v.passed)
        last = history.starts_cooldown(step.action, step.stream)
        ends = last.at + timedelta(minutes=action.block(policy).cooldown_minutes) if last else None
        facts.append(
            StepFacts(
                action=step.action,
                result=outcome.outcome,
                more_to_do=outcome.outcome == StepResult.APPLIED
                and action.more_to_do(step.parameters, action.block(policy)),
                blocked_by=failing,
                cooldown_ends=ends if "cooldown" in failing else None,
                wait=action.next_step_after(step.parameters, action.block(policy)),
            )
        )
    return facts


def _wanted(step: StepFacts, now: datetime) -> tuple[datetime, str] | None:
    """When this step wants the plan made again, and why; None when it does not."""
    if step.result == StepResult.APPLIED:
        if not step.more_to_do:
            return None
        return now + (step.wait if step.wait is not None else SETTLE), f"{step.action} applied one step of several"
    if step.result != StepResult.BLOCKED or not step.blocked_by or not step.blocked_by <= TRANSIENT_GUARDRAILS:
        return None  # failed, or blocked by the kill switch or by a guardrail that time does not lift
    at = now
    if "stream-active" in step.blocked_by:
        at = max(at, now + POLL_INTERVAL)
    if "cooldown" in step.blocked_by and step.cooldown_ends is not None:
        at = max(at, step.cooldown_ends)
    return at, f"{step.action} blocked only by {', '.join(sorted(step.blocked_by))}"


def decide(*, mode: Mode, steps: Sequence[StepFacts], attempt: int, origin: datetime, now: datetime) -> Decision:
    """Whether the trigger `attempt` (0: the alarm's own change) needs a follow-up, and when."""
    following = attempt + 1
    if mode == Mode.DRY_RUN:
        return Decision(None, following, "dry run: nothing changed, so there is nothing to follow through")
    if any(s.result == StepResult.FAILED for s in steps):
        return Decision(None, following, "a step failed: follow-through never retries a failed change")
    wanted = [w for w in (_wanted(s, now) for s in steps) if w is not None]
    if not wanted:
        return Decision(None, following, "no step left anything that a later attempt could do")
    at, why = min(wanted)
    at = max(at, now + MIN_LEAD).replace(microsecond=0) + timedelta(seconds=1)
    if following > MAX_FOLLOW_UPS:
        return Decision(
            None, following, f"{why}, but the {MAX_FOLLOW_UPS} follow-ups of this alarm state change are used up",
            needed=True,
        )  # fmt: skip
    if at > origin + MAX_CHAIN:
        return Decision(
            None,
            following,
            f"{why}, but follow-through ends {MAX_CHAIN} after the alarm went to ALARM ({origin:%Y-%m-%d %H:%M} UTC)",
            needed=True,
        )
    return Decision(at, following, why, needed=True)


def schedule_name(prefix: str, alarm_name: str, state_timestamp: str, attempt: int) -> str:
    """The schedule of one follow-up: a deployment's prefix, a digest of the alarm state change, the attempt.

    EventBridge Scheduler names are 1-64 of [0-9a-zA-Z-_.]; the prefix is what the remediator's IAM is scoped to.
    """
    digest = hashlib.sha256(f"{alarm_name}@{state_timestamp}".encode()).hexdigest()[:16]
    name = f"{prefix}{digest}-{attempt}"
    if len(name) > 64:
        raise ValueError(f"schedule name '{name}' is longer than EventBridge Scheduler's 64 characters")
    return name


def parse_timestamp(value: str) -> datetime:
    """A CloudWatch alarm state timestamp ("2026-11-26T02:59:00.000+0000") as an aware datetime."""
    for layout in ("%Y-%m-%dT%H:%M:%S.%f%z", "%Y-%m-%dT%H:%M:%S%z"):
        try:
            return datetime.strptime(value, layout)
        except ValueError:
            continue
    parsed = datetime.fromisoformat(value)
    if parsed.tzinfo is None:
        raise ValueError(f"timestamp '{value}' has no time zone")
    return parsed
