"""Least privilege: the remediator's role names the policies' streams, tables and parameters, and nothing else.

The role's statements are flattened to (action, resource) pairs with intrinsics resolved (support.resolve),
so the assertions hold however CDK merges statements (cdk.json sets @aws-cdk/aws-iam:minimizePolicies).
"""

from __future__ import annotations

import pytest
from remediator.core.iam import grants_for
from remediator.policy_files import PolicySet

from tests.infrastructure.support import (
    PASS_ROLE_CONDITION,
    Synth,
    arn,
    declared_pairs,
    declared_permissions,
    follow_through_pairs,
    get_att,
    parameter_arn,
    permission_conditions,
    permission_pairs,
    ref,
    resources_for,
    role_logical_id,
    scheduler_role_id,
    stream_arn,
)

pytestmark = pytest.mark.xdist_group("infrastructure")

XRAY_ACTIONS = {"xray:PutTraceSegments", "xray:PutTelemetryRecords"}
# Scopes whose resolved ARNs end in a wildcard because the resource's id is unknown at synth time
# (remediator.core.grants: a consumer's ARN ends in its creation time, a mapping's in its UUID, and a consumer
# function's role is only known from its configuration at run time).
SUFFIX_WILDCARD_SCOPES = {"stream-consumer", "event-source-mapping", "iam-role"}


# The streams' policy parameters, granted by their path (stacks/constructs/remediator.py).
POLICY_PARAMETERS = parameter_arn("/kinesis-remediator/policies/*")


def account_wide_actions(policies: PolicySet) -> set[str]:
    return {action for p in declared_permissions(policies) if p.account_wide for action in p.actions}


def stream_scoped_actions(policies: PolicySet) -> set[str]:
    return {action for p in declared_permissions(policies) if p.scope == "stream" for action in p.actions}


def policy_stream_arns(synth: Synth) -> set[str]:
    return {stream_arn(name) for name in synth.policies.streams}


