"""Lambda consumers through the real handler against moto: lambda-consumer-lag tunes the mapping (tune-event-source)
in both modes, never changes a Disabled or Updating mapping, and lambda-consumer-errors names the cause.

Where moto falls short, botocore's Stubber answers on the handler's own client with AWS's documented response
shapes (each test says which gap it covers):
- moto models a mapping's State only as Enabled or Disabled, never Updating (nor a state that changes between
  the plan and the change);
- moto does not implement iam:SimulatePrincipalPolicy.
The `invoke` fixture checks every call, stubbed or not, against the IAM the registries grant (the mapping calls
also against the lambda:FunctionArn condition).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from botocore.stub import Stubber

from tests.fakes import ACCOUNT, REGION, alarm_event
from tests.integration.contract import StackResources, mutations
from tests.integration.support import ARN, STREAM, alarm, only, parameters_of, plan_of, policy

FUNCTION = "orders-processor"
FUNCTION_ARN = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{FUNCTION}"
ROLE_ARN = f"arn:aws:iam::{ACCOUNT}:role/service-role/{FUNCTION}-role"
LAG_ALARM = f"{alarm(STREAM, 'lambda-consumer-lag')}/{FUNCTION}"
ERRORS_ALARM = f"{alarm(STREAM, 'lambda-consumer-errors')}/{FUNCTION}.errors"
IDLE = {"bytes_per_second": 100_000, "records_per_second": 100}  # 5 % of 2 shards
BEHIND = [600_000.0] * 10  # IteratorAge: 10 minutes behind, for 10 minutes
STREAM_READS = [
    "kinesis:GetRecords",
    "kinesis:GetShardIterator",
    "kinesis:DescribeStream",
    "kinesis:DescribeStreamSummary",
    "kinesis:ListShards",
]
LATER = "2026-11-26T03:40:00.000+0000"


def consumer_policy(mode: str, **tune: Any) -> dict[str, Any]:
    raw = policy(mode=mode)
    raw["consumers"] = [{"function": FUNCTION}]
    raw["actions"]["tune_event_source"] = tune
    return raw


def lagging_consumer(aws: Any, mode: str, *, enabled: bool = True, behind: list[float] = BEHIND, **tune: Any) -> str:
    """A 2-shard stream at 5 % of its capacity whose Lambda consumer is 10 minutes (or `behind`) behind; the
    mapping's UUID."""
    aws.create_stream(STREAM, 2)
    uuid: str = aws.create_consumer(FUNCTION, STREAM, enabled=enabled)
    aws.put_policy(consumer_policy(mode, **tune))
    aws.push_traffic(STREAM, **IDLE)
    aws.put_function_series(FUNCTION, "IteratorAge", behind)
    return uuid


def lag_event(timestamp: str = "2026-11-26T02:59:00.000+0000") -> dict[str, Any]:
    # An alarm on a function's metric has no StreamName dimension: its name alone says which stream.
    return alarm_event(LAG_ALARM, stream=None, metric="IteratorAge", timestamp=timestamp)


def parallelization(aws: Any, uuid: str) -> int:
    return int(aws.mapping(uuid).get("ParallelizationFactor", 1))  # moto leaves AWS's default (1) out


def documented_mapping(uuid: str, state: str) -> dict[str, Any]:
    """GetEventSourceMapping's response for a Kinesis mapping, shaped as AWS's example in the Lambda guide's
    UpdateEventSourceMapping page (aws-facts.md §4: an update returns State "Updating")."""
    return {
        "UUID": uuid,
        "BatchSize": 100,
        "MaximumBatchingWindowInSeconds": 0,
        "ParallelizationFactor": 1,
        "EventSourceArn": ARN,
        "FunctionArn": FUNCTION_ARN,
        "LastModified": datetime(2026, 11, 26, 2, 50, tzinfo=UTC),
        "LastProcessingResult": "OK",
        "State": state,
        "StateTransitionReason": "User action",
        "DestinationConfig": {"OnFailure": {}},
        "MaximumRecordAgeInSeconds": -1,
        "BisectBatchOnFunctionError": False,
        "MaximumRetryAttempts": -1,
    }


def stub(handler: Any, ports: str, service: str) -> Stubber:
    """A Stubber on the client the handler itself uses for `service`, on its read or write ports."""
    client = getattr(handler.dependencies(), ports).service(service)._client
    stubber = Stubber(client)
    stubber.activate()
    return stubber


# --- tune-event-source, through lambda-consumer-lag ------------------------------------------------------------


