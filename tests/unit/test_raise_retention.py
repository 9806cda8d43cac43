"""raise-retention: the retention maths, the monthly cost, its guardrails and how a plan shows it."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from remediator.core.actions.base import ValidationContext
from remediator.core.actions.raise_retention import RetentionTarget, retention_target
from remediator.core.evidence import Evidence
from remediator.core.history import ActionHistory, PastAction
from remediator.core.plan import Change, PlannedStep, Proposal
from remediator.core.planner import make_plan
from remediator.core.policy import StreamPolicy
from remediator.core.pricing import PRICES, monthly_retention_cost, price_note
from remediator.core.registry import REGISTRY

from tests.fakes import NOW, evidence, policy, stream_arn

RAISE = REGISTRY.actions["raise-retention"]
HOUR_MS = 3_600_000
ONE_GB_AN_HOUR = 1024**3 / 3600  # bytes per second that store 1 GB (AWS: 1,024^3 bytes) per hour of retention
ARN = stream_arn("orders")


# The retention one call goes to ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("current", "age_hours", "at_share", "max_hours", "expected"),
    [
        pytest.param(24, 12, 0.5, 168, RetentionTarget(48), id="doubles 24 -> 48"),
        pytest.param(48, 30, 0.5, 168, RetentionTarget(96), id="doubles 48 -> 96"),
        pytest.param(24, 20, 0.25, 168, RetentionTarget(80), id="further than double to get back under the share"),
        pytest.param(24, 20.1, 0.25, 168, RetentionTarget(81), id="rounds the needed hours up"),
        pytest.param(96, 50, 0.5, 168, RetentionTarget(168, ("policy max_hours is 168",)), id="capped by max_hours"),
        pytest.param(
            200, 120, 0.5, 168, RetentionTarget(168, ("policy max_hours is 168",)), id="above max_hours: a decrease"
        ),
        pytest.param(168, 100, 0.5, 168, RetentionTarget(168, ("policy max_hours is 168",)), id="already at max_hours"),
        pytest.param(
            5_000,
            2_600,
            0.5,
            9_000,
            RetentionTarget(8_760, ("policy max_hours is 9000", "AWS allows at most 8,760 h")),
            id="capped by AWS's 8,760 h",
        ),
    ],
)
def test_retention_target(
    current: int, age_hours: float, at_share: float, max_hours: int, expected: RetentionTarget
) -> None:
    # Given the current retention, the oldest unread record's age and the policy's share and maximum
    # When the target of one call is computed
    # Then it at least doubles, puts the record back at the share, and says what capped it
    assert retention_target(current, age_hours * HOUR_MS, at_share, max_hours) == expected


# What the retention costs per month ----------------------------------------------------------------------
@pytest.mark.parametrize(
    ("hours", "shards", "bytes_per_second", "on_demand", "usd"),
    [
        pytest.param(24, 2, ONE_GB_AN_HOUR, False, 0.0, id="24 h is included"),
        pytest.param(48, 2, ONE_GB_AN_HOUR, False, 2 * 730 * 0.020, id="extended: per shard-hour"),
        pytest.param(168, 2, ONE_GB_AN_HOUR, False, 2 * 730 * 0.020, id="extended: whatever the hours up to 7 days"),
        pytest.param(48, 5, 0.0, False, 5 * 730 * 0.020, id="extended: whatever the volume"),
        pytest.param(
            336, 2, ONE_GB_AN_HOUR, False, 2 * 730 * 0.020 + 168 * 0.023, id="long-term: per GB beyond 7 days"
        ),
        pytest.param(48, 2, ONE_GB_AN_HOUR, True, 24 * 0.10, id="on-demand extended: per GB in 24 h .. 7 days"),
        pytest.param(8_760, 2, ONE_GB_AN_HOUR, True, 144 * 0.10 + (8_760 - 168) * 0.023, id="on-demand at 365 days"),
    ],
)
def test_monthly_retention_cost(hours: int, shards: int, bytes_per_second: float, on_demand: bool, usd: float) -> None:
    # Given a retention period, the shards and the average write rate
    # When its monthly cost is computed with the one price table
    cost = monthly_retention_cost(hours, shards=shards, average_bytes_per_second=bytes_per_second, on_demand=on_demand)
    # Then it is AWS's billing rule applied to those prices
    assert cost == pytest.approx(usd)


def test_the_price_table_says_where_and_when_it_was_taken_and_that_it_is_unconfirmed() -> None:
    assert (PRICES.region, PRICES.taken_on, PRICES.confirmed) == ("us-east-1", "2026-11-26", False)
    assert PRICES.source == "https://aws.amazon.com/kinesis/data-streams/pricing/"
    assert price_note() == "us-east-1 list prices of 2026-11-26, UNCONFIRMED"


# Shape: the step a proposal becomes ----------------------------------------------------------------------
def context(ev: Evidence, p: StreamPolicy, history: ActionHistory | None = None) -> ValidationContext:
    return ValidationContext(policy=p, evidence=ev, history=history or ActionHistory(), now=NOW)


def proposal(age_hours: float) -> Proposal:
    return Proposal(
        action="raise-retention", parameters={"oldest_record_age_ms": int(age_hours * HOUR_MS)}, reason="lagging"
    )


def test_shape_computes_hours_and_monthly_cost_and_says_why() -> None:
    # Given a 2-shard provisioned stream at 24 h, its oldest unread record 14 h old
    ev = evidence(shards=2, bytes_per_second=ONE_GB_AN_HOUR, retention_hours=24)
    # When the action shapes the proposal
    shaped = RAISE.shape(proposal(14), context(ev, policy()))
    # Then one call doubles the retention, and the step carries the cost before and after
    assert shaped.parameters == {
        "oldest_record_age_ms": 14 * HOUR_MS,
        "current_hours": 24,
        "target_hours": 48,
        "monthly_cost_usd_before": 0.0,
        "monthly_cost_usd_after": 29.2,
    }
    assert shaped.reason == (
        "lagging; retention 24 -> 48 h costs about $0.00 -> $29.20 a month on 2 shards "
        "(us-east-1 list prices of 2026-11-26, UNCONFIRMED)"
    )


def test_shape_says_what_capped_the_raise_and_the_long_term_cost() -> None:
    # Given a stream at 96 h whose policy allows up to 336 h, and a record 60 h old
    ev = evidence(shards=2, bytes_per_second=ONE_GB_AN_HOUR, retention_hours=96)
    p = policy(actions={"reshard": {"max_shards": 16}, "raise_retention": {"max_hours": 336}})
    # When shaped
    shaped = RAISE.shape(proposal(60), context(ev, p))
    # Then it doubles to 192 h, and the part beyond 7 days is priced per GB stored
    assert (shaped.parameters["target_hours"], shaped.parameters["monthly_cost_usd_after"]) == (
        192,
        round(29.2 + 24 * 0.023, 2),
    )
    # And from 168 h, where doubling would pass max_hours, the call stops there, the reason saying so
    at_week = ev.model_copy(update={"stream": ev.stream.model_copy(update={"retention_hours": 168})})
    p300 = policy(actions={"reshard": {"max_shards": 16}, "raise_retention": {"max_hours": 300}})
    capped = RAISE.shape(proposal(90), context(at_week, p300))
    assert capped.parameters["target_hours"] == 300
    assert "; this call goes to 300 h because policy max_hours is 300;" in capped.reason


def test_shape_without_incoming_bytes_says_the_per_gb_part_is_left_out() -> None:
    ev = evidence(shards=2, retention_hours=24, mode="ON_DEMAND")
    ev = ev.model_copy(update={"series": {}})
    shaped = RAISE.shape(proposal(14), context(ev, policy()))
    assert shaped.parameters["monthly_cost_usd_after"] == 0.0
    assert "costs about $0.00 -> $0.00 a month on 0.00 MB/s written on average (" in shaped.reason
    assert shaped.reason.endswith("; CloudWatch returned no IncomingBytes, so the per-GB part of the cost is left out")


def test_shape_prices_an_on_demand_stream_by_the_data_it_keeps() -> None:
    ev = evidence(shards=4, bytes_per_second=ONE_GB_AN_HOUR, retention_hours=24, mode="ON_DEMAND")
    shaped = RAISE.shape(proposal(14), context(ev, policy()))
    assert shaped.parameters["monthly_cost_usd_after"] == 2.4  # 24 GB in the extended window at $0.10
    assert "costs about $0.00 -> $2.40 a month on 0.30 MB/s written on average (" in shaped.reason


# Checks: AWS's limits and the policy's bounds -------------------------------------------------------------
def step(current: int, target: int, age_hours: float) -> PlannedStep:
    parameters: dict[str, Any] = {
        "oldest_record_age_ms": int(age_hours * HOUR_MS),
        "current_hours": current,
        "target_hours": target,
        "monthly_cost_usd_before": 0.0,
        "monthly_cost_usd_after": 0.0,
    }
    return PlannedStep(
        action="raise-retention",
        stream="orders",
        stream_arn=ARN,
        parameters=parameters,
        reason="test",
        summary=RAISE.summary(parameters),
        cli_command=RAISE.cli_command(ARN, parameters),
    )


ONLY_UP = (
    " h; the retention is only ever raised (a decrease drops the records older than the new period almost "
    "immediately, and IncreaseStreamRetentionPeriod needs a longer period)"
)


@pytest.mark.parametrize(
    ("current", "target", "age_hours", "max_hours", "failed"),
    [
        pytest.param(24, 48, 14, 168, {}, id="a doubling within every bound"),
        pytest.param(
            5_000,
            9_000,
            4_000,
            8_760,
            {
                "aws-retention-range": "9,000 h; AWS allows 24 to 8,760 h",
                "policy-max-hours": "9,000 h is above max_hours 8,760",
            },
            id="above AWS's 8,760 h",
        ),
        pytest.param(
            200,
            168,
            150,
            168,
            {"increase-only": "200 -> 168" + ONLY_UP},
            id="a decrease",
        ),
        pytest.param(
            168,
            168,
            100,
            168,
            {"increase-only": "168 -> 168" + ONLY_UP},
            id="no change",
        ),
        pytest.param(
            24,
            12,
            14,
            168,
            {
                "aws-retention-range": "12 h; AWS allows 24 to 8,760 h",
                "increase-only": "24 -> 12" + ONLY_UP,
            },
            id="below AWS's 24 h",
        ),
        pytest.param(96, 192, 60, 168, {"policy-max-hours": "192 h is above max_hours 168"}, id="above max_hours"),
        pytest.param(
            24,
            48,
            10,
            168,
            {"policy-share": "the oldest unread record is 42% of the way to expiry; the policy raises from 50%"},
            id="below the policy's share",
        ),
    ],
)
def test_checks(current: int, target: int, age_hours: float, max_hours: int, failed: dict[str, str]) -> None:
    # Given a stream at `current` hours and a step to `target`
    ev = evidence(retention_hours=current)
    p = policy(actions={"reshard": {"max_shards": 16}, "raise_retention": {"max_hours": max_hours}})
    # When the action's guardrails check it
    verdicts = RAISE.checks(step(current, target, age_hours), context(ev, p))
    # Then exactly these fail, each saying why
    assert [v.name for v in verdicts] == ["aws-retention-range", "increase-only", "policy-max-hours", "policy-share"]
    assert {v.name: v.detail for v in verdicts if not v.passed} == failed


def test_policy_refuses_a_max_hours_beyond_aws() -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="less than or equal to 8760"):
        policy(actions={"reshard": {"max_shards": 16}, "raise_retention": {"max_hours": 8_761}})
    with pytest.raises(ValidationError, match="greater than or equal to 24"):
        policy(actions={"reshard": {"max_shards": 16}, "raise_retention": {"max_hours": 23}})


# The plan: summary, command, changes, cost, cooldown -----------------------------------------------------
def test_plan_shows_the_raise_with_its_cost_and_command() -> None:
    # Given consumers 14 h behind on a 2-shard stream at 24 h retention, writes at 10 % of capacity
    ev = evidence(shards=2, bytes_per_second=200_000, iterator_age_ms=14 * HOUR_MS, retention_hours=24)
    # When the iterator-age alarm is planned
    plan = make_plan(
        alarm_name="a", symptom="iterator-age", policy=policy(), evidence=ev, history=ActionHistory(), now=NOW
    )
    # Then the step raises retention 24 -> 48 h, allowed, with its cost in the summary and in plan --json
    (step_,) = plan.steps
    assert step_.allowed
    assert step_.summary == "raise retention 24 -> 48 h (+$29.20/month)"
    assert step_.cli_command == (
        f"aws kinesis increase-stream-retention-period --stream-arn {ARN} --retention-period-hours 48"
    )
    assert step_.changes == (Change(setting="retention hours", before=24, after=48),)
    (entry,) = plan.as_report()["actions"]
    assert (entry["parameters"]["monthly_cost_usd_before"], entry["parameters"]["monthly_cost_usd_after"]) == (
        0.0,
        29.2,
    )
    assert entry["changes"] == [{"setting": "retention hours", "before": 24, "after": 48}]


def test_a_raise_waits_out_its_cooldown() -> None:
    # Given a raise applied 30 minutes ago (its audit row recorded the cost as fractions)
    ev = evidence(shards=2, bytes_per_second=200_000, iterator_age_ms=30 * HOUR_MS, retention_hours=48)
    past = PastAction(
        action="raise-retention",
        stream="orders",
        at=NOW - timedelta(minutes=30),
        parameters={"current_hours": 24, "target_hours": 48, "monthly_cost_usd_after": 29.2},
    )
    # When the next plan is made
    plan = make_plan(
        alarm_name="a", symptom="iterator-age", policy=policy(), evidence=ev, history=ActionHistory([past]), now=NOW
    )
    # Then the step is blocked by the default 60-minute cooldown
    (step_,) = plan.steps
    assert step_.blocking_reasons == [
        "cooldown: last raise-retention at 2026-11-26 02:30 UTC; cooldown 60 min ends 03:30 UTC"
    ]


def test_validate_table_bounds() -> None:
    assert RAISE.bounds(RAISE.block(policy())) == "from 50% of retention, up to 168 h"
