"""Duplicate delivery: one alarm state change (name + state timestamp) acts once."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError

from tests.fakes import alarm_event
from tests.integration.support import SATURATED, STREAM, WRITE_ALARM, only, policy


def test_the_same_event_twice_acts_once_in_enforce(aws, invoke, api_calls):
    # Given a saturated stream in enforce mode
    aws.create_stream(STREAM, 2)
    aws.put_policy(policy(mode="enforce"))
    aws.push_traffic(STREAM, **SATURATED)
    event = alarm_event(WRITE_ALARM)

    # When EventBridge delivers the same event twice
    first = invoke(event)
    second = invoke(event)

    # Then the second delivery returns the first result, and only one reshard, audit row and e-mail exist
    assert first["status"] == "applied"
    assert second == first
    assert api_calls.kinesis_mutations() == ["UpdateShardCount"]
    assert aws.shard_count(STREAM) == 4
    assert only(aws.audit_rows(STREAM))["outcome"] == "applied"
    assert only(aws.emails())["Subject"].startswith("[APPLIED] ")


def test_a_redelivered_event_with_a_new_event_id_is_still_a_duplicate(aws, invoke, api_calls):
    # Given a dry-run stream
    aws.create_stream(STREAM, 2)
    aws.put_policy(policy())
    aws.push_traffic(STREAM, **SATURATED)
    event = alarm_event(WRITE_ALARM)
    again = alarm_event(WRITE_ALARM)
    again["id"] = "00000000-0000-0000-0000-000000000000"
    again["time"] = "2026-11-26T03:01:00Z"

    # When the same state change arrives in two envelopes
    first = invoke(event)
    second = invoke(again)

    # Then it is processed once: the key is the alarm name and the state timestamp
    assert second == first
    assert only(aws.audit_rows(STREAM))["outcome"] == "dry-run"
    assert only(aws.emails())["Subject"].startswith("[DRY-RUN] ")


def test_a_different_state_timestamp_is_processed_again(aws, invoke):
    # Given a dry-run stream that has already been handled once
    aws.create_stream(STREAM, 2)
    aws.put_policy(policy())
    aws.push_traffic(STREAM, **SATURATED)
    invoke(alarm_event(WRITE_ALARM))

    # When the alarm goes OK and back to ALARM (a new state timestamp)
    result = invoke(alarm_event(WRITE_ALARM, timestamp="2026-11-26T03:30:00.000+0000"))

    # Then it is processed again: two audit rows and two e-mails
    assert result["status"] == "dry-run"
    assert [r["outcome"] for r in aws.audit_rows(STREAM)] == ["dry-run", "dry-run"]
    assert [e["Subject"] for e in aws.emails()] == ["[DRY-RUN] orders: reshard 2 -> 4 shards (producers throttled)"] * 2


def test_an_invocation_that_fails_does_not_swallow_the_retry(aws, invoke, api_calls):
    # Given a listed stream that does not exist yet, so describing it fails
    aws.put_policy(policy(mode="enforce"))
    event = alarm_event(WRITE_ALARM)

    # When the first delivery fails (Lambda would retry it)
    with pytest.raises(ClientError, match="ResourceNotFoundException"):
        invoke(event)
    assert api_calls.kinesis_mutations() == []
    (failed,) = aws.audit_rows(STREAM)
    assert failed["outcome"] == "failed"
    assert failed["reason"].startswith("could not gather evidence: ResourceNotFoundException")

    # And the retry of the same event comes once the stream is there
    aws.create_stream(STREAM, 2)
    aws.push_traffic(STREAM, **SATURATED)
    result = invoke(event)

    # Then the retry is processed (the failed attempt left no idempotency record behind)
    assert result["status"] == "applied"
    assert aws.shard_count(STREAM) == 4
    assert sorted(row["outcome"] for row in aws.audit_rows(STREAM)) == ["applied", "failed"]
