"""The remediation use case: trigger -> policy -> evidence -> plan -> guardrails -> act or e-mail -> audit.

Talks to AWS only through the ports it is given, so the CLI, the Lambda and the tests share it. How a change
is made at most once per trigger whatever fails around it (write-ahead audit, settling uncertain changes, the
per-stream lease) is remediator.writeahead's part.
"""

from __future__ import annotations

import hashlib
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from remediator import writeahead
from remediator.core import limits, render, resolution
from remediator.core.alarm import AlarmResolved, AlarmTrigger, deployed_alarms, parse_trigger_name, untrusted
from remediator.core.cost import with_cost_queries
from remediator.core.deployment import DEFAULT_ALARM_PREFIX
from remediator.core.evidence import Evidence
from remediator.core.follow_through import (
    FollowUp,
    bounds,
    decide,
    evidence_since,
    look_again_interval,
    parse_timestamp,
    recheck_wait,
    schedule_name,
    step_facts,
)
from remediator.core.history import ActionHistory, PastAction
from remediator.core.intent import trigger_identity
from remediator.core.outcome import AuditEntry, Outcome, OutcomeStatus, StepOutcome, StepResult
from remediator.core.plan import OPEN_SHARDS_SETTING, Cause, Plan
from remediator.core.planner import make_plan
from remediator.core.policy import Mode, StreamPolicy, lookup_scopes
from remediator.core.ports import (
    AlarmStates,
    AuditLog,
    DeclaredOnly,
    KillSwitch,
    MemberPorts,
    MemberUnreachable,
    MetricsReader,
    Notifier,
    PolicySource,
    ReadPorts,
    Scheduler,
    StreamReader,
    WritePorts,
)
from remediator.core.registry import REGISTRY


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class FollowThrough:
    """Follow-through's ports (core.follow_through): schedules named `schedule_prefix...`, and alarm states."""

    scheduler: Scheduler
    alarms: AlarmStates
    schedule_prefix: str


@dataclass(frozen=True)
class Members:
    """How the hub reaches the streams of other accounts and regions (issue 11.4).

    `connect(account, region, session_name)` gives that member's ports, raising MemberUnreachable when the hub may
    not act there (no external id, AssumeRole refused); `audit(account, region)` is the hub's audit log keyed for
    that member. `hub_account`/`hub_region` say which account and region are the hub's own (a policy may leave
    them out)."""

    connect: Callable[[str, str, str], MemberPorts]
    audit: Callable[[str, str], AuditLog]
    hub_account: str
    hub_region: str


@dataclass(frozen=True)
class Dependencies:
    streams: StreamReader
    metrics: MetricsReader
    reads: ReadPorts
    writes: WritePorts
    audit: AuditLog
    notifier: Notifier
    kill_switch: KillSwitch
    policies: PolicySource
    clock: Callable[[], datetime] = utc_now
    # Seconds left in this invocation (the Lambda's context; unlimited elsewhere), and the worst case of what
    # follows a change (clients.aws.seconds_after_change): a change starts only with that much time left.
    time_left: Callable[[], float] = lambda: math.inf
    seconds_after_change: float = 0.0
    # The deployment's alarm prefix: with a stream's policy it names every alarm this deployment created.
    alarm_prefix: str = DEFAULT_ALARM_PREFIX
    # None: no follow-through (the CLI, and a deployment without a Scheduler role): one step per trigger.
    follow_through: FollowThrough | None = None
    # None: this deployment acts on its own account and region only (the CLI); a member's trigger is ignored.
    members: Members | None = None


