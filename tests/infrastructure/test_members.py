"""Many accounts and regions (issue 11.4): the member stacks and what the hub gives them.

One app: the hub (account ACCOUNT, us-east-1) and members for the streams the policies place elsewhere. Each member
stack holds its streams' alarms (in nested stream stacks, by the hub's hash and bucket ids), a rule forwarding their
state changes to the hub's default bus, and, once per account, the role the hub's remediator role may assume with the
external id, allowed what the registries grant for that account's streams only. The hub's bus admits exactly the
member accounts.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aws_cdk import App
from cfnlint.api import ManualArgs, lint
from moto.events.models import EventPattern
from remediator.core.alarm import deployed_alarms
from remediator.core.deployment import MEMBER_ROLE_NAME
from remediator.core.iam import permissions
from remediator.policy_files import PolicySet, load_policies

from stacks.accounts import (
    EXTERNAL_ID_CONTEXT,
    HUB_ACCOUNT_CONTEXT,
    MemberSettingsError,
    Place,
    hub_role_name,
    hub_settings,
    member_stack_name,
    place_policies,
)
from stacks.app_builder import build_app
from stacks.constructs.stream_stack import own_resource_count
from stacks.fleet import MAX_RESOURCES_PER_STACK, StackTooLarge, bucket_id, bucket_of, stream_identity
from stacks.member_stack import KinesisRemediatorMemberStack
from stacks.remediator_stack import KinesisRemediatorStack
from tests.infrastructure.support import (
    ACCOUNT,
    EXTERNAL_ID,
    REGION,
    Synth,
    as_list,
    cli_context,
    permission_pairs,
    read_template,
    resolve,
    role_statements,
    run_app,
    write_policies,
)

pytestmark = pytest.mark.xdist_group("infrastructure")

SALES = "222222222222"  # two regions
DATA = "333333333333"  # one region, dry-run only
HUB = Place(ACCOUNT, REGION)

MEMBERS_YAML = f"""\
version: 1
streams:
  - name: orders
    mode: enforce
    consumers:
      - function: orders-processor
    actions:
      reshard: {{min_shards: 1, max_shards: 8}}
  - name: sales-orders
    account: "{SALES}"
    region: {REGION}
    mode: enforce
    consumers:
      - function: sales-processor
      - kcl: sales-app
    actions:
      reshard: {{min_shards: 1, max_shards: 8}}
  - name: sales-eu
    account: "{SALES}"
    region: eu-west-1
    mode: enforce
    actions:
      reshard: {{min_shards: 1, max_shards: 8}}
  - name: lake
    account: "{DATA}"
    actions:
      reshard: {{max_shards: 4}}
  - name: hub-eu
    region: eu-west-1
    actions:
      reshard: {{max_shards: 4}}
