"""Synthesizing the app as the CDK CLI would, and reading the result: intrinsics resolved to comparable strings,
IAM flattened to (action, resource) pairs, cloud-assembly metadata and asset directories."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# jsii prints a banner about the Node version on every start; the Makefile silences it the same way.
os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")

from aws_cdk import App, CfnElement, Stack
from aws_cdk import aws_lambda as lambda_
from aws_cdk.assertions import Template
from remediator.core.grants import ArnFormatter
from remediator.core.iam import Permission, permissions
from remediator.core.metrics import Metric, MetricMath
from remediator.core.policy import StreamPolicy
from remediator.core.symptoms.base import AlarmSpec
from remediator.policy_files import PolicySet, load_policies

from stacks.app_builder import PROJECT_ROOT, build_app
from stacks.remediator_stack import KinesisRemediatorStack

# The README's commented example: documentation the tests keep true (it synthesizes, passes cdk-nag and cfn-lint).
# Never the user's policies/ folder, which the suite does not read (tests/unit/test_own_policies.py).
EXAMPLE_POLICY = PROJECT_ROOT / "examples" / "policies" / "example.yaml"
# What the CDK CLI adds to cdk.json's context when it runs the app.
CLI_CONTEXT = {"aws:cdk:enable-asset-metadata": True, "aws:cdk:enable-path-metadata": True}


def cli_context() -> dict[str, Any]:
    context: dict[str, Any] = json.loads((PROJECT_ROOT / "cdk.json").read_text(encoding="utf-8"))["context"]
    return {**context, **CLI_CONTEXT}


@dataclass(frozen=True)
class Synth:
    """One synthesized app: the core stack, its template as a dict, the stream stacks' templates (nested stacks, by
    bucket: stacks/fleet.py), the cloud assembly directory and the policies."""

    stack: KinesisRemediatorStack
    template: dict[str, Any]
    outdir: Path
    policies: PolicySet
    stream_templates: dict[int, dict[str, Any]] = field(default_factory=dict)

    def templates(self) -> list[dict[str, Any]]:
        """The core template, then the stream stacks' by bucket."""
        return [self.template, *(self.stream_templates[b] for b in sorted(self.stream_templates))]

    def template_of(self, stack: Stack) -> dict[str, Any]:
        if stack is self.stack or stack.node.path == self.stack.node.path:
            return self.template
        bucket = next(b for b, s in self.stack.stream_stacks.items() if s.node.path == stack.node.path)
        return self.stream_templates[bucket]

    def resources(self, resource_type: str) -> dict[str, dict[str, Any]]:
        """Every resource of that type in the core and the stream stacks, by logical id (ids of the stream stacks
        are built from stream names, and are unique across them)."""
        found: dict[str, dict[str, Any]] = {}
        for template in self.templates():
            for logical_id, resource in template["Resources"].items():
                if resource["Type"] == resource_type:
                    assert logical_id not in found, f"{logical_id} in two stacks"
                    found[logical_id] = resource
        return found

    def all_resources(self) -> dict[str, Any]:
        """A template-like dict holding every stack's resources (for `resolve` of a stream stack's values)."""
        return {"Resources": {k: v for t in self.templates() for k, v in t["Resources"].items()}}

    def only(self, resource_type: str) -> tuple[str, dict[str, Any]]:
        found = self.resources(resource_type)
        assert len(found) == 1, f"expected one {resource_type}, found {sorted(found)}"
        return next(iter(found.items()))

    def logical_id(self, construct_path: str) -> str:
        """The logical id of the resource at `KinesisRemediator/<construct_path>/Resource`."""
        wanted = f"{self.stack.stack_name}/{construct_path}/Resource"
        (found,) = [
            logical_id
            for logical_id, resource in self.template["Resources"].items()
            if resource.get("Metadata", {}).get("aws:cdk:path") == wanted
        ]
        return found


def alarm_rule(synth: Synth) -> tuple[str, dict[str, Any]]:
    """The EventBridge rule that feeds the remediator our alarms' state changes."""
    rule_id = synth.logical_id("Remediator/AlarmStateChanges")
    return rule_id, synth.template["Resources"][rule_id]


