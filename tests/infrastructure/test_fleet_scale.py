"""A thousand streams in one deployment (stacks/fleet.py): every stack within 450 resources, every filter policy
within SNS's limits, the role's policies within IAM's, and adding or removing a stream changes only that stream's
resources, in the stack its hash names.

The fleet is synthesized twice per module (the second time with one stream removed and another added), with
cdk-nag, as `cdk synth` does; every test shares the two."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from remediator.core.iam import permissions
from remediator.policy_files import PolicySet, load_policies

from stacks.constructs.remediator import list_length
from stacks.fleet import (
    MAX_RESOURCES_PER_STACK,
    STREAM_BUCKETS,
    bucket_id,
    bucket_of,
    compact,
    policy_size,
)
from tests.infrastructure.support import (
    Synth,
    alarm_rule,
    arn,
    as_list,
    cli_context,
    function,
    resolve,
    role_statements,
    run_app,
    synthesize,
    write_policies,
)

pytestmark = pytest.mark.xdist_group("infrastructure")

STREAMS = 1000
TEAMS = ("orders", "payments", "clicks", "search", "ads", "billing", "fraud", "catalog")
# SNS subscription filter policies: at most 5 attribute names and 150 values in total (SNS developer guide, "Filter
# policy constraints"). IAM: a role's inline policies take at most 10,240 characters without white space (IAM and STS
# quotas). Lambda: environment variables at most 4 KB in total (Lambda quotas). EventBridge: an event pattern at most
# 2,048 characters (EventBridge quotas, "Event pattern size": UNCONFIRMED, the limit the brief names).
SNS_FILTER_VALUES, SNS_FILTER_ATTRIBUTES = 150, 5
ROLE_POLICY_CHARACTERS = 10_240
LAMBDA_ENVIRONMENT_BYTES = 4 * 1024
EVENT_PATTERN_CHARACTERS = 2_048


def stream_yaml(index: int) -> str:
    """One stream of the fleet: eight teams, each with its list address and the shared on-call one; every fifth stream
    in enforce with a Lambda consumer (so the role holds function ARNs in conditions, too)."""
    team = TEAMS[index % len(TEAMS)]
    name = f"{team}-events-{index:04d}"
    lines = [
        f"  - name: {name}",
        f"    notify: {{emails: [{team}@example.com, Oncall@Example.com]}}",
        "    actions: {reshard: {max_shards: 8}}",
    ]
    if index % 5 == 0:
        lines += ["    mode: enforce", f"    consumers: [{{function: {name}-processor}}]"]
    return "\n".join(lines)


def fleet_yaml(indices: list[int]) -> str:
    return "version: 1\nstreams:\n" + "\n".join(stream_yaml(i) for i in indices) + "\n"


# The stream removed, and the one added in its place, in the second synth.
REMOVED, ADDED = 7, STREAMS


@pytest.fixture(scope="module")
def fleet_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fleet")


@pytest.fixture(scope="module")
def fleet(fleet_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Synth:
    write_policies(fleet_dir, {"fleet.yaml": fleet_yaml(list(range(STREAMS)))})
    return synthesize([fleet_dir], tmp_path_factory.mktemp("cdk.out-fleet"))


@pytest.fixture(scope="module")
def changed_fleet(fleet: Synth, fleet_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Synth:
    """The same policy file, edited: as a user edits it between two deploys (its path is in each parameter's
    description)."""
    indices = [i for i in range(STREAMS) if i != REMOVED] + [ADDED]
    write_policies(fleet_dir, {"fleet.yaml": fleet_yaml(indices)})
    return synthesize([fleet_dir], tmp_path_factory.mktemp("cdk.out-changed-fleet"))


def name_of(index: int) -> str:
    return f"{TEAMS[index % len(TEAMS)]}-events-{index:04d}"


def stream_of(resource: dict[str, Any]) -> str:
    """The stream a stream stack's resource belongs to: an alarm's name or a parameter's name ends in it."""
    properties = resource["Properties"]
    if resource["Type"] == "AWS::SSM::Parameter":
        return str(properties["Name"]).rsplit("/", 1)[1]
    return str(properties["AlarmName"]).removeprefix("kinesis-remediator-").split("/", 1)[0]


