"""Properties of every reshard plan: whatever the stream, its history (ours and other people's), the policy and the
count asked for, an allowed step never breaks an AWS limit or a policy bound, up or down.

The limits are spelled out here from aws-facts.md §1 (2x up and half down per call, 10 scalings per rolling
24 h per stream, 10,000 shards per stream, the account's shard quota), not read from the code under test."""

from __future__ import annotations

import math
from datetime import timedelta
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from remediator.core.actions.base import ValidationContext
from remediator.core.guardrails import evaluate
from remediator.core.history import ActionHistory, PastAction
from remediator.core.plan import PlannedStep, Proposal
from remediator.core.registry import REGISTRY

from tests.fakes import NOW, evidence, policy, stream_arn

RESHARD = REGISTRY.actions["reshard"]
DAY = timedelta(hours=24)


@st.composite
def bounds(draw: st.DrawFn, current: int) -> dict[str, Any]:
    # Mostly bounds around the current count (where steps are allowed), sometimes anywhere.
    low = draw(st.one_of(st.integers(1, min(max(1, current), 10_000)), st.integers(1, 10_000)))
    near = min(max(low, current), 10_000)
    high = draw(st.one_of(st.integers(near, min(near * 3, 10_000)), st.integers(low, 10_000)))
    return {
        "min_shards": low,
        "max_shards": min(high, 10_000),
        "daily_budget": draw(st.sampled_from([8, 8, 8, 4, 1, 0])),
        "cooldown_minutes": draw(st.sampled_from([1, 1, 30, 240])),
        "scale_in": draw(st.sampled_from([True, True, True, False])),
        "stabilisation_minutes": draw(st.sampled_from([15, 15, 60, 120])),
    }


@st.composite
def scalings(draw: st.DrawFn, counts: tuple[int, ...]) -> list[int]:
    """Minutes ago of scalings in the last 30 h: mostly older than any window and within the rolling day, some
    anywhere (within the window, or a day ago and more)."""
    minute = st.one_of(st.integers(121, 24 * 60), st.integers(121, 24 * 60), st.integers(0, 30 * 60))
    return [draw(minute) for _ in range(draw(st.sampled_from(counts)))]


# Ours stay mostly within the policy's budget; other people's reach AWS's limits.
ours = scalings((0, 0, 0, 1, 3, 7))
theirs = scalings((0, 1, 7, 8, 8, 9, 10, 12))


@st.composite
def situations(draw: st.DrawFn) -> dict[str, Any]:
    current = draw(st.one_of(st.integers(1, 64), st.integers(1, 12_000)))
    return {
        "current": current,
        "status": draw(st.sampled_from(["ACTIVE"] * 8 + ["UPDATING", "CREATING"])),
        "mode": draw(st.sampled_from(["PROVISIONED"] * 8 + ["ON_DEMAND", "UNKNOWN"])),
        "desired": draw(st.one_of(st.integers(1, current), st.integers(current, 3 * current), st.integers(1, 25_000))),
        "policy": draw(bounds(current)),
        "ours": draw(ours),
        # Other people's scalings (and ours), as CloudTrail shows them; None: CloudTrail could not be read.
        "theirs": draw(st.one_of(theirs, theirs, theirs, st.none())),
        "quota": draw(
            st.one_of(
                st.fixed_dictionaries({"shard_limit": st.integers(1, 30_000), "open_shards": st.integers(0, 30_000)}),
                st.none(),
            )
        ),
        "throttled": draw(st.sampled_from([0.0] * 6 + [2.0])),
        "lag_ms": draw(st.sampled_from([0.0] * 6 + [500_000.0])),
    }


