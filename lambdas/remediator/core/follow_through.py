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
- was applied, reached its target, and its action says a fresh look may still find more to do (`Action.recheck`:
  a reshard up), for a symptom whose alarm shows the change as soon as it is in effect
  (`Symptom.recheck_after_change`: write-throttling; not iterator-age, which stays high while the backlog
  drains): if the alarm is still in ALARM once the change shows in its metrics, the plan is made again. A
  reshard sized from the evidence may fall short of the load (a throttled stream's IncomingBytes is its capacity;
  the offered load is an estimate), and an alarm that stays in ALARM sends no new event. The follow-up runs at
  `SETTLE` (the stream ACTIVE again) plus the alarm's own time to clear (`recheck_wait`: the periods it needs to
  see the change), and reads only the minutes after `SETTLE` (`Decision.evidence_since`, kept in the audit row
  of the schedule and read back by `evidence_since`), so it never re-sizes from the minutes before the change.
  A recheck whose plan has no step looks again after the alarm's time (the stream may have been UPDATING for
  longer than SETTLE, or the load still growing), while the alarm stays in ALARM;
- was blocked only by transient guardrails (`TRANSIENT_GUARDRAILS`): the stream not ACTIVE (UPDATING) -> poll
  after `POLL_INTERVAL`; a cooldown -> when that cooldown ends.
- is a "not yet" of a symptom whose alarm describes a lasting state (`Symptom.looks_again`: under-utilised; the
  caller passes `look_again`, the interval): the diagnosis found nothing to remove yet (no step), or the scale-in
  was blocked only by its stabilisation window (`LOOK_AGAIN_GUARDRAILS`) and transient guardrails, or it reached
  its target while the alarm stays in ALARM (the load may still be falling). It looks again after `look_again`:
  the alarm's own window (an hour by default: each look judges an hour the last one did not), at least
  `LOOK_AGAIN_MIN_INTERVAL`, and never before a scale-in's stabilisation window its own step restarted is over.
  Without this, an under-utilised alarm fired on an evening's falling load, answered "not yet", stays in ALARM
  all night and never fires again. A final answer (an on-demand stream, missing data) is not looked at again.
Any other outcome ends the chain: nothing to do, a failed step (never retried blindly), a guardrail that time
does not lift (bounds, budgets, AWS's daily scalings, a disabled action, a scale-in not opted in), the kill
switch, a dry run. The follow-up itself checks that the alarm is still in ALARM, and ends quietly when it is not.

Cooldown within a chain: the cooldown stops a *new* trigger from acting again too soon. A follow-up of the
same alarm state change is not held by the cooldown its own chain's steps started (core.history
`ActionHistory.for_chain`); it waits `SETTLE` for the reshard instead, and the daily budget, AWS's daily
scalings and every other guardrail apply as they are. A cooldown started by anything else (another alarm,
an earlier state change, a person through the remediator) blocks it, and it is retried when that ends.

Bounds: at most `MAX_FOLLOW_UPS` follow-ups per alarm state change, none later than `MAX_CHAIN` after the
alarm went to ALARM. A chain that looks again (`look_again`) has its own, longer bounds, `LOOK_AGAIN_MAX_FOLLOW_UPS`
and `LOOK_AGAIN_MAX_CHAIN` (`bounds`): a night is longer than 6 h, and its looks are an hour apart, not minutes;
the scale-up's bounds stay as they were, since a scale-up chain that needs more than 8 follow-ups is a fault, not a
long night. When the alarm goes back to OK, pending follow-ups are deleted (service.resolve).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final, Literal

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
# A chain that looks again (a lasting state: under-utilised) looks at most this often, at most this many times, and
# no later than this after the alarm went to ALARM: 12 h covers a night from the evening's alarm to the morning's load,
# 16 follow-ups the hourly looks of those 12 h plus a few polls and steps. A scale-in is never urgent: an alarm still
# in ALARM after that waits for its next state change (the stream keeps its shards: the safe side).
LOOK_AGAIN_MIN_INTERVAL = timedelta(minutes=30)
LOOK_AGAIN_MAX_FOLLOW_UPS = 16
LOOK_AGAIN_MAX_CHAIN = timedelta(hours=12)
# Guardrails that, in a chain that looks again, are a "not yet": calm comes back with time.
LOOK_AGAIN_GUARDRAILS = frozenset({"stabilisation-window"})

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
    attempt: int = Field(..., ge=1, le=max(MAX_FOLLOW_UPS, LOOK_AGAIN_MAX_FOLLOW_UPS))
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
    recheck: bool = False  # applied, reached its target, and a fresh plan after it may still find more to do


@dataclass(frozen=True)
class Decision:
    """A follow-up `attempt` at `at`, or none (at is None); `reason` says why, in a sentence."""

    at: datetime | None
    attempt: int
    reason: str
    needed: bool = False  # more was needed, whether or not the bounds let a follow-up be scheduled
    # The follow-up reads evidence only from this time on (a recheck: the minutes after the change), None: as usual.
    evidence_since: datetime | None = None

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
                recheck=outcome.outcome == StepResult.APPLIED and action.recheck(step.parameters, action.block(policy)),
            )
        )
    return facts


def recheck_wait(period_seconds: int, evaluation_periods: int, datapoints_to_alarm: int) -> timedelta:
    """How long an alarm takes to show a change once it is in effect: at least the `datapoints_to_alarm` periods it
    judges on, and as many as it needs to go back to OK (CloudWatch: fewer than M of the last N periods breaching,
    so N - M + 1 periods without a breach)."""
    periods = max(datapoints_to_alarm, evaluation_periods - datapoints_to_alarm + 1)
    return timedelta(seconds=period_seconds * periods)


