"""One plan per stream at a time (issue 7.4), and the write-ahead rows counted as changes (issue 8.1).

The lease is a DynamoDB item in the audit table taken with a conditional write; moto evaluates the condition
expressions as DynamoDB does. The concurrent case holds the first trigger's change in flight at the loopback
endpoint (tests/integration/test_fault_injection.py) while the second alarm arrives.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from botocore.client import BaseClient
from remediator.clients.audit import DynamoAuditLog
from remediator.core.intent import Lease

from tests.fakes import alarm_event
from tests.integration.support import AGE_ALARM, SATURATED, STREAM, WRITE_ALARM, only, policy
from tests.integration.test_fault_injection import FaultyAws, loopback  # noqa: F401 - the fixture
from tests.integration.test_retention_and_stalls import ITERATOR_METRIC

T0 = datetime(2026, 11, 26, 3, 0, tzinfo=UTC)


def lease(holder: str, until: datetime, alarm: str = WRITE_ALARM) -> Lease:
    return Lease(stream=STREAM, holder=holder, alarm_name=alarm, symptom="write-throttling", until=until)


@pytest.mark.usefixtures("loopback")
def test_two_alarms_of_one_stream_firing_together_make_one_change(aws, handler, context, invoke, monkeypatch):
    # Given a saturated stream in enforce whose write-throttling trigger holds the stream's lease and is about to
    # reshard (paused at its write-ahead row until released)
    aws.create_stream(STREAM, 2)
    aws.put_policy(policy(mode="enforce"))
    aws.push_traffic(STREAM, **SATURATED, iterator_age_ms=3_600_000)
    paused, resume = threading.Event(), threading.Event()
    through = BaseClient._make_api_call

    def pause_at_write_ahead(self: Any, operation: str, params: dict[str, Any]) -> Any:
        if operation == "PutItem" and params.get("Item", {}).get("outcome", {}).get("S") == "in-flight":
            paused.set()
            resume.wait(10)
        return through(self, operation, params)

    monkeypatch.setattr(BaseClient, "_make_api_call", pause_at_write_ahead)
    first: dict[str, Any] = {}
    # (the first runs the handler directly: the `invoke` fixture's recorder serves one invocation at a time)
    worker = threading.Thread(target=lambda: first.update(handler.lambda_handler(alarm_event(WRITE_ALARM), context)))
    worker.start()
    assert paused.wait(10)

    # When the stream's iterator-age alarm fires meanwhile
    second = invoke(alarm_event(AGE_ALARM, metric=ITERATOR_METRIC))
    resume.set()
    worker.join(10)

    # Then the second is coordinated with the first: no change, no e-mail of its own, and it says with whom
    assert second["status"] == "coordinated"
    assert second["detail"].startswith(f"coordinated with {WRITE_ALARM} (write-throttling), which holds the lease")
    # And the first made the stream's one change, and e-mailed it
    assert first["status"] == "applied"
    assert FaultyAws.applied == ["UpdateShardCount"]
    assert aws.shard_count(STREAM) == 4
    assert sorted(row["outcome"] for row in aws.audit_rows(STREAM)) == ["applied", "coordinated"]
    assert only(aws.emails())["Subject"].startswith("[APPLIED] orders: reshard 2 -> 4 shards")


@pytest.mark.usefixtures("loopback")
def test_the_lease_is_given_back_so_the_next_alarm_plans(aws, invoke):
    # Given a stream whose first alarm was handled (and resharded)
    aws.create_stream(STREAM, 2)
    aws.put_policy(policy(mode="enforce"))
    aws.push_traffic(STREAM, **SATURATED)
    invoke(alarm_event(WRITE_ALARM))

    # When another alarm of the stream fires afterwards
    result = invoke(alarm_event(WRITE_ALARM, timestamp="2026-11-26T03:10:00.000+0000"))

    # Then it plans (not coordinated): 4 shards now carry the load, so there is nothing to do
    assert result["status"] == "no-action"
    assert sorted(row["outcome"] for row in aws.audit_rows(STREAM)) == ["applied", "no-action"]


@pytest.mark.parametrize(
    ("held_by", "until", "taken"),
    [
        (None, None, True),  # free
        ("other", T0 + timedelta(minutes=5), False),  # held by another trigger, not expired
        ("other", T0 - timedelta(seconds=1), True),  # expired: its holder died
        ("me", T0 + timedelta(minutes=5), True),  # held by this trigger: a delivery resuming its dead predecessor
    ],
)
def test_a_lease_is_taken_when_free_expired_or_already_this_triggers(aws, held_by, until, taken):
    # Given the stream's lease in that state
    log = DynamoAuditLog(aws.client("dynamodb"), aws.audit_table)
    if held_by is not None:
        assert log.acquire_lease(lease(held_by, until), T0 - timedelta(minutes=10)) is None

    # When this trigger tries to take it at T0
    found = log.acquire_lease(lease("me", T0 + timedelta(minutes=6)), T0)

    # Then it is taken, or the holder is named
    assert (found is None) == taken
    if not taken:
        assert found is not None and (found.holder, found.until) == (held_by, until)


def test_a_released_lease_is_free_and_a_stale_release_frees_nobody_elses(aws):
    # Given a lease taken by A, expired, and taken over by B
    log = DynamoAuditLog(aws.client("dynamodb"), aws.audit_table)
    a, b = lease("A", T0), lease("B", T0 + timedelta(minutes=10))
    assert log.acquire_lease(a, T0 - timedelta(minutes=1)) is None
    assert log.acquire_lease(b, T0 + timedelta(seconds=1)) is None

    # When A (late) gives its lease back
    log.release_lease(a)

    # Then B still holds it; once B gives it back, anyone may take it
    assert log.acquire_lease(lease("C", T0 + timedelta(minutes=10)), T0 + timedelta(seconds=2)) == b
    log.release_lease(b)
    assert log.acquire_lease(lease("C", T0 + timedelta(minutes=10)), T0 + timedelta(seconds=3)) is None


@pytest.mark.parametrize("outcome", ["in-flight", "uncertain", "applied"])
def test_in_flight_and_uncertain_changes_count_for_cooldown(aws, invoke, outcome):
    # Given a reshard of the stream five minutes ago whose row is in that state
    aws.create_stream(STREAM, 2)
    aws.put_policy(policy(mode="enforce"))
    aws.push_traffic(STREAM, **SATURATED)
    aws.seed_audit(STREAM, datetime.now(UTC) - timedelta(minutes=5), outcome)

    # When the alarm fires again
    result = invoke(alarm_event(WRITE_ALARM))

    # Then the reshard waits out its cooldown: a change that may have been made counts as made
    assert result["status"] == "blocked"
    assert result["steps"][0]["detail"].startswith("cooldown: last reshard at ")
    assert aws.shard_count(STREAM) == 2