def gather_evidence(
    streams: StreamReader,
    metrics: MetricsReader,
    reads: ReadPorts,
    symptom: str,
    policy: StreamPolicy,
    now: datetime,
    since: datetime | None = None,
) -> Evidence:
    """The stream's state, exactly the series the symptom declared over the window it declared (plus the write
    load every plan's cost reads, when it did not declare it: one GetMetricData call), the facts its gather
    reads, and the facts of the actions its diagnosis proposes (Evidence.facts[<action id>]).

    `since`: read no minute before it (a follow-through recheck reads only the minutes after the change)."""
    plugin = REGISTRY.symptoms[symptom]
    state = streams.describe(policy.name)
    minutes = plugin.evidence_window_minutes
    if since is not None:
        minutes = max(1, min(minutes, int((now - since).total_seconds() // 60)))
    queries = with_cost_queries(plugin.evidence_queries(policy), policy.name)
    series = metrics.read(queries, end=now, minutes=minutes)
    facts = plugin.gather(policy, state, DeclaredOnly(reads, plugin.read_iam_actions, plugin.id, read_only=True), now)
    evidence = Evidence(stream=state, collected_at=now, window_minutes=minutes, series=series, facts=facts)
    return _with_action_facts(evidence, symptom, policy, reads, now)


def _with_action_facts(
    evidence: Evidence, symptom: str, policy: StreamPolicy, reads: ReadPorts, now: datetime
) -> Evidence:
    """Run the gather of each enabled action the diagnosis proposes (the diagnosis is pure, so make_plan reaches
    the same proposals from the same evidence). A disabled action reads nothing: its reads are not granted."""
    proposed = sorted({p.action for p in REGISTRY.symptoms[symptom].diagnose(evidence, policy).proposals})
    facts = dict(evidence.facts)
    for action_id in proposed:
        action = REGISTRY.actions.get(action_id)
        if action is None or not action.read_grants or not action.block(policy).enabled:
            continue  # an unknown action is make_plan's to report
        if action_id in facts:
            raise ValueError(f"symptom '{symptom}' gathered facts under '{action_id}', the id of an action")
        view = DeclaredOnly(reads, action.read_iam_actions, action.id, read_only=True)
        facts[action_id] = action.gather(policy, evidence.stream, view, now=now)
    return evidence if facts == evidence.facts else evidence.model_copy(update={"facts": facts})


def build_plan(
    trigger: AlarmTrigger,
    policy: StreamPolicy,
    streams: StreamReader,
    metrics: MetricsReader,
    reads: ReadPorts,
    history: ActionHistory,
    now: datetime,
) -> Plan:
    evidence = gather_evidence(streams, metrics, reads, trigger.symptom, policy, now)
    return make_plan(
        alarm_name=trigger.alarm_name,
        symptom=trigger.symptom,
        policy=policy,
        evidence=evidence,
        history=history,
        now=now,
    )


def _audit(deps: Dependencies, trigger: AlarmTrigger, now: datetime, **fields: Any) -> None:
    deps.audit.record(
        AuditEntry(at=now, stream=trigger.stream, alarm_name=trigger.alarm_name, symptom=trigger.symptom, **fields)
    )


# --- members (issue 11.4) ------------------------------------------------------------------------------------


class _Located:
    """The hub's notifier, for a member's stream: every e-mail names the account and region."""

    def __init__(self, notifier: Notifier, account: str, region: str) -> None:
        self._notifier, self._account, self._region = notifier, account, region

    def send(self, stream: str, subject: str, body: str, recipients: Sequence[str]) -> str:
        return self._notifier.send(stream, *render.located(subject, body, self._account, self._region), recipients)


def _for_member(trigger: AlarmTrigger | AlarmResolved, deps: Dependencies) -> Dependencies | None:
    """The hub's dependencies with the audit log keyed, and the e-mails labelled, for the trigger's member account
    and region; None when this deployment reaches no member."""
    if deps.members is None:
        return None
    return replace(
        deps,
        audit=deps.members.audit(trigger.account, trigger.region),
        notifier=_Located(deps.notifier, trigger.account, trigger.region),
    )


def _policy(trigger: AlarmTrigger | AlarmResolved, deps: Dependencies) -> StreamPolicy | None:
    """The trigger's stream's policy: by name for the hub's own streams; for a member's, only a policy that names
    that stream in the event's account and region (never another account's: a member cannot make the hub act on
    another member's streams). Raises when it cannot be read: retried, then dead-lettered."""
    if not trigger.member:
        return deps.policies.get(trigger.stream)
    members = deps.members
    if members is None:
        return None
    for account, region in lookup_scopes(trigger.account, trigger.region, members.hub_account, members.hub_region):
        policy = deps.policies.get(trigger.stream, account, region)
        if policy is not None:
            return policy
    return None


def _no_policy(trigger: AlarmTrigger | AlarmResolved) -> str:
    if not trigger.member:
        return (
            f"no valid policy for stream '{trigger.stream}' (none deployed, or it failed validation: see the "
            "remediator's logs); the remediator touches only streams with a valid policy"
        )
    return (
        f"no policy names stream '{trigger.stream}' in account {trigger.account}, region {trigger.region} (no "
        "policy for that account and region, or the stream is named only in another account's or region's policy, "
        "or its policy failed validation): the hub acts on a member's alarm only when a policy names that stream "
        "in the account and region the alarm comes from"
    )


SESSION_NAME_LIMIT = 64  # sts:AssumeRole's RoleSessionName: 2-64 of [\w+=,.@-]


def session_name(trigger: AlarmTrigger) -> str:
    """The RoleSessionName the member's CloudTrail shows for the hub's calls: the alarm's stream and symptom
    (stream names and symptom ids hold only allowed characters), cut with a digest when too long."""
    name = f"kr-{trigger.symptom}-{trigger.stream}"
    if len(name) <= SESSION_NAME_LIMIT:
        return name
    digest = hashlib.sha256(name.encode()).hexdigest()[:8]
    return f"{name[: SESSION_NAME_LIMIT - 9]}-{digest}"


def _reach(trigger: AlarmTrigger, policy: StreamPolicy, deps: Dependencies, now: datetime) -> Dependencies | Outcome:
    """The member's ports in place of the hub's, or the failed outcome (audited, e-mailed, not retried) when the
    hub may not act there. Any other failure (STS throttled or unreachable) is audited and raised: retried."""
    assert deps.members is not None  # _for_member returned deps
    try:
        ports = deps.members.connect(trigger.account, trigger.region, session_name(trigger))
    except MemberUnreachable as exc:
        detail = (
            f"the hub could not act in account {trigger.account}, region {trigger.region}: {exc}. Nothing was "
            "changed, and this alarm state change is not retried"
        )
        _audit(deps, trigger, now, mode=policy.mode, outcome=OutcomeStatus.FAILED, reason=detail)
        subject = render._clip(f"[FAILED] {trigger.stream}: the hub could not assume the member's role", 99)
        body = (
            f"Stream:    {trigger.stream} (mode: {policy.mode})\nAlarm:     {trigger.alarm_name}\n\n{detail}.\n\n"
            "Check the member stack in that account and region (its role's trust policy names the hub's account "
            "and the external id), and the hub's MEMBER_EXTERNAL_ID (CDK context memberExternalId).\n"
        )
        deps.notifier.send(trigger.stream, subject, body, policy.notify.emails)
        return Outcome(status=OutcomeStatus.FAILED, stream=trigger.stream, symptom=trigger.symptom, detail=detail)
    except Exception as exc:
        reason = f"could not reach account {trigger.account}, region {trigger.region}: {type(exc).__name__}: {exc}"
        _audit(deps, trigger, now, mode=policy.mode, outcome=OutcomeStatus.FAILED, reason=reason)
        raise
    # Follow-through: the schedules are the hub's; the alarm whose state a follow-up checks is the member's.
    follow = deps.follow_through
    return replace(
        deps,
        streams=ports.streams,
        metrics=ports.metrics,
        reads=ports.reads,
        writes=ports.writes,
        follow_through=None if follow is None else replace(follow, alarms=ports.alarms),
    )


def alarm_key(trigger: AlarmTrigger | AlarmResolved) -> str:
    """The alarm as a follow-through schedule's name digests it: its name, and for a member's alarm its account and
    region too (the same alarm name may change state at the same time in two accounts)."""
    return f"{trigger.account}/{trigger.region}/{trigger.alarm_name}" if trigger.member else trigger.alarm_name


def remediate(trigger: AlarmTrigger, deps: Dependencies) -> Outcome:
    now = deps.clock()
    if trigger.member:
        scoped = _for_member(trigger, deps)
        if scoped is None:
            detail = f"alarm from account {trigger.account}, region {trigger.region}: this deployment reaches no member"
            return Outcome(status=OutcomeStatus.IGNORED, stream=trigger.stream, symptom=trigger.symptom, detail=detail)
        deps = scoped
    policy = _policy(trigger, deps)  # raises when it cannot be read: retried, then dead-lettered
    if policy is None:
        detail = _no_policy(trigger)
        _audit(deps, trigger, now, outcome=OutcomeStatus.IGNORED, reason=detail)
        return Outcome(status=OutcomeStatus.IGNORED, stream=trigger.stream, symptom=trigger.symptom, detail=detail)

    # Event trust: act only on an alarm this deployment created for this policy (audited: the stream is valid
    # and has a policy, so the row is keyed by a real stream).
    why_not = untrusted(trigger, policy, deps.alarm_prefix)
    if why_not:
        _audit(deps, trigger, now, mode=policy.mode, outcome=OutcomeStatus.IGNORED, reason=why_not)
        return Outcome(status=OutcomeStatus.IGNORED, stream=trigger.stream, symptom=trigger.symptom, detail=why_not)

    if trigger.member:
        reached = _reach(trigger, policy, deps, now)
        if isinstance(reached, Outcome):
            return reached
        # The hub publishes OpenShards per stream name in its own account: not for a member's stream.
        return _act(trigger, policy, reached, now).model_copy(update={"open_shards": None})
    return _act(trigger, policy, deps, now)


def _act(trigger: AlarmTrigger, policy: StreamPolicy, deps: Dependencies, now: datetime) -> Outcome:
    """Plan and act on a trusted trigger of a stream with a policy, under its lease (writeahead)."""

    with writeahead.stream_lease(trigger, policy, deps, now) as holder:
        if holder is not None:
            return writeahead.coordinated(trigger, policy, holder, deps, now)
        earlier = deps.audit.intents(trigger_identity(trigger))
        if earlier:  # an earlier delivery of this trigger claimed a change: settle it, never plan again
            return writeahead.resume(trigger, policy, earlier, deps, now)
        return _plan_and_act(trigger, policy, deps, now)


def _plan_and_act(trigger: AlarmTrigger, policy: StreamPolicy, deps: Dependencies, now: datetime) -> Outcome:
    try:
        chain = _chain_entries(trigger, deps)
        history = _chain(chain, ActionHistory(deps.audit.applied_actions(trigger.stream, now - timedelta(hours=24))))
        since = _evidence_since(chain)
        evidence = gather_evidence(deps.streams, deps.metrics, deps.reads, trigger.symptom, policy, now, since)
        plan = make_plan(
            alarm_name=trigger.alarm_name,
            symptom=trigger.symptom,
            policy=policy,
            evidence=evidence,
            history=history,
            now=now,
        )
    except Exception as exc:
        # Audited, then raised: Lambda retries (transient errors pass) and finally hands it to the DLQ.
        _audit(
            deps,
            trigger,
            now,
            mode=policy.mode,
            outcome=OutcomeStatus.FAILED,
            reason=f"could not gather evidence: {type(exc).__name__}: {exc}",
        )
        raise
    report = plan.as_report()

    shards = evidence.stream.open_shards
    if not plan.steps:
        look_again = _look_again(trigger, plan, policy, deps.alarm_prefix)
        # A follow-up's look that finds nothing to change yet is audited, not e-mailed: the alarm's own trigger
        # e-mailed the "not yet", and a night of hourly looks would otherwise mail every hour.
        quiet = trigger.attempt > 0 and look_again is not None
        advised = _advise(plan, policy, trigger, deps, now, quiet=quiet).model_copy(update={"open_shards": shards})
        if since is not None or look_again is not None:
            # a recheck, or a "not yet" of a lasting state, that found nothing to change yet looks again
            # (core.follow_through)
            follow_through(trigger, plan, policy, history, [], deps, now, rechecking=since)
        return advised

    run = writeahead.Run()
    steps = writeahead.carry_out(plan, trigger, deps, now, run)
    for step, result in zip(plan.steps, steps, strict=True):
        if result.outcome == StepResult.APPLIED:
            shards = next((int(c.after) for c in step.changes if c.setting == OPEN_SHARDS_SETTING), shards)
    status = OutcomeStatus.of_steps({s.outcome for s in steps})
    follow = [""]  # the follow-through's paragraph for the e-mail

    def schedule_next() -> None:
        follow[0] = follow_through(trigger, plan, policy, history, steps, deps, now)

    writeahead.bookkeep(run, "the follow-through", schedule_next)
    if plan.mode == Mode.DRY_RUN:
        deps.notifier.send(
            plan.stream, render.subject(plan, "dry-run"), render.body(plan, "dry run"), policy.notify.emails
        )
    else:
        results = [f"{s.outcome}: {s.detail}" for s in steps]
        subject, body = (
            render.subject(plan, status),
            render.body(plan, status, results, [s.kill_switch for s in steps]) + follow[0],
        )
        emails = policy.notify.emails
        writeahead.bookkeep(run, "the e-mail", lambda: deps.notifier.send(plan.stream, subject, body, emails))
    run.raise_if_failed()  # after a change: only once all is done, so the retry resumes (writeahead, 5)
    return Outcome(
        status=status,
        stream=plan.stream,
        symptom=plan.symptom,
        detail=plan.diagnosis.summary,
        steps=steps,
        plan=report,
        open_shards=shards,
    )


def _advise(
    plan: Plan, policy: StreamPolicy, trigger: AlarmTrigger, deps: Dependencies, now: datetime, *, quiet: bool = False
) -> Outcome:
    """No step to take: e-mail the diagnosis and advice, at most once per interval per stream and symptom (never for
    a `quiet` one: a follow-through look, audited only)."""
    interval = timedelta(minutes=policy.notify.advice_interval_minutes)
    last = deps.audit.last_advice(plan.stream, plan.symptom, now - interval) if interval else None
    detail = plan.diagnosis.summary
    if quiet:
        detail += " (a follow-through look while the alarm stays in ALARM: audited, not e-mailed)"
    elif last is not None:
        detail += (
            f" (advice not e-mailed again: sent at {last:%H:%M} UTC, and notify.advice_interval_minutes is "
            f"{policy.notify.advice_interval_minutes})"
        )
    _audit(
        deps,
        trigger,
        now,
        mode=plan.mode,
        outcome=OutcomeStatus.NO_ACTION,
        reason=detail,
        plan=plan.as_report(),
        notified=last is None and not quiet,
    )
    if last is None and not quiet:
        deps.notifier.send(
            plan.stream, render.subject(plan, "no action"), render.body(plan, "no action"), policy.notify.emails
        )
    return Outcome(
        status=OutcomeStatus.NO_ACTION,
        stream=plan.stream,
        symptom=plan.symptom,
        detail=detail,
        plan=plan.as_report(),
        advice_sent=last is None and not quiet,
    )


# --- Follow-through (remediator.core.follow_through) ------------------------------------------------------


def _chain_entries(trigger: AlarmTrigger, deps: Dependencies) -> list[AuditEntry] | None:
    """A follow-up's own chain (the rows of the same alarm state change), read once; None for a first trigger."""
    if not trigger.attempt:
        return None
    return [
        entry
        for entry in deps.audit.entries(trigger.stream, parse_timestamp(trigger.state_timestamp))
        if entry.alarm_name == trigger.alarm_name
    ]


def _chain(chain: list[AuditEntry] | None, history: ActionHistory) -> ActionHistory:
    """A follow-up's history: the steps its own chain applied (same alarm state change) start no cooldown."""
    if chain is None:
        return history
    own = [
        PastAction(action=entry.action, stream=entry.stream, at=entry.at, parameters=entry.parameters or {})
        for entry in chain
        if entry.outcome == OutcomeStatus.APPLIED and entry.action
    ]
    return history.for_chain(own)


def _evidence_since(chain: list[AuditEntry] | None) -> datetime | None:
    """A follow-up after a recheck reads only the minutes after the change (core.follow_through.evidence_since)."""
    if chain is None:
        return None
    return evidence_since(
        entry.parameters for entry in chain if entry.outcome == OutcomeStatus.FOLLOW_UP_SCHEDULED and entry.parameters
    )


def _recheck_after(trigger: AlarmTrigger, policy: StreamPolicy, prefix: str) -> timedelta | None:
    """The alarm's own time to show a change (period and datapoints); None when it is not one we know, or its
    symptom's alarm does not show a change as soon as it is in effect (Symptom.recheck_after_change)."""
    plugin = REGISTRY.symptoms.get(trigger.symptom)
    if plugin is None or not plugin.recheck_after_change:
        return None
    found = deployed_alarms(policy, prefix).get(trigger.alarm_name)
    # A fleet alarm's contributor has the periods and datapoints of the stream's own specs (core.fleet).
    specs = [found[1]] if found else plugin.alarms(policy, plugin.detector(policy))
    waits = [recheck_wait(s.metric.period_seconds, s.evaluation_periods, s.datapoints_to_alarm) for s in specs]
    return max(waits, default=None)


def _look_again(trigger: AlarmTrigger, plan: Plan, policy: StreamPolicy, prefix: str) -> timedelta | None:
    """How long a "not yet" of a symptom whose alarm describes a lasting state waits before it looks again
    (Symptom.looks_again; core.follow_through): the alarm's window (its periods x evaluation periods), at least
    LOOK_AGAIN_MIN_INTERVAL. None: the symptom does not look again, or the answer is final (a plan with no step whose
    diagnosis is not "not reproduced": an on-demand stream, missing data)."""
    plugin = REGISTRY.symptoms.get(trigger.symptom)
    if plugin is None or not plugin.looks_again:
        return None
    if not plan.steps and plan.diagnosis.cause != Cause.NOT_REPRODUCED:
        return None
    found = deployed_alarms(policy, prefix).get(trigger.alarm_name)
    specs = [found[1]] if found else plugin.alarms(policy, plugin.detector(policy))
    windows = [timedelta(seconds=s.metric.period_seconds * s.evaluation_periods) for s in specs]
    return look_again_interval(max(windows, default=timedelta(0)))


def follow_through(
    trigger: AlarmTrigger,
    plan: Plan,
    policy: StreamPolicy,
    history: ActionHistory,
    steps: list[StepOutcome],
    deps: Dependencies,
    now: datetime,
    rechecking: datetime | None = None,
) -> str:
    """After the steps: schedule the next attempt of this alarm state change if one is needed (audited).

    Returns a paragraph for the e-mail ("" when there is nothing to say)."""
    if deps.follow_through is None:
        return ""
    look_again = _look_again(trigger, plan, policy, deps.alarm_prefix)
    decision = decide(
        mode=plan.mode,
        steps=step_facts(plan, steps, policy, history),
        attempt=trigger.attempt,
        origin=parse_timestamp(trigger.state_timestamp),
        now=now,
        recheck_after=_recheck_after(trigger, policy, deps.alarm_prefix),
        rechecking=rechecking,
        look_again=look_again,
    )
    most, _ = bounds(look_again)
    if decision.at is None:
        return f"\nFollow-through: none; {decision.reason}.\n" if decision.needed else ""
    name = schedule_name(
        deps.follow_through.schedule_prefix, alarm_key(trigger), trigger.state_timestamp, decision.attempt
    )
    follow_up = FollowUp(
        alarm_name=trigger.alarm_name,
        stream=trigger.stream,
        symptom=trigger.symptom,
        state_timestamp=trigger.state_timestamp,
        attempt=decision.attempt,
        account=trigger.account,
        region=trigger.region,
        member=trigger.member,
    )
    try:
        deps.follow_through.scheduler.create(name, decision.at, follow_up)
    except Exception as exc:  # the change is made and audited; a missing follow-up must not undo that record
        reason = f"follow-through {decision.attempt} could not be scheduled: {type(exc).__name__}: {exc}"
        _audit(deps, trigger, now, mode=plan.mode, outcome=OutcomeStatus.FAILED, reason=reason)
        return f"\nFollow-through: {reason}. The next step waits for the alarm's next state change.\n"
    reason = (
        f"{decision.reason}: follow-up {decision.attempt} of at most {most} at "
        f"{decision.at:%Y-%m-%d %H:%M:%S} UTC (schedule {name})"
    )
    _audit(
        deps,
        trigger,
        deps.clock(),  # after the steps' rows (same `now`), so the audit table lists it after them
        mode=plan.mode,
        outcome=OutcomeStatus.FOLLOW_UP_SCHEDULED,
        reason=reason,
        parameters={"schedule": name, "at": decision.at.isoformat(), "attempt": decision.attempt}
        | ({"evidence_since": decision.evidence_since.isoformat()} if decision.evidence_since else {}),
    )
    return (
        f"\nFollow-through: {decision.reason}. The plan is made again at {decision.at:%H:%M:%S} UTC "
        f"(follow-up {decision.attempt} of at most {most}), with every guardrail checked again, "
        "if the alarm is still in ALARM.\n"
    )


def follow_up(event: FollowUp, prefix: str, deps: Dependencies) -> Outcome:
    """A follow-through schedule fired: consume it, check the alarm is still in the same ALARM, then remediate."""
    parsed = parse_trigger_name(event.alarm_name, prefix)  # a stream's alarm, or a fleet alarm's contributor
    if isinstance(parsed, str) or parsed != (event.stream, event.symptom):
        detail = f"follow-up names alarm '{event.alarm_name}', which is not ours for {event.stream}/{event.symptom}"
        return Outcome(status=OutcomeStatus.IGNORED, stream=event.stream, symptom=event.symptom, detail=detail)
    trigger = AlarmTrigger(
        alarm_name=event.alarm_name,
        stream=event.stream,
        symptom=event.symptom,
        state_timestamp=event.state_timestamp,
        account=event.account,
        region=event.region,
        reason=f"follow-through {event.attempt} of the alarm state change at {event.state_timestamp}",
        attempt=event.attempt,
        member=event.member,
    )
    now = deps.clock()
    ft = deps.follow_through
    if ft is None:
        detail = "follow-through is not configured in this deployment"
        return Outcome(status=OutcomeStatus.IGNORED, stream=trigger.stream, symptom=trigger.symptom, detail=detail)
    # Consumed first: ActionAfterCompletion=DELETE removes it in AWS too, and a retry finds nothing left to delete.
    ft.scheduler.delete(schedule_name(ft.schedule_prefix, alarm_key(trigger), trigger.state_timestamp, trigger.attempt))
    alarms = ft.alarms
    if trigger.member:  # the member's alarm, read through its role (its policy is checked again by remediate)
        member_deps = _for_member(trigger, deps)
        policy = _policy(trigger, member_deps) if member_deps is not None else None
        if member_deps is None or policy is None:
            detail = f"follow-through {trigger.attempt} stopped: {_no_policy(trigger)}"
            return Outcome(status=OutcomeStatus.IGNORED, stream=trigger.stream, symptom=trigger.symptom, detail=detail)
        reached = _reach(trigger, policy, member_deps, now)
        if isinstance(reached, Outcome):
            return reached
        assert reached.follow_through is not None
        deps_for_audit, alarms = reached, reached.follow_through.alarms
    else:
        deps_for_audit = deps
    state = alarms.state(trigger.alarm_name)
    stale = _stale(state.transitioned_at, trigger.state_timestamp) if state is not None else False
    if state is None or state.value != "ALARM" or stale:
        why = (
            "no longer exists"
            if state is None
            else f"is {state.value}"
            if state.value != "ALARM"
            else f"changed state at {state.transitioned_at:%Y-%m-%d %H:%M:%S} UTC, after this chain began"
        )
        detail = f"follow-through {trigger.attempt} stopped: the alarm {why}"
        _audit(deps_for_audit, trigger, now, outcome=OutcomeStatus.IGNORED, reason=detail)
        return Outcome(status=OutcomeStatus.IGNORED, stream=trigger.stream, symptom=trigger.symptom, detail=detail)
    return remediate(trigger, deps)


def _stale(transitioned_at: datetime | None, origin: str) -> bool:
    """The alarm left ALARM and came back since the chain began (a newer chain owns the stream now)."""
    return transitioned_at is not None and transitioned_at > parse_timestamp(origin) + timedelta(seconds=1)


def resolve(resolved: AlarmResolved, deps: Dependencies) -> Outcome:
    """ALARM -> OK: cancel the pending follow-ups, and e-mail what was done if anything was (audited)."""
    now = deps.clock()
    if resolved.member:
        scoped = _for_member(resolved, deps)
        if scoped is None:
            detail = (
                f"alarm from account {resolved.account}, region {resolved.region}: this deployment reaches no member"
            )
            return Outcome(
                status=OutcomeStatus.IGNORED, stream=resolved.stream, symptom=resolved.symptom, detail=detail
            )
        deps = scoped
    policy = _policy(resolved, deps)
    if policy is None:
        detail = _no_policy(resolved) if resolved.member else f"no valid policy for stream '{resolved.stream}'"
        return Outcome(status=OutcomeStatus.IGNORED, stream=resolved.stream, symptom=resolved.symptom, detail=detail)
    ok_at = parse_timestamp(resolved.state_timestamp)
    alarm_at = parse_timestamp(resolved.alarm_timestamp) if resolved.alarm_timestamp else None
    since = alarm_at if alarm_at is not None else now - timedelta(hours=24)
    rows = [e for e in deps.audit.entries(resolved.stream, since) if e.alarm_name == resolved.alarm_name]
    applied = [e for e in rows if e.outcome == OutcomeStatus.APPLIED and e.action]
    cancelled = 0
    if deps.follow_through is not None:
        pending = [
            str(e.parameters["schedule"])
            for e in rows
            if e.outcome == OutcomeStatus.FOLLOW_UP_SCHEDULED and e.parameters and "schedule" in e.parameters
        ]
        cancelled = sum(deps.follow_through.scheduler.delete(name) for name in dict.fromkeys(pending))
    if not applied:
        detail = "alarm back to OK with nothing applied since it went to ALARM: no e-mail"
        if cancelled:
            detail += f"; {cancelled} pending follow-up(s) cancelled"
        return Outcome(status=OutcomeStatus.IGNORED, stream=resolved.stream, symptom=resolved.symptom, detail=detail)
    took = ok_at - alarm_at if alarm_at is not None else None
    deps.notifier.send(
        resolved.stream,
        resolution.subject(resolved, took),
        resolution.body(resolved, applied, alarm_at, ok_at, cancelled),
        policy.notify.emails,
    )
    detail = f"back to OK after {len(applied)} applied step(s)" + (
        f", {resolution.duration(took)} after the alarm" if took is not None else ""
    )
    if cancelled:
        detail += f"; {cancelled} pending follow-up(s) cancelled"
    deps.audit.record(
        AuditEntry(
            at=now,
            stream=resolved.stream,
            alarm_name=resolved.alarm_name,
            symptom=resolved.symptom,
            outcome=OutcomeStatus.RESOLVED,
            reason=detail,
            parameters={
                "alarm_at": alarm_at.isoformat() if alarm_at else None,
                "ok_at": ok_at.isoformat(),
                "recovery_seconds": int(took.total_seconds()) if took is not None else None,
                "applied": len(applied),
                "cancelled_follow_ups": cancelled,
            },
        )
    )
    return Outcome(status=OutcomeStatus.RESOLVED, stream=resolved.stream, symptom=resolved.symptom, detail=detail)


# --- the shard census --------------------------------------------------------------------------------------------

# DescribeStreamSummary is limited to 20 calls a second per account, shared with every other caller (the
# remediator's own diagnoses, consumers, KCL workers): the census takes at most half of it. 1,000 streams take
# 100 s at this pace (plus 100 GetParametersByPath pages to list them), inside the function's 300 s timeout.
CENSUS_DESCRIBES_PER_SECOND = limits.DESCRIBE_STREAM_SUMMARY_PER_SECOND / 2


@dataclass(frozen=True)
class Census:
    """What one census saw: each readable stream's open shards (published), the streams it could not read (with
    why), and those it had no time left to read."""

    open_shards: dict[str, int]
    unreadable: dict[str, str]
    unreached: tuple[str, ...] = ()


def census(
    deps: Dependencies,
    publish: Callable[[str, int], None],
    *,
    reserve_seconds: float = 0.0,
    sleep: Callable[[float], None] = time.sleep,
    monotonic: Callable[[], float] = time.monotonic,
) -> Census:
    """Read the open shard count of every protected stream (one with a deployed policy) and publish it: the
    under-utilised alarm divides the write load by it, since CloudWatch publishes no shard count.

    Reads only: no audit row, no e-mail, no change. A stream that cannot be read (deleted, throttled past the
    SDK's retries) is reported and skipped, the others are still published; a stream with no census datapoint
    simply gets no under-utilised alarm (its missing data is not breaching). The reads are paced to
    CENSUS_DESCRIBES_PER_SECOND, and no read starts with less than `reserve_seconds` (the worst case of one
    read) left in the invocation: the streams left unread are reported as unreached."""
    streams = deps.policies.names()
    interval = 1.0 / CENSUS_DESCRIBES_PER_SECOND
    open_shards: dict[str, int] = {}
    unreadable: dict[str, str] = {}
    next_read = monotonic()
    for index, stream in enumerate(streams):
        if deps.time_left() < reserve_seconds:
            return Census(open_shards, unreadable, tuple(streams[index:]))
        wait = next_read - monotonic()
        if wait > 0:
            sleep(wait)
        next_read = max(next_read, monotonic()) + interval
        try:
            state = deps.streams.describe(stream)
        except Exception as exc:  # any failure: one unreadable stream must not stop the census of the others
            unreadable[stream] = f"{type(exc).__name__}: {exc}"
            continue
        open_shards[stream] = state.open_shards
        publish(stream, state.open_shards)
    return Census(open_shards, unreadable)