def evidence_since(schedules: Iterable[Mapping[str, Any]]) -> datetime | None:
    """From the parameters of a chain's scheduled follow-ups (audit rows), the time its evidence starts at: the
    latest recheck's `evidence_since`, so that polls after a recheck keep reading only the minutes after the change.
    None: the symptom's usual window."""
    found = []
    for parameters in schedules:
        value = parameters.get("evidence_since")
        if value:
            found.append(datetime.fromisoformat(str(value)))
    return max(found, default=None)


Wanted = tuple[datetime, str, datetime | None]  # when, why, and the start of the evidence the plan reads then


def bounds(look_again: timedelta | None) -> tuple[int, timedelta]:
    """The follow-ups a chain may have and how long after the alarm it may last: longer for a chain that looks
    again (see the module docstring)."""
    if look_again is not None:
        return LOOK_AGAIN_MAX_FOLLOW_UPS, LOOK_AGAIN_MAX_CHAIN
    return MAX_FOLLOW_UPS, MAX_CHAIN


def look_again_interval(alarm_window: timedelta) -> timedelta:
    """How long a chain that looks again waits between looks: the alarm's window, at least LOOK_AGAIN_MIN_INTERVAL."""
    return max(alarm_window, LOOK_AGAIN_MIN_INTERVAL)


def _wanted(
    step: StepFacts, now: datetime, recheck_after: timedelta | None, look_again: timedelta | None = None
) -> Wanted | None:
    """When this step wants the plan made again, and why; None when it does not."""
    if step.result == StepResult.APPLIED:
        if step.more_to_do:
            wait = step.wait if step.wait is not None else SETTLE
            return now + wait, f"{step.action} applied one step of several", None
        if step.recheck and recheck_after is not None:
            settled = now + SETTLE
            return (
                settled + recheck_after,
                f"{step.action} reached its target; should the alarm still be in ALARM once the change shows in its "
                "metrics, the plan is made again from the minutes after it",
                settled,
            )
        if look_again is not None:
            wait = max(look_again, step.wait or timedelta(0))
            return now + wait, f"{step.action} reached its target; while the alarm stays in ALARM it looks again", None
        return None
    if step.result != StepResult.BLOCKED or not step.blocked_by:
        return None  # failed, or blocked by the kill switch
    lifts = TRANSIENT_GUARDRAILS | (LOOK_AGAIN_GUARDRAILS if look_again is not None else frozenset())
    if not step.blocked_by <= lifts:
        return None  # blocked by a guardrail that time does not lift
    at = now
    if "stream-active" in step.blocked_by:
        at = max(at, now + POLL_INTERVAL)
    if "cooldown" in step.blocked_by and step.cooldown_ends is not None:
        at = max(at, step.cooldown_ends)
    if look_again is not None and step.blocked_by & LOOK_AGAIN_GUARDRAILS:
        at = max(at, now + look_again)
        why = f"{step.action} not yet: blocked only by {', '.join(sorted(step.blocked_by))}; it looks again"
        return at, why, None
    return at, f"{step.action} blocked only by {', '.join(sorted(step.blocked_by))}", None


def decide(
    *,
    mode: Mode,
    steps: Sequence[StepFacts],
    attempt: int,
    origin: datetime,
    now: datetime,
    recheck_after: timedelta | None = None,
    rechecking: datetime | None = None,
    look_again: timedelta | None = None,
) -> Decision:
    """Whether the trigger `attempt` (0: the alarm's own change) needs a follow-up, and when.

    `recheck_after`: the alarm's time to show a change (`recheck_wait`); None: no recheck after a step that reached
    its target (the alarm is not known). `rechecking`: this trigger is a recheck (or a follow-up after one) and read
    the evidence from then on; when its plan had no step at all, it looks again after `recheck_after` (the change
    may not have shown yet: the stream may have taken longer than SETTLE to be ACTIVE), while the alarm stays in
    ALARM and the bounds allow. `look_again`: the symptom's alarm describes a lasting state, and this trigger's answer
    was a "not yet" that time may change (the caller passes None for a final answer): it looks again after this
    interval, within the longer bounds of such a chain (`bounds`)."""
    following = attempt + 1
    most, longest = bounds(look_again)
    if mode == Mode.DRY_RUN:
        return Decision(None, following, "dry run: nothing changed, so there is nothing to follow through")
    if any(s.result == StepResult.FAILED for s in steps):
        return Decision(None, following, "a step failed: follow-through never retries a failed change")
    wanted = [w for w in (_wanted(s, now, recheck_after, look_again) for s in steps) if w is not None]
    if not steps and rechecking is not None and recheck_after is not None:
        why = "the recheck found nothing to change yet; the alarm may not show the change yet, so it looks again"
        wanted = [(now + recheck_after, why, rechecking)]
    elif not steps and look_again is not None:
        why = "the diagnosis found nothing to change yet; while the alarm stays in ALARM it looks again"
        wanted = [(now + look_again, why, None)]
    if not wanted:
        return Decision(None, following, "no step left anything that a later attempt could do")
    at, why, since = min(wanted, key=lambda w: (w[0], w[1]))  # the earliest; on a tie, by reason
    at = max(at, now + MIN_LEAD).replace(microsecond=0) + timedelta(seconds=1)
    if following > most:
        return Decision(
            None, following, f"{why}, but the {most} follow-ups of this alarm state change are used up",
            needed=True,
        )  # fmt: skip
    if at > origin + longest:
        return Decision(
            None,
            following,
            f"{why}, but follow-through ends {longest} after the alarm went to ALARM ({origin:%Y-%m-%d %H:%M} UTC)",
            needed=True,
        )
    return Decision(at, following, why, needed=True, evidence_since=since)


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
