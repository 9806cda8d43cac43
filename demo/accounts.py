"""`make demo-accounts`: one hub and one member, as two accounts of the emulator, and an incident in the member.

Steps: start moto's server -> `cdk bootstrap` the hub account (A) and the member account (B, trusting A) -> create
a stream in each -> `cdk deploy --all` from A (the hub stack into A; the member stack into B through B's bootstrap
roles) -> incident: the member's stream is throttled in B; its alarm's state change goes from B's bus to the hub's;
the hub's remediator assumes the member role in B and reshards B's stream -> two refused cases: an alarm B makes
about the hub's own stream (the hub checks the event's account against the policy), and an account that is no
member (the hub's bus policy does not admit it) -> report.

How moto tells accounts apart: by the request's access key. Keys from sts:AssumeRole belong to the assumed role's
account (moto 5: `moto.iam.models.get_account_id_from`; STS `assume_role` "can point to another account, providing
an opportunity to switch accounts"); any other key is account 123456789012. So the demo acts as B with credentials
from AssumeRole on a role in B, and the hub's remediator reaches B as it does in AWS: AssumeRole on B's member role.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import os
import shutil
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TextIO

import boto3
from moto.events.models import EventPattern
from remediator.core.alarm import DEFAULT_ALARM_PREFIX, alarm_name
from remediator.core.render import table

from demo.emulator import Emulator
from demo.run import (
    CDK,
    ROOT,
    DemoContext,
    DemoFailed,
    Progress,
    alarm_inventory,
    run_cdk,
    short,
    state_change_event,
    wrapped,
)

WORK = Path(os.environ.get("KINESIS_REMEDIATOR_DEMO_DIR", ROOT / ".demo-accounts")).resolve()
REGION = "us-east-1"
HUB_ACCOUNT = "123456789012"  # moto's default account: the credentials the demo starts with
MEMBER_ACCOUNT = "111122223333"
STRANGER_ACCOUNT = "444455556666"  # in no policy
EXTERNAL_ID = "kinesis-remediator-demo"
HUB_STACK = "KinesisRemediator"
MEMBER_STACK = f"KinesisRemediatorMember-{MEMBER_ACCOUNT}-{REGION}"
MEMBER_ROLE = "KinesisRemediatorMember"
# The role the demo assumes to act as B (an administrator would use their own); moto needs it to exist in no way.
ADMIN_ROLE = "OrganizationAccountAccessRole"

HUB_STREAM = "hub-clicks"
MEMBER_STREAM = "member-orders"
SHARDS = 2
BYTES_PER_SECOND = 1_900_000
RECORDS_PER_SECOND = 950
THROTTLED = "Threshold Crossed: 2 datapoints were greater than or equal to the threshold (1.0)."

POLICY = f"""\
version: 1
streams:
  - name: {HUB_STREAM}
    mode: enforce
    notify:
      emails: [hub-team@example.com]
    detectors:
      write_throttling: {{threshold_records: 1, evaluation_periods: 5, datapoints_to_alarm: 2}}
    actions:
      reshard: {{min_shards: 1, max_shards: 8}}
  - name: {MEMBER_STREAM}
    account: "{MEMBER_ACCOUNT}"
    region: {REGION}
    mode: enforce
    notify:
      emails: [member-team@example.com]
    detectors:
      write_throttling: {{threshold_records: 1, evaluation_periods: 5, datapoints_to_alarm: 2}}
    actions:
      reshard: {{min_shards: 1, max_shards: 8, cooldown_minutes: 30, daily_budget: 4}}
