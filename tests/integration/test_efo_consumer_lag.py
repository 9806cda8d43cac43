"""efo-consumer-lag through the handler, against moto: the per-consumer alarms map back to the stream, the
evidence is read on StreamName + ConsumerName, and the diagnosis reshards only saturated shards."""

from __future__ import annotations

from tests.fakes import alarm_event
from tests.integration.efo_support import efo_policy, put_metric
from tests.integration.support import SATURATED, STREAM, alarm, only

LAG_ALARM = f"{alarm(STREAM, 'efo-consumer-lag')}/lag-analytics"
RATE_ALARM = f"{alarm(STREAM, 'efo-consumer-lag')}/rate-exceeded-analytics"
MILLIS_BEHIND = "SubscribeToShardEvent.MillisBehindLatest"
RATE_EXCEEDED = "SubscribeToShard.RateExceeded"


def lagging(aws, mode: str, *, lag_ms: float = 300_000, refused: float = 0, traffic: dict | None = None) -> None:
    aws.create_stream(STREAM, 2)
    aws.put_policy(efo_policy(mode, [{"efo": "analytics"}, {"efo": "search"}]))
    aws.push_traffic(STREAM, **(traffic or {"bytes_per_second": 200_000, "records_per_second": 100}))
    put_metric(aws, MILLIS_BEHIND, lag_ms, StreamName=STREAM, ConsumerName="analytics")
    put_metric(aws, MILLIS_BEHIND, 1_000, StreamName=STREAM, ConsumerName="search")
    if refused:
        put_metric(aws, RATE_EXCEEDED, refused, StreamName=STREAM, ConsumerName="analytics")


def test_a_lagging_consumer_on_idle_shards_gets_advice(aws, invoke, api_calls):
    # Given 'analytics' 5 minutes behind while writes use 10 % of the shards, in enforce
    lagging(aws, "enforce")

    # When its lag alarm fires
    result = invoke(alarm_event(LAG_ALARM, metric=MILLIS_BEHIND))

    # Then nothing changes: each EFO consumer has its own throughput, so its code is slow
    assert (result["status"], result["symptom"]) == ("no-action", "efo-consumer-lag")
    assert result["plan"]["diagnosis"]["cause"] == "slow-consumer"
    assert "(analytics 300 s)" in result["detail"]
    assert api_calls.kinesis_mutations() == []
    # And the evidence was read per consumer, on StreamName and ConsumerName
    queries = {q["Id"]: q for q in only(api_calls.params("cloudwatch", "GetMetricData"))["MetricDataQueries"]}
    assert queries["efo_lag_0"]["MetricStat"]["Metric"]["Dimensions"] == [
        {"Name": "ConsumerName", "Value": "analytics"},
        {"Name": "StreamName", "Value": STREAM},
    ]
    figures = {f["name"]: f["value"] for f in result["plan"]["diagnosis"]["figures"]}
    assert (figures["max lag of analytics"], figures["max lag of search"]) == (300, 1)
    assert "Speed up the consumer" in only(aws.emails())["Message"]


def test_a_lagging_consumer_on_saturated_shards_is_resharded(aws, invoke, api_calls):
    # Given 'analytics' behind while writes use 95 % of the shards, in enforce
    lagging(aws, "enforce", traffic=SATURATED)

    # When its lag alarm fires
    result = invoke(alarm_event(LAG_ALARM, metric=MILLIS_BEHIND))

    # Then the stream is resharded 2 -> 4
    assert result["status"] == "applied", result
    assert result["plan"]["diagnosis"]["cause"] == "shards-saturated"
    assert aws.shard_count(STREAM) == 4


def test_refused_subscriptions_get_subscription_advice(aws, invoke, api_calls):
    # Given subscriptions of 'analytics' refused, and no lag
    lagging(aws, "enforce", lag_ms=1_000, refused=2)

    # When its rate-exceeded alarm fires
    result = invoke(alarm_event(RATE_ALARM, metric=RATE_EXCEEDED))

    # Then the advice is about subscription handling, and nothing changes
    assert result["status"] == "no-action"
    assert result["plan"]["diagnosis"]["cause"] == "efo-subscription-conflict"
    assert [a["title"] for a in result["plan"]["advice"]] == ["Fix subscription handling"]
    assert api_calls.kinesis_mutations() == []


def test_a_consumer_near_the_retention_gets_raise_retention_as_well_as_the_reshard(aws, invoke, api_calls):
    # Given 'analytics' 13 h behind on a 24 h stream (54 % of the retention) while writes use 95 % of the shards
    lagging(aws, "enforce", lag_ms=13 * 3_600_000, traffic=SATURATED)

    # When its lag alarm fires
    result = invoke(alarm_event(LAG_ALARM, metric=MILLIS_BEHIND))

    # Then the retention is raised 24 -> 48 h first, and the stream resharded 2 -> 4
    assert [(s["action"], s["outcome"]) for s in result["steps"]] == [
        ("raise-retention", "applied"),
        ("reshard", "applied"),
    ]
    assert api_calls.kinesis_mutations() == ["IncreaseStreamRetentionPeriod", "UpdateShardCount"]
    summary = aws.client("kinesis").describe_stream_summary(StreamName=STREAM)["StreamDescriptionSummary"]
    assert summary["RetentionPeriodHours"] == 48
    assert aws.shard_count(STREAM) == 4
    # And the reason names the detector's setting and the consumer
    retention = result["plan"]["actions"][0]
    assert "detectors.efo_consumer_lag.retention_share is 50%); furthest behind: analytics" in retention["reason"]
