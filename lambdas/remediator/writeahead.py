"""At most one change per trigger, whatever fails around it: the write-ahead audit, the settling of uncertain
changes, and the per-stream lease.

A trigger is one alarm state change (core.intent.trigger_identity: alarm name + state timestamp, + the
follow-through attempt when there is one). Lambda delivers it at least once: a duplicate EventBridge delivery,
or one of Lambda's two retries after the function raised, timed out or died. Powertools idempotency stops a
second run once a first one succeeded; these rules make every other run safe.

Invariants:

1. Write-ahead. No mutating call is made for a step before its intent is claimed (a conditional write keyed
   by the trigger's identity and the step's slot) and its audit row written as `in-flight`. The row is then
   finished as what happened: applied, failed, limit-reached or uncertain.
2. One claim, one change. A step whose slot is already claimed is never carried out again. A delivery that
   finds claims of its trigger (an earlier one died or raised after claiming) does not plan: it re-reads
   what each claimed step did (Action.confirm), finishes the rows truthfully and e-mails (`resume`).
3. Counted before it is known. Cooldowns and budgets count `in-flight` and `uncertain` rows as applied
   (core.outcome.COUNTED_AS_APPLIED): a change that may have been made is never the reason for another.
4. No SDK retry of a change. Mutating calls go through a client with one attempt (clients.aws.WRITE_CONFIG).
   A 5xx, a timeout or a dropped connection is settled by re-reading (confirm: True applied, False not
   applied, None uncertain) before anything is audited. A refusal (4xx) on the step's first change made no
   change; LimitExceededException is audited `limit-reached` ("AWS limit reached"), e-mailed once, and not
   retried by anyone.
5. Nothing after a change makes the stream change again. Once a change was sent, a failure to read the kill
   switch stops the rest like an engaged switch, and a failure to finish a row or to e-mail is logged and the
   work finished; only then does the invocation raise (BookkeepingFailed), so that Lambda's retry resumes
   (invariant 2): it finishes the rows and sends the e-mail, or ends in the dead-letter queue. A retry may
   send the e-mail twice; it never changes the stream twice.
6. Fail before, not after. Before any change, a failed read (policy, kill switch, evidence, audit) raises:
   Lambda retries, Powertools deletes its idempotency record (nothing is cached), and the last failure lands
   in the dead-letter queue. A change is only started with time left for the worst case of what follows it
   (clients.aws.seconds_after_change); otherwise the invocation raises before it and the retry starts afresh.
7. One stream, one planner. In enforce mode, a trigger plans and acts only while holding its stream's lease
   (a conditional write: free, expired, or already held by this trigger: a delivery resuming its own dead
   predecessor's). The lease lasts the function's timeout plus a margin, is given back in a `finally`, and
   expires on its own if the function dies. A trigger that finds the lease held by another is audited
   `coordinated` with the holder's alarm and symptom, and e-mails nothing: the holder's plan covers the
   stream. Its symptom is not folded into the holder's plan (the holder planned from evidence already
   gathered); it is planned again when its alarm next goes into ALARM, by which time the holder's change
   counts in its cooldowns and budgets. Dry-run streams take no lease: they change nothing.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from remediator.core.actions.base import Action
from remediator.core.alarm import AlarmTrigger
from remediator.core.deployment import FUNCTION_TIMEOUT_SECONDS, LEASE_MARGIN_SECONDS
from remediator.core.intent import Intent, Lease, step_slot, trigger_identity
from remediator.core.outcome import AuditEntry, Outcome, OutcomeStatus, StepOutcome, StepResult
from remediator.core.plan import Plan, PlannedStep
from remediator.core.policy import Mode, StreamPolicy
from remediator.core.ports import (
    ChangeFailed,
    ChangeRefused,
    DeclaredOnly,
    KillSwitchEngaged,
    KillSwitchGuard,
    KillSwitchUnreadable,
    LimitReached,
)
from remediator.core.registry import REGISTRY
from remediator.core.render import applied_detail
from remediator.observability import logger

if TYPE_CHECKING:
    from remediator.service import Dependencies

# Rows a delivery re-reads when it resumes: a row finished as anything else tells the truth already.
UNSETTLED = (OutcomeStatus.IN_FLIGHT, OutcomeStatus.UNCERTAIN)


class BookkeepingFailed(RuntimeError):
    """A change was made (or may have been), and finishing its audit row or e-mailing about it failed. Raised
    once everything else is done, so that Lambda's retry resumes the trigger (it never changes anything)."""


