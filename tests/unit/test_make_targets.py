"""The README's "Make targets" table lists every Makefile target, and the help texts tell the truth."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[2]
# The lines `make help` prints: `target: prerequisites ## help text`.
TARGET_LINE = re.compile(r"^([a-z-]+):.*## (.*)$")
NUMBERS = {"five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9}


def makefile_targets(text: str) -> dict[str, str]:
    return {m[1]: m[2] for line in text.splitlines() if (m := TARGET_LINE.match(line))}


def readme_table_targets(text: str) -> set[str]:
    """Every `make X` named in the first column of the table under "## Make targets"."""
    section = text.split("\n## Make targets\n", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| ") and not line.startswith("| Target")]
    return {target for row in rows for target in re.findall(r"`make ([a-z-]+)`", row.split("|")[1])}


@pytest.mark.parametrize(
    ("makefile", "readme", "expected_missing"),
    [
        ("a: ## A\nb: x ## B\n", "| `make a` / `make b` | both |", set()),
        (
            "a: ## A\nb: x ## B\nc: ## C\n",
            "| `make a` | one |\n| `make b` | two | `make c` is here, not in col 1 |",
            {"c"},
        ),
    ],
    ids=["all-listed", "one-missing"],
)
def test_the_comparison_sees_a_missing_target(makefile: str, readme: str, expected_missing: set[str]) -> None:
    # Given a Makefile and a README table / When compared / Then the targets missing from the table are found
    text = f"# x\n\n## Make targets\n\n| Target | What it does |\n|---|---|\n{readme}\n\n## Next\n| `make c` | x |\n"
    assert set(makefile_targets(makefile)) - readme_table_targets(text) == expected_missing


def test_the_readme_lists_every_make_target() -> None:
    # Given the Makefile's targets (those `make help` lists) and the README's table
    targets = makefile_targets((PROJECT_ROOT / "Makefile").read_text(encoding="utf-8"))
    listed = readme_table_targets((PROJECT_ROOT / "README.md").read_text(encoding="utf-8"))
    assert {"help", "bootstrap", "synth", "deploy", "test", "demo", "validate", "clean"} <= set(targets)
    # Then the table lists each of them, and nothing that is not a target
    assert listed == set(targets)


def test_the_phony_list_names_every_target() -> None:
    # Given the Makefile / Then every documented target is .PHONY (none is a file make could find up to date)
    text = (PROJECT_ROOT / "Makefile").read_text(encoding="utf-8")
    (phony,) = re.findall(r"^\.PHONY: (.*)$", text, re.MULTILINE)
    assert set(phony.split()) == set(makefile_targets(text))


def test_the_demo_help_counts_the_demos_incidents() -> None:
    # Given the demo's incidents (demo/run.py's INCIDENTS table, read without importing the demo)
    tree = ast.parse((PROJECT_ROOT / "demo" / "run.py").read_text(encoding="utf-8"))
    (incidents,) = [
        node.value
        for node in tree.body
        if isinstance(node, ast.Assign) and [ast.unparse(t) for t in node.targets] == ["INCIDENTS"]
    ]
    assert isinstance(incidents, ast.Dict)
    # When `make help` describes the demo target
    help_text = makefile_targets((PROJECT_ROOT / "Makefile").read_text(encoding="utf-8"))["demo"]
    # Then the number of incidents it announces is the number the demo plays
    (word,) = re.findall(r"play (\w+) incidents", help_text)
    assert NUMBERS[word] == len(incidents.keys)
