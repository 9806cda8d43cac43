"""moto-backed AWS for the remediator: the resources the stack would create, made with boto3."""

from __future__ import annotations

import importlib
import io
import json
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from types import ModuleType
from typing import Any

import boto3
import pytest
from moto import mock_aws

from tests.fakes import REGION
from tests.integration.contract import ApiCall, Deployment, StackResources, uncovered

PREFIX = "kinesis-remediator-"
# Follow-through: the Scheduler role the stack creates, and the deployment's schedule name prefix.
SCHEDULER_ROLE = "arn:aws:iam::123456789012:role/remediator-follow-up-scheduler"
SCHEDULE_PREFIX = "kr-ft-test-"


@dataclass
class AwsEnv:
    topic_arn: str
    mailbox_url: str
    audit_table: str
    kill_switch: str
    policy_prefix: str

    def client(self, service: str) -> Any:
        return boto3.client(service, region_name=REGION)

    def create_stream(self, name: str, shards: int, on_demand: bool = False) -> None:
        kinesis = self.client("kinesis")
        if on_demand:
            kinesis.create_stream(StreamName=name, StreamModeDetails={"StreamMode": "ON_DEMAND"})
        else:
            kinesis.create_stream(StreamName=name, ShardCount=shards)

    def put_policy(self, policy: dict[str, Any]) -> None:
        self.client("ssm").put_parameter(
            Name=f"{self.policy_prefix}/{policy['name']}",
            Value=json.dumps(policy),
            Type="String",
            Overwrite=True,
        )

    def set_kill_switch(self, value: str) -> None:
        self.client("ssm").put_parameter(Name=self.kill_switch, Value=value, Type="String", Overwrite=True)

    def push_traffic(
        self,
        stream: str,
        *,
        bytes_per_second: float,
        records_per_second: float,
        throttled: float = 0,
        iterator_age_ms: float | None = None,
        minutes: int = 10,
    ) -> None:
        now = datetime.now(UTC).replace(second=0, microsecond=0)
        data = []
        for minute in range(1, minutes + 1):
            at = now - timedelta(minutes=minute)
            values = {
                "IncomingBytes": bytes_per_second * 60,
                "IncomingRecords": records_per_second * 60,
                "WriteProvisionedThroughputExceeded": throttled,
            }
            if iterator_age_ms is not None:
                values["GetRecords.IteratorAgeMilliseconds"] = iterator_age_ms
            data += [
                {
                    "MetricName": name,
                    "Dimensions": [{"Name": "StreamName", "Value": stream}],
                    "Timestamp": at,
                    "Value": value,
                }
                for name, value in values.items()
            ]
        cloudwatch = self.client("cloudwatch")
        for start in range(0, len(data), 20):
            cloudwatch.put_metric_data(Namespace="AWS/Kinesis", MetricData=data[start : start + 20])

    def emails(self) -> list[dict[str, str]]:
        sqs = self.client("sqs")
        messages = sqs.receive_message(QueueUrl=self.mailbox_url, MaxNumberOfMessages=10).get("Messages", [])
        return [json.loads(m["Body"]) for m in messages]

    def audit_rows(self, stream: str) -> list[dict[str, Any]]:
        items = self.client("dynamodb").query(
            TableName=self.audit_table,
            KeyConditionExpression="pk = :pk",
            ExpressionAttributeValues={":pk": {"S": f"STREAM#{stream}"}},
        )["Items"]
        return [{k: next(iter(v.values())) for k, v in item.items()} for item in items]

    def shard_count(self, stream: str) -> int:
        summary = self.client("kinesis").describe_stream_summary(StreamName=stream)
        return int(summary["StreamDescriptionSummary"]["OpenShardCount"])

    # --- Added helpers ---------------------------------------------------------------------------------

    def put_raw_policy(self, stream: str, value: str) -> None:
        """Store any text as a stream's policy parameter (for policies that do not validate)."""
        self.client("ssm").put_parameter(
            Name=f"{self.policy_prefix}/{stream}", Value=value, Type="String", Overwrite=True
        )

    def delete_kill_switch(self) -> None:
        self.client("ssm").delete_parameter(Name=self.kill_switch)

    def seed_audit(
        self,
        stream: str,
        at: datetime,
        outcome: str,
        *,
        action: str = "reshard",
        parameters: dict[str, Any] | None = None,
    ) -> None:
        """Write an audit row in the product's own format (DynamoAuditLog.record)."""
        from remediator.clients.audit import DynamoAuditLog
        from remediator.core.outcome import AuditEntry, OutcomeStatus
        from remediator.core.policy import Mode

        DynamoAuditLog(self.client("dynamodb"), self.audit_table).record(
            AuditEntry(
                at=at,
                stream=stream,
                alarm_name=f"{PREFIX}{stream}/write-throttling",
                symptom="write-throttling",
                mode=Mode.ENFORCE,
                action=action,
                outcome=OutcomeStatus(outcome),
                reason="seeded by the test",
                parameters={"current_shards": 2, "target_shards": 4} if parameters is None else parameters,
            )
        )

    def create_table(self, name: str, *, read: int = 10, write: int = 10, on_demand: bool = False) -> None:
        """A DynamoDB table shaped like a KCL lease table (hash key leaseKey), provisioned or on-demand."""
        capacity: dict[str, Any] = (
            {"BillingMode": "PAY_PER_REQUEST"}
            if on_demand
            else {"ProvisionedThroughput": {"ReadCapacityUnits": read, "WriteCapacityUnits": write}}
        )
        self.client("dynamodb").create_table(
            TableName=name,
            KeySchema=[{"AttributeName": "leaseKey", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "leaseKey", "AttributeType": "S"}],
            **capacity,
        )

    def table(self, name: str) -> dict[str, Any]:
        table: dict[str, Any] = self.client("dynamodb").describe_table(TableName=name)["Table"]
        return table

    def put_metric(
        self, namespace: str, metric: str, dimensions: dict[str, str], value: float, minutes: int = 10
    ) -> None:
        """One datapoint a minute for the last `minutes` minutes, in any namespace (AWS/DynamoDB, a KCL app's)."""
        now = datetime.now(UTC).replace(second=0, microsecond=0)
        data = [
            {
                "MetricName": metric,
                "Dimensions": [{"Name": k, "Value": v} for k, v in dimensions.items()],
                "Timestamp": now - timedelta(minutes=minute),
                "Value": value,
            }
            for minute in range(1, minutes + 1)
        ]
        self.client("cloudwatch").put_metric_data(Namespace=namespace, MetricData=data)

    def put_series(self, stream: str, metric: str, values_oldest_first: list[float]) -> datetime:
        """One datapoint a minute, the newest a minute before `now` (truncated to the minute); returns now."""
        now = datetime.now(UTC).replace(second=0, microsecond=0)
        count = len(values_oldest_first)
        data = [
            {
                "MetricName": metric,
                "Dimensions": [{"Name": "StreamName", "Value": stream}],
                "Timestamp": now - timedelta(minutes=count - index),
                "Value": value,
            }
            for index, value in enumerate(values_oldest_first)
        ]
        cloudwatch = self.client("cloudwatch")
        for start in range(0, len(data), 20):
            cloudwatch.put_metric_data(Namespace="AWS/Kinesis", MetricData=data[start : start + 20])
        return now

    # --- Lambda consumers -------------------------------------------------------------------------------

    def create_consumer(
        self,
        function: str,
        stream: str,
        *,
        enabled: bool = True,
        timeout: int = 60,
        reserved: int | None = None,
        batch_size: int = 100,
    ) -> str:
        """A Lambda consumer of the stream: its execution role, the function, and its event-source mapping (the
        mapping's UUID is returned). moto stores the function without running it."""
        role = self.client("iam").create_role(
            RoleName=f"{function}-role",
            Path="/service-role/",
            AssumeRolePolicyDocument=json.dumps(
                {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Effect": "Allow",
                            "Principal": {"Service": "lambda.amazonaws.com"},
                            "Action": "sts:AssumeRole",
                        }
                    ],
                }
            ),
        )["Role"]["Arn"]
        code = io.BytesIO()
        with zipfile.ZipFile(code, "w") as archive:
            archive.writestr("index.py", "def handler(event, context):\n    return None\n")
        lambda_ = self.client("lambda")
        lambda_.create_function(
            FunctionName=function,
            Runtime="python3.12",
            Role=role,
            Handler="index.handler",
            Code={"ZipFile": code.getvalue()},
            Timeout=timeout,
        )
        if reserved is not None:
            lambda_.put_function_concurrency(FunctionName=function, ReservedConcurrentExecutions=reserved)
        arn = self.client("kinesis").describe_stream_summary(StreamName=stream)["StreamDescriptionSummary"]["StreamARN"]
        mapping = lambda_.create_event_source_mapping(
            EventSourceArn=arn, FunctionName=function, StartingPosition="LATEST", BatchSize=batch_size, Enabled=enabled
        )
        return str(mapping["UUID"])

    def mapping(self, uuid: str) -> dict[str, Any]:
        return dict(self.client("lambda").get_event_source_mapping(UUID=uuid))

    def mapping_functions(self) -> dict[str, str]:
        """Mapping UUID -> its function's ARN, for every mapping moto holds."""
        mappings = self.client("lambda").list_event_source_mappings().get("EventSourceMappings", [])
        return {m["UUID"]: m["FunctionArn"] for m in mappings}

    def put_function_series(self, function: str, metric: str, values_oldest_first: list[float]) -> None:
        """An AWS/Lambda metric of one function, one datapoint a minute, the newest a minute before now."""
        now = datetime.now(UTC).replace(second=0, microsecond=0)
        count = len(values_oldest_first)
        data = [
            {
                "MetricName": metric,
                "Dimensions": [{"Name": "FunctionName", "Value": function}],
                "Timestamp": now - timedelta(minutes=count - index),
                "Value": value,
            }
            for index, value in enumerate(values_oldest_first)
        ]
        cloudwatch = self.client("cloudwatch")
        for start in range(0, len(data), 20):
            cloudwatch.put_metric_data(Namespace="AWS/Lambda", MetricData=data[start : start + 20])


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[AwsEnv]:
    with mock_aws():
        dynamodb = boto3.client("dynamodb", region_name=REGION)
        dynamodb.create_table(
            TableName="audit",
            KeySchema=[
                {"AttributeName": "pk", "KeyType": "HASH"},
                {"AttributeName": "sk", "KeyType": "RANGE"},
            ],
            AttributeDefinitions=[
                {"AttributeName": "pk", "AttributeType": "S"},
                {"AttributeName": "sk", "AttributeType": "S"},
            ],
            BillingMode="PAY_PER_REQUEST",
        )
        dynamodb.create_table(
            TableName="idempotency",
            KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        sns = boto3.client("sns", region_name=REGION)
        topic_arn = sns.create_topic(Name="notifications")["TopicArn"]
        sqs = boto3.client("sqs", region_name=REGION)
        mailbox_url = sqs.create_queue(QueueName="mailbox")["QueueUrl"]
        mailbox_arn = sqs.get_queue_attributes(QueueUrl=mailbox_url, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        sns.subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=mailbox_arn)
        env = AwsEnv(
            topic_arn=topic_arn,
            mailbox_url=mailbox_url,
            audit_table="audit",
            kill_switch="/kinesis-remediator/kill-switch",
            policy_prefix="/kinesis-remediator/policies",
        )
        env.set_kill_switch("off")
        for name, value in {
            "AUDIT_TABLE_NAME": "audit",
            "IDEMPOTENCY_TABLE_NAME": "idempotency",
            "NOTIFICATION_TOPIC_ARN": topic_arn,
            "KILL_SWITCH_PARAMETER": env.kill_switch,
            "POLICY_PARAMETER_PREFIX": env.policy_prefix,
            "ALARM_NAME_PREFIX": PREFIX,
            "FOLLOW_UP_SCHEDULER_ROLE_ARN": SCHEDULER_ROLE,
            "FOLLOW_UP_SCHEDULE_PREFIX": SCHEDULE_PREFIX,
        }.items():
            monkeypatch.setenv(name, value)
        yield env


@pytest.fixture
def handler(aws: AwsEnv) -> ModuleType:
    """The handler module imported fresh (cold start) inside the mock, with the environment above."""
    import remediator.handler

    module = importlib.reload(remediator.handler)
    module.dependencies.cache_clear()
    return module


class FakeContext:
    function_name = "kinesis-remediator"
    memory_limit_in_mb = 256
    invoked_function_arn = f"arn:aws:lambda:{REGION}:123456789012:function:kinesis-remediator"
    aws_request_id = "52fdfc07-2182-154f-163f-5f0f9a621d72"

    @staticmethod
    def get_remaining_time_in_millis() -> int:
        # A fresh invocation: the function's whole timeout is left.
        from remediator.core.deployment import FUNCTION_TIMEOUT_SECONDS

        return FUNCTION_TIMEOUT_SECONDS * 1000


@pytest.fixture
def context() -> FakeContext:
    return FakeContext()


# --- Added helpers (do not change the fixtures above) -------------------------------------------------


class ApiRecorder:
    """Every botocore API call made while recording, from any client (the handler's cached ones too)."""

    def __init__(self) -> None:
        self.calls: list[ApiCall] = []
        self._active = False

    @contextmanager
    def recording(self) -> Iterator[ApiRecorder]:
        self._active = True
        try:
            yield self
        finally:
            self._active = False

    def note(self, service: str, operation: str, params: dict[str, Any]) -> None:
        if self._active:
            self.calls.append(ApiCall(service, operation, dict(params)))

    def operations(self, service: str | None = None) -> list[str]:
        return [c.operation for c in self.calls if service is None or c.service == service]

    def params(self, service: str, operation: str) -> list[dict[str, Any]]:
        return [c.params for c in self.calls if c.service == service and c.operation == operation]

    def services(self) -> set[str]:
        return {c.service for c in self.calls}

    def kinesis_mutations(self) -> list[str]:
        """Kinesis calls that are not reads (Describe*, List*, Get*)."""
        return [op for op in self.operations("kinesis") if not op.startswith(("Describe", "List", "Get"))]


@pytest.fixture
def api_calls(monkeypatch: pytest.MonkeyPatch) -> ApiRecorder:
    """Spy on BaseClient._make_api_call: sees every client, including those the handler caches."""
    from botocore.client import BaseClient

    recorder = ApiRecorder()
    original = BaseClient._make_api_call

    def spy(self: Any, operation_name: str, api_params: dict[str, Any]) -> Any:
        recorder.note(self.meta.service_model.service_name, operation_name, api_params)
        return original(self, operation_name, api_params)

    monkeypatch.setattr(BaseClient, "_make_api_call", spy)
    return recorder


@pytest.fixture
def invoke(
    aws: AwsEnv, handler: ModuleType, context: FakeContext, api_calls: ApiRecorder
) -> Iterator[Callable[[Any], dict[str, Any]]]:
    """handler.lambda_handler(event, context), with every AWS call it makes recorded in `api_calls`.

    The IAM contract (tests/integration/contract.py): each invocation's calls are checked against the
    stack's grants for what was deployed when it ran; after the test, any call not covered fails it.
    """
    stack = StackResources.of(handler.settings)
    ssm = aws.client("ssm")
    problems: list[str] = []

    def _invoke(event: Any) -> dict[str, Any]:
        deployment = Deployment.read(ssm, stack.policy_prefix)
        first = len(api_calls.calls)
        try:
            with api_calls.recording():
                result: dict[str, Any] = handler.lambda_handler(event, context)
        finally:
            problems.extend(uncovered(api_calls.calls[first:], deployment, stack, aws.mapping_functions()))
        return result

    yield _invoke
    if problems:
        pytest.fail("AWS calls the stack's IAM does not cover:\n  " + "\n  ".join(problems), pytrace=False)


@pytest.fixture(scope="session", autouse=True)
def _shared_botocore_loader() -> Iterator[None]:
    """Speed only: every boto3 Session (the product makes one per client) shares one botocore data loader,
    so service models are parsed from JSON once per test run instead of once per client."""
    import functools

    import botocore.session

    cached = functools.cache(botocore.session.create_loader)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(botocore.session, "create_loader", cached)
        yield
