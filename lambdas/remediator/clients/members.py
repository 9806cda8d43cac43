"""Reaching a member account and region (issue 11.4): sts:AssumeRole on the member stack's role, and the member's
clients built from those credentials.

The role is arn:<partition>:iam::<account>:role/KinesisRemediatorMember (core.deployment.MEMBER_ROLE_NAME), assumed
with the deployment's external id (MEMBER_EXTERNAL_ID) and a RoleSessionName naming the alarm (service.session_name),
which the member's CloudTrail shows for every call the hub makes there. Credentials are kept per warm container,
per account and session name, until CREDENTIALS_MARGIN before they expire: longer than one invocation can last,
so an invocation never holds credentials that expire while it runs.

STS facts (AssumeRole API reference, https://docs.aws.amazon.com/STS/latest/APIReference/API_AssumeRole.html):
DurationSeconds defaults to 3600 (the role's maximum session duration is at least one hour); RoleSessionName is
2-64 of [\\w+=,.@-]; ExternalId is 2-1224 of [\\w+=,.@:/-]; a trust policy that does not admit the caller, or an
external id that does not match its condition, answers AccessDenied (403); an STS endpoint not activated in the
account answers RegionDisabledException.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from botocore.exceptions import ClientError

from remediator.clients.aws import RETRY_CONFIG, WRITE_CONFIG, _session
from remediator.clients.follow_through import CloudWatchAlarmStates
from remediator.clients.kinesis import KinesisStreams
from remediator.clients.metrics import CloudWatchMetrics
from remediator.clients.services import AwsServices
from remediator.core.deployment import FUNCTION_TIMEOUT_SECONDS, LEASE_MARGIN_SECONDS, member_role_arn
from remediator.core.ports import MemberPorts, MemberUnreachable
from remediator.observability import logger

SESSION_SECONDS = 3600  # STS's default, and at most every role's maximum session duration
# Credentials are used only while they have longer than an invocation left.
CREDENTIALS_MARGIN = timedelta(seconds=FUNCTION_TIMEOUT_SECONDS + LEASE_MARGIN_SECONDS)
# AssumeRole's answers that mean the hub may not act there (not retried): the role or its trust refuses the hub,
# the external id does not match, STS is off in that region, or the request itself is wrong.
REFUSALS = frozenset(
    {
        "AccessDenied",
        "AccessDeniedException",
        "RegionDisabledException",
        "InvalidClientTokenId",
        "ValidationError",
        "MalformedPolicyDocument",
        "PackedPolicyTooLarge",
    }
)


def _utc_now() -> datetime:
    return datetime.now(UTC)


class MemberSessions:
    """The hub's way into its members: `connect(account, region, session_name)` -> that member's ports."""

    def __init__(
        self,
        sts: Any,
        external_id: str | None,
        partition: Callable[[], str],
        *,
        clock: Callable[[], datetime] = _utc_now,
        endpoint_url: str | None = None,
    ) -> None:
        self._sts = sts
        self._external_id = external_id
        self._partition = partition
        self._clock = clock
        self._endpoint_url = endpoint_url
        self._credentials: dict[tuple[str, str], dict[str, Any]] = {}

    def credentials(self, account: str, session_name: str) -> dict[str, Any]:
        """The role's credentials (cached until CREDENTIALS_MARGIN before they expire), or MemberUnreachable."""
        if self._external_id is None:
            raise MemberUnreachable(
                "no external id is configured (the hub's MEMBER_EXTERNAL_ID, from CDK context memberExternalId), "
                "so it assumes no member's role"
            )
        cached = self._credentials.get((account, session_name))
        if cached is not None and cached["Expiration"] - CREDENTIALS_MARGIN > self._clock():
            return cached
        role = member_role_arn(account, self._partition())
        try:
            answer = self._sts.assume_role(
                RoleArn=role,
                RoleSessionName=session_name,
                ExternalId=self._external_id,
                DurationSeconds=SESSION_SECONDS,
            )
        except ClientError as exc:
            error = exc.response.get("Error", {})
            code = str(error.get("Code", ""))
            if code in REFUSALS:
                raise MemberUnreachable(
                    f"sts:AssumeRole on {role} was refused ({code}: {error.get('Message', '')}): no such role, a "
                    "trust policy that does not admit the hub, or a wrong external id"
                ) from exc
            raise
        credentials: dict[str, Any] = answer["Credentials"]
        expiration = credentials["Expiration"]
        if isinstance(expiration, str):  # botocore parses it; a stub may not
            expiration = datetime.fromisoformat(expiration)
        credentials = {**credentials, "Expiration": expiration.astimezone(UTC)}
        self._credentials[(account, session_name)] = credentials
        logger.info("Assumed a member's role", extra={"role": role, "session": session_name})
        return credentials

    def client(self, account: str, region: str, session_name: str, service: str, *, writes: bool = False) -> Any:
        credentials = self.credentials(account, session_name)
        return _session().client(  # type: ignore[call-overload]
            service,
            region_name=region,
            endpoint_url=self._endpoint_url,
            config=WRITE_CONFIG if writes else RETRY_CONFIG,
            aws_access_key_id=credentials["AccessKeyId"],
            aws_secret_access_key=credentials["SecretAccessKey"],
            aws_session_token=credentials["SessionToken"],
        )

    def connect(self, account: str, region: str, session_name: str) -> MemberPorts:
        """The member's stream, metric, read and write ports. Assumes the role now (MemberUnreachable when
        refused), so that a refusal is known before anything else is read."""
        self.credentials(account, session_name)

        def reads(service: str) -> Any:
            return self.client(account, region, session_name, service)

        def writes(service: str) -> Any:
            return self.client(account, region, session_name, service, writes=True)

        cloudwatch = reads("cloudwatch")
        return MemberPorts(
            streams=KinesisStreams(reads("kinesis")),
            metrics=CloudWatchMetrics(cloudwatch),
            alarms=CloudWatchAlarmStates(cloudwatch),
            reads=AwsServices(reads),
            writes=AwsServices(writes),
        )
