"""cfn-lint on the synthesized templates: no errors, and no warnings beyond the one CDK always produces."""

from __future__ import annotations

import json

import pytest
from cfnlint.api import ManualArgs, Match, lint

from tests.infrastructure.support import Synth, function

pytestmark = pytest.mark.xdist_group("infrastructure")

REGIONS = ["us-east-1"]


def unavoidable(match: Match, synth: Synth) -> bool:
    """Findings produced by CDK itself that our code cannot change, each filtered by rule id and place."""
    function_id, _ = function(synth)
    # W3005: lambda.Function always adds DependsOn on its role (and the role's default policy) so that the
    # permissions exist before the function; the role is also referenced by GetAtt, hence "already enforced".
    if match.rule.id == "W3005" and match.path[:3] == ["Resources", function_id, "DependsOn"]:
        return True
    # W3037: cfn-lint's list of IAM actions predates cloudwatch:DescribeAlarmContributors (the API is in botocore's
    # CloudWatch model; the action, its name assumed from the API's as usual, is granted for fleet alarms:
    # stacks/constructs/remediator.py). Only that action is let through.
    return match.rule.id == "W3037" and "'describealarmcontributors' is not one of" in match.message


def describe(matches: list[Match]) -> str:
    return "\n".join(f"{m.rule.id} {'/'.join(map(str, m.path))}: {m.message}" for m in matches)


@pytest.mark.parametrize("fixture", ["synth", "grown_synth", "example_synth"])
def test_cfn_lint_finds_no_errors_or_warnings(request: pytest.FixtureRequest, fixture: str) -> None:
    # Given the synthesized templates: the core and its stream stacks (stacks/fleet.py)
    synth: Synth = request.getfixturevalue(fixture)
    assert len(synth.templates()) > 1
    # When cfn-lint checks each for us-east-1
    matches = [m for t in synth.templates() for m in lint(json.dumps(t), config=ManualArgs(regions=REGIONS))]
    # Then there is no error, and no warning other than the filtered CDK one
    errors = [m for m in matches if m.rule.severity == "error"]
    warnings = [m for m in matches if m.rule.severity == "warning" and not unavoidable(m, synth)]
    assert errors == [], describe(errors)
    assert warnings == [], describe(warnings)


def test_cfn_lint_harness_is_live(synth: Synth) -> None:
    # Given the template with the function's runtime broken
    template = json.loads(json.dumps(synth.template))
    function_id, _ = function(synth)
    template["Resources"][function_id]["Properties"]["Runtime"] = "python2.1"
    # When cfn-lint checks it
    matches = lint(json.dumps(template), config=ManualArgs(regions=REGIONS))
    # Then it reports an error at that property (so the clean results above are not vacuous)
    assert [m.path[:4] for m in matches if m.rule.severity == "error"] == [
        ["Resources", function_id, "Properties", "Runtime"]
    ]
