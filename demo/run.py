"""The local demo: the real CDK app deployed into an emulator, then two incidents, reported plainly.

Steps: start moto's server -> `cdk bootstrap` -> create a stream and its consumer -> `cdk deploy` the
stack with a dry-run policy -> incident 1 (consumer falling behind) -> switch the policy to enforce and
`cdk deploy` again -> incident 2 (producers throttled) -> report.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import io
import json
import os
import shutil
import subprocess
import sys
import time
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TextIO

import boto3
from moto.events.models import EventPattern
from remediator.clients.audit import DynamoAuditLog
from remediator.core.alarm import DEFAULT_ALARM_PREFIX, alarm_name
from remediator.core.render import table
from remediator.policy_files import load_policies

from demo.emulator import Emulator
from demo.plot import utilisation_plot

ROOT = Path(__file__).resolve().parents[1]
# Where the demo writes its policies, CDK outputs and logs (tests point it at a temporary directory).
WORK = Path(os.environ.get("KINESIS_REMEDIATOR_DEMO_DIR", ROOT / ".demo")).resolve()
CDK = ROOT / "node_modules" / ".bin" / "cdk"
ACCOUNT, REGION = "123456789012", "us-east-1"
STREAM = "demo-orders"
CONSUMER = "demo-orders-consumer"
STACK = "KinesisRemediator"
START_SHARDS = 2
# Producers write 1.9 MB/s into 2 shards (1 MB/s each): 95 % of capacity, saturated from 80 %.
BYTES_PER_SECOND = 1_900_000
RECORDS_PER_SECOND = 950

POLICY = """\
version: 1
streams:
  - name: {stream}
    mode: {mode}
    notify:
      emails: [sre-oncall@example.com]
    consumers:
      - function: {consumer}
    detectors:
      iterator_age: {{threshold_ms: 60000, evaluation_periods: 5, datapoints_to_alarm: 3}}
      write_throttling: {{threshold_records: 1, evaluation_periods: 5, datapoints_to_alarm: 2}}
    actions:
      reshard: {{min_shards: 1, max_shards: 8, cooldown_minutes: 30, daily_budget: 4}}
"""

EMULATOR_LIMITS = """\
What this demo shows, and what the emulator (moto) cannot:
  - Real: the CDK app is synthesized (cdk-nag included), bootstrapped and deployed with the pinned
    CDK CLI; the remediator runs the deployed function's handler with the deployed configuration,
    against the deployed tables, topic, parameters and alarms.
  - Not real: CloudWatch does not evaluate alarms here, so the demo pushes metrics and sets the alarm
    state itself; EventBridge does not invoke Lambda, so the demo checks the event against the deployed
    rule's pattern and calls the handler in-process; SNS sends no e-mail, so the demo reads the e-mails
    from a queue it subscribed to the topic; moto applies UpdateShardCount at once and enforces none of
    AWS's limits (our code enforces them, and the tests prove it).