def test_declarations_use_both_a_resource_scope_and_the_account_scope(synth: Synth) -> None:
    # Given what the registries declare for the test policies
    declared = declared_permissions(synth.policies)
    # Then some grants name resources and some are account-wide, so the tests below check both kinds
    assert {p.scope for p in declared if not p.account_wide}
    assert account_wide_actions(synth.policies)
    # And every account-wide grant says why no resource can be named
    assert all(p.why.strip() for p in declared if p.account_wide)


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
    # Given the registries' declarations (remediator.core.iam.permissions) and the stack's own resources
    resource_ids = {
        "audit": synth.logical_id("State/AuditTable"),
        "idempotency": synth.logical_id("State/IdempotencyTable"),
        "topic": synth.logical_id("Notifications/Topic"),
        "key": synth.logical_id("Notifications/TopicKey"),
        "queue": synth.logical_id("Remediator/DeadLetterQueue"),
        "logs": synth.logical_id("Remediator/Logs"),
    }
    parameters = {parameter_arn("/kinesis-remediator/kill-switch"), POLICY_PARAMETERS}
    expected = (
        declared_pairs(synth.policies)
        | {(action, "*") for action in XRAY_ACTIONS}
        | {("ssm:GetParameter", parameter) for parameter in parameters}
        | {("ssm:GetParametersByPath", parameter_arn("/kinesis-remediator/policies"))}
        | {(a, get_att(resource_ids["audit"])) for a in ("dynamodb:PutItem", "dynamodb:Query", "dynamodb:GetItem")}
        | {
            (a, get_att(resource_ids["idempotency"]))
            for a in ("dynamodb:PutItem", "dynamodb:GetItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem")
        }
        | {("sns:Publish", ref(resource_ids["topic"]))}
        | {(a, get_att(resource_ids["key"])) for a in ("kms:GenerateDataKey", "kms:Decrypt")}
        | {("sqs:SendMessage", get_att(resource_ids["queue"]))}
        | {(a, get_att(resource_ids["logs"])) for a in ("logs:CreateLogStream", "logs:PutLogEvents")}
        | follow_through_pairs(synth)
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
    # When the kinesis actions that the registries scope to streams are collected
    actions = stream_scoped_actions(synth.policies)
    assert actions, "no stream-scoped kinesis grant at all"
    # Then each of them names exactly the ARNs of the policy streams whose enabled plugins need it, none a wildcard
    for action in actions:
        needing = {
            stream_arn(name)
            for name, policy in synth.policies.streams.items()
            if any(action in grant.actions and grant.scope.name == "stream" for grant in grants_for(policy))
        }
        assert needing <= policy_stream_arns(synth), action
        assert resources_for(pairs, action) == needing, action
    assert not [r for a in actions for r in resources_for(pairs, a) if "*" in r]


@pytest.mark.parametrize("fixture", ["synth", "grown_synth", "example_synth"])
def test_only_account_scoped_grants_and_xray_use_a_wildcard_resource(
    request: pytest.FixtureRequest, fixture: str
) -> None:
    # Given the role's permissions
    synth: Synth = request.getfixturevalue(fixture)
    pairs = permission_pairs(synth)
    # Then the actions granted on "*" are exactly the registries' account-scoped ones and X-Ray's
    assert {action for action, resource in pairs if resource == "*"} == account_wide_actions(
        synth.policies
    ) | XRAY_ACTIONS
    # And no other resource contains a wildcard, but for the ARN suffixes of scopes whose ids are unknown at synth
    suffix_wildcards = {
        (a, r)
        for p in declared_permissions(synth.policies)
        if p.scope in SUFFIX_WILDCARD_SCOPES
        for a in p.actions
        for r in p.resources
    }
    # (and for follow-through's prefixes: our alarms (their state, and a fleet alarm's contributors), and our
    # schedules, both named by the deployment's prefix; and the policy parameters' path)
    prefixed = {(a, r) for a, r in follow_through_pairs(synth) if r.endswith("*")}
    assert len(prefixed) == 4
    prefixed.add(("ssm:GetParameter", POLICY_PARAMETERS))
    assert [(a, r) for a, r in pairs if r != "*" and "*" in r and (a, r) not in suffix_wildcards | prefixed] == []
    assert all(r.endswith("/*") or r.endswith(":*") for _, r in suffix_wildcards)


@pytest.mark.parametrize("fixture", ["synth", "grown_synth", "example_synth"])
def test_every_declared_grant_is_in_the_role_with_its_scope(request: pytest.FixtureRequest, fixture: str) -> None:
    # Given each stream's grants, read from its enabled plugins (remediator.core.iam.grants_for)
    synth: Synth = request.getfixturevalue(fixture)
    pairs = permission_pairs(synth)
    # Then the stack granted each action on the resources its scope resolves to for that stream ("*" if account-wide)
    for name, policy in synth.policies.streams.items():
        for grant in grants_for(policy):
            for action in grant.actions:
                for resource in grant.resources(policy, arn):
                    assert (action, resource) in pairs, (name, action, grant.scope.name, resource)


# Not the example policy: it is the user's, and a dry-run policy is granted no action (so no condition) at all.
@pytest.mark.parametrize("fixture", ["synth", "grown_synth"])
def test_every_declared_condition_is_on_the_role(request: pytest.FixtureRequest, fixture: str) -> None:
    # Given the grants the registries narrow by a condition (an event-source mapping's function)
    synth: Synth = request.getfixturevalue(fixture)
    declared = {
        (action, resource): {
            op: {key: set(values) for key, values in keys.items()} for op, keys in p.conditions.items()
        }
        for p in declared_permissions(synth.policies)
        if p.conditions
        for action in p.actions
        for resource in p.resources
    }
    assert declared, "no conditioned grant for these policies"
    # Then the role grants each of them with exactly those conditions, and no other statement has one
    # (and follow-through's iam:PassRole, which only EventBridge Scheduler may receive)
    passed = {("iam:PassRole", get_att(scheduler_role_id(synth))): PASS_ROLE_CONDITION}
    assert permission_conditions(synth) == declared | passed


def test_no_dangerous_or_wildcard_actions(synth: Synth) -> None:
    # Given the role's permissions
    actions = {action for action, _ in permission_pairs(synth)}
    # Then no action is a wildcard, none touches IAM (simulating a role's policies reads them, on roles only),
    # none deletes a stream, none writes a parameter
    assert [a for a in actions if "*" in a] == []
    # (but for passing the one follow-through Scheduler role, to EventBridge Scheduler only)
    assert sorted(a for a in actions if a.lower().startswith("iam:")) == ["iam:PassRole", "iam:SimulatePrincipalPolicy"]
    assert {r for a, r in permission_pairs(synth) if a == "iam:SimulatePrincipalPolicy"} == {
        arn(service="iam", resource="role", resource_name="*")
    }
    assert {r for a, r in permission_pairs(synth) if a == "iam:PassRole"} == {get_att(scheduler_role_id(synth))}
    assert "kinesis:DeleteStream" not in actions
    assert "ssm:PutParameter" not in actions
    assert sorted(a for a in actions if a.startswith("ssm:")) == ["ssm:GetParameter", "ssm:GetParametersByPath"]


def test_ssm_reads_are_limited_to_the_kill_switch_and_the_policy_parameters(synth: Synth) -> None:
    # Given the role's permissions
    pairs = permission_pairs(synth)
    # Then GetParameter names the kill switch and the policy parameters by their path, nothing else (one ARN per
    # stream would outgrow the role's policy at a few hundred streams; the path reads no more than
    # GetParametersByPath on it already returns)
    assert resources_for(pairs, "ssm:GetParameter") == {
        parameter_arn("/kinesis-remediator/kill-switch"),
        POLICY_PARAMETERS,
    }
    # And the census's listing names exactly the policy path (GetParametersByPath is authorised against the path
    # in the request): not the kill switch's path, not a wildcard
    assert resources_for(pairs, "ssm:GetParametersByPath") == {parameter_arn("/kinesis-remediator/policies")}


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

    # And what the registries declare for clickstream alone, apart from account-wide grants
    clickstream = grown_synth.policies.streams["clickstream"]
    scoped_for_clickstream = {(a, r) for a, r in declared_pairs([clickstream]) if r != "*"}
    assert scoped_for_clickstream
    # (clickstream is in dry-run: its reads only, none of the actions' grants)
    assert {r for _, r in scoped_for_clickstream} == {stream_arn("clickstream")}
    # Then the stream-scoped kinesis statements gained exactly clickstream's ARN, and lost nothing
    assert kinesis_scoped(after) - kinesis_scoped(before) == kinesis_scoped(scoped_for_clickstream)
    assert kinesis_scoped(before) <= kinesis_scoped(after)
    # And the wildcard statements did not change
    assert {p for p in after if p[1] == "*"} == {p for p in before if p[1] == "*"}
    # And across the whole role there is no other addition (its policy parameter is under the granted path)
    assert before <= after
    assert after - before == scoped_for_clickstream


def test_the_follow_through_scheduler_role_may_only_invoke_the_function(synth: Synth) -> None:
    # Given the role EventBridge Scheduler invokes the remediator with (follow-through schedules)
    role = synth.template["Resources"][scheduler_role_id(synth)]["Properties"]
    (function_logical_id,) = synth.resources("AWS::Lambda::Function")
    # Then only EventBridge Scheduler of this account may assume it
    assert role["AssumeRolePolicyDocument"]["Statement"] == [
        {
            "Action": "sts:AssumeRole",
            "Condition": {"StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}},
            "Effect": "Allow",
            "Principal": {"Service": "scheduler.amazonaws.com"},
        }
    ]
    assert "ManagedPolicyArns" not in role
    # And its one permission is to invoke the remediator function, by its exact ARN
    policies = [
        p["Properties"]
        for p in synth.resources("AWS::IAM::Policy").values()
        if {"Ref": scheduler_role_id(synth)} in p["Properties"]["Roles"]
    ]
    (policy,) = policies
    assert policy["PolicyDocument"]["Statement"] == [
        {"Action": "lambda:InvokeFunction", "Effect": "Allow", "Resource": {"Fn::GetAtt": [function_logical_id, "Arn"]}}
    ]
