"""In-memory adapters of core/ports.py over the simulated stream: the same core the Lambda runs, fed by the model.

- SimStreams (StreamReader) and the `kinesis` ServicePort read the simulated stream; its writes go to the model's
  StreamControl, which refuses a call as AWS would (SimulatedAwsError): the port turns that into the botocore
  ClientError AWS's answer would be and hands it to the production translation (clients.services.change_failure),
  so guardrails, the write-ahead audit and LimitReached behave as in AWS.
- `cloudtrail` LookupEvents answers the stream's accepted UpdateShardCount calls (the daily-scalings guardrail reads
  them); any other service or operation is not modelled and fails loudly with the error code NotSimulated.
- SimMetrics (MetricsReader) answers the evidence queries from the simulated series (alarm_eval.MetricSeries);
  a metric the model does not produce answers no datapoints, as CloudWatch does for a metric that has none.
- MemoryAudit, CapturingNotifier, KillSwitchOff, OnePolicy, MemoryScheduler, EvaluatorAlarmStates: the audit table,
  the e-mails, the kill switch (off), the policy, follow-through's schedules (fired by the backtest at their minute)
  and the alarms' states (from the evaluator).
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from botocore.exceptions import ClientError

from remediator.clients.services import change_failure
from remediator.core.evidence import StreamMode, StreamState
from remediator.core.follow_through import FollowUp
from remediator.core.history import PastAction
from remediator.core.intent import Intent, Lease
from remediator.core.metrics import MetricQuery
from remediator.core.outcome import COUNTED_AS_APPLIED, AuditEntry, OutcomeStatus, StepOutcome
from remediator.core.policy import StreamPolicy
from remediator.core.ports import READ_OPERATION_PREFIXES, AlarmState
from remediator.rehearsal.alarm_eval import AlarmEvaluator, MetricSeries, why_not_produced
from remediator.rehearsal.simulator import SimulatedAwsError, SimulatedStream

NOT_SIMULATED = "NotSimulated"


def aws_error(operation: str, code: str, message: str, status: int = 400) -> ClientError:
    """The botocore error AWS's answer would raise."""
    response: Any = {"Error": {"Code": code, "Message": message}, "ResponseMetadata": {"HTTPStatusCode": status}}
    return ClientError(response, operation)


@dataclass
class Where:
    """The simulated stream's identity and the backtest's current minute (set by the backtest as it goes)."""

    stream: str
    account: str
    region: str
    minute: int = 0
    now: datetime = datetime.min

    @property
    def arn(self) -> str:
        return f"arn:aws:kinesis:{self.region}:{self.account}:stream/{self.stream}"


class SimStreams:
    def __init__(self, model: Callable[[], SimulatedStream], where: Where) -> None:
        self._model, self._where = model, where

    def describe(self, stream_name: str) -> StreamState:
        if stream_name != self._where.stream:
            raise aws_error("DescribeStreamSummary", "ResourceNotFoundException", f"Stream {stream_name} not found")
        model = self._model()
        view = model.describe()
        return StreamState(
            name=stream_name,
            arn=self._where.arn,
            status=view.status,
            mode=view.mode,
            open_shards=view.shards,
            retention_hours=view.retention_hours,
            consumer_count=model.setup.efo_consumers,
        )


class SimMetrics:
    def __init__(self, series: MetricSeries) -> None:
        self._series = series

    def read(self, queries: tuple[MetricQuery, ...], end: datetime, minutes: int) -> dict[str, tuple[float, ...]]:
        found: dict[str, tuple[float, ...]] = {}
        for query in queries:
            metrics = query.source.metrics if hasattr(query.source, "inputs") else (query.source,)  # type: ignore[union-attr]
            produced = not any(why_not_produced(metric, self._series.stream) for metric in metrics)
            found[query.key] = self._series.series(query.source, end, minutes) if produced else ()
        return found


