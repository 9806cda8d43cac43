"""lease-table-capacity: raise a KCL lease table's provisioned write capacity, or switch it to on-demand.

A throttled lease table makes KCL workers fail to renew their leases and to checkpoint: leases move between
workers, shards are processed twice or not at all, and shard iterators expire. The policy chooses how the
table gets more capacity:

- `raise-write-capacity` (the default): UpdateTable with the write capacity times `factor`, capped at
  `max_write_capacity`. The cost stays bounded by the policy, and the change can be undone (DynamoDB limits
  decreases per day; the remediator itself only ever increases).
- `on-demand`: UpdateTable to PAY_PER_REQUEST. No more capacity planning, but no upper bound on the cost,
  and AWS limits how often a table may switch to on-demand (see core/limits.py).

The table's state comes from the DescribeTable facts that the symptom gathered (core/lease_tables.py);
without them, or when the table is not ACTIVE or already on-demand, the step is refused.
"""

from __future__ import annotations

import math
import shlex
from datetime import UTC, timedelta
from enum import StrEnum
from typing import Any, ClassVar

from pydantic import Field

from remediator.core import limits
from remediator.core.actions.base import Action, ValidationContext
from remediator.core.cost import Usage
from remediator.core.grants import LEASE_TABLE, IamGrant
from remediator.core.lease_tables import ACTIVE, PAY_PER_REQUEST, PROVISIONED, LeaseTableFacts, lease_tables
from remediator.core.plan import Change, GuardrailVerdict, PlannedStep, Proposal
from remediator.core.policy import ActionPolicy
from remediator.core.ports import ReadPorts, WritePorts
from remediator.core.registry import REGISTRY

UNKNOWN = "UNKNOWN"


class Strategy(StrEnum):
    RAISE_WRITE_CAPACITY = "raise-write-capacity"
    ON_DEMAND = "on-demand"


class LeaseTableCapacityPolicy(ActionPolicy):
    strategy: Strategy = Field(
        Strategy.RAISE_WRITE_CAPACITY,
        description="raise-write-capacity (the default, the safer one: the cost stays within max_write_capacity "
        "and can be lowered again) multiplies the table's provisioned write capacity by `factor`; on-demand "
        "switches the table to PAY_PER_REQUEST (no capacity to plan, but no upper bound on the cost, and AWS "
        "limits how often a table may switch).",
    )
    factor: float = Field(
        2.0, gt=1.0, le=10.0, description="Each raise multiplies the write capacity by this (at least +1 WCU)."
    )
    max_write_capacity: int = Field(
        100,
        ge=limits.DYNAMODB_MIN_CAPACITY_UNITS,
        le=limits.DYNAMODB_MAX_TABLE_WRITE_CAPACITY,
        description="Never raise a lease table's provisioned write capacity above this many WCU.",
    )


def next_write_capacity(current: int, factor: float, maximum: int) -> int:
    """The write capacity one raise goes to: current x factor rounded up, at least one more, at most `maximum`."""
    return min(max(math.ceil(current * factor), current + 1), maximum)


