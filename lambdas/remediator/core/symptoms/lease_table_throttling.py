"""lease-table-throttling: a KCL application's lease table is throttled (AWS/DynamoDB throttle events).

KCL workers renew their leases and checkpoint by writing to the lease table, and take leases by reading it.
Throttled, they lose leases (shards move between workers or are processed twice) and their shard iterators
expire. Throttled writes are fixed by giving the table capacity (lease-table-capacity); throttled reads and an
on-demand table that is still throttled get advice.
"""

from __future__ import annotations

import shlex
from datetime import datetime
from typing import Any

from pydantic import Field

from remediator.core.consumers import read_failure_advice
from remediator.core.evidence import Evidence, StreamState
from remediator.core.lease_tables import (
    LEASE_TABLE_READ_GRANTS,
    LEASE_TABLES,
    READ_THROTTLE_EVENTS,
    WRITE_THROTTLE_EVENTS,
    LeaseTableFacts,
    gather_lease_tables,
    lease_tables,
    lease_throttle_queries,
    throttle_events,
)
from remediator.core.metrics import MetricMath, MetricQuery, MissingData
from remediator.core.plan import Advice, Diagnosis, Figure, Proposal
from remediator.core.policy import DetectorPolicy, KclApplication, StreamPolicy
from remediator.core.ports import ReadPorts
from remediator.core.registry import REGISTRY
from remediator.core.symptoms.base import AlarmSpec, Symptom

KCL_LEASE_HABITS = Advice(
    title="Write less to the lease table",
    detail="Every checkpoint is a write to the lease table: checkpoint every few seconds or every few thousand "
    "records rather than after every batch. Every lease renewal is a write too: a very short failoverTimeMillis "
    "renews leases more often.",
)


class LeaseTableThrottlingDetector(DetectorPolicy):
    threshold_events: int = Field(
        1,
        ge=1,
        description=f"Alarm when a lease table's {WRITE_THROTTLE_EVENTS.name} + {READ_THROTTLE_EVENTS.name} "
        "(Sum per minute) reach this.",
    )
    datapoints_to_alarm: int = Field(2, ge=1, le=60, description="Breaching minutes needed to alarm.")


def _capacity_command(table: str, read: int, write: int) -> str:
    return shlex.join(
        [
            "aws", "dynamodb", "update-table", "--table-name", table,
            "--provisioned-throughput", f"ReadCapacityUnits={read},WriteCapacityUnits={write}",
        ]
    )  # fmt: skip