def test_dry_run_plans_the_tuning_and_changes_nothing(aws, handler, invoke, api_calls):
    # Given a Lambda consumer 10 minutes behind on shards at 5 % of their capacity, in dry-run
    uuid = lagging_consumer(aws, "dry-run")

    # When its lag alarm fires
    result = invoke(lag_event())

    # Then the plan tunes its mapping (not a reshard): parallelization 1 -> 2, rehearsed only
    step = only(result["steps"])
    assert (step["action"], step["outcome"]) == ("tune-event-source", "dry-run")
    assert plan_of(only(aws.audit_rows(STREAM)))["diagnosis"]["cause"] == "slow-consumer"
    # And no call changed anything but the remediator's own records, and the mapping is as it was
    assert mutations(api_calls.calls, StackResources.of(handler.settings)) == []
    assert "UpdateEventSourceMapping" not in api_calls.operations("lambda")
    assert parallelization(aws, uuid) == 1
    # And the e-mail shows the change and the command a person would type
    email = only(aws.emails())
    assert email["Subject"] == (
        "[DRY-RUN] orders: tune orders-processor: ParallelizationFactor 1 -> 2 (Lambda consumer lagging)"
    )
    assert f"     Command: aws lambda update-event-source-mapping --uuid {uuid} --parallelization-factor 2" in (
        email["Message"].splitlines()
    )


def test_enforce_changes_the_mapping_after_reading_it_again(aws, invoke, api_calls):
    # Given the same lagging consumer, in enforce
    uuid = lagging_consumer(aws, "enforce")

    # When its lag alarm fires
    result = invoke(lag_event())

    # Then the mapping is read again right before the one update, which changes exactly the planned setting
    lambda_calls = api_calls.operations("lambda")
    assert lambda_calls[-2:] == ["GetEventSourceMapping", "UpdateEventSourceMapping"]
    assert api_calls.params("lambda", "UpdateEventSourceMapping") == [{"UUID": uuid, "ParallelizationFactor": 2}]
    # And moto's mapping really changed
    assert parallelization(aws, uuid) == 2
    step = only(result["steps"])
    assert (step["action"], step["outcome"]) == ("tune-event-source", "applied")
    # And the audit row keeps the settings before -> after
    row = only(aws.audit_rows(STREAM))
    assert parameters_of(row)["before"] == {"ParallelizationFactor": 1}
    assert parameters_of(row)["after"] == {"ParallelizationFactor": 2}


def test_a_second_alarm_within_the_cooldown_reads_the_history_and_changes_nothing(aws, invoke, api_calls):
    # Given a mapping the remediator tuned (its audit row holds nested settings)
    uuid = lagging_consumer(aws, "enforce")
    invoke(lag_event())
    assert parallelization(aws, uuid) == 2

    # When the alarm fires again, for a new state change
    result = invoke(lag_event(LATER))

    # Then the history is read back, and the cooldown blocks a second change
    step = only(result["steps"])
    assert step["outcome"] == "blocked"
    assert "cooldown:" in step["detail"]
    assert api_calls.operations("lambda").count("UpdateEventSourceMapping") == 1
    assert parallelization(aws, uuid) == 2


def test_a_consumer_near_the_retention_gets_raise_retention_ahead_of_the_tuning(aws, handler, invoke, api_calls):
    # Given a Lambda consumer 13 h behind on a 24 h stream (54 % of the retention), in dry-run
    uuid = lagging_consumer(aws, "dry-run", behind=[13 * 3_600_000.0] * 10)

    # When its lag alarm fires
    result = invoke(lag_event())

    # Then the plan raises the retention 24 -> 48 h first, then tunes the mapping, both rehearsed only
    assert [(s["action"], s["outcome"]) for s in result["steps"]] == [
        ("raise-retention", "dry-run"),
        ("tune-event-source", "dry-run"),
    ]
    retention, tuning = result["plan"]["actions"]
    assert retention["cli_command"] == (
        f"aws kinesis increase-stream-retention-period --stream-arn {ARN} --retention-period-hours 48"
    )
    assert (
        f"detectors.lambda_consumer_lag.retention_share is 50%); furthest behind: {FUNCTION}" in (retention["reason"])
    )
    assert tuning["cli_command"] == f"aws lambda update-event-source-mapping --uuid {uuid} --parallelization-factor 2"
    # And nothing changed but the remediator's own records
    assert mutations(api_calls.calls, StackResources.of(handler.settings)) == []
    assert parallelization(aws, uuid) == 1


def test_a_disabled_mapping_is_never_changed(aws, invoke, api_calls):
    # Given the lagging consumer's mapping was disabled by someone, in enforce
    uuid = lagging_consumer(aws, "enforce", enabled=False)

    # When its lag alarm fires
    result = invoke(lag_event())

    # Then no step is taken: the advice names the mapping and how to enable it
    assert result["status"] == "no-action"
    assert "UpdateEventSourceMapping" not in api_calls.operations("lambda")
    mapping = aws.mapping(uuid)
    assert (mapping["State"], mapping.get("ParallelizationFactor", 1)) == ("Disabled", 1)
    body = only(aws.emails())["Message"]
    assert f"mapping {uuid} of {FUNCTION} is Disabled" in body
    assert f"aws lambda update-event-source-mapping --uuid {uuid} --enabled" in body


