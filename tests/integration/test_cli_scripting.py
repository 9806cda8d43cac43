"""The CLI in a script: distinct, documented exit codes; with --json an error is JSON too (on stdout); an error
names what failed; every option shows its default; --version; the policy folder is the project's, not the
working directory's. AWS is moto, except where a case needs no AWS at all (no credentials, an endpoint that
refuses the connection: those go through botocore's real credential chain and retry layer)."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from remediator import cli

from tests.conftest import USERS_POLICIES
from tests.fakes import REGION
from tests.integration.conftest import AwsEnv
from tests.integration.support import STREAM, policy

REPO_ROOT = Path(__file__).resolve().parents[2]
TEMPLATE_WITHOUT_OUTPUT = {"Resources": {"Topic": {"Type": "AWS::SNS::Topic"}}}


def write_policies(directory: Path, *streams: dict[str, Any]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "streams.yaml").write_text(
        yaml.safe_dump({"version": 1, "streams": list(streams) or [policy()]}), encoding="utf-8"
    )
    return directory


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    capsys.readouterr()
    try:
        code = cli.main(list(argv))
    except SystemExit as exit_:  # argparse: usage errors, --help, --version
        code = int(exit_.code or 0)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


# --- exit codes and errors, one row per way a command ends ------------------------------------------------


def stream_exists(aws: AwsEnv, tmp_path: Path) -> None:
    aws.create_stream(STREAM, 2)


def nothing(aws: AwsEnv, tmp_path: Path) -> None:
    pass


def invalid_policy(aws: AwsEnv, tmp_path: Path) -> None:
    aws.create_stream(STREAM, 2)
    write_policies(tmp_path / "policies", policy(mode="sometimes"))


def stack_without_output(aws: AwsEnv, tmp_path: Path) -> None:
    aws.client("cloudformation").create_stack(StackName="Other", TemplateBody=json.dumps(TEMPLATE_WITHOUT_OUTPUT))


PLAN = ("plan", "--stream", STREAM, "--symptom", "write-throttling")
HISTORY = ("history", "--stream", STREAM)

# (case, setup, argv, exit code, kind, text the error must contain, text it must not contain)
CASES: list[tuple[str, Callable[[AwsEnv, Path], None], tuple[str, ...], int, str | None, str, str | None]] = [
    ("plan made", stream_exists, PLAN, 0, None, "", None),
    ("history printed", nothing, (*HISTORY, "--audit-table", "audit"), 0, None, "", None),
    (
        "invalid policy file",
        invalid_policy,
        PLAN,
        1,
        "policy",
        "Invalid policy files (1 error(s))",
        None,
    ),
    (
        "stream in no policy",
        stream_exists,
        ("plan", "--stream", "payments", "--symptom", "write-throttling"),
        1,
        "input",
        "Stream 'payments' is in no policy under",
        None,
    ),
    (
        "stack without the audit table output",
        stack_without_output,
        (*HISTORY, "--stack", "Other"),
        1,
        "input",
        "stack 'Other' has no output AuditTableName",
        None,
    ),
    (
        "stream missing in AWS",
        nothing,
        PLAN,
        3,
        "aws",
        f"Cannot read stream '{STREAM}' and its metrics from AWS:",
        None,
    ),
    (
        "plan: wrong --audit-table names the table",
        stream_exists,
        (*PLAN, "--audit-table", "no-such-table"),
        3,
        "aws",
        "Cannot read audit table 'no-such-table' from AWS:",
        f"stream '{STREAM}'",
    ),
    (
        "history: wrong --audit-table names the table",
        nothing,
        (*HISTORY, "--audit-table", "no-such-table"),
        3,
        "aws",
        "Cannot read audit table 'no-such-table' (the audit trail of stream 'orders') from AWS:",
        None,
    ),
    (
        "history: missing stack names the stack",
        nothing,
        (*HISTORY, "--stack", "NoSuchStack"),
        3,
        "aws",
        "Cannot read stack 'NoSuchStack' (to find the audit table) from AWS:",
        None,
    ),
]


@pytest.mark.parametrize(
    ("case", "setup", "argv", "code", "kind", "says", "not_says"), CASES, ids=[c[0] for c in CASES]
)
@pytest.mark.parametrize("as_json", [True, False], ids=["json", "text"])
def test_each_ending_has_its_exit_code_and_error(
    aws: AwsEnv,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    case: str,
    setup: Callable[[AwsEnv, Path], None],
    argv: tuple[str, ...],
    code: int,
    kind: str | None,
    says: str,
    not_says: str | None,
    as_json: bool,
) -> None:
    # Given moto with the case's state and a fixture policy folder (orders)
    monkeypatch.setenv("AWS_REGION", REGION)
    policies = write_policies(tmp_path / "policies")
    setup(aws, tmp_path)
    extra = ["--policy-dir", str(policies)] if argv[0] == "plan" else []

    # When the command runs, with or without --json
    got, out, err = run(capsys, *argv, *extra, *(["--json"] if as_json else []))

    # Then it exits with the case's code
    assert got == code, (out, err)
    if code == cli.EXIT_OK:
        assert err == ""
        if as_json:
            assert "error" not in json.loads(out)
        return
    if as_json:
        # And with --json the error is one JSON object on stdout, naming its kind; stderr stays empty
        assert err == ""
        document = json.loads(out)
        assert document["kind"] == kind
        message = document["error"]
    else:
        # And without it the error is text on stderr, stdout empty
        assert out == ""
        message = err
    assert says in message
    if not_says:
        assert not_says not in message


def test_a_json_policy_error_lists_every_error(
    aws: AwsEnv, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a policy file with two errors
    policies = write_policies(tmp_path / "policies", policy(mode="sometimes"), policy(name="clicks", mode="never"))
    # When plan --json reads it
    code, out, _ = run(capsys, *PLAN, "--policy-dir", str(policies), "--json")
    # Then the error object carries each error on its own, with the file
    document = json.loads(out)
    assert (code, document["kind"]) == (cli.EXIT_INVALID, "policy")
    assert len(document["errors"]) == 2
    assert all("streams.yaml" in error for error in document["errors"])


def test_an_aws_error_names_the_aws_error_code_and_operation(
    aws: AwsEnv, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a stream AWS does not have
    monkeypatch.setenv("AWS_REGION", REGION)
    policies = write_policies(tmp_path / "policies")
    # When plan --json asks about it
    code, out, _ = run(capsys, *PLAN, "--policy-dir", str(policies), "--json")
    # Then the error object says which call failed and how, for a script to branch on
    document = json.loads(out)
    assert code == cli.EXIT_AWS
    assert (document["aws_error"], document["operation"], document["stream"]) == (
        "ResourceNotFoundException",
        "DescribeStreamSummary",
        STREAM,
    )


def test_a_usage_error_stays_argparses_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    # Given plan without its required --stream, asked for JSON
    # When it runs
    code, out, err = run(capsys, "plan", "--symptom", "write-throttling", "--json")
    # Then argparse answers: exit 2, its usage text on stderr (not JSON)
    assert code == cli.EXIT_USAGE == 2
    assert out == ""
    assert "the following arguments are required: --stream" in err


def no_aws_environment(tmp_path: Path) -> dict[str, str]:
    """An environment in which botocore finds no credentials anywhere (no variables, no files, no IMDS)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(
        {
            "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none"),
            "AWS_CONFIG_FILE": str(tmp_path / "none"),
            "AWS_EC2_METADATA_DISABLED": "true",
            "PYTHONPATH": os.pathsep.join([str(REPO_ROOT / "lambdas"), str(REPO_ROOT)]),
        }
    )
    return env


