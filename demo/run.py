"""The local demo: the real CDK app deployed into an emulator, then seven incidents, reported plainly.

Steps: start moto's server -> `cdk bootstrap` -> create two streams and their consumer functions -> `cdk deploy`
the stack with a dry-run policy -> incident 1 (consumers falling behind on saturated shards) -> switch demo-orders
to enforce and `cdk deploy` again -> incident 2 (producers throttled: reshard) -> incident 3 (a Lambda consumer
falling behind on shards that are not saturated: tune its mapping) -> incident 4 (three polling consumers throttle
each other on demo-clicks, still in dry-run: enhanced fan-out planned) -> incident 5 (the oldest unread record at
60 % of the retention: raise it) -> incident 6 (demo-payments needs 4x its shards: 2x now, then follow-through
fires the next 2x, and the alarm clears: the "resolved" e-mail) -> incident 7 (demo-archive writes at 4 % of
its 4 shards for two calm hours: scale in, 4 -> 2) -> report.

Schedules never fire in the emulator: a demo-only Scheduler driver (`Demo.fire_due_schedules`) invokes the deployed
function with each pending follow-through schedule's Input, and says so in the output.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import io
import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
import time
import zipfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TextIO

import boto3
from moto.events.models import EventPattern
from remediator.clients.audit import DynamoAuditLog
from remediator.core.alarm import DEFAULT_ALARM_PREFIX, alarm_name
from remediator.core.deployment import StackOutput
from remediator.core.render import table
from remediator.policy_files import load_policies

from demo.emulator import Emulator
from demo.plot import utilisation_plot

ROOT = Path(__file__).resolve().parents[1]
# Where the demo writes its policies, CDK outputs, logs and report (tests point it at a temporary directory).
WORK = Path(os.environ.get("KINESIS_REMEDIATOR_DEMO_DIR", ROOT / ".demo")).resolve()
CDK = ROOT / "node_modules" / ".bin" / "cdk"
ACCOUNT, REGION = "123456789012", "us-east-1"
STACK = "KinesisRemediator"
START_SHARDS = 2
HOUR_MS = 3_600_000

# demo-orders: one Lambda consumer. Dry-run first, then enforce.
STREAM = "demo-orders"
CONSUMER = "demo-orders-consumer"
# Producers write 1.9 MB/s into 2 shards (1 MB/s each): 95 % of capacity, saturated from 80 %.
BYTES_PER_SECOND = 1_900_000
RECORDS_PER_SECOND = 950

# demo-clicks: three polling consumers (a Lambda function that may move to enhanced fan-out, two KCL
# applications). Its policy stays in dry-run throughout.
CLICKS = "demo-clicks"
CLICKS_CONSUMER = "demo-clicks-consumer"
CLICKS_KCL = ("clicks-sessionizer", "clicks-fraud-scorer")
CLICKS_BYTES_PER_SECOND = 600_000
CLICKS_RECORDS_PER_SECOND = 600

# demo-payments: no consumer of interest; its producers outgrow 2 shards fourfold (incident 6): follow-through.
PAYMENTS = "demo-payments"
# 4.5 MB/s at its peak: 4.5 / 0.6 -> 8 shards, two calls away from 2 (AWS allows at most 2x per call).
PAYMENTS_BYTES_PER_SECOND = 4_500_000
PAYMENTS_RECORDS_PER_SECOND = 1_000

# demo-archive: 4 shards and no registered consumer; its producers write a trickle. Scale-in is opted in.
ARCHIVE = "demo-archive"
ARCHIVE_SHARDS = 4
ARCHIVE_BYTES_PER_SECOND = 150_000
ARCHIVE_RECORDS_PER_SECOND = 150

# The Lambda consumers the demo creates, by stream.
FUNCTIONS: dict[str, tuple[str, ...]] = {STREAM: (CONSUMER,), CLICKS: (CLICKS_CONSUMER,), PAYMENTS: (), ARCHIVE: ()}

POLICY = """\
version: 1
streams:
  - name: {orders}
    mode: {mode}
    notify:
      emails: [sre-oncall@example.com]
    consumers:
      - function: {orders_consumer}
    detectors:
      iterator_age: {{threshold_ms: 60000, retention_share: 0.5, evaluation_periods: 5, datapoints_to_alarm: 3}}
      write_throttling: {{threshold_records: 1, evaluation_periods: 5, datapoints_to_alarm: 2}}
      lambda_consumer_lag: {{threshold_ms: 60000, evaluation_periods: 5, datapoints_to_alarm: 3}}
    actions:
      reshard: {{min_shards: 1, max_shards: 8, cooldown_minutes: 30, daily_budget: 4}}
      tune_event_source: {{max_parallelization_factor: 4, max_batch_size: 1000, cooldown_minutes: 30}}
      raise_retention: {{at_share: 0.5, max_hours: 168, cooldown_minutes: 60}}
  - name: {clicks}
    mode: dry-run
    notify:
      emails: [clicks-team@example.com]
    consumers:
      - function: {clicks_consumer}
        move_to_efo: true
      - kcl: {kcl_first}
      - kcl: {kcl_second}
    detectors:
      read_throttling: {{threshold_calls: 10, evaluation_periods: 5, datapoints_to_alarm: 3}}
    actions:
      reshard: {{min_shards: 1, max_shards: 8}}
      enhanced_fan_out: {{max_consumers: 5, cooldown_minutes: 60, daily_budget: 2}}
  - name: {payments}
    mode: {mode}
    notify:
      emails: [payments-team@example.com]
    detectors:
      write_throttling: {{threshold_records: 1, evaluation_periods: 5, datapoints_to_alarm: 2}}
    actions:
      reshard: {{min_shards: 1, max_shards: 8, cooldown_minutes: 30, daily_budget: 4}}
  - name: {archive}
    mode: {mode}
    notify:
      emails: [data-platform@example.com]
    detectors:
      under_utilised: {{threshold_utilisation: 0.3}}
    actions:
      reshard: {{min_shards: 1, max_shards: 8, scale_in: true, stabilisation_minutes: 60}}