@pytest.mark.parametrize("state", ["Disabled", "Updating"])
def test_apply_refuses_a_mapping_that_stopped_being_enabled_after_the_plan(aws, handler, invoke, api_calls, state):
    # moto gap: its mappings never change state between the plan and the change (and are never Updating), so
    # the re-read right before the change is answered by a Stubber on the handler's write client with AWS's
    # documented GetEventSourceMapping response in that state.
    uuid = lagging_consumer(aws, "enforce")
    writes = stub(handler, "writes", "lambda")
    writes.add_response("get_event_source_mapping", documented_mapping(uuid, state), {"UUID": uuid})

    # When the lag alarm fires (planned on an Enabled mapping)
    result = invoke(lag_event())

    # Then the step fails without a change, and says why
    step = only(result["steps"])
    assert step["outcome"] == "failed"
    assert f"MappingNotReady: mapping {uuid} of {FUNCTION} is {state}, not Enabled; no change made" in step["detail"]
    assert ("the next alarm retries" in step["detail"]) is (state == "Updating")
    assert "UpdateEventSourceMapping" not in api_calls.operations("lambda")
    writes.assert_no_pending_responses()
    assert parallelization(aws, uuid) == 1


def test_a_mapping_that_is_updating_when_planned_is_left_for_a_later_alarm(aws, handler, invoke, api_calls):
    # moto gap: moto never reports a mapping as Updating, so the handler's reads of the consumer are answered by
    # a Stubber with AWS's documented responses: ListEventSourceMappings with the mapping in State "Updating".
    uuid = lagging_consumer(aws, "enforce")
    reads = stub(handler, "reads", "lambda")
    reads.add_response(
        "list_event_source_mappings",
        {"EventSourceMappings": [documented_mapping(uuid, "Updating")]},
        {"FunctionName": FUNCTION},
    )
    reads.add_response(
        "get_function_configuration",
        {"FunctionName": FUNCTION, "FunctionArn": FUNCTION_ARN, "Timeout": 60, "Role": ROLE_ARN},
        {"FunctionName": FUNCTION},
    )
    reads.add_response("get_function_concurrency", {}, {"FunctionName": FUNCTION})

    # When the lag alarm fires
    result = invoke(lag_event())

    # Then the step is blocked with the mapping's state, the remediator does not wait for it, and nothing changes
    step = only(result["steps"])
    assert step["outcome"] == "blocked"
    assert "mapping-enabled: mapping is Updating; the next alarm retries" in step["detail"]
    assert not {"GetEventSourceMapping", "UpdateEventSourceMapping"} & set(api_calls.operations("lambda"))
    reads.assert_no_pending_responses()
    assert parallelization(aws, uuid) == 1


def test_a_consumer_that_does_not_exist_is_named_and_the_others_are_still_tuned(aws, invoke, api_calls):
    # Given the policy also names a function that does not exist (a typo), in dry-run
    lagging_consumer(aws, "dry-run")
    raw = consumer_policy("dry-run")
    raw["consumers"] = [{"function": "orders-procesor"}, {"function": FUNCTION}]
    aws.put_policy(raw)

    # When the real function's lag alarm fires
    result = invoke(lag_event())

    # Then AWS's ResourceNotFoundException for the typo is a fact, the real function is still tuned
    assert only(result["steps"])["action"] == "tune-event-source"
    report = plan_of(only(aws.audit_rows(STREAM)))
    assert only(report["actions"])["parameters"]["function"] == FUNCTION
    assert any("orders-procesor could not be read (ResourceNotFoundException" in a["detail"] for a in report["advice"])


# --- lambda-consumer-errors ------------------------------------------------------------------------------------


def failing_consumer(aws: Any, mode: str, *, errors: list[float], duration_ms: float, **tune: Any) -> str:
    aws.create_stream(STREAM, 2)
    uuid: str = aws.create_consumer(FUNCTION, STREAM, timeout=60)
    aws.put_policy(consumer_policy(mode, **tune))
    aws.push_traffic(STREAM, **IDLE)
    aws.put_function_series(FUNCTION, "Errors", errors)
    aws.put_function_series(FUNCTION, "Invocations", [5.0] * len(errors))
    aws.put_function_series(FUNCTION, "Duration", [duration_ms] * len(errors))
    return uuid