"""

EMULATOR_LIMITS = """\
What this demo shows, and what the emulator (moto) cannot:
  - Real: one CDK app, `cdk deploy --all` from the hub account: the hub stack into A, the member stack into B
    through B's bootstrap roles (B was bootstrapped with --trust A). The hub's remediator runs the deployed
    function's handler with its deployed configuration; it assumes B's member role (sts:AssumeRole with the
    external id) and reshards B's stream in B. The report reads every value back from the emulator.
  - Not real: moto does not evaluate IAM (trust policies, external ids, identity policies): the demo reads the
    member role's trust policy and checks it names the hub's role and the external id the hub's function holds.
    CloudWatch does not evaluate alarms, nor send their state changes to EventBridge: the demo sets the alarm
    state in B and builds the event CloudWatch would send. EventBridge does not invoke Lambda, and moto's
    cross-account bus target re-puts the event as the hub account's own (the member's account is lost) and
    ignores the bus policy: the demo's EventBridge relay (demo only) checks the member's rule and target, the
    hub's bus policy and the hub's rule, and hands the event, unchanged, to the hub's handler in-process.
"""


@dataclass
class Case:
    title: str
    sender: str
    alarm: str
    relay: list[tuple[str, str]]  # (check, result)
    delivered: bool
    status: str = "-"
    reason: str = ""
    steps: list[tuple[str, str, str]] = field(default_factory=list)  # (action, outcome, change)
    shards: tuple[str, str] = ("-", "-")
    email_subject: str = ""
    email_body: str = ""


class Account:
    """Clients of one emulator account."""

    def __init__(self, endpoint: str, account: str, credentials: dict[str, str]) -> None:
        self.endpoint, self.account, self.credentials = endpoint, account, credentials

    def client(self, service: str) -> Any:
        return boto3.client(  # type: ignore[call-overload]
            service,
            region_name=REGION,
            endpoint_url=self.endpoint,
            aws_access_key_id=self.credentials["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=self.credentials["AWS_SECRET_ACCESS_KEY"],
            aws_session_token=self.credentials["AWS_SESSION_TOKEN"],
        )


class AccountsDemo:
    def __init__(self, emulator: Emulator, out: TextIO) -> None:
        self.emulator, self.out = emulator, out
        self.logs = WORK / "logs"
        self.handler_log = (self.logs / "remediator.log").open("w", encoding="utf-8")
        base = emulator.environment()
        self.hub = Account(emulator.endpoint, HUB_ACCOUNT, base)
        self.member = Account(emulator.endpoint, MEMBER_ACCOUNT, self.assume(MEMBER_ACCOUNT))
        self.stranger = Account(emulator.endpoint, STRANGER_ACCOUNT, self.assume(STRANGER_ACCOUNT))
        self.outputs: dict[str, dict[str, str]] = {}
        self.mailbox_url = ""

    def assume(self, account: str) -> dict[str, str]:
        """Credentials of `account`: moto maps an assumed role's keys to the role's account."""
        sts = boto3.client("sts", region_name=REGION, endpoint_url=self.emulator.endpoint)
        found = sts.assume_role(RoleArn=f"arn:aws:iam::{account}:role/{ADMIN_ROLE}", RoleSessionName="demo")
        keys = found["Credentials"]
        credentials = {
            "AWS_ACCESS_KEY_ID": keys["AccessKeyId"],
            "AWS_SECRET_ACCESS_KEY": keys["SecretAccessKey"],
            "AWS_SESSION_TOKEN": keys["SessionToken"],
        }
        who = Account(self.emulator.endpoint, account, credentials).client("sts").get_caller_identity()["Account"]
        if who != account:
            raise DemoFailed(f"the emulator maps the assumed role's credentials to account {who}, not {account}")
        return credentials

    # -- CDK ----------------------------------------------------------------------------------------------------
    def cdk(self, name: str, *args: str, account: Account | None = None) -> None:
        run_cdk(
            args,
            log=self.logs / f"{name}.log",
            environment=self.emulator.environment() | (account or self.hub).credentials,
            work=WORK,
            context={"memberExternalId": EXTERNAL_ID, "hubAccount": HUB_ACCOUNT, "hubRegion": REGION},
        )

    def write_policy(self) -> None:
        (WORK / "policies").mkdir(parents=True, exist_ok=True)
        (WORK / "policies" / "accounts.yaml").write_text(POLICY, encoding="utf-8")

    def bootstrap(self) -> None:
        self.cdk("bootstrap-hub", "bootstrap", f"aws://{HUB_ACCOUNT}/{REGION}")
        self.cdk(
            "bootstrap-member",
            "bootstrap",
            f"aws://{MEMBER_ACCOUNT}/{REGION}",
            "--trust",
            HUB_ACCOUNT,
            "--cloudformation-execution-policies",
            "arn:aws:iam::aws:policy/AdministratorAccess",
            account=self.member,
        )

    def deploy(self) -> None:
        outputs = WORK / "outputs.json"
        self.cdk(
            "deploy",
            "deploy",
            "--all",
            "--require-approval",
            "never",
            "--method=direct",  # moto's change sets lose stack outputs and cannot update
            "--outputs-file",
            str(outputs),
        )
        self.outputs = json.loads(outputs.read_text(encoding="utf-8"))
        for stack in (HUB_STACK, MEMBER_STACK):
            if stack not in self.outputs:
                raise DemoFailed(f"`cdk deploy --all` did not deploy {stack}: {sorted(self.outputs)}")

    # -- AWS ----------------------------------------------------------------------------------------------------
    def create_streams(self) -> None:
        for account, stream in ((self.hub, HUB_STREAM), (self.member, MEMBER_STREAM)):
            kinesis = account.client("kinesis")
            kinesis.create_stream(StreamName=stream, ShardCount=SHARDS)
            kinesis.get_waiter("stream_exists").wait(StreamName=stream, WaiterConfig={"Delay": 1, "MaxAttempts": 30})

    def shards(self, account: Account, stream: str) -> str:
        summary = account.client("kinesis").describe_stream_summary(StreamName=stream)["StreamDescriptionSummary"]
        return str(summary["OpenShardCount"])

    def subscribe_mailbox(self) -> None:
        sqs = self.hub.client("sqs")
        self.mailbox_url = sqs.create_queue(QueueName="demo-mailbox")["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=self.mailbox_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        topic = self.outputs[HUB_STACK]["NotificationTopicArn"]
        self.hub.client("sns").subscribe(TopicArn=topic, Protocol="sqs", Endpoint=arn)

    def read_mailbox(self) -> list[dict[str, str]]:
        sqs = self.hub.client("sqs")
        messages = sqs.receive_message(QueueUrl=self.mailbox_url, MaxNumberOfMessages=10).get("Messages", [])
        for message in messages:
            sqs.delete_message(QueueUrl=self.mailbox_url, ReceiptHandle=message["ReceiptHandle"])
        return [json.loads(m["Body"]) for m in messages]

    def push_throttling(self, account: Account, stream: str) -> None:
        """Ten minutes of producers at 95 % of two shards, throttled, in the stream's own account."""
        now = datetime.now(UTC).replace(second=0, microsecond=0)
        values = {
            "IncomingBytes": BYTES_PER_SECOND * 60,
            "IncomingRecords": RECORDS_PER_SECOND * 60,
            "WriteProvisionedThroughputExceeded": 120,
        }
        data = [
            {
                "MetricName": metric,
                "Dimensions": [{"Name": "StreamName", "Value": stream}],
                "Timestamp": now - timedelta(minutes=minute),
                "Value": value,
            }
            for minute in range(1, 11)
            for metric, value in values.items()
        ]
        cloudwatch = account.client("cloudwatch")
        for start in range(0, len(data), 20):
            cloudwatch.put_metric_data(Namespace="AWS/Kinesis", MetricData=data[start : start + 20])

    def alarm_event(self, account: Account, name: str) -> dict[str, Any]:
        """Set the alarm (in its account) to ALARM and build the event CloudWatch would send from that account."""
        cloudwatch = account.client("cloudwatch")
        if not cloudwatch.describe_alarms(AlarmNames=[name])["MetricAlarms"]:
            raise DemoFailed(f"alarm {name} is not in account {account.account}")
        cloudwatch.set_alarm_state(AlarmName=name, StateValue="ALARM", StateReason=THROTTLED)
        alarm = cloudwatch.describe_alarms(AlarmNames=[name])["MetricAlarms"][0]
        event = state_change_event(alarm, THROTTLED)
        return event | {"account": account.account, "region": REGION}

    # -- the demo's EventBridge relay (demo only: see EMULATOR_LIMITS) --------------------------------------------
    def relay(self, sender: Account, event: dict[str, Any]) -> tuple[list[tuple[str, str]], bool]:
        """What EventBridge would do with `event` on the sender's default bus: the forwarding rule (the member
        stack's, or none) sends it to the hub's bus if the bus policy admits the sender, where the hub's rule
        takes it. Returns the checks made and whether the hub's function gets the event."""
        checks: list[tuple[str, str]] = []
        hub_bus = f"arn:aws:events:{REGION}:{HUB_ACCOUNT}:event-bus/default"
        forwarding = [
            rule
            for rule in sender.client("events").list_rules().get("Rules", [])
            if rule.get("EventPattern") and EventPattern.load(rule["EventPattern"]).matches_event(event)  # type: ignore[arg-type]
        ]
        targets = [
            target
            for rule in forwarding
            for target in sender.client("events").list_targets_by_rule(Rule=rule["Name"])["Targets"]
            if target["Arn"] == hub_bus
        ]
        if sender.account != HUB_ACCOUNT:
            where = _ours(forwarding[0]["Name"], "rule") if forwarding else f"no rule in {sender.account}"
            checks.append(("a rule there matches and targets the hub's bus", f"yes ({where})" if targets else "no"))
            if targets:
                role = targets[0].get("RoleArn", "").split("/")[-1]
                checks.append(("the target's role (in the sending account)", _ours(role, "role") if role else "none"))
            policy = json.loads(self.hub.client("events").describe_event_bus(Name="default").get("Policy") or "{}")
            admitted = sorted(
                principal.split(":")[4]
                for statement in policy.get("Statement", [])
                if statement.get("Effect") == "Allow"
                and statement.get("Action") in ("events:PutEvents", ["events:PutEvents"])
                for principal in _principals(statement)
            )
            allowed = sender.account in admitted
            checks.append(
                (
                    f"hub's bus policy admits {sender.account}",
                    f"{'yes' if allowed else 'no'} (admits {', '.join(admitted) or 'nobody'})",
                )
            )
            if not (targets and allowed):
                return checks, False
        rule = self.hub.client("events").describe_rule(Name=self.outputs[HUB_STACK]["AlarmStateChangeRule"])
        matched = bool(EventPattern.load(rule["EventPattern"]).matches_event(event))  # type: ignore[arg-type]
        checks.append((f"hub's rule matches (account {event['account']})", "yes" if matched else "no"))
        return checks, matched

    def invoke(self, event: dict[str, Any]) -> dict[str, Any]:
        """Run the hub's deployed handler here, with the deployed function's environment and the hub's credentials."""
        name = self.outputs[HUB_STACK]["RemediatorFunctionName"]
        configuration = self.hub.client("lambda").get_function_configuration(FunctionName=name)
        os.environ.update(configuration["Environment"]["Variables"])
        os.environ.update(self.emulator.environment())
        with contextlib.redirect_stdout(self.handler_log):
            module = importlib.reload(importlib.import_module("remediator.handler"))
            result: dict[str, Any] = module.lambda_handler(event, DemoContext(name))
        self.handler_log.flush()
        return result

    def play(self, title: str, sender: Account, owner: Account, stream: str, name: str) -> Case:
        """An alarm about `stream` (which lives in `owner`) goes to ALARM in `sender`'s account."""
        before = self.shards(owner, stream)
        self.push_throttling(owner, stream)
        event = self.alarm_event(sender, name)
        checks, delivered = self.relay(sender, event)
        case = Case(title=title, sender=sender.account, alarm=name, relay=checks, delivered=delivered)
        if delivered:
            result = self.invoke(event)
            case.status = str(result.get("status", "-"))
            case.reason = str(result.get("detail") or "")
            plan = result.get("plan") or {}
            listed = [*plan.get("actions", []), *plan.get("blocked", [])]
            for step in result.get("steps", []):
                planned = next((s for s in listed if s["action"] == step["action"]), None)
                changes = [f"{c['setting']} {c['before']} -> {c['after']}" for c in (planned or {}).get("changes", [])]
                case.steps.append((step["action"], step["outcome"], "; ".join(changes) or "-"))
            mail = self.read_mailbox()
            if mail:
                case.email_subject, case.email_body = mail[0]["Subject"], mail[0]["Message"]
        case.shards = (before, self.shards(owner, stream))
        return case

    def member_role_check(self) -> list[list[str]]:
        """moto does not evaluate trust policies: read the member role's and check what it says."""
        role = self.member.client("iam").get_role(RoleName=MEMBER_ROLE)["Role"]
        document = role["AssumeRolePolicyDocument"]
        document = json.loads(document) if isinstance(document, str) else document
        (statement,) = document["Statement"]
        conditions = statement.get("Condition", {})
        hub_role = self.hub.client("iam").get_role(
            RoleName=self.hub.client("lambda")
            .get_function_configuration(FunctionName=self.outputs[HUB_STACK]["RemediatorFunctionName"])["Role"]
            .split("/")[-1]
        )["Role"]["Arn"]
        variables = self.hub.client("lambda").get_function_configuration(
            FunctionName=self.outputs[HUB_STACK]["RemediatorFunctionName"]
        )["Environment"]["Variables"]
        principal = conditions.get("ArnEquals", {}).get("aws:PrincipalArn")
        external = conditions.get("StringEquals", {}).get("sts:ExternalId")
        rows = [
            ["principal", str(statement["Principal"].get("AWS")), f"account {HUB_ACCOUNT} (the hub)"],
            ["aws:PrincipalArn", str(principal), "the hub's remediator role" if principal == hub_role else "MISMATCH"],
            [
                "sts:ExternalId",
                str(external),
                "the hub function's MEMBER_EXTERNAL_ID"
                if external == variables.get("MEMBER_EXTERNAL_ID")
                else "MISMATCH",
            ],
        ]
        if any("MISMATCH" in row[2] for row in rows):
            raise DemoFailed(f"the member role's trust policy does not admit the hub's role: {rows}")
        return rows

    def audit_rows(self) -> list[list[str]]:
        """Every audit row of the hub's table (a scan: the demo's table is small), oldest first."""
        table_name = self.outputs[HUB_STACK]["AuditTableName"]
        items = self.hub.client("dynamodb").scan(TableName=table_name)["Items"]
        flat = [{k: next(iter(v.values())) for k, v in item.items()} for item in items]
        rows = sorted((f for f in flat if "outcome" in f and "at" in f), key=lambda f: f["at"])
        return [
            [
                f["at"][11:19],
                f.get("account", "-"),
                f.get("region", "-"),
                f.get("stream", "-"),
                f.get("action", "-"),
                f["outcome"],
            ]
            for f in rows
        ]


