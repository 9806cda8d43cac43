"""Issue 11.4 through the real handler and moto's accounts: the hub (123456789012) remedies a member's stream
(222222222222) by assuming the member's role with the external id; and it never acts for an account or a stream
that no policy names there.

moto maps the credentials sts:AssumeRole returns to the role's account (moto/sts/models.py: "the role does not
need to exist. The ARN can point to another account"), so a stream changed in the member account proves the calls
were made with the assumed role. moto evaluates neither a trust policy nor its ExternalId condition: a refused
AssumeRole is answered by botocore's Stubber on the hub's STS client.

The IAM contract of the other integration tests (tests/integration/contract.py) covers the hub's own grants; the
calls made in the member are the member role's (H11-HUB-INFRA's member stack), so these tests record them apart.
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from types import ModuleType
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from tests.fakes import ACCOUNT, REGION, alarm_event
from tests.integration.conftest import SCHEDULE_PREFIX
from tests.integration.contract import is_read
from tests.integration.support import SATURATED, STREAM, WRITE_ALARM, alarm, policy

MEMBER = "222222222222"
STRANGER = "333333333333"
EXTERNAL_ID = "kr-hub-test-external-id"
MEMBER_ROLE = f"arn:aws:iam::{MEMBER}:role/KinesisRemediatorMember"


def member_client(account: str, service: str) -> Any:
    """A client in `account` (moto: credentials of any role assumed there act in that account)."""
    credentials = boto3.client("sts", region_name=REGION).assume_role(
        RoleArn=f"arn:aws:iam::{account}:role/test-setup", RoleSessionName="test-setup"
    )["Credentials"]
    return boto3.client(
        service,
        region_name=REGION,
        aws_access_key_id=credentials["AccessKeyId"],
        aws_secret_access_key=credentials["SecretAccessKey"],
        aws_session_token=credentials["SessionToken"],
    )


def shards(kinesis: Any, stream: str = STREAM) -> int:
    return int(kinesis.describe_stream_summary(StreamName=stream)["StreamDescriptionSummary"]["OpenShardCount"])


def saturate(cloudwatch: Any, stream: str = STREAM, load: dict[str, float] = SATURATED) -> None:
    """Ten minutes of a saturated, throttled stream (SATURATED: 2 shards' worth), in that cloudwatch's account."""
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    values = {
        "IncomingBytes": load["bytes_per_second"] * 60,
        "IncomingRecords": load["records_per_second"] * 60,
        "WriteProvisionedThroughputExceeded": load["throttled"],
    }
    data = [
        {
            "MetricName": name,
            "Dimensions": [{"Name": "StreamName", "Value": stream}],
            "Timestamp": now - timedelta(minutes=minute),
            "Value": value,
        }
        for minute in range(1, 11)
        for name, value in values.items()
    ]
    for start in range(0, len(data), 20):
        cloudwatch.put_metric_data(Namespace="AWS/Kinesis", MetricData=data[start : start + 20])


def event_from(
    account: str, *, arn_account: str | None = None, timestamp: str | None = None, stream: str = STREAM
) -> dict[str, Any]:
    """Our write-throttling alarm's state change as EventBridge delivers it from `account` (the member's rule
    forwards it unchanged to the hub's bus); its alarm ARN names `arn_account` (default: the same account)."""
    name = alarm(stream, "write-throttling")
    event = alarm_event(name, stream=stream, **({"timestamp": timestamp} if timestamp else {}))
    event["account"] = account
    event["resources"] = [f"arn:aws:cloudwatch:{REGION}:{arn_account or account}:alarm:{name}"]
    return event


@dataclass(frozen=True)
class Call:
    service: str
    operation: str
    params: dict[str, Any]
    access_key: str


class Calls(list[Call]):
    def by(self, access_keys: set[str]) -> list[Call]:
        return [c for c in self if c.access_key in access_keys]

    def named(self, operation: str) -> list[Call]:
        return [c for c in self if c.operation == operation]


@dataclass
class Hub:
    handler: ModuleType
    calls: Calls
    invoke: Callable[[dict[str, Any]], dict[str, Any]]
    member_kinesis: Any
    hub_key: str

    def member_calls(self) -> list[Call]:
        """Calls made with credentials other than the hub's own (the assumed role's)."""
        return [c for c in self.calls if c.access_key != self.hub_key and c.service != "sts"]


def rows(aws: Any, key: str) -> list[dict[str, Any]]:
    items = aws.client("dynamodb").query(
        TableName=aws.audit_table,
        KeyConditionExpression="pk = :pk",
        ExpressionAttributeValues={":pk": {"S": f"STREAM#{key}"}},
    )["Items"]
    return [{k: next(iter(v.values())) for k, v in item.items()} for item in items]


def put_policy(aws: Any, raw: dict[str, Any]) -> None:
    """The stack's SSM parameter for one policy: `<prefix>/<key>` (core.policy.stream_key)."""
    from remediator.core.policy import stream_key

    key = stream_key(raw["name"], raw.get("account"), raw.get("region"))
    aws.client("ssm").put_parameter(
        Name=f"{aws.policy_prefix}/{key}", Value=json.dumps(raw), Type="String", Overwrite=True
    )


def member_policy(mode: str = "enforce", account: str = MEMBER, name: str = STREAM) -> dict[str, Any]:
    return policy(name, mode=mode) | {"account": account}


@pytest.fixture
def hub(aws: Any, context: Any, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest) -> Iterator[Hub]:
    """The hub's handler (cold start, MEMBER_EXTERNAL_ID set unless parametrized indirectly with False), a member
    account with the member role and a saturated 2-shard stream 'orders', and the hub's own 'orders' (2 shards,
    enforced, saturated too: it must never be touched by a member's event)."""
    if getattr(request, "param", True):
        monkeypatch.setenv("MEMBER_EXTERNAL_ID", EXTERNAL_ID)
    iam = member_client(MEMBER, "iam")
    iam.create_role(
        RoleName="KinesisRemediatorMember",
        AssumeRolePolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"},
                        "Action": "sts:AssumeRole",
                        "Condition": {"StringEquals": {"sts:ExternalId": EXTERNAL_ID}},
                    }
                ],
            }
        ),
    )
    kinesis = member_client(MEMBER, "kinesis")
    kinesis.create_stream(StreamName=STREAM, ShardCount=2)
    saturate(member_client(MEMBER, "cloudwatch"))
    aws.create_stream(STREAM, 2)
    aws.put_policy(policy(mode="enforce"))
    aws.push_traffic(STREAM, **SATURATED)

    import remediator.handler
    from botocore.client import BaseClient

    handler = importlib.reload(remediator.handler)
    handler.dependencies.cache_clear()
    calls = Calls()
    recording = [False]
    original = BaseClient._make_api_call

    def spy(self: Any, operation: str, params: dict[str, Any]) -> Any:
        if recording[0]:
            key = self._request_signer._credentials.access_key if self._request_signer._credentials else ""
            calls.append(Call(self.meta.service_model.service_name, operation, dict(params), key))
        return original(self, operation, params)

    monkeypatch.setattr(BaseClient, "_make_api_call", spy)
    hub_key = boto3.Session().get_credentials().access_key

    def invoke(event: dict[str, Any]) -> dict[str, Any]:
        calls.clear()
        recording[0] = True
        try:
            result: dict[str, Any] = handler.lambda_handler(event, context)
        finally:
            recording[0] = False
        return result

    yield Hub(handler, calls, invoke, kinesis, hub_key)


