"""The symptom contract. A symptom is one file in this package that declares:

- `id`, `title`, `meaning`: the same id everywhere (alarm names, `plan --symptom`, audit rows, docs);
- `detector_schema`: its block under `detectors:` in a stream's policy (a DetectorPolicy with defaults);
- `alarms(policy, detector)`: the CloudWatch alarms that detect it, in any namespace, on any dimensions,
  single-metric or metric math, as many as it needs;
- `evidence_queries(policy)`: the metric series its diagnosis reads (the metrics client and `plan` read
  exactly these), over the last `evidence_window_minutes` (15 by default; one GetMetricData call, paginated,
  reads them: at one datapoint a minute, 100,800 datapoints per page and 500 queries per call bound it);
- `diagnose(evidence, policy)`: the cause, the figures, the proposed actions and the advice;
- `gather(policy, stream, aws, now)`: evidence that is not a metric (an event-source mapping's state, a
  function's timeout), read through ReadPorts limited to its `read_grants`; JSON-able, kept in
  `Evidence.facts` so a plan can be replayed; `now` is the evidence's time (the end of its metrics' window:
  the core reads no clock);
- `read_grants`: IAM for those reads, on the resources they touch.

It registers itself with `@REGISTRY.symptom` (remediator.core.registry). Everything else, the policy
model, the stack's alarms, the role, the CLI and the e-mails, is derived from these declarations.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar, Generic, TypeVar

from remediator.core.evidence import EVIDENCE_WINDOW_MINUTES, Evidence, StreamState, write_load_queries
from remediator.core.grants import IamGrant
from remediator.core.metrics import Comparison, Metric, MetricMath, MetricQuery, MissingData
from remediator.core.plan import Diagnosis
from remediator.core.policy import DetectorPolicy, StreamPolicy

if TYPE_CHECKING:
    from remediator.core.ports import ReadPorts

DetectorT = TypeVar("DetectorT", bound=DetectorPolicy)


@dataclass(frozen=True)
class AlarmSpec:
    """One CloudWatch alarm; the stack builds it as declared.

    `qualifier` tells apart several alarms of one symptom on one stream (one per consumer function,
    say); it becomes the last part of the alarm name and may be empty for the symptom's only alarm.
    """

    metric: Metric | MetricMath
    threshold: float
    comparison: Comparison
    evaluation_periods: int
    datapoints_to_alarm: int
    missing_data: MissingData
    description: str
    qualifier: str = ""

    @property
    def metrics(self) -> tuple[Metric, ...]:
        return self.metric.metrics if isinstance(self.metric, MetricMath) else (self.metric,)


class Symptom(ABC, Generic[DetectorT]):
    id: ClassVar[str]
    title: ClassVar[str]
    meaning: ClassVar[str]
    detector_schema: ClassVar[type[DetectorPolicy]]
    read_grants: ClassVar[tuple[IamGrant, ...]] = ()
    # Minutes of metrics the diagnosis reads, ending at the alarm (one datapoint a minute per query).
    evidence_window_minutes: ClassVar[int] = EVIDENCE_WINDOW_MINUTES
    # Follow-through rechecks a change that reached its target while this symptom's alarm stays in ALARM
    # (core.follow_through): only for an alarm whose metric shows the change as soon as it is in effect (throttled
    # writes). Not for one that lags it, such as an iterator age that stays high while the backlog drains.
    recheck_after_change: ClassVar[bool] = False
    # Follow-through looks again at a "not yet" (no step yet, a step blocked by the scale-in's stabilisation window, a
    # step that reached its target) while this symptom's alarm stays in ALARM, every alarm window
    # (core.follow_through): only for an alarm that describes a lasting state, which may stay in ALARM for hours
    # (under-utilised through a night).
    looks_again: ClassVar[bool] = False

    def detector(self, policy: StreamPolicy) -> DetectorT:
        block: DetectorT = policy.block("detectors", self.id, self.detector_schema)  # type: ignore[assignment]
        return block

    @abstractmethod
    def alarms(self, policy: StreamPolicy, detector: DetectorT) -> list[AlarmSpec]:
        """The alarms for one stream whose detector is enabled."""

    def evidence_queries(self, policy: StreamPolicy) -> tuple[MetricQuery, ...]:
        """The series the diagnosis reads. By default the stream's write load; add your own to it."""
        return write_load_queries(policy.name)

    def gather(self, policy: StreamPolicy, stream: StreamState, aws: ReadPorts, now: datetime) -> dict[str, Any]:
        """Facts beyond metrics, read through `aws` (only the reads in `read_grants`), as of `now` (the evidence's
        time). None by default."""
        return {}

    @property
    def read_iam_actions(self) -> frozenset[str]:
        return frozenset(action for grant in self.read_grants for action in grant.actions)

    @abstractmethod
    def diagnose(self, evidence: Evidence, policy: StreamPolicy) -> Diagnosis: ...

    def alarm(
        self,
        detector: DetectorT,
        metric: Metric | MetricMath,
        threshold: float,
        *,
        missing_data: MissingData,
        comparison: Comparison = Comparison.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        qualifier: str = "",
    ) -> AlarmSpec:
        """An alarm with the detector's periods and the symptom's description."""
        return AlarmSpec(
            metric=metric,
            threshold=threshold,
            comparison=comparison,
            evaluation_periods=detector.evaluation_periods,
            datapoints_to_alarm=detector.datapoints_to_alarm,
            missing_data=missing_data,
            description=f"Kinesis Remediator: {self.title}. {self.meaning}",
            qualifier=qualifier,
        )
