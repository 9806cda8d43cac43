"""cdk-nag: the stack passes AwsSolutions, the checks are live, and every acknowledgement says why."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from aws_cdk import App
from aws_cdk import aws_sqs as sqs
from remediator.core.deployment import DEFAULT_ALARM_PREFIX, schedule_prefix

from stacks.app_builder import build_app
from stacks.constructs.remediator import nag_resource
from tests.infrastructure.support import Synth, as_list, assembly_metadata, cli_context, declared_permissions

pytestmark = pytest.mark.xdist_group("infrastructure")

ACKNOWLEDGED = "aws:cdk:acknowledged-rules"
IAM5_WILDCARD = "Annotation::AwsSolutions-IAM5[Resource::*]"


def validation_report(outdir: Path) -> dict[str, Any]:
    report: dict[str, Any] = json.loads((outdir / "validation-report.json").read_text(encoding="utf-8"))
    return report


def acknowledgements(synth: Synth) -> dict[tuple[str, str], str]:
    """(construct path, rule) -> reason, for every Validations.of(x).acknowledge in the cloud assembly."""
    found: dict[tuple[str, str], str] = {}
    for path, entries in assembly_metadata(synth).items():
        for entry in entries:
            if entry["type"] == ACKNOWLEDGED:
                for rule, reason in entry["data"].items():
                    found[(path, rule)] = reason
    return found


@pytest.mark.parametrize("fixture", ["synth", "grown_synth", "example_synth"])
def test_synth_passes_aws_solutions_checks(request: pytest.FixtureRequest, fixture: str) -> None:
    # Given an app with AwsSolutionsChecks as a validation plugin (the fixture's app.synth() raised on findings)
    synth: Synth = request.getfixturevalue(fixture)
    # Then the validation report of the synthesized assembly lists no failing plugin
    report = validation_report(synth.outdir)
    assert [p for p in report["pluginReports"] if p.get("conclusion") != "success"] == []


def test_checks_are_live_an_unencrypted_queue_fails_synth(policy_dir: Path, tmp_path: Path) -> None:
    # Given the same app plus a deliberately non-compliant resource
    app = App(outdir=str(tmp_path), context=cli_context())
    stack = build_app(app, [policy_dir])
    sqs.Queue(stack, "Unencrypted", encryption=sqs.QueueEncryption.UNENCRYPTED)
    # When it is synthesized
    with pytest.raises(RuntimeError) as raised:
        app.synth()
    # Then synth fails naming the SQS findings and the report
    message = str(raised.value)
    assert message.startswith("ValidationFailed:")
    assert "Acknowledge with 'AwsSolutions::AwsSolutions-SQS2'" in message
    # (CDK prints the report's path relative to the working directory when that is shorter.)
    assert f"{tmp_path.name}/validation-report.json" in message
    # And the report names AwsSolutions-SQS findings on that queue, and on nothing else
    (plugin,) = validation_report(tmp_path)["pluginReports"]
    assert plugin["pluginName"] == "AwsSolutions"
    assert plugin["conclusion"] == "failure"
    findings = {
        (violation["ruleName"], construct["constructPath"])
        for violation in plugin["violations"]
        for construct in violation["violatingConstructs"]
    }
    assert ("AwsSolutions-SQS2", "KinesisRemediator/Unencrypted/Resource") in findings  # no server-side encryption
    assert ("AwsSolutions-SQS4", "KinesisRemediator/Unencrypted/Resource") in findings  # no TLS enforcement
    assert {path for _, path in findings} == {"KinesisRemediator/Unencrypted/Resource"}
    assert all(rule.startswith("AwsSolutions-SQS") for rule, _ in findings)


FOLLOW_THROUGH_WILDCARDS = [
    "Annotation::AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:cloudwatch:<AWS::Region>:<AWS::AccountId>:"
    f"alarm:{DEFAULT_ALARM_PREFIX}*]",
    "Annotation::AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:scheduler:<AWS::Region>:<AWS::AccountId>:"
    f"schedule/default/{schedule_prefix(DEFAULT_ALARM_PREFIX)}*]",
    # the streams' policy parameters, by their path (the stream stacks hold them; a list would outgrow the role)
    "Annotation::AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:ssm:<AWS::Region>:<AWS::AccountId>:"
    "parameter/kinesis-remediator/policies/*]",
]


def test_acknowledgements_are_few_narrow_and_explained(synth: Synth) -> None:
    # Given the acknowledgements recorded in the cloud assembly
    found = acknowledgements(synth)
    # Then there are two for IAM5 on Resource::* only (not the whole rule), and one on the remediator's policy for
    # each ARN whose id is unknown at synth (a mapping's UUID, a consumer function's role), on that resource only ...
    suffix_wildcards = sorted(
        {
            f"Annotation::AwsSolutions-IAM5[Resource::{resource}]"
            for p in declared_permissions(synth.policies, nag_resource)
            for resource in p.resources
            if resource != "*" and "*" in resource
        }
    )
    assert suffix_wildcards, "the test policies grant no suffix wildcard: nothing below would check them"
    assert sorted(found) == sorted(
        [
            ("/KinesisRemediator/Remediator/Permissions", IAM5_WILDCARD),
            ("/KinesisRemediator/Remediator/Role", IAM5_WILDCARD),
            *(("/KinesisRemediator/Remediator/Permissions", rule) for rule in suffix_wildcards),
            # follow-through: our alarms and our schedules, each named under the deployment's prefix
            *(("/KinesisRemediator/Remediator/Permissions", rule) for rule in FOLLOW_THROUGH_WILDCARDS),
        ]
    )
    # ... and every one carries a reason
    for key, reason in found.items():
        assert isinstance(reason, str), key
        assert reason.strip() != "", key


def test_wildcard_acknowledgement_names_every_wildcard_action_and_why(synth: Synth) -> None:
    # Given the acknowledgement on the remediator's own policy
    reason = acknowledgements(synth)[("/KinesisRemediator/Remediator/Permissions", IAM5_WILDCARD)]
    # And the actions that policy actually grants on "*"
    policy = synth.template["Resources"][synth.logical_id("Remediator/Permissions")]
    wildcard_actions = {
        action
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
        if statement["Resource"] == "*"
        for action in as_list(statement["Action"])
    }
    assert wildcard_actions
    # Then the reason names each of them, and carries each account-wide grant's justification
    for action in wildcard_actions:
        assert action in reason
    account_wide = [p for p in declared_permissions(synth.policies) if p.account_wide]
    assert account_wide
    for permission in account_wide:
        assert permission.why in reason


def test_xray_acknowledgement_names_the_xray_actions(synth: Synth) -> None:
    # Given the acknowledgement on the role (whose default policy CDK fills for active tracing)
    reason = acknowledgements(synth)[("/KinesisRemediator/Remediator/Role", IAM5_WILDCARD)]
    # And the actions that default policy grants on "*"
    default_policy = synth.template["Resources"][synth.logical_id("Remediator/Role/DefaultPolicy")]
    wildcard_actions = {
        action
        for statement in default_policy["Properties"]["PolicyDocument"]["Statement"]
        if statement["Resource"] == "*"
        for action in as_list(statement["Action"])
    }
    # Then those are X-Ray's only, and the reason names both
    assert wildcard_actions == {"xray:PutTraceSegments", "xray:PutTelemetryRecords"}
    assert "PutTraceSegments" in reason
    assert "PutTelemetryRecords" in reason