"""


# How the alarm inventory shows CloudWatch's ComparisonOperator.
COMPARISONS = {
    "GreaterThanOrEqualToThreshold": ">=",
    "GreaterThanThreshold": ">",
    "LessThanThreshold": "<",
    "LessThanOrEqualToThreshold": "<=",
}


class DemoFailed(Exception):
    pass


class Progress:
    def __init__(self, total: int, out: TextIO) -> None:
        self.total, self.number, self.out = total, 0, out

    @contextlib.contextmanager
    def step(self, text: str) -> Iterator[None]:
        self.number += 1
        self.out.write(f"[{self.number}/{self.total}] {text} ... ")
        self.out.flush()
        started = time.monotonic()
        try:
            yield
        except BaseException:
            self.out.write("FAILED\n")
            raise
        self.out.write(f"done ({time.monotonic() - started:.1f} s)\n")
        self.out.flush()


@dataclass
class Scenario:
    title: str
    alarm: str
    mode: str
    shards_before: int
    shards_after: int
    result: dict[str, Any]
    rule_matched: bool
    email_subject: str
    email_body: str


class DemoContext:
    """What the handler reads from a Lambda context."""

    def __init__(self, function_name: str) -> None:
        self.function_name = function_name
        self.memory_limit_in_mb = 256
        self.invoked_function_arn = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{function_name}"
        self.aws_request_id = f"demo-{time.time_ns()}"

    @staticmethod
    def get_remaining_time_in_millis() -> int:
        return 60_000


class Demo:
    def __init__(self, emulator: Emulator, out: TextIO) -> None:
        self.emulator = emulator
        self.out = out
        self.logs = WORK / "logs"
        self.handler_log = (self.logs / "remediator.log").open("w", encoding="utf-8")
        self.outputs: dict[str, str] = {}
        self.mailbox_url = ""

    # -- AWS helpers --------------------------------------------------------------------------------
    def client(self, service: str) -> Any:
        return boto3.client(service, region_name=REGION, endpoint_url=self.emulator.endpoint)  # type: ignore[call-overload]

    def cdk(self, name: str, *args: str) -> None:
        env = (
            os.environ
            | self.emulator.environment()
            | {
                "CDK_DISABLE_CLI_TELEMETRY": "true",
                "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20",
                "NODE_NO_WARNINGS": "1",
                "CI": "true",
            }
        )
        log = self.logs / f"{name}.log"
        # Its own cloud assembly: the CLI locks cdk.out, which a developer's synth may be using.
        command = [str(CDK), *args, "--output", str(WORK / "cdk.out")]
        with log.open("w", encoding="utf-8") as handle:
            completed = subprocess.run(command, cwd=ROOT, env=env, stdout=handle, stderr=subprocess.STDOUT, check=False)
        if completed.returncode != 0:
            tail = "\n".join(log.read_text(encoding="utf-8").splitlines()[-25:])
            raise DemoFailed(f"`cdk {' '.join(args)}` failed (exit {completed.returncode}); see {log}:\n{tail}")

    def shard_count(self) -> int:
        summary = self.client("kinesis").describe_stream_summary(StreamName=STREAM)["StreamDescriptionSummary"]
        return int(summary["OpenShardCount"])

    # -- steps --------------------------------------------------------------------------------------
    def write_policy(self, mode: str) -> None:
        directory = WORK / "policies"
        directory.mkdir(parents=True, exist_ok=True)
        (directory / "demo.yaml").write_text(
            POLICY.format(stream=STREAM, mode=mode, consumer=CONSUMER), encoding="utf-8"
        )

    def create_stream_and_consumer(self) -> None:
        kinesis = self.client("kinesis")
        kinesis.create_stream(StreamName=STREAM, ShardCount=START_SHARDS)
        kinesis.get_waiter("stream_exists").wait(StreamName=STREAM, WaiterConfig={"Delay": 1, "MaxAttempts": 30})
        iam = self.client("iam")
        role = iam.create_role(
            RoleName=f"{CONSUMER}-role",
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
            archive.writestr("consumer.py", "def handler(event, context):\n    return len(event['Records'])\n")
        lambda_ = self.client("lambda")
        lambda_.create_function(
            FunctionName=CONSUMER,
            Runtime="python3.12",
            Role=role,
            Handler="consumer.handler",
            Code={"ZipFile": code.getvalue()},
        )
        stream_arn = kinesis.describe_stream_summary(StreamName=STREAM)["StreamDescriptionSummary"]["StreamARN"]
        lambda_.create_event_source_mapping(
            EventSourceArn=stream_arn, FunctionName=CONSUMER, StartingPosition="LATEST", BatchSize=100
        )

    def deploy(self, name: str) -> None:
        outputs = WORK / "outputs.json"
        self.cdk(
            name,
            "deploy",
            STACK,
            "--require-approval",
            "never",
            "--method=direct",  # moto's change sets lose stack outputs and cannot update
            "--outputs-file",
            str(outputs),
            "-c",
            f"policyDir={WORK / 'policies'}",
        )
        self.outputs = json.loads(outputs.read_text(encoding="utf-8"))[STACK]

    def subscribe_mailbox(self) -> None:
        """The emulator sends no e-mail: a queue subscribed to the topic receives what the e-mails say."""
        sqs = self.client("sqs")
        self.mailbox_url = sqs.create_queue(QueueName="demo-mailbox")["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=self.mailbox_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        self.client("sns").subscribe(TopicArn=self.outputs["NotificationTopicArn"], Protocol="sqs", Endpoint=arn)

    def read_mailbox(self) -> list[dict[str, str]]:
        messages = self.client("sqs").receive_message(QueueUrl=self.mailbox_url, MaxNumberOfMessages=10)
        received = [json.loads(m["Body"]) for m in messages.get("Messages", [])]
        for message in messages.get("Messages", []):
            self.client("sqs").delete_message(QueueUrl=self.mailbox_url, ReceiptHandle=message["ReceiptHandle"])
        return received

    def push_metrics(self, values: dict[str, float], minutes: int = 10) -> None:
        """Per-minute datapoints for the last `minutes`; traffic ramps up to its peak in the last minutes."""
        now = datetime.now(UTC).replace(second=0, microsecond=0)

        def at(metric: str, value: float, minute: int) -> float:
            if metric not in ("IncomingBytes", "IncomingRecords"):
                return value
            return value * min(1.0, 0.5 + 0.5 * (minutes - minute) / (minutes - 3))

        data = [
            {
                "MetricName": metric,
                "Dimensions": [{"Name": "StreamName", "Value": STREAM}],
                "Timestamp": now - timedelta(minutes=minute),
                "Value": at(metric, value, minute),
            }
            for minute in range(1, minutes + 1)
            for metric, value in values.items()
        ]
        cloudwatch = self.client("cloudwatch")
        for start in range(0, len(data), 20):
            cloudwatch.put_metric_data(Namespace="AWS/Kinesis", MetricData=data[start : start + 20])

    def alarm_event(self, name: str, reason: str) -> dict[str, Any]:
        """Set the alarm to ALARM and build the EventBridge event CloudWatch would send for it."""
        cloudwatch = self.client("cloudwatch")
        cloudwatch.set_alarm_state(AlarmName=name, StateValue="ALARM", StateReason=reason)
        alarm = cloudwatch.describe_alarms(AlarmNames=[name])["MetricAlarms"][0]
        return state_change_event(alarm, reason)

    def rule_matches(self, event: dict[str, Any]) -> bool:
        """moto's server cannot TestEventPattern; its own matcher checks the deployed rule's pattern."""
        rule = self.client("events").describe_rule(Name=self.outputs["AlarmStateChangeRule"])
        return bool(EventPattern.load(rule["EventPattern"]).matches_event(event))  # type: ignore[arg-type]

    def invoke(self, event: dict[str, Any]) -> dict[str, Any]:
        """Run the deployed function's handler here, with the deployed function's environment."""
        name = self.outputs["RemediatorFunctionName"]
        configuration = self.client("lambda").get_function_configuration(FunctionName=name)
        os.environ.update(configuration["Environment"]["Variables"])
        os.environ.update(self.emulator.environment())
        # The handler's logs and metrics go to a file; the report shows what matters.
        with contextlib.redirect_stdout(self.handler_log):
            module = importlib.reload(importlib.import_module("remediator.handler"))  # a fresh cold start
            result: dict[str, Any] = module.lambda_handler(event, DemoContext(name))
        self.handler_log.flush()
        return result

    def play(self, title: str, symptom: str, mode: str, metrics: dict[str, float], reason: str) -> Scenario:
        before = self.shard_count()
        self.push_metrics(metrics)
        name = alarm_name(DEFAULT_ALARM_PREFIX, STREAM, symptom)
        event = self.alarm_event(name, reason)
        matched = self.rule_matches(event)
        if not matched:
            raise DemoFailed(f"the deployed EventBridge rule does not match the state change of {name}")
        result = self.invoke(event)
        mail = self.read_mailbox()
        return Scenario(
            title=title,
            alarm=name,
            mode=mode,
            shards_before=before,
            shards_after=self.shard_count(),
            result=result,
            rule_matched=matched,
            email_subject=mail[0]["Subject"] if mail else "(no e-mail)",
            email_body=mail[0]["Message"] if mail else "",
        )

    def audit_rows(self) -> list[list[str]]:
        audit = DynamoAuditLog(self.client("dynamodb"), self.outputs["AuditTableName"])
        rows = []
        for flat in reversed(audit.recent(STREAM)):  # oldest first, as the incidents happened
            parameters = json.loads(flat.get("parameters", "{}"))
            change = (
                f"{parameters['current_shards']} -> {parameters['target_shards']}"
                if "target_shards" in parameters
                else "-"
            )
            rows.append(
                [
                    flat["at"][11:19],
                    flat.get("symptom", "-"),
                    flat.get("mode", "-"),
                    flat.get("action", "-"),
                    change,
                    flat["outcome"],
                ]
            )
        return rows

    def incoming_bytes(self) -> list[float]:
        """IncomingBytes per minute, oldest first, as CloudWatch holds it for the stream."""
        end = datetime.now(UTC)
        result = self.client("cloudwatch").get_metric_data(
            MetricDataQueries=[
                {
                    "Id": "bytes",
                    "MetricStat": {
                        "Metric": {
                            "Namespace": "AWS/Kinesis",
                            "MetricName": "IncomingBytes",
                            "Dimensions": [{"Name": "StreamName", "Value": STREAM}],
                        },
                        "Period": 60,
                        "Stat": "Sum",
                    },
                }
            ],
            StartTime=end - timedelta(minutes=15),
            EndTime=end,
            ScanBy="TimestampAscending",
        )
        return [float(v) for v in result["MetricDataResults"][0]["Values"]]

    def inventory(self) -> str:
        alarms = self.client("cloudwatch").describe_alarms(AlarmNamePrefix=DEFAULT_ALARM_PREFIX)["MetricAlarms"]
        return alarm_inventory(alarms)


def alarm_inventory(alarms: list[dict[str, Any]]) -> str:
    """The deployed alarms (as DescribeAlarms returns them), one line each: single-metric or metric math."""

    def watched(alarm: dict[str, Any]) -> str:
        if alarm.get("MetricName"):
            return f"{alarm['MetricName']} {alarm['Statistic']}"
        expression = next((q["Expression"] for q in alarm.get("Metrics", []) if q.get("Expression")), "?")
        return f"metric math: {expression}"

    rows = [
        [
            a["AlarmName"],
            watched(a),
            f"{COMPARISONS.get(a['ComparisonOperator'], a['ComparisonOperator'])} {a['Threshold']:g}",
            f"{a.get('DatapointsToAlarm', a['EvaluationPeriods'])} of {a['EvaluationPeriods']} min",
        ]
        for a in alarms
    ]
    return table(["alarm", "metric", "threshold", "breaching"], rows)


def _metric_queries(alarm: dict[str, Any]) -> list[dict[str, Any]]:
    """An alarm's metrics as the state-change event lists them: its one metric, or its metric-math queries."""

    def stat(metric: dict[str, Any], period: int, statistic: str) -> dict[str, Any]:
        return {
            "metric": {
                "namespace": metric["Namespace"],
                "name": metric["MetricName"],
                "dimensions": {d["Name"]: d["Value"] for d in metric.get("Dimensions", [])},
            },
            "period": period,
            "stat": statistic,
        }

    if not alarm.get("Metrics"):
        return [{"id": "m1", "metricStat": stat(alarm, alarm["Period"], alarm["Statistic"]), "returnData": True}]
    queries: list[dict[str, Any]] = []
    for query in alarm["Metrics"]:
        entry: dict[str, Any] = {"id": query["Id"], "returnData": query.get("ReturnData", True)}
        if query.get("Expression"):
            entry |= {"expression": query["Expression"], "label": query.get("Label", "")}
        else:
            metric_stat = query["MetricStat"]
            entry["metricStat"] = stat(metric_stat["Metric"], metric_stat["Period"], metric_stat["Stat"])
        queries.append(entry)
    return queries


