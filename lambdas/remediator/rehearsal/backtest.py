"""Rehearse a policy: replay a trace against the stream model, with the deployed alarms evaluated as CloudWatch
does, and their state changes handled by the same core as the Lambda.

Each simulated minute (simulator.simulate calls the backtest after it, as a Scaler):
1. the minute's metrics go to the alarm evaluator (alarm_eval), which evaluates every alarm whose period ends;
2. an alarm state change becomes what the handler makes of it (core.alarm.identify): into ALARM -> service.remediate,
   ALARM -> OK -> service.resolve, anything else is ignored, as in the Lambda;
3. follow-through schedules due by now fire: service.follow_up, which checks the alarm is still in ALARM.

The service runs with the adapters of rehearsal.adapters: its reads come from the model, its writes change the model
through StreamControl (refused as AWS would refuse them), its audit, e-mails and schedules stay in memory, the kill
switch is off and the clock is the simulated minute's end. Nothing is decided here: the plan, the guardrails, the
write-ahead and the follow-through are the core's. A delivery that raises is retried twice at once (the function's
asynchronous retries, which in AWS come a minute or two later), then recorded with status "error".
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from remediator.core.alarm import AlarmResolved, AlarmTrigger, deployed_alarms, identify
from remediator.core.deployment import DEFAULT_ALARM_PREFIX
from remediator.core.follow_through import FollowUp
from remediator.core.outcome import OutcomeStatus
from remediator.core.policy import PER_STREAM, StreamPolicy
from remediator.core.registry import REGISTRY
from remediator.rehearsal.adapters import (
    CapturingNotifier,
    Email,
    EvaluatorAlarmStates,
    KillSwitchOff,
    MemoryAudit,
    MemoryScheduler,
    OnePolicy,
    SimMetrics,
    SimServices,
    SimStreams,
    Where,
)
from remediator.rehearsal.alarm_eval import ALARM, OK, AlarmChange, AlarmEvaluator
from remediator.rehearsal.simulator import (
    MinuteStats,
    SimulatedStream,
    SimulationResult,
    StreamControl,
    StreamSetup,
    simulate,
)
from remediator.rehearsal.trace import TraceMinute
from remediator.service import Dependencies, FollowThrough, follow_up, remediate, resolve

ACCOUNT = "000000000000"  # the simulated stream's account and region, when the policy names none
REGION = "us-east-1"
SCHEDULE_PREFIX = "kr-backtest-"
ITERATOR_AGE = "iterator-age"
# The function's retry_attempts for asynchronous invocations (stacks/constructs/remediator.py).
LAMBDA_RETRIES = 2


@dataclass(frozen=True)
class BacktestAction:
    """A step the core audited: its minute, action, parameters and outcome (applied, dry-run, blocked, failed...)."""

    index: int
    action: str
    parameters: dict[str, Any]
    status: str
    reason: str = ""
    symptom: str = ""


@dataclass(frozen=True)
class Delivery:
    """One unit of work handed to the core: an alarm change or a follow-up, and the outcome it returned."""

    index: int
    kind: str  # alarm, resolution, follow-up
    alarm: str
    status: str
    detail: str


@dataclass(frozen=True)
class BacktestResult:
    policy: str
    simulation: SimulationResult
    actions: list[BacktestAction]
    alarm_changes: list[AlarmChange]
    not_simulated: list[str]
    not_simulated_why: dict[str, str] = field(default_factory=dict)
    deliveries: list[Delivery] = field(default_factory=list)
    emails: list[Email] = field(default_factory=list)
    lag_threshold_ms: float = 0.0
    simulated_alarms: list[str] = field(default_factory=list)

    @property
    def lag_minutes(self) -> int:
        return self.simulation.lag_minutes(self.lag_threshold_ms)

    def summary(self) -> dict[str, Any]:
        sim = self.simulation
        return {
            "minutes": len(sim.minutes),
            "throttled_minutes": sim.throttled_minutes,
            "throttled_records": round(sim.write_throttled_records),
            "lag_minutes": self.lag_minutes,
            "lag_threshold_ms": self.lag_threshold_ms,
            "records_lost": round(sim.records_lost),
            "shard_hours": round(sim.shard_hours, 3),
            "cost_usd": round(sim.cost_usd, 4),
            "scaling_calls": sim.scaling_calls,
            "max_iterator_age_ms": round(sim.max_iterator_age_ms),
        }

    def to_json(self) -> dict[str, Any]:
        sim = self.simulation
        start = sim.minutes[0].timestamp if sim.minutes else None
        return {
            "policy": self.policy,
            "start": start.isoformat() if start else None,
            "setup": {
                "shards": sim.setup.shards,
                "mode": str(sim.setup.mode),
                "retention_hours": sim.setup.retention_hours,
                "consumer_records_per_s": sim.setup.consumer_records_per_s,
                "polling_consumers": sim.setup.polling_consumers,
                "efo_consumers": sim.setup.efo_consumers,
                "reshard_minutes": sim.setup.reshard_minutes,
            },
            "summary": self.summary(),
            "cost_items_usd": {name: round(usd, 4) for name, usd in sim.cost_items.items()},
            "actions": [
                {
                    "minute": a.index,
                    "at": _at(sim, a.index),
                    "action": a.action,
                    "symptom": a.symptom,
                    "parameters": a.parameters,
                    "status": a.status,
                    "reason": a.reason,
                }
                for a in self.actions
            ],
            "aws_calls": [
                {"minute": c.index, "operation": c.operation, "parameters": c.parameters, "error_code": c.error_code}
                for c in sim.actions
            ],
            "alarm_changes": [
                {"minute": c.index, "at": c.at.isoformat(), "alarm": c.alarm, "old": c.old, "new": c.new}
                for c in self.alarm_changes
            ],
            "deliveries": [
                {"minute": d.index, "kind": d.kind, "alarm": d.alarm, "status": d.status, "detail": d.detail}
                for d in self.deliveries
            ],
            "emails": [{"minute": e.index, "subject": e.subject} for e in self.emails],
            "simulated_alarms": self.simulated_alarms,
            "not_simulated": [
                {"alarm": name, "why": self.not_simulated_why.get(name, "")} for name in self.not_simulated
            ],
            "shards_per_minute": sim.shards_per_minute,
        }


def _at(sim: SimulationResult, index: int) -> str | None:
    return sim.minutes[index].timestamp.isoformat() if 0 <= index < len(sim.minutes) else None


def _stamp(moment: datetime) -> str:
    """CloudWatch's state timestamp form ("2026-11-26T02:59:00.000+0000")."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.000+0000")


