"""(alarm, policy, evidence, history) -> plan. Pure: no AWS calls, no clock reads, no environment."""

from __future__ import annotations

from datetime import datetime

from remediator.core.actions import REGISTRY, ValidationContext
from remediator.core.evidence import Evidence
from remediator.core.guardrails import evaluate
from remediator.core.history import ActionHistory
from remediator.core.plan import Plan, PlannedStep
from remediator.core.policy import StreamPolicy
from remediator.core.symptoms import SYMPTOMS


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
    diagnosis = SYMPTOMS[symptom].diagnose(evidence, policy)
    context = ValidationContext(policy=policy, evidence=evidence, history=history, now=now)
    steps = []
    for proposal in diagnosis.proposals:
        action = REGISTRY[proposal.action]
        step = PlannedStep(
            action=proposal.action,
            stream=policy.name,
            stream_arn=evidence.stream.arn,
            parameters=proposal.parameters,
            reason=proposal.reason,
            cli_command=action.cli_command(evidence.stream.arn, proposal.parameters),
        )
        steps.append(evaluate(step, context))
    return Plan(
        stream=policy.name,
        symptom=symptom,
        mode=policy.mode.value,
        alarm_name=alarm_name,
        created_at=now,
        diagnosis=diagnosis,
        steps=tuple(steps),
    )
