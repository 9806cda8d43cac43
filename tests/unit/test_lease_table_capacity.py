"""lease-table-capacity: the capacity maths, the step it shapes from the DescribeTable facts, DynamoDB's limits and
the policy's bounds in its checks, its call, command and changes; and the lease table facts it reads."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest
from botocore.exceptions import ClientError
from pydantic import ValidationError
from remediator.core.actions.base import ValidationContext
from remediator.core.actions.lease_table_capacity import LeaseTableCapacity, next_write_capacity
from remediator.core.evidence import Evidence
from remediator.core.history import ActionHistory, PastAction
from remediator.core.lease_tables import LEASE_TABLES, LeaseTableFacts, lease_tables, read_lease_tables
from remediator.core.plan import Change, PlannedStep, Proposal
from remediator.core.policy import StreamPolicy
from remediator.core.ports import DeclaredOnly, ServicePort
from remediator.core.registry import REGISTRY

from tests.fakes import NOW, evidence, policy, stream_arn

ACTION = REGISTRY.actions["lease-table-capacity"]
APP = "orders-indexer"
PROPOSAL = Proposal(action="lease-table-capacity", parameters={"application": APP}, reason="30 write throttle events")


def kcl_policy(apps: list[dict[str, Any]] | None = None, **block: Any) -> StreamPolicy:
    raw: dict[str, Any] = {"consumers": apps if apps is not None else [{"kcl": APP}]}
    if block:
        raw["actions"] = {"reshard": {"max_shards": 16}, "lease_table_capacity": block}
    return policy(**raw)


def table(**overrides: Any) -> dict[str, Any]:
    facts = {
        "application": APP,
        "table": APP,
        "found": True,
        "status": "ACTIVE",
        "billing_mode": "PROVISIONED",
        "read_capacity": 10,
        "write_capacity": 10,
    }
    return facts | overrides


def with_tables(*tables: dict[str, Any]) -> Evidence:
    return evidence().model_copy(update={"facts": {LEASE_TABLES: list(tables)}})


def context(p: StreamPolicy, ev: Evidence, history: ActionHistory | None = None) -> ValidationContext:
    return ValidationContext(policy=p, evidence=ev, history=history or ActionHistory(), now=NOW)


def step(p: StreamPolicy, ev: Evidence, **parameters: Any) -> PlannedStep:
    shaped = ACTION.shape(PROPOSAL, context(p, ev))
    params = shaped.parameters | parameters
    return PlannedStep(
        action=ACTION.id,
        stream="orders",
        stream_arn=stream_arn("orders"),
        parameters=params,
        reason=shaped.reason,
        summary=ACTION.summary(params),
        cli_command=ACTION.cli_command(stream_arn("orders"), params),
    )


def verdicts(p: StreamPolicy, ev: Evidence, history: ActionHistory | None = None, **parameters: Any) -> dict:
    checked = ACTION.checks(step(p, ev, **parameters), context(p, ev, history))
    return {v.name: (v.passed, v.detail) for v in checked}


# The maths ----------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("current", "factor", "maximum", "expected"),
    [
        pytest.param(10, 2.0, 100, 20, id="doubles"),
        pytest.param(7, 1.5, 1_000, 11, id="rounds up: 10.5 -> 11"),
        pytest.param(1, 1.1, 100, 2, id="at least one more WCU"),
        pytest.param(60, 2.0, 100, 100, id="capped at the maximum"),
        pytest.param(100, 2.0, 100, 100, id="at the maximum: no raise"),
        pytest.param(150, 2.0, 100, 100, id="above the maximum: the cap is below current"),
        pytest.param(0, 2.0, 100, 1, id="no provisioned capacity known: the smallest step"),
    ],
)
def test_next_write_capacity(current: int, factor: float, maximum: int, expected: int) -> None:
    assert next_write_capacity(current, factor, maximum) == expected


@pytest.mark.parametrize(
    ("block", "field"),
    [
        ({"strategy": "autoscale"}, "strategy"),
        ({"factor": 1.0}, "factor"),
        ({"factor": 11}, "factor"),
        ({"max_write_capacity": 0}, "max_write_capacity"),
        ({"max_write_capacity": 40_001}, "max_write_capacity"),
    ],
)
def test_the_policy_block_refuses_values_outside_its_bounds(block: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError, match=rf"actions\.lease_table_capacity\.{field}"):
        kcl_policy(**block)


def test_the_default_strategy_is_the_bounded_one() -> None:
    block = ACTION.block(policy())
    assert (block.strategy, block.factor, block.max_write_capacity) == ("raise-write-capacity", 2.0, 100)
    assert ACTION.bounds(block) == "x2 up to 100 WCU"
    assert ACTION.bounds(ACTION.block(kcl_policy(strategy="on-demand"))) == "switch to on-demand"


# shape --------------------------------------------------------------------------------------------------------------
def test_shape_raises_from_the_tables_facts() -> None:
    # Given a provisioned lease table at 12 RCU / 30 WCU and a policy raising x1.5 up to 40
    p = kcl_policy(factor=1.5, max_write_capacity=40)
    ev = with_tables(table(read_capacity=12, write_capacity=30))
    # When the proposal is shaped
    shaped = ACTION.shape(PROPOSAL, context(p, ev))
    # Then the step keeps the reads and raises the writes to the cap, saying why
    assert shaped.parameters == {
        "application": APP,
        "table": APP,
        "strategy": "raise-write-capacity",
        "billing_mode": "PROVISIONED",
        "target_billing_mode": "PROVISIONED",
        "read_capacity": 12,
        "write_capacity": 30,
        "target_write_capacity": 40,
    }
    assert shaped.reason == "30 write throttle events; 30 WCU x 1.5 -> 40 WCU (max_write_capacity 40)"


def test_shape_switches_to_on_demand_when_the_policy_says_so() -> None:
    shaped = ACTION.shape(PROPOSAL, context(kcl_policy(strategy="on-demand"), with_tables(table())))
    assert (shaped.parameters["target_billing_mode"], shaped.parameters["target_write_capacity"]) == (
        "PAY_PER_REQUEST",
        0,
    )
    assert (
        shaped.reason
        == "30 write throttle events; the policy's strategy switches the lease table orders-indexer to on-demand"
    )


def test_shape_uses_the_lease_table_the_policy_names() -> None:
    p = kcl_policy([{"kcl": APP, "lease_table": "indexer-leases"}])
    facts = table(table="indexer-leases")
    assert ACTION.shape(PROPOSAL, context(p, with_tables(facts))).parameters["table"] == "indexer-leases"


def test_shape_without_facts_leaves_the_state_unknown() -> None:
    shaped = ACTION.shape(PROPOSAL, context(kcl_policy(), evidence()))
    assert (shaped.parameters["billing_mode"], shaped.parameters["write_capacity"]) == ("UNKNOWN", 0)


# checks -------------------------------------------------------------------------------------------------------------
def test_an_active_provisioned_table_below_the_bound_passes_every_check() -> None:
    checked = verdicts(kcl_policy(), with_tables(table()))
    assert checked == {
        "kcl-application": (True, f"KCL application '{APP}' with lease table '{APP}' is in the policy"),
        "lease-table-active": (True, f"lease table '{APP}' is ACTIVE"),
        "lease-table-provisioned": (True, f"lease table '{APP}' is provisioned (10 WCU)"),
        "write-capacity-increase": (
            True,
            "10 -> 20 WCU; DynamoDB allows increases at any time (the remediator never decreases: AWS limits "
            "those per day)",
        ),
        "policy-max-write-capacity": (True, "20 of at most 100 WCU (max_write_capacity)"),
        "aws-table-write-capacity": (True, "20 WCU within DynamoDB's 1..40,000 per table (default quota)"),
    }


@pytest.mark.parametrize(
    ("facts", "policy_apps", "parameters", "refused", "detail"),
    [
        pytest.param(
            table(status="UPDATING"),
            None,
            {},
            "lease-table-active",
            f"lease table '{APP}' is UPDATING; DynamoDB updates only ACTIVE tables",
            id="table updating",
        ),
        pytest.param(
            table(found=False, status=None, billing_mode=None),
            None,
            {},
            "lease-table-active",
            f"lease table '{APP}': DescribeTable found no such table",
            id="table not found",
        ),
        pytest.param(
            None,
            None,
            {},
            "lease-table-active",
            f"lease table '{APP}': no DescribeTable facts in the evidence",
            id="no facts",
        ),
        pytest.param(
            table(billing_mode="PAY_PER_REQUEST", write_capacity=0),
            None,
            {},
            "lease-table-provisioned",
            f"lease table '{APP}' is already on-demand: DynamoDB scales it, there is no capacity to raise",
            id="already on-demand",
        ),
        pytest.param(
            table(billing_mode=None),
            None,
            {},
            "lease-table-provisioned",
            f"lease table '{APP}': billing mode unknown; nothing is changed on a guess",
            id="billing mode unknown",
        ),
        pytest.param(
            table(),
            [{"kcl": "another-app"}],
            {},
            "kcl-application",
            f"the policy lists no KCL application '{APP}' with lease table '{APP}' (it lists ['another-app'])",
            id="application not in the policy",
        ),
        pytest.param(
            table(),
            None,
            {"table": "someone-elses-table"},
            "kcl-application",
            f"the policy lists no KCL application '{APP}' with lease table 'someone-elses-table' (it lists ['{APP}'])",
            id="a table the policy does not name",
        ),
        pytest.param(
            table(write_capacity=100),
            None,
            {},
            "write-capacity-increase",
            "100 -> 100 WCU; not an increase, and the remediator only ever increases",
            id="already at the maximum",
        ),
        pytest.param(
            table(),
            None,
            {"target_write_capacity": 101},
            "policy-max-write-capacity",
            "101 of at most 100 WCU (max_write_capacity)",
            id="above the policy's maximum",
        ),
        pytest.param(
            table(),
            None,
            {"target_write_capacity": 40_001},
            "aws-table-write-capacity",
            "40001 WCU within DynamoDB's 1..40,000 per table (default quota)",
            id="above DynamoDB's per-table quota",
        ),
    ],
)
def test_a_check_refuses(
    facts: dict[str, Any] | None, policy_apps: list | None, parameters: dict[str, Any], refused: str, detail: str
) -> None:
    # Given a lease table (or its absence) that one check must refuse
    ev = with_tables(facts) if facts else evidence()
    # When the step is checked
    checked = verdicts(kcl_policy(policy_apps), ev, **parameters)
    # Then that check refuses it, saying why
    assert checked[refused] == (False, detail)
    # And no other check does, except that a table with no known state is neither ACTIVE nor provisioned, and a
    # step beyond DynamoDB's quota is beyond the policy's maximum too
    also = {
        "lease-table-active": {"lease-table-provisioned"},
        "aws-table-write-capacity": {"policy-max-write-capacity"},
    }
    failing = {name for name, (passed, _) in checked.items() if not passed}
    assert failing - {refused} <= also.get(refused, set())


def past_switch(hours_ago: float, table_name: str = APP) -> PastAction:
    return PastAction(
        action="lease-table-capacity",
        stream="orders",
        at=NOW - timedelta(hours=hours_ago),
        parameters={"table": table_name, "strategy": "on-demand", "target_billing_mode": "PAY_PER_REQUEST"},
    )


@pytest.mark.parametrize(
    ("last_switch", "history", "passed", "detail"),
    [
        pytest.param(
            None, [], True, "0 of 1 switch to on-demand of lease table 'orders-indexer' in the last 24 h", id="never"
        ),
        pytest.param(
            NOW - timedelta(hours=3),
            [],
            False,
            "1 of 1 switch to on-demand of lease table 'orders-indexer' in the last 24 h; last switch to on-demand "
            "2026-11-26 00:00 UTC",
            id="DynamoDB switched it 3 h ago",
        ),
        pytest.param(
            NOW - timedelta(hours=25),
            [],
            True,
            "0 of 1 switch to on-demand of lease table 'orders-indexer' in the last 24 h; last switch to on-demand "
            "2026-11-25 02:00 UTC",
            id="DynamoDB switched it 25 h ago",
        ),
        pytest.param(
            None,
            [past_switch(5)],
            False,
            "1 of 1 switch to on-demand of lease table 'orders-indexer' in the last 24 h",
            id="we switched it 5 h ago",
        ),
        pytest.param(
            NOW - timedelta(hours=5),
            [past_switch(5)],
            False,
            "1 of 1 switch to on-demand of lease table 'orders-indexer' in the last 24 h; last switch to on-demand "
            "2026-11-25 22:00 UTC",
            id="our switch and DynamoDB's record of it count once",
        ),
        pytest.param(
            None,
            [past_switch(5, "other-table")],
            True,
            "0 of 1 switch to on-demand of lease table 'orders-indexer' in the last 24 h",
            id="another table's switch does not count",
        ),
    ],
)
def test_one_switch_to_on_demand_per_table_per_day(
    last_switch: datetime | None, history: list[PastAction], passed: bool, detail: str
) -> None:
    # Given a provisioned lease table, the policy's strategy on-demand, and earlier switches (or none)
    ev = with_tables(table(last_switch_to_on_demand=last_switch.isoformat() if last_switch else None))
    # When the step is checked
    checked = verdicts(kcl_policy(strategy="on-demand"), ev, ActionHistory(history))
    # Then the billing-mode switch limit decides, and the write capacity bounds do not apply
    assert checked["aws-billing-mode-switches"] == (passed, detail)
    assert "policy-max-write-capacity" not in checked


# apply, command, summary, changes -----------------------------------------------------------------------------------
class Recording:
    def __init__(self, response: dict[str, Any]) -> None:
        self.calls: list[tuple[str, str, dict[str, Any]]] = []
        self.response = response

    def service(self, name: str) -> ServicePort:
        recording = self

        class Port:
            def call(self, operation: str, **parameters: Any) -> dict[str, Any]:
                recording.calls.append((name, operation, parameters))
                return recording.response

        return Port()


UPDATED = {
    "TableDescription": {
        "TableName": APP,
        "TableStatus": "UPDATING",
        "ProvisionedThroughput": {"ReadCapacityUnits": 10, "WriteCapacityUnits": 20},
    }
}


@pytest.mark.parametrize(
    ("strategy", "call", "command", "summary", "changes"),
    [
        pytest.param(
            "raise-write-capacity",
            {"TableName": APP, "ProvisionedThroughput": {"ReadCapacityUnits": 10, "WriteCapacityUnits": 20}},
            f"aws dynamodb update-table --table-name {APP} "
            "--provisioned-throughput ReadCapacityUnits=10,WriteCapacityUnits=20",
            f"lease table {APP}: 10 -> 20 WCU",
            [Change(setting=f"write capacity (WCU) of {APP}", before=10, after=20)],
            id="raise",
        ),
        pytest.param(
            "on-demand",
            {"TableName": APP, "BillingMode": "PAY_PER_REQUEST"},
            f"aws dynamodb update-table --table-name {APP} --billing-mode PAY_PER_REQUEST",
            f"lease table {APP}: 10 WCU provisioned -> on-demand",
            [Change(setting=f"billing mode of {APP}", before="PROVISIONED", after="PAY_PER_REQUEST")],
            id="on-demand",
        ),
    ],
)
def test_apply_makes_one_update_table_call_and_the_command_says_the_same(
    strategy: str, call: dict[str, Any], command: str, summary: str, changes: list[Change]
) -> None:
    # Given the step for the policy's strategy
    p = kcl_policy(strategy=strategy)
    planned = step(p, with_tables(table()))
    ports = Recording(UPDATED)
    # When it is applied through the ports its grants allow
    result = ACTION.apply(planned, DeclaredOnly(ports, ACTION.iam_actions, ACTION.id))
    # Then it made exactly one UpdateTable call, never a retry
    assert ports.calls == [("dynamodb", "UpdateTable", call)]
    assert result == {"table": APP, "status": "UPDATING", "billing_mode": None, "write_capacity": 20}
    # And the command, the summary and the changes describe the same change
    assert planned.cli_command == command
    assert planned.summary == summary
    assert ACTION.changes(planned.parameters) == changes


def test_the_action_is_granted_update_table_on_the_lease_tables_only() -> None:
    grant, confirm = ACTION.grants  # the change, and the re-read that settles an uncertain one (same tables)
    assert grant.actions == ("dynamodb:UpdateTable",)
    assert (confirm.actions, confirm.scope) == (("dynamodb:DescribeTable",), grant.scope)
    arn = "arn:aws:dynamodb:us-east-1:123456789012:table/{}".format
    p = kcl_policy([{"kcl": APP}, {"kcl": "search", "lease_table": "search-leases"}])

    def fake_arn(*, service: str, resource: str, resource_name: str, arn_format: str = "slash") -> str:
        return arn(resource_name)

    assert grant.resources(p, fake_arn) == (arn(APP), arn("search-leases"))
    assert isinstance(ACTION, LeaseTableCapacity)


# The lease table facts ----------------------------------------------------------------------------------------------
def client_error(code: str, message: str) -> ClientError:
    """What boto3 raises for an AWS error response (the shape DynamoDB documents for DescribeTable)."""
    return ClientError({"Error": {"Code": code, "Message": message}}, "DescribeTable")


class Tables:
    """Read ports answering DescribeTable from a dict of table name -> response (or exception)."""

    def __init__(self, answers: dict[str, Any]) -> None:
        self.answers = answers
        self.asked: list[str] = []

    def service(self, name: str) -> ServicePort:
        tables = self

        class Port:
            def call(self, operation: str, **parameters: Any) -> dict[str, Any]:
                assert (name, operation) == ("dynamodb", "DescribeTable")
                tables.asked.append(parameters["TableName"])
                answer = tables.answers[parameters["TableName"]]
                if isinstance(answer, Exception):
                    raise answer
                return {"Table": answer}

        return Port()


def test_lease_table_facts_from_describe_table() -> None:
    # Given three KCL applications: a provisioned table that never switched mode (no BillingModeSummary, as AWS
    # returns it), an on-demand table switched earlier, and a table that does not exist
    switched = datetime(2026, 11, 20, 8, 0).astimezone()
    ports = Tables(
        {
            "app-a": {
                "TableStatus": "ACTIVE",
                "ProvisionedThroughput": {"ReadCapacityUnits": 5, "WriteCapacityUnits": 7},
            },
            "b-leases": {
                "TableStatus": "ACTIVE",
                "ProvisionedThroughput": {"ReadCapacityUnits": 0, "WriteCapacityUnits": 0},
                "BillingModeSummary": {"BillingMode": "PAY_PER_REQUEST", "LastUpdateToPayPerRequestDateTime": switched},
            },
            "app-c": client_error("ResourceNotFoundException", "Requested resource not found"),
        }
    )
    p = kcl_policy([{"kcl": "app-a"}, {"kcl": "b", "lease_table": "b-leases"}, {"kcl": "app-c"}])
    # When the facts are read through the symptom's declared read ports
    symptom = REGISTRY.symptoms["lease-table-throttling"]
    facts = symptom.gather(
        p, evidence().stream, DeclaredOnly(ports, symptom.read_iam_actions, symptom.id, read_only=True), NOW
    )
    # Then each table's state is kept (JSON-able), and the missing one is a fact, not an error
    assert ports.asked == ["app-a", "b-leases", "app-c"]
    read = lease_tables(evidence().model_copy(update={"facts": facts}))
    assert read == {
        "app-a": LeaseTableFacts(
            application="app-a",
            table="app-a",
            found=True,
            status="ACTIVE",
            billing_mode="PROVISIONED",
            read_capacity=5,
            write_capacity=7,
        ),
        "b": LeaseTableFacts(
            application="b",
            table="b-leases",
            found=True,
            status="ACTIVE",
            billing_mode="PAY_PER_REQUEST",
            read_capacity=0,
            write_capacity=0,
            last_switch_to_on_demand=switched,
        ),
        "app-c": LeaseTableFacts(application="app-c", table="app-c"),
    }


def test_any_other_describe_table_error_fails_the_evidence() -> None:
    # A throttled DescribeTable is not "no table": the trigger fails and Lambda retries it
    ports = Tables({APP: client_error("ThrottlingException", "Rate exceeded")})
    with pytest.raises(ClientError, match="ThrottlingException"):
        read_lease_tables(kcl_policy(), ports)
