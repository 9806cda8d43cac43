"""Least privilege: the remediator's role names the policies' streams, tables and parameters, and nothing else.

The role's statements are flattened to (action, resource) pairs with intrinsics resolved (support.resolve),
so the assertions hold however CDK merges statements (cdk.json sets @aws-cdk/aws-iam:minimizePolicies).
"""

from __future__ import annotations

import pytest
from remediator.core.actions import REGISTRY
from remediator.core.evidence import READ_GRANTS
from remediator.core.grants import IamGrant

from tests.infrastructure.support import (
    Synth,
    get_att,
    parameter_arn,
    permission_pairs,
    ref,
    resources_for,
    role_logical_id,
    stream_arn,
)

pytestmark = pytest.mark.xdist_group("infrastructure")

XRAY_ACTIONS = {"xray:PutTraceSegments", "xray:PutTelemetryRecords"}


def registry_grants() -> list[IamGrant]:
    """The declarations, read from the registries directly (not through the stack's own helper)."""
    grants = list(READ_GRANTS)
    for action in REGISTRY.values():
        grants.extend(action.iam_grants)
    return grants


def scoped_actions(scope: str) -> set[str]:
    return {action for grant in registry_grants() if grant.scope == scope for action in grant.actions}


def policy_stream_arns(synth: Synth) -> set[str]:
    return {stream_arn(name) for name in synth.policies.streams}


def test_registries_declare_both_scopes() -> None:
    # Given the registries, the tests below are meaningful only if both scopes are in use
    assert scoped_actions("stream") == {"kinesis:DescribeStreamSummary"}
    assert scoped_actions("account") == {"kinesis:UpdateShardCount", "cloudwatch:GetMetricData"}


