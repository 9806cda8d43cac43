"""`kinesis-remediator plan` against a real (emulated) endpoint: read-only, JSON and table output."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest

from demo.emulator import Emulator

ROOT = Path(__file__).resolve().parents[2]
CLI = ROOT / ".venv" / "bin" / "kinesis-remediator"

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("e2e")]

POLICY = """\
version: 1
streams:
  - name: clicks
    mode: enforce
    actions:
      reshard: {max_shards: 3}
"""


@pytest.fixture(scope="module")
def emulator() -> Iterator[Emulator]:
    with Emulator() as running:
        yield running


@pytest.fixture(scope="module")
def saturated_stream(emulator: Emulator) -> str:
    def client(service: str) -> Any:
        return boto3.client(  # type: ignore[call-overload]
            service,
            region_name="us-east-1",
            endpoint_url=emulator.endpoint,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )

    client("kinesis").create_stream(StreamName="clicks", ShardCount=1)
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    data = [
        {
            "MetricName": name,
            "Dimensions": [{"Name": "StreamName", "Value": "clicks"}],
            "Timestamp": now - timedelta(minutes=m),
            "Value": value,
        }
        for m in range(1, 6)
        for name, value in (
            ("IncomingBytes", 0.95e6 * 60),
            ("IncomingRecords", 500 * 60),
            ("WriteProvisionedThroughputExceeded", 30),
        )
    ]
    client("cloudwatch").put_metric_data(Namespace="AWS/Kinesis", MetricData=data)
    return "clicks"


def run_cli(emulator: Emulator, policy_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")} | {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_REGION": "us-east-1",
    }
    return subprocess.run(
        [str(CLI), "plan", "--endpoint-url", emulator.endpoint, "--policy-dir", str(policy_dir), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture
def policy_dir(tmp_path: Path) -> Path:
    (tmp_path / "clicks.yaml").write_text(POLICY)
    return tmp_path


def test_plan_json_names_the_action_its_command_and_guardrails(
    emulator: Emulator, saturated_stream: str, policy_dir: Path
) -> None:
    # When planning for a saturated, throttled 1-shard stream whose policy allows at most 3 shards
    completed = run_cli(emulator, policy_dir, "--stream", saturated_stream, "--symptom", "write-throttling", "--json")
    # Then one JSON object describes the reshard it would make now: 1 -> 2 (AWS allows 2x per call)
    assert completed.returncode == 0, completed.stderr
    plan = json.loads(completed.stdout)
    assert (plan["stream"], plan["symptom"], plan["mode"]) == ("clicks", "write-throttling", "enforce")
    assert plan["diagnosis"]["cause"] == "shards-saturated"
    (action,) = plan["actions"]
    assert action["parameters"] == {"current_shards": 1, "desired_shards": 2, "target_shards": 2}
    assert action["summary"] == "reshard 1 -> 2 shards"
    assert action["cli_command"] == (
        "aws kinesis update-shard-count --stream-arn arn:aws:kinesis:us-east-1:123456789012:stream/clicks "
        "--target-shard-count 2 --scaling-type UNIFORM_SCALING"
    )
    assert all(g["passed"] for g in action["guardrails"])
    assert plan["blocked"] == []


def test_plan_is_read_only(emulator: Emulator, saturated_stream: str, policy_dir: Path) -> None:
    run_cli(emulator, policy_dir, "--stream", saturated_stream, "--symptom", "write-throttling")
    summary = boto3.client(
        "kinesis",
        region_name="us-east-1",
        endpoint_url=emulator.endpoint,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    ).describe_stream_summary(StreamName=saturated_stream)["StreamDescriptionSummary"]
    assert summary["OpenShardCount"] == 1


def test_plan_table_output_for_people(emulator: Emulator, saturated_stream: str, policy_dir: Path) -> None:
    completed = run_cli(emulator, policy_dir, "--stream", saturated_stream, "--symptom", "write-throttling")
    assert completed.returncode == 0, completed.stderr
    assert "1. reshard 1 -> 2 shards [allowed]" in completed.stdout
    assert "peak write utilisation     95 %" in completed.stdout
    assert "Read-only: nothing was changed." in completed.stdout


def test_plan_refuses_a_stream_in_no_policy(emulator: Emulator, policy_dir: Path) -> None:
    completed = run_cli(emulator, policy_dir, "--stream", "orders", "--symptom", "iterator-age")
    assert completed.returncode == 1
    assert "Stream 'orders' is in no policy under" in completed.stderr
    assert completed.stdout == ""


def test_plan_reports_a_missing_stream_clearly(emulator: Emulator, tmp_path: Path) -> None:
    (tmp_path / "ghost.yaml").write_text(POLICY.replace("clicks", "ghost"))
    completed = run_cli(emulator, tmp_path, "--stream", "ghost", "--symptom", "write-throttling")
    # An AWS error: exit 3 (2 is argparse's usage error), naming the stream it could not read
    assert completed.returncode == 3
    assert "Cannot read stream 'ghost' and its metrics from AWS:" in completed.stderr
    assert "ResourceNotFoundException" in completed.stderr


def test_history_reads_the_audit_trail_from_the_emulator(emulator: Emulator) -> None:
    # Given an audit table in the emulator with a row of 3 hours ago and one of 5 minutes ago
    from remediator.clients.audit import DynamoAuditLog
    from remediator.core.outcome import AuditEntry, OutcomeStatus
    from remediator.core.policy import Mode

    dynamodb = boto3.client(
        "dynamodb",
        region_name="us-east-1",
        endpoint_url=emulator.endpoint,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    dynamodb.create_table(
        TableName="history-audit",
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "S"},
        ],
        BillingMode="PAY_PER_REQUEST",
    )
    audit = DynamoAuditLog(dynamodb, "history-audit")
    now = datetime.now(UTC)
    for minutes, outcome in ((180, OutcomeStatus.APPLIED), (5, OutcomeStatus.BLOCKED)):
        audit.record(
            AuditEntry(
                at=now - timedelta(minutes=minutes),
                stream="clicks",
                alarm_name="kinesis-remediator-clicks/write-throttling",
                symptom="write-throttling",
                mode=Mode.ENFORCE,
                action="reshard",
                parameters={"current_shards": 1, "target_shards": 2},
                outcome=outcome,
                reason=f"{outcome} by the test",
            )
        )
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")} | {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_REGION": "us-east-1",
    }

    # When the installed command asks for the last hour of the stream's history, against the emulator
    arguments = ["--stream", "clicks", "--since", "1h", "--audit-table", "history-audit"]
    completed = subprocess.run(
        [str(CLI), "history", *arguments, "--endpoint-url", emulator.endpoint],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    # Then only the recent row is printed, with its parameters as before -> after
    assert completed.returncode == 0, completed.stderr
    assert "(1 row(s), table history-audit)" in completed.stdout
    assert "current_shards=1, target_shards=2  blocked  blocked by the test" in completed.stdout
    assert "applied by the test" not in completed.stdout
