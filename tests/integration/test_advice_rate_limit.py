"""Advice (a plan with no action) is audited like an action and e-mailed at most once per interval per
stream and symptom, so a flapping alarm floods no one."""

from __future__ import annotations

from typing import Any

from tests.fakes import alarm_event
from tests.integration.support import AGE_ALARM, HOT_KEY, STREAM, WRITE_ALARM, policy

ITERATOR_METRIC = "GetRecords.IteratorAgeMilliseconds"


def flap(invoke: Any, alarm: str, times: int, metric: str = "WriteProvisionedThroughputExceeded") -> list[Any]:
    """The same alarm going into ALARM `times` times (a new state timestamp each time)."""
    return [
        invoke(alarm_event(alarm, metric=metric, timestamp=f"2026-11-26T02:5{minute}:00.000+0000"))
        for minute in range(times)
    ]


def test_a_flapping_alarm_sends_one_advice_email_and_audits_every_decision(aws, invoke):
    # Given a hot partition key (advice only), under the default advice interval of 60 minutes
    aws.create_stream(STREAM, 2)
    aws.put_policy(policy(mode="enforce"))
    aws.push_traffic(STREAM, **HOT_KEY)
    # When its alarm flaps into ALARM three times
    results = flap(invoke, WRITE_ALARM, 3)
    # Then every time the advice is the same, but only the first one is e-mailed
    assert [r["status"] for r in results] == ["no-action"] * 3
    assert len(aws.emails()) == 1
    assert "advice not e-mailed again" not in results[0]["detail"]
    assert all("advice not e-mailed again: sent at" in r["detail"] for r in results[1:])
    assert all("notify.advice_interval_minutes is 60" in r["detail"] for r in results[1:])
    # And each decision has its audit row, exactly one of them marked as e-mailed
    rows = aws.audit_rows(STREAM)
    assert len(rows) == 3
    assert [r.get("notified") for r in sorted(rows, key=lambda r: r["sk"])] == [True, None, None]


def test_the_interval_is_per_symptom(aws, invoke):
    # Given a stream with a hot key and a slow consumer, both advice-only
    aws.create_stream(STREAM, 2)
    aws.put_policy(policy(mode="enforce"))
    aws.push_traffic(STREAM, **HOT_KEY, iterator_age_ms=300_000)
    # When each of its two alarms fires
    flap(invoke, WRITE_ALARM, 1)
    flap(invoke, AGE_ALARM, 1, metric=ITERATOR_METRIC)
    # Then each symptom's advice is e-mailed once
    assert len(aws.emails()) == 2


def test_an_interval_of_zero_sends_every_advice(aws, invoke):
    # Given the advice interval switched off
    aws.create_stream(STREAM, 2)
    aws.put_policy(policy(mode="enforce") | {"notify": {"advice_interval_minutes": 0}})
    aws.push_traffic(STREAM, **HOT_KEY)
    # When the alarm flaps three times
    flap(invoke, WRITE_ALARM, 3)
    # Then three e-mails go out
    assert len(aws.emails()) == 3