def test_role_is_assumable_by_lambda_only_and_has_no_managed_policies(synth: Synth) -> None:
    # Given the function's role
    role = synth.template["Resources"][role_logical_id(synth)]["Properties"]
    # Then only Lambda may assume it, and no AWS managed policy widens it
    assert role["AssumeRolePolicyDocument"]["Statement"] == [
        {"Action": "sts:AssumeRole", "Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}}
    ]
    assert "ManagedPolicyArns" not in role
    assert "Policies" not in role
    assert "PermissionsBoundary" not in role


def test_role_permissions_are_exactly_the_declared_ones(synth: Synth) -> None:
    # Given the registries' declarations and the stack's own resources
    streams = policy_stream_arns(synth)
    resource_ids = {
        "audit": synth.logical_id("State/AuditTable"),
        "idempotency": synth.logical_id("State/IdempotencyTable"),
        "topic": synth.logical_id("Notifications/Topic"),
        "key": synth.logical_id("Notifications/TopicKey"),
        "queue": synth.logical_id("Remediator/DeadLetterQueue"),
        "logs": synth.logical_id("Remediator/Logs"),
    }
    parameters = {parameter_arn("/kinesis-remediator/kill-switch")} | {
        parameter_arn(f"/kinesis-remediator/policies/{name}") for name in synth.policies.streams
    }
    expected = (
        {(action, arn) for action in scoped_actions("stream") for arn in streams}
        | {(action, "*") for action in scoped_actions("account") | XRAY_ACTIONS}
        | {("ssm:GetParameter", arn) for arn in parameters}
        | {(a, get_att(resource_ids["audit"])) for a in ("dynamodb:PutItem", "dynamodb:Query")}
        | {
            (a, get_att(resource_ids["idempotency"]))
            for a in ("dynamodb:PutItem", "dynamodb:GetItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem")
        }
        | {("sns:Publish", ref(resource_ids["topic"]))}
        | {(a, get_att(resource_ids["key"])) for a in ("kms:GenerateDataKey", "kms:Decrypt")}
        | {("sqs:SendMessage", get_att(resource_ids["queue"]))}
        | {(a, get_att(resource_ids["logs"])) for a in ("logs:CreateLogStream", "logs:PutLogEvents")}
    )
    # When the role's statements are flattened
    pairs = permission_pairs(synth)
    # Then they are exactly these (action, resource) pairs: nothing more, nothing less
    assert pairs == expected, f"extra: {sorted(pairs - expected)}; missing: {sorted(expected - pairs)}"


@pytest.mark.parametrize("fixture", ["synth", "grown_synth", "example_synth"])
def test_stream_scoped_kinesis_actions_name_exactly_the_policy_streams(
    request: pytest.FixtureRequest, fixture: str
) -> None:
    # Given an app built from a policy set
    synth: Synth = request.getfixturevalue(fixture)
    pairs = permission_pairs(synth)
    # When the kinesis actions that are scoped to resources are collected
    scoped = {(action, resource) for action, resource in pairs if action.startswith("kinesis:") and resource != "*"}
    # Then each of them names exactly the policy streams' ARNs, none a wildcard
    assert scoped, "no stream-scoped kinesis statement at all"
    for action in {action for action, _ in scoped}:
        assert resources_for(scoped, action) == policy_stream_arns(synth), action
    assert not [resource for _, resource in scoped if "*" in resource]


def test_only_account_scoped_grants_and_xray_use_a_wildcard_resource(synth: Synth) -> None:
    # Given the role's permissions
    pairs = permission_pairs(synth)
    # Then the actions granted on "*" are exactly the registries' account-scoped ones and X-Ray's
    assert {action for action, resource in pairs if resource == "*"} == scoped_actions("account") | XRAY_ACTIONS
    # And no other resource contains a wildcard
    assert [(a, r) for a, r in pairs if r != "*" and "*" in r] == []


def test_every_declared_grant_is_in_the_role_with_its_scope(synth: Synth) -> None:
    # Given the registries' declarations
    pairs = permission_pairs(synth)
    streams = policy_stream_arns(synth)
    # Then the stack built the role from them: each action is granted, on the streams or on "*" as declared
    for grant in registry_grants():
        for action in grant.actions:
            expected = streams if grant.scope == "stream" else {"*"}
            assert resources_for(pairs, action) == expected, (action, grant.scope)


def test_no_dangerous_or_wildcard_actions(synth: Synth) -> None:
    # Given the role's permissions
    actions = {action for action, _ in permission_pairs(synth)}
    # Then no action is a wildcard, none touches IAM, none deletes a stream, none writes a parameter
    assert [a for a in actions if "*" in a] == []
    assert [a for a in actions if a.lower().startswith("iam:")] == []
    assert "kinesis:DeleteStream" not in actions
    assert "ssm:PutParameter" not in actions
    assert [a for a in actions if a.startswith("ssm:")] == ["ssm:GetParameter"]


def test_ssm_reads_are_limited_to_the_kill_switch_and_the_policy_parameters(synth: Synth) -> None:
    # Given the role's permissions
    pairs = permission_pairs(synth)
    # Then GetParameter names the kill switch and one parameter per policy stream, nothing else
    assert resources_for(pairs, "ssm:GetParameter") == {
        parameter_arn("/kinesis-remediator/kill-switch"),
        parameter_arn("/kinesis-remediator/policies/orders"),
        parameter_arn("/kinesis-remediator/policies/payments"),
    }


def test_dynamodb_actions_are_limited_to_the_two_tables(synth: Synth) -> None:
    # Given the role's permissions
    pairs = permission_pairs(synth)
    tables = {get_att(synth.logical_id("State/AuditTable")), get_att(synth.logical_id("State/IdempotencyTable"))}
    # Then every DynamoDB action names one of the two tables (no index, no other table, no "*")
    dynamodb = {(a, r) for a, r in pairs if a.startswith("dynamodb:")}
    assert dynamodb
    assert {r for _, r in dynamodb} == tables
    assert not {a for a, _ in dynamodb} & {"dynamodb:Scan", "dynamodb:DeleteTable", "dynamodb:UpdateTable"}


def test_adding_a_stream_adds_exactly_its_arn_to_the_scoped_statements(synth: Synth, grown_synth: Synth) -> None:
    # Given the app before and after clickstream was added to the policy directory
    assert set(grown_synth.policies.streams) - set(synth.policies.streams) == {"clickstream"}
    before = permission_pairs(synth)
    after = permission_pairs(grown_synth)

    def kinesis_scoped(pairs: set[tuple[str, str]]) -> set[tuple[str, str]]:
        return {(a, r) for a, r in pairs if a.startswith("kinesis:") and r != "*"}

    # Then the stream-scoped kinesis statements gained exactly clickstream's ARN, and lost nothing
    assert kinesis_scoped(after) - kinesis_scoped(before) == {
        (action, stream_arn("clickstream")) for action in scoped_actions("stream")
    }
    assert kinesis_scoped(before) <= kinesis_scoped(after)
    # And the wildcard statements did not change
    assert {p for p in after if p[1] == "*"} == {p for p in before if p[1] == "*"}
    # And across the whole role, the only other addition is clickstream's policy parameter
    assert before <= after
    assert after - before == {(action, stream_arn("clickstream")) for action in scoped_actions("stream")} | {
        ("ssm:GetParameter", parameter_arn("/kinesis-remediator/policies/clickstream"))
    }
