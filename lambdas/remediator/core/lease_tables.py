"""What the remediator reads about the lease tables of a stream's KCL applications: their throttle metrics
(AWS/DynamoDB) and their state (DescribeTable: status, billing mode, provisioned capacity). Shared by the
symptoms that look at KCL applications and by the lease-table-capacity action; the table facts travel in
Evidence.facts under LEASE_TABLES, so a plan can be replayed.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict

from remediator.core.consumers import read_failure, unreadable_key
from remediator.core.evidence import Evidence
from remediator.core.grants import LEASE_TABLE, IamGrant
from remediator.core.metrics import MetricName, MetricQuery
from remediator.core.policy import KclApplication, StreamPolicy
from remediator.core.ports import ReadPorts

LEASE_TABLES = "lease_tables"
LEASE_TABLES_UNREADABLE = unreadable_key(LEASE_TABLES)
DYNAMODB_NAMESPACE = "AWS/DynamoDB"
# Throttled requests on a table, per minute. Assumed [UNCONFIRMED, not in aws-facts.md]: DynamoDB publishes
# these only for minutes with a throttled request, so no datapoint means no throttling.
WRITE_THROTTLE_EVENTS = MetricName(DYNAMODB_NAMESPACE, "WriteThrottleEvents", "Sum")
READ_THROTTLE_EVENTS = MetricName(DYNAMODB_NAMESPACE, "ReadThrottleEvents", "Sum")

PROVISIONED = "PROVISIONED"
PAY_PER_REQUEST = "PAY_PER_REQUEST"
ACTIVE = "ACTIVE"

LEASE_TABLE_READ_GRANTS = (
    IamGrant(
        actions=("dynamodb:DescribeTable",),
        scope=LEASE_TABLE,
        why="Status, billing mode and provisioned capacity of the KCL lease tables the policies name.",
    ),
)


class LeaseTableFacts(BaseModel):
    """One KCL application's lease table as DescribeTable showed it (`found` False when it does not exist)."""

    model_config = ConfigDict(frozen=True)

    application: str
    table: str
    found: bool = False
    status: str | None = None  # CREATING | UPDATING | DELETING | ACTIVE | ...
    billing_mode: str | None = None  # PROVISIONED | PAY_PER_REQUEST
    read_capacity: int | None = None
    write_capacity: int | None = None
    # BillingModeSummary.LastUpdateToPayPerRequestDateTime: the last switch to on-demand, if any.
    last_switch_to_on_demand: datetime | None = None

    @property
    def provisioned(self) -> bool:
        return self.billing_mode == PROVISIONED

    @property
    def on_demand(self) -> bool:
        return self.billing_mode == PAY_PER_REQUEST


def lease_throttle_queries(policy: StreamPolicy) -> tuple[MetricQuery, ...]:
    """Write and read throttle events of each KCL application's lease table, keyed by the application's place
    in the policy (`lease_write_throttles_0`, `lease_read_throttles_0`, ...)."""
    queries: list[MetricQuery] = []
    for index, app in enumerate(policy.kcl_applications):
        table = app.lease_table_name
        queries += [
            MetricQuery(f"lease_write_throttles_{index}", WRITE_THROTTLE_EVENTS.on(TableName=table)),
            MetricQuery(f"lease_read_throttles_{index}", READ_THROTTLE_EVENTS.on(TableName=table)),
        ]
    return tuple(queries)


def throttle_events(evidence: Evidence, index: int) -> tuple[float, float]:
    """(write, read) throttle events of the index-th KCL application's lease table in the evidence window."""
    return evidence.total(f"lease_write_throttles_{index}"), evidence.total(f"lease_read_throttles_{index}")


def _error_code(exc: Exception) -> str:
    response = getattr(exc, "response", None)
    return str(response.get("Error", {}).get("Code", "")) if isinstance(response, dict) else ""


def _facts(app: KclApplication, table: dict[str, Any]) -> LeaseTableFacts:
    throughput = table.get("ProvisionedThroughput") or {}
    summary = table.get("BillingModeSummary") or {}
    write = throughput.get("WriteCapacityUnits")
    # A table created provisioned that never switched mode may carry no BillingModeSummary: its provisioned
    # throughput says it is provisioned. An on-demand table reports 0 provisioned units.
    mode = summary.get("BillingMode") or (PROVISIONED if write else None)
    return LeaseTableFacts(
        application=app.name,
        table=app.lease_table_name,
        found=True,
        status=table.get("TableStatus"),
        billing_mode=mode,
        read_capacity=throughput.get("ReadCapacityUnits"),
        write_capacity=write,
        last_switch_to_on_demand=summary.get("LastUpdateToPayPerRequestDateTime"),
    )


def read_lease_tables(
    policy: StreamPolicy, aws: ReadPorts, failed: dict[str, str] | None = None
) -> list[LeaseTableFacts]:
    """DescribeTable for each KCL application's lease table (needs LEASE_TABLE_READ_GRANTS). A table that does not
    exist is a fact (a policy naming the wrong table). A table whose read failed otherwise (denied, throttled, an
    invalid name) has no facts: why goes into `failed` (table -> error, core.consumers.read_failure), so one
    failed read does not keep the other tables from being read nor stop the diagnosis."""
    dynamodb = aws.service("dynamodb")
    found = []
    for app in policy.kcl_applications:
        try:
            table = dynamodb.call("DescribeTable", TableName=app.lease_table_name).get("Table", {})
        except Exception as exc:
            if _error_code(exc) != "ResourceNotFoundException":
                error = read_failure(exc)  # raises an UndeclaredCall (a bug) again
                if failed is None:
                    raise
                failed[app.lease_table_name] = error
                continue
            found.append(LeaseTableFacts(application=app.name, table=app.lease_table_name))
            continue
        found.append(_facts(app, table))
    return found


def gather_lease_tables(policy: StreamPolicy, aws: ReadPorts) -> dict[str, Any]:
    """A symptom's `gather` for the lease table facts, and (under LEASE_TABLES_UNREADABLE) the tables whose
    DescribeTable failed and why."""
    failed: dict[str, str] = {}
    facts: dict[str, Any] = {LEASE_TABLES: [t.model_dump(mode="json") for t in read_lease_tables(policy, aws, failed)]}
    if failed:
        facts[LEASE_TABLES_UNREADABLE] = "; ".join(f"DescribeTable {table}: {error}" for table, error in failed.items())
    return facts


def lease_tables(evidence: Evidence) -> dict[str, LeaseTableFacts]:
    """The lease table facts a symptom's gather put into the evidence, by application (none if it read none)."""
    facts = (LeaseTableFacts.model_validate(item) for item in evidence.facts.get(LEASE_TABLES, []))
    return {f.application: f for f in facts}