@REGISTRY.symptom
class LeaseTableThrottling(Symptom[LeaseTableThrottlingDetector]):
    id = "lease-table-throttling"
    title = "KCL lease table throttled"
    meaning = (
        f"The lease table of a KCL application reports {WRITE_THROTTLE_EVENTS.name} or "
        f"{READ_THROTTLE_EVENTS.name}: its workers fail to renew leases and to checkpoint, lose leases, and their "
        "shard iterators expire."
    )
    detector_schema = LeaseTableThrottlingDetector
    read_grants = LEASE_TABLE_READ_GRANTS

    def alarms(self, policy: StreamPolicy, detector: LeaseTableThrottlingDetector) -> list[AlarmSpec]:
        # No data means no throttled request: DynamoDB publishes throttle events only for minutes that have some
        # (assumed, see core/lease_tables.py), so a quiet table is not breaching. FILL keeps a minute with only
        # write (or only read) throttles from dropping out of the sum.
        specs = []
        for app in policy.kcl_applications:
            throttles = MetricMath(
                "FILL(writes, 0) + FILL(reads, 0)",
                {
                    "writes": WRITE_THROTTLE_EVENTS.on(TableName=app.lease_table_name),
                    "reads": READ_THROTTLE_EVENTS.on(TableName=app.lease_table_name),
                },
                label=f"throttle events on lease table {app.lease_table_name}",
            )
            specs.append(
                self.alarm(
                    detector,
                    throttles,
                    detector.threshold_events,
                    missing_data=MissingData.NOT_BREACHING,
                    qualifier=app.name,
                )
            )
        return specs

    def evidence_queries(self, policy: StreamPolicy) -> tuple[MetricQuery, ...]:
        return (*super().evidence_queries(policy), *lease_throttle_queries(policy))

    def gather(self, policy: StreamPolicy, stream: StreamState, aws: ReadPorts, now: datetime) -> dict[str, Any]:
        return gather_lease_tables(policy, aws)

    def diagnose(self, evidence: Evidence, policy: StreamPolicy) -> Diagnosis:
        apps = policy.kcl_applications
        if not apps:
            return Diagnosis(
                cause="no-kcl-application",
                summary="The stream's policy lists no KCL application, so there is no lease table to look at.",
                advice=(
                    Advice(title="List the KCL applications", detail="Add each one as `kcl: NAME` under consumers."),
                ),
            )
        tables = lease_tables(evidence)
        figures: list[Figure] = []
        proposals: list[Proposal] = []
        advice: list[Advice] = []
        causes: list[str] = []
        for index, app in enumerate(apps):
            writes, reads = throttle_events(evidence, index)
            facts = tables.get(app.name) or LeaseTableFacts(application=app.name, table=app.lease_table_name)
            figures += self._figures(app, facts, writes, reads)
            if writes <= 0 and reads <= 0:
                continue
            cause, proposal, app_advice = self._judge(app, facts, writes, reads, evidence.window_minutes)
            causes.append(cause)
            proposals += [proposal] if proposal else []
            advice += app_advice
        if not causes:
            return Diagnosis(
                cause="not-reproduced",
                summary=f"No lease table of the stream's KCL applications was throttled in the last "
                f"{evidence.window_minutes} minutes; nothing to change.",
                figures=tuple(figures),
            )
        advice += read_failure_advice(evidence, LEASE_TABLES, "the lease tables", ("dynamodb:DescribeTable",))
        advice.append(KCL_LEASE_HABITS)
        # The most actionable cause names the diagnosis: a throttled provisioned table first.
        order = ["lease-table-throttled", "lease-table-read-throttled", "lease-table-on-demand-throttled"]
        cause = min(causes, key=lambda c: order.index(c) if c in order else len(order))
        throttled = [app.name for index, app in enumerate(apps) if sum(throttle_events(evidence, index)) > 0]
        return Diagnosis(
            cause=cause,
            summary=f"The lease table of {', '.join(throttled)} was throttled in the last {evidence.window_minutes} "
            "minutes: KCL workers lose leases and their shard iterators expire."
            + (" More write capacity fixes it." if proposals else " No automatic fix applies: see the advice."),
            figures=tuple(figures),
            proposals=tuple(proposals),
            advice=tuple(advice),
        )

    @staticmethod
    def _figures(app: KclApplication, facts: LeaseTableFacts, writes: float, reads: float) -> list[Figure]:
        figures = [
            Figure(name=f"{app.name}: write throttle events", value=writes),
            Figure(name=f"{app.name}: read throttle events", value=reads),
        ]
        if facts.provisioned:
            figures += [
                Figure(name=f"{app.name}: provisioned write capacity", value=facts.write_capacity or 0, unit="WCU"),
                Figure(name=f"{app.name}: provisioned read capacity", value=facts.read_capacity or 0, unit="RCU"),
            ]
        return figures

    @staticmethod
    def _judge(
        app: KclApplication, facts: LeaseTableFacts, writes: float, reads: float, window: int
    ) -> tuple[str, Proposal | None, list[Advice]]:
        table = app.lease_table_name
        if not facts.found:
            return (
                "lease-table-not-found",
                None,
                [
                    Advice(
                        title=f"Check the lease table of {app.name}",
                        detail=f"DynamoDB has no table '{table}' (or it was not read). A KCL application's lease "
                        "table is named after the application unless configured otherwise: set `lease_table:` for "
                        f"`kcl: {app.name}` in the policy.",
                    )
                ],
            )
        if facts.on_demand:
            return (
                "lease-table-on-demand-throttled",
                None,
                [
                    Advice(
                        title=f"On-demand lease table {table} throttled",
                        detail=f"{writes:,.0f} write and {reads:,.0f} read throttle events although the table is "
                        "on-demand: traffic more than doubled its previous peak within 30 minutes, a maximum "
                        "on-demand throughput is set on the table, or one lease (partition) is hot. Check "
                        "`aws dynamodb describe-table` for OnDemandThroughput, and spread the workers' start-up.",
                    )
                ],
            )
        read, write = facts.read_capacity or 0, facts.write_capacity or 0
        if writes > 0:
            proposal = Proposal(
                action="lease-table-capacity",
                parameters={"application": app.name},
                reason=f"{writes:,.0f} write throttle events on lease table {table} in {window} minutes "
                f"at {write} provisioned WCU",
            )
            extra = []
            if reads > 0:
                extra.append(
                    Advice(
                        title=f"Reads of {table} throttled too",
                        detail=f"{reads:,.0f} read throttle events at {read} RCU: raise its read capacity as well "
                        "(the action raises write capacity only), or switch the table to on-demand.",
                        cli_command=_capacity_command(table, max(2 * read, read + 1), write),
                    )
                )
            return "lease-table-throttled", proposal, extra
        return (
            "lease-table-read-throttled",
            None,
            [
                Advice(
                    title=f"Raise the read capacity of {table}",
                    detail=f"{reads:,.0f} read throttle events at {read} provisioned RCU and no throttled write. "
                    "Workers read the whole lease table to take and balance leases (more often with many workers "
                    "or a short failoverTimeMillis): double its read capacity, or switch it to on-demand.",
                    cli_command=_capacity_command(table, max(2 * read, read + 1), write),
                ),
            ],
        )