def planned(s: dict[str, Any]) -> PlannedStep:
    facts: dict[str, Any] = {}
    if s["theirs"] is None:
        facts["cloudtrail_error"] = "AccessDeniedException: denied"
    else:
        events = [{"at": (NOW - timedelta(minutes=m)).isoformat(), "target": None, "by": "bob"} for m in s["theirs"]]
        facts["cloudtrail"] = {"events": events, "pages": 1, "complete": True}
    if s["quota"] is None:
        facts["limits_error"] = "ThrottlingException: Rate exceeded"
    else:
        facts["limits"] = s["quota"]
    ev = evidence(
        shards=s["current"],
        status=s["status"],
        mode=s["mode"],
        throttled_per_minute=s["throttled"],
        iterator_age_ms=s["lag_ms"],
        minutes=120,
    ).model_copy(update={"window_minutes": 120, "facts": {"reshard": facts}})
    history = ActionHistory(
        PastAction(action="reshard", stream="orders", at=NOW - timedelta(minutes=m), parameters={}) for m in s["ours"]
    )
    context = ValidationContext(policy=policy(reshard=s["policy"]), evidence=ev, history=history, now=NOW)
    shaped = RESHARD.shape(Proposal(action="reshard", parameters={"desired_shards": s["desired"]}, reason="p"), context)
    step = PlannedStep(
        action="reshard",
        stream="orders",
        stream_arn=stream_arn("orders"),
        parameters=shaped.parameters,
        reason=shaped.reason,
        summary=RESHARD.summary(shaped.parameters),
        cli_command=RESHARD.cli_command(stream_arn("orders"), shaped.parameters),
    )
    return evaluate(step, context)


def in_day(minutes: list[int]) -> int:
    return sum(1 for m in minutes if timedelta(minutes=m) <= DAY)


@st.composite
def scale_ins(draw: st.DrawFn) -> dict[str, Any]:
    """Situations on the scale-in path (an active provisioned stream asked for fewer shards, budget and cooldown
    out of the way), so that the scale-in's own guardrails decide: opt-in, window, reserve, AWS's count."""
    s = draw(situations())
    current = max(s["current"], 2)
    p = s["policy"] | {"daily_budget": 8, "cooldown_minutes": 1, "min_shards": 1, "max_shards": min(current, 10_000)}
    return s | {
        "current": current,
        "status": "ACTIVE",
        "mode": "PROVISIONED",
        "desired": draw(st.integers(1, current - 1)),
        "policy": p,
        "ours": draw(scalings((0, 1, 3))),
    }


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(situations(), scale_ins()))
def test_an_allowed_reshard_never_breaks_an_aws_limit_or_a_policy_bound(s: dict[str, Any]) -> None:
    # Given any stream state, history (ours and others'), policy and desired count
    # When the reshard is shaped and checked
    step = planned(s)
    current, target = s["current"], int(step.parameters["target_shards"])
    p = s["policy"]
    # Then the shaped target itself never leaves one call's reach
    assert math.ceil(current / 2) <= target <= 2 * current
    if not step.allowed:
        return
    # And an allowed step keeps every limit: AWS's per call and per stream ...
    assert target != current
    assert target <= 10_000
    assert s["status"] == "ACTIVE" and s["mode"] == "PROVISIONED"
    # ... AWS's 10 scalings per rolling 24 h, counting everyone's (ours appear in CloudTrail too) ...
    used = max(in_day(s["ours"]), in_day(s["theirs"] or []))
    assert used + 1 <= 10
    # ... the account's shard quota, when it could be read (AWS enforces it itself when not) ...
    if s["quota"] is not None and target > current:
        open_shards = max(s["quota"]["open_shards"], current)
        assert open_shards - current + target <= s["quota"]["shard_limit"]
    # ... the policy's budget, cooldown and bounds (a stream outside them only moves towards them) ...
    assert in_day(s["ours"]) < p["daily_budget"]
    assert all(m >= p["cooldown_minutes"] for m in s["ours"])
    inside = p["min_shards"] <= target <= p["max_shards"]
    towards_floor = current < target <= p["min_shards"] and target <= p["max_shards"]
    towards_ceiling = p["max_shards"] <= target < current and target >= p["min_shards"]
    assert inside or towards_floor or towards_ceiling
    if target < current:
        # ... and a scale-in is opted in, keeps 2 scalings for scaling up, and follows a calm window
        assert p["scale_in"]
        assert used + 1 <= 10 - 2
        window = p["stabilisation_minutes"]
        assert all(m >= window for m in s["ours"]) and all(m >= window for m in s["theirs"] or [])
        assert s["throttled"] == 0 and s["lag_ms"] < 60_000


@settings(max_examples=100, deadline=None)
@given(situations())
def test_a_scale_in_below_the_floor_or_past_half_is_never_even_shaped(s: dict[str, Any]) -> None:
    # Given any situation; When the reshard is shaped for fewer shards
    step = planned(s | {"desired": 1})
    current, target = s["current"], int(step.parameters["target_shards"])
    # Then the target never drops below half nor below a floor the stream was at or above
    assert target >= math.ceil(current / 2)
    if current >= s["policy"]["min_shards"]:
        assert target >= s["policy"]["min_shards"]
