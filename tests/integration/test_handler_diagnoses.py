"""Diagnoses that end without a reshard (hot shard or bursts, slow consumer, on-demand) and the iterator-age reshard."""

from __future__ import annotations

import pytest

from tests.fakes import alarm_event
from tests.integration.support import (
    AGE_ALARM,
    ARN,
    ESTIMATE,
    HOT_KEY,
    NEEDS_TEN,
    SATURATED,
    STREAM,
    WRITE_ALARM,
    only,
    parameters_of,
    plan_of,
    policy,
)

ITERATOR_METRIC = "GetRecords.IteratorAgeMilliseconds"
ENABLE_SHARD_METRICS = (
    f"aws kinesis enable-enhanced-monitoring --stream-arn {ARN} "
    "--shard-level-metrics IncomingBytes IncomingRecords WriteProvisionedThroughputExceeded"
)


def advice_titles(result):
    return [a["title"] for a in result["plan"]["advice"]]


def test_throttles_at_low_utilisation_get_advice_not_a_reshard(aws, invoke, api_calls):
    # Given a stream in enforce mode that is throttled at only 10 % of its capacity, without shard-level metrics
    aws.create_stream(STREAM, 2)
    aws.put_policy(policy(mode="enforce"))
    aws.push_traffic(STREAM, **HOT_KEY)

    # When its write-throttling alarm fires
    result = invoke(alarm_event(WRITE_ALARM))

    # Then nothing is resharded: neither a hot key nor a sub-minute burst is cured by more shards, and the
    # stream-level metrics cannot tell them apart
    assert result["status"] == "no-action"
    assert result["plan"]["diagnosis"]["cause"] == "hot-shard-or-bursts"
    assert result["detail"] == (
        "Writes were throttled although the stream as a whole peaked at only 10% of its capacity in any minute: "
        "either a hot partition key overloads one shard, or bursts shorter than a minute overload all of them, and "
        "the stream-level metrics cannot tell which. Shard-level metrics can: see the advice."
    )
    assert result["plan"]["actions"] == []
    assert api_calls.kinesis_mutations() == []
    assert aws.shard_count(STREAM) == 2
    # And the advice gives the exact command that finds out, key spreading, and batching
    assert advice_titles(result) == [
        "Find out: enable shard-level metrics",
        "Spread the partition keys",
        "Batch and back off",
    ]
    assert result["plan"]["advice"][0]["cli_command"] == ENABLE_SHARD_METRICS
    # And the e-mail carries it
    email = only(aws.emails())
    assert email["Subject"] == "[NO ACTION] orders: hot-shard-or-bursts (producers throttled)"
    lines = email["Message"].splitlines()
    assert "  No automatic action: see the diagnosis and the advice." in lines
    assert f"      {ENABLE_SHARD_METRICS}" in lines
    assert "  throttled writes           400 records" in lines
    # And the audit says no action, and why
    row = only(aws.audit_rows(STREAM))
    assert row["outcome"] == "no-action"
    assert row["mode"] == "enforce"
    assert row["reason"] == result["detail"]
    assert "action" not in row


def test_slow_consumer_gets_advice_not_a_reshard(aws, invoke, api_calls):
    # Given a stream in enforce mode whose consumer (a KCL application: nothing to tune) is 5 minutes behind while
    # writes use 10 % of capacity
    aws.create_stream(STREAM, 2)
    aws.put_policy(policy(mode="enforce") | {"consumers": [{"kcl": "orders-kcl"}]})
    aws.push_traffic(STREAM, bytes_per_second=200_000, records_per_second=100, iterator_age_ms=300_000)

    # When its iterator-age alarm fires
    result = invoke(alarm_event(AGE_ALARM, metric=ITERATOR_METRIC))

    # Then the consumer is blamed, not the shards
    assert result["status"] == "no-action"
    assert result["symptom"] == "iterator-age"
    assert result["plan"]["diagnosis"]["cause"] == "slow-consumer"
    assert result["detail"] == (
        "Consumers fall behind (max iterator age 300 s) although writes peaked at only 10% of capacity: "
        "resharding would not help."
    )
    assert advice_titles(result) == ["Speed up the consumer"]
    assert "orders-kcl" in result["plan"]["advice"][0]["detail"]
    assert api_calls.kinesis_mutations() == []
    assert aws.shard_count(STREAM) == 2
    email = only(aws.emails())
    assert email["Subject"] == "[NO ACTION] orders: slow-consumer (consumers falling behind)"
    lines = email["Message"].splitlines()
    assert "  max iterator age           300 s" in lines
    # And the symptom read only what it declares: write load and iterator age, no throttled writes
    assert not [line for line in lines if "throttled writes" in line]
    queries = only(api_calls.params("cloudwatch", "GetMetricData"))["MetricDataQueries"]
    assert [q["Id"] for q in queries] == ["incoming_bytes", "incoming_records", "write_throttled", "iterator_age_ms"]
    assert only(aws.audit_rows(STREAM))["outcome"] == "no-action"


def test_lagging_consumer_near_expiry_also_gets_its_retention_raised(aws, invoke, api_calls):
    # Given the consumer is 18 h behind on a 24 h stream (75 % of the way to expiry), writes at 10 %
    aws.create_stream(STREAM, 2)
    aws.put_policy(policy(mode="enforce"))
    aws.push_traffic(STREAM, bytes_per_second=200_000, records_per_second=100, iterator_age_ms=18 * 3_600_000)

    # When its iterator-age alarm fires
    result = invoke(alarm_event(AGE_ALARM, metric=ITERATOR_METRIC))

    # Then the retention is doubled (enforce), and the consumer still gets its advice
    assert result["plan"]["diagnosis"]["cause"] == "slow-consumer"
    assert [(s["action"], s["outcome"]) for s in result["steps"]] == [("raise-retention", "applied")]
    assert api_calls.params("kinesis", "IncreaseStreamRetentionPeriod") == [
        {"StreamARN": ARN, "RetentionPeriodHours": 48}
    ]
    assert advice_titles(result) == ["Speed up the consumer"]


