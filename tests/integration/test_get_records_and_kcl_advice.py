"""get-errors, get-latency and kcl-consumer-lag through the handler against moto: with no safe automatic fix,
an advice e-mail with the figures, the likely causes and the concrete steps; with saturated shards, a reshard.

The alarms of get-errors use metric math (100 * GetRecords.Success); moto evaluates no metric math, so the
evidence reads the plain metric and the symptom takes the percentage itself (the alarm itself is checked by the
infrastructure tests against its declaration)."""

from __future__ import annotations

import re
from typing import Any

from tests.fakes import alarm_event
from tests.integration.support import ARN, SATURATED, STREAM, alarm, only, policy

QUIET = {"bytes_per_second": 200_000, "records_per_second": 100}
APP = "orders-indexer"


def kinesis(aws: Any, metric: str, value: float, stream: str = STREAM) -> None:
    aws.put_metric("AWS/Kinesis", metric, {"StreamName": stream}, value)


def set_up(aws: Any, mode: str = "enforce", traffic: dict[str, float] = QUIET, **extra: Any) -> None:
    aws.create_stream(STREAM, 2)
    aws.push_traffic(STREAM, **traffic)
    aws.put_policy(policy(mode=mode) | extra)


def advice_titles(result: dict[str, Any]) -> list[str]:
    return [a["title"] for a in result["plan"]["advice"]]


def figure_line(body: str, name: str, shown: str) -> bool:
    return re.search(rf"\n  {re.escape(name)}\s+{re.escape(shown)}\n", body) is not None


# get-errors -------------------------------------------------------------------------------------------------------
def test_get_errors_on_idle_shards_emails_the_figures_and_the_steps(aws, invoke, api_calls):
    # Given 4 % of GetRecords calls failing (Success average 0.96) on shards at 10 % of their capacity
    set_up(aws, consumers=[{"function": "orders-processor"}, {"kcl": APP}])
    kinesis(aws, "GetRecords.Success", 0.96)

    # When the get-errors alarm fires
    result = invoke(alarm_event(alarm(STREAM, "get-errors"), metric="GetRecords.Success"))

    # Then no automatic fix: advice to retry with backoff and to check the consumers' CPU and memory
    assert result["status"] == "no-action"
    assert result["plan"]["diagnosis"]["cause"] == "get-records-errors"
    assert api_calls.kinesis_mutations() == []
    assert advice_titles(result) == ["Retry with backoff", "Check the consumers' CPU and memory"]
    # And the e-mail carries the figures and the concrete steps, naming the consumers
    email = only(aws.emails())
    assert email["Subject"] == "[NO ACTION] orders: get-records-errors (GetRecords calls failing)"
    body = email["Message"]
    assert figure_line(body, "lowest GetRecords success", "96 %")
    assert figure_line(body, "minutes below 99 %", "10")
    assert "In the worst minute 4.0 % of GetRecords calls failed." in body
    assert "exponential backoff and jitter" in body
    assert "An overloaded consumer (orders-processor, orders-indexer)" in body
    # And the evidence was the plain metric (moto evaluates no metric math), read once
    queries = only(api_calls.params("cloudwatch", "GetMetricData"))["MetricDataQueries"]
    assert [q["Id"] for q in queries] == ["incoming_bytes", "incoming_records", "get_success", "read_throttled"]


def test_get_errors_with_throttled_reads_points_to_read_throttling(aws, invoke):
    # Given failing GetRecords calls, some of them throttled
    set_up(aws)
    kinesis(aws, "GetRecords.Success", 0.9)
    kinesis(aws, "ReadProvisionedThroughputExceeded", 7)
    # When the alarm fires
    result = invoke(alarm_event(alarm(STREAM, "get-errors"), metric="GetRecords.Success"))
    # Then the throttling is named, with its count
    assert advice_titles(result)[-1] == "GetRecords throttled"
    assert result["plan"]["advice"][-1]["detail"].startswith("70 GetRecords calls were throttled")


def test_get_errors_on_saturated_shards_reshards(aws, invoke, api_calls):
    # Given failing GetRecords calls while writes run at 95 % of the 2 shards
    set_up(aws, traffic=SATURATED)
    kinesis(aws, "GetRecords.Success", 0.9)
    # When the alarm fires
    result = invoke(alarm_event(alarm(STREAM, "get-errors"), metric="GetRecords.Success"))
    # Then the stream is resharded 2 -> 4, and the advice still goes along
    assert result["status"] == "applied"
    assert result["plan"]["diagnosis"]["cause"] == "shards-saturated"
    assert [p["TargetShardCount"] for p in api_calls.params("kinesis", "UpdateShardCount")] == [4]
    assert advice_titles(result)[0] == "Retry with backoff"


