"""Producer symptoms through the real handler against moto: put-errors advice (the e-mail), and write-throttling
telling a hot shard from short bursts (with shard-level metrics enabled in moto), or saying it cannot tell."""

from __future__ import annotations

from tests.fakes import alarm_event
from tests.integration.support import ARN, HOT_KEY, STREAM, alarm, only, plan_of, policy

PUT_ALARM = alarm(STREAM, "put-errors") + "/failed-records"
WRITE_ALARM = alarm(STREAM, "write-throttling")
METRICS = "IncomingBytes IncomingRecords WriteProvisionedThroughputExceeded"
ENABLE = f"aws kinesis enable-enhanced-monitoring --stream-arn {ARN} --shard-level-metrics {METRICS}"


def put_metrics(aws, *, total: float, failed: float, throttled: float, minutes: int = 10) -> None:
    for name, value in (
        ("PutRecords.TotalRecords", total),
        ("PutRecords.FailedRecords", failed),
        ("PutRecords.ThrottledRecords", throttled),
    ):
        aws.put_series(STREAM, name, [value] * minutes)


def test_put_errors_from_internal_failures_get_an_advice_email(aws, invoke, api_calls):
    # Given a stream in enforce mode at 10 % of its capacity whose producers see 3 % of PutRecords records rejected,
    # of which a tenth throttled
    aws.create_stream(STREAM, 2)
    aws.put_policy(policy(mode="enforce"))
    aws.push_traffic(STREAM, bytes_per_second=200_000, records_per_second=100, throttled=3)
    put_metrics(aws, total=1000, failed=27, throttled=3)

    # When its put-errors failed-records alarm fires
    result = invoke(alarm_event(PUT_ALARM, metric="PutRecords.FailedRecords"))

    # Then nothing is changed: the failures are not throttles
    assert result["status"] == "no-action"
    assert result["symptom"] == "put-errors"
    assert result["plan"]["diagnosis"]["cause"] == "put-internal-failures"
    assert result["detail"] == (
        "PutRecords rejected up to 2.7 % of the records in a minute, and not because of throttling: the failures "
        "are internal errors or rejected requests. No automatic change: see the advice."
    )
    assert api_calls.kinesis_mutations() == []
    # And the symptom read exactly its declared series
    queries = only(api_calls.params("cloudwatch", "GetMetricData"))["MetricDataQueries"]
    assert [q["Id"] for q in queries] == [
        "incoming_bytes",
        "incoming_records",
        "put_total",
        "put_failed",
        "put_throttled",
        "put_record_success",
        "write_throttled",
    ]
    # And the e-mail carries the figures (failure rate, throttled share, records) and the advice
    email = only(aws.emails())
    assert email["Subject"] == "[NO ACTION] orders: put-internal-failures (producers' writes failing)"
    message = email["Message"]
    lines = message.splitlines()
    assert "  No automatic action: see the diagnosis and the advice." in lines
    figure_lines = {line.split("  ")[1].strip(): line.rsplit("  ", 1)[1].strip() for line in lines if "  " in line[2:]}
    assert figure_lines["failure rate"] == "2.70 %"
    assert figure_lines["throttled share of rejected records"] == "10 %"
    assert figure_lines["PutRecords records"] == "10,000 records"
    assert "  - Retry failed records with backoff: A PutRecords call succeeds even when some of its records fail" in (
        message
    )
    assert "exponential backoff and jitter" in message
    assert "  - Batch with PutRecords or the KPL: " in message
    assert "  - Not throttling: 10% of the rejected PutRecords records were throttled" in message
    assert "KMS" in message
    # And the audit row says no action, e-mailed
    row = only(aws.audit_rows(STREAM))
    assert (row["outcome"], row["notified"], row["symptom"]) == ("no-action", True, "put-errors")
    assert plan_of(row)["diagnosis"]["cause"] == "put-internal-failures"


def test_put_errors_that_are_throttles_on_saturated_shards_reshard(aws, invoke, api_calls):
    # Given 2 shards at 95 % of capacity, 2 % of the PutRecords records failed and four times as many throttled
    aws.create_stream(STREAM, 2)
    aws.put_policy(policy(mode="enforce"))
    aws.push_traffic(STREAM, bytes_per_second=1_900_000, records_per_second=500, throttled=2_400)
    put_metrics(aws, total=30_000, failed=600, throttled=2_400)

    # When its put-errors alarm fires
    result = invoke(alarm_event(PUT_ALARM, metric="PutRecords.FailedRecords"))

    # Then it is the saturated-shards reshard, 2 -> 4
    assert result["plan"]["diagnosis"]["cause"] == "shards-saturated"
    assert [p["TargetShardCount"] for p in api_calls.params("kinesis", "UpdateShardCount")] == [4]
    assert aws.shard_count(STREAM) == 4


