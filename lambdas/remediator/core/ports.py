"""What the core and the service need from the outside world. The clients layer implements these."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

from remediator.core.evidence import MetricQuery, StreamState
from remediator.core.history import PastAction

if TYPE_CHECKING:
    from remediator.core.policy import StreamPolicy


class StreamControl(Protocol):
    def describe(self, stream_name: str) -> StreamState: ...

    def update_shard_count(self, stream_arn: str, target_shards: int) -> dict[str, Any]: ...


class MetricsReader(Protocol):
    def read(
        self, stream_name: str, queries: tuple[MetricQuery, ...], end: datetime, minutes: int
    ) -> dict[str, tuple[float, ...]]: ...


class AuditLog(Protocol):
    def record(self, entry: dict[str, Any]) -> None: ...

    def applied_actions(self, stream: str, since: datetime) -> list[PastAction]: ...


class Notifier(Protocol):
    def send(self, stream: str, subject: str, body: str) -> str: ...


class PolicySource(Protocol):
    """The validated policy of a stream, or None when it has none (or none that validates)."""

    def get(self, stream: str) -> StreamPolicy | None: ...


class KillSwitch(Protocol):
    def engaged(self) -> bool: ...


class MutatingPorts(Protocol):
    """Only what actions may call to change AWS; handed to Action.apply."""

    @property
    def streams(self) -> StreamControl: ...
