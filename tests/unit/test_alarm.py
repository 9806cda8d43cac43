"""Our alarms: naming, and which alarm state changes become a trigger (and why the others do not)."""

from __future__ import annotations

from typing import Any

import pytest
from remediator.core.alarm import DEFAULT_ALARM_PREFIX, AlarmTrigger, alarm_name, identify
from remediator.core.symptoms import SYMPTOMS

from tests.fakes import ACCOUNT, REGION

PREFIX = DEFAULT_ALARM_PREFIX
TIMESTAMP = "2026-11-26T02:59:00.000+0000"


def run(alarm: str, **overrides: Any) -> tuple[AlarmTrigger | None, str]:
    kwargs: dict[str, Any] = {
        "alarm": alarm,
        "prefix": PREFIX,
        "state": "ALARM",
        "previous_state": "OK",
        "state_timestamp": TIMESTAMP,
        "dimensions": {},
        "account": ACCOUNT,
        "region": REGION,
        "reason": "Threshold Crossed",
    }
    kwargs.update(overrides)
    return identify(**kwargs)


@pytest.mark.parametrize(
    ("alarm", "stream", "symptom", "dimensions"),
    [
        pytest.param(f"{PREFIX}orders-write-throttling", "orders", "write-throttling", {}, id="simple"),
        pytest.param(
            f"{PREFIX}orders-eu-write-throttling",
            "orders-eu",
            "write-throttling",
            {"StreamName": "orders-eu"},
            id="hyphenated stream, write-throttling",
        ),
        pytest.param(
            f"{PREFIX}orders-eu-iterator-age",
            "orders-eu",
            "iterator-age",
            {"StreamName": "orders-eu"},
            id="hyphenated stream, iterator-age",
        ),
        pytest.param(
            f"{PREFIX}my-iterator-age-write-throttling",
            "my-iterator-age",
            "write-throttling",
            {},
            id="stream name containing another symptom's key",
        ),
        pytest.param(
            f"{PREFIX}clicks.v2_1-iterator-age",
            "clicks.v2_1",
            "iterator-age",
            {"streamname": "clicks.v2_1"},
            id="lower-case dimension key (SNS shape)",
        ),
        pytest.param(
            f"{PREFIX}orders-iterator-age",
            "orders",
            "iterator-age",
            {"ShardId": "shardId-000000000000"},
            id="no StreamName dimension",
        ),
    ],
)
def test_our_alarm_into_alarm_is_a_trigger(alarm: str, stream: str, symptom: str, dimensions: dict[str, str]) -> None:
    # Given one of our alarms going from OK into ALARM
    trigger, why_not = run(alarm, dimensions=dimensions)
    # Then it is a trigger for that stream and symptom, carrying the event's details
    assert why_not == ""
    assert trigger == AlarmTrigger(
        alarm_name=alarm,
        stream=stream,
        symptom=symptom,
        state_timestamp=TIMESTAMP,
        account=ACCOUNT,
        region=REGION,
        reason="Threshold Crossed",
    )


def test_first_evaluation_without_previous_state_is_a_trigger() -> None:
    trigger, _ = run(f"{PREFIX}orders-write-throttling", previous_state=None)
    assert trigger is not None
    assert (trigger.stream, trigger.symptom) == ("orders", "write-throttling")


@pytest.mark.parametrize(
    ("alarm", "overrides", "reason"),
    [
        pytest.param(
            "someone-else-orders-write-throttling",
            {},
            "alarm 'someone-else-orders-write-throttling' does not start with 'kinesis-remediator-'",
            id="wrong prefix",
        ),
        pytest.param(
            f"{PREFIX}orders-write-throttling",
            {"state": "OK", "previous_state": "ALARM"},
            f"alarm '{PREFIX}orders-write-throttling' went to OK, not ALARM",
            id="state OK",
        ),
        pytest.param(
            f"{PREFIX}orders-write-throttling",
            {"state": "INSUFFICIENT_DATA"},
            f"alarm '{PREFIX}orders-write-throttling' went to INSUFFICIENT_DATA, not ALARM",
            id="state INSUFFICIENT_DATA",
        ),
        pytest.param(
            f"{PREFIX}orders-write-throttling",
            {"previous_state": "ALARM"},
            f"alarm '{PREFIX}orders-write-throttling' was already in ALARM",
            id="previous state ALARM",
        ),
        pytest.param(
            f"{PREFIX}orders-read-throttling",
            {},
            f"alarm '{PREFIX}orders-read-throttling' names no known symptom",
            id="unknown symptom suffix",
        ),
        pytest.param(
            f"{PREFIX}write-throttling",
            {},
            f"alarm '{PREFIX}write-throttling' names no known symptom",
            id="symptom but no stream",
        ),
        pytest.param(
            f"{PREFIX}orders-write-throttling",
            {"dimensions": {"StreamName": "payments"}},
            f"alarm '{PREFIX}orders-write-throttling' watches stream 'payments', but its name says 'orders'",
            id="StreamName dimension mismatch",
        ),
        pytest.param(
            f"{PREFIX}orders-eu-write-throttling",
            {"dimensions": {"streamname": "orders"}},
            f"alarm '{PREFIX}orders-eu-write-throttling' watches stream 'orders', but its name says 'orders-eu'",
            id="lower-case dimension mismatch",
        ),
        pytest.param(
            f"{PREFIX}Orders-write-throttling",
            {"dimensions": {"StreamName": "orders"}},
            f"alarm '{PREFIX}Orders-write-throttling' watches stream 'orders', but its name says 'Orders'",
            id="stream names are case-sensitive",
        ),
    ],
)
def test_changes_that_are_not_for_us(alarm: str, overrides: dict[str, Any], reason: str) -> None:
    assert run(alarm, **overrides) == (None, reason)


def test_custom_prefix() -> None:
    trigger, _ = run("team-a-orders-iterator-age", prefix="team-a-")
    assert trigger is not None
    assert (trigger.stream, trigger.symptom) == ("orders", "iterator-age")
    assert run(f"{PREFIX}orders-iterator-age", prefix="team-a-") == (
        None,
        f"alarm '{PREFIX}orders-iterator-age' does not start with 'team-a-'",
    )


@pytest.mark.parametrize("symptom", sorted(SYMPTOMS))
@pytest.mark.parametrize("stream", ["orders", "orders-eu-1", "a.b_c-d", "write-throttling"])
def test_alarm_name_round_trip(stream: str, symptom: str) -> None:
    # Given the name our stack gives the alarm
    name = alarm_name(PREFIX, stream, symptom)
    assert name == f"{PREFIX}{stream}-{symptom}"
    # When it fires
    trigger, _ = run(name, dimensions={"StreamName": stream})
    # Then identify recovers the same stream and symptom
    assert trigger is not None
    assert (trigger.stream, trigger.symptom) == (stream, symptom)


def test_alarm_name_rejects_unknown_symptom() -> None:
    with pytest.raises(ValueError, match=r"^unknown symptom 'read-throttling'$"):
        alarm_name(PREFIX, "orders", "read-throttling")
