"""Events the remediator ignores: nothing in AWS is touched, and the handler returns normally."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.fakes import alarm_event
from tests.integration.support import SATURATED, STREAM, WRITE_ALARM, only, policy

NOT_AN_ALARM = "not a CloudWatch Alarm State Change event"
NAME_FORMAT = "<prefix><stream>/<symptom>[/<qualifier>]"


@pytest.fixture
def enforced_saturated_stream(aws):
    """A stream that would be resharded if the event were acted on."""
    aws.create_stream(STREAM, 2)
    aws.put_policy(policy(mode="enforce"))
    aws.push_traffic(STREAM, **SATURATED)


def assert_untouched(aws, api_calls):
    assert api_calls.calls == [], f"AWS was called: {api_calls.operations()}"
    assert aws.shard_count(STREAM) == 2
    assert aws.audit_rows(STREAM) == []
    assert aws.emails() == []


def ignored(detail: str, stream: str = "-", symptom: str = "-") -> dict[str, Any]:
    return {
        "status": "ignored",
        "stream": stream,
        "symptom": symptom,
        "detail": detail,
        "steps": [],
        "plan": None,
    }


def _string_detail() -> dict[str, Any]:
    event = alarm_event(WRITE_ALARM)
    event["detail"] = json.dumps(event["detail"])
    return event


def _other_source() -> dict[str, Any]:
    event = alarm_event(WRITE_ALARM)
    event["source"] = "aws.ec2"
    return event


def _other_detail_type() -> dict[str, Any]:
    event = alarm_event(WRITE_ALARM)
    event["detail-type"] = "CloudWatch Alarm Configuration Change"
    return event


def _unknown_state() -> dict[str, Any]:
    event = alarm_event(WRITE_ALARM)
    event["detail"]["state"]["value"] = "PANIC"
    return event


def _no_alarm_name() -> dict[str, Any]:
    event = alarm_event(WRITE_ALARM)
    del event["detail"]["alarmName"]
    return event


def _no_account() -> dict[str, Any]:
    event = alarm_event(WRITE_ALARM)
    del event["account"]
    return event


SQS_EVENT = {
    "Records": [
        {
            "messageId": "059f36b4-87a3-44ab-83d2-661975830a7d",
            "receiptHandle": "AQEBwJnKyrHigUMZj6rYigCgxlaS3SLy0a",
            "body": json.dumps(alarm_event(WRITE_ALARM)),
            "attributes": {"ApproximateReceiveCount": "1"},
            "messageAttributes": {},
            "md5OfBody": "e4e68fb7bd0e697a0ae8f1bb342846b3",
            "eventSource": "aws:sqs",
            "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:my-queue",
            "awsRegion": "us-east-1",
        }
    ]
}


@pytest.mark.parametrize(
    "event",
    [
        pytest.param({}, id="empty-dict"),
        pytest.param([], id="list"),
        pytest.param(None, id="none"),
        pytest.param(WRITE_ALARM, id="bare-string"),
        pytest.param(42, id="number"),
        pytest.param(SQS_EVENT, id="sqs-event"),
        pytest.param({"detail": "ALARM"}, id="string-detail-only"),
        pytest.param(_string_detail(), id="json-string-detail"),
        pytest.param(_other_source(), id="other-source"),
        pytest.param(_other_detail_type(), id="other-detail-type"),
        pytest.param(_unknown_state(), id="unknown-state"),
        pytest.param(_no_alarm_name(), id="no-alarm-name"),
        pytest.param(_no_account(), id="no-account"),
    ],
)
@pytest.mark.usefixtures("enforced_saturated_stream")
def test_events_that_are_not_alarm_state_changes_are_ignored(aws, invoke, api_calls, event):
    # Given a stream that would be resharded
    # When the handler receives something that is not a CloudWatch alarm state change
    result = invoke(event)

    # Then it returns "ignored" without raising, and touches nothing
    assert result == ignored(NOT_AN_ALARM)
    assert_untouched(aws, api_calls)


@pytest.mark.parametrize(
    ("event", "detail"),
    [
        pytest.param(
            alarm_event("billing-orders/write-throttling"),
            "alarm 'billing-orders/write-throttling' does not start with 'kinesis-remediator-'",
            id="other-prefix",
        ),
        pytest.param(
            alarm_event(WRITE_ALARM, state="OK", previous="INSUFFICIENT_DATA"),
            f"alarm '{WRITE_ALARM}' went to OK, not ALARM",
            id="state-ok-not-after-alarm",
        ),
        pytest.param(
            alarm_event(WRITE_ALARM, state="INSUFFICIENT_DATA"),
            f"alarm '{WRITE_ALARM}' went to INSUFFICIENT_DATA, not ALARM",
            id="state-insufficient-data",
        ),
        pytest.param(
            alarm_event(WRITE_ALARM, previous="ALARM"),
            f"alarm '{WRITE_ALARM}' was already in ALARM",
            id="previous-alarm",
        ),
        pytest.param(
            alarm_event("kinesis-remediator-orders/no-such-symptom"),
            "alarm 'kinesis-remediator-orders/no-such-symptom' names no known symptom ('no-such-symptom')",
            id="unknown-symptom",
        ),
        pytest.param(
            alarm_event("kinesis-remediator-/write-throttling"),
            f"alarm 'kinesis-remediator-/write-throttling' is not named {NAME_FORMAT}",
            id="no-stream-in-name",
        ),
        pytest.param(
            alarm_event("kinesis-remediator-orders-write-throttling"),
            f"alarm 'kinesis-remediator-orders-write-throttling' is not named {NAME_FORMAT}",
            id="name-without-separator",
        ),
        pytest.param(
            alarm_event("kinesis-remediator-orders/write-throttling/a/b"),
            f"alarm 'kinesis-remediator-orders/write-throttling/a/b' is not named {NAME_FORMAT}",
            id="too-many-parts",
        ),
        pytest.param(
            alarm_event(WRITE_ALARM, stream="payments"),
            f"alarm '{WRITE_ALARM}' watches stream 'payments', but its name says 'orders'",
            id="dimension-disagrees",
        ),
    ],
)
@pytest.mark.usefixtures("enforced_saturated_stream")
def test_alarm_changes_that_are_not_ours_to_act_on_are_ignored(aws, invoke, api_calls, event, detail):
    # Given a stream that would be resharded
    # When an alarm state change arrives that is not ours, or not a move into ALARM
    result = invoke(event)

    # Then it is ignored with the reason, and nothing in AWS (nor the audit table) is touched
    assert result == ignored(detail)
    assert_untouched(aws, api_calls)


@pytest.mark.usefixtures("enforced_saturated_stream")
def test_lower_case_dimension_key_that_disagrees_is_also_ignored(aws, invoke, api_calls):
    # Given an alarm whose metric dimension key is lower-cased (as in SNS-shaped payloads)
    event = alarm_event(WRITE_ALARM, stream=None)
    event["detail"]["configuration"]["metrics"][0]["metricStat"]["metric"]["dimensions"] = {"streamname": "payments"}

    # When it fires
    result = invoke(event)

    # Then it is ignored
    assert result == ignored(f"alarm '{WRITE_ALARM}' watches stream 'payments', but its name says 'orders'")
    assert_untouched(aws, api_calls)


@pytest.mark.usefixtures("enforced_saturated_stream")
def test_a_change_from_insufficient_data_to_alarm_is_acted_on(aws, invoke):
    # Given a stream that would be resharded
    # When its alarm goes from INSUFFICIENT_DATA to ALARM
    result = invoke(alarm_event(WRITE_ALARM, previous="INSUFFICIENT_DATA"))

    # Then it is acted on
    assert result["status"] == "applied"
    assert aws.shard_count(STREAM) == 4


def test_stream_in_no_policy_is_ignored_and_audited(aws, invoke, api_calls):
    # Given a saturated stream that no policy lists (only another stream has one)
    aws.create_stream(STREAM, 2)
    aws.push_traffic(STREAM, **SATURATED)
    aws.put_policy(policy(name="payments", mode="enforce"))

    # When its (correctly named) alarm fires
    result = invoke(alarm_event(WRITE_ALARM))

    # Then it is ignored, with an audit row saying why
    why = (
        "no valid policy for stream 'orders' (none deployed, or it failed validation: see the remediator's logs); "
        "the remediator touches only streams with a valid policy"
    )
    assert result == ignored(why, stream=STREAM, symptom="write-throttling")
    row = only(aws.audit_rows(STREAM))
    assert row["outcome"] == "ignored"
    assert row["reason"] == why
    assert row["alarm_name"] == WRITE_ALARM
    # And the stream is not even described: the allowlist is checked before any call about it
    assert api_calls.services() <= {"ssm", "dynamodb"}
    assert aws.shard_count(STREAM) == 2
    assert aws.emails() == []
