"""Contracts over the registries: the IAM check the `invoke` fixture runs can fail, and for every registered
action a dry-run makes zero mutating calls (while the same scenario in enforce does make them)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from remediator.core.registry import REGISTRY

from tests import fakes
from tests.integration.contract import ApiCall, Deployment, StackResources, mutations, uncovered
from tests.integration.support import ARN, SATURATED, STREAM, deployed_alarm_event, only, policy

TOPIC = f"arn:aws:sns:{fakes.REGION}:{fakes.ACCOUNT}:notifications"
STACK = StackResources(
    kill_switch="/kinesis-remediator/kill-switch",
    policy_prefix="/kinesis-remediator/policies",
    audit_table="audit",
    idempotency_table="idempotency",
    topic_arn=TOPIC,
    alarm_prefix="kinesis-remediator-",
    schedule_prefix="kr-ft-test-",
)
NO_RESHARD = {"reshard": {"enabled": False}}


def deployed(**streams: dict[str, Any]) -> Deployment:
    """Valid policies deployed for the given streams (keyword: stream, value: overrides for fakes.policy)."""
    return Deployment(
        parameters=frozenset(f"{STACK.policy_prefix}/{name}" for name in streams),
        # Deployed in enforce unless a test says otherwise: only enforce policies are granted their actions.
        policies={name: fakes.policy(name, **({"mode": "enforce"} | overrides)) for name, overrides in streams.items()},
    )


def call(service: str, operation: str, **params: Any) -> ApiCall:
    return ApiCall(service, operation, params)


def reshard(stream: str) -> ApiCall:
    return call(
        "kinesis",
        "UpdateShardCount",
        StreamARN=fakes.stream_arn(stream),
        TargetShardCount=4,
        ScalingType="UNIFORM_SCALING",
    )


# What the handler calls in an enforced reshard of 'orders' (the suite records these).
ENFORCED_RESHARD = [
    call("dynamodb", "PutItem", TableName="idempotency", Item={}),
    call("ssm", "GetParameter", Name="/kinesis-remediator/policies/orders", WithDecryption=False),
    call("dynamodb", "Query", TableName="audit"),
    call("kinesis", "DescribeStreamSummary", StreamName=STREAM),
    call("cloudwatch", "GetMetricData", MetricDataQueries=[]),
    call("ssm", "GetParameter", Name="/kinesis-remediator/kill-switch", WithDecryption=False),
    reshard(STREAM),
    call("dynamodb", "PutItem", TableName="audit", Item={}),
    call("sns", "Publish", TopicArn=TOPIC, Message="-"),
    call("dynamodb", "UpdateItem", TableName="idempotency", Key={}),
]
# The same without the change: what any trigger for 'orders' calls.
READS_AND_RECORDS = [c for c in ENFORCED_RESHARD if c.operation != "UpdateShardCount"]


def test_the_calls_of_an_enforced_reshard_are_covered():
    # Given the calls of an enforced reshard of 'orders', whose policy enables reshard
    # When they are checked against the stack's grants
    problems = uncovered(ENFORCED_RESHARD, deployed(orders={}), STACK)
    # Then every one is covered
    assert problems == []


def test_the_lease_table_calls_are_covered_on_the_tables_the_policy_names():
    # Given a policy naming two KCL applications, one with its own lease table name
    apps = {"consumers": [{"kcl": "orders-indexer"}, {"kcl": "orders-search", "lease_table": "search-leases"}]}
    lease_calls = [
        call("dynamodb", operation, TableName=table)
        for table in ("orders-indexer", "search-leases")
        for operation in ("DescribeTable", "UpdateTable")
    ]
    # When the symptom's reads and the action's updates of both tables are checked
    problems = uncovered([*READS_AND_RECORDS, *lease_calls], deployed(orders=apps), STACK)
    # Then every one is covered (the table of the second is its lease_table, not its name)
    assert problems == []
    wrong = call("dynamodb", "UpdateTable", TableName="orders-search")
    assert uncovered([wrong], deployed(orders=apps), STACK) == [
        "dynamodb:UpdateTable on arn:aws:dynamodb:us-east-1:123456789012:table/orders-search: "
        "not granted by the deployed policies' permissions"
    ]


def test_reading_the_policy_of_a_stream_with_none_deployed_is_tolerated_but_nothing_else_is():
    # Given no policy is deployed for 'legacy' (AWS denies the read; the handler treats it as no policy)
    read = call("ssm", "GetParameter", Name="/kinesis-remediator/policies/legacy", WithDecryption=False)
    write = call("ssm", "PutParameter", Name="/kinesis-remediator/policies/legacy", Value="{}")
    # When the read and a write of that parameter are checked
    problems = uncovered([read, write], deployed(orders={}), STACK)
    # Then only the write is reported
    assert problems == [
        "ssm:PutParameter on arn:aws:ssm:us-east-1:123456789012:parameter/kinesis-remediator/policies/legacy: "
        "not a deployed policy parameter, and not a read"
    ]


@pytest.mark.parametrize(
    ("calls", "deployment", "reported"),
    [
        pytest.param(
            [reshard(STREAM)],
            deployed(orders=NO_RESHARD, payments=NO_RESHARD),
            [
                f"kinesis:UpdateShardCount on {ARN}: not granted by the deployed policies' permissions",
                f"kinesis:UpdateShardCount on {ARN}: a mutating call that the policy of stream 'orders' does not grant",
            ],
            id="reshard-disabled-in-every-policy",
        ),
        pytest.param(
            [reshard("legacy")],
            deployed(orders={}),
            [
                f"kinesis:UpdateShardCount on {fakes.stream_arn('legacy')}: "
                "a mutating call for stream 'legacy', which has no valid policy"
            ],
            id="account-wide-grant-but-stream-without-policy",
        ),
        pytest.param(
            [reshard(STREAM)],
            deployed(orders=NO_RESHARD, payments={}),
            [f"kinesis:UpdateShardCount on {ARN}: a mutating call that the policy of stream 'orders' does not grant"],
            id="granted-for-another-stream-only",
        ),
        pytest.param(
            [call("kinesis", "DescribeStreamSummary", StreamName="legacy")],
            deployed(orders={}),
            [
                f"kinesis:DescribeStreamSummary on {fakes.stream_arn('legacy')}: "
                "not granted by the deployed policies' permissions"
            ],
            id="describe-a-stream-in-no-policy",
        ),
        pytest.param(
            [call("sqs", "SendMessage", QueueUrl="https://sqs/q", MessageBody="-")],
            deployed(orders={}),
            [
                "sqs:SendMessage: unmapped call (service 'sqs' has no resource mapping); "
                "map it in tests/integration/contract.py"
            ],
            id="unmapped-service",
        ),
        pytest.param(
            [call("cloudwatch", "DescribeAlarms", AlarmNames=["billing-orders/write-throttling"])],
            deployed(orders={}),
            [
                f"cloudwatch:DescribeAlarms on arn:aws:cloudwatch:{fakes.REGION}:{fakes.ACCOUNT}:alarm:"
                "billing-orders/write-throttling: not granted by the deployed policies' permissions"
            ],
            id="describe-an-alarm-that-is-not-ours",
        ),
        pytest.param(
            [call("scheduler", "CreateSchedule", Name="someone-elses", GroupName="default")],
            deployed(orders={}),
            [
                f"scheduler:CreateSchedule on arn:aws:scheduler:{fakes.REGION}:{fakes.ACCOUNT}:schedule/default/"
                "someone-elses: not granted by the deployed policies' permissions"
            ],
            id="a-schedule-outside-the-prefix",
        ),
        pytest.param(
            [call("scheduler", "UpdateSchedule", Name="kr-ft-test-0123-1", GroupName="default")],
            deployed(orders={}),
            [
                f"scheduler:UpdateSchedule on arn:aws:scheduler:{fakes.REGION}:{fakes.ACCOUNT}:schedule/default/"
                "kr-ft-test-0123-1: the stack grants only ['scheduler:CreateSchedule', 'scheduler:DeleteSchedule'] "
                "under its prefix"
            ],
            id="an-operation-not-granted-on-our-schedules",
        ),
        pytest.param(
            [call("cloudwatch", "PutMetricAlarm", AlarmName="x")],
            deployed(orders={}),
            [
                "cloudwatch:PutMetricAlarm: unmapped call (cloudwatch:PutMetricAlarm: only GetMetricData, "
                "DescribeAlarms and DescribeAlarmContributors are mapped); map it in tests/integration/contract.py"
            ],
            id="unmapped-operation",
        ),
        pytest.param(
            [call("kinesis", "ListStreams")],
            deployed(orders={}),
            [
                "kinesis:ListStreams: unmapped call (kinesis:ListStreams: no StreamARN, StreamName or "
                "ConsumerARN); map it in tests/integration/contract.py"
            ],
            id="call-without-a-resource",
        ),
        pytest.param(
            [call("ssm", "GetParameter", Name="/prod/database-password")],
            deployed(orders={}),
            [
                "ssm:GetParameter on arn:aws:ssm:us-east-1:123456789012:parameter/prod/database-password: "
                "not granted by the deployed policies' permissions"
            ],
            id="parameter-of-someone-else",
        ),
        pytest.param(
            [call("ssm", "PutParameter", Name="/kinesis-remediator/kill-switch", Value="off")],
            deployed(orders={}),
            [
                "ssm:PutParameter on arn:aws:ssm:us-east-1:123456789012:parameter/kinesis-remediator/kill-switch: "
                "the stack grants only ['ssm:GetParameter'] on it"
            ],
            id="turning-the-kill-switch-off",
        ),
        pytest.param(
            [call("dynamodb", "DeleteItem", TableName="audit", Key={})],
            deployed(orders={}),
            [
                "dynamodb:DeleteItem on arn:aws:dynamodb:us-east-1:123456789012:table/audit: "
                "the stack grants only ['dynamodb:GetItem', 'dynamodb:PutItem', 'dynamodb:Query'] on it"
            ],
            id="erasing-the-audit",
        ),
        pytest.param(
            [call("dynamodb", "PutItem", TableName="orders-lease", Item={})],
            deployed(orders={}),
            [
                "dynamodb:PutItem on arn:aws:dynamodb:us-east-1:123456789012:table/orders-lease: "
                "not granted by the deployed policies' permissions"
            ],
            id="table-of-someone-else",
        ),
        pytest.param(
            [call("dynamodb", "UpdateTable", TableName="orders-lease", BillingMode="PAY_PER_REQUEST")],
            deployed(orders={"consumers": [{"kcl": "orders-indexer"}]}),
            [
                "dynamodb:UpdateTable on arn:aws:dynamodb:us-east-1:123456789012:table/orders-lease: "
                "not granted by the deployed policies' permissions"
            ],
            id="lease-table-no-policy-names",
        ),
        pytest.param(
            [call("sns", "Publish", TopicArn=TOPIC + "-other", Message="-")],
            deployed(orders={}),
            [f"sns:Publish on {TOPIC}-other: not granted by the deployed policies' permissions"],
            id="another-topic",
        ),
    ],
)
def test_a_call_the_stack_does_not_grant_is_reported(calls, deployment, reported):
    # Given a recorded call the stack's IAM does not cover, next to the covered calls of a real trigger
    # When the calls are checked
    problems = uncovered([*READS_AND_RECORDS, *calls], deployment, STACK)
    # Then exactly that call is reported, with why
    assert problems == reported


def test_mutations_leave_out_the_remediators_own_records_only():
    # Given the calls of an enforced reshard, a write to a lease table and an unmapped write
    lease = call("dynamodb", "PutItem", TableName="orders-lease", Item={})
    unmapped = call("sqs", "SendMessage", QueueUrl="https://sqs/q", MessageBody="-")
    # When the mutating calls are picked out
    changes = mutations([*ENFORCED_RESHARD, lease, unmapped], STACK)
    # Then the reshard and the two foreign writes count; audit, idempotency and the e-mail do not
    assert changes == [reshard(STREAM), lease, unmapped]


# --- Dry-run makes zero mutating calls, for every registered action --------------------------------------


@dataclass(frozen=True)
class Scenario:
    """A registered symptom and the evidence that make it propose an action that every guardrail allows."""

    symptom: str
    shards: int
    traffic: dict[str, float]
    policy: dict[str, Any] = field(default_factory=dict)
    # Anything else the scenario needs in AWS besides the stream (a lease table, its metrics).
    prepare: Callable[[Any], None] | None = None
    # Further AWS/Kinesis stream metrics, one value a minute for the last 10 minutes.
    series: dict[str, float] = field(default_factory=dict)

    def set_up(self, aws: Any, mode: str) -> None:
        aws.create_stream(STREAM, self.shards)
        if self.prepare is not None:
            self.prepare(aws)
        aws.put_policy(self.policy_for(mode))
        aws.push_traffic(STREAM, **self.traffic)
        for metric, value in self.series.items():
            aws.put_series(STREAM, metric, [value] * 10)

    def policy_for(self, mode: str) -> dict[str, Any]:
        return policy(mode=mode) | self.policy

    def alarm_event(self) -> dict[str, Any]:
        """The state change of the symptom's alarm as deployed for the scenario's policy (the remediator acts only
        on alarms the stack made: a qualified name for a per-consumer alarm)."""
        return deployed_alarm_event(self.policy_for("dry-run"), self.symptom)


def throttled_lease_table(aws: Any) -> None:
    """The lease table of KCL application 'orders-indexer' at 10 WCU, 30 throttled writes a minute."""
    aws.create_table("orders-indexer", read=10, write=10)
    aws.put_metric("AWS/DynamoDB", "WriteThrottleEvents", {"TableName": "orders-indexer"}, 30)


def lagging_consumer(aws: Any) -> None:
    """A Lambda consumer of the stream, 10 minutes behind (AWS/Lambda IteratorAge) for the last 10 minutes."""
    aws.create_consumer("orders-processor", STREAM)
    aws.put_function_series("orders-processor", "IteratorAge", [600_000.0] * 10)


# One entry per registered action. Keep it small: the symptom, the stream and the evidence that propose it.
SCENARIOS: dict[str, Scenario] = {
    # Producers throttled on a 2-shard stream at 95 % of its capacity: reshard 2 -> 4.
    "reshard": Scenario(symptom="write-throttling", shards=2, traffic=SATURATED),
    # Consumers 60 % of the way to expiry on a 24 h stream, writes at 10 %: raise retention 24 -> 48 h.
    "raise-retention": Scenario(
        symptom="iterator-age",
        shards=2,
        traffic={"bytes_per_second": 200_000, "records_per_second": 100, "iterator_age_ms": 0.6 * 24 * 3_600_000},
    ),
    # A KCL application's lease table throttled on writes: raise its write capacity 10 -> 20 WCU.
    "lease-table-capacity": Scenario(
        symptom="lease-table-throttling",
        shards=2,
        traffic={"bytes_per_second": 100_000, "records_per_second": 100},
        policy={"consumers": [{"kcl": "orders-indexer"}]},
        prepare=throttled_lease_table,
    ),
    # Two KCL applications throttle each other's reads; the policy names a consumer to register for a reader.
    "enhanced-fan-out": Scenario(
        symptom="read-throttling",
        shards=2,
        traffic={"bytes_per_second": 200_000, "records_per_second": 100},
        policy={
            "consumers": [{"kcl": "orders-kcl"}, {"kcl": "orders-reports"}],
            "actions": {"reshard": {"max_shards": 16}, "enhanced_fan_out": {"consumer_name": "orders-analytics"}},
        },
        series={"ReadProvisionedThroughputExceeded": 80},
    ),
    # A Lambda consumer 10 minutes behind on 2 shards at 5 % of their capacity: its mapping's parallelization 1 -> 2.
    "tune-event-source": Scenario(
        symptom="lambda-consumer-lag",
        shards=2,
        traffic={"bytes_per_second": 100_000, "records_per_second": 100},
        policy={"consumers": [{"function": "orders-processor"}]},
        prepare=lagging_consumer,
    ),
}


# Further paths of an action that change something else (a key "<action>:<path>"): each is proven like the rest.
SCENARIOS["reshard:scale-in"] = Scenario(
    # 8 shards at 2.5 % of their capacity for two calm hours, scale-in opted in: reshard 8 -> 4.
    symptom="under-utilised",
    shards=8,
    traffic={"bytes_per_second": 200_000, "records_per_second": 100, "minutes": 120, "iterator_age_ms": 1_000},
    policy={"actions": {"reshard": {"max_shards": 16, "scale_in": True}}},
)
CASES = sorted([*REGISTRY.actions, *(key for key in SCENARIOS if ":" in key)])


def scenario_for(case: str) -> Scenario:
    action = case.split(":")[0]
    scenario = SCENARIOS.get(case)
    if scenario is None:
        pytest.fail(
            f"action '{action}' has no dry-run scenario: add a symptom and the evidence that make it propose "
            f"'{action}' to SCENARIOS in {__name__.replace('.', '/')}.py, so that its dry-run is proven to make "
            "no mutating call",
            pytrace=False,
        )
    assert scenario.symptom in REGISTRY.symptoms, f"scenario for '{action}': unknown symptom '{scenario.symptom}'"
    return scenario


@pytest.mark.parametrize("case", CASES)
def test_dry_run_of_every_action_makes_no_mutating_call(aws, handler, invoke, api_calls, case):
    # Given a stream in dry-run whose evidence makes a registered symptom propose the action
    scenario, action = scenario_for(case), case.split(":")[0]
    scenario.set_up(aws, mode="dry-run")

    # When the symptom's alarm fires
    result = invoke(scenario.alarm_event())

    # Then the action was planned and passed every guardrail: only the mode kept it from AWS
    assert only([s for s in result["steps"] if s["action"] == action])["outcome"] == "dry-run"
    # And no call changed anything but the remediator's own records: it did audit and e-mail the plan
    assert mutations(api_calls.calls, StackResources.of(handler.settings)) == []
    assert {"dynamodb:PutItem", "sns:Publish"} <= {c.iam_action for c in api_calls.calls}


@pytest.mark.parametrize("case", CASES)
def test_the_same_scenario_in_enforce_makes_the_actions_mutating_calls(aws, handler, invoke, api_calls, case):
    # Given the dry-run scenario of the action, in enforce mode (so the dry-run test above can fail)
    scenario, action = scenario_for(case), case.split(":")[0]
    scenario.set_up(aws, mode="enforce")

    # When the symptom's alarm fires
    result = invoke(scenario.alarm_event())

    # Then the action is applied, and its calls are mutating ones the dry-run check would have caught
    assert only([s for s in result["steps"] if s["action"] == action])["outcome"] == "applied"
    changed = {c.iam_action for c in mutations(api_calls.calls, StackResources.of(handler.settings))}
    assert changed
    assert changed <= REGISTRY.actions[action].iam_actions


# --- Lambda consumers: the mapping's function condition, and IAM's policy simulation --------------------------

CONSUMER = "orders-processor"
WITH_CONSUMER = {"consumers": [{"function": CONSUMER}]}
MAPPING_ARN = f"arn:aws:lambda:{fakes.REGION}:{fakes.ACCOUNT}:event-source-mapping:u-1"


def lambda_function_arn(name: str) -> str:
    return f"arn:aws:lambda:{fakes.REGION}:{fakes.ACCOUNT}:function:{name}"


@pytest.mark.parametrize(
    ("calls", "functions", "reported"),
    [
        pytest.param(
            [
                call("lambda", "GetEventSourceMapping", UUID="u-1"),
                call("lambda", "UpdateEventSourceMapping", UUID="u-1"),
            ],
            {"u-1": lambda_function_arn(CONSUMER)},
            [],
            id="mapping-of-a-consumer-function",
        ),
        pytest.param(
            [call("lambda", "UpdateEventSourceMapping", UUID="u-1", BatchSize=50)],
            {"u-1": lambda_function_arn("payroll")},
            [
                f"lambda:UpdateEventSourceMapping on {MAPPING_ARN}: the mapping's function "
                f"{lambda_function_arn('payroll')} is not in the grant's lambda:FunctionArn condition"
            ],
            id="mapping-of-a-function-no-policy-names",
        ),
        pytest.param(
            # UpdateEventSourceMapping's FunctionName would retarget the mapping: the call is still on the mapping.
            [call("lambda", "UpdateEventSourceMapping", UUID="u-1", FunctionName=CONSUMER)],
            {"u-1": lambda_function_arn("payroll")},
            [
                f"lambda:UpdateEventSourceMapping on {MAPPING_ARN}: the mapping's function "
                f"{lambda_function_arn('payroll')} is not in the grant's lambda:FunctionArn condition"
            ],
            id="a-function-name-does-not-hide-the-mapping",
        ),
        pytest.param(
            [
                call(
                    "iam",
                    "SimulatePrincipalPolicy",
                    PolicySourceArn=f"arn:aws:iam::{fakes.ACCOUNT}:role/service-role/orders-processor-role",
                    ActionNames=["kinesis:GetRecords"],
                )
            ],
            {},
            [],
            id="simulating-a-consumer-role",
        ),
    ],
)
def test_calls_on_consumer_mappings_and_roles_are_checked(calls, functions, reported):
    # Given 'orders' has a Lambda consumer, and the functions the mappings belong to
    # When the calls are checked against the grants (and the mappings' lambda:FunctionArn condition)
    problems = uncovered(calls, deployed(orders=WITH_CONSUMER), STACK, functions)
    # Then only a call for a function no policy names is reported
    assert problems == reported


def test_simulating_a_role_is_not_granted_without_a_lambda_consumer():
    simulate = call("iam", "SimulatePrincipalPolicy", PolicySourceArn=f"arn:aws:iam::{fakes.ACCOUNT}:role/x")
    assert uncovered([simulate], deployed(orders={}), STACK) == [
        f"iam:SimulatePrincipalPolicy on arn:aws:iam::{fakes.ACCOUNT}:role/x: not granted by the deployed "
        "policies' permissions"
    ]
    # And it is a read: it changes nothing
    assert mutations([simulate], STACK) == []