class SimService:
    """One service's API over the model; see the module docstring."""

    def __init__(self, name: str, model: Callable[[], SimulatedStream], where: Where) -> None:
        self._name, self._model, self._where = name, model, where

    def call(self, operation: str, **parameters: Any) -> dict[str, Any]:
        handler = getattr(self, f"_{self._name}_{operation}", None)
        if handler is None:
            error = aws_error(operation, NOT_SIMULATED, f"the backtest does not model {self._name}:{operation}")
            if operation.startswith(READ_OPERATION_PREFIXES):
                raise error
            failure = change_failure(operation, error)
            assert failure is not None
            raise failure from error
        self._check_stream(operation, parameters)
        try:
            result: dict[str, Any] = handler(**parameters)
        except SimulatedAwsError as refused:
            error = aws_error(operation, refused.code, refused.message)
            failure = None if operation.startswith(READ_OPERATION_PREFIXES) else change_failure(operation, error)
            raise (failure or error) from refused
        return result

    def _check_stream(self, operation: str, parameters: dict[str, Any]) -> None:
        named = parameters.get("StreamARN") or parameters.get("StreamName")
        if named is not None and named not in (self._where.arn, self._where.stream):
            raise aws_error(operation, "ResourceNotFoundException", f"Stream {named} not found")

    def _summary(self) -> dict[str, Any]:
        model = self._model()
        view = model.describe()
        return {
            "StreamName": self._where.stream,
            "StreamARN": self._where.arn,
            "StreamStatus": str(view.status),
            "StreamModeDetails": {"StreamMode": str(view.mode)},
            "OpenShardCount": view.shards,
            "RetentionPeriodHours": view.retention_hours,
            "ConsumerCount": model.setup.efo_consumers,
            "EnhancedMonitoring": [{"ShardLevelMetrics": []}],
        }

    # --- kinesis ---------------------------------------------------------------------------------------------

    def _kinesis_DescribeStreamSummary(self, **_: Any) -> dict[str, Any]:
        return {"StreamDescriptionSummary": self._summary()}

    def _kinesis_DescribeLimits(self, **_: Any) -> dict[str, Any]:
        model = self._model()
        on_demand = int(model.mode == StreamMode.ON_DEMAND)
        return {
            "ShardLimit": model.setup.account_shard_limit,
            "OpenShardCount": model.open_shards(),
            "OnDemandStreamCount": on_demand,
            "OnDemandStreamCountLimit": 50,
        }

    def _kinesis_UpdateShardCount(self, *, TargetShardCount: int, **_: Any) -> dict[str, Any]:
        model = self._model()
        current = model.open_shards()
        model.update_shard_count(int(TargetShardCount))
        return {
            "StreamName": self._where.stream,
            "StreamARN": self._where.arn,
            "CurrentShardCount": current,
            "TargetShardCount": int(TargetShardCount),
        }

    def _kinesis_IncreaseStreamRetentionPeriod(self, *, RetentionPeriodHours: int, **_: Any) -> dict[str, Any]:
        self._model().increase_retention(int(RetentionPeriodHours))
        return {}

    def _kinesis_UpdateStreamMode(self, *, StreamModeDetails: dict[str, str], **_: Any) -> dict[str, Any]:
        self._model().update_stream_mode(StreamMode(StreamModeDetails["StreamMode"]))
        return {}

    # --- cloudtrail --------------------------------------------------------------------------------------------

    def _cloudtrail_LookupEvents(
        self,
        *,
        StartTime: datetime,
        EndTime: datetime,
        **_: Any,
    ) -> dict[str, Any]:
        model = self._model()
        events = []
        for call in reversed(model.calls):  # newest first, as LookupEvents answers
            at = model.start + timedelta(minutes=call.index + 1)
            if call.operation != "UpdateShardCount" or call.error_code is not None or not StartTime <= at <= EndTime:
                continue
            detail = {
                "requestParameters": {
                    "streamName": self._where.stream,
                    "targetShardCount": call.parameters["TargetShardCount"],
                }
            }
            events.append(
                {
                    "EventName": "UpdateShardCount",
                    "EventTime": at,
                    "Username": "kinesis-remediator-backtest",
                    "Resources": [{"ResourceName": self._where.stream}],
                    "CloudTrailEvent": json.dumps(detail),
                }
            )
        return {"Events": events}


class SimServices:
    def __init__(self, model: Callable[[], SimulatedStream], where: Where) -> None:
        self._model, self._where = model, where

    def service(self, name: str) -> SimService:
        return SimService(name, self._model, self._where)


