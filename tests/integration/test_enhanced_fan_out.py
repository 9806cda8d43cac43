"""enhanced-fan-out through the handler, against moto: dry-run changes nothing, enforce registers the consumer,
and an opted-in Lambda consumer moves onto its own consumer (a new mapping at AT_TIMESTAMP, the old one disabled).

Where moto falls short, botocore's Stubber answers with AWS's documented response shapes:
- moto 5 maps a function only onto a stream's own ARN: CreateEventSourceMapping with a consumer ARN fails there
  ("Invalid EventSourceArn"; `test_moto_cannot_map_a_function_onto_a_consumer` pins the gap), so the move's
  Lambda calls are stubbed;
- moto registers a consumer ACTIVE at once, where AWS answers CREATING and needs polling (no waiter), so the
  wait is stubbed;
- moto enforces neither the 20 consumers per stream nor any other Kinesis limit: the guardrail must.
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from botocore.stub import ANY, Stubber
from remediator.clients.services import AwsServices
from remediator.core.actions import enhanced_fan_out

from tests.fakes import REGION, alarm_event
from tests.integration.contract import StackResources, mutations
from tests.integration.efo_support import READ_ALARM, READ_METRIC, efo_policy, lambda_consumer, read_throttled
from tests.integration.support import ARN, STREAM, only, parameters_of, plan_of

CONSUMER = "efo-orders-processor"
WINDOW_S = 15 * 60
NEW_UUID = "5e3a9c1e-7b0d-4f0e-9a4e-0c6f2d1b8a11"


def consumers_in_moto(aws: Any) -> dict[str, str]:
    listed = aws.client("kinesis").list_stream_consumers(StreamARN=ARN)["Consumers"]
    return {c["ConsumerName"]: c["ConsumerStatus"] for c in listed}


def three_polling_consumers(aws: Any, mode: str, **block: Any) -> str:
    """orders-processor (opted in) and orders-audit (Lambda, in moto), orders-kcl: returns the processor's mapping."""
    aws.create_stream(STREAM, 2)
    old = lambda_consumer(aws, "orders-processor")
    lambda_consumer(aws, "orders-audit")
    aws.put_policy(
        efo_policy(
            mode,
            [
                {"function": "orders-processor", "move_to_efo": True},
                {"function": "orders-audit"},
                {"kcl": "orders-kcl"},
            ],
            **block,
        )
    )
    read_throttled(aws, iterator_age_ms=120_000)
    return old


def with_stubbed_writes(handler: Any, monkeypatch: pytest.MonkeyPatch, service: str) -> Stubber:
    """The handler's write ports, with `service` answered by a Stubber (the reads and other services stay moto)."""
    real = handler.dependencies()
    stubbed = boto3.client(service, region_name=REGION)
    stubber = Stubber(stubbed)
    writes = AwsServices(lambda name: stubbed if name == service else boto3.client(name, region_name=REGION))
    monkeypatch.setattr(handler, "dependencies", lambda: dataclasses.replace(real, writes=writes))
    return stubber


def test_dry_run_plans_the_move_and_changes_nothing(aws, handler, invoke, api_calls):
    # Given three polling consumers in dry-run, one of which opts in to the move
    three_polling_consumers(aws, "dry-run")

    # When the read-throttling alarm fires
    result = invoke(alarm_event(READ_ALARM, metric=READ_METRIC))

    # Then the step registers the function's own consumer and moves it, allowed by every guardrail
    assert result["status"] == "dry-run"
    (step,) = result["plan"]["actions"]
    assert step["action"] == "enhanced-fan-out"
    assert step["summary"] == (
        "enhanced fan-out: register 1 EFO consumer (efo-orders-processor) and move orders-processor onto its own "
        "consumer; consumers 0 -> 1"
    )
    assert {g["name"] for g in step["guardrails"] if g["passed"]} >= {
        "work-to-do",
        "aws-max-consumers",
        "policy-max-consumers",
        "aws-consumers-creating",
        "consumers-usable",
        "move-start-known",
    }
    assert step["parameters"]["starting_position"] == "AT_TIMESTAMP"
    assert step["parameters"]["lookback_seconds"] == 120 + WINDOW_S
    # And nothing changed: no consumer registered, no mapping created or changed
    assert mutations(api_calls.calls, StackResources.of(handler.settings)) == []
    assert consumers_in_moto(aws) == {}
    assert [m["State"] for m in aws.client("lambda").list_event_source_mappings()["EventSourceMappings"]] == [
        "Enabled",
        "Enabled",
    ]
    # And the e-mail shows the commands a person would run, and the changes before -> after
    body = only(aws.emails())["Message"]
    assert f"aws kinesis register-stream-consumer --stream-arn {ARN} --consumer-name {CONSUMER} && " in body
    assert "mapping " in body and "Enabled -> Disabled" in body