def _ours(name: str, kind: str) -> str:
    """A CloudFormation-named resource of the member stack, said plainly; anything else by its name."""
    if name.startswith(f"{MEMBER_STACK}-"):
        return f"the member stack's {kind} {name.removeprefix(f'{MEMBER_STACK}-').rsplit('-', 1)[0]}"
    return f"{kind} {name}"


def _principals(statement: dict[str, Any]) -> list[str]:
    principal = statement.get("Principal", {})
    values = principal.get("AWS", []) if isinstance(principal, dict) else [principal]
    return [
        v if v.startswith("arn:") else f"arn:aws:iam::{v}:root"
        for v in ([values] if isinstance(values, str) else values)
    ]


def _report(demo: AccountsDemo, cases: list[Case], trust: list[list[str]], audit: list[list[str]], out: TextIO) -> None:
    write = out.write
    write("\n" + "=" * 100 + "\nReport\n" + "=" * 100 + "\n\n")
    write("Member role in B, trust policy (read back from the emulator):\n")
    write(table(["condition", "value", "checked against"], [[a, short(b), c] for a, b, c in trust]) + "\n\n")
    rows = []
    for number, case in enumerate(cases, 1):
        lead = [f"{number}. {case.title}", case.sender]
        for check, result in case.relay:
            rows.append([*lead, check, result])
            lead = ["", ""]
        verdict = (
            (f"{case.status}: {case.reason}" if case.reason else case.status) if case.delivered else "never invoked"
        )
        rows.append([*lead, "hub's remediator", verdict])
    write(
        table(["case", "sent from", "EventBridge (demo relay) / remediator", "result"], wrapped(rows, {3: 60})) + "\n\n"
    )
    write(
        table(
            ["case", "stream (account)", "step", "planned change", "outcome", "open shards: before -> after"],
            [
                [f"{n}. {c.title}", f"{_stream(c)}", a, short(ch), o, f"{c.shards[0]} -> {c.shards[1]}"]
                for n, c in enumerate(cases, 1)
                for a, o, ch in (c.steps or [("-", c.status, "-")])
            ],
        )
        + "\n\n"
    )
    for number, case in enumerate(cases, 1):
        if case.email_subject:
            write(f"--- E-mail for case {number}, '{case.title}' " + "-" * 40 + "\n")
            write(f"Subject: {case.email_subject}\n\n{case.email_body}\n\n")
    write("--- Hub's audit table (newest last) " + "-" * 40 + "\n")
    write(table(["time (UTC)", "account", "region", "stream", "action", "outcome"], audit) + "\n\n")
    write(EMULATOR_LIMITS)