def test_a_members_alarm_reshards_the_members_stream_through_its_role(aws: Any, hub: Hub) -> None:
    # Given an enforced policy for 'orders' in the member account (and the hub's own 'orders', also saturated)
    put_policy(aws, member_policy())

    # When the member's alarm state change reaches the hub
    result = hub.invoke(event_from(MEMBER))

    # Then the hub assumed the member's role with the external id and a session naming the alarm
    [assume] = hub.calls.named("AssumeRole")
    assert assume.params == {
        "RoleArn": MEMBER_ROLE,
        "RoleSessionName": "kr-write-throttling-orders",
        "ExternalId": EXTERNAL_ID,
        "DurationSeconds": 3600,
    }
    # and resharded the member's stream (2 -> 4), with the role's credentials, and not the hub's stream
    assert result["status"] == "applied", result
    assert shards(hub.member_kinesis) == 4
    assert aws.shard_count(STREAM) == 2
    [update] = [c for c in hub.member_calls() if c.operation == "UpdateShardCount"]
    assert update.params["TargetShardCount"] == 4
    assert not [c for c in hub.calls.by({hub.hub_key}) if c.service == "kinesis"]
    # The audit rows are the member's stream's (keyed and labelled by account and region), none is the hub's own
    member_rows = rows(aws, f"{MEMBER}/{REGION}/{STREAM}")
    assert [r["outcome"] for r in member_rows] == ["applied"]
    assert all((r["account"], r["region"], r["stream"]) == (MEMBER, REGION, STREAM) for r in member_rows)
    assert rows(aws, STREAM) == []
    # and the e-mail names the account and region
    [mail] = aws.emails()
    assert mail["Subject"].startswith(f"[{MEMBER} {REGION}] [APPLIED] {STREAM}")
    assert f"Account:   {MEMBER}\nRegion:    {REGION}\n" in mail["Message"]


