"""SSM-backed settings read at run time: the kill switch and the deployed policies (Powertools parameters)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities import parameters
from aws_lambda_powertools.utilities.parameters.exceptions import GetParameterError, TransformParameterError
from pydantic import ValidationError

from remediator.core.deployment import KILL_SWITCH_OFF, POLICY_CACHE_SECONDS
from remediator.core.policy import StreamPolicy
from remediator.core.registry import REGISTRY
from remediator.observability import logger


class SsmKillSwitch:
    """Engaged unless the parameter reads 'off' (case and surrounding blanks ignored): any other value,
    a missing parameter or a read failure stops mutations."""

    def __init__(self, ssm: Any, name: str) -> None:
        self._provider = parameters.SSMProvider(boto3_client=ssm)
        self._name = name

    def engaged(self) -> bool:
        try:
            value = self._provider.get(self._name, force_fetch=True)
        except GetParameterError:
            logger.exception("Cannot read the kill switch; treating it as engaged", extra={"parameter": self._name})
            return True
        return str(value).strip().lower() != KILL_SWITCH_OFF


class SsmPolicySource:
    """One JSON parameter per protected stream, written by the CDK app from the validated policy files."""

    def __init__(self, ssm: Any, prefix: str) -> None:
        self._provider = parameters.SSMProvider(boto3_client=ssm)
        self._prefix = prefix.rstrip("/")

    def get(self, stream: str) -> StreamPolicy | None:
        name = f"{self._prefix}/{stream}"
        try:
            raw = self._provider.get(name, max_age=POLICY_CACHE_SECONDS, transform="json")
        except TransformParameterError:
            logger.exception("Deployed policy is not JSON; ignoring the stream", extra={"parameter": name})
            return None
        except GetParameterError:
            logger.info("No policy parameter for stream", extra={"parameter": name})
            return None
        try:
            policy = REGISTRY.parse_stream_policy(raw)
        except ValidationError:
            logger.exception("Deployed policy does not validate; ignoring the stream", extra={"parameter": name})
            return None
        if policy.name != stream:
            # Never act on one stream under another stream's policy.
            logger.error("Deployed policy names another stream", extra={"parameter": name, "names": policy.name})
            return None
        return policy