def _stream(case: Case) -> str:
    return f"{MEMBER_STREAM} ({MEMBER_ACCOUNT})" if MEMBER_STREAM in case.alarm else f"{HUB_STREAM} ({HUB_ACCOUNT})"


def run(out: TextIO) -> int:
    if not CDK.exists():
        raise DemoFailed(f"{CDK} is missing: run `make demo-accounts`, which installs the pinned CDK CLI first")
    shutil.rmtree(WORK, ignore_errors=True)
    (WORK / "logs").mkdir(parents=True)
    out.write(
        f"Kinesis Remediator, many accounts: a hub in account {HUB_ACCOUNT} and a member in account {MEMBER_ACCOUNT}, "
        "in a local AWS emulator.\n\n"
    )
    progress = Progress(total=8, out=out)
    with Emulator() as emulator:
        os.environ.update(emulator.environment())
        os.environ.pop("AWS_PROFILE", None)
        with progress.step(f"Starting the AWS emulator (moto) on {emulator.endpoint}"):
            demo = AccountsDemo(emulator, out)
        try:
            with progress.step(
                f"Bootstrapping the CDK toolkit in the hub account {HUB_ACCOUNT} and in the member account "
                f"{MEMBER_ACCOUNT}, trusting the hub's (cdk bootstrap --trust {HUB_ACCOUNT})"
            ):
                demo.write_policy()
                demo.bootstrap()
            with progress.step(
                f"Creating '{HUB_STREAM}' in {HUB_ACCOUNT} and '{MEMBER_STREAM}' in {MEMBER_ACCOUNT} ({SHARDS} shards)"
            ):
                demo.create_streams()
            with progress.step(
                f"Deploying the hub into {HUB_ACCOUNT} and the member into {MEMBER_ACCOUNT} (cdk deploy --all)"
            ):
                demo.deploy()
                demo.subscribe_mailbox()
            out.write(
                f"\nHub alarms ({HUB_ACCOUNT}):\n"
                + alarm_inventory(
                    demo.hub.client("cloudwatch").describe_alarms(AlarmNamePrefix=DEFAULT_ALARM_PREFIX)["MetricAlarms"]
                )
                + f"\n\nMember alarms ({MEMBER_ACCOUNT}):\n"
                + alarm_inventory(
                    demo.member.client("cloudwatch").describe_alarms(AlarmNamePrefix=DEFAULT_ALARM_PREFIX)[
                        "MetricAlarms"
                    ]
                )
                + "\n\n"
            )
            cases = []
            member_alarm = alarm_name(DEFAULT_ALARM_PREFIX, MEMBER_STREAM, "write-throttling")
            hub_alarm = alarm_name(DEFAULT_ALARM_PREFIX, HUB_STREAM, "write-throttling")
            with progress.step(f"Incident: producers throttled on '{MEMBER_STREAM}' in {MEMBER_ACCOUNT} (enforce)"):
                cases.append(
                    demo.play("member stream throttled", demo.member, demo.member, MEMBER_STREAM, member_alarm)
                )
            with progress.step(
                f"Refused: {MEMBER_ACCOUNT} raises an alarm named after the hub's own '{HUB_STREAM}' (the hub checks "
                "the event's account against the policy)"
            ):
                _rogue_alarm(demo.member, hub_alarm, HUB_STREAM)
                cases.append(demo.play("member names the hub's stream", demo.member, demo.hub, HUB_STREAM, hub_alarm))
            with progress.step(f"Refused: {STRANGER_ACCOUNT}, in no policy, sends a state change to the hub's bus"):
                _rogue_alarm(demo.stranger, member_alarm, MEMBER_STREAM)
                _rogue_forwarding(demo.stranger, demo.outputs[MEMBER_STACK]["HubEventBusArn"])
                cases.append(demo.play("account in no policy", demo.stranger, demo.member, MEMBER_STREAM, member_alarm))
            with progress.step("Reading the member role's trust policy and the hub's audit table"):
                trust = demo.member_role_check()
                audit = demo.audit_rows()
                (WORK / "report.json").write_text(
                    json.dumps({"cases": [c.__dict__ for c in cases], "trust": trust, "audit": audit}, indent=2),
                    encoding="utf-8",
                )
            _report(demo, cases, trust, audit, out)
        finally:
            with contextlib.suppress(NameError):
                demo.handler_log.close()
    out.write(
        f"\nLogs (CDK CLI, remediator): {WORK / 'logs'}\nThe report as JSON: {WORK / 'report.json'}\n"
        "The emulator has stopped; nothing is left running.\n"
    )
    return 0