def test_dry_run_makes_no_mutating_call_in_the_member(aws: Any, hub: Hub) -> None:
    # Given a dry-run policy for the member's stream
    put_policy(aws, member_policy(mode="dry-run"))

    # When its alarm fires
    result = hub.invoke(event_from(MEMBER))

    # Then the plan is e-mailed (naming the account) and the member saw reads only
    assert result["status"] == "dry-run", result
    member_operations = {c.operation for c in hub.member_calls()}
    assert member_operations and all(is_read(op) for op in member_operations), member_operations
    assert shards(hub.member_kinesis) == 2
    [mail] = aws.emails()
    assert mail["Subject"].startswith(f"[{MEMBER} {REGION}] [DRY-RUN]")


@pytest.mark.parametrize(
    ("policies", "sender", "case"),
    [
        pytest.param([member_policy()], STRANGER, "an account named in no policy", id="unknown-account"),
        pytest.param(
            [member_policy(), member_policy(account=STRANGER, name="payments")],
            STRANGER,
            "a stream named only in another account's policy",
            id="another-accounts-stream",
        ),
        pytest.param([], MEMBER, "a member whose stream only the hub's own policy names", id="hub-stream-by-name"),
        pytest.param(
            [member_policy() | {"region": "eu-west-1"}], MEMBER, "the member's stream in another region", id="region"
        ),
    ],
)
def test_a_member_cannot_make_the_hub_act_on_a_stream_no_policy_names_there(
    aws: Any, hub: Hub, policies: list[dict[str, Any]], sender: str, case: str
) -> None:
    # Given policies that do not name 'orders' in the sender's account and region (the hub's own 'orders' is named)
    for raw in policies:
        put_policy(aws, raw)

    # When an alarm event for 'orders' comes from the sender
    result = hub.invoke(event_from(sender))

    # Then it is ignored and audited under the sender's account and region, no role is assumed, nothing changes
    assert result["status"] == "ignored", case
    assert f"no policy names stream '{STREAM}' in account {sender}, region {REGION}" in result["detail"]
    assert hub.calls.named("AssumeRole") == []
    [row] = rows(aws, f"{sender}/{REGION}/{STREAM}")
    assert (row["outcome"], row["account"], row["region"]) == ("ignored", sender, REGION)
    assert rows(aws, STREAM) == []
    assert aws.shard_count(STREAM) == 2 and shards(hub.member_kinesis) == 2
    assert aws.emails() == []