def test_lagging_consumer_on_saturated_shards_is_resharded(aws, invoke, api_calls):
    # Given the consumer falls behind while writes run at 95 % of the 2 shards
    aws.create_stream(STREAM, 2)
    aws.put_policy(policy(mode="enforce"))
    aws.push_traffic(STREAM, **SATURATED, iterator_age_ms=300_000)

    # When its iterator-age alarm fires
    result = invoke(alarm_event(AGE_ALARM, metric=ITERATOR_METRIC))

    # Then the stream is resharded 2 -> 4
    assert result["status"] == "applied"
    assert result["plan"]["diagnosis"]["cause"] == "shards-saturated"
    assert [p["TargetShardCount"] for p in api_calls.params("kinesis", "UpdateShardCount")] == [4]
    assert aws.shard_count(STREAM) == 4
    row = only(aws.audit_rows(STREAM))
    assert row["outcome"] == "applied"
    assert row["symptom"] == "iterator-age"
    assert parameters_of(row) == {"current_shards": 2, "desired_shards": 4, "target_shards": 4}
    assert only(aws.emails())["Subject"] == "[APPLIED] orders: reshard 2 -> 4 shards (consumers falling behind)"


def test_on_demand_stream_is_never_resharded_even_in_enforce(aws, invoke, api_calls):
    # Given an on-demand stream (moto gives it 4 shards) with load far beyond 4 shards, in enforce mode
    aws.create_stream(STREAM, 0, on_demand=True)
    aws.put_policy(policy(mode="enforce"))
    aws.push_traffic(STREAM, **NEEDS_TEN)

    # When its write-throttling alarm fires
    result = invoke(alarm_event(WRITE_ALARM))

    # Then no reshard and no mode switch is made
    assert result["status"] == "no-action"
    assert result["plan"]["diagnosis"]["cause"] == "on-demand-stream"
    assert result["detail"] == "The stream is on-demand: AWS scales its capacity, so it is never resharded."
    assert api_calls.kinesis_mutations() == []
    assert aws.shard_count(STREAM) == 4
    row = only(aws.audit_rows(STREAM))
    assert row["outcome"] == "no-action"
    assert plan_of(row)["actions"] == []
    assert only(aws.emails())["Subject"] == "[NO ACTION] orders: on-demand-stream (producers throttled)"


def test_no_traffic_metrics_means_no_guess(aws, invoke, api_calls):
    # Given a saturated-looking alarm but no IncomingBytes/IncomingRecords in CloudWatch
    aws.create_stream(STREAM, 2)
    aws.put_policy(policy(mode="enforce"))

    # When its write-throttling alarm fires
    result = invoke(alarm_event(WRITE_ALARM))

    # Then the remediator does not act on missing evidence
    assert result["status"] == "no-action"
    assert result["plan"]["diagnosis"]["cause"] == "insufficient-evidence"
    assert api_calls.kinesis_mutations() == []
    assert only(aws.audit_rows(STREAM))["outcome"] == "no-action"


def test_throttling_that_has_passed_is_not_acted_on(aws, invoke, api_calls):
    # Given the alarm fired but the window shows neither throttles nor saturation
    aws.create_stream(STREAM, 2)
    aws.put_policy(policy(mode="enforce"))
    aws.push_traffic(STREAM, bytes_per_second=200_000, records_per_second=100, throttled=0)

    # When its write-throttling alarm fires
    result = invoke(alarm_event(WRITE_ALARM))

    # Then nothing is done
    assert result["status"] == "no-action"
    assert result["plan"]["diagnosis"]["cause"] == "not-reproduced"
    assert api_calls.kinesis_mutations() == []


@pytest.mark.parametrize(
    ("capacity", "cause", "steps"),
    [
        pytest.param(None, "hot-shard-or-bursts", [], id="default-saturated-at-80"),
        pytest.param(
            {"saturated_at": 0.65, "target_utilisation": 0.5},
            "shards-saturated",
            [
                {
                    "action": "reshard",
                    "outcome": "dry-run",
                    "detail": "peak write utilisation 70%; "
                    + ESTIMATE.format(n=400, mb="1.41", rec=101)
                    + "; 3 shards would put that estimated peak at 47% of capacity (target 50%)",
                }
            ],
            id="capacity-saturated-at-65",
        ),
    ],
)
def test_the_streams_capacity_block_decides_saturation_and_the_target(aws, invoke, capacity, cause, steps):
    # Given a throttled 2-shard stream at 70 % of its write capacity, with or without a capacity block
    aws.create_stream(STREAM, 2)
    aws.put_policy(policy(capacity=capacity))
    aws.push_traffic(STREAM, bytes_per_second=1_400_000, records_per_second=100, throttled=40)

    # When its write-throttling alarm fires
    result = invoke(alarm_event(WRITE_ALARM))

    # Then by default 70 % is not saturated (a hot shard or bursts); from saturated_at 65 % it is, and the reshard
    # aims at the block's target utilisation
    assert result["plan"]["diagnosis"]["cause"] == cause
    assert result["steps"] == steps