"""


@dataclass(frozen=True)
class Fleet:
    hub: KinesisRemediatorStack
    templates: dict[str, dict[str, Any]]  # stack name -> template
    outdir: Path
    policies: PolicySet
    hub_streams: list[dict[str, Any]]  # the hub's stream stacks' templates (nested: stacks/fleet.py)
    # member stack name -> bucket -> its stream stack's template (nested, as the hub's)
    member_streams: dict[str, dict[int, dict[str, Any]]]

    @property
    def hub_template(self) -> dict[str, Any]:
        return self.templates[self.hub.stack_name]

    def member(self, account: str, region: str = REGION) -> dict[str, Any]:
        return self.templates[member_stack_name(Place(account, region))]

    def member_all(self, account: str, region: str = REGION) -> list[dict[str, Any]]:
        """The member stack's template, then its stream stacks' by bucket."""
        streams = self.member_streams[member_stack_name(Place(account, region))]
        return [self.member(account, region), *(streams[b] for b in sorted(streams))]


def resources(template: dict[str, Any], resource_type: str) -> dict[str, dict[str, Any]]:
    return {k: v for k, v in template["Resources"].items() if v["Type"] == resource_type}


def only(template: dict[str, Any], resource_type: str) -> dict[str, Any]:
    (found,) = resources(template, resource_type).values()
    return found


def synthesize_fleet(policy_dir: Path, outdir: Path, **settings: Any) -> Fleet:
    app = App(outdir=str(outdir), context=cli_context())
    hub = build_app(
        app,
        [policy_dir],
        hub_account=settings.get("hub_account", ACCOUNT),
        hub_region=settings.get("hub_region", REGION),
        member_external_id=settings.get("external_id", EXTERNAL_ID),
    )
    app.synth()  # runs cdk-nag on every stack: it raises on any unacknowledged finding
    # The top-level stacks: the hub and the members (the hub's nested stream stacks, stacks/fleet.py, apart).
    templates = {
        path.name.removesuffix(".template.json"): json.loads(path.read_text(encoding="utf-8"))
        for path in outdir.glob("*.template.json")
        if not path.name.endswith(".nested.template.json")
    }
    streams = [read_template(outdir, s) for s in hub.stream_stacks.values()]
    member_streams = {
        member.stack_name: {bucket: read_template(outdir, s) for bucket, s in member.stream_stacks.items()}
        for member in hub.members.values()
        if isinstance(member, KinesisRemediatorMemberStack)
    }
    return Fleet(
        hub=hub,
        templates=templates,
        outdir=outdir,
        policies=load_policies([policy_dir]),
        hub_streams=streams,
        member_streams=member_streams,
    )


@pytest.fixture(scope="module")
def members_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_policies(tmp_path_factory.mktemp("member-policies"), {"members.yaml": MEMBERS_YAML})


@pytest.fixture(scope="module")
def fleet(members_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Fleet:
    return synthesize_fleet(members_dir, tmp_path_factory.mktemp("cdk.out-members"))


def member_arn(account: str, region: str) -> Any:
    def arn(*, service: str, resource: str, resource_name: str, arn_format: str = "slash") -> str:
        separator = ":" if arn_format == "colon" else "/"
        return f"arn:aws:{service}:{'' if service == 'iam' else region}:{account}:{resource}{separator}{resource_name}"

    return arn


def statements_of(template: dict[str, Any], role_id: str) -> list[dict[str, Any]]:
    found = []
    for policy in resources(template, "AWS::IAM::Policy").values():
        if {"Ref": role_id} in policy["Properties"]["Roles"]:
            found += policy["Properties"]["PolicyDocument"]["Statement"]
    return found


def pairs(statements: list[dict[str, Any]]) -> set[tuple[str, str]]:
    return {(a, r) for s in statements for a in as_list(s["Action"]) for r in as_list(s["Resource"])}


def member_role(template: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    roles = resources(template, "AWS::IAM::Role").items()
    (found,) = [(k, v) for k, v in roles if v["Properties"].get("RoleName") == MEMBER_ROLE_NAME]
    return found


# --- stacks ---------------------------------------------------------------------------------------------------------


def test_one_member_stack_per_account_and_region_with_its_env(fleet: Fleet) -> None:
    # Given policies naming two accounts (one in two regions) and the hub's account in another region
    # Then the app holds the hub and exactly one stack per other (account, region), each deployed there
    expected = {Place(SALES, REGION), Place(SALES, "eu-west-1"), Place(DATA, REGION), Place(ACCOUNT, "eu-west-1")}
    assert set(fleet.hub.members) == expected
    for place, stack in fleet.hub.members.items():
        assert (stack.account, stack.region) == (place.account, place.region)
        assert stack.stack_name == member_stack_name(place)
        # and each depends on the hub, so `cdk deploy --all` deploys the hub's bus policy first
        assert fleet.hub in stack.dependencies
    assert set(fleet.templates) == {fleet.hub.stack_name} | {member_stack_name(p) for p in expected}


def test_the_split_follows_the_policies_defaults(members_dir: Path) -> None:
    # Given a policy without account or region / Then it is the hub's; with a region only, the hub's account there
    placement = place_policies(load_policies([members_dir]), HUB)
    assert [p.name for p in placement.local.streams.values()] == ["orders"]
    assert {place: sorted(p.name for p in ps.streams.values()) for place, ps in placement.members.items()} == {
        Place(ACCOUNT, "eu-west-1"): ["hub-eu"],
        Place(DATA, REGION): ["lake"],
        Place(SALES, "eu-west-1"): ["sales-eu"],
        Place(SALES, REGION): ["sales-orders"],
    }


# --- alarms ---------------------------------------------------------------------------------------------------------


def alarm_names(*templates: dict[str, Any]) -> set[str]:
    return {a["Properties"]["AlarmName"] for t in templates for a in resources(t, "AWS::CloudWatch::Alarm").values()}


def test_each_stack_holds_the_alarms_of_its_own_streams_only(fleet: Fleet) -> None:
    # Given each stream's declared alarms
    declared = {p.name: set(deployed_alarms(p, "kinesis-remediator-")) for p in fleet.policies.streams.values()}
    # Then a member stack holds exactly its streams' alarms
    assert alarm_names(*fleet.member_all(SALES)) == declared["sales-orders"]
    assert alarm_names(*fleet.member_all(SALES, "eu-west-1")) == declared["sales-eu"]
    assert alarm_names(*fleet.member_all(DATA)) == declared["lake"]
    assert alarm_names(*fleet.member_all(ACCOUNT, "eu-west-1")) == declared["hub-eu"]
    # and the hub holds its own stream's, and no member's (its own health alarms aside)
    stream_alarms = {
        n
        for template in [fleet.hub_template, *fleet.hub_streams]
        for n in alarm_names(template)
        if n.startswith("kinesis-remediator-")
    }
    assert stream_alarms == declared["orders"]


def test_a_members_alarms_live_in_the_stream_stack_the_hubs_hash_names(fleet: Fleet) -> None:
    for place, stack in fleet.hub.members.items():
        assert isinstance(stack, KinesisRemediatorMemberStack)
        name = member_stack_name(place)
        # Given a member's streams, and the bucket the hub's hash gives each (where the hub keeps its parameter)
        streams = [
            p for p in fleet.policies.streams.values() if Place(p.account or ACCOUNT, p.region or REGION) == place
        ]
        expected = {bucket_of(stream_identity(p)): set(deployed_alarms(p, "kinesis-remediator-")) for p in streams}
        # Then the member stack holds no alarm itself, and each bucket's nested stack (with the hub's bucket id)
        # holds exactly the alarms of its streams, and no policy parameter (the hub holds those)
        assert alarm_names(fleet.member(place.account, place.region)) == set()
        assert {b: alarm_names(t) for b, t in fleet.member_streams[name].items()} == expected
        assert all(resources(t, "AWS::SSM::Parameter") == {} for t in fleet.member_streams[name].values())
        assert {s.node.id for s in stack.stream_stacks.values()} == {bucket_id(b) for b in expected}
        hub_buckets = {b for b, s in fleet.hub.stream_stacks.items() if set(s.streams) & {p.key for p in streams}}
        assert hub_buckets == set(expected)
        # And the member's public `alarms` are keyed as the hub's, (stream key, symptom, qualifier)
        assert {k[0] for k in stack.alarms.alarms} == {p.key for p in streams}
        assert set(stack.alarms.specs) == set(stack.alarms.alarms)


def test_the_upgrade_step_leaves_members_without_alarms(members_dir: Path) -> None:
    # Given the first deploy of the upgrade (withoutStreamStacks): alarms leave the stack that held them
    app = App(context=cli_context())
    hub = build_app(
        app,
        [members_dir],
        hub_account=ACCOUNT,
        hub_region=REGION,
        member_external_id=EXTERNAL_ID,
        without_stream_stacks=True,
    )
    # Then no member holds a stream stack or an alarm; the forwarding rule stays
    for stack in hub.members.values():
        assert isinstance(stack, KinesisRemediatorMemberStack)
        assert stack.stream_stacks == {} and stack.alarms.alarms == {}
        assert stack.rule is not None


# --- fleet scale: a member with 100 streams -------------------------------------------------------------------------

BIG = "444444444444"


def member_policies(names: list[str]) -> str:
    return "version: 1\nstreams:\n  - name: own\n    actions: {reshard: {max_shards: 2}}\n" + "".join(
        f'  - name: {n}\n    account: "{BIG}"\n    actions: {{reshard: {{max_shards: 2}}}}\n' for n in names
    )


BIG_NAMES = [f"team{i % 4}-events-{i:03d}" for i in range(100)]
ADDED = "team9-added"


@pytest.fixture(scope="module")
def big(tmp_path_factory: pytest.TempPathFactory) -> Fleet:
    folder = write_policies(tmp_path_factory.mktemp("big-member"), {"big.yaml": member_policies(BIG_NAMES)})
    return synthesize_fleet(folder, tmp_path_factory.mktemp("cdk.out-big-member"))


@pytest.fixture(scope="module")
def big_grown(tmp_path_factory: pytest.TempPathFactory) -> Fleet:
    folder = write_policies(
        tmp_path_factory.mktemp("big-member-grown"), {"big.yaml": member_policies([*BIG_NAMES, ADDED])}
    )
    return synthesize_fleet(folder, tmp_path_factory.mktemp("cdk.out-big-member-grown"))


def big_member(fleet: Fleet) -> KinesisRemediatorMemberStack:
    stack = fleet.hub.members[Place(BIG, REGION)]
    assert isinstance(stack, KinesisRemediatorMemberStack)
    return stack


def test_a_member_with_100_streams_keeps_every_stack_within_450_resources(big: Fleet) -> None:
    # Given a member account with 100 streams (9 alarms each with the default detectors and no consumer: 900, more
    # than CloudFormation's 500 per stack)
    stack = big_member(big)
    nested = big.member_streams[stack.stack_name]
    assert len(stack.alarms.alarms) == 900
    # Then its member stack and every one of its stream stacks hold at most 450 resources
    member = big.member(BIG)
    assert len(member["Resources"]) <= MAX_RESOURCES_PER_STACK
    assert len(nested) > 1 and max(len(t["Resources"]) for t in nested.values()) <= MAX_RESOURCES_PER_STACK
    # And the counts the build checked are the ones synthesized (CDK's metadata resource, added at synth, aside)
    assert {b: s.resource_count for b, s in stack.stream_stacks.items()} == {
        b: len(t["Resources"]) for b, t in nested.items()
    }
    synthesized = [r for r in member["Resources"].values() if r["Type"] != "AWS::CDK::Metadata"]
    assert own_resource_count(stack) == len(synthesized)
    # And the stream stacks hold every alarm of the member's streams, in the bucket of each stream's identity
    for bucket, template in nested.items():
        for alarm in resources(template, "AWS::CloudWatch::Alarm").values():
            stream = alarm["Properties"]["AlarmName"].removeprefix("kinesis-remediator-").split("/", 1)[0]
            assert bucket_of(f"{BIG}/-/{stream}") == bucket
    assert sum(len(resources(t, "AWS::CloudWatch::Alarm")) for t in nested.values()) == len(stack.alarms.alarms)


def test_adding_a_member_stream_changes_only_its_own_stream_stack(big: Fleet, big_grown: Fleet) -> None:
    # Given the member with 100 streams, and the same with one stream more
    before, after = big_member(big), big_member(big_grown)
    old = big.member_streams[before.stack_name]
    new = big_grown.member_streams[after.stack_name]
    (added_key,) = {p.key for p in big_grown.policies.streams.values()} - {p.key for p in big.policies.streams.values()}
    bucket = bucket_of(added_key)
    # Then every other stream stack's template is unchanged: same resources, same logical ids
    assert {b: t for b, t in new.items() if b != bucket} == {b: t for b, t in old.items() if b != bucket}
    # And in the added stream's own stack, only its alarms were added: every existing alarm keeps its logical id
    grown = new[bucket]["Resources"]
    kept = old.get(bucket, {"Resources": {}})["Resources"]
    assert {k: grown[k] for k in kept} == kept
    added = {k: v for k, v in grown.items() if k not in kept}
    assert added
    assert all(v["Properties"]["AlarmName"].startswith(f"kinesis-remediator-{ADDED}/") for v in added.values())
    # And the member stack itself changes only in that nested stack's resource (its template's URL, or the resource
    # itself when the bucket was empty) and in the member role's permissions (the added stream's ARNs)
    changed = {
        k
        for k in set(big.member(BIG)["Resources"]) | set(big_grown.member(BIG)["Resources"])
        if big.member(BIG)["Resources"].get(k) != big_grown.member(BIG)["Resources"].get(k)
    }
    nested_resource = after.get_logical_id(after.stream_stacks[bucket].nested_stack_resource)  # type: ignore[arg-type]
    role_id, _ = member_role(big_grown.member(BIG))
    permissions_ids = {
        k
        for k, v in resources(big_grown.member(BIG), "AWS::IAM::Policy").items()
        if {"Ref": role_id} in v["Properties"]["Roles"]
    }
    assert nested_resource in changed
    assert changed <= {nested_resource} | permissions_ids


def test_a_member_stream_stack_past_the_limit_fails_synth_naming_it(tmp_path: Path) -> None:
    # Given 51 member streams whose identities hash to bucket 0 (9 alarms each with the default detectors: 459)
    names = [n for n in (f"s{i}" for i in range(20_000)) if bucket_of(f"{BIG}/-/{n}") == 0][:51]
    folder = write_policies(tmp_path, {"crowded.yaml": member_policies(names)})
    # When the app is built / Then it refuses, naming the member's nested stack, its count and what to do
    with pytest.raises(StackTooLarge) as raised:
        build_app(
            App(context=cli_context()),
            [folder],
            hub_account=ACCOUNT,
            hub_region=REGION,
            member_external_id=EXTERNAL_ID,
        )
    message = str(raised.value)
    assert message.startswith(
        f"stack {bucket_id(0)} (nested in {member_stack_name(Place(BIG, REGION))}) would hold 459 resources"
    )
    assert "need 459 alarms" in message and "Disable detectors" in message


# --- the member role ------------------------------------------------------------------------------------------------


def test_member_role_trusts_only_the_hubs_role_with_the_external_id(fleet: Fleet) -> None:
    # Given the member role of an account
    _, role = member_role(fleet.member(SALES, "eu-west-1"))
    (statement,) = role["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    # Then only the hub's account may assume it, only as the hub's remediator role, only with the external id
    assert statement["Effect"] == "Allow" and statement["Action"] == "sts:AssumeRole"
    assert statement["Principal"] == {"AWS": f"arn:aws:iam::{ACCOUNT}:root"}
    hub_role = f"arn:aws:iam::{ACCOUNT}:role/{hub_role_name('kinesis-remediator-', REGION)}"
    assert statement["Condition"] == {
        "StringEquals": {"sts:ExternalId": EXTERNAL_ID},
        "ArnEquals": {"aws:PrincipalArn": hub_role},
    }


def test_the_hubs_remediator_role_has_the_name_the_members_trust(fleet: Fleet) -> None:
    # Given the hub's function's role / Then its fixed name is the one in the members' aws:PrincipalArn condition
    roles = resources(fleet.hub_template, "AWS::IAM::Role")
    (function,) = resources(fleet.hub_template, "AWS::Lambda::Function").values()
    role_id = function["Properties"]["Role"]["Fn::GetAtt"][0]
    assert roles[role_id]["Properties"]["RoleName"] == hub_role_name("kinesis-remediator-", REGION)
    # and the function knows the external id it must pass to sts:AssumeRole
    assert function["Properties"]["Environment"]["Variables"]["MEMBER_EXTERNAL_ID"] == EXTERNAL_ID


def test_one_member_role_per_account(fleet: Fleet) -> None:
    # Given an account with member stacks in two regions / Then one of them (the first region) holds the role
    holders = {
        name
        for name, template in fleet.templates.items()
        for role in resources(template, "AWS::IAM::Role").values()
        if role["Properties"].get("RoleName") == MEMBER_ROLE_NAME
    }
    assert holders == {
        member_stack_name(Place(SALES, "eu-west-1")),
        member_stack_name(Place(DATA, REGION)),
        member_stack_name(Place(ACCOUNT, "eu-west-1")),
    }


@pytest.mark.parametrize(
    ("account", "holder_region", "streams"),
    [
        (SALES, "eu-west-1", {REGION: ["sales-orders"], "eu-west-1": ["sales-eu"]}),
        (DATA, REGION, {REGION: ["lake"]}),
        (ACCOUNT, "eu-west-1", {"eu-west-1": ["hub-eu"]}),
    ],
    ids=["two-regions", "dry-run-only", "hub-account-other-region"],
)
def test_member_role_is_allowed_exactly_what_the_registries_grant_for_its_accounts_streams(
    fleet: Fleet, account: str, holder_region: str, streams: dict[str, list[str]]
) -> None:
    # Given what the registries declare for that account's streams, with the account and each stream's region
    expected: set[tuple[str, str]] = set()
    for region, names in streams.items():
        policies = [p for p in fleet.policies.streams.values() if p.name in names]
        expected |= {
            (a, r) for p in permissions(policies, member_arn(account, region)) for a in p.actions for r in p.resources
        }
    # When the member role's policies are read
    template = fleet.member(account, holder_region)
    role_id, _ = member_role(template)
    granted = pairs(statements_of(template, role_id))
    # Then they grant exactly that: no other stream, account or region
    assert granted == expected
    named = {r for _, r in granted if r != "*"}
    assert all(f":{account}:" in r for r in named)
    others = {p.name for p in fleet.policies.streams.values()} - {n for ns in streams.values() for n in ns}
    assert not {r for r in named for other in others if f"stream/{other}" in r}


def test_a_dry_run_member_role_only_reads(fleet: Fleet) -> None:
    # Given an account whose only stream is in dry-run / Then its role may change nothing
    template = fleet.member(DATA)
    role_id, _ = member_role(template)
    actions = {a for a, _ in pairs(statements_of(template, role_id))}
    assert "kinesis:UpdateShardCount" not in actions
    assert "kinesis:DescribeStreamSummary" in actions


def test_the_hubs_role_holds_no_member_streams_permissions(fleet: Fleet) -> None:
    # Given the hub's remediator role / Then its Kinesis resources are the hub's own stream only
    synth = Synth(stack=fleet.hub, template=fleet.hub_template, outdir=fleet.outdir, policies=fleet.policies)
    kinesis = {r for a, r in permission_pairs(synth, role_statements(synth)) if a.startswith("kinesis:") and r != "*"}
    assert kinesis and all(r.startswith(f"arn:aws:kinesis:{REGION}:{ACCOUNT}:stream/orders") for r in kinesis)


# --- forwarding -----------------------------------------------------------------------------------------------------


def hub_rule(fleet: Fleet) -> dict[str, Any]:
    rule_id = fleet.hub.get_logical_id(fleet.hub.remediator.rule.node.default_child)  # type: ignore[arg-type]
    return dict(fleet.hub_template["Resources"][rule_id])


def test_member_rule_forwards_the_hubs_pattern_to_the_hubs_default_bus(fleet: Fleet) -> None:
    template = fleet.member(SALES)
    rule = only(template, "AWS::Events::Rule")["Properties"]
    # Then it matches what the hub's rule matches (no more: the hub would drop the rest; no less)
    assert rule["EventPattern"] == hub_rule(fleet)["Properties"]["EventPattern"]
    assert rule.get("EventBusName") in (None, "default")
    # and sends it to the hub's default bus with a role of the member's account
    (target,) = rule["Targets"]
    assert target["Arn"] == f"arn:aws:events:{REGION}:{ACCOUNT}:event-bus/default"
    role_id = target["RoleArn"]["Fn::GetAtt"][0]
    role = template["Resources"][role_id]["Properties"]
    (trust,) = role["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Principal"] == {"Service": "events.amazonaws.com"}
    assert trust["Condition"] == {"StringEquals": {"aws:SourceAccount": SALES}}
    # which may put events on that bus and nothing else
    assert pairs(statements_of(template, role_id)) == {("events:PutEvents", target["Arn"])}


def test_a_member_in_another_region_forwards_to_the_hubs_region(fleet: Fleet) -> None:
    (target,) = only(fleet.member(SALES, "eu-west-1"), "AWS::Events::Rule")["Properties"]["Targets"]
    assert target["Arn"] == f"arn:aws:events:{REGION}:{ACCOUNT}:event-bus/default"


def test_the_hubs_rule_takes_a_members_event(fleet: Fleet) -> None:
    # Given the hub's rule pattern / Then it does not pin the account or region
    pattern = hub_rule(fleet)["Properties"]["EventPattern"]
    assert "account" not in pattern and "region" not in pattern
    # and it matches our alarm's state change sent from a member account
    event = {
        "source": "aws.cloudwatch",
        "detail-type": "CloudWatch Alarm State Change",
        "account": SALES,
        "region": REGION,
        "detail": {"alarmName": "kinesis-remediator-sales-orders/write-throttling", "state": {"value": "ALARM"}},
    }
    assert EventPattern.load(json.dumps(pattern)).matches_event(event)


def test_the_hubs_bus_admits_exactly_the_member_accounts(fleet: Fleet) -> None:
    # Given the hub's event bus policy
    policy = only(fleet.hub_template, "AWS::Events::EventBusPolicy")["Properties"]
    statement = resolve(policy["Statement"], fleet.hub_template)
    # Then it allows PutEvents on the hub's default bus from the other accounts the policies name, and no one else
    # (the hub's own account, a member in another region, needs no statement)
    assert policy["EventBusName"] == "default"
    assert statement["Effect"] == "Allow" and statement["Action"] == "events:PutEvents"
    assert statement["Resource"] == f"arn:aws:events:{REGION}:{ACCOUNT}:event-bus/default"
    assert sorted(statement["Principal"]["AWS"]) == [f"arn:aws:iam::{SALES}:root", f"arn:aws:iam::{DATA}:root"]
    assert statement["Sid"] == policy["StatementId"]


# --- checks ---------------------------------------------------------------------------------------------------------


def test_every_stack_passes_cdk_nag(fleet: Fleet) -> None:
    # Given the app synthesized with AwsSolutionsChecks (the fixture's app.synth() raised on findings)
    report = json.loads((fleet.outdir / "validation-report.json").read_text(encoding="utf-8"))
    assert [p for p in report["pluginReports"] if p.get("conclusion") != "success"] == []


def test_every_member_template_passes_cfn_lint(fleet: Fleet) -> None:
    for name, template in fleet.templates.items():
        if name == fleet.hub.stack_name:
            continue  # tests/infrastructure/test_cfn_lint.py lints the hub
        region = name.split("-", 2)[2]
        for bucket, checked in [(None, template), *fleet.member_streams[name].items()]:
            matches = lint(json.dumps(checked), config=ManualArgs(regions=[region]))
            found = [f"{m.rule.id} {m.message}" for m in matches if m.rule.severity in ("error", "warning")]
            assert found == [], (name, bucket)


def test_the_hub_template_passes_cfn_lint(fleet: Fleet) -> None:
    (function_id,) = resources(fleet.hub_template, "AWS::Lambda::Function")
    matches = lint(json.dumps(fleet.hub_template), config=ManualArgs(regions=[REGION]))
    found = [
        f"{m.rule.id} {m.message}"
        for m in matches
        if m.rule.severity in ("error", "warning")
        # CDK's DependsOn of a function on its role (tests/infrastructure/test_cfn_lint.py says why)
        and not (m.rule.id == "W3005" and m.path[:3] == ["Resources", function_id, "DependsOn"])
        # cfn-lint's IAM action list predates cloudwatch:DescribeAlarmContributors (test_cfn_lint.py says more)
        and not (m.rule.id == "W3037" and "'describealarmcontributors' is not one of" in m.message)
    ]
    assert found == []


# --- settings -------------------------------------------------------------------------------------------------------


@pytest.fixture
def quiet_environ(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.delenv("CDK_DEFAULT_ACCOUNT", raising=False)
    monkeypatch.delenv("CDK_DEFAULT_REGION", raising=False)
    yield


@pytest.mark.parametrize(
    ("settings", "named"),
    [
        ({"account": ACCOUNT, "region": REGION}, EXTERNAL_ID_CONTEXT),
        ({"region": REGION, "external_id": EXTERNAL_ID}, HUB_ACCOUNT_CONTEXT),
        ({"account": "12345", "region": REGION, "external_id": EXTERNAL_ID}, HUB_ACCOUNT_CONTEXT),
        ({"account": ACCOUNT, "region": REGION, "external_id": "x"}, EXTERNAL_ID_CONTEXT),
    ],
    ids=["no-external-id", "no-hub-account", "bad-hub-account", "short-external-id"],
)
def test_members_without_their_settings_stop_synth_naming_the_context_value(
    members_dir: Path, quiet_environ: None, settings: dict[str, str], named: str
) -> None:
    # Given policies naming members, and settings missing one value / Then the app refuses, naming what to pass
    with pytest.raises(MemberSettingsError, match=named):
        hub_settings(load_policies([members_dir]), alarm_prefix="kinesis-remediator-", **settings)


def test_the_hub_place_defaults_to_the_cli_credentials(members_dir: Path) -> None:
    # Given no hubAccount/hubRegion context / Then the CDK CLI's CDK_DEFAULT_ACCOUNT and CDK_DEFAULT_REGION place it
    hub = hub_settings(
        load_policies([members_dir]),
        external_id=EXTERNAL_ID,
        alarm_prefix="p-",
        environ={"CDK_DEFAULT_ACCOUNT": "444455556666", "CDK_DEFAULT_REGION": "ap-southeast-2"},
    )
    assert hub is not None and hub.place == Place("444455556666", "ap-southeast-2")


def test_policies_without_members_leave_the_app_as_it_was(synth: Synth) -> None:
    # Given the two-stream test policies (no account, no region) / Then no member stack, no bus policy, no fixed role
    # name and no external id: the single-account app is unchanged
    assert synth.stack.members == {}
    assert synth.resources("AWS::Events::EventBusPolicy") == {}
    assert all("RoleName" not in r["Properties"] for r in synth.resources("AWS::IAM::Role").values())
    (function,) = synth.resources("AWS::Lambda::Function").values()
    assert "MEMBER_EXTERNAL_ID" not in function["Properties"]["Environment"]["Variables"]
    assert hub_settings(synth.policies, alarm_prefix="kinesis-remediator-") is None


def test_hub_role_names_fit_iam(region: str = "ap-southeast-2") -> None:
    # IAM role names: at most 64 characters of [\w+=,.@-]
    name = hub_role_name("a-very-long-alarm-prefix-that-someone-chose-", "us-gov-west-1")
    assert len(name) <= 64 and name.replace("-", "").isalnum()
    assert hub_role_name("a-", region) != hub_role_name("b-", region) != hub_role_name("a-", "eu-west-1")


def test_app_without_the_external_id_exits_naming_it(members_dir: Path, tmp_path: Path) -> None:
    # Given member policies and the hub's place, but no memberExternalId context
    # When app.py runs as the CDK CLI runs it
    result = run_app(
        {**cli_context(), "policyDir": str(members_dir), HUB_ACCOUNT_CONTEXT: ACCOUNT, "hubRegion": REGION}, tmp_path
    )
    # Then it exits 1, naming the context value to pass, without a traceback, and writes no template
    assert result.returncode == 1, result.stderr
    assert f"pass -c {EXTERNAL_ID_CONTEXT}=" in result.stderr
    assert "Traceback" not in result.stderr
    assert list(tmp_path.rglob("*.template.json")) == []


def test_the_hub_may_assume_exactly_the_member_roles_the_member_stacks_create(fleet: Fleet) -> None:
    # Given the member roles the member stacks create (one per account), and the roles the hub's role may assume
    created = {
        f"arn:aws:iam::{stack.account}:role/{MEMBER_ROLE_NAME}"
        for stack in fleet.hub.members.values()
        for role in resources(fleet.templates[stack.stack_name], "AWS::IAM::Role").values()
        if role["Properties"].get("RoleName") == MEMBER_ROLE_NAME
    }
    synth = Synth(stack=fleet.hub, template=fleet.hub_template, outdir=fleet.outdir, policies=fleet.policies)
    assumable = {r for a, r in permission_pairs(synth, role_statements(synth)) if a == "sts:AssumeRole"}
    # Then they are the same: each account the policies place a stream in (the hub's own, for another region)
    assert assumable == created
    assert {arn.split(":")[4] for arn in created} == {SALES, DATA, ACCOUNT}


@pytest.mark.parametrize(
    "placement",
    [f'account: "{ACCOUNT}"', f"region: {REGION}", f'account: "{ACCOUNT}"\n    region: {REGION}'],
    ids=["account", "region", "both"],
)
def test_a_policy_writing_out_the_hubs_own_place_stops_synth(tmp_path: Path, placement: str) -> None:
    # Given a stream whose policy writes out the hub's own account and/or region (the hub would never find it: it
    # looks its own streams up by name) next to a real member
    text = (
        f"version: 1\nstreams:\n  - name: own\n    {placement}\n    actions: {{reshard: {{max_shards: 4}}}}\n"
        f'  - name: far\n    account: "{SALES}"\n    actions: {{reshard: {{max_shards: 4}}}}\n'
    )
    folder = write_policies(tmp_path, {"own.yaml": text})
    # When the hub's settings are read / Then the app refuses, naming the file, the stream and what to do
    with pytest.raises(MemberSettingsError) as raised:
        hub_settings(
            load_policies([folder]), account=ACCOUNT, region=REGION, external_id=EXTERNAL_ID, alarm_prefix="p-"
        )
    assert f"{folder / 'own.yaml'}: stream 'own': account/region name the hub's own" in str(raised.value)
    assert "leave them out" in str(raised.value)
