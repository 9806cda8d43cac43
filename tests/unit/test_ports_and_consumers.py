"""Read and write views of AWS, and consumers by kind in the policy."""

from __future__ import annotations

from typing import Any

import pytest
from remediator.core.policy import EfoConsumer, LambdaConsumer
from remediator.core.ports import DeclaredOnly, UndeclaredCall

from tests.fakes import policy


class RecordingService:
    def __init__(self, calls: list[tuple[str, str]], name: str) -> None:
        self.calls, self.name = calls, name

    def call(self, operation: str, **parameters: Any) -> dict[str, Any]:
        self.calls.append((self.name, operation))
        return {}


class RecordingPorts:
    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []

    def service(self, name: str) -> RecordingService:
        return RecordingService(self.calls, name)


@pytest.mark.parametrize(
    ("service", "operation"),
    [("lambda", "GetFunctionConfiguration"), ("lambda", "ListEventSourceMappings"), ("iam", "SimulatePrincipalPolicy")],
)
def test_a_read_view_passes_declared_reads(service: str, operation: str) -> None:
    # Given a read-only view declaring the read
    ports = RecordingPorts()
    view = DeclaredOnly(ports, frozenset({f"{service}:{operation}"}), "toy", read_only=True)
    # When the read is made, Then it reaches AWS
    view.service(service).call(operation)
    assert ports.calls == [(service, operation)]


def test_a_read_view_refuses_a_write_even_when_declared() -> None:
    # Given a read-only view whose grants (wrongly) include a write
    ports = RecordingPorts()
    view = DeclaredOnly(ports, frozenset({"lambda:UpdateEventSourceMapping"}), "toy", read_only=True)
    # When the symptom tries the write, Then it is refused before AWS is reached
    with pytest.raises(UndeclaredCall, match="'toy' may only read, and lambda:UpdateEventSourceMapping is not a read"):
        view.service("lambda").call("UpdateEventSourceMapping", UUID="u")
    assert ports.calls == []


def test_a_read_view_refuses_an_undeclared_read() -> None:
    ports = RecordingPorts()
    view = DeclaredOnly(ports, frozenset({"lambda:GetFunctionConfiguration"}), "toy", read_only=True)
    with pytest.raises(UndeclaredCall, match="lambda:GetFunctionConcurrency, which is not in its grants"):
        view.service("lambda").call("GetFunctionConcurrency", FunctionName="f")
    assert ports.calls == []


def test_consumers_are_read_by_kind() -> None:
    # Given a policy with one consumer of each kind, and a KCL application with its own lease table
    stream = policy(
        consumers=[
            {"function": "orders-processor"},
            {"efo": "analytics"},
            {"kcl": "orders-kcl"},
            {"kcl": "billing", "lease_table": "billing-leases", "namespace": "Billing/KCL"},
        ]
    )
    # Then each kind is listed on its own, with the names people wrote
    assert stream.lambda_consumers == (LambdaConsumer(function="orders-processor"),)
    assert stream.efo_consumers == (EfoConsumer(efo="analytics"),)
    assert [c.name for c in stream.consumers] == ["orders-processor", "analytics", "orders-kcl", "billing"]
    # And a KCL application's lease table and namespace default to its name
    default, own = stream.kcl_applications
    assert (default.lease_table_name, default.metrics_namespace) == ("orders-kcl", "orders-kcl")
    assert (own.lease_table_name, own.metrics_namespace) == ("billing-leases", "Billing/KCL")
    # And the polling consumers (sharing each shard's GetRecords) are the Lambda and KCL ones, not EFO
    assert stream.polling_consumers == 3
    assert stream.lambda_consumers[0].move_to_efo is False


def test_a_short_kcl_name_needs_its_lease_table() -> None:
    # Given a KCL application whose name is too short to be a DynamoDB table name
    from pydantic import ValidationError

    # When it names no lease table, Then the policy is refused with the reason
    with pytest.raises(ValidationError, match="DynamoDB table names have 3 to 255 characters: give `lease_table`"):
        policy(consumers=[{"kcl": "ab"}])
    # And with its lease table named, it is accepted
    assert policy(consumers=[{"kcl": "ab", "lease_table": "ab-leases"}]).kcl_applications[0].lease_table_name == (
        "ab-leases"
    )
