"""moto-backed AWS for the remediator: the resources the stack would create, made with boto3."""

from __future__ import annotations

import importlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from types import ModuleType
from typing import Any

import boto3
import pytest
from moto import mock_aws

from tests.fakes import REGION

PREFIX = "kinesis-remediator-"


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
            Name=f"{self.policy_prefix}/{policy['name']}", Value=json.dumps(policy), Type="String", Overwrite=True
        )

    def set_kill_switch(self, value: str) -> None:
        self.client("ssm").put_parameter(Name=self.kill_switch, Value=value, Type="String", Overwrite=True)

    def push_traffic(
        self, stream: str, *, bytes_per_second: float, records_per_second: float, throttled: float = 0,
        iterator_age_ms: float | None = None, minutes: int = 10,
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
                {"MetricName": name, "Dimensions": [{"Name": "StreamName", "Value": stream}],
                 "Timestamp": at, "Value": value}
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


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[AwsEnv]:
    with mock_aws():
        dynamodb = boto3.client("dynamodb", region_name=REGION)
        dynamodb.create_table(
            TableName="audit",
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
            AttributeDefinitions=[
                {"AttributeName": "pk", "AttributeType": "S"}, {"AttributeName": "sk", "AttributeType": "S"}
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
        return 60_000


@pytest.fixture
def context() -> FakeContext:
    return FakeContext()