class NoTimeForChange(RuntimeError):
    """Too little time left in the invocation to make a change and settle, audit and e-mail it."""


@dataclass
class Run:
    """What one invocation did so far: whether any change was sent, and what bookkeeping failed after it."""

    changed: bool = False
    failures: list[str] | None = None

    def failed(self, what: str, exc: Exception) -> None:
        logger.exception(f"{what} failed after a change; the retry will resume", extra={"error": str(exc)})
        self.failures = [*(self.failures or []), f"{what}: {type(exc).__name__}: {exc}"]

    def raise_if_failed(self) -> None:
        if self.failures:
            raise BookkeepingFailed("; ".join(self.failures))


def describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


# --- the lease -------------------------------------------------------------------------------------------


@contextmanager
def stream_lease(
    trigger: AlarmTrigger, policy: StreamPolicy, deps: Dependencies, now: datetime
) -> Iterator[Lease | None]:
    """Hold the stream's lease for the block: yields None when held (or not needed: dry-run), else the lease
    another trigger holds."""
    if policy.mode != Mode.ENFORCE:
        yield None
        return
    lease = Lease(
        stream=trigger.stream,
        holder=trigger_identity(trigger),
        alarm_name=trigger.alarm_name,
        symptom=trigger.symptom,
        until=now + timedelta(seconds=FUNCTION_TIMEOUT_SECONDS + LEASE_MARGIN_SECONDS),
    )
    other = deps.audit.acquire_lease(lease, now)
    if other is not None:
        yield other
        return
    try:
        yield None
    finally:
        try:
            deps.audit.release_lease(lease)
        except Exception as exc:  # it expires on its own
            logger.exception("Could not release the stream's lease", extra={"error": str(exc)})


def coordinated(
    trigger: AlarmTrigger, policy: StreamPolicy, holder: Lease, deps: Dependencies, now: datetime
) -> Outcome:
    detail = (
        f"coordinated with {holder.alarm_name} ({holder.symptom}), which holds the lease of stream "
        f"'{trigger.stream}' until {holder.until:%H:%M:%S} UTC: its plan covers the stream, and at most one change "
        "is in flight per stream. No change and no e-mail for this alarm; its symptom is planned again when it next "
        "goes into ALARM, with the other alarm's change counted in cooldowns and budgets"
    )
    deps.audit.record(
        AuditEntry(
            at=now,
            stream=trigger.stream,
            alarm_name=trigger.alarm_name,
            symptom=trigger.symptom,
            mode=policy.mode,
            outcome=OutcomeStatus.COORDINATED,
            reason=detail,
        )
    )
    return Outcome(status=OutcomeStatus.COORDINATED, stream=trigger.stream, symptom=trigger.symptom, detail=detail)


# --- carrying a plan out ---------------------------------------------------------------------------------


def carry_out(plan: Plan, trigger: AlarmTrigger, deps: Dependencies, now: datetime, run: Run) -> list[StepOutcome]:
    """Every step of the plan, each audited: blocked and dry-run steps in one row, changes write-ahead."""
    report = plan.as_report()
    seen: Counter[str] = Counter()
    results = []
    for step in plan.steps:
        seen[step.action] += 1
        entry = AuditEntry(
            at=now,
            stream=trigger.stream,
            alarm_name=trigger.alarm_name,
            symptom=trigger.symptom,
            mode=plan.mode,
            action=step.action,
            parameters=step.parameters,
            outcome=OutcomeStatus.IN_FLIGHT,
            reason=f"about to apply: {step.summary}",
            plan=report,
        )
        intent = Intent(
            trigger=trigger_identity(trigger), slot=step_slot(step.action, seen[step.action]), step=step, entry=entry
        )
        refused = why_not(step, plan.mode, deps, run)
        claimed = refused or _claim(intent, deps, run)
        if isinstance(claimed, Intent):
            result = _change(step, claimed, deps, run)
        else:  # not a change: audited in one row
            result = claimed
            bookkeep(run, "audit", lambda r=result, e=entry: deps.audit.record(_final(e, r)))
        if refused is None and result.kill_switch is None:  # why_not read the kill switch, and it was off
            result = result.model_copy(update={"kill_switch": "off"})
        results.append(result)
    return results


def _final(entry: AuditEntry, result: StepOutcome) -> AuditEntry:
    return entry.model_copy(update={"outcome": OutcomeStatus(result.outcome.value), "reason": result.detail})


