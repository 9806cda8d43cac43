"""What the core and the service need from the outside world. The clients layer implements these.

Reads are typed, one port per AWS service the evidence comes from:
- StreamReader (Kinesis): a stream's status, mode, shard count and retention.
- MetricsReader (CloudWatch): the metric series a symptom declared, from any namespace.
- AuditLog (DynamoDB): writes every decision and reads back the applied ones (cooldowns, budgets).
- PolicySource, KillSwitch (SSM): the deployed policy of a stream, and the operator's stop.
- Notifier (SNS): the e-mails.

Writes go through WritePorts: one ServicePort per AWS service, which takes the operation by its API
name (`UpdateShardCount`) and its parameters. An action's `apply` is handed a view that accepts only
the IAM actions the action declared in its grants, so what an action may call and what the stack
grants it are the same list.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

from remediator.core.evidence import StreamState
from remediator.core.history import PastAction
from remediator.core.metrics import MetricQuery

if TYPE_CHECKING:
    from remediator.core.outcome import AuditEntry
    from remediator.core.policy import StreamPolicy


class StreamReader(Protocol):
    def describe(self, stream_name: str) -> StreamState: ...


class MetricsReader(Protocol):
    def read(self, queries: tuple[MetricQuery, ...], end: datetime, minutes: int) -> dict[str, tuple[float, ...]]:
        """Per-minute values, oldest first, for each query's key."""
        ...


class AuditLog(Protocol):
    def record(self, entry: AuditEntry) -> None: ...

    def applied_actions(self, stream: str, since: datetime) -> list[PastAction]: ...


class Notifier(Protocol):
    def send(self, stream: str, subject: str, body: str) -> str: ...


class PolicySource(Protocol):
    """The validated policy of a stream, or None when it has none (or none that validates)."""

    def get(self, stream: str) -> StreamPolicy | None: ...


class KillSwitch(Protocol):
    def engaged(self) -> bool: ...


class ServicePort(Protocol):
    """One AWS service's API: `call("UpdateShardCount", StreamARN=..., ...)` returns the response."""

    def call(self, operation: str, **parameters: Any) -> dict[str, Any]: ...


class WritePorts(Protocol):
    """The mutating side of AWS, one ServicePort per service (`kinesis`, `lambda`, `dynamodb`...)."""

    def service(self, name: str) -> ServicePort: ...


# botocore service names whose IAM prefix differs from the name.
IAM_PREFIXES = {"elbv2": "elasticloadbalancing", "stepfunctions": "states"}


def iam_action(service: str, operation: str) -> str:
    return f"{IAM_PREFIXES.get(service, service)}:{operation}"


class UndeclaredCall(PermissionError):
    """An action called an AWS operation it did not declare in its grants."""


class _DeclaredService:
    def __init__(self, name: str, port: Callable[[], ServicePort], allowed: frozenset[str], owner: str) -> None:
        self._name, self._port, self._allowed, self._owner = name, port, allowed, owner

    def call(self, operation: str, **parameters: Any) -> dict[str, Any]:
        wanted = iam_action(self._name, operation)
        if wanted not in self._allowed:
            declared = ", ".join(sorted(self._allowed))
            raise UndeclaredCall(f"action '{self._owner}' called {wanted}, which is not in its grants ({declared})")
        return self._port().call(operation, **parameters)


class DeclaredOnly:
    """WritePorts that let an action call exactly the IAM actions it declared, and nothing else."""

    def __init__(self, ports: WritePorts, allowed: frozenset[str], owner: str) -> None:
        self._ports, self._allowed, self._owner = ports, allowed, owner

    def service(self, name: str) -> ServicePort:
        return _DeclaredService(name, lambda: self._ports.service(name), self._allowed, self._owner)
