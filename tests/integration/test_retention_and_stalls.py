"""raise-retention in both modes against moto, iterator-age choosing a tune for a lagging Lambda consumer, and
consumer-stalled through the handler.

moto keeps IncreaseStreamRetentionPeriod's range and its refusal of a decrease, so the tests that prove our own
checks refuse them also show that no such call reached moto.
"""

from __future__ import annotations

import io
import json
import zipfile
from datetime import UTC, datetime, timedelta

import pytest
from remediator.core.actions import raise_retention
from remediator.core.actions.raise_retention import RetentionTarget

from tests.fakes import alarm_event
from tests.integration.contract import StackResources, mutations
from tests.integration.support import AGE_ALARM, ARN, STREAM, alarm, only, parameters_of, plan_of, policy

HOUR_MS = 3_600_000
ITERATOR_METRIC = "GetRecords.IteratorAgeMilliseconds"
STALL_ALARM = alarm(STREAM, "consumer-stalled")
# Writes at 10 % of 2 shards; the oldest unread record at 60 % of 24 h.
IDLE = {"bytes_per_second": 200_000, "records_per_second": 100}
SIXTY_PERCENT = 0.6 * 24 * HOUR_MS
RAISE_COMMAND = f"aws kinesis increase-stream-retention-period --stream-arn {ARN} --retention-period-hours 48"


def retention_hours(aws) -> int:
    summary = aws.client("kinesis").describe_stream_summary(StreamName=STREAM)["StreamDescriptionSummary"]
    return int(summary["RetentionPeriodHours"])


def lagging_stream(aws, mode: str, retention: int = 24, **actions) -> None:
    """A 2-shard stream at `retention` hours whose consumers are 60 % of 24 h behind, writes at 10 %."""
    aws.create_stream(STREAM, 2)
    if retention != 24:
        aws.client("kinesis").increase_stream_retention_period(StreamName=STREAM, RetentionPeriodHours=retention)
    raw = policy(mode=mode)
    raw["actions"] |= actions
    aws.put_policy(raw)
    aws.push_traffic(STREAM, **IDLE, iterator_age_ms=SIXTY_PERCENT)


# --- raise-retention, enforce and dry-run ----------------------------------------------------------------------


def test_enforce_raises_the_retention_of_a_lagging_stream(aws, invoke, api_calls):
    # Given consumers 60 % of the way to expiry on a 24 h stream under an enforce policy
    lagging_stream(aws, "enforce")

    # When its iterator-age alarm fires
    result = invoke(alarm_event(AGE_ALARM, metric=ITERATOR_METRIC))

    # Then IncreaseStreamRetentionPeriod is called once, by ARN, for 48 h, and moto holds 48 h
    assert api_calls.params("kinesis", "IncreaseStreamRetentionPeriod") == [
        {"StreamARN": ARN, "RetentionPeriodHours": 48}
    ]
    assert api_calls.kinesis_mutations() == ["IncreaseStreamRetentionPeriod"]
    assert retention_hours(aws) == 48
    step = only(result["steps"])
    assert (step["action"], step["outcome"]) == ("raise-retention", "applied")
    # And the audit row keeps the hours and the monthly cost before and after
    row = only(aws.audit_rows(STREAM))
    assert row["outcome"] == "applied"
    assert parameters_of(row) == {
        "oldest_record_age_ms": int(SIXTY_PERCENT),
        "current_hours": 24,
        "target_hours": 48,
        "monthly_cost_usd_before": 0.0,
        "monthly_cost_usd_after": 29.2,
    }
    # And the e-mail reports the change, its cost and its command
    email = only(aws.emails())
    assert email["Subject"] == "[APPLIED] orders: raise retention 24 -> 48 h (+$29.20/month) (consumers falling behind)"
    lines = email["Message"].splitlines()
    assert "     Changes: retention hours 24 -> 48" in lines
    assert f"     Command: {RAISE_COMMAND}" in lines