def bookkeep(run: Run, what: str, call: Any) -> None:
    """Before any change a failure raises (the retry starts afresh); after one it is logged and remembered."""
    try:
        call()
    except Exception as exc:
        if not run.changed:
            raise
        run.failed(what, exc)


def why_not(step: PlannedStep, mode: Mode, deps: Dependencies, run: Run) -> StepOutcome | None:
    """Why the step is not carried out (blocked, rehearsed, kill switch, no time left), or None when it may be."""
    if not step.allowed:
        return StepOutcome(action=step.action, outcome=StepResult.BLOCKED, detail="; ".join(step.blocking_reasons))
    if mode == Mode.DRY_RUN:
        return StepOutcome(action=step.action, outcome=StepResult.DRY_RUN, detail=step.reason)
    # Read right before the change: an operator may have pulled it since the plan was made.
    try:
        engaged = deps.kill_switch.engaged()
    except KillSwitchUnreadable as exc:
        if not run.changed:
            raise
        return StepOutcome(
            action=step.action,
            outcome=StepResult.BLOCKED,
            detail=f"kill-switch: {exc}; taken as engaged, no change made",
            kill_switch=f"unreadable ({exc}), taken as engaged",
        )
    if engaged:
        return StepOutcome(
            action=step.action,
            outcome=StepResult.BLOCKED,
            detail="kill-switch: engaged; no change made",
            kill_switch="engaged",
        )
    left, needed = deps.time_left(), deps.seconds_after_change
    if left < needed:
        why = (
            f"{left:.0f} s left in this invocation, and a change needs {needed:.0f} s to be settled, audited "
            "and e-mailed"
        )
        if not run.changed:
            raise NoTimeForChange(why + "; Lambda's retry starts afresh")
        return StepOutcome(
            action=step.action, outcome=StepResult.BLOCKED, detail=f"not started: {why}", kill_switch="off"
        )
    return None


def _claim(intent: Intent, deps: Dependencies, run: Run) -> Intent | StepOutcome:
    """Claim the step's slot and write its in-flight row (write-ahead): the claimed intent, or why the step is
    not carried out."""
    step = intent.step
    try:
        found = deps.audit.begin(intent)
    except Exception as exc:
        if not run.changed:
            raise
        return StepOutcome(
            action=step.action,
            outcome=StepResult.BLOCKED,
            detail=f"not started: the write-ahead audit row could not be written ({describe(exc)}); no change made",
        )
    if found.claimed:
        return found
    state = found.entry.outcome if found.entry else "not written"
    return StepOutcome(
        action=step.action,
        outcome=StepResult.BLOCKED,
        detail=f"already claimed by another delivery of this alarm (its row: {state}); no second change",
    )


def _change(step: PlannedStep, intent: Intent, deps: Dependencies, run: Run) -> StepOutcome:
    """The only place a mutating call is made: after the intent is claimed. Never raises."""
    run.changed = True
    result = apply(step, deps)
    bookkeep(run, "finishing the audit row", lambda: deps.audit.finish(intent, result))
    return result


def apply(step: PlannedStep, deps: Dependencies) -> StepOutcome:
    action = REGISTRY.actions[step.action]
    guarded = KillSwitchGuard(deps.writes, deps.kill_switch)
    try:
        response = action.apply(step, DeclaredOnly(guarded, action.iam_actions, action.id))
    except KillSwitchEngaged as stop:
        outcome = StepResult.FAILED if stop.made else StepResult.BLOCKED  # a step left half done is a failure
        state = str(stop).removeprefix("kill-switch: ").split("; ")[0]
        return StepOutcome(
            action=step.action, outcome=outcome, detail=str(stop), kill_switch=f"off at first, then {state}"
        )
    except Exception as exc:  # audited and e-mailed, never retried blindly
        return settle(step, action, exc, guarded.made, deps)
    return StepOutcome(action=step.action, outcome=StepResult.APPLIED, detail=applied_detail(step, response))