def test_enforce_registers_a_named_consumer_in_moto(aws, invoke, api_calls):
    # Given two KCL applications in enforce, and a consumer named for a reader the operator points at it
    aws.create_stream(STREAM, 2)
    aws.put_policy(
        efo_policy("enforce", [{"kcl": "orders-kcl"}, {"kcl": "orders-reports"}], consumer_name="orders-analytics")
    )
    read_throttled(aws)

    # When the read-throttling alarm fires
    result = invoke(alarm_event(READ_ALARM, metric=READ_METRIC))

    # Then the consumer is registered, the only Kinesis change made
    assert result["status"] == "applied", result
    assert consumers_in_moto(aws) == {"orders-analytics": "ACTIVE"}
    assert api_calls.kinesis_mutations() == ["RegisterStreamConsumer"]
    assert only(api_calls.params("kinesis", "RegisterStreamConsumer")) == {
        "StreamARN": ARN,
        "ConsumerName": "orders-analytics",
    }
    # And the audit row holds the step's flat parameters (read back for cooldowns and budgets)
    row = only([r for r in aws.audit_rows(STREAM) if r.get("action") == "enhanced-fan-out"])
    assert row["outcome"] == "applied"
    assert parameters_of(row) == {
        "register": "orders-analytics",
        "move": "",
        "max_consumers": 5,
        "consumers_before": 0,
        "consumers_after": 1,
    }


def test_a_second_alarm_inside_the_cooldown_registers_nothing_more(aws, invoke, api_calls):
    # Given the named consumer registered by an applied step
    aws.create_stream(STREAM, 2)
    aws.put_policy(
        efo_policy("enforce", [{"kcl": "orders-kcl"}, {"kcl": "orders-reports"}], consumer_name="orders-analytics")
    )
    read_throttled(aws)
    invoke(alarm_event(READ_ALARM, metric=READ_METRIC))

    # When the alarm fires again (a new state change)
    result = invoke(alarm_event(READ_ALARM, metric=READ_METRIC, timestamp="2026-11-26T03:20:00.000+0000"))

    # Then the step has nothing to register (read back from the audit: cooldown, and the consumer exists)
    (step,) = result["plan"]["blocked"]
    assert any(reason.startswith("work-to-do:") for reason in step["reasons"])
    assert any(reason.startswith("cooldown:") for reason in step["reasons"])
    assert api_calls.kinesis_mutations() == ["RegisterStreamConsumer"]
    assert consumers_in_moto(aws) == {"orders-analytics": "ACTIVE"}


def test_the_20_consumer_limit_blocks_what_moto_would_accept(aws, invoke, api_calls):
    # Given a stream that has 20 registered consumers already, and a policy allowing up to 20
    aws.create_stream(STREAM, 2)
    for index in range(20):
        aws.client("kinesis").register_stream_consumer(StreamARN=ARN, ConsumerName=f"team-{index}")
    aws.put_policy(
        efo_policy(
            "enforce",
            [{"kcl": "orders-kcl"}, {"kcl": "orders-reports"}],
            consumer_name="orders-analytics",
            max_consumers=20,
        )
    )
    read_throttled(aws)

    # When the read-throttling alarm fires
    result = invoke(alarm_event(READ_ALARM, metric=READ_METRIC))

    # Then the step is blocked by AWS's limit, and nothing is registered
    (step,) = result["plan"]["blocked"]
    assert "aws-max-consumers: 20 + 1 = 21 of at most 20 consumers per stream" in step["reasons"]
    assert "RegisterStreamConsumer" not in api_calls.operations()
    assert len(consumers_in_moto(aws)) == 20
    # And moto itself would have accepted a 21st: the limit is only ours to keep
    aws.client("kinesis").register_stream_consumer(StreamARN=ARN, ConsumerName="one-too-many")
    assert len(consumers_in_moto(aws)) == 21


def test_moto_cannot_map_a_function_onto_a_consumer(aws):
    # The moto gap the move's Stubber covers (if this starts passing, map onto the consumer in moto instead)
    aws.create_stream(STREAM, 1)
    lambda_consumer(aws, "orders-processor")
    consumer = aws.client("kinesis").register_stream_consumer(StreamARN=ARN, ConsumerName=CONSUMER)["Consumer"]
    with pytest.raises(ClientError, match="Invalid EventSourceArn"):
        aws.client("lambda").create_event_source_mapping(
            FunctionName="orders-processor", EventSourceArn=consumer["ConsumerARN"], StartingPosition="LATEST"
        )


