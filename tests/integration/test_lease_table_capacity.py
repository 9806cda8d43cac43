"""lease-table-capacity against moto, through the handler: a KCL application's throttled lease table gets more
write capacity, or is switched to on-demand, as its policy chooses; dry-run changes nothing; a table that
cannot or need not be changed gets advice or a blocked step, never a blind UpdateTable.

moto implements DescribeTable and UpdateTable (ProvisionedThroughput and BillingMode) but enforces none of
DynamoDB's limits; the limits are the action's checks, shown here as blocked steps and in the unit tests."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.fakes import alarm_event
from tests.integration.support import STREAM, alarm, only, parameters_of, policy

APP = "orders-indexer"
ALARM = f"{alarm(STREAM, 'lease-table-throttling')}/{APP}"
QUIET = {"bytes_per_second": 100_000, "records_per_second": 100}
LEASE_METRICS = "AWS/DynamoDB"


def kcl_policy(mode: str, **block: Any) -> dict[str, Any]:
    raw = policy(mode=mode) | {"consumers": [{"kcl": APP}]}
    if block:
        raw["actions"]["lease_table_capacity"] = block
    return raw


def throttled(aws: Any, *, writes: float = 30, reads: float = 0, table: str = APP) -> None:
    if writes:
        aws.put_metric(LEASE_METRICS, "WriteThrottleEvents", {"TableName": table}, writes)
    if reads:
        aws.put_metric(LEASE_METRICS, "ReadThrottleEvents", {"TableName": table}, reads)


def set_up(aws: Any, mode: str, *, write: int = 10, on_demand: bool = False, **block: Any) -> None:
    aws.create_stream(STREAM, 2)
    aws.push_traffic(STREAM, **QUIET)
    aws.put_policy(kcl_policy(mode, **block))
    aws.create_table(APP, read=10, write=write, on_demand=on_demand)


def capacity(aws: Any) -> tuple[str, int, int]:
    table = aws.table(APP)
    mode = (table.get("BillingModeSummary") or {}).get("BillingMode", "PROVISIONED")
    throughput = table["ProvisionedThroughput"]
    return mode, throughput["ReadCapacityUnits"], throughput["WriteCapacityUnits"]


def fire(invoke: Any) -> dict[str, Any]:
    return invoke(alarm_event(ALARM, stream=None, metric="WriteThrottleEvents"))


def test_dry_run_plans_the_raise_and_changes_nothing(aws, invoke, api_calls):
    # Given a lease table at 10 WCU with 30 throttled writes a minute, in dry-run
    set_up(aws, "dry-run")
    throttled(aws)

    # When its lease-table-throttling alarm fires
    result = fire(invoke)

    # Then the table's state was read, and the raise 10 -> 20 WCU planned but not made
    assert api_calls.params("dynamodb", "DescribeTable") == [{"TableName": APP}]
    assert api_calls.params("dynamodb", "UpdateTable") == []
    assert capacity(aws) == ("PROVISIONED", 10, 10)
    assert result["status"] == "dry-run"
    assert result["plan"]["diagnosis"]["cause"] == "lease-table-throttled"
    (step,) = result["plan"]["actions"]
    assert step["action"] == "lease-table-capacity"
    assert step["changes"] == [{"setting": f"write capacity (WCU) of {APP}", "before": 10, "after": 20}]
    command = (
        f"aws dynamodb update-table --table-name {APP} "
        "--provisioned-throughput ReadCapacityUnits=10,WriteCapacityUnits=20"
    )
    assert step["cli_command"] == command
    # And the e-mail shows the figures, the change and the command
    email = only(aws.emails())
    assert email["Subject"] == f"[DRY-RUN] orders: lease table {APP}: 10 -> 20 WCU (KCL lease table throttled)"
    body = email["Message"]
    assert re.search(rf"{APP}: write throttle events\s+300\n", body)
    assert re.search(rf"{APP}: provisioned write capacity\s+10 WCU\n", body)
    assert f"     Changes: write capacity (WCU) of {APP} 10 -> 20" in body
    assert f"     Command: {command}" in body


def test_enforce_raises_the_write_capacity_of_the_lease_table(aws, invoke, api_calls):
    # Given the same throttled lease table, in enforce
    set_up(aws, "enforce")
    throttled(aws)

    # When the alarm fires
    result = fire(invoke)

    # Then moto's table really has twice the write capacity, reads untouched, in one UpdateTable call
    assert result["status"] == "applied"
    assert api_calls.params("dynamodb", "UpdateTable") == [
        {"TableName": APP, "ProvisionedThroughput": {"ReadCapacityUnits": 10, "WriteCapacityUnits": 20}}
    ]
    assert capacity(aws) == ("PROVISIONED", 10, 20)
    # And the audit row holds the step, so cooldowns, budgets and the switch limit can count it
    row = only(aws.audit_rows(STREAM))
    assert (row["outcome"], row["action"], row["symptom"]) == (
        "applied",
        "lease-table-capacity",
        "lease-table-throttling",
    )
    assert parameters_of(row) == {
        "application": APP,
        "table": APP,
        "strategy": "raise-write-capacity",
        "billing_mode": "PROVISIONED",
        "target_billing_mode": "PROVISIONED",
        "read_capacity": 10,
        "write_capacity": 10,
        "target_write_capacity": 20,
    }
    assert only(aws.emails())["Subject"].startswith(f"[APPLIED] orders: lease table {APP}: 10 -> 20 WCU")


@pytest.mark.parametrize(("mode", "after"), [("dry-run", "PROVISIONED"), ("enforce", "PAY_PER_REQUEST")])
def test_the_on_demand_strategy_switches_the_billing_mode(aws, invoke, api_calls, mode, after):
    # Given a policy whose lease-table-capacity strategy is on-demand
    set_up(aws, mode, strategy="on-demand")
    throttled(aws)

    # When the alarm fires
    result = fire(invoke)

    # Then enforce switches moto's table to PAY_PER_REQUEST; dry-run only plans it
    assert capacity(aws)[0] == after
    updates = api_calls.params("dynamodb", "UpdateTable")
    assert updates == ([{"TableName": APP, "BillingMode": "PAY_PER_REQUEST"}] if mode == "enforce" else [])
    step = only(result["plan"]["actions"])
    assert step["changes"] == [
        {"setting": f"billing mode of {APP}", "before": "PROVISIONED", "after": "PAY_PER_REQUEST"}
    ]
    assert step["cli_command"] == f"aws dynamodb update-table --table-name {APP} --billing-mode PAY_PER_REQUEST"
    assert step["summary"] == f"lease table {APP}: 10 WCU provisioned -> on-demand"


def test_a_second_switch_to_on_demand_within_24_hours_is_blocked(aws, invoke, api_calls):
    # Given the remediator switched this lease table to on-demand 3 hours ago (and someone switched it back)
    set_up(aws, "enforce", strategy="on-demand")
    throttled(aws)
    earlier = {"table": APP, "strategy": "on-demand", "target_billing_mode": "PAY_PER_REQUEST"}
    aws.seed_audit(
        STREAM, datetime.now(UTC) - timedelta(hours=3), "applied", action="lease-table-capacity", parameters=earlier
    )

    # When the alarm fires
    result = fire(invoke)

    # Then the switch is blocked by the once-a-day limit, and nothing is updated
    assert result["status"] == "blocked"
    assert api_calls.params("dynamodb", "UpdateTable") == []
    assert capacity(aws)[0] == "PROVISIONED"
    (blocked,) = result["plan"]["blocked"]
    assert blocked["reasons"] == [
        f"aws-billing-mode-switches: 1 of 1 switch to on-demand of lease table '{APP}' in the last 24 h"
    ]


def test_a_table_at_the_policy_maximum_is_blocked_not_updated(aws, invoke, api_calls):
    # Given a throttled lease table already at the policy's max_write_capacity
    set_up(aws, "enforce", write=50, max_write_capacity=50)
    throttled(aws)

    # When the alarm fires
    result = fire(invoke)

    # Then the step is shown, blocked because it would not raise anything, and no UpdateTable is sent
    assert result["status"] == "blocked"
    assert api_calls.params("dynamodb", "UpdateTable") == []
    assert capacity(aws) == ("PROVISIONED", 10, 50)
    (blocked,) = result["plan"]["blocked"]
    assert blocked["summary"] == f"lease table {APP}: 50 -> 50 WCU"
    assert blocked["reasons"] == [
        "write-capacity-increase: 50 -> 50 WCU; not an increase, and the remediator only ever increases"
    ]


def test_an_on_demand_lease_table_gets_advice_not_an_update(aws, invoke, api_calls):
    # Given an on-demand lease table that is still throttled
    set_up(aws, "enforce", on_demand=True)
    throttled(aws, writes=12, reads=3)

    # When the alarm fires
    result = fire(invoke)

    # Then there is nothing to raise: advice only, no UpdateTable
    assert result["status"] == "no-action"
    assert result["plan"]["diagnosis"]["cause"] == "lease-table-on-demand-throttled"
    assert api_calls.params("dynamodb", "UpdateTable") == []
    assert [a["title"] for a in result["plan"]["advice"]] == [
        f"On-demand lease table {APP} throttled",
        "Write less to the lease table",
    ]
    assert (
        "120 write and 30 read throttle events although the table is on-demand" in result["plan"]["advice"][0]["detail"]
    )


def test_read_throttling_alone_gets_the_command_to_raise_read_capacity(aws, invoke, api_calls):
    # Given a lease table whose reads only are throttled
    set_up(aws, "enforce")
    throttled(aws, writes=0, reads=8)

    # When the alarm fires
    result = fire(invoke)

    # Then raising write capacity would not help: advice with the exact command, no update
    assert result["status"] == "no-action"
    assert result["plan"]["diagnosis"]["cause"] == "lease-table-read-throttled"
    assert api_calls.params("dynamodb", "UpdateTable") == []
    first = result["plan"]["advice"][0]
    assert first["title"] == f"Raise the read capacity of {APP}"
    assert first["cli_command"] == (
        f"aws dynamodb update-table --table-name {APP} "
        "--provisioned-throughput ReadCapacityUnits=20,WriteCapacityUnits=10"
    )
    assert f"      {first['cli_command']}" in only(aws.emails())["Message"]


def test_a_lease_table_that_does_not_exist_is_reported_not_a_failure(aws, invoke, api_calls):
    # Given the policy names a KCL application whose lease table does not exist (its metrics still arrive)
    aws.create_stream(STREAM, 2)
    aws.push_traffic(STREAM, **QUIET)
    aws.put_policy(kcl_policy("enforce"))
    throttled(aws)

    # When the alarm fires
    result = fire(invoke)

    # Then DescribeTable's ResourceNotFoundException is a fact, not a failed trigger: advice to fix the policy
    assert result["status"] == "no-action"
    assert result["plan"]["diagnosis"]["cause"] == "lease-table-not-found"
    assert api_calls.params("dynamodb", "DescribeTable") == [{"TableName": APP}]
    assert api_calls.params("dynamodb", "UpdateTable") == []
    assert result["plan"]["advice"][0]["title"] == f"Check the lease table of {APP}"
