"""Guardrails every action passes, whatever it is. Action-specific limits live in Action.checks."""

from __future__ import annotations

from datetime import datetime, timedelta

from remediator.core.actions.base import ValidationContext
from remediator.core.evidence import StreamStatus
from remediator.core.plan import GuardrailVerdict, PlannedStep
from remediator.core.policy import ActionPolicy
from remediator.core.registry import REGISTRY


def action_policy(step: PlannedStep, context: ValidationContext) -> ActionPolicy:
    return REGISTRY.actions[step.action].block(context.policy)


def common_guardrails(step: PlannedStep, context: ValidationContext) -> list[GuardrailVerdict]:
    policy = action_policy(step, context)
    stream = context.evidence.stream
    verdicts = [
        GuardrailVerdict(
            name="policy-enabled",
            passed=policy.enabled,
            detail="enabled in the policy" if policy.enabled else f"actions.{step.action}.enabled is false",
        ),
        GuardrailVerdict(
            name="stream-active",
            passed=stream.status == StreamStatus.ACTIVE,
            detail=f"stream status is {stream.status}",
        ),
    ]
    verdicts.append(_cooldown(step, context, policy))
    used = context.history.count_in_rolling_day(step.action, stream.name, context.now)
    verdicts.append(
        GuardrailVerdict(
            name="daily-budget",
            passed=used < policy.daily_budget,
            detail=f"{used} of {policy.daily_budget} {step.action} actions used in the last 24 h",
        )
    )
    return verdicts


def _cooldown(step: PlannedStep, context: ValidationContext, policy: ActionPolicy) -> GuardrailVerdict:
    stream = context.evidence.stream.name
    # A follow-through is not held by the cooldown its own chain's steps started (see core.follow_through).
    last = context.history.starts_cooldown(step.action, stream)
    own = context.history.own_chain(step.action, stream)
    ready_at = last.at + timedelta(minutes=policy.cooldown_minutes) if last else None
    if last is None:
        detail = "no earlier action"
    else:
        detail = f"last {step.action} at {last.at:%Y-%m-%d %H:%M} UTC; cooldown {policy.cooldown_minutes} min " + (
            "has passed" if ready_at and context.now >= ready_at else f"ends {ready_at:%H:%M} UTC"
        )
    if own:
        detail += (
            f" (follow-through: the {len(own)} {step.action} step(s) this alarm state change applied, the last at "
            f"{own[-1].at:%H:%M} UTC, start no cooldown for its own next step)"
        )
    return GuardrailVerdict(name="cooldown", passed=ready_at is None or context.now >= ready_at, detail=detail)


def cooldown_ends(step: PlannedStep, context: ValidationContext) -> datetime | None:
    """When the cooldown that blocks this step ends (None: no cooldown applies)."""
    last = context.history.starts_cooldown(step.action, context.evidence.stream.name)
    if last is None:
        return None
    return last.at + timedelta(minutes=action_policy(step, context).cooldown_minutes)


def evaluate(step: PlannedStep, context: ValidationContext) -> PlannedStep:
    verdicts = common_guardrails(step, context) + REGISTRY.actions[step.action].checks(step, context)
    return step.model_copy(update={"guardrails": tuple(verdicts)})