def run_process(argv: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "remediator.cli", *argv],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_no_credentials_is_an_aws_error_in_json(tmp_path: Path) -> None:
    # Given a shell with no AWS credentials at all (botocore's real credential chain; no moto)
    env = no_aws_environment(tmp_path)
    policies = write_policies(tmp_path / "policies")
    # When plan --json runs in it
    result = run_process([*PLAN, "--policy-dir", str(policies), "--region", REGION, "--json"], tmp_path, env)
    # Then it exits 3 with a JSON error naming the stream it could not read and botocore's error
    assert result.returncode == cli.EXIT_AWS, result.stderr
    assert result.stderr == ""
    document = json.loads(result.stdout)
    assert document["kind"] == "aws"
    assert document["aws_error"] == "NoCredentialsError"
    assert document["error"].startswith(f"Cannot read stream '{STREAM}' and its metrics from AWS:")


def test_an_unreachable_endpoint_is_an_aws_error_naming_the_table(tmp_path: Path) -> None:
    # Given an endpoint that refuses connections (botocore's real retry layer: 3 attempts, then the error)
    env = {**no_aws_environment(tmp_path), "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
    # When history reads an audit table through it
    result = run_process(
        [*HISTORY, "--audit-table", "audit", "--region", REGION, "--endpoint-url", "http://127.0.0.1:9"],
        tmp_path,
        env,
    )
    # Then it exits 3 and names the table it could not read
    assert result.returncode == cli.EXIT_AWS, result.stderr
    assert result.stdout == ""
    assert result.stderr.startswith("Cannot read audit table 'audit' (the audit trail of stream 'orders') from AWS:")
    assert "Could not connect to the endpoint URL" in result.stderr


# --- --version, help, the default policy folder ------------------------------------------------------------


def test_version_is_the_packages(capsys: pytest.CaptureFixture[str]) -> None:
    # Given the version pyproject.toml declares
    declared = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["version"]
    # When --version is asked
    code, out, _ = run(capsys, "--version")
    # Then it prints the program and that version, and exits 0
    assert (code, out.strip()) == (0, f"kinesis-remediator {declared}")


def test_version_falls_back_to_the_checkouts_pyproject(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given the distribution is not installed (running from a checkout with PYTHONPATH)
    def not_installed(name: str) -> str:
        raise cli.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(cli.metadata, "version", not_installed)
    # Then the version is read from pyproject.toml
    declared = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["version"]
    assert cli.version() == declared


def subcommands() -> dict[str, argparse.ArgumentParser]:
    (commands,) = [a for a in cli.parser()._actions if isinstance(a, argparse._SubParsersAction)]
    return dict(commands.choices)


OPTIONS = [
    (name, action)
    for name, sub in subcommands().items()
    for action in sub._actions
    if action.option_strings and action.dest != "help"
]


@pytest.mark.parametrize(("command", "action"), OPTIONS, ids=[f"{c} {a.option_strings[0]}" for c, a in OPTIONS])
def test_every_option_has_help_with_its_default(command: str, action: argparse.Action) -> None:
    # Given an option of a subcommand
    # When its help is rendered as --help shows it
    rendered = cli.HelpFormatter(command)._expand_help(action)
    # Then it has help text, and says its default (or that it is required)
    assert rendered.strip()
    assert "(default: " in rendered or "(required)" in rendered, rendered
    assert "None" not in rendered


@pytest.mark.parametrize(
    ("command", "shows"),
    [
        ("plan", "(default: kinesis-remediator-)"),
        ("plan", "(default: off)"),
        ("plan", f"(default: the project's policies folder, {USERS_POLICIES}"),
        ("history", "(default: KinesisRemediator)"),
        ("validate", f"(default: the project's policies folder, {USERS_POLICIES})"),
    ],
)
def test_help_shows_the_defaults_values(command: str, shows: str) -> None:
    # Given a subcommand's --help
    text = " ".join(subcommands()[command].format_help().split())
    # Then the default's value appears in it, and the exit codes are documented
    assert shows in text
    assert "3 AWS error" in text


def test_the_default_policy_folder_is_the_checkouts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Given the CLI runs from this checkout, from some other working directory
    monkeypatch.chdir(tmp_path)
    # Then its default policy folder is the checkout's policies/, not ./policies
    assert cli.default_policy_dir() == USERS_POLICIES


def test_validate_finds_the_projects_policies_from_another_cwd(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a project (a fixture: pyproject.toml and policies/ with one stream) and a working directory elsewhere
    project = tmp_path / "project"
    project.mkdir()
    (project / "pyproject.toml").write_text("[project]\nname = 'x'\nversion = '0'\n", encoding="utf-8")
    write_policies(project / "policies", policy(name="fixture-stream"))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    monkeypatch.setattr(cli, "PROJECT_ROOT", project)
    # When validate runs with no path
    code, out, err = run(capsys, "validate")
    # Then it read the project's policies
    assert code == cli.EXIT_OK, err
    assert "OK: 1 file(s), 1 stream(s)" in out
    assert "fixture-stream" in out


def test_outside_a_checkout_the_default_is_the_working_directorys(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given the package installed outside a checkout (no pyproject.toml above it)
    monkeypatch.setattr(cli, "PROJECT_ROOT", tmp_path / "site-packages")
    # Then the default is policies/ under the working directory (named, never read here)
    assert cli.default_policy_dir() == Path(USERS_POLICIES.name)


def test_a_subprocess_from_another_cwd_shows_the_checkouts_folder(tmp_path: Path) -> None:
    # Given the CLI started as a process from a directory with no policies/
    result = run_process(["plan", "--help"], tmp_path, no_aws_environment(tmp_path))
    # Then its help names the checkout's policy folder as the default
    assert result.returncode == 0, result.stderr
    assert str(USERS_POLICIES) in " ".join(result.stdout.split())