def state_change_event(alarm: dict[str, Any], reason: str) -> dict[str, Any]:
    """The EventBridge event CloudWatch sends when `alarm` (as DescribeAlarms returns it) goes into ALARM."""
    stamp = alarm["StateUpdatedTimestamp"].astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "+0000"
    return {
        "version": "0",
        "id": f"demo-{time.time_ns()}",
        "detail-type": "CloudWatch Alarm State Change",
        "source": "aws.cloudwatch",
        "account": ACCOUNT,
        "time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": REGION,
        "resources": [alarm["AlarmArn"]],
        "detail": {
            "alarmName": alarm["AlarmName"],
            "state": {"value": "ALARM", "reason": reason, "timestamp": stamp},
            "previousState": {"value": "OK", "reason": "", "timestamp": stamp},
            "configuration": {"description": alarm.get("AlarmDescription", ""), "metrics": _metric_queries(alarm)},
        },
    }


def _report(demo: Demo, scenarios: list[Scenario], out: TextIO) -> None:
    write = out.write
    write("\n" + "=" * 100 + "\nReport\n" + "=" * 100 + "\n\n")
    rows = [
        [
            s.title,
            s.mode,
            str(s.shards_before),
            str(s.shards_after),
            s.result["status"],
            "yes" if s.rule_matched else "no",
        ]
        for s in scenarios
    ]
    write(table(["incident", "mode", "shards before", "shards after", "outcome", "rule matched"], rows) + "\n\n")
    for scenario in scenarios:
        write(f"--- E-mail for '{scenario.title}' " + "-" * 40 + "\n")
        write(f"Subject: {scenario.email_subject}\n\n{scenario.email_body}\n\n")
    enforced = scenarios[-1]
    capacity = load_policies([WORK / "policies"]).streams[STREAM].capacity
    picture = utilisation_plot(
        WORK / "utilisation.png",
        stream=STREAM,
        bytes_per_minute=demo.incoming_bytes(),
        shards_before=enforced.shards_before,
        shards_after=enforced.shards_after,
        saturated_at=capacity.saturated_at,
        target=capacity.target_utilisation,
    )
    write(f"--- Write utilisation before and after the reshard: {picture}\n\n")
    write("--- Audit table (newest last) " + "-" * 40 + "\n")
    write(table(["time (UTC)", "symptom", "mode", "action", "shards", "outcome"], demo.audit_rows()) + "\n\n")
    write(EMULATOR_LIMITS)