"""

EMULATOR_LIMITS = """\
What this demo shows, and what the emulator (moto) cannot:
  - Real: the CDK app is synthesized (cdk-nag included), bootstrapped and deployed with the pinned
    CDK CLI; the remediator runs the deployed function's handler with the deployed configuration,
    against the deployed tables, topic, parameters and alarms. Every change it makes (shard count,
    event-source mapping, retention) is made in the emulator and read back from it for this report.
  - Not real: CloudWatch does not evaluate alarms here, so the demo pushes metrics and sets the alarm
    state itself; EventBridge does not invoke Lambda, so the demo checks the event against the deployed
    rule's pattern and calls the handler in-process; SNS sends no e-mail, so the demo reads the e-mails
    from a queue it subscribed to the topic; moto applies UpdateShardCount, UpdateEventSourceMapping and
    IncreaseStreamRetentionPeriod at once and enforces none of AWS's limits (our code enforces them, and
    the tests prove it); it does not implement CloudTrail's LookupEvents, so the reshard counts a
    stream's daily scalings from its own audit and says so. The emulator's clock does not move on
    between incidents: every incident sees the traffic pushed just before it (ten minutes; two hours for
    the scale-in), and the cooldowns count real seconds.
  - Follow-through: the remediator creates real one-time EventBridge Scheduler schedules in the emulator,
    but the emulator never fires them. The demo's Scheduler driver (demo only) stands in for Scheduler: it
    invokes the deployed function with each pending schedule's Input right away, not at its due time, and
    keeps the alarm in ALARM meanwhile; the stream is ACTIVE at once because the emulator never shows UPDATING.
"""


# How the alarm inventory shows CloudWatch's ComparisonOperator.
COMPARISONS = {
    "GreaterThanOrEqualToThreshold": ">=",
    "GreaterThanThreshold": ">",
    "LessThanThreshold": "<",
    "LessThanOrEqualToThreshold": "<=",
}

UUID = re.compile(r"\b([0-9a-f]{8})-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b")


def short(text: object) -> str:
    """A table cell: UUIDs cut to their first 8 digits (the e-mails keep them whole)."""
    return UUID.sub(r"\1…", str(text))


def wrapped(rows: list[list[str]], widths: dict[int, int]) -> list[list[str]]:
    """Rows whose long cells (column index -> width) go on over the next lines, the other cells blank there."""
    out = []
    for row in rows:
        lines = [
            textwrap.wrap(cell, widths[i], subsequent_indent="  ", break_long_words=False) or [""]
            if i in widths
            else [cell]
            for i, cell in enumerate(row)
        ]
        out += [[cell[n] if n < len(cell) else "" for cell in lines] for n in range(max(map(len, lines)))]
    return out


class DemoFailed(Exception):
    pass


def run_cdk(
    args: Sequence[str],
    *,
    log: Path,
    environment: Mapping[str, str],
    work: Path,
    context: Mapping[str, str] | None = None,
) -> None:
    """The pinned CDK CLI against the emulator, its output in `log`; DemoFailed with the log's tail if it fails.

    Its own cloud assembly under `work`: the CLI locks cdk.out, which a developer's synth may be using. Its own
    policy too: every cdk command (bootstrap included) runs app.py, which must never read the user's policies/."""
    env = (
        os.environ
        | dict(environment)
        | {
            "CDK_DISABLE_CLI_TELEMETRY": "true",
            "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20",
            "NODE_NO_WARNINGS": "1",
            "CI": "true",
        }
    )
    command = [str(CDK), *args, "--output", str(work / "cdk.out"), "-c", f"policyDir={work / 'policies'}"]
    for key, value in (context or {}).items():
        command += ["-c", f"{key}={value}"]
    with log.open("w", encoding="utf-8") as handle:
        completed = subprocess.run(command, cwd=ROOT, env=env, stdout=handle, stderr=subprocess.STDOUT, check=False)
    if completed.returncode != 0:
        tail = "\n".join(log.read_text(encoding="utf-8").splitlines()[-25:])
        raise DemoFailed(f"`cdk {' '.join(args)}` failed (exit {completed.returncode}); see {log}:\n{tail}")


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


@dataclass(frozen=True)
class Datapoints:
    """Per-minute values of some metrics with the same namespace and dimensions."""

    namespace: str
    dimensions: dict[str, str]
    values: dict[str, float]


@dataclass(frozen=True)
class Incident:
    title: str
    stream: str
    symptom: str
    metrics: tuple[Datapoints, ...]
    reason: str
    qualifier: str = ""
    minutes: int = 10  # of datapoints pushed before the alarm


