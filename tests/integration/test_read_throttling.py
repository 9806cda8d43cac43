"""read-throttling through the handler, against moto: who polls decides between enhanced fan-out, smaller batches,
a reshard and advice; the facts (mappings, registered consumers) are read through the declared read grants."""

from __future__ import annotations

from tests.fakes import alarm_event
from tests.integration.efo_support import READ_ALARM, READ_METRIC, efo_policy, lambda_consumer, read_throttled
from tests.integration.support import ARN, STREAM, only


def test_several_polling_consumers_are_proposed_enhanced_fan_out(aws, invoke, api_calls):
    # Given two Lambda consumers (mappings on the stream, in moto) and a KCL application, in dry-run
    aws.create_stream(STREAM, 2)
    lambda_consumer(aws, "orders-processor")
    lambda_consumer(aws, "orders-audit")
    aws.put_policy(
        efo_policy("dry-run", [{"function": "orders-processor"}, {"function": "orders-audit"}, {"kcl": "orders-kcl"}])
    )
    read_throttled(aws)

    # When the read-throttling alarm fires
    result = invoke(alarm_event(READ_ALARM, metric=READ_METRIC))

    # Then the diagnosis names the competing consumers and proposes enhanced fan-out
    assert result["plan"]["diagnosis"]["cause"] == "polling-consumers-compete"
    assert "3 polling consumers" in result["detail"]
    (step,) = result["plan"]["blocked"]
    assert step["action"] == "enhanced-fan-out"
    # And with no consumer opted in and none named, the step is shown but blocked, with how to opt in
    assert "work-to-do: no consumer to register and no Lambda consumer to move (see the reason)" in step["reasons"]
    titles = [a["title"] for a in result["plan"]["advice"]]
    assert titles[:2] == ["Opt Lambda consumers in to enhanced fan-out", "Switch KCL applications to enhanced fan-out"]
    # And the facts were read: each function's mappings, and the stream's registered consumers
    assert {p["FunctionName"] for p in api_calls.params("lambda", "ListEventSourceMappings")} == {
        "orders-processor",
        "orders-audit",
    }
    assert only(api_calls.params("kinesis", "ListStreamConsumers")) == {"StreamARN": ARN}
    assert api_calls.kinesis_mutations() == []


def test_one_lambda_consumer_gets_smaller_batches_and_backoff_advice(aws, invoke, api_calls):
    # Given one Lambda consumer, its mapping on the stream, throttled while reads are far from saturation
    aws.create_stream(STREAM, 2)
    lambda_consumer(aws, "orders-processor")
    aws.put_policy(efo_policy("dry-run", [{"function": "orders-processor"}]))
    read_throttled(aws, throttled=4)

    # When the read-throttling alarm fires
    result = invoke(alarm_event(READ_ALARM, metric=READ_METRIC))

    # Then the mapping is to get smaller batches, with backoff advice
    assert result["plan"]["diagnosis"]["cause"] == "single-consumer-throttled"
    (step,) = result["plan"]["actions"] + result["plan"]["blocked"]
    assert step["action"] == "tune-event-source"
    assert step["parameters"]["function"] == "orders-processor"
    assert [a["title"] for a in result["plan"]["advice"]] == ["Retry with backoff"]
    assert "Smaller batches and backoff keep it under the shard's limits." in result["detail"]


def test_one_kcl_application_gets_advice_only(aws, invoke, api_calls):
    # Given one KCL application in enforce, throttled while reads are far from saturation
    aws.create_stream(STREAM, 2)
    aws.put_policy(efo_policy("enforce", [{"kcl": "orders-kcl"}]))
    read_throttled(aws)

    # When the read-throttling alarm fires
    result = invoke(alarm_event(READ_ALARM, metric=READ_METRIC))

    # Then nothing changes, and the e-mail tells how to read less often and back off
    assert result["status"] == "no-action"
    assert api_calls.kinesis_mutations() == []
    email = only(aws.emails())
    assert email["Subject"] == "[NO ACTION] orders: single-consumer-throttled (consumers throttled)"
    assert (
        "  - Fewer GetRecords calls: In orders-kcl's KCL configuration, raise idleTimeBetweenReadsInMillis"
        in (email["Message"])
    )


def test_one_consumer_reading_saturated_shards_is_resharded(aws, invoke, api_calls):
    # Given one KCL application reading 3.6 MB/s from 2 shards (90 % of their 2 MB/s each), in enforce
    aws.create_stream(STREAM, 2)
    aws.put_policy(efo_policy("enforce", [{"kcl": "orders-kcl"}]))
    read_throttled(aws, read_bytes_per_second=3_600_000)

    # When the read-throttling alarm fires
    result = invoke(alarm_event(READ_ALARM, metric=READ_METRIC))

    # Then the stream is resharded to 3 (3.6 MB/s at 60 % of 2 MB/s per shard)
    assert result["status"] == "applied", result
    assert result["plan"]["diagnosis"]["cause"] == "shards-saturated"
    assert api_calls.kinesis_mutations() == ["UpdateShardCount"]
    assert aws.shard_count(STREAM) == 3