def lag_threshold_ms(policy: StreamPolicy) -> float:
    """The iterator-age detector's threshold (whether or not the detector is enabled)."""
    detector: Any = REGISTRY.symptoms[ITERATOR_AGE].detector(policy)
    return float(detector.threshold_ms)


class _Driver:
    """The backtest as simulate()'s Scaler: alarms evaluated, the core called, schedules fired."""

    name = "kinesis-remediator"

    def __init__(self, policy: StreamPolicy, evaluator: AlarmEvaluator, prefix: str) -> None:
        self.policy, self.evaluator, self.prefix = policy, evaluator, prefix
        self.where = Where(
            stream=policy.name,
            account=str(getattr(policy, "account", None) or ACCOUNT),
            region=str(getattr(policy, "region", None) or REGION),
        )
        self.model: SimulatedStream | None = None
        self.audit = MemoryAudit(self.where)
        self.notifier = CapturingNotifier(self.where)
        self.scheduler = MemoryScheduler()
        self.changes: list[AlarmChange] = []
        self.deliveries: list[Delivery] = []
        self.deps = Dependencies(
            streams=SimStreams(self._model, self.where),
            metrics=SimMetrics(evaluator.series),
            reads=SimServices(self._model, self.where),
            writes=SimServices(self._model, self.where),
            audit=self.audit,
            notifier=self.notifier,
            kill_switch=KillSwitchOff(),
            policies=OnePolicy(policy),
            clock=lambda: self.where.now,
            alarm_prefix=prefix,
            follow_through=FollowThrough(
                scheduler=self.scheduler, alarms=EvaluatorAlarmStates(evaluator), schedule_prefix=SCHEDULE_PREFIX
            ),
        )
        self._metric_streams = {
            name: any("StreamName" in metric.dimension_map for metric in spec.metrics)
            for name, spec in evaluator.specs.items()
        }

    def _model(self) -> SimulatedStream:
        assert self.model is not None, "the backtest reads the stream only while it is simulated"
        return self.model

    def observe(self, minute: MinuteStats, stream: StreamControl) -> None:
        assert isinstance(stream, SimulatedStream)
        self.model = stream
        now = stream.now()
        self.where.minute, self.where.now = minute.index, now
        for change in self.evaluator.advance(minute, now):
            self.changes.append(change)
            self._alarm_changed(change)
        fired: set[str] = set()
        while True:
            due = [(name, event) for name, event in self.scheduler.due(now) if name not in fired]
            if not due:
                break
            name, event = due[0]
            fired.add(name)
            self.scheduler.delete(name)  # EventBridge Scheduler's ActionAfterCompletion=DELETE, should the core not
            self._follow_up(event)

    def _follow_up(self, event: FollowUp) -> None:
        self._deliver("follow-up", event.alarm_name, lambda: follow_up(event, self.prefix, self.deps))

    def _alarm_changed(self, change: AlarmChange) -> None:
        dimensions = {"StreamName": self.policy.name} if self._metric_streams.get(change.alarm) else {}
        trigger, why_not = identify(
            alarm=change.alarm,
            prefix=self.prefix,
            state=change.new,
            previous_state=change.old,
            state_timestamp=_stamp(change.at),
            dimensions=dimensions,
            account=self.where.account,
            region=self.where.region,
            reason=f"backtest: {change.old} -> {change.new}",
            previous_timestamp=_stamp(change.previous_at) if change.previous_at else None,
        )
        if isinstance(trigger, AlarmResolved):
            resolved = trigger
            self._deliver("resolution", change.alarm, lambda: resolve(resolved, self.deps))
        elif isinstance(trigger, AlarmTrigger):
            found = trigger
            self._deliver("alarm", change.alarm, lambda: remediate(found, self.deps))
        elif change.new in (ALARM, OK):
            self.deliveries.append(Delivery(self.where.minute, "ignored", change.alarm, "ignored", why_not))

    def _deliver(self, kind: str, alarm: str, call: Callable[[], Any]) -> None:
        """One asynchronous invocation: a failure is retried as Lambda does (LAMBDA_RETRIES more times; here at once,
        in the same minute), then dead-lettered: recorded with status "error", and the backtest goes on."""
        errors = []
        for _ in range(1 + LAMBDA_RETRIES):
            try:
                outcome = call()
            except Exception as exc:
                errors.append(f"{type(exc).__name__}: {exc}")
                continue
            detail = outcome.detail + (f" (after {len(errors)} failed attempt(s): {errors[-1]})" if errors else "")
            self.deliveries.append(Delivery(self.where.minute, kind, alarm, str(outcome.status), detail))
            return
        self.deliveries.append(Delivery(self.where.minute, kind, alarm, "error", "; ".join(errors)))

    def actions(self) -> list[BacktestAction]:
        found = []
        for _, (minute, entry) in sorted(self.audit.rows.items()):
            if entry.action and entry.outcome != OutcomeStatus.IN_FLIGHT:
                found.append(
                    BacktestAction(
                        index=minute,
                        action=entry.action,
                        parameters=dict(entry.parameters or {}),
                        status=str(entry.outcome),
                        reason=entry.reason,
                        symptom=entry.symptom,
                    )
                )
        return found