def test_enforce_moves_an_opted_in_lambda_consumer_without_losing_records(aws, handler, invoke, api_calls, monkeypatch):
    # Given three polling consumers in enforce, orders-processor opted in, its mapping in moto, readers 2 min behind
    old = three_polling_consumers(aws, "enforce")
    function_arn = aws.client("lambda").get_function(FunctionName="orders-processor")["Configuration"]["FunctionArn"]
    # And the Lambda writes answered as AWS documents them (moto cannot map onto a consumer ARN)
    stubber = with_stubbed_writes(handler, monkeypatch, "lambda")
    stubber.add_response(
        "get_event_source_mapping",
        {
            "UUID": old,
            "State": "Enabled",
            "EventSourceArn": ARN,
            "FunctionArn": function_arn,
            "BatchSize": 100,
            "MaximumRetryAttempts": 5,
            "StartingPosition": "LATEST",
            "LastProcessingResult": "OK",
        },
        {"UUID": old},
    )
    stubber.add_response(
        "list_event_source_mappings", {"EventSourceMappings": []}, {"FunctionName": function_arn, "EventSourceArn": ANY}
    )
    stubber.add_response(
        "create_event_source_mapping",
        {"UUID": NEW_UUID, "State": "Creating", "FunctionArn": function_arn, "BatchSize": 100},
        {
            "FunctionName": function_arn,
            "EventSourceArn": ANY,
            "Enabled": True,
            "StartingPosition": "AT_TIMESTAMP",
            "StartingPositionTimestamp": ANY,
            "BatchSize": 100,
            "MaximumRetryAttempts": 5,
        },
    )
    stubber.add_response(
        "update_event_source_mapping", {"UUID": old, "State": "Disabling"}, {"UUID": old, "Enabled": False}
    )

    # When the read-throttling alarm fires
    before = datetime.now(UTC)
    with stubber:
        result = invoke(alarm_event(READ_ALARM, metric=READ_METRIC))
    after = datetime.now(UTC)

    # Then the step is applied: the consumer is registered in moto ...
    assert result["status"] == "applied", result
    assert consumers_in_moto(aws) == {CONSUMER: "ACTIVE"}
    consumer_arn = only(aws.client("kinesis").list_stream_consumers(StreamARN=ARN)["Consumers"])["ConsumerARN"]
    # ... the new mapping reads that consumer from the old one's position, the old mapping disabled after it
    stubber.assert_no_pending_responses()
    operations = api_calls.operations("lambda")
    assert operations.index("CreateEventSourceMapping") < operations.index("UpdateEventSourceMapping")
    create = only(api_calls.params("lambda", "CreateEventSourceMapping"))
    assert create["EventSourceArn"] == consumer_arn
    start = datetime.fromisoformat(create["StartingPositionTimestamp"])
    lookback = timedelta(seconds=120 + WINDOW_S)
    assert before.replace(microsecond=0) - lookback <= start <= after - lookback
    assert only(api_calls.params("lambda", "ListEventSourceMappings")[-1:])["EventSourceArn"] == consumer_arn
    # And the outcome and the audit say what moved
    assert f"moved orders-processor {old} -> {NEW_UUID}" in only(result["steps"])["detail"]
    row = only([r for r in aws.audit_rows(STREAM) if r.get("action") == "enhanced-fan-out"])
    assert (row["outcome"], parameters_of(row)["from_mappings"]) == ("applied", old)
    assert plan_of(row)["actions"][0]["parameters"]["move"] == "orders-processor"


def test_a_consumer_still_creating_leaves_the_function_on_the_stream(aws, handler, invoke, api_calls, monkeypatch):
    # Given the move in enforce, and Kinesis answering as AWS does: CREATING, and still CREATING on every poll
    three_polling_consumers(aws, "enforce")
    monkeypatch.setattr(enhanced_fan_out, "sleep", lambda seconds: None)
    stubber = with_stubbed_writes(handler, monkeypatch, "kinesis")
    consumer_arn = f"{ARN}/consumer/{CONSUMER}:1764126000"
    described = {
        "ConsumerName": CONSUMER,
        "ConsumerARN": consumer_arn,
        "ConsumerStatus": "CREATING",
        "ConsumerCreationTimestamp": datetime(2026, 11, 26, 3, 0, tzinfo=UTC),
    }
    stubber.add_response("list_stream_consumers", {"Consumers": []}, {"StreamARN": ARN})
    stubber.add_response(
        "register_stream_consumer", {"Consumer": described}, {"StreamARN": ARN, "ConsumerName": CONSUMER}
    )
    efo = enhanced_fan_out.EnhancedFanOut
    for _ in range(int(efo.MAX_WAIT_SECONDS / efo.POLL_SECONDS)):
        stubber.add_response(
            "describe_stream_consumer",
            {"ConsumerDescription": described | {"StreamARN": ARN}},
            {"ConsumerARN": consumer_arn},
        )

    # When the read-throttling alarm fires
    with stubber:
        result = invoke(alarm_event(READ_ALARM, metric=READ_METRIC))

    # Then the consumer is registered, polled a bounded number of times, and no mapping is touched
    stubber.assert_no_pending_responses()
    assert result["status"] == "applied", result
    assert "waiting for active orders-processor" in only(result["steps"])["detail"]
    assert not {"CreateEventSourceMapping", "UpdateEventSourceMapping"} & set(api_calls.operations("lambda"))
    assert [m["State"] for m in aws.client("lambda").list_event_source_mappings()["EventSourceMappings"]] == [
        "Enabled",
        "Enabled",
    ]
