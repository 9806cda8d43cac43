"""Issue 11.4, the hub's trust decisions and member keys as tables: where an event comes from (core.alarm.event_origin),
the role session name, the keys that keep two accounts' streams apart, and the assumed-role cache."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber
from remediator.clients.audit import DynamoAuditLog
from remediator.clients.members import CREDENTIALS_MARGIN, MemberSessions
from remediator.core.alarm import AlarmTrigger, Origin, event_origin
from remediator.core.intent import trigger_identity
from remediator.core.outcome import AuditEntry, OutcomeStatus
from remediator.core.ports import MemberUnreachable
from remediator.core.render import SUBJECT_LIMIT, located
from remediator.service import session_name

HUB, REGION = "111111111111", "us-east-1"
MEMBER = "222222222222"
ALARM = "kinesis-remediator-orders/write-throttling"


def arn(account: str, region: str = REGION, alarm: str = ALARM) -> str:
    return f"arn:aws:cloudwatch:{region}:{account}:alarm:{alarm}"


@pytest.mark.parametrize(
    ("account", "region", "resources", "hub_account", "expected"),
    [
        # The hub's own events, as before members existed (with or without the ARN)
        (HUB, REGION, [arn(HUB)], HUB, Origin(False)),
        (HUB, REGION, [], HUB, Origin(False)),
        # A member's, whose envelope and ARN agree: on to the policy check
        (MEMBER, REGION, [arn(MEMBER)], HUB, Origin(True)),
        (HUB, "eu-west-1", [arn(HUB, "eu-west-1")], HUB, Origin(True)),
        (MEMBER, "us-gov-west-1", [arn(MEMBER, "us-gov-west-1").replace("aws", "aws-us-gov", 1)], HUB, Origin(True)),
        # Envelope and ARN disagree: audited under the envelope's account and region, never acted on
        (MEMBER, REGION, [arn(HUB)], HUB, "account '111111111111'"),
        (HUB, REGION, [arn(MEMBER)], HUB, "account '222222222222'"),
        (MEMBER, REGION, [arn(MEMBER, "eu-west-1")], HUB, "region 'eu-west-1'"),
        (MEMBER, REGION, [arn(MEMBER, alarm="kinesis-remediator-payments/write-throttling")], HUB, "names alarm"),
        (MEMBER, REGION, [], HUB, "0 resource(s)"),
        (MEMBER, REGION, [arn(MEMBER), arn(MEMBER)], HUB, "2 resource(s)"),
        (MEMBER, REGION, [f"arn:aws:sns:{REGION}:{MEMBER}:topic"], HUB, "1 resource(s)"),
    ],
)
def test_where_an_event_comes_from(
    account: str, region: str, resources: list[str], hub_account: str, expected: Origin | str
) -> None:
    # Given an event's envelope and resources, When judged, Then it is the hub's, a member's, or audited and why
    origin = event_origin(
        account=account, region=region, alarm=ALARM, resources=resources, hub_account=hub_account, hub_region=REGION
    )
    if isinstance(expected, Origin):
        assert origin == expected
    else:
        assert origin.audited and expected in origin.problem, origin
        assert origin.member == ((account, region) != (hub_account, REGION))


@pytest.mark.parametrize(
    ("account", "region", "hub_account", "why"),
    [
        (MEMBER, REGION, "", "this function's account is unknown"),
        ("*", REGION, HUB, "not an AWS account id"),
        ("22222222222", REGION, HUB, "not an AWS account id"),
        (MEMBER, "moon-1", HUB, "not an AWS account id and region"),
    ],
)
def test_an_event_that_names_no_account_is_only_logged(account: str, region: str, hub_account: str, why: str) -> None:
    # Given an envelope naming no well-formed account and region (or a hub that does not know its own)
    origin = event_origin(
        account=account, region=region, alarm=ALARM, resources=[arn(MEMBER)], hub_account=hub_account, hub_region=REGION
    )
    # Then it is not acted on, and not audited (there is no account to key a row by)
    assert why in origin.problem and not origin.audited


def trigger(**overrides: Any) -> AlarmTrigger:
    fields: dict[str, Any] = {
        "alarm_name": ALARM,
        "stream": "orders",
        "symptom": "write-throttling",
        "state_timestamp": "2026-11-26T02:59:00.000+0000",
        "account": HUB,
        "region": REGION,
    }
    return AlarmTrigger(**(fields | overrides))


def test_a_members_trigger_identity_names_its_account_and_a_hub_ones_is_unchanged() -> None:
    # Given the same alarm state change in the hub and in a member
    hub, member = trigger(), trigger(account=MEMBER, member=True)
    # Then the hub's identity is as before members existed, and the member's differs by its account and region
    assert trigger_identity(hub) == f"{ALARM}#2026-11-26T02:59:00.000+0000"
    assert trigger_identity(member) == f"{MEMBER}/{REGION}#{ALARM}#2026-11-26T02:59:00.000+0000"


@pytest.mark.parametrize(
    ("stream", "symptom", "expected"),
    [
        ("orders", "write-throttling", "kr-write-throttling-orders"),
        ("a.b_c-d", "iterator-age", "kr-iterator-age-a.b_c-d"),
    ],
)
def test_the_role_session_names_the_alarm(stream: str, symptom: str, expected: str) -> None:
    assert session_name(trigger(stream=stream, symptom=symptom)) == expected


def test_a_long_session_name_is_cut_with_a_digest_and_stays_valid() -> None:
    # Given a 128-character stream name
    names = {session_name(trigger(stream=f"{'s' * 127}{last}")) for last in "ab"}
    # Then each session name fits STS's 64 characters of [\w+=,.@-], and two streams still differ
    assert len(names) == 2
    for name in names:
        assert 2 <= len(name) <= 64 and all(c.isalnum() or c in "_+=,.@-" for c in name)


def test_the_audit_keys_of_a_members_stream_name_its_account_and_region() -> None:
    # Given the audit log, and the same log keyed for a member
    log = DynamoAuditLog(None, "audit")
    member = log.scoped(MEMBER, REGION)
    entry = AuditEntry(
        at=datetime(2026, 11, 26, tzinfo=UTC),
        stream="orders",
        alarm_name=ALARM,
        symptom="write-throttling",
        outcome=OutcomeStatus.IGNORED,
        reason="r",
    )
    # Then the hub's keys are as before; the member's partition and lease name the account and region
    assert log.partition("orders") == "STREAM#orders"
    assert member.partition("orders") == f"STREAM#{MEMBER}/{REGION}/orders"
    assert member._lease_key("orders")["pk"]["S"] == f"LEASE#{MEMBER}/{REGION}/orders"
    hub_item, member_item = log._item(entry, "sk"), member._item(entry, "sk")
    assert "account" not in hub_item and "region" not in hub_item
    assert (member_item["account"]["S"], member_item["region"]["S"], member_item["stream"]["S"]) == (
        MEMBER,
        REGION,
        "orders",
    )


def test_a_members_email_names_its_account_and_region_first() -> None:
    # Given a subject at SNS's limit already
    subject, body = located("[APPLIED] orders: " + "word " * 20, "Stream: orders\n", MEMBER, REGION)
    # Then the account and region lead the subject (never cut) and the body
    assert subject.startswith(f"[{MEMBER} {REGION}] ") and len(subject) <= SUBJECT_LIMIT
    assert body.startswith(f"Account:   {MEMBER}\nRegion:    {REGION}\n")


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 11, 26, 3, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


def answer(expires: datetime) -> dict[str, Any]:
    return {
        "Credentials": {
            "AccessKeyId": "ASIAEXAMPLEEXAMPLE01",
            "SecretAccessKey": "secret",
            "SessionToken": "token",
            "Expiration": expires,
        }
    }


EXPECTED = {
    "RoleArn": f"arn:aws-cn:iam::{MEMBER}:role/KinesisRemediatorMember",
    "RoleSessionName": "kr-write-throttling-orders",
    "ExternalId": "external",
    "DurationSeconds": 3600,
}


def test_credentials_are_kept_until_shortly_before_they_expire() -> None:
    # Given STS answering twice, credentials valid for an hour
    sts = boto3.client("sts", region_name="cn-north-1")
    clock = Clock()
    stubber = Stubber(sts)
    stubber.add_response("assume_role", answer(clock.now + timedelta(hours=1)), EXPECTED)
    stubber.add_response("assume_role", answer(clock.now + timedelta(hours=2)), EXPECTED)
    sessions = MemberSessions(sts, "external", lambda: "aws-cn", clock=clock)
    with stubber:
        # When asked again before the margin, Then no second call
        first = sessions.credentials(MEMBER, "kr-write-throttling-orders")
        clock.now += timedelta(hours=1) - CREDENTIALS_MARGIN - timedelta(seconds=1)
        assert sessions.credentials(MEMBER, "kr-write-throttling-orders") is first
        # When asked within the margin of expiry, Then the role is assumed again
        clock.now += timedelta(seconds=2)
        assert sessions.credentials(MEMBER, "kr-write-throttling-orders") is not first
        stubber.assert_no_pending_responses()


@pytest.mark.parametrize(
    ("code", "status", "refused"),
    [
        ("AccessDenied", 403, True),
        ("RegionDisabledException", 403, True),
        ("Throttling", 400, False),
        ("InternalFailure", 500, False),
    ],
)
def test_a_refusal_is_member_unreachable_and_anything_else_is_raised(code: str, status: int, refused: bool) -> None:
    # Given STS answering with an error
    sts = boto3.client("sts", region_name=REGION)
    stubber = Stubber(sts)
    stubber.add_client_error("assume_role", service_error_code=code, http_status_code=status)
    sessions = MemberSessions(sts, "external", lambda: "aws")
    # When the role is assumed, Then a refusal says so (not retried); a throttle or a 5xx is raised as is (retried)
    with stubber, pytest.raises(MemberUnreachable if refused else Exception) as raised:
        sessions.credentials(MEMBER, "s1")
    assert isinstance(raised.value, MemberUnreachable) == refused
    if refused:
        assert code in str(raised.value)


def test_without_an_external_id_no_role_is_assumed() -> None:
    sts = boto3.client("sts", region_name=REGION)
    with Stubber(sts), pytest.raises(MemberUnreachable, match="no external id is configured"):
        MemberSessions(sts, None, lambda: "aws").credentials(MEMBER, "s1")
