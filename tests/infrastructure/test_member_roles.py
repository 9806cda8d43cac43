"""Issue 11.4, the hub's side of IAM: its role may assume exactly the member roles of the accounts its policies
place streams in (core.deployment.member_role_arn), and no role at all when every stream is its own."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.infrastructure.support import Synth, permission_pairs, resources_for, synthesize, write_policies

pytestmark = pytest.mark.xdist_group("infrastructure")

HUB_ONLY = """\
version: 1
streams:
  - name: orders
    actions: {reshard: {max_shards: 8}}
"""
# Streams in two member accounts (one in another region). (The same name in two accounts is a policy-level test:
# tests/unit/test_member_policy.py; here the names differ so that the stack builds whichever stack holds alarms.)
MEMBERS = """\
version: 1
streams:
  - name: clicks
    account: '222222222222'
    actions: {reshard: {max_shards: 8}}
  - name: payments
    account: '333333333333'
    region: eu-west-1
    actions: {reshard: {max_shards: 8}}
  - name: views
    account: '222222222222'
    actions: {reshard: {max_shards: 8}}
"""


def member_role(account: str) -> str:
    return f"arn:aws:iam::{account}:role/KinesisRemediatorMember"


@pytest.fixture(scope="module")
def members_synth(tmp_path_factory: pytest.TempPathFactory) -> Synth:
    folder = write_policies(tmp_path_factory.mktemp("member-policies"), {"hub.yaml": HUB_ONLY, "members.yaml": MEMBERS})
    return synthesize([folder], tmp_path_factory.mktemp("cdk.out-members"))


def test_the_hub_may_assume_exactly_the_member_roles_of_its_policies_accounts(members_synth: Synth) -> None:
    # Given policies naming streams in two member accounts
    # When the hub is synthesized, Then its role may assume those two accounts' member role, and nothing else
    assert resources_for(permission_pairs(members_synth), "sts:AssumeRole") == {
        member_role("222222222222"),
        member_role("333333333333"),
    }
    assert {action for action, _ in permission_pairs(members_synth) if action.startswith("sts:")} == {"sts:AssumeRole"}


def test_a_hub_without_members_assumes_no_role(synth: Synth) -> None:
    # Given the two hub-local test policies, Then the role has no sts action at all
    assert not {action for action, _ in permission_pairs(synth) if action.startswith("sts:")}


def test_a_policy_for_the_hubs_other_region_grants_its_own_accounts_member_role(tmp_path: Path) -> None:
    # Given a stream in the hub's own account but another region (reached through that region's member stack)
    from aws_cdk import App, Stack
    from remediator.policy_files import load_policies

    from stacks.constructs.remediator import member_role_arns

    actions = "    actions: {reshard: {max_shards: 8}}\n"
    text = f"version: 1\nstreams:\n  - name: s\n    region: eu-west-1\n{actions}  - name: t\n{actions}"
    folder = write_policies(tmp_path, {"p.yaml": text})
    stack = Stack(App(), "Hub", env={"account": "123456789012", "region": "us-east-1"})
    # When the member roles are listed, Then the hub's own account's member role is the one
    [role] = member_role_arns(load_policies([folder]), stack)
    assert stack.resolve(role) == {
        "Fn::Join": ["", ["arn:", {"Ref": "AWS::Partition"}, ":iam::123456789012:role/KinesisRemediatorMember"]]
    }
