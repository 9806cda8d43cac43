"""The write ports: one per AWS service, each a boto3 client called by operation name."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from botocore import xform_name
from botocore.exceptions import ClientError, ConnectionError, HTTPClientError

from remediator.core.ports import (
    READ_OPERATION_PREFIXES,
    ChangeFailed,
    ChangeRefused,
    ChangeUnanswered,
    LimitReached,
)

# Error codes by which AWS refuses a change for one of its limits (aws-facts.md: UpdateShardCount's daily
# scalings and shard quota, RegisterStreamConsumer's consumers, DynamoDB's UpdateTable decreases and
# concurrent updates). Kinesis also answers it for its control-plane call rate: that too is a limit that
# retrying within this invocation would not lift. The SDK counts it as throttling and would retry it; the
# write client does not retry at all.
LIMIT_CODES = frozenset({"LimitExceededException"})


def change_failure(operation: str, exc: Exception) -> ChangeFailed | None:
    """What a failed mutating call tells about the change, or None when the error is not AWS's answer."""
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        code, message = str(error.get("Code", "Unknown")), str(error.get("Message", ""))
        status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
        if code in LIMIT_CODES and status < 500:
            return LimitReached(operation, code, message)
        if status >= 500 or status == 0:  # 0: no status known; AWS may have taken the change
            return ChangeUnanswered(operation, code, message or f"HTTP {status}")
        return ChangeRefused(operation, code, message)
    if isinstance(exc, (HTTPClientError, ConnectionError)):
        # A read timeout or a dropped connection may come after AWS took the change; a connect timeout comes
        # before it was sent, but telling them apart buys nothing: re-reading settles both.
        return ChangeUnanswered(operation, type(exc).__name__, str(exc))
    return None


class BotoService:
    """One AWS service's API: `call("UpdateShardCount", StreamARN=...)` -> the response, metadata removed."""

    def __init__(self, client: Any) -> None:
        self._client = client

    def call(self, operation: str, **parameters: Any) -> dict[str, Any]:
        if operation not in self._client.meta.service_model.operation_names:
            raise ValueError(f"{self._client.meta.service_model.service_name} has no operation {operation}")
        try:
            response: dict[str, Any] = getattr(self._client, xform_name(operation))(**parameters)
        except Exception as exc:
            failure = None if operation.startswith(READ_OPERATION_PREFIXES) else change_failure(operation, exc)
            if failure is None:
                raise
            raise failure from exc
        response.pop("ResponseMetadata", None)
        return response


class AwsServices:
    """WritePorts over boto3: a client per service, made the first time an action needs it."""

    def __init__(self, client_for: Callable[[str], Any]) -> None:
        self._client_for = client_for
        self._services: dict[str, BotoService] = {}

    def service(self, name: str) -> BotoService:
        if name not in self._services:
            self._services[name] = BotoService(self._client_for(name))
        return self._services[name]