def test_dry_run_makes_no_mutating_call_and_shows_the_cost(aws, handler, invoke, api_calls):
    # Given the same stream in dry-run
    lagging_stream(aws, "dry-run")

    # When its iterator-age alarm fires
    result = invoke(alarm_event(AGE_ALARM, metric=ITERATOR_METRIC))

    # Then the raise is rehearsed: no call changed anything but the remediator's own records
    assert only(result["steps"])["outcome"] == "dry-run"
    assert mutations(api_calls.calls, StackResources.of(handler.settings)) == []
    assert retention_hours(aws) == 24
    # And plan --json (the audited plan) carries the step, its cost and its command
    (entry,) = plan_of(only(aws.audit_rows(STREAM)))["actions"]
    assert entry["action"] == "raise-retention"
    assert entry["changes"] == [{"setting": "retention hours", "before": 24, "after": 48}]
    assert (entry["parameters"]["monthly_cost_usd_before"], entry["parameters"]["monthly_cost_usd_after"]) == (0, 29.2)
    assert entry["cli_command"] == RAISE_COMMAND
    assert "costs about $0.00 -> $29.20 a month on 2 shards" in entry["reason"]


def test_a_second_alarm_within_the_cooldown_is_blocked(aws, invoke, api_calls):
    # Given a raise already applied for this stream (its audit row holds the cost as a fraction)
    lagging_stream(aws, "enforce")
    invoke(alarm_event(AGE_ALARM, metric=ITERATOR_METRIC))

    # When the consumers fall further behind, to 30 h (62 % of the new 48 h), and the alarm fires again (a new
    # state change) within the cooldown
    aws.push_traffic(STREAM, **IDLE, iterator_age_ms=30 * HOUR_MS)
    result = invoke(alarm_event(AGE_ALARM, metric=ITERATOR_METRIC, timestamp="2026-11-26T03:05:00.000+0000"))

    # Then the history is read back, and the cooldown blocks a second raise
    assert result["status"] == "blocked"
    assert "cooldown: last raise-retention at" in only(result["steps"])["detail"]
    assert api_calls.kinesis_mutations() == ["IncreaseStreamRetentionPeriod"]
    assert retention_hours(aws) == 48


def test_a_decrease_is_refused_by_our_checks(aws, invoke, api_calls):
    # Given a stream already at 200 h, above its policy's max_hours of 168: the capped target is a decrease
    lagging_stream(aws, "enforce", retention=200, raise_retention={"max_hours": 168})
    aws.push_traffic(STREAM, **IDLE, iterator_age_ms=0.6 * 200 * HOUR_MS)

    # When its iterator-age alarm fires
    result = invoke(alarm_event(AGE_ALARM, metric=ITERATOR_METRIC))

    # Then the step is blocked before AWS, saying why, and the retention is untouched
    step = only(result["steps"])
    assert (step["action"], step["outcome"]) == ("raise-retention", "blocked")
    assert step["detail"].startswith("increase-only: 200 -> 168 h; the retention is only ever raised")
    assert api_calls.kinesis_mutations() == []
    assert retention_hours(aws) == 200


def test_above_aws_maximum_is_refused_by_our_checks(aws, invoke, api_calls, monkeypatch):
    # Given a stream at 5,000 h, and a shape that would ask for 9,000 h (the policy cannot allow it, so the
    # target is forced here: this shows the check alone stops it)
    lagging_stream(aws, "enforce", retention=5_000, raise_retention={"max_hours": 8_760})
    aws.push_traffic(STREAM, **IDLE, iterator_age_ms=0.6 * 5_000 * HOUR_MS)
    monkeypatch.setattr(raise_retention, "retention_target", lambda *args: RetentionTarget(9_000))

    # When its iterator-age alarm fires
    result = invoke(alarm_event(AGE_ALARM, metric=ITERATOR_METRIC))

    # Then AWS's range and the policy's maximum both refuse it, and no call reaches moto
    step = only(result["steps"])
    assert step["outcome"] == "blocked"
    assert step["detail"] == (
        "aws-retention-range: 9,000 h; AWS allows 24 to 8,760 h; policy-max-hours: 9,000 h is above max_hours 8,760"
    )
    assert api_calls.kinesis_mutations() == []
    assert retention_hours(aws) == 5_000


