"""What the core and the service need from the outside world. The clients layer implements these.

Reads are typed, one port per AWS service the evidence comes from:
- StreamReader (Kinesis): a stream's status, mode, shard count and retention.
- MetricsReader (CloudWatch): the metric series a symptom declared, from any namespace.
- AuditLog (DynamoDB): writes every decision and reads back the applied ones (cooldowns, budgets).
- PolicySource, KillSwitch (SSM): the deployed policy of a stream, and the operator's stop.
- Notifier (SNS): the e-mails.
- Scheduler (EventBridge Scheduler), AlarmStates (CloudWatch): follow-through (core.follow_through).

Beyond those, AWS is reached through ServicePorts: one ServicePort per AWS service, which takes the
operation by its API name (`UpdateShardCount`) and its parameters. A symptom's `gather` gets a read
view (ReadPorts) and an action's `apply` a write view (WritePorts); each view accepts only the IAM
actions its plugin declared in its grants (reads only Describe/List/Get/Simulate/Lookup operations), so
what a plugin may call and what the stack grants it are the same list. An action's `gather` gets a read view
too, limited to its `read_grants`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

from remediator.core.evidence import StreamState
from remediator.core.history import PastAction
from remediator.core.metrics import MetricQuery

if TYPE_CHECKING:
    from remediator.core.follow_through import FollowUp
    from remediator.core.intent import Intent, Lease
    from remediator.core.outcome import AuditEntry, StepOutcome
    from remediator.core.policy import StreamPolicy


class StreamReader(Protocol):
    def describe(self, stream_name: str) -> StreamState: ...


class MetricsReader(Protocol):
    def read(self, queries: tuple[MetricQuery, ...], end: datetime, minutes: int) -> dict[str, tuple[float, ...]]:
        """Per-minute values, oldest first, for each query's key."""
        ...


class AuditLog(Protocol):
    def record(self, entry: AuditEntry) -> None: ...

    def applied_actions(self, stream: str, since: datetime) -> list[PastAction]:
        """Changes made since `since`: applied rows, and in-flight and uncertain ones (COUNTED_AS_APPLIED)."""
        ...

    # --- write-ahead (remediator.writeahead) ---------------------------------------------------------------

    def begin(self, intent: Intent) -> Intent:
        """Claim the intent (a conditional write: only if no delivery of the trigger claimed its slot before)
        and write its in-flight audit row: the intent, `claimed`, with where its row is. Else the intent found
        (not `claimed`), with its row as it is now."""
        ...

    def finish(self, intent: Intent, result: StepOutcome) -> None:
        """The intent's audit row becomes what happened (applied, failed, limit-reached, uncertain)."""
        ...

    def intents(self, trigger: str) -> list[Intent]:
        """Every intent a delivery of this trigger claimed, with its audit row (consistent reads)."""
        ...

    # --- the per-stream lease ---------------------------------------------------------------------------------

    def acquire_lease(self, lease: Lease, now: datetime) -> Lease | None:
        """Take the stream's lease (a conditional write: free, expired, or already this holder's). None when
        taken; else the lease that another trigger holds."""
        ...

    def release_lease(self, lease: Lease) -> None:
        """Give the lease back, if still held by this holder."""
        ...

    def last_advice(self, stream: str, symptom: str, since: datetime) -> datetime | None:
        """When advice for this stream and symptom was last e-mailed, if after `since`."""
        ...

    def entries(self, stream: str, since: datetime) -> list[AuditEntry]:
        """The stream's audit rows since `since`, oldest first (rows of an unknown outcome are left out)."""
        ...


class Scheduler(Protocol):
    """One-time schedules that invoke the remediator with a follow-up (EventBridge Scheduler)."""

    def create(self, name: str, at: datetime, follow_up: FollowUp) -> None:
        """Create it; a schedule of that name that already exists counts as created (a retried call)."""
        ...

    def delete(self, name: str) -> bool:
        """Delete it; False when there was none (already fired and deleted, or never created)."""
        ...


@dataclass(frozen=True)
class AlarmState:
    value: str  # OK, ALARM, INSUFFICIENT_DATA
    # When the state last changed (CloudWatch's StateTransitionedTimestamp); None where the API leaves it out.
    transitioned_at: datetime | None = None


class AlarmStates(Protocol):
    def state(self, alarm_name: str) -> AlarmState | None:
        """The alarm's current state, or None when there is no such alarm."""
        ...


class Notifier(Protocol):
    def send(self, stream: str, subject: str, body: str, recipients: Sequence[str]) -> str:
        """E-mail `recipients` (the stream policy's notify.emails) about `stream`; returns the message id."""
        ...


class PolicySource(Protocol):
    """The validated policy of a stream, or None when it has none (or none that validates)."""

    def get(self, stream: str, account: str | None = None, region: str | None = None) -> StreamPolicy | None:
        """The policy of `stream` in `account`/`region` as a policy writes them (None: left out, the hub's own;
        core.policy.lookup_keys lists the forms a stream elsewhere may be written in)."""
        ...

    def names(self) -> list[str]:
        """The streams that have a deployed policy (the protected streams), sorted; raises PolicyUnreadable when
        the list cannot be read."""
        ...


@dataclass(frozen=True)
class MemberPorts:
    """A member account and region's own clients (issue 11.4), through the role the hub assumed there: the stream,
    its metrics and its consumers are read and changed in the member; the audit, e-mail, kill switch, policies and
    schedules stay the hub's."""

    streams: StreamReader
    metrics: MetricsReader
    reads: ReadPorts
    writes: WritePorts
    alarms: AlarmStates  # the member's alarms' states, for follow-through


