"""Synthesizing the app as the CDK CLI would, and reading the result: intrinsics resolved to comparable strings,
IAM flattened to (action, resource) pairs, cloud-assembly metadata and asset directories."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# jsii prints a banner about the Node version on every start; the Makefile silences it the same way.
os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")

from aws_cdk import App
from aws_cdk import aws_lambda as lambda_
from aws_cdk.assertions import Template
from remediator.policy_files import PolicySet, load_policies

from stacks.app_builder import PROJECT_ROOT, build_app
from stacks.remediator_stack import KinesisRemediatorStack

EXAMPLE_POLICY = PROJECT_ROOT / "policies" / "example.yaml"
# What the CDK CLI adds to cdk.json's context when it runs the app.
CLI_CONTEXT = {"aws:cdk:enable-asset-metadata": True, "aws:cdk:enable-path-metadata": True}


def cli_context() -> dict[str, Any]:
    context: dict[str, Any] = json.loads((PROJECT_ROOT / "cdk.json").read_text(encoding="utf-8"))["context"]
    return {**context, **CLI_CONTEXT}


@dataclass(frozen=True)
class Synth:
    """One synthesized app: the stack, its template as a dict, the cloud assembly directory and the policies."""

    stack: KinesisRemediatorStack
    template: dict[str, Any]
    outdir: Path
    policies: PolicySet

    def resources(self, resource_type: str) -> dict[str, dict[str, Any]]:
        return {
            logical_id: resource
            for logical_id, resource in self.template["Resources"].items()
            if resource["Type"] == resource_type
        }

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


def write_policies(directory: Path, files: Mapping[str, str]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (directory / name).write_text(text, encoding="utf-8")
    return directory


def synthesize(policy_paths: list[Path], outdir: Path) -> Synth:
    app = App(outdir=str(outdir), context=cli_context())
    stack = build_app(app, policy_paths)
    # Synthesizing runs the cdk-nag plugin: it raises on any unacknowledged finding.
    app.synth()
    return Synth(
        stack=stack,
        template=dict(Template.from_stack(stack).to_json()),
        outdir=outdir,
        policies=load_policies(policy_paths),
    )


PARTITION = "aws"
REGION = "us-east-1"
ACCOUNT = "123456789012"
PSEUDO = {
    "AWS::Partition": PARTITION,
    "AWS::Region": REGION,
    "AWS::AccountId": ACCOUNT,
    "AWS::URLSuffix": "amazonaws.com",
}


def stream_arn(name: str) -> str:
    return f"arn:{PARTITION}:kinesis:{REGION}:{ACCOUNT}:stream/{name}"


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


def permission_pairs(synth: Synth, statements: list[dict[str, Any]] | None = None) -> set[tuple[str, str]]:
    """The role's Allow statements flattened to (action, resolved resource) pairs."""
    pairs: set[tuple[str, str]] = set()
    for statement in role_statements(synth) if statements is None else statements:
        assert statement["Effect"] == "Allow", statement
        assert "NotAction" not in statement and "NotResource" not in statement, statement
        assert "Condition" not in statement, statement
        for action in as_list(statement["Action"]):
            for resource in as_list(resolve(statement["Resource"], synth.template)):
                pairs.add((action, resource))
    return pairs


def resources_for(pairs: set[tuple[str, str]], action: str) -> set[str]:
    return {resource for granted, resource in pairs if granted == action}


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
