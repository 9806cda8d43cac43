"""The suite and the demo bring their own policies: the user's policies/ folder is theirs to replace.

Three checks: in this process, reading policies/ fails the test that does it (tests/conftest.py's guard);
the source of tests/ and demo/ never names the project's policies folder, and runs app.py only with a policyDir
(so subprocesses do not read it either); with no policy at all, `validate` and app.py say so and what to do.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from remediator import cli
from remediator.policy_files import EXAMPLE_POLICY, NO_POLICY_FILES, NoPolicyFiles, load_policies

from tests.conftest import USERS_POLICIES, ReadTheUsersPolicies

PROJECT_ROOT = USERS_POLICIES.parent

SCANNED = ("tests", "demo")


def users_policies_references(source: str) -> list[str]:
    """Where this Python source reads the project's policies folder: `<...ROOT...> / "policies"`, a relative
    "policies/..." or Path("policies"), or app.py run without a policyDir: run_app without it in its context, or a
    CDK CLI command line (a list starting with CDK: every cdk command, bootstrap included, runs app.py)."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Div):
            left, right = node.left, node.right
            root = isinstance(left, ast.Name | ast.Attribute) and "ROOT" in ast.unparse(left).upper()
            if root and isinstance(right, ast.Constant) and right.value == "policies":
                found.append(f"line {node.lineno}: {ast.unparse(node)}")
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            if node.value.startswith("policies/") and "\n" not in node.value:
                found.append(f"line {node.lineno}: {node.value!r}")
        elif isinstance(node, ast.List) and node.elts and "CDK" in ast.unparse(node.elts[0]):
            if "policyDir" not in ast.unparse(node):
                found.append(f"line {node.lineno}: {ast.unparse(node)} (no policyDir: app.py reads policies/)")
        elif isinstance(node, ast.Call):
            name = ast.unparse(node.func)
            first = ast.unparse(node.args[0]) if node.args else ""
            if name in {"Path", "pathlib.Path"} and first in {"'policies'", '"policies"'}:
                found.append(f"line {node.lineno}: {ast.unparse(node)}")
            if name == "run_app" and "policyDir" not in first and "policy_dir" not in first:
                found.append(f"line {node.lineno}: {ast.unparse(node)} (no policyDir: app.py reads policies/)")
    return found


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ('EXAMPLE = PROJECT_ROOT / "policies" / "example.yaml"', 1),
        ('load_policies([ROOT / "policies"])', 1),
        ('cli.main(["validate", "policies/example.yaml"])', 1),
        ('load_policies([Path("policies")])', 1),
        ("run_app(cli_context() | {'operatorEmails': 'x'}, tmp_path)", 1),
        ("run_app({**cli_context(), 'policyDir': str(policy_dir)}, outdir)", 0),
        ('directory = tmp_path / "policies"', 0),
        ('directory = WORK / "policies"', 0),
        ('EXAMPLE = PROJECT_ROOT / "examples" / "policies" / "example.yaml"', 0),
        ('name = "/kinesis-remediator/policies/orders"', 0),
        ('command = [str(CDK), *args, "--output", str(WORK / "cdk.out")]', 1),
        ('command = [str(CDK), *args, "-c", f"policyDir={WORK / \'policies\'}"]', 0),
    ],
)
def test_the_scanner_finds_references_to_the_users_policies(source: str, expected: int) -> None:
    # Given a line of test or demo code / When scanned / Then it is flagged only if it reads policies/
    assert len(users_policies_references(source)) == expected, users_policies_references(source)


def test_tests_and_demo_never_name_the_users_policy_folder() -> None:
    # Given every Python file of the suite and of the demo
    files = sorted(p for folder in SCANNED for p in (PROJECT_ROOT / folder).rglob("*.py"))
    assert len(files) > 20, files
    # When each is scanned for the project's policies folder
    found = {
        str(path.relative_to(PROJECT_ROOT)): references
        for path in files
        if path != Path(__file__) and (references := users_policies_references(path.read_text(encoding="utf-8")))
    }
    # Then none reads it: they bring their own policies (fixtures, tmp_path, the demo's .demo/policies)
    assert found == {}


@pytest.mark.parametrize(
    "path",
    [USERS_POLICIES, USERS_POLICIES / "example.yaml", Path("policies"), Path("policies/mine.yml")],
    ids=["folder", "file", "relative-folder", "relative-file"],
)
def test_reading_the_users_policies_in_a_test_fails_it(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Given the suite's guard (tests/conftest.py), and a working directory at the project's root
    monkeypatch.chdir(PROJECT_ROOT)
    # When a test loads the user's policy folder or a file in it
    # Then it fails, saying what to do instead
    with pytest.raises(ReadTheUsersPolicies, match="bring a fixture policy instead"):
        load_policies([path])


def test_the_guard_lets_a_fixture_policy_through(tmp_path: Path) -> None:
    # Given a policy folder of the test's own, with the example in it
    (tmp_path / "example.yaml").write_text((PROJECT_ROOT / EXAMPLE_POLICY).read_text(encoding="utf-8"))
    # When it is loaded / Then the guard lets it through
    assert load_policies([tmp_path]).names() == ["orders"]


def test_the_example_is_documentation_not_deployment() -> None:
    # Given the project as shipped
    # Then the commented example lives under examples/, and the user's folder tells what goes in it
    assert (PROJECT_ROOT / EXAMPLE_POLICY).is_file()
    assert "cp examples/policies/example.yaml policies/" in (USERS_POLICIES / "README.md").read_text(encoding="utf-8")
    # And the example says how to use it
    assert "cp examples/policies/example.yaml policies/" in (PROJECT_ROOT / EXAMPLE_POLICY).read_text(encoding="utf-8")


def test_validate_on_a_folder_with_no_policy_says_so(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # Given a policy folder holding only its README (as policies/ ships)
    (tmp_path / "README.md").write_text("# Your policies\n", encoding="utf-8")
    # When `kinesis-remediator validate` (make validate) reads it
    code = cli.main(["validate", str(tmp_path)])
    # Then it fails, saying the folder has no policy file and how to start one
    assert code == 1
    err = capsys.readouterr().err
    assert f"ERROR {tmp_path}: {NO_POLICY_FILES}" in err
    assert "copy examples/policies/example.yaml here" in err


def test_no_policy_files_is_its_own_error(tmp_path: Path) -> None:
    # Given an empty folder / When loaded / Then the error is NoPolicyFiles (app.py explains it, not "invalid")
    with pytest.raises(NoPolicyFiles):
        load_policies([tmp_path])
