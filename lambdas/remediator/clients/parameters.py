"""SSM-backed settings read at run time: the kill switch and the deployed policies (Powertools parameters)."""

from __future__ import annotations

import json
from typing import Any

from aws_lambda_powertools.utilities import parameters
from aws_lambda_powertools.utilities.parameters.exceptions import GetParameterError, TransformParameterError
from botocore.exceptions import BotoCoreError, ClientError
from pydantic import ValidationError

from remediator.core.deployment import KILL_SWITCH_OFF, POLICY_CACHE_SECONDS
from remediator.core.policy import StreamPolicy, stream_key
from remediator.core.ports import KillSwitchUnreadable, PolicyUnreadable
from remediator.core.registry import REGISTRY
from remediator.observability import logger


def error_code(exc: GetParameterError) -> str | None:
    """The SDK's error code behind a failed read (None for a timeout or a broken connection). Powertools wraps
    the SDK's error in GetParameterError without its code; the SDK's error is that exception's context."""
    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, ClientError):
            return str(cause.response.get("Error", {}).get("Code"))
        cause = cause.__cause__ or cause.__context__
    return None


ABSENT_POLICY_CODES = ("ParameterNotFound", "AccessDeniedException")


class SsmKillSwitch:
    """Engaged unless the parameter reads 'off' (case and surrounding blanks ignored): any other value, or a
    missing parameter (the stack creates it: someone deleted it), stops mutations. A read that fails
    (throttled, denied, AWS failing) raises KillSwitchUnreadable: the service never takes it as 'off'; before
    any change it lets the invocation fail (Lambda retries, then the dead-letter queue), after one it stops
    like an engaged switch (remediator.writeahead)."""

    def __init__(self, ssm: Any, name: str) -> None:
        self._provider = parameters.SSMProvider(boto3_client=ssm)
        self._name = name

    def engaged(self) -> bool:
        try:
            value = self._provider.get(self._name, force_fetch=True)
        except GetParameterError as exc:
            if error_code(exc) == "ParameterNotFound":
                logger.error(
                    "The kill switch parameter is missing; treating it as engaged", extra={"parameter": self._name}
                )
                return True
            raise KillSwitchUnreadable(f"cannot read the kill switch {self._name}: {exc}") from exc
        return str(value).strip().lower() != KILL_SWITCH_OFF


class SsmPolicySource:
    """One JSON parameter per protected stream, written by the CDK app from the validated policy files.

    None ("no policy": the trigger is ignored) only when the parameter truly is absent, or its content is not a
    valid policy for the stream. AccessDenied counts as absent: the stack grants the role a read of exactly the
    deployed policies' parameters, so a denial means the stream has no deployed policy. A read that fails in
    any other way (throttled, a 5xx, a timeout) raises PolicyUnreadable: Lambda retries, then the dead-letter
    queue; Powertools idempotency deletes its record when the function raises, so no "ignored" result is
    cached for the trigger.
    """

    def __init__(self, ssm: Any, prefix: str) -> None:
        self._ssm = ssm
        self._provider = parameters.SSMProvider(boto3_client=ssm)
        self._prefix = prefix.rstrip("/")

    def names(self) -> list[str]:
        """The streams with a policy parameter directly under the prefix: GetParametersByPath, one page of at most
        10 parameters per call (SSM's maximum), so 1,000 streams take 100 calls. Stream names contain no '/', so
        the listing is not recursive. IAM authorises the call against the path itself (the prefix), not against
        the parameters it returns. Any failure raises PolicyUnreadable (the census fails, Lambda retries it)."""
        names: list[str] = []
        try:
            pages = self._ssm.get_paginator("get_parameters_by_path").paginate(
                Path=self._prefix, Recursive=False, PaginationConfig={"PageSize": 10}
            )
            for page in pages:
                names += [p["Name"][len(self._prefix) + 1 :] for p in page.get("Parameters", [])]
        except (ClientError, BotoCoreError) as exc:
            raise PolicyUnreadable(f"cannot list the policies under {self._prefix}: {exc}") from exc
        return sorted(name for name in names if name)

    def get(self, stream: str, account: str | None = None, region: str | None = None) -> StreamPolicy | None:
        """The policy parameter `<prefix>/<key>` (core.policy.stream_key: the stream's name for a hub-local
        stream, `<account>/<region>/<name>` for one elsewhere)."""
        name = f"{self._prefix}/{stream_key(stream, account, region)}"
        try:
            raw = self._provider.get(name, max_age=POLICY_CACHE_SECONDS, transform="json")
        except TransformParameterError:
            logger.exception("Deployed policy is not JSON; ignoring the stream", extra={"parameter": name})
            return None
        except GetParameterError as exc:
            if error_code(exc) in ABSENT_POLICY_CODES:
                logger.info("No policy parameter for stream", extra={"parameter": name})
                return None
            raise PolicyUnreadable(f"cannot read the policy of stream '{stream}' ({name}): {exc}") from exc
        try:
            # Strict, like the policy files: the stack writes model_dump(mode="json"), which always passes.
            policy = REGISTRY.parse_stream_policy_json(json.dumps(raw))
        except ValidationError:
            logger.exception("Deployed policy does not validate; ignoring the stream", extra={"parameter": name})
            return None
        if (policy.name, policy.account, policy.region) != (stream, account, region):
            # Never act on one stream under another stream's policy (nor on a stream in another account's).
            logger.error("Deployed policy names another stream", extra={"parameter": name, "names": policy.key})
            return None
        return policy