class MemoryAudit:
    """The audit table in memory (AuditLog), with the minute each row was written."""

    def __init__(self, where: Where) -> None:
        self._where = where
        self.rows: dict[str, tuple[int, AuditEntry]] = {}
        self._claims: dict[tuple[str, str], tuple[Intent, str]] = {}
        self._leases: dict[str, Lease] = {}
        self._serial = itertools.count()

    def _key(self, at: datetime) -> str:
        return f"{at.isoformat()}#{next(self._serial):08d}"

    def record(self, entry: AuditEntry) -> None:
        self.rows[self._key(entry.at)] = (self._where.minute, entry)

    def _entries(self, stream: str, since: datetime) -> list[AuditEntry]:
        return [entry for _, (_, entry) in sorted(self.rows.items()) if entry.stream == stream and entry.at >= since]

    def applied_actions(self, stream: str, since: datetime) -> list[PastAction]:
        return [
            PastAction(action=e.action, stream=stream, at=e.at, parameters=e.parameters or {})
            for e in self._entries(stream, since)
            if e.action and e.outcome in COUNTED_AS_APPLIED
        ]

    def last_advice(self, stream: str, symptom: str, since: datetime) -> datetime | None:
        found = [e.at for e in self._entries(stream, since) if e.symptom == symptom and e.notified]
        return max(found) if found else None

    def entries(self, stream: str, since: datetime) -> list[AuditEntry]:
        return sorted(self._entries(stream, since), key=lambda entry: entry.at)

    def begin(self, intent: Intent) -> Intent:
        if intent.entry is None:
            raise ValueError("an intent begins with its in-flight audit row")
        claim = (intent.trigger, intent.slot)
        if claim in self._claims:
            found, sk = self._claims[claim]
            return found.model_copy(update={"entry": self.rows[sk][1], "claimed": False})
        sk = self._key(intent.entry.at)
        self.rows[sk] = (self._where.minute, intent.entry)
        claimed = intent.model_copy(update={"row": {"sk": sk, "written": True}, "claimed": True})
        self._claims[claim] = (claimed, sk)
        return claimed

    def finish(self, intent: Intent, result: StepOutcome) -> None:
        if intent.entry is None:
            raise ValueError("an intent is finished from its in-flight audit row")
        sk = str(intent.row["sk"])
        final = intent.entry.model_copy(
            update={"outcome": OutcomeStatus(result.outcome.value), "reason": result.detail}
        )
        self.rows[sk] = (self.rows[sk][0] if sk in self.rows else self._where.minute, final)

    def intents(self, trigger: str) -> list[Intent]:
        return [
            intent.model_copy(update={"entry": self.rows[sk][1], "claimed": False})
            for (claimed_trigger, _), (intent, sk) in self._claims.items()
            if claimed_trigger == trigger
        ]

    def acquire_lease(self, lease: Lease, now: datetime) -> Lease | None:
        held = self._leases.get(lease.stream)
        if held is None or held.until < now or held.holder == lease.holder:
            self._leases[lease.stream] = lease
            return None
        return held

    def release_lease(self, lease: Lease) -> None:
        held = self._leases.get(lease.stream)
        if held is not None and held.holder == lease.holder:
            self._leases[lease.stream] = lease.model_copy(
                update={"until": datetime.fromtimestamp(0, tz=lease.until.tzinfo)}
            )


@dataclass(frozen=True)
class Email:
    index: int
    stream: str
    subject: str
    body: str


class CapturingNotifier:
    def __init__(self, where: Where) -> None:
        self._where = where
        self.sent: list[Email] = []

    def send(self, stream: str, subject: str, body: str, recipients: Sequence[str] = ()) -> str:
        self.sent.append(Email(self._where.minute, stream, subject, body))
        return f"backtest-{len(self.sent)}"


class KillSwitchOff:
    def engaged(self) -> bool:
        return False


class OnePolicy:
    def __init__(self, policy: StreamPolicy) -> None:
        self._policy = policy

    def get(self, stream: str, account: str | None = None, region: str | None = None) -> StreamPolicy | None:
        # PolicySource.get (issue 11.4): the backtest rehearses one hub-local stream; a member's lookup finds none.
        if account is not None or region is not None:
            return None
        return self._policy if stream == self._policy.name else None

    def names(self) -> list[str]:
        return [self._policy.name]


class MemoryScheduler:
    """One-time schedules; the backtest fires each at its minute (MemoryScheduler.due)."""

    def __init__(self) -> None:
        self.pending: dict[str, tuple[datetime, FollowUp]] = {}
        self.created: list[tuple[str, datetime]] = []

    def create(self, name: str, at: datetime, follow_up: FollowUp) -> None:
        if name not in self.pending:
            self.pending[name] = (at, follow_up)
            self.created.append((name, at))

    def delete(self, name: str) -> bool:
        return self.pending.pop(name, None) is not None

    def due(self, now: datetime) -> list[tuple[str, FollowUp]]:
        """The schedules whose time has come, oldest first (they stay pending until the follow-up deletes them)."""
        ready = sorted((at, name) for name, (at, _) in self.pending.items() if at <= now)
        return [(name, self.pending[name][1]) for _, name in ready]


class EvaluatorAlarmStates:
    def __init__(self, evaluator: AlarmEvaluator) -> None:
        self._evaluator = evaluator

    def state(self, alarm_name: str) -> AlarmState | None:
        found = self._evaluator.state(alarm_name)
        if found is None:
            return None
        value, since = found
        return AlarmState(value=value, transitioned_at=since)