@dataclass
class ChangeReport:
    """One setting a planned step changes: as planned, and as the emulator holds it before and after."""

    setting: str
    planned_before: Any
    planned_after: Any
    emulator_before: str
    emulator_after: str


@dataclass
class StepReport:
    action: str
    outcome: str
    summary: str
    changes: list[ChangeReport] = field(default_factory=list)


@dataclass
class Scenario:
    number: int
    title: str
    stream: str
    alarm: str
    mode: str
    status: str
    rule_matched: bool
    steps: list[StepReport]
    email_subject: str
    email_body: str
    # The emulator's state of the stream (shards, retention, consumers, mappings) before and after.
    before: dict[str, str]
    after: dict[str, str]
    # Follow-through (incident 6): each follow-up the demo's Scheduler driver fired, as its own scenario; the
    # schedules it found; and the "resolved" e-mail when the alarm cleared.
    follow_ups: list[Scenario] = field(default_factory=list)
    schedules: list[dict[str, str]] = field(default_factory=list)
    resolved_subject: str = ""
    resolved_body: str = ""


class DemoContext:
    """What the handler reads from a Lambda context."""

    def __init__(self, function_name: str) -> None:
        self.function_name = function_name
        self.memory_limit_in_mb = 256
        self.invoked_function_arn = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{function_name}"
        self.aws_request_id = f"demo-{time.time_ns()}"

    @staticmethod
    def get_remaining_time_in_millis() -> int:
        # A fresh invocation: the function's whole timeout is left (a change starts only with enough left).
        from remediator.core.deployment import FUNCTION_TIMEOUT_SECONDS

        return FUNCTION_TIMEOUT_SECONDS * 1000


def kinesis_metrics(stream: str, values: dict[str, float]) -> Datapoints:
    return Datapoints("AWS/Kinesis", {"StreamName": stream}, values)