# --- Limits -------------------------------------------------------------------------------------------------------


def test_no_stack_holds_more_than_450_resources(fleet: Synth) -> None:
    # Given 1,000 streams / When synthesized
    counts = {bucket: len(t["Resources"]) for bucket, t in fleet.stream_templates.items()}

    # Then the streams spread over the buckets, and every stack, the core included, holds at most 450 resources
    assert len(counts) == STREAM_BUCKETS
    assert max(counts.values()) <= MAX_RESOURCES_PER_STACK
    assert len(fleet.template["Resources"]) <= MAX_RESOURCES_PER_STACK
    # And the count each stream stack checked at build time is the one synthesized
    assert {b: s.resource_count for b, s in fleet.stack.stream_stacks.items()} == counts
    # And each stream stack holds exactly the alarms and policy parameters of its streams, nothing else
    for template in fleet.stream_templates.values():
        assert {r["Type"] for r in template["Resources"].values()} == {"AWS::CloudWatch::Alarm", "AWS::SSM::Parameter"}
    print(f"\nresources per stream stack: min {min(counts.values())}, max {max(counts.values())}")


def test_every_stream_lives_in_the_stack_its_hash_names(fleet: Synth) -> None:
    # Given each stream stack's resources, by the stream they belong to
    found: dict[str, set[int]] = {}
    for bucket, template in fleet.stream_templates.items():
        for resource in template["Resources"].values():
            found.setdefault(stream_of(resource), set()).add(bucket)

    # Then every stream's alarms and parameter are in one stack: the one its name hashes to
    assert found == {name: {bucket_of(name)} for name in fleet.policies.streams}
    # And that stack's logical id in the core names the bucket
    nested = {k for k, r in fleet.template["Resources"].items() if r["Type"] == "AWS::CloudFormation::Stack"}
    assert len(nested) == STREAM_BUCKETS
    assert all(any(k.startswith(bucket_id(b)) for k in nested) for b in range(STREAM_BUCKETS))


def test_every_filter_policy_stays_far_within_snss_limits(fleet: Synth) -> None:
    # Given every SNS subscription of the deployment
    subscriptions = [s["Properties"] for s in fleet.resources("AWS::SNS::Subscription").values()]
    filtered = [s for s in subscriptions if "FilterPolicy" in s]

    # Then one per distinct address (lower-cased), each with one attribute and one value: its own address
    addresses = sorted({f"{team}@example.com" for team in TEAMS} | {"oncall@example.com"})
    assert sorted(s["Endpoint"] for s in filtered) == addresses
    for subscription in filtered:
        policy = subscription["FilterPolicy"]
        values = sum(len(as_list(v)) for v in policy.values())
        assert len(policy) <= SNS_FILTER_ATTRIBUTES and values <= SNS_FILTER_VALUES
        assert policy == {"recipients": [subscription["Endpoint"]]}


def test_the_roles_policies_fit_iams_limit_and_still_cover_every_stream(fleet: Synth) -> None:
    # Given the role's statements, resolved in the longest region name
    statements = [resolve(s, fleet.template) for s in role_statements(fleet)]
    # (the other resources' ARNs, resolved to short placeholders, as 100 characters each)
    text = re.sub(r"\$\{[^}]+\}", "x" * 100, json.dumps(statements).replace("us-east-1", "ap-southeast-7"))
    longest = json.loads(text)

    # Then the role's inline policies (Permissions and the one CDK adds) fit IAM's 10,240 characters
    assert policy_size(longest) <= ROLE_POLICY_CHARACTERS
    # And every ARN the registries declare for the fleet is still granted, by its ARN or by a prefix pattern
    granted = [
        (action, resource)
        for statement in statements
        for action in as_list(statement["Action"])
        for resource in as_list(statement["Resource"])
    ]
    for declared in permissions(fleet.policies.streams.values(), arn):
        for action in declared.actions:
            for resource in declared.resources:
                assert any(
                    action == a and (r == resource or (r.endswith("*") and resource.startswith(r[:-1])))
                    for a, r in granted
                ), (action, resource)
    print(f"\nrole policies: {policy_size(longest)} characters of {ROLE_POLICY_CHARACTERS}")


