"""The remediation use case: trigger -> policy -> evidence -> plan -> guardrails -> act or e-mail -> audit.

Talks to AWS only through the ports it is given, so the CLI, the Lambda and the tests share it. How a change
is made at most once per trigger whatever fails around it (write-ahead audit, settling uncertain changes, the
per-stream lease) is remediator.writeahead's part.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from remediator import writeahead
from remediator.core import render
from remediator.core.alarm import AlarmTrigger, untrusted
from remediator.core.cost import with_cost_queries
from remediator.core.deployment import DEFAULT_ALARM_PREFIX
from remediator.core.evidence import EVIDENCE_WINDOW_MINUTES, Evidence
from remediator.core.history import ActionHistory
from remediator.core.intent import trigger_identity
from remediator.core.outcome import AuditEntry, Outcome, OutcomeStatus, StepResult
from remediator.core.plan import OPEN_SHARDS_SETTING, Plan
from remediator.core.planner import make_plan
from remediator.core.policy import Mode, StreamPolicy
from remediator.core.ports import (
    AuditLog,
    DeclaredOnly,
    KillSwitch,
    MetricsReader,
    Notifier,
    PolicySource,
    ReadPorts,
    StreamReader,
    WritePorts,
)
from remediator.core.registry import REGISTRY


def utc_now() -> datetime:
    return datetime.now(UTC)


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


def gather_evidence(
    streams: StreamReader, metrics: MetricsReader, reads: ReadPorts, symptom: str, policy: StreamPolicy, now: datetime
) -> Evidence:
    """The stream's state, the series the symptom declared (plus the write load every plan's cost reads, when
    it did not declare it: one GetMetricData call), and the facts its gather reads."""
    plugin = REGISTRY.symptoms[symptom]
    state = streams.describe(policy.name)
    queries = with_cost_queries(plugin.evidence_queries(policy), policy.name)
    series = metrics.read(queries, end=now, minutes=EVIDENCE_WINDOW_MINUTES)
    facts = plugin.gather(policy, state, DeclaredOnly(reads, plugin.read_iam_actions, plugin.id, read_only=True))
    return Evidence(stream=state, collected_at=now, series=series, facts=facts)


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


def remediate(trigger: AlarmTrigger, deps: Dependencies) -> Outcome:
    now = deps.clock()
    policy = deps.policies.get(trigger.stream)  # raises when it cannot be read: retried, then dead-lettered
    if policy is None:
        detail = (
            f"no valid policy for stream '{trigger.stream}' (none deployed, or it failed validation: see the "
            "remediator's logs); the remediator touches only streams with a valid policy"
        )
        _audit(deps, trigger, now, outcome=OutcomeStatus.IGNORED, reason=detail)
        return Outcome(status=OutcomeStatus.IGNORED, stream=trigger.stream, symptom=trigger.symptom, detail=detail)

    # Event trust: act only on an alarm this deployment created for this policy (audited: the stream is valid
    # and has a policy, so the row is keyed by a real stream).
    why_not = untrusted(trigger, policy, deps.alarm_prefix)
    if why_not:
        _audit(deps, trigger, now, mode=policy.mode, outcome=OutcomeStatus.IGNORED, reason=why_not)
        return Outcome(status=OutcomeStatus.IGNORED, stream=trigger.stream, symptom=trigger.symptom, detail=why_not)

    with writeahead.stream_lease(trigger, policy, deps, now) as holder:
        if holder is not None:
            return writeahead.coordinated(trigger, policy, holder, deps, now)
        earlier = deps.audit.intents(trigger_identity(trigger))
        if earlier:  # an earlier delivery of this trigger claimed a change: settle it, never plan again
            return writeahead.resume(trigger, policy, earlier, deps, now)
        return _plan_and_act(trigger, policy, deps, now)


def _plan_and_act(trigger: AlarmTrigger, policy: StreamPolicy, deps: Dependencies, now: datetime) -> Outcome:
    try:
        history = ActionHistory(deps.audit.applied_actions(trigger.stream, now - timedelta(hours=24)))
        evidence = gather_evidence(deps.streams, deps.metrics, deps.reads, trigger.symptom, policy, now)
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
        return _advise(plan, policy, trigger, deps, now).model_copy(update={"open_shards": shards})

    run = writeahead.Run()
    steps = writeahead.carry_out(plan, trigger, deps, now, run)
    for step, result in zip(plan.steps, steps, strict=True):
        if result.outcome == StepResult.APPLIED:
            shards = next((int(c.after) for c in step.changes if c.setting == OPEN_SHARDS_SETTING), shards)
    status = OutcomeStatus.of_steps({s.outcome for s in steps})
    if plan.mode == Mode.DRY_RUN:
        deps.notifier.send(plan.stream, render.subject(plan, "dry-run"), render.body(plan, "dry run"))
    else:
        results = [f"{s.outcome}: {s.detail}" for s in steps]
        subject, body = render.subject(plan, status), render.body(plan, status, results)
        writeahead.bookkeep(run, "the e-mail", lambda: deps.notifier.send(plan.stream, subject, body))
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


def _advise(plan: Plan, policy: StreamPolicy, trigger: AlarmTrigger, deps: Dependencies, now: datetime) -> Outcome:
    """No step to take: e-mail the diagnosis and advice, at most once per interval per stream and symptom."""
    interval = timedelta(minutes=policy.notify.advice_interval_minutes)
    last = deps.audit.last_advice(plan.stream, plan.symptom, now - interval) if interval else None
    detail = plan.diagnosis.summary
    if last is not None:
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
        notified=last is None,
    )
    if last is None:
        deps.notifier.send(plan.stream, render.subject(plan, "no action"), render.body(plan, "no action"))
    return Outcome(
        status=OutcomeStatus.NO_ACTION,
        stream=plan.stream,
        symptom=plan.symptom,
        detail=detail,
        plan=plan.as_report(),
        advice_sent=last is None,
    )