class MemberUnreachable(RuntimeError):
    """The hub may not act in a member account (issue 11.4): no external id is configured, or sts:AssumeRole on
    the member's role was refused (AccessDenied: no such role, a trust policy that does not name the hub, a wrong
    external id). Nothing was changed; the trigger is audited and e-mailed as failed, and not retried."""


class KillSwitch(Protocol):
    def engaged(self) -> bool:
        """True unless the operator's switch reads 'off'; raises KillSwitchUnreadable when it cannot be read."""
        ...


class KillSwitchUnreadable(RuntimeError):
    """The kill switch could not be read (throttled, denied, AWS failing): never taken as 'off'."""


class PolicyUnreadable(RuntimeError):
    """A stream's policy could not be read (throttled, denied, AWS failing): not the same as no policy."""


# --- how a mutating call failed (the clients translate the SDK's errors into these) ------------------------


class ChangeFailed(RuntimeError):
    """A mutating AWS call failed; the subclass says what AWS's answer tells about the change."""

    def __init__(self, operation: str, code: str, message: str) -> None:
        self.operation, self.code, self.message = operation, code, message
        super().__init__(f"{operation}: {code}: {message}")


class ChangeRefused(ChangeFailed):
    """AWS answered with a client error (4xx, throttling included): it did not make the change."""


class LimitReached(ChangeRefused):
    """AWS refused the change for one of its limits (LimitExceededException): retrying cannot help now."""


class ChangeUnanswered(ChangeFailed):
    """A 5xx, a timeout or a broken connection: the change may or may not have been made."""


class ServicePort(Protocol):
    """One AWS service's API: `call("UpdateShardCount", StreamARN=..., ...)` returns the response."""

    def call(self, operation: str, **parameters: Any) -> dict[str, Any]: ...


class ServicePorts(Protocol):
    """AWS, one ServicePort per service (`kinesis`, `lambda`, `dynamodb`...)."""

    def service(self, name: str) -> ServicePort: ...


# What a symptom's gather and an action's apply are handed (see DeclaredOnly).
ReadPorts = ServicePorts
WritePorts = ServicePorts
# "Lookup": cloudtrail:LookupEvents reads the event history and changes nothing.
READ_OPERATION_PREFIXES = ("Describe", "List", "Get", "Simulate", "Lookup")


# botocore service names whose IAM prefix differs from the name.
IAM_PREFIXES = {"elbv2": "elasticloadbalancing", "stepfunctions": "states"}


def iam_action(service: str, operation: str) -> str:
    return f"{IAM_PREFIXES.get(service, service)}:{operation}"


class UndeclaredCall(PermissionError):
    """An action called an AWS operation it did not declare in its grants."""


class _DeclaredService:
    def __init__(
        self, name: str, port: Callable[[], ServicePort], allowed: frozenset[str], owner: str, read_only: bool
    ) -> None:
        self._name, self._port, self._allowed, self._owner, self._read_only = name, port, allowed, owner, read_only

    def call(self, operation: str, **parameters: Any) -> dict[str, Any]:
        wanted = iam_action(self._name, operation)
        if self._read_only and not operation.startswith(READ_OPERATION_PREFIXES):
            raise UndeclaredCall(f"'{self._owner}' may only read, and {wanted} is not a read")
        if wanted not in self._allowed:
            declared = ", ".join(sorted(self._allowed))
            raise UndeclaredCall(f"action '{self._owner}' called {wanted}, which is not in its grants ({declared})")
        return self._port().call(operation, **parameters)


class KillSwitchEngaged(RuntimeError):
    """The kill switch was found engaged between two mutating calls of one step."""

    def __init__(self, operation: str, made: list[str], unreadable: str = "") -> None:
        self.operation, self.made = operation, made
        done = f"{len(made)} change(s) already made: {', '.join(made)}" if made else "no change made"
        state = f"unreadable ({unreadable}), taken as engaged," if unreadable else "engaged"
        super().__init__(f"kill-switch: {state} before {operation}; {done}")


class _GuardedService:
    def __init__(self, name: str, port: ServicePort, guard: KillSwitchGuard) -> None:
        self._name, self._port, self._guard = name, port, guard

    def call(self, operation: str, **parameters: Any) -> dict[str, Any]:
        if not operation.startswith(READ_OPERATION_PREFIXES):
            self._guard.before_change(iam_action(self._name, operation))
        return self._port.call(operation, **parameters)


class KillSwitchGuard:
    """ServicePorts that read the kill switch right before every mutating call after the first (which the
    caller has just checked): a step that makes several changes stops at the first one the switch forbids."""

    def __init__(self, ports: ServicePorts, kill_switch: KillSwitch) -> None:
        self._ports, self._kill_switch = ports, kill_switch
        self.made: list[str] = []

    def before_change(self, operation: str) -> None:
        if self.made:
            try:
                engaged = self._kill_switch.engaged()
            except KillSwitchUnreadable as exc:
                # A change is made already: never raise into a retry; stop as if engaged, and say why.
                raise KillSwitchEngaged(operation, list(self.made), unreadable=str(exc)) from exc
            if engaged:
                raise KillSwitchEngaged(operation, list(self.made))
        self.made.append(operation)

    def service(self, name: str) -> ServicePort:
        return _GuardedService(name, self._ports.service(name), self)


class DeclaredOnly:
    """ServicePorts that let a plugin call exactly the IAM actions it declared, and nothing else
    (and, with read_only, no operation that is not a read)."""

    def __init__(self, ports: ServicePorts, allowed: frozenset[str], owner: str, *, read_only: bool = False) -> None:
        self._ports, self._allowed, self._owner, self._read_only = ports, allowed, owner, read_only

    def service(self, name: str) -> ServicePort:
        return _DeclaredService(name, lambda: self._ports.service(name), self._allowed, self._owner, self._read_only)