# --- iterator-age: a Lambda consumer lagging on idle shards ------------------------------------------------------


def consumer_function(aws, function: str, *, enabled: bool = True) -> str:
    """A Lambda function with an event-source mapping on the stream (moto creates both without running code)."""
    role = aws.client("iam").create_role(
        RoleName=f"{function}-role",
        AssumeRolePolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}
                ],
            }
        ),
    )["Role"]["Arn"]
    code = io.BytesIO()
    with zipfile.ZipFile(code, "w") as archive:
        archive.writestr("index.py", "def handler(event, context):\n    return None\n")
    client = aws.client("lambda")
    client.create_function(
        FunctionName=function,
        Runtime="python3.12",
        Role=role,
        Handler="index.handler",
        Code={"ZipFile": code.getvalue()},
        Timeout=60,
    )
    mapping = client.create_event_source_mapping(
        FunctionName=function, EventSourceArn=ARN, StartingPosition="LATEST", BatchSize=100, Enabled=enabled
    )
    return str(mapping["UUID"])


def test_lagging_lambda_consumer_on_idle_shards_is_tuned_not_resharded(aws, invoke, api_calls):
    # Given a Lambda consumer 5 minutes behind on shards at 10 %, in dry-run
    aws.create_stream(STREAM, 2)
    uuid = consumer_function(aws, "orders-processor")
    aws.put_policy(policy(mode="dry-run") | {"consumers": [{"function": "orders-processor"}]})
    aws.push_traffic(STREAM, **IDLE, iterator_age_ms=300_000)

    # When its iterator-age alarm fires
    result = invoke(alarm_event(AGE_ALARM, metric=ITERATOR_METRIC))

    # Then the plan tunes that function's mapping, and proposes no reshard
    step = only(result["steps"])
    assert (step["action"], step["outcome"]) == ("tune-event-source", "dry-run")
    (entry,) = result["plan"]["actions"]
    assert (entry["parameters"]["function"], entry["parameters"]["goal"]) == ("orders-processor", "throughput")
    assert entry["parameters"]["uuid"] == uuid
    assert result["plan"]["diagnosis"]["cause"] == "slow-consumer"
    # And the mapping facts were read through the symptom's declared reads (the invoke fixture checks the IAM)
    assert api_calls.operations("lambda") == [
        "ListEventSourceMappings",
        "GetFunctionConfiguration",
        "GetFunctionConcurrency",
    ]
    assert api_calls.kinesis_mutations() == []


# --- consumer-stalled through the handler ------------------------------------------------------------------------


def put_minutes(aws, metric: str, values_by_minutes_ago: dict[int, float]) -> None:
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    data = [
        {
            "MetricName": metric,
            "Dimensions": [{"Name": "StreamName", "Value": STREAM}],
            "Timestamp": now - timedelta(minutes=ago),
            "Value": value,
        }
        for ago, value in values_by_minutes_ago.items()
    ]
    cloudwatch = aws.client("cloudwatch")
    for start in range(0, len(data), 20):
        cloudwatch.put_metric_data(Namespace="AWS/Kinesis", MetricData=data[start : start + 20])


def stalled_stream(aws, *, lag_ms: float) -> None:
    """Records every minute for 14 minutes; read in the first 9 of them, none in the last 5."""
    put_minutes(aws, "IncomingRecords", dict.fromkeys(range(1, 15), 600.0))
    put_minutes(aws, "IncomingBytes", dict.fromkeys(range(1, 15), 600_000.0))
    put_minutes(aws, "GetRecords.Records", dict.fromkeys(range(6, 15), 600.0))
    put_minutes(aws, ITERATOR_METRIC, dict.fromkeys(range(6, 15), lag_ms))


