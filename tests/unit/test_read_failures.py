"""A denied, throttled or invalid read in a symptom's `gather` does not stop the diagnosis: lambda-consumer-lag,
lambda-consumer-errors, read-throttling and lease-table-throttling turn it into a fact (core.consumers.gather_or_error
/ read_failure), the plan is still made from the rest of the evidence, and the advice names the read that failed.
A call outside the symptom's declared grants is still raised."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError
from remediator.core.evidence import Evidence
from remediator.core.history import ActionHistory
from remediator.core.lease_tables import LEASE_TABLES, LEASE_TABLES_UNREADABLE, lease_tables
from remediator.core.planner import make_plan
from remediator.core.ports import DeclaredOnly, UndeclaredCall
from remediator.core.registry import REGISTRY

from tests.fakes import NOW, evidence, policy, stream_arn

ARN = stream_arn("orders")
ROLE = "arn:aws:iam::123456789012:role/consumer-role"


def denied(operation: str, code: str = "AccessDeniedException") -> ClientError:
    """What boto3 raises when AWS refuses the call (the documented error shape)."""
    return ClientError({"Error": {"Code": code, "Message": f"not authorized to perform {operation}"}}, operation)


class Ports:
    """Read ports answering as AWS does, but raising `failures[operation]` (or `failures["DescribeTable:<table>"]`)."""

    def __init__(self, failures: dict[str, Exception]) -> None:
        self.failures = failures
        self.calls: list[str] = []

    def service(self, name: str) -> Any:
        ports = self

        class Port:
            def call(self, operation: str, **params: Any) -> dict[str, Any]:
                ports.calls.append(f"{operation}:{params['TableName']}" if "TableName" in params else operation)
                for key in (operation, ports.calls[-1]):
                    if key in ports.failures:
                        raise ports.failures[key]
                return ports.answer(operation, params)

        return Port()

    @staticmethod
    def answer(operation: str, params: dict[str, Any]) -> dict[str, Any]:
        if operation == "ListEventSourceMappings":
            return {
                "EventSourceMappings": [
                    {"UUID": f"u-{params['FunctionName']}", "State": "Enabled", "EventSourceArn": ARN, "BatchSize": 100}
                ]
            }
        if operation == "GetFunctionConfiguration":
            return {"Timeout": 60, "Role": ROLE}
        if operation == "GetFunctionConcurrency":
            return {}
        if operation == "ListStreamConsumers":
            return {"Consumers": []}
        if operation == "SimulatePrincipalPolicy":
            return {"EvaluationResults": [], "IsTruncated": False}
        if operation == "DescribeTable":
            return {"Table": {"TableStatus": "ACTIVE", "ProvisionedThroughput": {"WriteCapacityUnits": 5}}}
        raise AssertionError(f"unexpected {operation}")


def gathered(symptom_id: str, p: Any, ports: Ports, base: Evidence) -> Evidence:
    """The evidence with the facts the symptom gathers through its declared, read-only ports."""
    symptom = REGISTRY.symptoms[symptom_id]
    facts = symptom.gather(
        p, base.stream, DeclaredOnly(ports, symptom.read_iam_actions, symptom.id, read_only=True), NOW
    )
    return base.model_copy(update={"facts": facts})


def plan_for(symptom_id: str, p: Any, ev: Evidence) -> Any:
    return make_plan(alarm_name="a", symptom=symptom_id, policy=p, evidence=ev, history=ActionHistory(), now=NOW)


def advice_text(plan: Any) -> str:
    return " | ".join(f"{a.title}: {a.detail}" for a in plan.diagnosis.advice)


LAMBDA = [{"function": "orders-processor"}]
LAG_SERIES = {"lambda_iterator_age_0": (600_000.0,) * 15}  # 10 min behind, above the 60 s default


@pytest.mark.parametrize(
    ("traffic", "cause", "actions"),
    [
        pytest.param({"bytes_per_second": 100_000}, "mappings-unreadable", [], id="idle shards: no tuning"),
        pytest.param({"bytes_per_second": 1_900_000}, "shards-saturated", ["reshard"], id="saturated: still resharded"),
    ],
)
def test_lambda_consumer_lag_plans_when_the_mappings_cannot_be_read(
    traffic: dict[str, float], cause: str, actions: list[str]
) -> None:
    # Given a lagging Lambda consumer, and a role that is denied ListEventSourceMappings
    p = policy(consumers=LAMBDA)
    base = evidence(records_per_second=100, **traffic)
    base = base.model_copy(update={"series": base.series | LAG_SERIES})
    ev = gathered("lambda-consumer-lag", p, Ports({"ListEventSourceMappings": denied("ListEventSourceMappings")}), base)
    # When the plan is made
    plan = plan_for("lambda-consumer-lag", p, ev)
    # Then it is made from the rest of the evidence, and the advice names the read that failed and what to check
    assert plan.diagnosis.cause == cause
    assert [s.action for s in plan.steps] == actions
    text = advice_text(plan)
    assert "AccessDeniedException" in text and "lambda:ListEventSourceMappings" in text, text
    assert "role is allowed" in text
    # And no function is said to have no mapping (nobody knows)
    assert "not found" not in text and "no event-source mapping" not in plan.diagnosis.summary


def test_lambda_consumer_errors_plans_when_the_function_cannot_be_read() -> None:
    # Given a failing Lambda consumer, and a throttled GetFunctionConfiguration
    p = policy(consumers=LAMBDA)
    base = evidence(bytes_per_second=100_000, records_per_second=100)
    base = base.model_copy(
        update={"series": base.series | {"lambda_errors_0": (3.0,) * 15, "lambda_invocations_0": (10.0,) * 15}}
    )
    ports = Ports({"GetFunctionConfiguration": denied("GetFunctionConfiguration", "TooManyRequestsException")})
    ev = gathered("lambda-consumer-errors", p, ports, base)
    # When the plan is made
    plan = plan_for("lambda-consumer-errors", p, ev)
    # Then the errors are diagnosed from the metrics, and the advice names the read that failed
    assert plan.diagnosis.cause == "function-errors"
    assert "could not be read" in plan.diagnosis.summary
    text = advice_text(plan)
    assert "TooManyRequestsException" in text and "throttled the read" in text, text
    # And no role was simulated without a role to simulate
    assert "SimulatePrincipalPolicy" not in ports.calls


def test_read_throttling_plans_when_neither_mappings_nor_consumers_can_be_read() -> None:
    # Given read throttling with two Lambda consumers, and a role denied both reads the symptom gathers
    p = policy(consumers=[{"function": "a-fn"}, {"function": "b-fn"}])
    base = evidence(bytes_per_second=200_000, records_per_second=100, iterator_age_ms=5_000)
    base = base.model_copy(
        update={"series": base.series | {"read_throttled": (20.0,) * 15, "read_bytes": (400_000 * 60,) * 15}}
    )
    ports = Ports(
        {"ListEventSourceMappings": denied("ListEventSourceMappings"), "ListStreamConsumers": denied("ListStream")}
    )
    ev = gathered("read-throttling", p, ports, base)
    # When the plan is made
    plan = plan_for("read-throttling", p, ev)
    # Then who polls is read from the policy: two polling consumers compete, enhanced fan-out is proposed
    assert plan.diagnosis.cause == "polling-consumers-compete"
    assert [s.action for s in plan.steps] == ["enhanced-fan-out"]
    # And the advice names both reads that failed
    text = advice_text(plan)
    assert "lambda:ListEventSourceMappings" in text and "kinesis:ListStreamConsumers" in text, text


def test_lease_table_throttling_plans_when_a_lease_table_cannot_be_read() -> None:
    # Given two KCL applications whose first lease table is denied to the remediator
    p = policy(consumers=[{"kcl": "app-one"}, {"kcl": "app-two"}])
    base = evidence(bytes_per_second=100_000, records_per_second=100)
    base = base.model_copy(update={"series": base.series | {"lease_write_throttles_1": (3.0,) * 15}})
    ports = Ports({"DescribeTable:app-one": denied("DescribeTable")})
    ev = gathered("lease-table-throttling", p, ports, base)
    # Then the other table is still read, and the failed read is a fact naming the table and the error
    assert ports.calls == ["DescribeTable:app-one", "DescribeTable:app-two"]
    assert list(lease_tables(ev)) == ["app-two"]
    assert "DescribeTable app-one: AccessDeniedException" in ev.facts[LEASE_TABLES_UNREADABLE]
    assert "AccessDeniedException" in ev.facts[LEASE_TABLES_UNREADABLE]
    # When the plan is made, it is made: the throttled table gets its capacity raised
    plan = plan_for("lease-table-throttling", p, ev)
    assert [s.action for s in plan.steps] == ["lease-table-capacity"]
    assert LEASE_TABLES in ev.facts
    # And the advice names the failed read and what to check
    (failed,) = [a for a in plan.diagnosis.advice if a.title == "Could not read the lease tables"]
    assert "dynamodb:DescribeTable" in failed.detail
    assert "AccessDeniedException" in failed.detail


@pytest.mark.parametrize(
    ("symptom_id", "consumers"),
    [
        ("lambda-consumer-lag", LAMBDA),
        ("lambda-consumer-errors", LAMBDA),
        ("read-throttling", LAMBDA),
        ("lease-table-throttling", [{"kcl": "app-one"}]),
    ],
)
def test_an_undeclared_call_is_still_raised(symptom_id: str, consumers: list[dict[str, str]]) -> None:
    # Given read ports that declare nothing (a symptom calling outside its grants is a bug)
    p = policy(consumers=consumers)
    view = DeclaredOnly(Ports({}), frozenset(), symptom_id, read_only=True)
    # When the symptom gathers, then the bug is raised, not turned into a fact
    with pytest.raises(UndeclaredCall):
        REGISTRY.symptoms[symptom_id].gather(p, evidence().stream, view, NOW)
