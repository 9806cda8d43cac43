"""kcl-consumer-lag: a KCL application falls behind or is stuck (its own MillisBehindLatest, Maximum).

A KCL application publishes its metrics in its own CloudWatch namespace (the application name unless
configured otherwise). MillisBehindLatest comes per shard (dimensions Operation=ProcessTask and ShardId, the
KCL's default metricsEnabledDimensions) and, from KCL 2.x releases after awslabs/amazon-kinesis-client pull
request #868, once for the whole application with the dimension Operation=ApplicationTracker and no ShardId.
The alarm watches that application-level series, so one alarm covers every shard.

[UNCONFIRMED] aws-facts.md does not cover the KCL's metrics: the dimension set above was read from the KCL's
source (ProcessTask.java, MetricsConfig.java), not from AWS's documentation. The Operation value is a detector
setting, and an alarm that never gets data shows INSUFFICIENT_DATA (see the missing-data choice below).

Once the furthest-behind application has used `retention_share` of the retention period, the diagnosis proposes
raise-retention as well, ahead of its fix for the lag (reshard, or the advice for the application).
"""

from __future__ import annotations

import dataclasses
import shlex
from typing import Annotated

from pydantic import Field

from remediator.core import limits
from remediator.core.evidence import Evidence
from remediator.core.lease_tables import lease_throttle_queries, throttle_events
from remediator.core.metrics import MetricName, MetricQuery, MissingData
from remediator.core.plan import Advice, Diagnosis, Figure
from remediator.core.policy import DetectorPolicy, KclApplication, StreamPolicy, text_like
from remediator.core.registry import REGISTRY
from remediator.core.symptoms.base import AlarmSpec, Symptom
from remediator.core.symptoms.capacity import (
    capacity_figures,
    insufficient,
    is_saturated,
    on_demand,
    saturated,
)
from remediator.core.symptoms.lag import protect_data, retention_share, retention_share_field


def millis_behind_latest(app: KclApplication) -> MetricName:
    return MetricName(app.metrics_namespace, "MillisBehindLatest", "Maximum")


DIMENSION_NOTE = (
    "UNCONFIRMED: the dimension set (Operation={operation}, no ShardId) is the KCL's application-level series, "
    "read from the KCL's source, not from AWS's documentation; if this alarm stays in INSUFFICIENT_DATA, list "
    "the application's metrics and set detectors.kcl_consumer_lag.operation."
)
OperationName = Annotated[
    str, text_like(r"^[A-Za-z0-9_.-]{1,255}$", "an operation name of 1-255 letters, digits, '_', '.' or '-'")
]


class KclConsumerLagDetector(DetectorPolicy):
    threshold_ms: int = Field(
        60_000,
        ge=1_000,
        le=limits.MAX_RETENTION_HOURS * 3_600_000,
        description="Alarm when a KCL application's MillisBehindLatest (Maximum) reaches this.",
    )
    operation: OperationName = Field(
        "ApplicationTracker",
        description="The Operation dimension of the application-level MillisBehindLatest (KCL 2.x: "
        "ApplicationTracker; UNCONFIRMED). Set ProcessTask if your KCL publishes Operation without ShardId.",
    )
    retention_share: float = retention_share_field()