def test_get_errors_that_cleared_change_nothing(aws, invoke):
    # Given every GetRecords call succeeded in the window (the alarm fired on an earlier minute)
    set_up(aws)
    kinesis(aws, "GetRecords.Success", 1.0)
    # When the alarm fires
    result = invoke(alarm_event(alarm(STREAM, "get-errors"), metric="GetRecords.Success"))
    # Then nothing is changed or advised
    assert (result["status"], result["plan"]["diagnosis"]["cause"]) == ("no-action", "not-reproduced")
    assert result["plan"]["advice"] == []


# get-latency ------------------------------------------------------------------------------------------------------
def test_get_latency_on_idle_shards_emails_the_figures_and_the_steps(aws, invoke, api_calls):
    # Given GetRecords calls taking 1.5 s on average, on shards at 10 % of their capacity
    set_up(aws, consumers=[{"kcl": APP}])
    kinesis(aws, "GetRecords.Latency", 1_500)

    # When the get-latency alarm fires
    result = invoke(alarm_event(alarm(STREAM, "get-latency"), metric="GetRecords.Latency"))

    # Then no automatic fix: advice on consumer resources, fewer larger calls, and enhanced fan-out
    assert result["status"] == "no-action"
    assert result["plan"]["diagnosis"]["cause"] == "get-records-slow"
    assert api_calls.kinesis_mutations() == []
    assert advice_titles(result) == [
        "Check the consumers' CPU and memory",
        "Fewer, larger GetRecords calls",
        "Enhanced fan-out for latency-sensitive consumers",
    ]
    register = f"aws kinesis register-stream-consumer --stream-arn {ARN} --consumer-name {APP}-efo"
    assert result["plan"]["advice"][2]["cli_command"] == register
    email = only(aws.emails())
    assert email["Subject"] == "[NO ACTION] orders: get-records-slow (GetRecords calls slow)"
    body = email["Message"]
    assert figure_line(body, "highest average GetRecords latency", "1,500 ms")
    assert figure_line(body, "minutes at or above 1,000 ms", "10")
    assert f"      {register}" in body
    assert "(1 in the policy)" in body


def test_get_latency_on_saturated_shards_reshards_in_dry_run_only_on_paper(aws, invoke, api_calls):
    # Given slow GetRecords calls on saturated shards, in dry-run
    set_up(aws, mode="dry-run", traffic=SATURATED)
    kinesis(aws, "GetRecords.Latency", 2_000)
    # When the alarm fires
    result = invoke(alarm_event(alarm(STREAM, "get-latency"), metric="GetRecords.Latency"))
    # Then a reshard 2 -> 4 is planned, and not made
    assert result["status"] == "dry-run"
    assert [s["summary"] for s in result["plan"]["actions"]] == ["reshard 2 -> 4 shards"]
    assert api_calls.kinesis_mutations() == []


# kcl-consumer-lag -------------------------------------------------------------------------------------------------
def kcl_lag(aws: Any, millis: float, app: str = APP, operation: str = "ApplicationTracker") -> None:
    aws.put_metric(app, "MillisBehindLatest", {"Operation": operation}, millis)


def test_kcl_lag_on_idle_shards_emails_the_kcl_steps(aws, invoke, api_calls):
    # Given a KCL application 5 minutes behind, its lease table not throttled, on shards at 10 % capacity
    set_up(aws, consumers=[{"kcl": APP}])
    kcl_lag(aws, 300_000)

    # When its kcl-consumer-lag alarm fires
    result = invoke(alarm_event(f"{alarm(STREAM, 'kcl-consumer-lag')}/{APP}", stream=None, metric="MillisBehindLatest"))

    # Then no automatic fix: the KCL's likely causes, each with its concrete step
    assert result["status"] == "no-action"
    assert result["plan"]["diagnosis"]["cause"] == "slow-kcl-application"
    assert api_calls.kinesis_mutations() == []
    assert advice_titles(result) == [
        "Look for exceptions in processRecords",
        "Check maxLeasesPerWorker and the worker count",
        "Failover time and ZOMBIE shutdowns",
        "Turn on the KCL's debug logs",
    ]
    email = only(aws.emails())
    assert email["Subject"] == "[NO ACTION] orders: slow-kcl-application (KCL application falling behind)"
    body = email["Message"]
    assert figure_line(body, f"{APP}: max MillisBehindLatest", "300 s")
    assert figure_line(body, f"{APP}: lease table throttle events", "0")
    assert "The stream has 2 open shards." in body
    assert "shuts down with reason ZOMBIE" in body
    # And the lag was read from the application's own namespace, on the application-level dimension
    queries = only(api_calls.params("cloudwatch", "GetMetricData"))["MetricDataQueries"]
    lag = next(q for q in queries if q["Id"] == "kcl_lag_ms_0")["MetricStat"]["Metric"]
    assert lag == {
        "Namespace": APP,
        "MetricName": "MillisBehindLatest",
        "Dimensions": [{"Name": "Operation", "Value": "ApplicationTracker"}],
    }