def test_nothing_else_in_the_core_grows_with_the_fleet(fleet: Synth) -> None:
    # Given the core's Lambda and its EventBridge rule
    _, lambda_function = function(fleet)
    _, rule = alarm_rule(fleet)
    environment = resolve(lambda_function["Properties"]["Environment"]["Variables"], fleet.template)

    # Then the environment fits Lambda's 4 KB, and the rule's pattern EventBridge's limit, at any fleet size
    assert sum(len(k) + len(str(v)) for k, v in environment.items()) <= LAMBDA_ENVIRONMENT_BYTES
    assert len(json.dumps(rule["Properties"]["EventPattern"], separators=(",", ":"))) <= EVENT_PATTERN_CHARACTERS
    # And the dashboard ranks the fleet instead of a row per stream
    assert fleet.stack.dashboard.stream_rows is False
    assert fleet.stack.dashboard.widget_count <= 500


# --- Stability ----------------------------------------------------------------------------------------------------


def test_removing_and_adding_a_stream_changes_only_that_streams_resources(fleet: Synth, changed_fleet: Synth) -> None:
    # Given the fleet, and the fleet with one stream removed and another added
    removed, added = name_of(REMOVED), name_of(ADDED)
    touched = {bucket_of(removed), bucket_of(added)}

    # Then every other stream stack is byte for byte the same
    for bucket in set(fleet.stream_templates) - touched:
        assert changed_fleet.stream_templates[bucket] == fleet.stream_templates[bucket], bucket
    # And in the touched stacks, the removed stream's resources are gone, the added one's appear, and every other
    # resource keeps its logical id and its properties
    before = {k: v for b in touched for k, v in fleet.stream_templates[b]["Resources"].items()}
    after = {k: v for b in touched for k, v in changed_fleet.stream_templates[b]["Resources"].items()}
    gone, new = set(before) - set(after), set(after) - set(before)
    assert gone and {stream_of(before[k]) for k in gone} == {removed}
    assert new and {stream_of(after[k]) for k in new} == {added}
    assert {k: before[k] for k in set(before) & set(after)} == {k: after[k] for k in set(before) & set(after)}

    # And no alarm moved from one stack to another
    def placement(synth: Synth) -> dict[str, int]:
        return {k: b for b, t in synth.stream_templates.items() for k in t["Resources"]}

    kept = placement(fleet).keys() & placement(changed_fleet).keys()
    assert {k: placement(fleet)[k] for k in kept} == {k: placement(changed_fleet)[k] for k in kept}
    # And in the core, only the touched nested stacks (their templates' URLs) and what names every policy changed:
    # the function (the policy digest that refreshes its cache) and the role's policy (the streams' ARNs)
    core_before, core_after = fleet.template["Resources"], changed_fleet.template["Resources"]
    assert set(core_before) == set(core_after)
    changed = {k for k in core_before if core_before[k] != core_after[k]}
    expected = {
        k
        for k in core_before
        if any(k.startswith(bucket_id(b)) for b in touched) and core_before[k]["Type"] == "AWS::CloudFormation::Stack"
    }
    permissions_policy = fleet.stack.get_logical_id(fleet.stack.remediator.permissions.node.default_child)
    allowed = expected | {function(fleet)[0], permissions_policy}
    assert expected <= changed <= allowed


# --- The limit, when a bucket would pass it -------------------------------------------------------------------------


def test_a_stream_stack_past_the_limit_fails_synth_naming_the_bucket_its_count_and_what_to_do(tmp_path: Path) -> None:
    # Given 46 streams that hash to bucket 0 (10 resources each with the default detectors: 460)
    names = [n for n in (f"s{i}" for i in range(20_000)) if bucket_of(n) == 0][:46]
    text = "version: 1\nstreams:\n" + "".join(
        f"  - name: {n}\n    actions: {{reshard: {{max_shards: 2}}}}\n" for n in names
    )
    directory = write_policies(tmp_path / "policies", {"crowded.yaml": text})
    outdir = tmp_path / "cdk.out"

    # When app.py is run with it, as `cdk synth` runs it
    result = run_app({**cli_context(), "policyDir": str(directory)}, outdir)

    # Then it exits 1 with a message naming the stack, its count, the limit, and what to do; no traceback
    assert result.returncode == 1, result.stderr
    message = result.stderr.strip().splitlines()[-1]
    assert message.startswith(
        f"stack {bucket_id(0)} (nested in KinesisRemediator) would hold 460 resources, more than the 450"
    )
    assert "Disable detectors these streams do not need" in message
    assert "split the policies over two deployments" in message
    assert "Traceback" not in result.stderr
    # And no template was written
    assert list(outdir.rglob("*.template.json")) == []


