"""The clients layer against moto: what each adapter reads and writes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from remediator.clients.audit import DynamoAuditLog
from remediator.clients.kinesis import KinesisStreams
from remediator.clients.metrics import CloudWatchMetrics
from remediator.clients.notifier import SnsNotifier
from remediator.clients.services import AwsServices
from remediator.core.evidence import StreamMode, StreamState, StreamStatus, write_load_queries
from remediator.core.history import PastAction
from remediator.core.metrics import MetricQuery
from remediator.core.outcome import AuditEntry, OutcomeStatus
from remediator.core.plan import PlannedStep
from remediator.core.ports import DeclaredOnly, UndeclaredCall
from remediator.core.registry import REGISTRY
from remediator.core.symptoms.iterator_age import ITERATOR_AGE

from tests import fakes
from tests.integration.support import ARN, STREAM, only

INCOMING = write_load_queries(STREAM)
AGE = MetricQuery("iterator_age_ms", ITERATOR_AGE.on(StreamName=STREAM))


def symptom_queries(symptom: str) -> tuple[MetricQuery, ...]:
    return REGISTRY.symptoms[symptom].evidence_queries(fakes.policy(STREAM))


def test_applied_actions_returns_only_applied_rows_since_the_given_time(aws):
    # Given audit rows of every outcome, before and after a cut-off, for two streams
    log = DynamoAuditLog(aws.client("dynamodb"), aws.audit_table)
    now = datetime.now(UTC).replace(microsecond=0)
    since = now - timedelta(hours=24)
    aws.seed_audit(STREAM, now - timedelta(hours=25), "applied")
    aws.seed_audit(STREAM, now - timedelta(hours=20), "applied", parameters={"current_shards": 2, "target_shards": 4})
    aws.seed_audit(STREAM, now - timedelta(hours=10), "dry-run")
    aws.seed_audit(STREAM, now - timedelta(hours=9), "blocked")
    aws.seed_audit(STREAM, now - timedelta(hours=8), "failed")
    aws.seed_audit(STREAM, now - timedelta(hours=1), "applied", parameters={"current_shards": 4, "target_shards": 8})
    aws.seed_audit("payments", now - timedelta(hours=1), "applied")

    # When the applied actions since the cut-off are read
    actions = log.applied_actions(STREAM, since)

    # Then only the two applied rows of this stream after the cut-off come back, with their parameters
    assert sorted(actions, key=lambda a: a.at) == [
        PastAction(
            action="reshard",
            stream=STREAM,
            at=now - timedelta(hours=20),
            parameters={"current_shards": 2, "target_shards": 4},
        ),
        PastAction(
            action="reshard",
            stream=STREAM,
            at=now - timedelta(hours=1),
            parameters={"current_shards": 4, "target_shards": 8},
        ),
    ]


def test_applied_actions_of_a_stream_with_no_rows_is_empty(aws):
    log = DynamoAuditLog(aws.client("dynamodb"), aws.audit_table)
    assert log.applied_actions("nobody", datetime.now(UTC) - timedelta(hours=24)) == []


def test_record_writes_one_item_with_the_decision(aws):
    # Given the audit log
    log = DynamoAuditLog(aws.client("dynamodb"), aws.audit_table)
    at = datetime(2026, 11, 26, 3, 0, tzinfo=UTC)

    # When a decision without an action is recorded
    log.record(
        AuditEntry(
            at=at, stream=STREAM, alarm_name="a", symptom="write-throttling", outcome=OutcomeStatus.IGNORED, reason=""
        )
    )

    # Then one item holds it, with a 90-day expiry and a placeholder reason
    row = only(aws.audit_rows(STREAM))
    assert row["pk"] == "STREAM#orders"
    assert row["sk"].startswith("2026-11-26T03:00:00+00:00#")
    assert row["outcome"] == "ignored"
    assert row["reason"] == "-"
    assert row["expires_at"] == str(int((at + timedelta(days=90)).timestamp()))
    assert "action" not in row
    assert "mode" not in row
    assert "parameters" not in row
    assert "plan" not in row


def test_metrics_read_returns_per_minute_series_oldest_first(aws):
    # Given ten minutes of rising IncomingBytes and falling IncomingRecords
    now = aws.put_series(STREAM, "IncomingBytes", [float(v) for v in range(1, 11)])
    aws.put_series(STREAM, "IncomingRecords", [float(v) for v in range(10, 0, -1)])
    reader = CloudWatchMetrics(aws.client("cloudwatch"))

    # When the evidence window of the write-throttling symptom is read (its declared queries)
    series = reader.read(symptom_queries("write-throttling"), end=now, minutes=15)

    # Then each query's values come oldest first, one per minute; metrics never pushed come back empty,
    # and nothing the symptom did not declare is read
    assert series == {
        "incoming_bytes": (1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0),
        "incoming_records": (10.0, 9.0, 8.0, 7.0, 6.0, 5.0, 4.0, 3.0, 2.0, 1.0),
        "write_throttled": (),
    }


def test_metrics_read_sums_within_a_minute_and_takes_the_maximum_age(aws):
    # Given two IncomingBytes datapoints and two iterator ages in each of three minutes
    now = aws.put_series(STREAM, "IncomingBytes", [100.0, 200.0, 300.0])
    aws.put_series(STREAM, "IncomingBytes", [1.0, 2.0, 3.0])
    aws.put_series(STREAM, "GetRecords.IteratorAgeMilliseconds", [5_000.0, 1_000.0, 9_000.0])
    aws.put_series(STREAM, "GetRecords.IteratorAgeMilliseconds", [7_000.0, 500.0, 8_000.0])
    reader = CloudWatchMetrics(aws.client("cloudwatch"))

    # When the iterator-age symptom's queries are read, each with its statistic
    series = reader.read(symptom_queries("iterator-age"), end=now, minutes=15)

    # Then bytes are summed per minute and the age is the per-minute maximum
    assert series["incoming_bytes"] == (101.0, 202.0, 303.0)
    assert series["iterator_age_ms"] == (7_000.0, 1_000.0, 9_000.0)


def test_metrics_read_keeps_to_the_window_and_the_queried_dimensions(aws):
    # Given 20 minutes of data for our stream, and data for another stream
    now = aws.put_series(STREAM, "IncomingBytes", [float(v) for v in range(1, 21)])
    aws.put_series("payments", "IncomingBytes", [999.0] * 20)
    reader = CloudWatchMetrics(aws.client("cloudwatch"))

    # When a 5-minute window of our stream's queries is read
    series = reader.read((*INCOMING, AGE), end=now, minutes=5)

    # Then only our stream's last 5 minutes come back (the StreamName dimension is in the query)
    assert series == {"incoming_bytes": (16.0, 17.0, 18.0, 19.0, 20.0), "incoming_records": (), "iterator_age_ms": ()}


def test_describe_maps_a_provisioned_stream(aws):
    # Given a provisioned 3-shard stream with 48 h retention
    aws.create_stream(STREAM, 3)
    aws.client("kinesis").increase_stream_retention_period(StreamName=STREAM, RetentionPeriodHours=48)

    # When it is described
    state = KinesisStreams(aws.client("kinesis")).describe(STREAM)

    # Then every field is mapped
    assert state == StreamState(
        name=STREAM,
        arn=ARN,
        status=StreamStatus.ACTIVE,
        mode=StreamMode.PROVISIONED,
        open_shards=3,
        retention_hours=48,
    )


def test_describe_reads_the_enabled_shard_level_metrics(aws):
    # Given a stream with two shard-level metrics enabled
    aws.create_stream(STREAM, 2)
    aws.client("kinesis").enable_enhanced_monitoring(
        StreamName=STREAM, ShardLevelMetrics=["WriteProvisionedThroughputExceeded", "IncomingBytes"]
    )
    # When it is described
    state = KinesisStreams(aws.client("kinesis")).describe(STREAM)
    # Then they are carried (sorted); a stream without them carries none
    assert state.shard_level_metrics == ("IncomingBytes", "WriteProvisionedThroughputExceeded")
    aws.create_stream("other", 1)
    assert KinesisStreams(aws.client("kinesis")).describe("other").shard_level_metrics == ()


def test_describe_maps_an_on_demand_stream(aws):
    aws.create_stream(STREAM, 0, on_demand=True)
    state = KinesisStreams(aws.client("kinesis")).describe(STREAM)
    assert (state.mode, state.open_shards, state.retention_hours) == (StreamMode.ON_DEMAND, 4, 24)


def test_write_port_calls_the_operation_by_name_and_drops_the_metadata(aws):
    # Given a 2-shard stream and the write ports over boto3
    aws.create_stream(STREAM, 2)
    kinesis = AwsServices(aws.client).service("kinesis")

    # When UpdateShardCount is called by its API name, by ARN
    response = kinesis.call("UpdateShardCount", StreamARN=ARN, TargetShardCount=4, ScalingType="UNIFORM_SCALING")

    # Then AWS's answer comes back without the HTTP metadata, and the stream (in moto, at once) has 4 shards
    assert response["CurrentShardCount"] == 2
    assert response["TargetShardCount"] == 4
    assert "ResponseMetadata" not in response
    state = KinesisStreams(aws.client("kinesis")).describe(STREAM)
    assert (state.open_shards, state.status) == (4, StreamStatus.ACTIVE)


def test_write_port_refuses_an_operation_the_service_does_not_have(aws, api_calls):
    # Given the Kinesis write port
    kinesis = AwsServices(aws.client).service("kinesis")

    # When an operation Kinesis does not have is asked for
    with api_calls.recording(), pytest.raises(ValueError, match="kinesis has no operation ReshardEverything"):
        kinesis.call("ReshardEverything", StreamARN=ARN)

    # Then nothing reaches AWS
    assert api_calls.calls == []


def reshard_step(target: int) -> PlannedStep:
    return PlannedStep(
        action="reshard",
        stream=STREAM,
        stream_arn=ARN,
        parameters={"current_shards": 2, "desired_shards": target, "target_shards": target},
        reason="test",
        summary=f"reshard 2 -> {target} shards",
        cli_command="-",
    )


def test_reshard_applies_through_its_declared_write_port_and_reports_the_accepted_counts(aws, api_calls):
    # Given a 2-shard stream, and the reshard action with the write ports limited to its grants
    aws.create_stream(STREAM, 2)
    reshard = REGISTRY.actions["reshard"]
    ports = DeclaredOnly(AwsServices(aws.client), reshard.iam_actions, reshard.id)

    # When it is applied
    with api_calls.recording():
        response = reshard.apply(reshard_step(4), ports)

    # Then one UpdateShardCount by ARN with uniform scaling was made, and its counts are reported
    assert api_calls.params("kinesis", "UpdateShardCount") == [
        {"StreamARN": ARN, "TargetShardCount": 4, "ScalingType": "UNIFORM_SCALING"}
    ]
    assert api_calls.operations() == ["UpdateShardCount"]
    assert response == {"current_shards": 2, "target_shards": 4}
    assert aws.shard_count(STREAM) == 4


def test_declared_ports_refuse_an_undeclared_call_before_it_reaches_aws(aws, api_calls):
    # Given a stream and write ports that allow only kinesis:UpdateShardCount
    aws.create_stream(STREAM, 2)
    ports = DeclaredOnly(AwsServices(aws.client), frozenset({"kinesis:UpdateShardCount"}), "reshard")

    # When another Kinesis write is attempted through them
    with api_calls.recording(), pytest.raises(UndeclaredCall, match="kinesis:DeleteStream"):
        ports.service("kinesis").call("DeleteStream", StreamName=STREAM)

    # Then AWS never saw it, and the stream is still there
    assert api_calls.calls == []
    assert aws.shard_count(STREAM) == 2


def test_notifier_publishes_subject_body_stream_and_recipients(aws):
    # Given the notifier on the topic
    notifier = SnsNotifier(aws.client("sns"), aws.topic_arn)

    # When a message is sent
    message_id = notifier.send(STREAM, "[DRY-RUN] orders: test", "line 1\nline 2", ["oncall@example.com"])

    # Then it reaches the mailbox with its subject, body, stream and recipients
    email = only(aws.emails())
    assert email["MessageId"] == message_id
    assert email["Subject"] == "[DRY-RUN] orders: test"
    assert email["Message"] == "line 1\nline 2"
    assert email["MessageAttributes"] == {
        "stream": {"Type": "String", "Value": STREAM},
        "recipients": {"Type": "String.Array", "Value": '["oncall@example.com"]'},
    }