def test_kcl_lag_with_a_throttled_lease_table_points_to_it(aws, invoke):
    # Given a lagging KCL application whose lease table is throttled in the same minutes
    set_up(aws, consumers=[{"kcl": APP}])
    kcl_lag(aws, 300_000)
    aws.put_metric("AWS/DynamoDB", "WriteThrottleEvents", {"TableName": APP}, 4)
    # When the alarm fires
    result = invoke(alarm_event(f"{alarm(STREAM, 'kcl-consumer-lag')}/{APP}", stream=None))
    # Then the lease table is named as the cause, and the advice points to lease-table-throttling
    assert result["plan"]["diagnosis"]["cause"] == "lease-table-throttled"
    assert "see the lease-table-throttling alarm" in result["detail"]
    assert advice_titles(result)[0] == "Lease table throttled"


def test_kcl_lag_near_retention_raises_it_and_still_emails_the_kcl_steps(aws, invoke, api_calls):
    # Given a KCL application 14 h behind on a 24 h stream (58 % of the retention), on shards at 10 % capacity
    set_up(aws, consumers=[{"kcl": APP}])
    kcl_lag(aws, 14 * 3_600_000)
    # When the alarm fires
    result = invoke(alarm_event(f"{alarm(STREAM, 'kcl-consumer-lag')}/{APP}", stream=None))
    # Then the retention is raised 24 -> 48 h, by ARN, through raise-retention
    assert result["status"] == "applied"
    assert [(s["action"], s["outcome"]) for s in result["steps"]] == [("raise-retention", "applied")]
    assert api_calls.params("kinesis", "IncreaseStreamRetentionPeriod") == [
        {"StreamARN": ARN, "RetentionPeriodHours": 48}
    ]
    (step,) = result["plan"]["actions"]
    assert step["cli_command"] == (
        f"aws kinesis increase-stream-retention-period --stream-arn {ARN} --retention-period-hours 48"
    )
    assert "detectors.kcl_consumer_lag.retention_share is 50%); furthest behind: orders-indexer" in step["reason"]
    # And the fix for the lag is still the KCL steps
    assert result["plan"]["diagnosis"]["cause"] == "slow-kcl-application"
    assert advice_titles(result)[0] == "Look for exceptions in processRecords"


def test_kcl_lag_on_saturated_shards_reshards(aws, invoke, api_calls):
    # Given a lagging KCL application on saturated shards
    set_up(aws, traffic=SATURATED, consumers=[{"kcl": APP}])
    kcl_lag(aws, 300_000)
    # When the alarm fires
    result = invoke(alarm_event(f"{alarm(STREAM, 'kcl-consumer-lag')}/{APP}", stream=None))
    # Then the stream is resharded
    assert result["status"] == "applied"
    assert [p["TargetShardCount"] for p in api_calls.params("kinesis", "UpdateShardCount")] == [4]


def test_kcl_lag_without_its_metric_says_how_to_find_it(aws, invoke):
    # Given the application publishes MillisBehindLatest only per shard (not the dimension the policy expects)
    set_up(aws, consumers=[{"kcl": APP}])
    aws.put_metric(APP, "MillisBehindLatest", {"Operation": "ProcessTask", "ShardId": "shardId-0"}, 300_000)
    # When the alarm fires
    result = invoke(alarm_event(f"{alarm(STREAM, 'kcl-consumer-lag')}/{APP}", stream=None))
    # Then the remediator does not guess, and gives the command that lists the application's metrics
    assert result["plan"]["diagnosis"]["cause"] == "insufficient-evidence"
    assert result["plan"]["advice"][0]["cli_command"] == (
        f"aws cloudwatch list-metrics --namespace {APP} --metric-name MillisBehindLatest"
    )


def test_kcl_lag_reads_the_operation_and_namespace_the_policy_sets(aws, invoke):
    # Given a policy with a custom namespace and the per-operation dimension
    set_up(
        aws,
        consumers=[{"kcl": APP, "namespace": "Orders/Indexer"}],
        detectors={"kcl_consumer_lag": {"operation": "ProcessTask"}},
    )
    kcl_lag(aws, 300_000, app="Orders/Indexer", operation="ProcessTask")
    # When the alarm fires
    result = invoke(alarm_event(f"{alarm(STREAM, 'kcl-consumer-lag')}/{APP}", stream=None))
    # Then the lag is found there
    assert result["plan"]["diagnosis"]["cause"] == "slow-kcl-application"