# --- IAM compaction (stacks/fleet.compact) --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("values", "at_most", "expected"),
    [
        (["s/a", "s/b"], 5, ["s/a", "s/b"]),
        (["s/orders", "s/orders-eu", "s/pay-x", "s/payments", "s/click"], 3, ["s/click", "s/orders*", "s/pay*"]),
        (["s/orders", "s/orders-eu", "s/pay-x", "s/payments", "s/click"], 2, ["s/*"]),
        (["s/a/consumer/*", "s/b/consumer/*", "s/a"], 1, ["s/*"]),
        (["s/x-1", "s/x-2", "s/x-3"], 1, ["s/x-*"]),
    ],
)
def test_compact_covers_every_value_with_at_most_n_prefixes(
    values: list[str], at_most: int, expected: list[str]
) -> None:
    # Given ARN-like values / When compacted / Then the patterns are as narrow as the count allows, and cover all
    patterns = compact(values, at_most)
    assert patterns == expected
    assert len(patterns) <= at_most
    assert all(any(v == p or (p.endswith("*") and v.startswith(p[:-1])) for p in patterns) for v in values)


@given(
    values=st.lists(st.text(alphabet="ab-/*", min_size=1, max_size=8), min_size=1, max_size=40),
    at_most=st.integers(min_value=1, max_value=12),
)
@settings(max_examples=200, deadline=None)
def test_compact_always_covers_every_value_within_the_count(values: list[str], at_most: int) -> None:
    # Given any values and any count / When compacted
    patterns = compact(values, at_most)
    # Then there are at most that many patterns, and each value is one of them or starts with a pattern's prefix
    assert 1 <= len(patterns) <= at_most
    for value in values:
        assert any(value == p or (p.endswith("*") and value.startswith(p[:-1])) for p in patterns), value


def test_a_small_deployment_keeps_every_arn(tmp_path: Path) -> None:
    # Given two streams / When the role's registry statements are sized / Then nothing is compacted
    text = "version: 1\nstreams:\n  - name: a\n    actions: {reshard: {max_shards: 2}}\n"
    policies: PolicySet = load_policies([write_policies(tmp_path, {"a.yaml": text})])
    assert list_length(policies) is None


def test_the_upgrade_step_deploys_the_core_without_any_stream_resource(tmp_path: Path) -> None:
    # Given two streams, and app.py run with withoutStreamStacks=true (the upgrade's first deploy)
    text = "version: 1\nstreams:\n" + "".join(
        f"  - name: {n}\n    notify: {{emails: [a@example.com]}}\n    actions: {{reshard: {{max_shards: 2}}}}\n"
        for n in ("a", "b")
    )
    directory = write_policies(tmp_path / "policies", {"two.yaml": text})
    outdir = tmp_path / "cdk.out"
    result = run_app({**cli_context(), "policyDir": str(directory), "withoutStreamStacks": "true"}, outdir)

    # Then only the core stack is synthesized, with no stream's alarm, parameter or nested stack, so the deploy
    # removes them from a single-stack deployment before the next one creates them in the stream stacks
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in outdir.glob("*.template.json")) == ["KinesisRemediator.template.json"]
    resources = json.loads((outdir / "KinesisRemediator.template.json").read_text(encoding="utf-8"))["Resources"]
    types = {r["Type"] for r in resources.values()}
    assert "AWS::SSM::Parameter" in types  # the kill switch
    assert [r["Properties"]["Name"] for r in resources.values() if r["Type"] == "AWS::SSM::Parameter"] == [
        "/kinesis-remediator/kill-switch"
    ]
    assert "AWS::CloudFormation::Stack" not in types
    alarm_names = [r["Properties"]["AlarmName"] for r in resources.values() if r["Type"] == "AWS::CloudWatch::Alarm"]
    assert alarm_names and all(name.startswith("KinesisRemediator-health/") for name in alarm_names)
