"""The write ports: one per AWS service, each a boto3 client called by operation name."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from botocore import xform_name


class BotoService:
    """One AWS service's API: `call("UpdateShardCount", StreamARN=...)` -> the response, metadata removed."""

    def __init__(self, client: Any) -> None:
        self._client = client

    def call(self, operation: str, **parameters: Any) -> dict[str, Any]:
        if operation not in self._client.meta.service_model.operation_names:
            raise ValueError(f"{self._client.meta.service_model.service_name} has no operation {operation}")
        response: dict[str, Any] = getattr(self._client, xform_name(operation))(**parameters)
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
