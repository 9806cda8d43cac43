"""The kill switch (an SSM parameter) stops every mutating call unless it reads 'off'."""

from __future__ import annotations

import pytest

from tests.fakes import alarm_event
from tests.integration.support import SATURATED, STREAM, WRITE_ALARM, only, parameters_of, policy

KILL_SWITCH_BLOCK = "kill-switch: engaged; no change made"


@pytest.fixture
def enforced_saturated_stream(aws):
    aws.create_stream(STREAM, 2)
    aws.put_policy(policy(mode="enforce"))
    aws.push_traffic(STREAM, **SATURATED)


@pytest.mark.usefixtures("enforced_saturated_stream")
def test_kill_switch_on_blocks_the_reshard(aws, invoke, api_calls):
    # Given an operator turned the kill switch on
    aws.set_kill_switch("on")

    # When the alarm fires on a saturated stream in enforce mode
    result = invoke(alarm_event(WRITE_ALARM))

    # Then nothing is changed, and the outcome, audit row and e-mail say the kill switch stopped it
    assert result["status"] == "blocked"
    assert result["steps"] == [{"action": "reshard", "outcome": "blocked", "detail": KILL_SWITCH_BLOCK}]
    assert api_calls.kinesis_mutations() == []
    assert aws.shard_count(STREAM) == 2
    row = only(aws.audit_rows(STREAM))
    assert row["outcome"] == "blocked"
    assert row["reason"] == KILL_SWITCH_BLOCK
    assert parameters_of(row) == {"current_shards": 2, "desired_shards": 4, "target_shards": 4}
    email = only(aws.emails())
    assert email["Subject"] == "[BLOCKED] orders: reshard 2 -> 4 shards (producers throttled)"
    assert f"     Result:  blocked: {KILL_SWITCH_BLOCK}" in email["Message"].splitlines()
    # And the e-mail's guardrails show the kill switch's verdict as read, not only its result
    assert "       [STOP] kill-switch: engaged (read right before the change)" in email["Message"].splitlines()


@pytest.mark.parametrize("value", ["on", "true", "of", "0", "disabled", "off!", "o f f", "'off'"])
@pytest.mark.usefixtures("enforced_saturated_stream")
def test_any_value_but_off_counts_as_engaged(aws, invoke, api_calls, value):
    # Given the kill switch holds something other than "off"
    aws.set_kill_switch(value)

    # When the alarm fires
    result = invoke(alarm_event(WRITE_ALARM))

    # Then the reshard is blocked by the kill switch
    assert result["status"] == "blocked"
    assert result["steps"][0]["detail"] == KILL_SWITCH_BLOCK
    assert api_calls.kinesis_mutations() == []
    assert aws.shard_count(STREAM) == 2


@pytest.mark.parametrize("value", ["off", "OFF", " Off\n"])
@pytest.mark.usefixtures("enforced_saturated_stream")
def test_off_is_read_ignoring_case_and_surrounding_blanks(aws, invoke, api_calls, value):
    # Given the kill switch reads "off" up to case and surrounding whitespace (clients/parameters.py
    # strips and lower-cases before comparing)
    aws.set_kill_switch(value)

    # When the alarm fires
    result = invoke(alarm_event(WRITE_ALARM))

    # Then the reshard goes ahead
    assert result["status"] == "applied"
    assert api_calls.kinesis_mutations() == ["UpdateShardCount"]
    assert aws.shard_count(STREAM) == 4


@pytest.mark.usefixtures("enforced_saturated_stream")
def test_a_missing_kill_switch_counts_as_engaged(aws, invoke, api_calls):
    # Given the kill-switch parameter does not exist (deleted, or never deployed)
    aws.delete_kill_switch()

    # When the alarm fires
    result = invoke(alarm_event(WRITE_ALARM))

    # Then the reshard is blocked: a switch that cannot be read stops mutations
    assert result["status"] == "blocked"
    assert result["steps"][0]["detail"] == KILL_SWITCH_BLOCK
    assert api_calls.kinesis_mutations() == []
    assert aws.shard_count(STREAM) == 2
    assert only(aws.audit_rows(STREAM))["outcome"] == "blocked"


@pytest.mark.usefixtures("enforced_saturated_stream")
def test_kill_switch_is_read_fresh_on_every_invocation(aws, invoke, api_calls):
    # Given a warm container that was blocked by the kill switch
    aws.set_kill_switch("on")
    assert invoke(alarm_event(WRITE_ALARM))["status"] == "blocked"

    # When the operator turns it off and the alarm changes state again (same container, no cache wait)
    aws.set_kill_switch("off")
    result = invoke(alarm_event(WRITE_ALARM, timestamp="2026-11-26T03:10:00.000+0000"))

    # Then the reshard is applied (blocked steps start no cooldown)
    assert result["status"] == "applied"
    assert api_calls.kinesis_mutations() == ["UpdateShardCount"]
    assert aws.shard_count(STREAM) == 4
