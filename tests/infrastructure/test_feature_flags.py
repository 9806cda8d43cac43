"""CDK feature flags are chosen, not defaulted: cdk.json sets every flag the pinned aws-cdk-lib recommends, at
its recommended value save the documented exceptions, and the real CDK CLI's synth no longer warns about
unconfigured flags. `make synth` says cdk-nag ran only after synth succeeded."""

from __future__ import annotations

import json
import os
import re
import subprocess
import tarfile
from pathlib import Path
from typing import Any

import aws_cdk
import pytest

from tests.infrastructure.support import PROJECT_ROOT

pytestmark = pytest.mark.xdist_group("infrastructure")

# The flags set against the recommendation, each with its reason in the README's design notes.
DELIBERATE = {
    # CDKMetadata reports the library versions only, not which construct properties the stack sets.
    "@aws-cdk/core:enableAdditionalMetadataCollection": False,
}


def recommended_flags() -> dict[str, Any]:
    """aws-cdk-lib's own recommended-feature-flags.json, from the installed package's jsii bundle."""
    (bundle,) = (Path(aws_cdk.__file__).parent / "_jsii").glob("aws-cdk-lib@*.jsii.tgz")
    with tarfile.open(bundle) as archive:
        member = archive.extractfile("package/recommended-feature-flags.json")
        assert member is not None
        flags: dict[str, Any] = json.load(member)
    return flags


def cdk_json_context() -> dict[str, Any]:
    context: dict[str, Any] = json.loads((PROJECT_ROOT / "cdk.json").read_text(encoding="utf-8"))["context"]
    return context


def test_every_recommended_flag_is_set_at_its_recommended_value_or_deliberately() -> None:
    # Given the flags the installed aws-cdk-lib recommends
    recommended = recommended_flags()
    assert len(recommended) > 50, "the recommended flags were not found: nothing below would check them"
    # When cdk.json's context is read
    context = cdk_json_context()
    # Then it sets each of them, at the recommended value unless it is a documented exception
    assert sorted(set(recommended) - set(context)) == []
    assert {flag: context[flag] for flag in recommended if context[flag] != recommended[flag]} == DELIBERATE
    # And it sets no flag key the library does not know (a misspelt key is silently ignored by CDK)
    assert sorted(key for key in context if key.startswith("@aws-cdk") and key not in recommended) == []


def test_the_deliberate_exceptions_are_explained_in_the_readme() -> None:
    readme = " ".join((PROJECT_ROOT / "README.md").read_text(encoding="utf-8").split())
    for flag, value in DELIBERATE.items():
        assert f"`{flag}` is **{json.dumps(value)}**" in readme


def test_cdk_synth_does_not_warn_about_unconfigured_flags(policy_dir: Path, tmp_path: Path) -> None:
    # Given the project's cdk.json and fixture policies (not the user's policies/)
    environment = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(PROJECT_ROOT / "lambdas"), str(PROJECT_ROOT)]),
        "CDK_DISABLE_CLI_TELEMETRY": "true",
        "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20",
    }
    # When the real CDK CLI synthesizes, as `make synth` does
    result = subprocess.run(
        [
            str(PROJECT_ROOT / "node_modules" / ".bin" / "cdk"),
            "synth",
            "--quiet",
            "--output",
            str(tmp_path / "cdk.out"),
            "--context",
            f"policyDir={policy_dir}",
        ],
        cwd=PROJECT_ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    # Then it succeeds (cdk-nag and CloudFormation's default rules passed) and warns about no feature flag
    assert result.returncode == 0, result.stderr[-3000:]
    output = result.stdout + result.stderr
    assert "feature flags are not configured" not in output
    assert (tmp_path / "cdk.out" / "KinesisRemediator.template.json").is_file()


def test_make_synth_says_cdk_nag_passed_only_after_synth() -> None:
    # Given the Makefile's synth recipe (.SHELLFLAGS -e: make stops at the first failing line)
    makefile = (PROJECT_ROOT / "Makefile").read_text(encoding="utf-8")
    match = re.search(r"^synth:.*\n((?:\t.*\n)+)", makefile, re.MULTILINE)
    assert match
    lines = [line.strip().lstrip("@") for line in match.group(1).splitlines()]
    # Then it runs cdk synth first, and only then says that cdk-nag ran and passed
    assert lines[0].startswith("$(CDK) synth --quiet")
    said = " ".join(lines[1:])
    assert said.startswith("echo")
    assert "cdk-nag (AwsSolutions) ran during synth" in said
    assert "passed" in said
