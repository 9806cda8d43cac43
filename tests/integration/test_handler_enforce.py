"""Enforce mode: UpdateShardCount within AWS's limits and the policy's, once per cooldown and budget."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tests.fakes import alarm_event
from tests.integration.support import (
    ARN,
    ESTIMATE,
    NEEDS_TEN,
    SATURATED,
    STREAM,
    WRITE_ALARM,
    decisions,
    only,
    parameters_of,
    plan_of,
    policy,
    update_command,
)

SECOND_CHANGE = "2026-11-26T03:05:00.000+0000"
# An applied reshard in words: the change before -> after, then UpdateShardCount's answer (not a Python dict).
APPLIED_2_TO_4 = "accepted by AWS: open shards 2 -> 4 (AWS's answer: current shards 2, target shards 4)"


def test_enforce_reshards_the_saturated_stream_and_reports_it(aws, invoke, api_calls):
    # Given a saturated 2-shard stream under an enforce policy
    aws.create_stream(STREAM, 2)
    aws.put_policy(policy(mode="enforce"))
    aws.push_traffic(STREAM, **SATURATED)

    # When its alarm fires
    result = invoke(alarm_event(WRITE_ALARM))

    # Then UpdateShardCount is called once, by ARN, for 4 shards with uniform scaling
    assert api_calls.kinesis_mutations() == ["UpdateShardCount"]
    assert api_calls.params("kinesis", "UpdateShardCount") == [
        {"StreamARN": ARN, "TargetShardCount": 4, "ScalingType": "UNIFORM_SCALING"}
    ]
    # And moto applied it
    assert aws.shard_count(STREAM) == 4
    assert result["status"] == "applied"
    step = only(result["steps"])
    assert step["action"] == "reshard"
    assert step["outcome"] == "applied"
    assert step["detail"] == APPLIED_2_TO_4
    # And the audit row says so
    row = only(decisions(aws.audit_rows(STREAM)))
    assert row["outcome"] == "applied"
    assert row["mode"] == "enforce"
    assert parameters_of(row) == {"current_shards": 2, "desired_shards": 4, "target_shards": 4}
    # And the e-mail reports what was applied
    email = only(aws.emails())
    assert email["Subject"] == "[APPLIED] orders: reshard 2 -> 4 shards (producers throttled)"
    lines = email["Message"].splitlines()
    assert lines[0] == "Kinesis Remediator, ENFORCE: applied."
    assert f"     Command: {update_command(4)}" in lines
    assert f"     Result:  applied: {APPLIED_2_TO_4}" in lines
    # And the kill switch's verdict, as the service read it right before the change, is among the guardrails
    assert "       [pass] kill-switch: off (read right before the change)" in lines


def test_kill_switch_is_read_after_the_evidence_and_right_before_the_mutating_call(aws, invoke, api_calls):
    # Given a saturated stream under an enforce policy
    aws.create_stream(STREAM, 2)
    aws.put_policy(policy(mode="enforce"))
    aws.push_traffic(STREAM, **SATURATED)

    # When its alarm fires
    invoke(alarm_event(WRITE_ALARM))

    # Then the last call before UpdateShardCount is the kill-switch read, followed only by the write-ahead
    # audit (the claim of the step, then its in-flight row)
    calls = api_calls.calls
    update = [i for i, c in enumerate(calls) if c.operation == "UpdateShardCount"]
    assert len(update) == 1
    switch, claim, row = calls[update[0] - 3 : update[0]]
    assert (switch.service, switch.operation, switch.params) == (
        "ssm",
        "GetParameter",
        {"Name": aws.kill_switch, "WithDecryption": False},
    )
    assert (claim.operation, claim.params["Item"]["pk"]["S"], claim.params["ConditionExpression"]) == (
        "PutItem",
        f"INTENT#{WRITE_ALARM}#2026-11-26T02:59:00.000+0000",
        "attribute_not_exists(pk)",
    )
    assert (row.operation, row.params["Item"]["outcome"]["S"]) == ("PutItem", "in-flight")
    first_metrics = next(i for i, c in enumerate(calls) if c.operation == "GetMetricData")
    assert first_metrics < update[0] - 3


def test_a_target_beyond_twice_the_current_count_is_never_sent(aws, invoke, api_calls):
    # Given a 2-shard stream whose load needs 10 shards (moto would accept any count: our code must cap it)
    aws.create_stream(STREAM, 2)
    aws.put_policy(policy(mode="enforce", max_shards=16))
    aws.push_traffic(STREAM, **NEEDS_TEN)

    # When its alarm fires
    result = invoke(alarm_event(WRITE_ALARM))

    # Then the call goes to 4 (2x), not 10
    assert [p["TargetShardCount"] for p in api_calls.params("kinesis", "UpdateShardCount")] == [4]
    assert aws.shard_count(STREAM) == 4
    assert result["status"] == "applied"
    row = only(decisions(aws.audit_rows(STREAM)))
    # (sized from the estimated offered load: 50 throttled records a minute on top of the accepted 6 MB/s)
    assert parameters_of(row) == {"current_shards": 2, "desired_shards": 11, "target_shards": 4}
    assert row["reason"] == APPLIED_2_TO_4
    assert plan_of(row)["actions"][0]["reason"] == (
        "peak write utilisation 300%; "
        + ESTIMATE.format(n=500, mb="6.01", rec=501)
        + "; 11 shards would put that estimated peak at 55% of capacity (target 60%); "
        "this call goes to 4 because AWS allows at most 2x per call (4); 4 shards put the estimated offered write "
        "peak at 150% of capacity"
    )


@pytest.mark.parametrize("shards", [1, 3, 5])
def test_one_call_never_more_than_doubles_whatever_the_load(aws, invoke, api_calls, shards):
    # Given a stream whose load (50 MB/s) needs 84 shards, and a policy that would allow 100
    aws.create_stream(STREAM, shards)
    aws.put_policy(policy(mode="enforce", max_shards=100))
    aws.push_traffic(STREAM, bytes_per_second=50_000_000, records_per_second=500, throttled=50)

    # When its alarm fires
    invoke(alarm_event(WRITE_ALARM))

    # Then the one UpdateShardCount sent asks for exactly twice the current count
    assert [p["TargetShardCount"] for p in api_calls.params("kinesis", "UpdateShardCount")] == [2 * shards]
    assert aws.shard_count(STREAM) == 2 * shards
    assert parameters_of(only(decisions(aws.audit_rows(STREAM))))["desired_shards"] == 84


def test_policy_max_shards_caps_the_target_below_the_aws_step(aws, invoke, api_calls):
    # Given the same load, under a policy that allows at most 3 shards
    aws.create_stream(STREAM, 2)
    aws.put_policy(policy(mode="enforce", max_shards=3))
    aws.push_traffic(STREAM, **NEEDS_TEN)

    # When its alarm fires
    invoke(alarm_event(WRITE_ALARM))

    # Then the call goes to 3
    assert [p["TargetShardCount"] for p in api_calls.params("kinesis", "UpdateShardCount")] == [3]
    assert aws.shard_count(STREAM) == 3
    row = only(decisions(aws.audit_rows(STREAM)))
    assert row["outcome"] == "applied"
    assert parameters_of(row) == {"current_shards": 2, "desired_shards": 11, "target_shards": 3}
    assert plan_of(row)["actions"][0]["reason"].endswith(
        "this call goes to 3 because AWS allows at most 2x per call (4) and policy max_shards is 3; 3 shards put the "
        "estimated offered write peak at 200% of capacity"
    )


def test_a_stream_at_max_shards_is_blocked_not_resharded(aws, invoke, api_calls):
    # Given a saturated stream already at its policy's max_shards
    aws.create_stream(STREAM, 3)
    aws.put_policy(policy(mode="enforce", max_shards=3))
    aws.push_traffic(STREAM, **NEEDS_TEN)

    # When its alarm fires
    result = invoke(alarm_event(WRITE_ALARM))

    # Then nothing is called and the outcome says why
    assert api_calls.kinesis_mutations() == []
    assert aws.shard_count(STREAM) == 3
    assert result["status"] == "blocked"
    assert result["steps"][0]["detail"] == "policy-bounds: already at 3 shards, the most the bounds allow"
    assert only(decisions(aws.audit_rows(STREAM)))["outcome"] == "blocked"
    assert only(aws.emails())["Subject"] == "[BLOCKED] orders: reshard 3 -> 3 shards (producers throttled)"


def test_a_second_state_change_inside_the_cooldown_is_blocked(aws, invoke, api_calls):
    # Given a stream that needs 10 shards was just resharded 2 -> 4 (and is still saturated at 4)
    aws.create_stream(STREAM, 2)
    aws.put_policy(policy(mode="enforce"))
    aws.push_traffic(STREAM, **NEEDS_TEN)
    assert invoke(alarm_event(WRITE_ALARM))["status"] == "applied"
    applied_at = datetime.fromisoformat(only(decisions(aws.audit_rows(STREAM)))["at"])

    # When a second, different state change of the alarm arrives right after
    result = invoke(alarm_event(WRITE_ALARM, timestamp=SECOND_CHANGE))

    # Then it is blocked by the cooldown, and no second UpdateShardCount is made
    assert result["status"] == "blocked"
    ends = applied_at + timedelta(minutes=30)
    assert result["steps"] == [
        {
            "action": "reshard",
            "outcome": "blocked",
            "detail": f"cooldown: last reshard at {applied_at:%Y-%m-%d %H:%M} UTC; "
            f"cooldown 30 min ends {ends:%H:%M} UTC",
        }
    ]
    assert [p["TargetShardCount"] for p in api_calls.params("kinesis", "UpdateShardCount")] == [4]
    assert aws.shard_count(STREAM) == 4
    rows = sorted(decisions(aws.audit_rows(STREAM)), key=lambda r: r["sk"])
    assert [r["outcome"] for r in rows] == ["applied", "blocked"]
    assert parameters_of(rows[1]) == {"current_shards": 4, "desired_shards": 11, "target_shards": 8}
    emails = {e["Subject"]: e["Message"].splitlines() for e in aws.emails()}
    assert sorted(emails) == [
        "[APPLIED] orders: reshard 2 -> 4 shards (producers throttled)",
        "[BLOCKED] orders: reshard 4 -> 8 shards (producers throttled)",
    ]
    blocked_lines = emails["[BLOCKED] orders: reshard 4 -> 8 shards (producers throttled)"]
    assert "  1. reshard 4 -> 8 shards [BLOCKED]" in blocked_lines
    assert any(line.strip().startswith("[STOP] cooldown: last reshard at") for line in blocked_lines)


def test_cooldown_that_has_passed_lets_the_reshard_through(aws, invoke, api_calls):
    # Given a reshard applied 45 minutes ago (cooldown 30 min)
    aws.create_stream(STREAM, 2)
    aws.put_policy(policy(mode="enforce"))
    aws.push_traffic(STREAM, **SATURATED)
    aws.seed_audit(STREAM, datetime.now(UTC) - timedelta(minutes=45), "applied")

    # When the alarm fires
    result = invoke(alarm_event(WRITE_ALARM))

    # Then the reshard is applied, and the guardrail explains why it passed
    assert result["status"] == "applied"
    assert [p["TargetShardCount"] for p in api_calls.params("kinesis", "UpdateShardCount")] == [4]
    cooldown = next(g for g in result["plan"]["actions"][0]["guardrails"] if g["name"] == "cooldown")
    assert cooldown["passed"] is True
    assert cooldown["detail"].endswith("cooldown 30 min has passed")


def test_daily_budget_blocks_once_the_policy_budget_is_spent(aws, invoke, api_calls):
    # Given 4 reshards applied in the last 24 h (the default budget), spaced beyond the cooldown,
    # and an older one outside the rolling day
    aws.create_stream(STREAM, 2)
    aws.put_policy(policy(mode="enforce"))
    aws.push_traffic(STREAM, **SATURATED)
    now = datetime.now(UTC)
    for hours in (25, 23, 17, 11, 5):
        aws.seed_audit(STREAM, now - timedelta(hours=hours), "applied")

    # When the alarm fires
    result = invoke(alarm_event(WRITE_ALARM))

    # Then the budget blocks the reshard; AWS's own limit still has room
    assert result["status"] == "blocked"
    assert result["steps"][0]["detail"] == "daily-budget: 4 of 4 reshard actions used in the last 24 h"
    assert api_calls.kinesis_mutations() == []
    assert aws.shard_count(STREAM) == 2
    audited = [r for r in aws.audit_rows(STREAM) if r["reason"] != "seeded by the test"]
    assert only(audited)["outcome"] == "blocked"


def test_daily_budget_counts_only_applied_reshards(aws, invoke, api_calls):
    # Given 4 dry-run, blocked or failed reshards in the last 24 h, and 3 applied ones
    aws.create_stream(STREAM, 2)
    aws.put_policy(policy(mode="enforce"))
    aws.push_traffic(STREAM, **SATURATED)
    now = datetime.now(UTC)
    for hours, outcome in ((20, "dry-run"), (19, "blocked"), (18, "failed"), (2, "blocked")):
        aws.seed_audit(STREAM, now - timedelta(hours=hours), outcome)
    for hours in (23, 15, 7):
        aws.seed_audit(STREAM, now - timedelta(hours=hours), "applied")

    # When the alarm fires
    result = invoke(alarm_event(WRITE_ALARM))

    # Then the fourth reshard of the day is applied
    assert result["status"] == "applied"
    budget = next(g for g in result["plan"]["actions"][0]["guardrails"] if g["name"] == "daily-budget")
    assert budget == {
        "name": "daily-budget",
        "passed": True,
        "detail": "3 of 4 reshard actions used in the last 24 h",
    }
    assert [p["TargetShardCount"] for p in api_calls.params("kinesis", "UpdateShardCount")] == [4]


def test_aws_limit_of_ten_scalings_a_day_is_enforced_by_our_code(aws, invoke, api_calls):
    # Given 10 scalings in the last 24 h (people may have made some), and the policy's largest budget
    aws.create_stream(STREAM, 2)
    aws.put_policy(policy(mode="enforce", daily_budget=8))
    aws.push_traffic(STREAM, **SATURATED)
    now = datetime.now(UTC)
    for hours in range(1, 21, 2):
        aws.seed_audit(STREAM, now - timedelta(hours=hours, minutes=30), "applied")

    # When the alarm fires
    result = invoke(alarm_event(WRITE_ALARM))

    # Then both the policy budget and AWS's daily limit block it; moto, which would accept, is never asked
    assert result["status"] == "blocked"
    assert result["steps"][0]["detail"] == (
        "daily-budget: 10 of 8 reshard actions used in the last 24 h; "
        "aws-daily-scalings: 10 of AWS's 10 scalings used in the last 24 h (the remediator's audit: 10; "
        # moto does not implement CloudTrail's LookupEvents: the count falls back on the audit, and says so
        "CloudTrail could not be read (NotImplementedError: The lookup_events action has not been implemented), "
        "so reshards by people or other tools are not counted)"
    )
    assert api_calls.kinesis_mutations() == []
    assert aws.shard_count(STREAM) == 2


def test_a_zero_budget_never_reshards(aws, invoke, api_calls):
    # Given a policy whose reshard budget is 0
    aws.create_stream(STREAM, 2)
    aws.put_policy(policy(mode="enforce", daily_budget=0))
    aws.push_traffic(STREAM, **SATURATED)

    # When the alarm fires
    result = invoke(alarm_event(WRITE_ALARM))

    # Then it is blocked by the budget
    assert result["status"] == "blocked"
    assert result["steps"][0]["detail"] == "daily-budget: 0 of 0 reshard actions used in the last 24 h"
    assert api_calls.kinesis_mutations() == []


def test_a_disabled_action_is_never_applied(aws, invoke, api_calls):
    # Given an enforce policy whose reshard action is disabled
    aws.create_stream(STREAM, 2)
    aws.put_policy(policy(mode="enforce", enabled=False))
    aws.push_traffic(STREAM, **SATURATED)

    # When the alarm fires
    result = invoke(alarm_event(WRITE_ALARM))

    # Then it is blocked with the policy's reason
    assert result["status"] == "blocked"
    assert result["steps"][0]["detail"] == "policy-enabled: actions.reshard.enabled is false"
    assert api_calls.kinesis_mutations() == []
    assert aws.shard_count(STREAM) == 2


def test_a_failed_update_is_audited_and_mailed_and_not_raised(aws, handler, invoke, api_calls):
    # Given UpdateShardCount fails at AWS (LimitExceededException)
    from botocore.exceptions import ClientError

    aws.create_stream(STREAM, 2)
    aws.put_policy(policy(mode="enforce"))
    aws.push_traffic(STREAM, **SATURATED)
    # (the handler's own Kinesis client for writes: the write port it hands the action)
    kinesis = handler.dependencies().writes.service("kinesis")._client

    def refuse(**_: object) -> None:
        raise ClientError({"Error": {"Code": "LimitExceededException", "Message": "Rate exceeded"}}, "UpdateShardCount")

    kinesis.meta.events.register("before-call.kinesis.UpdateShardCount", lambda **kw: refuse())

    # When the alarm fires
    result = invoke(alarm_event(WRITE_ALARM))

    # Then the outcome is "AWS limit reached" (not an exception for Lambda to retry blindly), audited and e-mailed
    assert result["status"] == "limit-reached"
    detail = result["steps"][0]["detail"]
    assert detail.startswith("AWS limit reached: UpdateShardCount answered LimitExceededException: Rate exceeded")
    assert only(decisions(aws.audit_rows(STREAM)))["outcome"] == "limit-reached"
    assert only(aws.emails())["Subject"] == "[LIMIT-REACHED] orders: reshard 2 -> 4 shards (producers throttled)"
    assert aws.shard_count(STREAM) == 2
