"""Builders for the consumer-side integration tests: a Lambda consumer with its mapping on the stream (moto),
metric series on any dimensions, and the read-throttling evidence."""

from __future__ import annotations

import io
import zipfile
from datetime import UTC, datetime, timedelta
from typing import Any

from tests.integration.conftest import AwsEnv
from tests.integration.support import STREAM, alarm

READ_ALARM = alarm(STREAM, "read-throttling")
READ_METRIC = "ReadProvisionedThroughputExceeded"


def lambda_consumer(aws: AwsEnv, function: str, *, stream: str = STREAM, batch_size: int = 100) -> str:
    """A Lambda function with an Enabled mapping on the stream (moto); returns the mapping's UUID."""
    iam = aws.client("iam")
    try:
        role = iam.get_role(RoleName="consumer")["Role"]["Arn"]
    except iam.exceptions.NoSuchEntityException:
        role = iam.create_role(RoleName="consumer", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    package = io.BytesIO()
    with zipfile.ZipFile(package, "w") as archive:
        archive.writestr("handler.py", "def handler(event, context):\n    return None\n")
    lam = aws.client("lambda")
    lam.create_function(
        FunctionName=function,
        Runtime="python3.12",
        Role=role,
        Handler="handler.handler",
        Code={"ZipFile": package.getvalue()},
        Timeout=60,
    )
    stream_arn = aws.client("kinesis").describe_stream_summary(StreamName=stream)["StreamDescriptionSummary"][
        "StreamARN"
    ]
    mapping = lam.create_event_source_mapping(
        FunctionName=function, EventSourceArn=stream_arn, StartingPosition="LATEST", BatchSize=batch_size
    )
    return str(mapping["UUID"])


def put_metric(aws: AwsEnv, name: str, value: float, *, minutes: int = 10, **dimensions: str) -> None:
    """One datapoint a minute for the last `minutes` minutes, on any dimensions (AWS/Kinesis).

    The dimensions go in sorted by name, as the product queries them: moto 5.2.5 matches a query's dimensions
    by sorting both lists with a broken Dimension.__lt__ (it compares a value with a name), so with two
    dimensions its match depends on their order, where CloudWatch's does not."""
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    data: list[dict[str, Any]] = [
        {
            "MetricName": name,
            "Dimensions": [{"Name": k, "Value": v} for k, v in sorted(dimensions.items())],
            "Timestamp": now - timedelta(minutes=minute),
            "Value": value,
        }
        for minute in range(1, minutes + 1)
    ]
    cloudwatch = aws.client("cloudwatch")
    for start in range(0, len(data), 20):
        cloudwatch.put_metric_data(Namespace="AWS/Kinesis", MetricData=data[start : start + 20])


def read_throttled(
    aws: AwsEnv, *, throttled: float = 80, read_bytes_per_second: float = 400_000, iterator_age_ms: float = 5_000
) -> None:
    """Read-throttling evidence for the stream: throttled GetRecords calls a minute, reads, and where readers stand."""
    aws.push_traffic(STREAM, bytes_per_second=200_000, records_per_second=100)
    put_metric(aws, READ_METRIC, throttled, StreamName=STREAM)
    put_metric(aws, "GetRecords.Bytes", read_bytes_per_second * 60, StreamName=STREAM)
    put_metric(aws, "GetRecords.IteratorAgeMilliseconds", iterator_age_ms, StreamName=STREAM)


def efo_policy(mode: str, consumers: list[dict[str, Any]], **block: Any) -> dict[str, Any]:
    """A raw stream policy with these consumers and (optionally) an enhanced_fan_out block."""
    actions: dict[str, Any] = {"reshard": {"max_shards": 16}}
    if block:
        actions["enhanced_fan_out"] = block
    return {"name": STREAM, "mode": mode, "consumers": consumers, "actions": actions}