def settle(step: PlannedStep, action: Action[Any], exc: Exception, made: list[str], deps: Dependencies) -> StepOutcome:
    """What a step that raised did to the stream: certain from AWS's answer where it can be, else re-read."""

    def result(outcome: StepResult, detail: str) -> StepOutcome:
        return StepOutcome(action=step.action, outcome=outcome, detail=detail)

    if not made:
        return result(StepResult.FAILED, f"{describe(exc)}; no change made")
    first, answer = len(made) == 1, aws_answer(exc)
    if first and isinstance(answer, LimitReached):
        return result(
            StepResult.LIMIT_REACHED,
            f"AWS limit reached: {answer.operation} answered {answer.code}: {answer.message}; no change made, and "
            "not retried (the next alarm plans again)",
        )
    if first and isinstance(answer, ChangeRefused):
        return result(StepResult.FAILED, f"refused by AWS: {describe(exc)}; no change made")
    happened = confirm(action, step, deps)
    if happened is True:
        return result(StepResult.APPLIED, f"applied: {describe(exc)}, but re-reading shows the change was made")
    if happened is False:
        return result(StepResult.FAILED, f"{describe(exc)}; re-reading shows no change was made")
    return result(
        StepResult.UNCERTAIN,
        f"cannot tell whether the change was made ({describe(exc)}, and re-reading could not settle it); counted "
        f"as applied for cooldowns and budgets. Check the stream; the change was: {step.cli_command}",
    )


def aws_answer(exc: BaseException) -> ChangeFailed | None:
    """AWS's answer behind the step's failure (an action may wrap it in its own error, `from` it)."""
    seen: BaseException | None = exc
    while seen is not None and not isinstance(seen, ChangeFailed):
        seen = seen.__cause__
    return seen


def confirm(action: Action[Any], step: PlannedStep, deps: Dependencies) -> bool | None:
    try:
        return action.confirm(step, DeclaredOnly(deps.reads, action.iam_actions, action.id, read_only=True))
    except Exception as exc:
        logger.exception("Could not re-read to settle a change", extra={"error": str(exc)})
        return None


# --- resuming a trigger an earlier delivery left unfinished -------------------------------------------------


def resume(
    trigger: AlarmTrigger, policy: StreamPolicy, intents: list[Intent], deps: Dependencies, now: datetime
) -> Outcome:
    """An earlier delivery of this trigger claimed steps and did not finish: settle each, never change again."""
    results = []
    for intent in sorted(intents, key=lambda i: (i.entry.at if i.entry else now, i.slot)):
        step = intent.step
        row = intent.entry
        if row is not None and row.outcome not in UNSETTLED:
            results.append(StepOutcome(action=step.action, outcome=StepResult(row.outcome.value), detail=row.reason))
            continue
        action = REGISTRY.actions[step.action]
        happened = confirm(action, step, deps)
        earlier = "an earlier delivery of this alarm started this change and stopped before recording its result"
        if happened is True:
            result = StepOutcome(
                action=step.action, outcome=StepResult.APPLIED, detail=f"applied: {earlier}; re-reading shows it made"
            )
        elif happened is False:
            result = StepOutcome(
                action=step.action,
                outcome=StepResult.FAILED,
                detail=f"not applied: {earlier}; re-reading shows no change. Not retried for this alarm: the next "
                "alarm plans again",
            )
        else:
            result = StepOutcome(
                action=step.action,
                outcome=StepResult.UNCERTAIN,
                detail=f"{earlier}; re-reading cannot tell whether it was made; counted as applied for cooldowns "
                f"and budgets. Check the stream; the change was: {step.cli_command}",
            )
        deps.audit.finish(intent, result)  # nothing changed in this invocation: a failure may raise and retry
        results.append(result)
    status = OutcomeStatus.of_steps({r.outcome for r in results})
    first = intents[0].step
    summary = "; ".join(REGISTRY.actions[i.step.action].summary(i.step.parameters) for i in intents)
    subject = f"[{status.value.upper()}] {trigger.stream}: {summary}"[:99]
    body = (
        f"Kinesis Remediator, ENFORCE: {status.value}, settled after an interrupted delivery of {trigger.alarm_name}.\n"
        "An earlier delivery of this alarm started the steps below and stopped before it finished recording or "
        "reporting them. This delivery re-read the stream and changed nothing.\n\n"
        + "\n".join(f"- {r.action}: {r.outcome}: {r.detail}" for r in results)
    )
    deps.notifier.send(trigger.stream, subject, body, policy.notify.emails)
    plan = intents[0].entry.plan if intents[0].entry else None
    return Outcome(
        status=status,
        stream=trigger.stream,
        symptom=trigger.symptom,
        detail=f"resumed an interrupted delivery ({first.action}); no change made by this one",
        steps=results,
        plan=plan,
    )
