"""Every resource scope a grant may declare reaches the role as declared: the consumer functions' ARNs, their
mappings by condition, the policy's lease tables, stream consumers and roles by wildcard, each wildcard
acknowledged to cdk-nag with its reason (synthesis fails on any finding that is not)."""

from __future__ import annotations

import json
from typing import Any, ClassVar

import pytest
from pydantic import Field
from remediator.core.actions.base import Action, ValidationContext
from remediator.core.grants import (
    CONSUMER_FUNCTION_MAPPINGS,
    CONSUMER_ROLES,
    EVENT_SOURCE_MAPPING,
    LAMBDA_FUNCTION,
    LEASE_TABLE,
    STREAM_CONSUMER,
    IamGrant,
)
from remediator.core.plan import GuardrailVerdict, PlannedStep
from remediator.core.policy import ActionPolicy
from remediator.core.ports import WritePorts
from remediator.core.registry import REGISTRY

from tests.infrastructure.support import Synth, assembly_metadata, resolve, synthesize, write_policies

pytestmark = pytest.mark.xdist_group("infrastructure")


class ScopesPolicy(ActionPolicy):
    level: int = Field(1, ge=1, description="Unused.")


class EveryScope(Action[ScopesPolicy]):
    id = "every-scope"
    title = "declares one grant per resource scope"
    policy_schema = ScopesPolicy
    sample_parameters: ClassVar[dict[str, Any]] = {}
    grants = (
        IamGrant(("kinesis:DescribeStreamConsumer",), STREAM_CONSUMER, "consumers of the policy's streams"),
        IamGrant(("lambda:GetFunctionConfiguration",), LAMBDA_FUNCTION, "the consumer functions"),
        IamGrant(("lambda:UpdateEventSourceMapping",), EVENT_SOURCE_MAPPING, "the consumer functions' mappings"),
        IamGrant(("lambda:CreateEventSourceMapping",), CONSUMER_FUNCTION_MAPPINGS, "no resource type in the SAR"),
        IamGrant(("iam:SimulatePrincipalPolicy",), CONSUMER_ROLES, "the consumer functions' roles"),
        IamGrant(("dynamodb:UpdateTable",), LEASE_TABLE, "the KCL applications' lease tables"),
    )

    def checks(self, step: PlannedStep, context: ValidationContext) -> list[GuardrailVerdict]:
        return []

    def apply(self, step: PlannedStep, aws: WritePorts) -> dict[str, Any]:
        return {}

    def cli_command(self, stream_arn: str, parameters: dict[str, Any]) -> str:
        return "aws kinesis describe-stream-consumer"

    def summary(self, parameters: dict[str, Any]) -> str:
        return "every scope"


# The built-in consumer plugins are disabled, so that each scope's statement is the toy's alone.
POLICY = """\
version: 1
streams:
  - name: orders
    mode: enforce
    consumers: [{function: orders-processor}, {kcl: orders-kcl}, {efo: analytics}]
    detectors: {lambda_consumer_lag: {enabled: false}, lambda_consumer_errors: {enabled: false}}
    actions: {reshard: {max_shards: 4}, tune_event_source: {enabled: false}}
  - name: clicks
    mode: enforce
    consumers: [{function: clicks-reader}, {kcl: clicks-app, lease_table: clicks-leases}]
    detectors: {lambda_consumer_lag: {enabled: false}, lambda_consumer_errors: {enabled: false}}
    actions: {reshard: {max_shards: 4}, tune_event_source: {enabled: false}}
  - name: quiet
    mode: enforce
    actions: {reshard: {max_shards: 4}}
"""
ARN = "arn:aws:{service}:us-east-1:123456789012:{resource}"


@pytest.fixture(scope="module")
def scoped(tmp_path_factory: pytest.TempPathFactory) -> Synth:
    policies = write_policies(tmp_path_factory.mktemp("scopes"), {"p.yaml": POLICY})
    with REGISTRY.registered(EveryScope):
        return synthesize([policies], tmp_path_factory.mktemp("cdk.out-scopes"))


def statement(synth: Synth, action: str) -> dict[str, Any]:
    # A statement may list further actions on the same resources (a symptom's reads, merged by CDK).
    found = [
        resolve(s, synth.template)
        for r in synth.resources("AWS::IAM::Policy").values()
        for s in r["Properties"]["PolicyDocument"]["Statement"]
        # Statements with the same resources are merged (CDK's minimizePolicies): the built-in lease table grants
        # share the toy's resources
        if action in as_list(s["Action"])
    ]
    assert len(found) == 1, f"{action}: {json.dumps(found)}"
    return found[0]


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def test_function_scope_names_each_consumer_function(scoped: Synth) -> None:
    resources = as_list(statement(scoped, "lambda:GetFunctionConfiguration")["Resource"])
    assert sorted(resources) == [
        ARN.format(service="lambda", resource="function:clicks-reader"),
        ARN.format(service="lambda", resource="function:orders-processor"),
    ]


def test_mapping_scopes_are_narrowed_to_the_consumer_functions_by_condition(scoped: Synth) -> None:
    functions = sorted(
        ARN.format(service="lambda", resource=f"function:{name}") for name in ("clicks-reader", "orders-processor")
    )
    update = statement(scoped, "lambda:UpdateEventSourceMapping")
    assert update["Resource"] == ARN.format(service="lambda", resource="event-source-mapping:*")
    assert sorted(update["Condition"]["StringEquals"]["lambda:FunctionArn"]) == functions
    create = statement(scoped, "lambda:CreateEventSourceMapping")
    assert create["Resource"] == "*"
    assert sorted(create["Condition"]["StringEquals"]["lambda:FunctionArn"]) == functions


def test_lease_tables_stream_consumers_and_roles(scoped: Synth) -> None:
    assert sorted(as_list(statement(scoped, "dynamodb:UpdateTable")["Resource"])) == [
        ARN.format(service="dynamodb", resource="table/clicks-leases"),
        ARN.format(service="dynamodb", resource="table/orders-kcl"),
    ]
    assert sorted(as_list(statement(scoped, "kinesis:DescribeStreamConsumer")["Resource"])) == [
        ARN.format(service="kinesis", resource=f"stream/{name}/consumer/*") for name in ("clicks", "orders", "quiet")
    ]
    # IAM is global: no region in the role ARN
    assert statement(scoped, "iam:SimulatePrincipalPolicy")["Resource"] == "arn:aws:iam::123456789012:role/*"


def test_each_wildcard_is_acknowledged_with_its_reason(scoped: Synth) -> None:
    # Given the acknowledgements recorded in the cloud assembly (the synth passed cdk-nag, so none is missing)
    acknowledged = {
        rule: reason
        for entries in assembly_metadata(scoped).values()
        for entry in entries
        if entry["type"] == "aws:cdk:acknowledged-rules"
        for rule, reason in entry["data"].items()
    }
    # Then each wildcard resource is acknowledged by its own finding id, with the grant's reason
    for resource, why in [
        ("arn:<AWS::Partition>:kinesis:<AWS::Region>:<AWS::AccountId>:stream/orders/consumer/*", "consumers"),
        ("arn:<AWS::Partition>:iam::<AWS::AccountId>:role/*", "roles"),
        ("arn:<AWS::Partition>:lambda:<AWS::Region>:<AWS::AccountId>:event-source-mapping:*", "mappings"),
    ]:
        rules = [rule for rule in acknowledged if resource in rule]
        assert len(rules) == 1, (resource, sorted(acknowledged))
        assert why in acknowledged[rules[0]]