def simulated(handler: Any, denied: set[str]) -> Stubber:
    """moto gap: it does not implement iam:SimulatePrincipalPolicy. A Stubber on the handler's read client for
    IAM answers with AWS's documented EvaluationResults, one per action, `denied` ones implicitly denied."""
    iam = stub(handler, "reads", "iam")
    iam.add_response(
        "simulate_principal_policy",
        {
            "EvaluationResults": [
                {
                    "EvalActionName": action,
                    "EvalResourceName": ARN,
                    "EvalDecision": "implicitDeny" if action in denied else "allowed",
                    "MatchedStatements": [],
                    "MissingContextValues": [],
                }
                for action in STREAM_READS
            ],
            "IsTruncated": False,
        },
        {"PolicySourceArn": ROLE_ARN, "ActionNames": STREAM_READS, "ResourceArns": [ARN]},
    )
    return iam


def test_errors_name_the_kinesis_read_the_role_is_denied_and_the_fix(aws, handler, invoke, api_calls):
    # Given a consumer whose role may not call GetRecords on the stream (errors in one minute), in dry-run
    failing_consumer(aws, "dry-run", errors=[0.0] * 9 + [2.0], duration_ms=1_500)
    iam = simulated(handler, denied={"kinesis:GetRecords"})

    # When its errors alarm fires
    result = invoke(alarm_event(ERRORS_ALARM, stream=None, metric="Errors"))

    # Then the role's permissions were simulated for the Kinesis reads on the stream (and granted to the remediator)
    iam.assert_no_pending_responses()
    assert api_calls.operations("iam") == ["SimulatePrincipalPolicy"]
    # And the diagnosis names the denied action, with the fix; nothing is changed
    assert result["status"] == "no-action"
    assert plan_of(only(aws.audit_rows(STREAM)))["diagnosis"]["cause"] == "consumer-role-denied"
    body = only(aws.emails())["Message"]
    assert f"execution role {FUNCTION}-role is denied kinesis:GetRecords on {ARN}" in body
    assert (
        f"aws iam attach-role-policy --role-name {FUNCTION}-role --policy-arn "
        "arn:aws:iam::aws:policy/service-role/AWSLambdaKinesisExecutionRole"
    ) in body
    assert mutations(api_calls.calls, StackResources.of(handler.settings)) == []


def test_a_batch_that_keeps_timing_out_gets_failure_handling_when_the_policy_allows(aws, handler, invoke, api_calls):
    # Given a consumer whose batches run into its 60 s timeout every minute, in enforce, with failure handling
    # allowed and an SQS queue for failed records
    queue = aws.client("sqs").create_queue(QueueName="orders-failed")["QueueUrl"]
    queue_arn = aws.client("sqs").get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    uuid = failing_consumer(
        aws,
        "enforce",
        errors=[3.0] * 10,
        duration_ms=59_900,
        allow_failure_handling=True,
        on_failure_destination=queue_arn,
    )
    simulated(handler, denied=set())

    # When its errors alarm fires
    result = invoke(alarm_event(ERRORS_ALARM, stream=None, metric="Errors"))

    # Then the cause is the timeout, and the mapping now splits failing batches, caps retries, and sends what
    # still fails to the queue
    assert plan_of(only(aws.audit_rows(STREAM)))["diagnosis"]["cause"] == "function-timeout"
    step = only(result["steps"])
    assert (step["action"], step["outcome"]) == ("tune-event-source", "applied")
    mapping = aws.mapping(uuid)
    assert mapping["BisectBatchOnFunctionError"] is True
    assert mapping["MaximumRetryAttempts"] == 2
    assert mapping["DestinationConfig"] == {"OnFailure": {"Destination": queue_arn}}
    # And the e-mail also says how to give the function time (a person's decision)
    assert (
        "aws lambda update-function-configuration --function-name orders-processor --timeout 120"
        in (only(aws.emails())["Message"])
    )


def test_failure_handling_is_only_shown_while_the_policy_does_not_allow_it(aws, handler, invoke, api_calls):
    # Given the same timing-out consumer under the default policy (failure handling not allowed), in enforce
    uuid = failing_consumer(aws, "enforce", errors=[3.0] * 10, duration_ms=59_900)
    simulated(handler, denied=set())

    # When its errors alarm fires
    result = invoke(alarm_event(ERRORS_ALARM, stream=None, metric="Errors"))

    # Then the step is blocked by the policy, and the mapping is untouched
    step = only(result["steps"])
    assert step["outcome"] == "blocked"
    assert "failure-handling-allowed: actions.tune_event_source.allow_failure_handling is false" in step["detail"]
    assert "UpdateEventSourceMapping" not in api_calls.operations("lambda")
    assert aws.mapping(uuid).get("BisectBatchOnFunctionError", False) is False