def backtest(
    policy: StreamPolicy,
    trace: Sequence[TraceMinute],
    setup: StreamSetup,
    *,
    progress: Callable[[int, int], None] | None = None,
    alarm_prefix: str = DEFAULT_ALARM_PREFIX,
) -> BacktestResult:
    """What the policy would have done on this trace, minute by minute (see the module docstring)."""
    # A fleet alarm (core.fleet) evaluates each stream as the stream's own alarm would, with the same thresholds:
    # the backtest rehearses the stream as if on per-stream alarms (named and trusted as those).
    policy = policy.model_copy(update={"alarms": PER_STREAM})
    alarms = {name: spec for name, (_, spec) in deployed_alarms(policy, alarm_prefix).items()}
    evaluator = AlarmEvaluator(alarms, policy.name)
    driver = _Driver(policy, evaluator, alarm_prefix)
    simulation = simulate(trace, setup, driver, progress=progress)
    return BacktestResult(
        policy=policy.name,
        simulation=simulation,
        actions=driver.actions(),
        alarm_changes=driver.changes,
        not_simulated=sorted(evaluator.not_simulated),
        not_simulated_why=dict(evaluator.not_simulated),
        deliveries=driver.deliveries,
        emails=list(driver.notifier.sent),
        lag_threshold_ms=lag_threshold_ms(policy),
        simulated_alarms=evaluator.simulated,
    )