def census_rule(synth: Synth) -> tuple[str, dict[str, Any]]:
    """The scheduled rule of the shard census."""
    rule_id = synth.logical_id("Remediator/ShardCensus")
    return rule_id, synth.template["Resources"][rule_id]


def run_app(context: dict[str, object], outdir: Path, *python_args: str) -> subprocess.CompletedProcess[str]:
    """Run app.py the way the CDK CLI does: context in CDK_CONTEXT_JSON, output directory in CDK_OUTDIR.
    `python_args` replace the interpreter's arguments (by default, the script app.py)."""
    environment = {
        **os.environ,
        "CDK_CONTEXT_JSON": json.dumps(context),
        "CDK_OUTDIR": str(outdir),
        "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20",
    }
    return subprocess.run(
        [sys.executable, *(python_args or ("app.py",))],
        cwd=PROJECT_ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def write_policies(directory: Path, files: Mapping[str, str]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (directory / name).write_text(text, encoding="utf-8")
    return directory


def read_template(outdir: Path, stack: Stack) -> dict[str, Any]:
    """A stack's template as synthesized into `outdir` (nested stacks included)."""
    return dict(json.loads((outdir / stack.template_file).read_text(encoding="utf-8")))


def synthesize(policy_paths: list[Path], outdir: Path) -> Synth:
    app = App(outdir=str(outdir), context=cli_context())
    # The hub's place and external id matter only to policies naming other accounts or regions (member stacks).
    stack = build_app(app, policy_paths, hub_account=ACCOUNT, hub_region=REGION, member_external_id=EXTERNAL_ID)
    # Synthesizing runs the cdk-nag plugin: it raises on any unacknowledged finding.
    app.synth()
    return Synth(
        stack=stack,
        template=dict(Template.from_stack(stack).to_json()),
        outdir=outdir,
        policies=load_policies(policy_paths),
        stream_templates={bucket: read_template(outdir, s) for bucket, s in stack.stream_stacks.items()},
    )


PARTITION = "aws"
REGION = "us-east-1"
ACCOUNT = "123456789012"
EXTERNAL_ID = "test-external-id"
PSEUDO = {
    "AWS::Partition": PARTITION,
    "AWS::Region": REGION,
    "AWS::AccountId": ACCOUNT,
    "AWS::URLSuffix": "amazonaws.com",
}


def stream_arn(name: str) -> str:
    return f"arn:{PARTITION}:kinesis:{REGION}:{ACCOUNT}:stream/{name}"


def arn(*, service: str, resource: str, resource_name: str, arn_format: str = "slash") -> str:
    """An ArnFormatter (remediator.core.grants) writing ARNs as `resolve` renders the stack's format_arn (IAM is
    global: the stack leaves its ARNs without a region)."""
    separator = ":" if arn_format == "colon" else "/"
    region = "" if service == "iam" else REGION
    return f"arn:{PARTITION}:{service}:{region}:{ACCOUNT}:{resource}{separator}{resource_name}"


def declared_permissions(
    policies: PolicySet | Iterable[StreamPolicy], arn_formatter: ArnFormatter | None = None
) -> list[Permission]:
    """What the registries declare for these policies (remediator.core.iam.permissions), with resolved ARNs (or
    as `arn_formatter` writes them)."""
    return permissions(policies.streams.values() if isinstance(policies, PolicySet) else policies, arn_formatter or arn)


def declared_pairs(policies: PolicySet | Iterable[StreamPolicy]) -> set[tuple[str, str]]:
    """The declared permissions flattened to (action, resource) pairs, as `permission_pairs` flattens the role."""
    return {(a, r) for p in declared_permissions(policies) for a in p.actions for r in p.resources}


def parameter_arn(name: str) -> str:
    return f"arn:{PARTITION}:ssm:{REGION}:{ACCOUNT}:parameter{name}"


def get_att(logical_id: str, attribute: str = "Arn") -> str:
    """How `resolve` renders {"Fn::GetAtt": [logical_id, attribute]}."""
    return f"${{{logical_id}.{attribute}}}"


def ref(logical_id: str) -> str:
    """How `resolve` renders {"Ref": logical_id} for resources whose Ref is not a known literal."""
    return f"${{Ref:{logical_id}}}"


def resolve(value: Any, template: dict[str, Any]) -> Any:
    """Resolve the intrinsics CDK emits into plain strings, as CloudFormation would in account ACCOUNT.

    Ref of an SSM parameter becomes its Name (what CloudFormation returns); other Refs and GetAtts become
    stable placeholders, so two templates can be compared by what they name rather than by logical ids.
    """
    if isinstance(value, list):
        return [resolve(item, template) for item in value]
    if not isinstance(value, dict):
        return value
    if set(value) == {"Ref"}:
        target = value["Ref"]
        if target in PSEUDO:
            return PSEUDO[target]
        resource = template["Resources"][target]
        if resource["Type"] == "AWS::SSM::Parameter":
            return resource["Properties"]["Name"]
        return ref(target)
    if set(value) == {"Fn::GetAtt"}:
        logical_id, attribute = value["Fn::GetAtt"]
        return get_att(logical_id, attribute)
    if set(value) == {"Fn::Join"}:
        separator, parts = value["Fn::Join"]
        return separator.join(str(resolve(part, template)) for part in parts)
    if set(value) == {"Fn::Sub"} and isinstance(value["Fn::Sub"], str):
        return re.sub(r"\$\{([^}]+)\}", lambda m: PSEUDO[m.group(1)], value["Fn::Sub"])
    return {key: resolve(item, template) for key, item in value.items()}


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def function(synth: Synth) -> tuple[str, dict[str, Any]]:
    return synth.only("AWS::Lambda::Function")


def role_logical_id(synth: Synth) -> str:
    _, fn = function(synth)
    logical_id, attribute = fn["Properties"]["Role"]["Fn::GetAtt"]
    assert attribute == "Arn"
    return str(logical_id)


def role_statements(synth: Synth) -> list[dict[str, Any]]:
    """Every IAM statement that grants the remediator's role anything: inline policies on the role,
    and AWS::IAM::Policy / AWS::IAM::ManagedPolicy resources attached to it."""
    role_id = role_logical_id(synth)
    role = synth.template["Resources"][role_id]
    statements: list[dict[str, Any]] = []
    for inline in role["Properties"].get("Policies", []):
        statements.extend(inline["PolicyDocument"]["Statement"])
    for policy_type in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"):
        for resource in synth.resources(policy_type).values():
            if {"Ref": role_id} in resource["Properties"].get("Roles", []):
                statements.extend(resource["Properties"]["PolicyDocument"]["Statement"])
    return statements


# The only condition a registry grant may carry: an event-source mapping's function (remediator.core.grants).
CONDITION_KEYS = {("StringEquals", "lambda:FunctionArn"), ("StringEquals", "iam:PassedToService")}


def permission_pairs(synth: Synth, statements: list[dict[str, Any]] | None = None) -> set[tuple[str, str]]:
    """The role's Allow statements flattened to (action, resolved resource) pairs; their conditions are read by
    `permission_conditions`."""
    pairs: set[tuple[str, str]] = set()
    for statement in role_statements(synth) if statements is None else statements:
        assert statement["Effect"] == "Allow", statement
        assert "NotAction" not in statement and "NotResource" not in statement, statement
        conditions = statement.get("Condition", {})
        assert {(op, key) for op, keys in conditions.items() for key in keys} <= CONDITION_KEYS, statement
        for action in as_list(statement["Action"]):
            for resource in as_list(resolve(statement["Resource"], synth.template)):
                pairs.add((action, resource))
    return pairs


def permission_conditions(synth: Synth) -> dict[tuple[str, str], dict[str, dict[str, set[str]]]]:
    """(action, resource) -> the conditions of the role's statement that grants it, values resolved, for the
    statements that carry any."""
    found: dict[tuple[str, str], dict[str, dict[str, set[str]]]] = {}
    for statement in role_statements(synth):
        if "Condition" not in statement:
            continue
        conditions = {
            operator: {key: set(as_list(resolve(values, synth.template))) for key, values in keys.items()}
            for operator, keys in statement["Condition"].items()
        }
        for action in as_list(statement["Action"]):
            for resource in as_list(resolve(statement["Resource"], synth.template)):
                assert (action, resource) not in found, (action, resource)
                found[(action, resource)] = conditions
    return found


def resources_for(pairs: set[tuple[str, str]], action: str) -> set[str]:
    return {resource for granted, resource in pairs if granted == action}


# --- Alarms -----------------------------------------------------------------------------------------------------


def _alarms_of(synth: Synth, constructs: Iterable[Any]) -> dict[str, dict[str, Any]]:
    found = {}
    for alarm in constructs:
        # The streams' alarms are CfnAlarm (L1); the remediator's own are Alarm (L2).
        element = alarm if isinstance(alarm, CfnElement) else alarm.node.default_child
        stack = Stack.of(element)
        properties = synth.template_of(stack)["Resources"][stack.get_logical_id(element)]["Properties"]
        found[properties["AlarmName"]] = properties
    return found


def alarms_by_name(synth: Synth) -> dict[str, dict[str, Any]]:
    """The streams' alarms, those the symptoms declare (the remediator's own alarms: health_alarms)."""
    return _alarms_of(synth, synth.stack.alarms.alarms.values())


def health_alarms(synth: Synth) -> dict[str, dict[str, Any]]:
    """The remediator's own alarms (stacks/constructs/self_monitoring.py), by name."""
    return _alarms_of(synth, synth.stack.self_monitoring.alarms.values())


def dimension_list(metric: Metric) -> list[dict[str, str]]:
    return [{"Name": name, "Value": value} for name, value in sorted(metric.dimension_map.items())]


def alarm_metric_properties(properties: dict[str, Any]) -> dict[str, Any]:
    """What an AWS::CloudWatch::Alarm watches: its single metric, or its metric-math queries (dimensions sorted,
    the expression's generated query id dropped), in one comparable shape."""
    if "Metrics" not in properties:
        return {
            "Namespace": properties.get("Namespace"),
            "MetricName": properties.get("MetricName"),
            "Statistic": properties.get("Statistic"),
            "Dimensions": sorted(properties.get("Dimensions", []), key=lambda d: d["Name"]),
            "Period": properties.get("Period"),
        }
    expressions, inputs = [], {}
    for query in properties["Metrics"]:
        if "Expression" in query:
            expressions.append({k: v for k, v in query.items() if k != "Id"})
        else:
            stat = query["MetricStat"]
            inputs[query["Id"]] = {
                "Namespace": stat["Metric"]["Namespace"],
                "MetricName": stat["Metric"]["MetricName"],
                "Statistic": stat["Stat"],
                "Dimensions": sorted(stat["Metric"].get("Dimensions", []), key=lambda d: d["Name"]),
                "Period": stat["Period"],
                "ReturnData": query.get("ReturnData"),
            }
    return {"Expressions": expressions, "Inputs": inputs}


def expected_metric_properties(source: Metric | MetricMath) -> dict[str, Any]:
    """`alarm_metric_properties` of the alarm a symptom's AlarmSpec declares, built from the declaration."""
    if isinstance(source, Metric):
        return {
            "Namespace": source.namespace,
            "MetricName": source.name,
            "Statistic": source.statistic,
            "Dimensions": dimension_list(source),
            "Period": source.period_seconds,
        }
    expression: dict[str, Any] = {"Expression": source.expression, "ReturnData": True}
    if source.label:
        expression["Label"] = source.label
    return {
        "Expressions": [expression],
        "Inputs": {
            key: {
                "Namespace": metric.namespace,
                "MetricName": metric.name,
                "Statistic": metric.statistic,
                "Dimensions": dimension_list(metric),
                # As declared. (CDK's MathExpression overrides its inputs' periods with its own, so an input declared
                # with another period than its expression's is not built as declared, and this fails.)
                "Period": metric.period_seconds,
                "ReturnData": False,
            }
            for key, metric in source.inputs.items()
        },
    }


ALARM_SETTINGS = (
    "Threshold",
    "ComparisonOperator",
    "EvaluationPeriods",
    "DatapointsToAlarm",
    "TreatMissingData",
    "AlarmDescription",
)


def alarm_as_built(properties: dict[str, Any]) -> dict[str, Any]:
    """A synthesized alarm's metric and settings, comparable with `alarm_as_declared`."""
    return {"metric": alarm_metric_properties(properties), **{k: properties.get(k) for k in ALARM_SETTINGS}}


def alarm_as_declared(spec: AlarmSpec) -> dict[str, Any]:
    """What the stack must build from a symptom's AlarmSpec."""
    return {
        "metric": expected_metric_properties(spec.metric),
        "Threshold": spec.threshold,
        "ComparisonOperator": spec.comparison.value,
        "EvaluationPeriods": spec.evaluation_periods,
        "DatapointsToAlarm": spec.datapoints_to_alarm,
        "TreatMissingData": spec.missing_data.value,
        "AlarmDescription": spec.description,
    }


def newest_python_runtime() -> lambda_.Runtime:
    """The newest PYTHON_3_x that this aws-cdk-lib offers, found by introspection."""
    offered = {}
    for attribute in dir(lambda_.Runtime):
        match = re.fullmatch(r"PYTHON_3_(\d+)", attribute)
        if match:
            offered[int(match.group(1))] = getattr(lambda_.Runtime, attribute)
    return offered[max(offered)]


def assembly_metadata(synth: Synth) -> dict[str, list[dict[str, Any]]]:
    """The stack artifact's construct metadata from the cloud assembly (manifest and its metadata file)."""
    manifest = json.loads((synth.outdir / "manifest.json").read_text(encoding="utf-8"))
    artifact = manifest["artifacts"][synth.stack.artifact_id]
    metadata: dict[str, list[dict[str, Any]]] = {}
    sources = [artifact.get("metadata", {})]
    if "additionalMetadataFile" in artifact:
        sources.append(json.loads((synth.outdir / artifact["additionalMetadataFile"]).read_text(encoding="utf-8")))
    for source in sources:
        for path, entries in source.items():
            metadata.setdefault(path, []).extend(entries)
    return metadata


def asset_dir(synth: Synth, logical_id: str) -> Path:
    resource = synth.template["Resources"][logical_id]
    path = synth.outdir / resource["Metadata"]["aws:asset:path"]
    assert path.is_dir(), path
    return path


# --- Follow-through (remediator.core.follow_through): the stack's own grants for it -------------------------------


def scheduler_role_id(synth: Synth) -> str:
    return synth.logical_id("Remediator/FollowUpSchedulerRole")


def follow_through_pairs(synth: Synth) -> set[tuple[str, str]]:
    """The (action, resource) pairs the remediator's role holds for follow-through: our alarms' state, our schedules
    in the default group under the deployment's prefix, and passing the one Scheduler role."""
    from remediator.core.deployment import DEFAULT_ALARM_PREFIX, schedule_prefix

    alarms = arn(service="cloudwatch", resource="alarm", resource_name=f"{DEFAULT_ALARM_PREFIX}*", arn_format="colon")
    schedules = arn(
        service="scheduler", resource="schedule", resource_name=f"default/{schedule_prefix(DEFAULT_ALARM_PREFIX)}*"
    )
    return {
        ("cloudwatch:DescribeAlarms", alarms),
        ("cloudwatch:DescribeAlarmContributors", alarms),  # a fleet alarm's contributor (H11-FLEET)
        ("scheduler:CreateSchedule", schedules),
        ("scheduler:DeleteSchedule", schedules),
        ("iam:PassRole", get_att(scheduler_role_id(synth))),
    }


PASS_ROLE_CONDITION = {"StringEquals": {"iam:PassedToService": {"scheduler.amazonaws.com"}}}