def _rogue_alarm(account: Account, name: str, stream: str) -> None:
    """An alarm with our prefix that no stack of ours deployed in `account` (anyone may name an alarm so)."""
    account.client("cloudwatch").put_metric_alarm(
        AlarmName=name,
        Namespace="AWS/Kinesis",
        MetricName="WriteProvisionedThroughputExceeded",
        Dimensions=[{"Name": "StreamName", "Value": stream}],
        Statistic="Sum",
        Period=60,
        EvaluationPeriods=5,
        DatapointsToAlarm=2,
        Threshold=1,
        ComparisonOperator="GreaterThanOrEqualToThreshold",
    )


def _rogue_forwarding(account: Account, hub_bus: str) -> None:
    """A rule forwarding our alarms' state changes to the hub's bus, as a member stack's does (anyone may make one):
    what stops it is the hub's bus policy."""
    events = account.client("events")
    pattern = {"source": ["aws.cloudwatch"], "detail-type": ["CloudWatch Alarm State Change"]}
    events.put_rule(Name="forward-to-the-hub", EventPattern=json.dumps(pattern))
    role = f"arn:aws:iam::{account.account}:role/forwarder"
    events.put_targets(Rule="forward-to-the-hub", Targets=[{"Id": "hub", "Arn": hub_bus, "RoleArn": role}])


def main(argv: list[str] | None = None) -> int:
    argparse.ArgumentParser(prog="python -m demo.accounts", description=__doc__).parse_args(argv)
    started = time.monotonic()
    try:
        code = run(sys.stdout)
    except DemoFailed as exc:
        print(f"\nDemo failed: {exc}", file=sys.stderr)
        return 1
    print(f"Done in {time.monotonic() - started:.0f} s.")
    return code


if __name__ == "__main__":
    sys.exit(main())