def test_an_envelope_that_disagrees_with_the_alarm_arn_is_audited_not_acted_on(aws: Any, hub: Hub) -> None:
    # Given the member's enforced policy
    put_policy(aws, member_policy())

    # When an event says it comes from the member but its alarm ARN is in another account
    result = hub.invoke(event_from(MEMBER, arn_account=STRANGER))

    # Then it is ignored, audited under the envelope's account, and no role is assumed
    assert result["status"] == "ignored"
    assert f"but its alarm's ARN names account '{STRANGER}'" in result["detail"]
    assert hub.calls.named("AssumeRole") == []
    [row] = rows(aws, f"{MEMBER}/{REGION}/{STREAM}")
    assert row["outcome"] == "ignored"
    assert shards(hub.member_kinesis) == 2


def test_a_refused_assume_role_is_audited_and_emailed_and_not_retried(aws: Any, hub: Hub) -> None:
    # Given the member's enforced policy, and STS refusing the role (a trust policy or external id that does not
    # match: moto does not evaluate them, so the Stubber answers as STS does)
    put_policy(aws, member_policy())
    sessions = hub.handler.dependencies().members.connect.__self__
    stubber = Stubber(sessions._sts)
    stubber.add_client_error(
        "assume_role",
        service_error_code="AccessDenied",
        service_message=f"User: arn:aws:sts::{ACCOUNT}:assumed-role/hub/x is not authorized to perform: "
        f"sts:AssumeRole on resource: {MEMBER_ROLE}",
        http_status_code=403,
    )

    # When the member's alarm fires
    with stubber:
        result = hub.invoke(event_from(MEMBER))

    # Then the invocation returns (no retry) with a failed outcome that says why; nothing changed
    assert result["status"] == "failed"
    assert "AccessDenied" in result["detail"] and "Nothing was changed" in result["detail"]
    assert shards(hub.member_kinesis) == 2 and hub.member_calls() == []
    # audited under the member's stream, and e-mailed naming the account and region
    [row] = rows(aws, f"{MEMBER}/{REGION}/{STREAM}")
    assert (row["outcome"], row["account"]) == ("failed", MEMBER)
    assert "AccessDenied" in row["reason"]
    [mail] = aws.emails()
    assert mail["Subject"].startswith(f"[{MEMBER} {REGION}] [FAILED] {STREAM}")
    assert "could not act in account" in mail["Message"]


@pytest.mark.parametrize("hub", [False], indirect=True, ids=["no-external-id"])
def test_without_an_external_id_a_members_event_fails_clearly(aws: Any, hub: Hub) -> None:
    # Given a hub deployed without MEMBER_EXTERNAL_ID, and the member's policy
    put_policy(aws, member_policy())

    # When the member's alarm fires
    result = hub.invoke(event_from(MEMBER))

    # Then it fails, audited and e-mailed, without calling STS
    assert result["status"] == "failed"
    assert "no external id is configured" in result["detail"]
    assert hub.calls.named("AssumeRole") == []
    [row] = rows(aws, f"{MEMBER}/{REGION}/{STREAM}")
    assert row["outcome"] == "failed"
    assert len(aws.emails()) == 1


def test_the_assumed_credentials_serve_the_next_alarm_state_change(aws: Any, hub: Hub) -> None:
    # Given a dry-run member policy (nothing changes between the two)
    put_policy(aws, member_policy(mode="dry-run"))

    # When two state changes of the same alarm arrive in one warm container
    first = hub.invoke(event_from(MEMBER, timestamp="2026-11-26T02:59:00.000+0000"))
    assumed = len(hub.calls.named("AssumeRole"))
    second = hub.invoke(event_from(MEMBER, timestamp="2026-11-26T03:09:00.000+0000"))

    # Then the role was assumed once, for both
    assert (first["status"], second["status"]) == ("dry-run", "dry-run")
    assert (assumed, len(hub.calls.named("AssumeRole"))) == (1, 0)


def test_the_same_alarm_at_the_same_time_in_the_hub_and_a_member_are_two_triggers(aws: Any, hub: Hub) -> None:
    # Given the same alarm name in the hub and the member, both streams enforced
    put_policy(aws, member_policy())

    # When both go into ALARM at the same instant
    hub_result = hub.invoke(alarm_event(WRITE_ALARM))
    member_result = hub.invoke(event_from(MEMBER))

    # Then each is acted on in its own account (idempotency, write-ahead and lease keys do not collide)
    assert (hub_result["status"], member_result["status"]) == ("applied", "applied")
    assert aws.shard_count(STREAM) == 4 and shards(hub.member_kinesis) == 4


