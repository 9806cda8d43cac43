"""(alarm, policy, evidence, history) -> plan. Pure: no AWS calls, no clock reads, no environment."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import Any

from remediator.core.actions.base import Action, ValidationContext
from remediator.core.cost import CostEstimate, Usage, compare, usage_of
from remediator.core.evidence import Evidence
from remediator.core.guardrails import evaluate
from remediator.core.history import ActionHistory, PastAction
from remediator.core.plan import Plan, PlannedStep
from remediator.core.policy import StreamPolicy
from remediator.core.registry import REGISTRY


def make_plan(
    *,
    alarm_name: str,
    symptom: str,
    policy: StreamPolicy,
    evidence: Evidence,
    history: ActionHistory,
    now: datetime,
) -> Plan:
    if evidence.stream.name != policy.name:
        raise ValueError(f"evidence is for stream '{evidence.stream.name}', policy for '{policy.name}'")
    diagnosis = REGISTRY.symptoms[symptom].diagnose(evidence, policy)
    context = ValidationContext(policy=policy, evidence=evidence, history=history, now=now)
    start, notes = usage_of(evidence, policy)
    usage = start  # after the allowed steps so far
    steps = []
    for proposal in diagnosis.proposals:
        action = REGISTRY.actions.get(proposal.action)
        if action is None:
            raise LookupError(f"symptom '{symptom}' proposed '{proposal.action}', which is not a registered action")
        shaped = action.shape(proposal, context)
        step = PlannedStep(
            action=action.id,
            stream=policy.name,
            stream_arn=evidence.stream.arn,
            parameters=shaped.parameters,
            reason=shaped.reason,
            summary=action.summary(shaped.parameters),
            cli_command=action.cli_command(evidence.stream.arn, shaped.parameters),
            changes=tuple(action.changes(shaped.parameters)),
        )
        after, step_cost = _step_cost(action, usage, shaped.parameters)
        evaluated = evaluate(step, context).model_copy(update={"cost": step_cost})
        steps.append(evaluated)
        if evaluated.allowed:
            spent = PastAction(action=action.id, stream=policy.name, at=now, parameters=shaped.parameters)
            context = replace(context, history=context.history.with_planned(spent))
            usage = after
            if step_cost is None:
                notes += (f"the cost of step '{evaluated.summary}' could not be estimated and is left out",)
    return Plan(
        stream=policy.name,
        symptom=symptom,
        mode=policy.mode,
        alarm_name=alarm_name,
        created_at=now,
        diagnosis=diagnosis,
        steps=tuple(steps),
        cost=compare(start, usage, notes=notes),
        evidence_minutes=evidence.window_minutes,
    )


def _step_cost(action: Action[Any], usage: Usage, parameters: dict[str, Any]) -> tuple[Usage, CostEstimate | None]:
    """The usage after the step and what it changes in the monthly cost. The estimate never stops a plan: a
    step whose usage cannot be worked out is shown without a cost, and leaves the usage as it was."""
    try:
        after = action.usage_after(usage, parameters)
        return after, compare(usage, after, only_changed=True)
    except (KeyError, TypeError, ValueError):
        return usage, None