INCIDENTS = {
    1: Incident(
        title="consumer falling behind",
        stream=STREAM,
        symptom="iterator-age",
        metrics=(
            kinesis_metrics(
                STREAM,
                {
                    "IncomingBytes": BYTES_PER_SECOND * 60,
                    "IncomingRecords": RECORDS_PER_SECOND * 60,
                    "GetRecords.IteratorAgeMilliseconds": 900_000,
                },
            ),
        ),
        reason="Threshold Crossed: 3 datapoints were greater than or equal to the threshold (60000.0).",
    ),
    2: Incident(
        title="producers throttled",
        stream=STREAM,
        symptom="write-throttling",
        metrics=(kinesis_metrics(STREAM, {"WriteProvisionedThroughputExceeded": 120}),),
        reason="Threshold Crossed: 2 datapoints were greater than or equal to the threshold (1.0).",
    ),
    # The same producers (1.9 MB/s) now fill 4 shards to 48 %: the function, not the stream, is the bottleneck.
    3: Incident(
        title="Lambda consumer lagging",
        stream=STREAM,
        symptom="lambda-consumer-lag",
        qualifier=CONSUMER,
        metrics=(Datapoints("AWS/Lambda", {"FunctionName": CONSUMER}, {"IteratorAge": 600_000}),),
        reason="Threshold Crossed: 3 datapoints were greater than or equal to the threshold (60000.0).",
    ),
    4: Incident(
        title="read throttling, 3 pollers",
        stream=CLICKS,
        symptom="read-throttling",
        metrics=(
            kinesis_metrics(
                CLICKS,
                {
                    "IncomingBytes": CLICKS_BYTES_PER_SECOND * 60,
                    "IncomingRecords": CLICKS_RECORDS_PER_SECOND * 60,
                    # Three readers each read everything: 1.8 MB/s of the 2 shards' 4 MB/s.
                    "GetRecords.Bytes": 3 * CLICKS_BYTES_PER_SECOND * 60,
                    "ReadProvisionedThroughputExceeded": 45,
                    # Throttled readers fall a little behind, under the iterator-age alarm's 60 s.
                    "GetRecords.IteratorAgeMilliseconds": 20_000,
                },
            ),
        ),
        reason="Threshold Crossed: 3 datapoints were greater than or equal to the threshold (10.0).",
    ),
    # 60 % of the 24 h retention: 14.4 h. The shards are still at 48 %; demo-orders-consumer is the reader.
    6: Incident(
        title="producers need 4x the shards",
        stream=PAYMENTS,
        symptom="write-throttling",
        metrics=(
            kinesis_metrics(
                PAYMENTS,
                {
                    "IncomingBytes": PAYMENTS_BYTES_PER_SECOND * 60,
                    "IncomingRecords": PAYMENTS_RECORDS_PER_SECOND * 60,
                    "WriteProvisionedThroughputExceeded": 300,
                },
            ),
        ),
        reason="Threshold Crossed: 2 datapoints were greater than or equal to the threshold (1.0).",
    ),
    5: Incident(
        title="lag at 60 % of retention",
        stream=STREAM,
        symptom="iterator-age",
        metrics=(kinesis_metrics(STREAM, {"GetRecords.IteratorAgeMilliseconds": 0.6 * 24 * HOUR_MS}),),
        reason="Threshold Crossed: 3 datapoints were greater than or equal to the threshold (60000.0).",
    ),
    # 0.15 MB/s into 4 shards (4 MB/s) for two hours, no throttle, its reader caught up: scale in, 4 -> 2 (AWS allows
    # halving per call; one shard would carry the peak at 25 %).
    7: Incident(
        title="stream under-utilised",
        stream=ARCHIVE,
        symptom="under-utilised",
        metrics=(
            kinesis_metrics(
                ARCHIVE,
                {
                    "IncomingBytes": ARCHIVE_BYTES_PER_SECOND * 60,
                    "IncomingRecords": ARCHIVE_RECORDS_PER_SECOND * 60,
                    "GetRecords.IteratorAgeMilliseconds": 400,
                },
            ),
        ),
        reason="Threshold Crossed: 60 datapoints were less than the threshold (0.3).",
        minutes=120,
    ),
}


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
        run_cdk(args, log=self.logs / f"{name}.log", environment=self.emulator.environment(), work=WORK)

    def observe(self, stream: str) -> dict[str, str]:
        """What the emulator holds for the stream, keyed as the plans name their changes (Change.setting)."""
        kinesis = self.client("kinesis")
        summary = kinesis.describe_stream_summary(StreamName=stream)["StreamDescriptionSummary"]
        arn = summary["StreamARN"]
        state = {
            "open shards": str(summary["OpenShardCount"]),
            "retention hours": str(summary["RetentionPeriodHours"]),
        }
        consumers = kinesis.list_stream_consumers(StreamARN=arn).get("Consumers", [])
        state["registered consumers"] = str(len(consumers))
        names = {c["ConsumerARN"]: c["ConsumerName"] for c in consumers}
        for consumer in consumers:
            state[f"consumer {consumer['ConsumerName']}"] = "registered"
        for function in FUNCTIONS[stream]:
            mappings = self.client("lambda").list_event_source_mappings(FunctionName=function)["EventSourceMappings"]
            for mapping in mappings:
                source = mapping["EventSourceArn"]
                state[f"mapping {mapping['UUID']}"] = mapping["State"]
                if source == arn:
                    for key in ("BatchSize", "ParallelizationFactor"):
                        if key in mapping:
                            state[f"{function} {key}"] = str(mapping[key])
                if mapping["State"] == "Enabled":
                    state[f"{function} reads"] = (
                        f"the stream (GetRecords, mapping {mapping['UUID']})"
                        if source == arn
                        else f"consumer {names.get(source, source)} (mapping {mapping['UUID']})"
                    )
        return state

    # -- steps --------------------------------------------------------------------------------------
    def write_policy(self, mode: str) -> None:
        directory = WORK / "policies"
        directory.mkdir(parents=True, exist_ok=True)
        (directory / "demo.yaml").write_text(
            POLICY.format(
                orders=STREAM,
                mode=mode,
                orders_consumer=CONSUMER,
                clicks=CLICKS,
                clicks_consumer=CLICKS_CONSUMER,
                kcl_first=CLICKS_KCL[0],
                kcl_second=CLICKS_KCL[1],
                payments=PAYMENTS,
                archive=ARCHIVE,
            ),
            encoding="utf-8",
        )

    def create_streams_and_consumers(self) -> None:
        kinesis = self.client("kinesis")
        for stream, shards in (
            (STREAM, START_SHARDS),
            (CLICKS, START_SHARDS),
            (PAYMENTS, START_SHARDS),
            (ARCHIVE, ARCHIVE_SHARDS),
        ):
            kinesis.create_stream(StreamName=stream, ShardCount=shards)
            kinesis.get_waiter("stream_exists").wait(StreamName=stream, WaiterConfig={"Delay": 1, "MaxAttempts": 30})
        iam = self.client("iam")
        code = io.BytesIO()
        with zipfile.ZipFile(code, "w") as archive:
            archive.writestr("consumer.py", "def handler(event, context):\n    return len(event['Records'])\n")
        lambda_ = self.client("lambda")
        for stream, functions in FUNCTIONS.items():
            stream_arn = kinesis.describe_stream_summary(StreamName=stream)["StreamDescriptionSummary"]["StreamARN"]
            for function in functions:
                role = iam.create_role(
                    RoleName=f"{function}-role",
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
                lambda_.create_function(
                    FunctionName=function,
                    Runtime="python3.12",
                    Role=role,
                    Handler="consumer.handler",
                    Code={"ZipFile": code.getvalue()},
                )
                lambda_.create_event_source_mapping(
                    EventSourceArn=stream_arn,
                    FunctionName=function,
                    StartingPosition="LATEST",
                    BatchSize=100,
                    ParallelizationFactor=1,
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

    def push_metrics(self, batch: Datapoints, minutes: int = 10) -> None:
        """Per-minute datapoints for the last `minutes`; traffic ramps up to its peak in the last minutes."""
        now = datetime.now(UTC).replace(second=0, microsecond=0)

        def at(metric: str, value: float, minute: int) -> float:
            if metric not in ("IncomingBytes", "IncomingRecords", "GetRecords.Bytes"):
                return value
            return value * min(1.0, 0.5 + 0.5 * (minutes - minute) / (minutes - 3))

        data = [
            {
                "MetricName": metric,
                "Dimensions": [{"Name": name, "Value": value} for name, value in batch.dimensions.items()],
                "Timestamp": now - timedelta(minutes=minute),
                "Value": at(metric, value, minute),
            }
            for minute in range(1, minutes + 1)
            for metric, value in batch.values.items()
        ]
        cloudwatch = self.client("cloudwatch")
        for start in range(0, len(data), 20):
            cloudwatch.put_metric_data(Namespace=batch.namespace, MetricData=data[start : start + 20])

    def alarm_event(self, name: str, reason: str) -> dict[str, Any]:
        """Set the alarm to ALARM and build the EventBridge event CloudWatch would send for it."""
        cloudwatch = self.client("cloudwatch")
        previous = cloudwatch.describe_alarms(AlarmNames=[name])["MetricAlarms"]
        if not previous:
            raise DemoFailed(f"alarm {name} is not deployed")
        state = previous[0]["StateValue"]
        if state == "ALARM":
            # It went off in an earlier incident, and went back to OK once that one was dealt with.
            cloudwatch.set_alarm_state(AlarmName=name, StateValue="OK", StateReason="Threshold Crossed: recovered.")
            state = "OK"
        cloudwatch.set_alarm_state(AlarmName=name, StateValue="ALARM", StateReason=reason)
        alarm = cloudwatch.describe_alarms(AlarmNames=[name])["MetricAlarms"][0]
        return state_change_event(alarm, reason, previous=state)

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

    def play(self, number: int) -> Scenario:
        incident = INCIDENTS[number]
        before = self.observe(incident.stream)
        for batch in incident.metrics:
            self.push_metrics(batch, incident.minutes)
        name = alarm_name(DEFAULT_ALARM_PREFIX, incident.stream, incident.symptom, incident.qualifier)
        event = self.alarm_event(name, incident.reason)
        matched = self.rule_matches(event)
        if not matched:
            raise DemoFailed(f"the deployed EventBridge rule does not match the state change of {name}")
        result = self.invoke(event)
        after = self.observe(incident.stream)
        mail = self.read_mailbox()
        if len(mail) != 1:
            raise DemoFailed(f"incident {number} sent {len(mail)} e-mails, not one: {[m['Subject'] for m in mail]}")
        plan = result.get("plan") or {}
        return Scenario(
            number=number,
            title=incident.title,
            stream=incident.stream,
            alarm=name,
            mode=str(plan.get("mode", "-")),
            status=str(result["status"]),
            rule_matched=matched,
            steps=step_reports(result, before, after),
            email_subject=mail[0]["Subject"],
            email_body=mail[0]["Message"],
            before=before,
            after=after,
        )

    def fire_due_schedules(self, scenario: Scenario, incident: Incident) -> None:
        """The demo's Scheduler driver (demo only: the emulator never fires a schedule). While follow-through
        schedules are pending, invoke the deployed function with each one's Input, as Scheduler would at its time,
        the alarm kept in ALARM; then the alarm clears, and the OK event brings the "resolved" e-mail."""
        configuration = self.client("lambda").get_function_configuration(
            FunctionName=self.outputs["RemediatorFunctionName"]
        )
        variables = configuration["Environment"]["Variables"]
        prefix, role = variables["FOLLOW_UP_SCHEDULE_PREFIX"], variables["FOLLOW_UP_SCHEDULER_ROLE_ARN"]
        scheduler = self.client("scheduler")
        name = alarm_name(DEFAULT_ALARM_PREFIX, incident.stream, incident.symptom, incident.qualifier)
        for _ in range(8):  # the remediator's own bound is MAX_FOLLOW_UPS; the demo needs one
            pending = [
                scheduler.get_schedule(Name=s["Name"])
                for s in scheduler.list_schedules(NamePrefix=prefix).get("Schedules", [])
            ]
            # This incident's chain only: another alarm's follow-up (incident 5's, at its cooldown's end) stays
            # pending, as it would in AWS until its time.
            ours = [p for p in pending if json.loads(p["Target"]["Input"])["alarm_name"] == name]
            if not ours:
                break
            schedule = ours[0]
            if schedule["Target"]["RoleArn"] != role or not schedule["Target"]["Arn"].endswith(
                f":function:{self.outputs['RemediatorFunctionName']}"
            ):
                raise DemoFailed(f"schedule {schedule['Name']} does not target the remediator with its Scheduler role")
            scenario.schedules.append(
                {
                    "name": schedule["Name"],
                    "expression": schedule["ScheduleExpression"],
                    "input": schedule["Target"]["Input"],
                }
            )
            before = self.observe(incident.stream)
            result = self.invoke(json.loads(schedule["Target"]["Input"]))
            after = self.observe(incident.stream)
            mail = self.read_mailbox()
            if len(mail) != 1:
                raise DemoFailed(f"follow-up {schedule['Name']} sent {len(mail)} e-mails, not one")
            plan = result.get("plan") or {}
            scenario.follow_ups.append(
                Scenario(
                    number=scenario.number,
                    title=f"follow-up {len(scenario.follow_ups) + 1} ({schedule['Name']})",
                    stream=incident.stream,
                    alarm=name,
                    mode=str(plan.get("mode", "-")),
                    status=str(result["status"]),
                    rule_matched=False,  # not an EventBridge rule's event: the schedule's own Input
                    steps=step_reports(result, before, after),
                    email_subject=mail[0]["Subject"],
                    email_body=mail[0]["Message"],
                    before=before,
                    after=after,
                )
            )
        cloudwatch = self.client("cloudwatch")
        since = cloudwatch.describe_alarms(AlarmNames=[name])["MetricAlarms"][0]
        cloudwatch.set_alarm_state(AlarmName=name, StateValue="OK", StateReason="Threshold Crossed: recovered.")
        alarm = cloudwatch.describe_alarms(AlarmNames=[name])["MetricAlarms"][0]
        event = state_change_event(alarm, "Threshold Crossed: recovered.", previous="ALARM", state="OK", since=since)
        if not self.rule_matches(event):
            raise DemoFailed(f"the deployed EventBridge rule does not match {name} going back to OK")
        self.invoke(event)
        mail = self.read_mailbox()
        if len(mail) != 1:
            raise DemoFailed(f"the resolution of {name} sent {len(mail)} e-mails, not one")
        scenario.resolved_subject, scenario.resolved_body = mail[0]["Subject"], mail[0]["Message"]

    def audit_rows(self) -> list[list[str]]:
        """Both streams' audit rows, oldest first; a step that changes several settings takes one line each."""
        audit = DynamoAuditLog(self.client("dynamodb"), self.outputs["AuditTableName"])
        items = [(flat, *planned_step(flat)) for stream in FUNCTIONS for flat in audit.recent(stream)]
        # The steps of one trigger share its time: allowed steps first, then blocked ones, as the plan lists them.
        items.sort(key=lambda item: (item[0]["at"], item[1]))
        rows = []
        for flat, _, changes in items:
            first, *more = changes or ["-"]
            rows.append(
                [
                    flat["at"][11:19],
                    flat.get("stream", "-"),
                    flat.get("symptom", "-"),
                    flat.get("mode", "-"),
                    flat.get("action", "-"),
                    short(first),
                    flat["outcome"],
                ]
            )
            rows += [["", "", "", "", "", short(change), ""] for change in more]
        return wrapped(rows, {5: 72})

    def incoming_bytes(self, stream: str) -> list[float]:
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
                            "Dimensions": [{"Name": "StreamName", "Value": stream}],
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

    def dashboard(self) -> str:
        """Where the deployment's dashboard is, after checking CloudWatch holds it with a row for each stream."""
        name, url = self.outputs.get(StackOutput.DASHBOARD_NAME), self.outputs.get(StackOutput.DASHBOARD_URL)
        if not name:
            raise DemoFailed(f"the stack has no {StackOutput.DASHBOARD_NAME} output: was the dashboard deployed?")
        try:
            body = json.loads(self.client("cloudwatch").get_dashboard(DashboardName=name)["DashboardBody"])
        except self.client("cloudwatch").exceptions.ResourceNotFound as exc:
            raise DemoFailed(f"dashboard {name} is not in CloudWatch: {exc}") from exc
        titles = [w.get("properties", {}).get("title", "") for w in body.get("widgets", [])]
        missing = [s for s in sorted(FUNCTIONS) if not any(t.startswith(f"{s}: ") for t in titles)]
        if missing:
            raise DemoFailed(f"dashboard {name} has no graphs for {', '.join(missing)}")
        return (
            f"Dashboard: {name} ({len(body['widgets'])} widgets: the fleet's top streams, a row for each of "
            f"{', '.join(sorted(FUNCTIONS))}, then the remediator's own metrics), checked with GetDashboard.\n"
            f"In AWS, open it at {url}"
        )

    def inventory(self) -> str:
        alarms = self.client("cloudwatch").describe_alarms(AlarmNamePrefix=DEFAULT_ALARM_PREFIX)["MetricAlarms"]
        return alarm_inventory(alarms)


def _render(value: Any) -> str:
    return "-" if value is None else str(value)


def step_reports(result: dict[str, Any], before: dict[str, str], after: dict[str, str]) -> list[StepReport]:
    """Each step of the outcome, in the plan's order, with the changes its plan lists (from the plan report:
    allowed steps under `actions`, blocked ones under `blocked`) and what the emulator held for each setting."""
    plan = result.get("plan") or {}
    pending = {"actions": list(plan.get("actions", [])), "blocked": list(plan.get("blocked", []))}
    reports = []
    for step in result.get("steps", []):
        listed = pending["blocked" if step["outcome"] == "blocked" else "actions"]
        planned = next((s for s in listed if s["action"] == step["action"]), None)
        if planned is None:
            reports.append(StepReport(action=step["action"], outcome=step["outcome"], summary="-"))
            continue
        listed.remove(planned)
        reports.append(
            StepReport(
                action=step["action"],
                outcome=step["outcome"],
                summary=planned["summary"],
                changes=[
                    ChangeReport(
                        setting=c["setting"],
                        planned_before=c["before"],
                        planned_after=c["after"],
                        emulator_before=observed(before, c["setting"]),
                        emulator_after=observed(after, c["setting"]),
                    )
                    for c in planned["changes"]
                ],
            )
        )
    return reports


def observed(state: dict[str, str], setting: str) -> str:
    """The emulator's value of a planned change's setting; a consumer that is not registered is 'none'."""
    if setting in state:
        return state[setting]
    return "none" if setting.startswith("consumer ") else "-"


def planned_step(flat: dict[str, str]) -> tuple[int, list[str]]:
    """An audit row's step in its plan (stored with the row): its place in the plan report, and its changes."""
    if "action" not in flat or "plan" not in flat:
        return 0, []
    plan = json.loads(flat["plan"])
    parameters = json.loads(flat.get("parameters", "{}"))
    steps = [*plan.get("actions", []), *plan.get("blocked", [])]
    for index, step in enumerate(steps):
        if step["action"] == flat["action"] and step["parameters"] == parameters:
            return index, [f"{c['setting']} {_render(c['before'])} -> {_render(c['after'])}" for c in step["changes"]]
    return len(steps), []


def alarm_inventory(alarms: list[dict[str, Any]]) -> str:
    """The deployed alarms (as DescribeAlarms returns them), one line each: single-metric or metric math."""

    def watched(alarm: dict[str, Any]) -> str:
        if alarm.get("MetricName"):
            return f"{alarm['MetricName']} {alarm['Statistic']}"
        expression = next((q["Expression"] for q in alarm.get("Metrics", []) if q.get("Expression")), "?")
        return f"metric math: {expression}"

    def breaching(alarm: dict[str, Any]) -> str:
        periods = alarm["EvaluationPeriods"]
        needed = alarm.get("DatapointsToAlarm", periods)
        stats = [q["MetricStat"] for q in alarm.get("Metrics", []) if q.get("MetricStat")]
        # A metric-math alarm's period is its metrics' (the emulator reports a default `Period` beside them).
        seconds = stats[0]["Period"] if stats else alarm.get("Period") or 60
        return f"{needed} of {periods} min" if seconds == 60 else f"{needed} of {periods} x {seconds // 60} min"

    rows = [
        [
            a["AlarmName"],
            watched(a),
            f"{COMPARISONS.get(a['ComparisonOperator'], a['ComparisonOperator'])} {a['Threshold']:g}",
            breaching(a),
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


def _stamp(alarm: dict[str, Any]) -> str:
    return str(alarm["StateUpdatedTimestamp"].astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "+0000")


def state_change_event(
    alarm: dict[str, Any],
    reason: str,
    previous: str = "OK",
    state: str = "ALARM",
    since: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The EventBridge event CloudWatch sends when `alarm` (as DescribeAlarms returns it) goes into `state`
    (ALARM, or back to OK from the `since` state, as DescribeAlarms returned it before)."""
    stamp = _stamp(alarm)
    previous_stamp = _stamp(since) if since is not None else stamp
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
            "state": {"value": state, "reason": reason, "timestamp": stamp},
            "previousState": {"value": previous, "reason": "", "timestamp": previous_stamp},
            "configuration": {"description": alarm.get("AlarmDescription", ""), "metrics": _metric_queries(alarm)},
        },
    }


def summary_rows(scenarios: list[Scenario]) -> list[list[str]]:
    """One line per planned change: what the plan says (before -> after) and what the emulator held."""
    rows = []
    for scenario in [s for top in scenarios for s in (top, *top.follow_ups)]:
        lead = [f"{scenario.number}. {scenario.title}", scenario.stream, scenario.mode]
        blank = ["", "", ""]
        if not scenario.steps:
            rows.append([*lead, "-", "no action", scenario.status, "-", "-"])
        for step in scenario.steps:
            for index, change in enumerate(step.changes or [None]):
                head = [step.action, step.outcome] if index == 0 else ["", ""]
                if change is None:
                    cells = [step.summary, "-"]
                else:
                    cells = [
                        f"{change.setting} {_render(change.planned_before)} -> {_render(change.planned_after)}",
                        emulator_cell(change.emulator_before, change.emulator_after),
                    ]
                rows.append([*lead, head[0], short(cells[0]), head[1], short(cells[1])])
                lead = blank
    return wrapped(rows, {4: 64, 6: 44})


def emulator_cell(before: str, after: str) -> str:
    """`before -> after`; a long value that did not change is said once."""
    if before == after and len(before) > 12:
        return f"unchanged: {before}"
    return f"{before} -> {after}"


def _report(scenarios: list[Scenario], audit: list[list[str]], picture: Path, out: TextIO) -> None:
    write = out.write
    write("\n" + "=" * 100 + "\nReport\n" + "=" * 100 + "\n\n")
    write(
        table(
            ["incident", "stream", "mode", "step", "planned change", "step outcome", "emulator: before -> after"],
            summary_rows(scenarios),
        )
        + "\n\n"
    )
    write(
        table(
            ["incident", "alarm", "outcome", "rule matched"],
            [[f"{s.number}. {s.title}", s.alarm, s.status, "yes" if s.rule_matched else "no"] for s in scenarios],
        )
        + "\n\n"
    )
    for scenario in scenarios:
        write(f"--- E-mail for incident {scenario.number}, '{scenario.title}' " + "-" * 40 + "\n")
        write(f"Subject: {scenario.email_subject}\n\n{scenario.email_body}\n\n")
        for schedule, follow_up in zip(scenario.schedules, scenario.follow_ups, strict=True):
            write(
                f"--- Follow-through of incident {scenario.number}: the demo's Scheduler driver fired "
                f"{schedule['name']} ({schedule['expression']}) now; the emulator never fires schedules "
                + "-" * 10
                + "\n"
            )
            write(f"Input: {schedule['input']}\n")
            write(f"Subject: {follow_up.email_subject}\n\n{follow_up.email_body}\n\n")
        if scenario.resolved_subject:
            write(f"--- Resolved e-mail for incident {scenario.number}: the alarm went back to OK " + "-" * 30 + "\n")
            write(f"Subject: {scenario.resolved_subject}\n\n{scenario.resolved_body}\n\n")
    write(f"--- Write utilisation before and after the reshard: {picture}\n\n")
    write("--- Audit table (newest last) " + "-" * 40 + "\n")
    write(table(["time (UTC)", "stream", "symptom", "mode", "action", "change", "outcome"], audit) + "\n\n")
    write(EMULATOR_LIMITS)


def _draw(demo: Demo, reshard: Scenario) -> Path:
    """The reshard's picture: the traffic of incidents 1 and 2 against the shards before and after."""
    capacity = load_policies([WORK / "policies"]).streams[STREAM].capacity
    return utilisation_plot(
        WORK / "utilisation.png",
        stream=STREAM,
        bytes_per_minute=demo.incoming_bytes(STREAM),
        shards_before=int(reshard.before["open shards"]),
        shards_after=int(reshard.after["open shards"]),
        saturated_at=capacity.saturated_at,
        target=capacity.target_utilisation,
    )


def run(out: TextIO) -> int:
    if not CDK.exists():
        raise DemoFailed(f"{CDK} is missing: run `make demo`, which installs the pinned CDK CLI first")
    shutil.rmtree(WORK, ignore_errors=True)
    (WORK / "logs").mkdir(parents=True)
    out.write("Kinesis Remediator demo: the real stack in a local AWS emulator, seven incidents.\n\n")
    progress = Progress(total=13, out=out)
    with Emulator() as emulator:
        # This process talks to the emulator only: fake credentials, local endpoint.
        os.environ.update(emulator.environment())
        os.environ.pop("AWS_PROFILE", None)
        demo = Demo(emulator, out)
        try:
            with progress.step(f"Starting the AWS emulator (moto) on {emulator.endpoint}"):
                pass
            with progress.step("Bootstrapping the CDK toolkit in the emulator (cdk bootstrap)"):
                demo.write_policy("dry-run")  # cdk bootstrap runs app.py, which needs a policy: the demo's own
                demo.cdk("bootstrap", "bootstrap", f"aws://{ACCOUNT}/{REGION}")
            with progress.step(
                f"Creating streams '{STREAM}', '{CLICKS}' and '{PAYMENTS}' ({START_SHARDS} shards each) and the "
                f"consumer functions '{CONSUMER}' and '{CLICKS_CONSUMER}', and '{ARCHIVE}' ({ARCHIVE_SHARDS} shards)"
            ):
                demo.create_streams_and_consumers()
            with progress.step("Deploying Kinesis Remediator with a new, dry-run policy (cdk deploy)"):
                demo.write_policy("dry-run")
                demo.deploy("deploy-dry-run")
                demo.subscribe_mailbox()
            out.write("\nDeployed alarms:\n" + demo.inventory() + "\n\n")
            where = demo.dashboard()
            out.write(where + "\n\n")
            scenarios = []
            with progress.step("Incident 1: consumers fall behind while producers saturate the shards"):
                scenarios.append(demo.play(1))
            with progress.step(
                f"The team reads the dry-run e-mail and switches '{STREAM}' to enforce (cdk deploy); "
                f"'{CLICKS}' stays in dry-run ('{PAYMENTS}' and '{ARCHIVE}' go to enforce too)"
            ):
                demo.write_policy("enforce")
                demo.deploy("deploy-enforce")
            with progress.step("Incident 2: producers throttled"):
                scenarios.append(demo.play(2))
            with progress.step(f"Incident 3: '{CONSUMER}' falls behind on shards that are not saturated"):
                scenarios.append(demo.play(3))
            with progress.step(
                f"Incident 4: three polling consumers throttle each other's reads on '{CLICKS}' (dry-run)"
            ):
                scenarios.append(demo.play(4))
            with progress.step(f"Incident 5: the oldest unread record of '{STREAM}' is at 60 % of its retention"):
                scenarios.append(demo.play(5))
            with progress.step(
                f"Incident 6: '{PAYMENTS}' needs 4x its shards: 2x now, then follow-through (the demo's Scheduler "
                "driver fires the schedule) until the alarm clears"
            ):
                sixth = demo.play(6)
                demo.fire_due_schedules(sixth, INCIDENTS[6])
                scenarios.append(sixth)
            with progress.step(
                f"Incident 7: '{ARCHIVE}' writes at 4 % of its {ARCHIVE_SHARDS} shards for two calm hours (scale-in)"
            ):
                scenarios.append(demo.play(7))
            with progress.step("Reading the audit table and drawing the reshard"):
                audit = demo.audit_rows()
                picture = _draw(demo, next(s for s in scenarios if s.number == 2))
                (WORK / "report.json").write_text(
                    json.dumps([asdict(s) for s in scenarios], indent=2, default=str), encoding="utf-8"
                )
            _report(scenarios, audit, picture, out)
        finally:
            demo.handler_log.close()
    out.write(
        f"\n{where}\n"
        f"\nLogs (CDK CLI, remediator): {WORK / 'logs'}\nThe report as JSON: {WORK / 'report.json'}\n"
        "The emulator has stopped; nothing is left running.\n"
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    argparse.ArgumentParser(prog="python -m demo", description=__doc__).parse_args(argv)
    try:
        return run(sys.stdout)
    except DemoFailed as exc:
        print(f"\nDemo failed: {exc}", file=sys.stderr)
        return 1