def test_write_throttling_without_shard_metrics_cannot_tell_and_says_how_to_find_out(aws, invoke, api_calls):
    # Given a 2-shard stream throttled at only 10 % of its capacity, without shard-level metrics
    aws.create_stream(STREAM, 2)
    aws.put_policy(policy(mode="enforce"))
    aws.push_traffic(STREAM, **HOT_KEY)

    # When its write-throttling alarm fires
    result = invoke(alarm_event(WRITE_ALARM))

    # Then the plan says it cannot tell a hot shard from bursts, and changes nothing
    assert result["status"] == "no-action"
    assert result["plan"]["diagnosis"]["cause"] == "hot-shard-or-bursts"
    assert "the stream-level metrics cannot tell which" in result["detail"]
    assert api_calls.kinesis_mutations() == []
    # And no shard was listed: the stream has no shard-level metrics to read
    assert "ListShards" not in api_calls.operations("kinesis")
    # And the e-mail gives the exact command and what it costs for 2 shards (3 metrics x 2 x $0.30)
    email = only(aws.emails())
    assert email["Subject"] == "[NO ACTION] orders: hot-shard-or-bursts (producers throttled)"
    lines = email["Message"].splitlines()
    assert f"      {ENABLE}" in lines
    assert any("about $1.80 a month for this stream's 2 shards" in line for line in lines)
    assert any(line.startswith("  shard-level metrics cost") and line.endswith("1.80 USD/month") for line in lines)


def test_write_throttling_with_shard_metrics_names_the_hot_shard(aws, invoke, api_calls):
    # Given the same throttled stream with shard-level metrics on, where shard 1 takes nearly all the throttles
    aws.create_stream(STREAM, 2)
    aws.client("kinesis").enable_enhanced_monitoring(
        StreamName=STREAM, ShardLevelMetrics=["IncomingBytes", "WriteProvisionedThroughputExceeded"]
    )
    aws.put_policy(policy(mode="enforce"))
    aws.push_traffic(STREAM, **HOT_KEY)
    for shard, throttled in (("shardId-000000000000", 1), ("shardId-000000000001", 39)):
        dimensions = {"StreamName": STREAM, "ShardId": shard}
        aws.put_metric("AWS/Kinesis", "WriteProvisionedThroughputExceeded", dimensions, throttled)
        aws.put_metric("AWS/Kinesis", "IncomingBytes", dimensions, 6_000_000)

    # When its write-throttling alarm fires
    result = invoke(alarm_event(WRITE_ALARM))

    # Then the shard-level metrics were read (within the IAM the stack grants: the invoke fixture checks it)
    assert "ListShards" in api_calls.operations("kinesis")
    assert len(api_calls.params("cloudwatch", "GetMetricData")) == 2
    # And the hot shard is named, with advice and no change
    assert result["status"] == "no-action"
    assert result["plan"]["diagnosis"]["cause"] == "hot-partition-key"
    assert "shardId-000000000001 took 98% of the throttled records (an even spread is 50%)" in result["detail"]
    assert api_calls.kinesis_mutations() == []
    assert only(aws.emails())["Subject"] == "[NO ACTION] orders: hot-partition-key (producers throttled)"


def test_write_throttling_with_even_shard_metrics_is_bursts(aws, invoke):
    # Given shard-level metrics that show the throttles and the bytes spread over both shards
    aws.create_stream(STREAM, 2)
    aws.client("kinesis").enable_enhanced_monitoring(StreamName=STREAM, ShardLevelMetrics=["ALL"])
    aws.put_policy(policy(mode="enforce"))
    aws.push_traffic(STREAM, **HOT_KEY)
    for shard in ("shardId-000000000000", "shardId-000000000001"):
        dimensions = {"StreamName": STREAM, "ShardId": shard}
        aws.put_metric("AWS/Kinesis", "WriteProvisionedThroughputExceeded", dimensions, 20)
        aws.put_metric("AWS/Kinesis", "IncomingBytes", dimensions, 6_000_000)

    # When its write-throttling alarm fires
    result = invoke(alarm_event(WRITE_ALARM))

    # Then the throttles are bursts shorter than a minute, and nothing is changed
    assert result["plan"]["diagnosis"]["cause"] == "sub-minute-bursts"
    assert [a["title"] for a in result["plan"]["advice"]] == [
        "Smooth the bursts",
        "If the bursts are the normal shape of the traffic",
    ]