def test_a_stopped_consumer_is_diagnosed_with_its_mapping_state(aws, invoke, api_calls):
    # Given records arriving, none read for 5 minutes, and the Lambda consumer's mapping Disabled
    aws.create_stream(STREAM, 2)
    uuid = consumer_function(aws, "orders-processor", enabled=False)
    aws.put_policy(policy(mode="enforce") | {"consumers": [{"function": "orders-processor"}]})
    stalled_stream(aws, lag_ms=2_000)

    # When its consumer-stalled alarm fires
    result = invoke(alarm_event(STALL_ALARM, metric="IncomingRecords"))

    # Then there is nothing to change automatically: the advice names the mapping and how to enable it
    assert result["status"] == "no-action"
    assert result["symptom"] == "consumer-stalled"
    assert result["plan"]["diagnosis"]["cause"] == "consumers-stopped"
    assert result["detail"].startswith("8,400 records arrived in the last 15 minutes, but in 5 of those minutes no ")
    assert result["detail"].endswith("The facts show: Mapping of orders-processor is Disabled.")
    advice = {a["title"]: a["cli_command"] for a in result["plan"]["advice"]}
    assert advice == {
        "Mapping of orders-processor is Disabled": f"aws lambda update-event-source-mapping --uuid {uuid} --enabled",
        "Before records expire": RAISE_COMMAND,
    }
    assert api_calls.kinesis_mutations() == []
    # And the symptom read exactly the series it declared
    queries = only(api_calls.params("cloudwatch", "GetMetricData"))["MetricDataQueries"]
    assert [q["Id"] for q in queries] == ["incoming_bytes", "incoming_records", "polling_reads", "iterator_age_ms"]
    # And the advice is e-mailed and audited
    email = only(aws.emails())
    assert email["Subject"] == "[NO ACTION] orders: consumers-stopped (consumers stopped reading)"
    assert "  minutes with records and no reads  5 min" in email["Message"].splitlines()
    row = only(aws.audit_rows(STREAM))
    assert (row["outcome"], row["symptom"], row["notified"]) == ("no-action", "consumer-stalled", True)


def test_a_stall_that_threatens_data_raises_retention_in_enforce(aws, invoke, api_calls):
    # Given consumers that were already 12 h behind on 24 h retention when they stopped reading
    aws.create_stream(STREAM, 2)
    aws.put_policy(policy(mode="enforce"))
    stalled_stream(aws, lag_ms=12 * HOUR_MS)

    # When its consumer-stalled alarm fires
    result = invoke(alarm_event(STALL_ALARM, metric="IncomingRecords"))

    # Then the retention is raised 24 -> 48 h in moto
    step = only(result["steps"])
    assert (step["action"], step["outcome"]) == ("raise-retention", "applied")
    assert api_calls.kinesis_mutations() == ["IncreaseStreamRetentionPeriod"]
    assert retention_hours(aws) == 48
    assert [a["title"] for a in result["plan"]["advice"]] == ["List the stream's consumers"]


@pytest.mark.parametrize("mode", ["dry-run", "enforce"])
def test_a_consumer_reading_again_is_left_alone(aws, invoke, api_calls, mode):
    # Given records arriving and read in every minute (the alarm fired, the consumer has recovered since)
    aws.create_stream(STREAM, 2)
    aws.put_policy(policy(mode=mode))
    put_minutes(aws, "IncomingRecords", dict.fromkeys(range(1, 15), 600.0))
    put_minutes(aws, "GetRecords.Records", dict.fromkeys(range(1, 15), 600.0))

    # When its consumer-stalled alarm fires
    result = invoke(alarm_event(STALL_ALARM, metric="IncomingRecords"))

    # Then nothing is done
    assert result["status"] == "no-action"
    assert result["plan"]["diagnosis"]["cause"] == "not-reproduced"
    assert api_calls.kinesis_mutations() == []