@REGISTRY.symptom
class KclConsumerLag(Symptom[KclConsumerLagDetector]):
    id = "kcl-consumer-lag"
    title = "KCL application falling behind"
    meaning = (
        "A KCL application's MillisBehindLatest (Maximum, in its own CloudWatch namespace) is high: it reads "
        "records that long after they were written. Past the retention period, unread records are lost."
    )
    detector_schema = KclConsumerLagDetector

    def alarms(self, policy: StreamPolicy, detector: KclConsumerLagDetector) -> list[AlarmSpec]:
        # Missing data stays missing: a KCL application that publishes nothing (stopped, metrics turned off, or
        # a dimension guess that does not match, see the module docstring) shows as INSUFFICIENT_DATA, neither a
        # false OK nor a false alarm. A consumer that stops reading altogether is consumer-stalled's to catch.
        specs = []
        note = DIMENSION_NOTE.format(operation=detector.operation)
        for app in policy.kcl_applications:
            metric = millis_behind_latest(app).on(Operation=detector.operation)
            spec = self.alarm(
                detector, metric, detector.threshold_ms, missing_data=MissingData.MISSING, qualifier=app.name
            )
            specs.append(dataclasses.replace(spec, description=f"{spec.description} {note}"))
        return specs

    def evidence_queries(self, policy: StreamPolicy) -> tuple[MetricQuery, ...]:
        operation = self.detector(policy).operation
        lags = tuple(
            MetricQuery(f"kcl_lag_ms_{index}", millis_behind_latest(app).on(Operation=operation))
            for index, app in enumerate(policy.kcl_applications)
        )
        return (*super().evidence_queries(policy), *lags, *lease_throttle_queries(policy))

    def diagnose(self, evidence: Evidence, policy: StreamPolicy) -> Diagnosis:
        detector = self.detector(policy)
        figures = capacity_figures(evidence)
        apps = policy.kcl_applications
        lags = {app.name: evidence.maximum(f"kcl_lag_ms_{index}") for index, app in enumerate(apps)}
        known = {name: lag for name, lag in lags.items() if lag is not None}
        if not known:
            return self._no_lag_data(evidence, policy, figures)
        for name, lag in known.items():
            figures += [
                Figure(name=f"{name}: max MillisBehindLatest", value=lag / 1000, unit="s"),
                Figure(name=f"{name}: behind / retention", value=100 * retention_share(evidence, lag), unit="%"),
            ]
        throttled = []
        for index, app in enumerate(apps):
            writes, reads = throttle_events(evidence, index)
            figures.append(Figure(name=f"{app.name}: lease table throttle events", value=writes + reads))
            if writes + reads > 0:
                throttled.append(app)
        worst_name, worst = max(known.items(), key=lambda item: item[1])
        # Protecting the data comes first: it is the one step that cannot wait for the lag to be fixed. The worst
        # application's MillisBehindLatest is how old the records it reads are: the oldest unread record.
        protect = protect_data(evidence, worst, detector.retention_share, self.id, reader=worst_name)
        advice = [self._lease_table_advice(throttled)] if throttled else []
        steps = self._kcl_steps(evidence, policy)
        everything = (*advice, *steps)
        early = on_demand(evidence, figures, everything) or insufficient(evidence, figures, advice=everything)
        if early:
            return early.model_copy(update={"proposals": protect})
        peak = evidence.write_utilisation(peak=True)
        if is_saturated(evidence, policy):
            return saturated(
                evidence,
                policy,
                f"{worst_name} is {worst / 1000:,.0f} s behind while the shards are saturated (writes peaked "
                f"at {peak:.0%} of capacity): more shards give its workers more parallel work.",
                figures,
                before=protect,
                advice=advice,
            )
        if throttled:
            cause = "lease-table-throttled"
            why = (
                f"while the lease table of {', '.join(a.name for a in throttled)} is throttled: workers lose "
                "leases and their shard iterators expire (see the lease-table-throttling alarm)."
            )
        else:
            cause = "slow-kcl-application"
            why = "although writes are not saturating the shards: resharding would not help."
        return Diagnosis(
            cause=cause,
            summary=f"{worst_name} is {worst / 1000:,.0f} s behind (writes peaked at {peak:.0%} of capacity) {why}",
            figures=tuple(figures),
            proposals=protect,
            advice=(*advice, *steps),
        )

    def _no_lag_data(self, evidence: Evidence, policy: StreamPolicy, figures: list[Figure]) -> Diagnosis:
        operation = self.detector(policy).operation
        commands = [
            shlex.join(["aws", "cloudwatch", "list-metrics", "--namespace", app.metrics_namespace])
            + " --metric-name MillisBehindLatest"
            for app in policy.kcl_applications
        ]
        found = insufficient(
            evidence,
            figures,
            missing=f"MillisBehindLatest (Operation={operation}) for the KCL applications",
            advice=tuple(
                Advice(
                    title="Check the KCL application's metrics",
                    detail="The application is stopped, publishes no metrics (metricsLevel NONE), publishes to "
                    f"another namespace (set `namespace:` in the policy), or without the Operation={operation} "
                    "dimension set (UNCONFIRMED, see detectors.kcl_consumer_lag.operation).",
                    cli_command=command,
                )
                for command in commands
            ),
        )
        assert found is not None
        return found

    @staticmethod
    def _lease_table_advice(throttled: list[KclApplication]) -> Advice:
        tables = ", ".join(app.lease_table_name for app in throttled)
        return Advice(
            title="Lease table throttled",
            detail=f"The lease table ({tables}) was throttled in the same minutes. Throttled lease renewals and "
            "checkpoints make workers lose leases and let shard iterators expire: the lease-table-throttling "
            "symptom diagnoses it and raises the table's capacity (action lease-table-capacity).",
        )

    @staticmethod
    def _kcl_steps(evidence: Evidence, policy: StreamPolicy) -> tuple[Advice, ...]:
        names = ", ".join(app.name for app in policy.kcl_applications)
        shards = evidence.stream.open_shards
        return (
            Advice(
                title="Look for exceptions in processRecords",
                detail=f"The KCL logs and skips a batch whose processRecords throws ({names}: search the logs for "
                "'Application processRecords() threw an exception'). Catch and handle every exception inside "
                "processRecords, and retry or park the records that fail.",
            ),
            Advice(
                title="Check maxLeasesPerWorker and the worker count",
                detail=f"The stream has {shards} open shards. With maxLeasesPerWorker x workers below {shards}, "
                "some shards have no worker and fall behind: raise maxLeasesPerWorker or add workers.",
            ),
            Advice(
                title="Failover time and ZOMBIE shutdowns",
                detail="A worker that does not renew its lease within failoverTimeMillis (a long garbage-collection "
                "pause, a starved host, a throttled lease table) loses it to another worker: for a while two workers "
                "process one shard (duplicates), then the old one shuts down with reason ZOMBIE. Raise "
                "failoverTimeMillis above your workers' longest pauses, and never checkpoint in a ZOMBIE shutdown.",
            ),
            Advice(
                title="Turn on the KCL's debug logs",
                detail="Set the log level of software.amazon.kinesis (KCL 2.x+; com.amazonaws.services.kinesis for "
                "1.x) to DEBUG on one worker for a while: lease taking, renewals and each GetRecords show up.",
            ),
        )
