"""Event trust through the real handler: only alarms this deployment created, from its own account and region (or
a member's: tests/integration/test_members.py), naming a stream Kinesis could have, are acted on. Ignored events
touch no stream; they are audited only where the stream is valid and has a policy, or where the event names a
well-formed account and region (never an audit row keyed by an invalid name)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.fakes import alarm_event
from tests.integration.support import PREFIX, SATURATED, STREAM, WRITE_ALARM, only, policy


@pytest.fixture
def saturated(aws):
    """An enforced, saturated 2-shard stream: any event acted on reshards it."""
    aws.create_stream(STREAM, 2)
    aws.put_policy(policy(mode="enforce"))
    aws.push_traffic(STREAM, **SATURATED)


def all_audit_rows(aws) -> list[dict[str, Any]]:
    return list(aws.client("dynamodb").scan(TableName=aws.audit_table)["Items"])


def composite(name: str) -> dict[str, Any]:
    """A composite alarm's state change: an alarm rule, no metrics."""
    event = alarm_event(name)
    event["detail"]["configuration"] = {
        "alarmRule": f'ALARM("{PREFIX}payments/write-throttling")',
        "description": "someone's composite alarm",
    }
    return event


def expression_only(name: str) -> dict[str, Any]:
    """A metric alarm on a single expression (metric insights / SEARCH): no metricStat, so no dimensions."""
    event = alarm_event(name)
    event["detail"]["configuration"]["metrics"] = [
        {"id": "q1", "expression": 'SELECT SUM(IncomingBytes) FROM "AWS/Kinesis"', "period": 60, "returnData": True}
    ]
    return event


@pytest.mark.usefixtures("saturated")
def test_an_alarm_of_ours_is_acted_on(aws, invoke):
    # Given the saturated stream (the control for the tests below: the same event, trusted, reshards)
    # When its deployed alarm fires, from our account and region, with its StreamName dimension
    result = invoke(alarm_event(WRITE_ALARM))
    # Then the stream is resharded
    assert result["status"] == "applied"
    assert aws.shard_count(STREAM) == 4


@pytest.mark.parametrize(
    ("event", "why"),
    [
        pytest.param(composite(WRITE_ALARM), "arrived without the StreamName dimension", id="composite-our-name"),
        pytest.param(
            composite(f"{WRITE_ALARM}/composite"), "is not one this deployment created", id="composite-our-prefix"
        ),
        pytest.param(expression_only(WRITE_ALARM), "arrived without the StreamName dimension", id="expression-only"),
        pytest.param(
            alarm_event(f"{PREFIX}{STREAM}/iterator-age/by-hand"),
            "is not one this deployment created",
            id="name-not-derived-from-the-policy",
        ),
    ],
)
@pytest.mark.usefixtures("saturated")
def test_alarms_this_deployment_did_not_create_are_ignored_and_audited(aws, invoke, api_calls, event, why):
    # Given the saturated stream, with a policy
    # When a state change arrives for an alarm that bears our prefix but that the stack did not make as sent
    result = invoke(event)

    # Then it is ignored with the reason, nothing is changed or e-mailed
    assert (result["status"], result["stream"]) == ("ignored", STREAM)
    assert why in result["detail"]
    assert aws.shard_count(STREAM) == 2
    assert aws.emails() == []
    assert "kinesis" not in api_calls.services()
    # And, the stream being valid and in a policy, the decision is audited under it
    row = only(aws.audit_rows(STREAM))
    assert (row["outcome"], row["reason"]) == ("ignored", result["detail"])


def test_an_alarm_of_a_disabled_detector_is_ignored_and_audited(aws, invoke):
    # Given the saturated stream whose policy disables the write-throttling detector (so the stack made no such
    # alarm, and one left over or made by hand must not act)
    aws.create_stream(STREAM, 2)
    aws.put_policy(policy(mode="enforce") | {"detectors": {"write_throttling": {"enabled": False}}})
    aws.push_traffic(STREAM, **SATURATED)

    # When an alarm bearing its name fires
    result = invoke(alarm_event(WRITE_ALARM))

    # Then it is ignored and audited, and the stream is untouched
    assert result["status"] == "ignored"
    assert "is not one this deployment created" in result["detail"]
    assert only(aws.audit_rows(STREAM))["outcome"] == "ignored"
    assert aws.shard_count(STREAM) == 2


@pytest.mark.parametrize(
    ("field", "value", "why"),
    [
        pytest.param(
            "account",
            "210987654321",
            "the event comes from account '210987654321' but its alarm's ARN names account '123456789012'",
            id="wrong-account",
        ),
        pytest.param(
            "region",
            "eu-west-1",
            "the event comes from region 'eu-west-1' but its alarm's ARN names region 'us-east-1'",
            id="region",
        ),
    ],
)
@pytest.mark.usefixtures("saturated")
def test_an_event_whose_envelope_and_alarm_arn_disagree_is_audited_never_acted_on(
    aws, invoke, api_calls, field, value, why
):
    # Given our alarm's state change with another account or region in its envelope than in its alarm's ARN
    # (since issue 11.4 another account or region may be a member, so the two must agree)
    event = alarm_event(WRITE_ALARM)
    event[field] = value

    # When it reaches the handler
    result = invoke(event)

    # Then it is ignored with the reason, audited under the account and region the envelope names (never in the hub's
    # stream's rows), and nothing else is called: no policy read, no role assumed, no stream touched
    assert result["status"] == "ignored" and why in result["detail"]
    assert [(c.service, c.operation) for c in api_calls.calls] == [("dynamodb", "PutItem")]
    [row] = all_audit_rows(aws)
    account, region = (value, "us-east-1") if field == "account" else ("123456789012", value)
    assert row["pk"]["S"] == f"STREAM#{account}/{region}/{STREAM}"
    assert (row["account"]["S"], row["region"]["S"], row["outcome"]["S"]) == (account, region, "ignored")
    assert aws.audit_rows(STREAM) == []
    assert aws.shard_count(STREAM) == 2


@pytest.mark.parametrize("length", [129, 200])
@pytest.mark.usefixtures("saturated")
def test_an_oversized_stream_name_is_ignored_without_any_audit_write(aws, invoke, api_calls, length):
    # Given an alarm of our shape whose stream part is longer than Kinesis allows (once crashed the audit write
    # with a DynamoDB key-size error)
    event = alarm_event(f"{PREFIX}{'s' * length}/write-throttling", stream="s" * length)

    # When it reaches the handler
    result = invoke(event)

    # Then it is ignored with the reason, and nothing is called: no policy read, no audit row
    assert result["status"] == "ignored"
    assert f"names a stream of {length} characters; Kinesis stream names have 1 to 128" in result["detail"]
    assert api_calls.calls == []
    assert all_audit_rows(aws) == []


@pytest.mark.parametrize("what", ["dead-letter-queue", "errors", "duration", "failed-outcomes"])
@pytest.mark.usefixtures("saturated")
def test_the_remediators_own_alarms_are_never_acted_on(aws, invoke, api_calls, what):
    # Given one of the remediator's own alarms (stacks/constructs/self_monitoring.py names them
    # <stack>-health/<what>), delivered to the handler although the rule would not send it
    event = alarm_event(f"KinesisRemediator-health/{what}", stream=None)

    # When it reaches the handler
    result = invoke(event)

    # Then it is not ours to act on: ignored before any AWS call
    assert result["status"] == "ignored"
    assert f"does not start with '{PREFIX}'" in result["detail"]
    assert api_calls.calls == []
    assert all_audit_rows(aws) == []