@REGISTRY.action
class LeaseTableCapacity(Action[LeaseTableCapacityPolicy]):
    id = "lease-table-capacity"
    title = "UpdateTable on a KCL lease table: more provisioned write capacity, or on-demand"
    policy_schema = LeaseTableCapacityPolicy
    grants = (
        IamGrant(
            actions=("dynamodb:UpdateTable",),
            scope=LEASE_TABLE,
            why="Raise the write capacity of (or switch to on-demand) the lease tables of the KCL applications "
            "the policies name.",
        ),
        IamGrant(
            actions=("dynamodb:DescribeTable",),
            scope=LEASE_TABLE,
            why="Re-read the table after an UpdateTable that failed without saying whether AWS took it (a 5xx, "
            "a timeout).",
        ),
    )
    sample_parameters: ClassVar[dict[str, Any]] = {
        "application": "orders-indexer",
        "table": "orders-indexer",
        "strategy": Strategy.RAISE_WRITE_CAPACITY.value,
        "billing_mode": PROVISIONED,
        "target_billing_mode": PROVISIONED,
        "read_capacity": 10,
        "write_capacity": 10,
        "target_write_capacity": 20,
    }

    def shape(self, proposal: Proposal, context: ValidationContext) -> Proposal:
        block = self.block(context.policy)
        application = str(proposal.parameters["application"])
        app = next((a for a in context.policy.kcl_applications if a.name == application), None)
        table = app.lease_table_name if app else application
        facts = lease_tables(context.evidence).get(application) or LeaseTableFacts(application=application, table=table)
        before_mode = facts.billing_mode or UNKNOWN
        read, write = facts.read_capacity or 0, facts.write_capacity or 0
        if block.strategy == Strategy.ON_DEMAND:
            target_mode, target_write = PAY_PER_REQUEST, 0
            reason = f"{proposal.reason}; the policy's strategy switches the lease table {table} to on-demand"
        else:
            target_mode, target_write = PROVISIONED, next_write_capacity(write, block.factor, block.max_write_capacity)
            reason = (
                f"{proposal.reason}; {write} WCU x {block.factor:g} -> {target_write} WCU "
                f"(max_write_capacity {block.max_write_capacity})"
            )
        parameters = {
            "application": application,
            "table": table,
            "strategy": block.strategy.value,
            "billing_mode": before_mode,
            "target_billing_mode": target_mode,
            "read_capacity": read,
            "write_capacity": write,
            "target_write_capacity": target_write,
        }
        return proposal.model_copy(update={"parameters": parameters, "reason": reason})

    def checks(self, step: PlannedStep, context: ValidationContext) -> list[GuardrailVerdict]:
        params = step.parameters
        application, table = str(params["application"]), str(params["table"])
        apps = {a.name: a.lease_table_name for a in context.policy.kcl_applications}
        facts = lease_tables(context.evidence).get(application)
        verdicts = [
            GuardrailVerdict(
                name="kcl-application",
                passed=apps.get(application) == table,
                detail=f"KCL application '{application}' with lease table '{table}' is in the policy"
                if apps.get(application) == table
                else f"the policy lists no KCL application '{application}' with lease table '{table}' "
                f"(it lists {sorted(apps) or 'none'})",
            ),
            self._table_active(table, facts),
            self._provisioned(table, facts),
        ]
        if params["strategy"] == Strategy.ON_DEMAND:
            verdicts.append(self._switch_budget(step, context, facts))
        else:
            verdicts += self._write_capacity(step, context)
        return verdicts

    @staticmethod
    def _table_active(table: str, facts: LeaseTableFacts | None) -> GuardrailVerdict:
        if facts is None or not facts.found:
            why = "DescribeTable found no such table" if facts else "no DescribeTable facts in the evidence"
            return GuardrailVerdict(name="lease-table-active", passed=False, detail=f"lease table '{table}': {why}")
        return GuardrailVerdict(
            name="lease-table-active",
            passed=facts.status == ACTIVE,
            detail=f"lease table '{table}' is {facts.status}"
            + ("" if facts.status == ACTIVE else "; DynamoDB updates only ACTIVE tables"),
        )

    @staticmethod
    def _provisioned(table: str, facts: LeaseTableFacts | None) -> GuardrailVerdict:
        mode = (facts.billing_mode if facts else None) or UNKNOWN
        if mode == PAY_PER_REQUEST:
            detail = f"lease table '{table}' is already on-demand: DynamoDB scales it, there is no capacity to raise"
        elif mode == PROVISIONED:
            detail = f"lease table '{table}' is provisioned ({facts.write_capacity if facts else 0} WCU)"
        else:
            detail = f"lease table '{table}': billing mode unknown; nothing is changed on a guess"
        return GuardrailVerdict(name="lease-table-provisioned", passed=mode == PROVISIONED, detail=detail)

    def _write_capacity(self, step: PlannedStep, context: ValidationContext) -> list[GuardrailVerdict]:
        block = self.block(context.policy)
        before, after = int(step.parameters["write_capacity"]), int(step.parameters["target_write_capacity"])
        return [
            GuardrailVerdict(
                name="write-capacity-increase",
                passed=after > before,
                detail=f"{before} -> {after} WCU"
                + (
                    "; DynamoDB allows increases at any time (the remediator never decreases: AWS limits those per day)"
                    if after > before
                    else "; not an increase, and the remediator only ever increases"
                ),
            ),
            GuardrailVerdict(
                name="policy-max-write-capacity",
                passed=after <= block.max_write_capacity,
                detail=f"{after} of at most {block.max_write_capacity} WCU (max_write_capacity)",
            ),
            GuardrailVerdict(
                name="aws-table-write-capacity",
                passed=limits.DYNAMODB_MIN_CAPACITY_UNITS <= after <= limits.DYNAMODB_MAX_TABLE_WRITE_CAPACITY,
                detail=f"{after} WCU within DynamoDB's {limits.DYNAMODB_MIN_CAPACITY_UNITS}.."
                f"{limits.DYNAMODB_MAX_TABLE_WRITE_CAPACITY:,} per table (default quota)",
            ),
        ]

    def _switch_budget(
        self, step: PlannedStep, context: ValidationContext, facts: LeaseTableFacts | None
    ) -> GuardrailVerdict:
        # At most one switch to on-demand per table per rolling 24 h (core/limits.py: AWS's own limit is
        # UNCONFIRMED): counted from DynamoDB's own record of the last switch and from our applied switches.
        since = context.now - timedelta(hours=24)
        table = str(step.parameters["table"])
        ours = [
            past
            for past in context.history.applied_since(self.id, context.policy.name, since)
            if past.parameters.get("table") == table and past.parameters.get("target_billing_mode") == PAY_PER_REQUEST
        ]
        last = facts.last_switch_to_on_demand if facts else None
        if last is not None and last.tzinfo is None:
            last = last.replace(tzinfo=UTC)
        # Our own switch and DynamoDB's record of it are the same switch: count the larger of the two.
        switches = max(len(ours), 1 if last is not None and last >= since else 0)
        limit = limits.DYNAMODB_BILLING_MODE_SWITCHES_PER_24H
        when = f"; last switch to on-demand {last:%Y-%m-%d %H:%M} UTC" if last is not None else ""
        return GuardrailVerdict(
            name="aws-billing-mode-switches",
            passed=switches < limit,
            detail=f"{switches} of {limit} switch to on-demand of lease table '{table}' in the last 24 h{when}",
        )

    def apply(self, step: PlannedStep, aws: WritePorts) -> dict[str, Any]:
        params = step.parameters
        dynamodb = aws.service("dynamodb")
        if params["strategy"] == Strategy.ON_DEMAND:
            response = dynamodb.call("UpdateTable", TableName=params["table"], BillingMode=PAY_PER_REQUEST)
        else:
            response = dynamodb.call(
                "UpdateTable",
                TableName=params["table"],
                ProvisionedThroughput={
                    "ReadCapacityUnits": int(params["read_capacity"]),
                    "WriteCapacityUnits": int(params["target_write_capacity"]),
                },
            )
        table = response.get("TableDescription", {})
        throughput = table.get("ProvisionedThroughput", {})
        return {
            "table": table.get("TableName", params["table"]),
            "status": table.get("TableStatus"),
            "billing_mode": (table.get("BillingModeSummary") or {}).get("BillingMode"),
            "write_capacity": throughput.get("WriteCapacityUnits"),
        }

    def confirm(self, step: PlannedStep, aws: ReadPorts) -> bool | None:
        """The table in the target billing mode or at the target write capacity: made. ACTIVE as the step found
        it: not made. UPDATING otherwise: an update is under way, ours most likely, but not surely: cannot tell."""
        params = step.parameters
        table = aws.service("dynamodb").call("DescribeTable", TableName=params["table"]).get("Table", {})
        status = table.get("TableStatus")
        mode = (table.get("BillingModeSummary") or {}).get("BillingMode") or PROVISIONED
        write = (table.get("ProvisionedThroughput") or {}).get("WriteCapacityUnits")
        if params["strategy"] == Strategy.ON_DEMAND:
            if mode == PAY_PER_REQUEST:
                return True
            return False if status == ACTIVE else None
        if mode == PROVISIONED and write == int(params["target_write_capacity"]):
            return True
        if status == ACTIVE and mode == PROVISIONED and write == int(params["write_capacity"]):
            return False
        return None

    def cli_command(self, stream_arn: str, parameters: dict[str, Any]) -> str:
        command = ["aws", "dynamodb", "update-table", "--table-name", str(parameters["table"])]
        if parameters["strategy"] == Strategy.ON_DEMAND:
            command += ["--billing-mode", PAY_PER_REQUEST]
        else:
            command += [
                "--provisioned-throughput",
                f"ReadCapacityUnits={int(parameters['read_capacity'])},"
                f"WriteCapacityUnits={int(parameters['target_write_capacity'])}",
            ]
        return shlex.join(command)

    def summary(self, parameters: dict[str, Any]) -> str:
        table = parameters["table"]
        if parameters["strategy"] == Strategy.ON_DEMAND:
            return f"lease table {table}: {parameters['write_capacity']} WCU provisioned -> on-demand"
        return f"lease table {table}: {parameters['write_capacity']} -> {parameters['target_write_capacity']} WCU"

    def changes(self, parameters: dict[str, Any]) -> list[Change]:
        table = parameters["table"]
        if parameters["strategy"] == Strategy.ON_DEMAND:
            return [
                Change(
                    setting=f"billing mode of {table}",
                    before=parameters["billing_mode"],
                    after=parameters["target_billing_mode"],
                )
            ]
        return [
            Change(
                setting=f"write capacity (WCU) of {table}",
                before=parameters["write_capacity"],
                after=parameters["target_write_capacity"],
            )
        ]

    def usage_after(self, usage: Usage, parameters: dict[str, Any]) -> Usage:
        # The lease table is DynamoDB, not Kinesis: the stream's bill does not change. The table's own cost is
        # not estimated (on-demand depends on the KCL's request volume, which the remediator does not read).
        return usage

    def bounds(self, block: LeaseTableCapacityPolicy) -> str:
        if block.strategy == Strategy.ON_DEMAND:
            return "switch to on-demand"
        return f"x{block.factor:g} up to {block.max_write_capacity} WCU"
