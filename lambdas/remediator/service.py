"""The remediation use case: trigger -> policy -> evidence -> plan -> guardrails -> act or e-mail -> audit.

Talks to AWS only through the ports it is given, so the CLI, the Lambda and the tests share it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import BaseModel

from remediator.core import render
from remediator.core.actions import REGISTRY
from remediator.core.alarm import AlarmTrigger
from remediator.core.evidence import EVIDENCE_QUERIES, EVIDENCE_WINDOW_MINUTES, Evidence
from remediator.core.history import ActionHistory
from remediator.core.plan import Plan, PlannedStep
from remediator.core.planner import make_plan
from remediator.core.policy import StreamPolicy
from remediator.core.ports import AuditLog, KillSwitch, MetricsReader, Notifier, PolicySource, StreamControl


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Dependencies:
    streams: StreamControl
    metrics: MetricsReader
    audit: AuditLog
    notifier: Notifier
    kill_switch: KillSwitch
    policies: PolicySource
    clock: Callable[[], datetime] = utc_now


class StepOutcome(BaseModel):
    action: str
    outcome: str  # applied | dry-run | blocked | failed
    detail: str


class Outcome(BaseModel):
    status: str  # ignored | no-action | dry-run | applied | blocked | failed
    stream: str
    symptom: str
    detail: str
    steps: list[StepOutcome] = []
    plan: dict[str, Any] | None = None


def gather_evidence(streams: StreamControl, metrics: MetricsReader, stream: str, now: datetime) -> Evidence:
    state = streams.describe(stream)
    series = metrics.read(stream, EVIDENCE_QUERIES, end=now, minutes=EVIDENCE_WINDOW_MINUTES)
    return Evidence(stream=state, collected_at=now, series=series)


def build_plan(
    trigger: AlarmTrigger,
    policy: StreamPolicy,
    streams: StreamControl,
    metrics: MetricsReader,
    history: ActionHistory,
    now: datetime,
) -> Plan:
    evidence = gather_evidence(streams, metrics, trigger.stream, now)
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
        {"at": now, "stream": trigger.stream, "alarm_name": trigger.alarm_name, "symptom": trigger.symptom} | fields
    )


def remediate(trigger: AlarmTrigger, deps: Dependencies) -> Outcome:
    now = deps.clock()
    policy = deps.policies.get(trigger.stream)
    if policy is None:
        detail = (
            f"no valid policy for stream '{trigger.stream}' (none deployed, or it failed validation: see the "
            "remediator's logs); the remediator touches only streams with a valid policy"
        )
        _audit(deps, trigger, now, outcome="ignored", reason=detail)
        return Outcome(status="ignored", stream=trigger.stream, symptom=trigger.symptom, detail=detail)

    try:
        history = ActionHistory(deps.audit.applied_actions(trigger.stream, now - timedelta(hours=24)))
        plan = build_plan(trigger, policy, deps.streams, deps.metrics, history, now)
    except Exception as exc:
        # Audited, then raised: Lambda retries (transient errors pass) and finally hands it to the DLQ.
        _audit(
            deps,
            trigger,
            now,
            mode=policy.mode.value,
            outcome="failed",
            reason=f"could not gather evidence: {type(exc).__name__}: {exc}",
        )
        raise
    report = plan.as_report()

    if not plan.steps:
        _audit(
            deps,
            trigger,
            now,
            mode=plan.mode,
            outcome="no-action",
            reason=plan.diagnosis.summary,
            plan=report,
        )
        deps.notifier.send(plan.stream, render.subject(plan, "no action"), render.body(plan, "no action"))
        return Outcome(
            status="no-action",
            stream=plan.stream,
            symptom=plan.symptom,
            detail=plan.diagnosis.summary,
            plan=report,
        )

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
            outcome=result.outcome,
            reason=result.detail,
            plan=report,
        )
        steps.append(result)
    outcomes = {s.outcome for s in steps}
    status = next((o for o in ("failed", "applied", "dry-run") if o in outcomes), "blocked")
    if plan.mode == "dry-run":
        deps.notifier.send(plan.stream, render.subject(plan, "dry-run"), render.body(plan, "dry run"))
    else:
        results = {s.action: f"{s.outcome}: {s.detail}" for s in steps}
        deps.notifier.send(plan.stream, render.subject(plan, status), render.body(plan, status, results))
    return Outcome(
        status=status,
        stream=plan.stream,
        symptom=plan.symptom,
        detail=plan.diagnosis.summary,
        steps=steps,
        plan=report,
    )


def _carry_out(step: PlannedStep, mode: str, deps: Dependencies) -> StepOutcome:
    """Blocked, rehearsed (dry-run), or applied: the only place a mutating call is made."""
    if not step.allowed:
        return StepOutcome(action=step.action, outcome="blocked", detail="; ".join(step.blocking_reasons))
    if mode == "dry-run":
        return StepOutcome(action=step.action, outcome="dry-run", detail=step.reason)
    # Read right before the call: an operator may have pulled it since the plan was made.
    if deps.kill_switch.engaged():
        return StepOutcome(action=step.action, outcome="blocked", detail="kill-switch: engaged; no change made")
    try:
        response = REGISTRY[step.action].apply(step, _Mutations(deps.streams))
    except Exception as exc:  # audited and e-mailed by the caller, never retried blindly
        return StepOutcome(action=step.action, outcome="failed", detail=f"{type(exc).__name__}: {exc}")
    return StepOutcome(action=step.action, outcome="applied", detail=f"accepted by AWS: {response}")


@dataclass(frozen=True)
class _Mutations:
    streams: StreamControl
