"""The remediation use case: trigger -> policy -> evidence -> plan -> guardrails -> act or e-mail -> audit.

Talks to AWS only through the ports it is given, so the CLI, the Lambda and the tests share it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from remediator.core import render
from remediator.core.alarm import AlarmTrigger, untrusted
from remediator.core.cost import with_cost_queries
from remediator.core.deployment import DEFAULT_ALARM_PREFIX
from remediator.core.evidence import Evidence
from remediator.core.history import ActionHistory
from remediator.core.outcome import AuditEntry, Outcome, OutcomeStatus, StepOutcome, StepResult
from remediator.core.plan import OPEN_SHARDS_SETTING, Plan, PlannedStep
from remediator.core.planner import make_plan
from remediator.core.policy import Mode, StreamPolicy
from remediator.core.ports import (
    AuditLog,
    DeclaredOnly,
    KillSwitch,
    KillSwitchEngaged,
    KillSwitchGuard,
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
    # The deployment's alarm prefix: with a stream's policy it names every alarm this deployment created.
    alarm_prefix: str = DEFAULT_ALARM_PREFIX


def gather_evidence(
    streams: StreamReader, metrics: MetricsReader, reads: ReadPorts, symptom: str, policy: StreamPolicy, now: datetime
) -> Evidence:
    """The stream's state, exactly the series the symptom declared over the window it declared (plus the write
    load every plan's cost reads, when it did not declare it: one GetMetricData call), the facts its gather
    reads, and the facts of the actions its diagnosis proposes (Evidence.facts[<action id>])."""
    plugin = REGISTRY.symptoms[symptom]
    state = streams.describe(policy.name)
    minutes = plugin.evidence_window_minutes
    queries = with_cost_queries(plugin.evidence_queries(policy), policy.name)
    series = metrics.read(queries, end=now, minutes=minutes)
    facts = plugin.gather(policy, state, DeclaredOnly(reads, plugin.read_iam_actions, plugin.id, read_only=True))
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


def remediate(trigger: AlarmTrigger, deps: Dependencies) -> Outcome:
    now = deps.clock()
    policy = deps.policies.get(trigger.stream)
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

    steps = []
    for step in plan.steps:
        result = _carry_out(step, plan.mode, deps)
        _audit(
            deps,
            trigger,
            now,
            mode=plan.mode,
            action=step.action,
            parameters=step.parameters,
            outcome=OutcomeStatus(result.outcome.value),
            reason=result.detail,
            plan=report,
        )
        steps.append(result)
        if result.outcome == StepResult.APPLIED:
            shards = next((int(c.after) for c in step.changes if c.setting == OPEN_SHARDS_SETTING), shards)
    status = OutcomeStatus.of_steps({s.outcome for s in steps})
    if plan.mode == Mode.DRY_RUN:
        deps.notifier.send(plan.stream, render.subject(plan, "dry-run"), render.body(plan, "dry run"))
    else:
        results = [f"{s.outcome}: {s.detail}" for s in steps]
        deps.notifier.send(plan.stream, render.subject(plan, status), render.body(plan, status, results))
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


def _carry_out(step: PlannedStep, mode: Mode, deps: Dependencies) -> StepOutcome:
    """Blocked, rehearsed (dry-run), or applied: the only place a mutating call is made."""
    if not step.allowed:
        return StepOutcome(action=step.action, outcome=StepResult.BLOCKED, detail="; ".join(step.blocking_reasons))
    if mode == Mode.DRY_RUN:
        return StepOutcome(action=step.action, outcome=StepResult.DRY_RUN, detail=step.reason)
    # Read right before the call: an operator may have pulled it since the plan was made.
    if deps.kill_switch.engaged():
        detail = "kill-switch: engaged; no change made"
        return StepOutcome(action=step.action, outcome=StepResult.BLOCKED, detail=detail)
    action = REGISTRY.actions[step.action]
    guarded = KillSwitchGuard(deps.writes, deps.kill_switch)
    try:
        response = action.apply(step, DeclaredOnly(guarded, action.iam_actions, action.id))
    except KillSwitchEngaged as stop:
        outcome = StepResult.FAILED if stop.made else StepResult.BLOCKED  # a step left half done is a failure
        return StepOutcome(action=step.action, outcome=outcome, detail=str(stop))
    except Exception as exc:  # audited and e-mailed by the caller, never retried blindly
        return StepOutcome(action=step.action, outcome=StepResult.FAILED, detail=f"{type(exc).__name__}: {exc}")
    return StepOutcome(action=step.action, outcome=StepResult.APPLIED, detail=f"accepted by AWS: {response}")