def test_follow_through_continues_a_members_reshard_reading_the_members_alarm(aws: Any, hub: Hub) -> None:
    # Given a 1-shard member stream that needs 8 (three doublings), whose alarm is in ALARM in the member account
    kinesis, cloudwatch = hub.member_kinesis, member_client(MEMBER, "cloudwatch")
    kinesis.create_stream(StreamName="clicks", ShardCount=1)
    saturate(cloudwatch, "clicks", {"bytes_per_second": 4_500_000, "records_per_second": 500, "throttled": 50})
    cloudwatch.put_metric_alarm(
        AlarmName=alarm("clicks", "write-throttling"),
        Namespace="AWS/Kinesis",
        MetricName="WriteProvisionedThroughputExceeded",
        Dimensions=[{"Name": "StreamName", "Value": "clicks"}],
        Statistic="Sum",
        Period=60,
        EvaluationPeriods=1,
        Threshold=1,
        ComparisonOperator="GreaterThanThreshold",
    )
    cloudwatch.set_alarm_state(AlarmName=alarm("clicks", "write-throttling"), StateValue="ALARM", StateReason="test")
    put_policy(aws, member_policy(name="clicks"))
    since = (datetime.now(UTC) - timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "+0000"

    # When the alarm's state change arrives, Then the first doubling is applied and a follow-up scheduled in the hub
    assert hub.invoke(event_from(MEMBER, stream="clicks", timestamp=since))["status"] == "applied"
    assert shards(kinesis, "clicks") == 2
    scheduler = aws.client("scheduler")
    [name] = [s["Name"] for s in scheduler.list_schedules(NamePrefix=SCHEDULE_PREFIX)["Schedules"]]
    payload = json.loads(scheduler.get_schedule(Name=name)["Target"]["Input"])
    assert (payload["account"], payload["region"], payload["member"]) == (MEMBER, REGION, True)

    # When the schedule fires (moto never fires one: its Input is handed to the handler, as Scheduler would)
    result = hub.invoke(payload)

    # Then the follow-up read the member's alarm through the role and applied the next doubling in the member
    assert result["status"] == "applied", result
    assert shards(kinesis, "clicks") == 4
    assert [c.params["AlarmNames"] for c in hub.member_calls() if c.operation == "DescribeAlarms"] == [
        [alarm("clicks", "write-throttling")]
    ]
    applied = [r for r in rows(aws, f"{MEMBER}/{REGION}/clicks") if r["outcome"] == "applied"]
    assert len(applied) == 2


def test_a_members_alarm_back_to_ok_emails_what_was_done_there(aws: Any, hub: Hub) -> None:
    # Given the member's stream resharded by its alarm
    put_policy(aws, member_policy())
    assert hub.invoke(event_from(MEMBER))["status"] == "applied"
    aws.emails()  # the "applied" e-mail, read and left aside

    # When the alarm goes back to OK in the member
    ok = event_from(MEMBER, timestamp="2026-11-26T03:09:00.000+0000")
    ok["detail"]["state"]["value"], ok["detail"]["previousState"] = (
        "OK",
        {"value": "ALARM", "reason": "", "timestamp": "2026-11-26T02:59:00.000+0000"},
    )
    result = hub.invoke(ok)

    # Then the resolution is audited under the member's stream and e-mailed naming the account and region
    assert result["status"] == "resolved", result
    assert [r["outcome"] for r in rows(aws, f"{MEMBER}/{REGION}/{STREAM}")].count("resolved") == 1
    assert rows(aws, STREAM) == []
    mails = [m for m in aws.emails() if "RESOLVED" in m["Subject"]]
    assert len(mails) == 1 and mails[0]["Subject"].startswith(f"[{MEMBER} {REGION}] [RESOLVED] {STREAM}")