def run(out: TextIO) -> int:
    if not CDK.exists():
        raise DemoFailed(f"{CDK} is missing: run `make demo`, which installs the pinned CDK CLI first")
    shutil.rmtree(WORK, ignore_errors=True)
    (WORK / "logs").mkdir(parents=True)
    out.write("Kinesis Remediator demo: the real stack in a local AWS emulator, two incidents.\n\n")
    progress = Progress(total=8, out=out)
    with Emulator() as emulator:
        # This process talks to the emulator only: fake credentials, local endpoint.
        os.environ.update(emulator.environment())
        os.environ.pop("AWS_PROFILE", None)
        demo = Demo(emulator, out)
        try:
            with progress.step(f"Starting the AWS emulator (moto) on {emulator.endpoint}"):
                pass
            with progress.step("Bootstrapping the CDK toolkit in the emulator (cdk bootstrap)"):
                demo.cdk("bootstrap", "bootstrap", f"aws://{ACCOUNT}/{REGION}")
            with progress.step(f"Creating stream '{STREAM}' ({START_SHARDS} shards) and its consumer '{CONSUMER}'"):
                demo.create_stream_and_consumer()
            with progress.step("Deploying Kinesis Remediator with a new, dry-run policy (cdk deploy)"):
                demo.write_policy("dry-run")
                demo.deploy("deploy-dry-run")
                demo.subscribe_mailbox()
            out.write("\nDeployed alarms:\n" + demo.inventory() + "\n\n")
            scenarios = []
            with progress.step("Incident 1: consumers fall behind while producers saturate the shards"):
                scenarios.append(
                    demo.play(
                        "consumer falling behind",
                        "iterator-age",
                        "dry-run",
                        {
                            "IncomingBytes": BYTES_PER_SECOND * 60,
                            "IncomingRecords": RECORDS_PER_SECOND * 60,
                            "GetRecords.IteratorAgeMilliseconds": 900_000,
                        },
                        "Threshold Crossed: 3 datapoints were greater than or equal to the threshold (60000.0).",
                    )
                )
            with progress.step("The team reads the dry-run e-mail and switches the stream to enforce (cdk deploy)"):
                demo.write_policy("enforce")
                demo.deploy("deploy-enforce")
            with progress.step("Incident 2: producers throttled"):
                scenarios.append(
                    demo.play(
                        "producers throttled",
                        "write-throttling",
                        "enforce",
                        {"WriteProvisionedThroughputExceeded": 120},
                        "Threshold Crossed: 2 datapoints were greater than or equal to the threshold (1.0).",
                    )
                )
            with progress.step("Reading the audit table and the e-mails"):
                pass
            _report(demo, scenarios, out)
        finally:
            demo.handler_log.close()
    out.write(f"\nLogs (CDK CLI, remediator): {WORK / 'logs'}\nThe emulator has stopped; nothing is left running.\n")
    return 0


def main(argv: list[str] | None = None) -> int:
    argparse.ArgumentParser(prog="python -m demo", description=__doc__).parse_args(argv)
    try:
        return run(sys.stdout)
    except DemoFailed as exc:
        print(f"\nDemo failed: {exc}", file=sys.stderr)
        return 1
