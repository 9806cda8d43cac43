"""The README documents the CLI as it is: every option, the exit codes, the alarm prefix, and a rehearsal command
whose alarm name is one the stack makes."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import pytest
from remediator import cli
from remediator.core.alarm import DEFAULT_ALARM_PREFIX, alarm_name

README = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")


def section(title: str) -> str:
    """The README's text from the heading `title` to the next heading of the same or a higher level."""
    match = re.search(rf"^(#+) {re.escape(title)}\n", README, re.MULTILINE)
    assert match, title
    level = len(match.group(1))
    rest = README[match.end() :]
    end = re.search(rf"^#{{1,{level}}} ", rest, re.MULTILINE)
    return rest[: end.start()] if end else rest


def options() -> list[tuple[str, str]]:
    (commands,) = [a for a in cli.parser()._actions if isinstance(a, argparse._SubParsersAction)]
    return [
        (name, option)
        for name, sub in commands.choices.items()
        for action in sub._actions
        for option in action.option_strings
        if option.startswith("--") and option != "--help"
    ]


@pytest.mark.parametrize(("command", "option"), options())
def test_every_option_is_in_the_command_line_section(command: str, option: str) -> None:
    # Given an option of a subcommand, then the README's usage names it
    assert option in section("Command line"), f"{command} {option}"


def test_the_exit_codes_table_matches_the_cli() -> None:
    # Given the README's exit-code table
    rows = dict(re.findall(r"^\| (\d) \| ([^|]+) \|$", section("Command line"), re.MULTILINE))
    # Then it has exactly the CLI's codes, each with its meaning
    assert sorted(int(code) for code in rows) == sorted({cli.EXIT_OK, cli.EXIT_INVALID, cli.EXIT_USAGE, cli.EXIT_AWS})
    assert rows[str(cli.EXIT_AWS)].startswith("AWS error")
    assert rows[str(cli.EXIT_INVALID)].startswith("Policy or input error")
    assert rows[str(cli.EXIT_USAGE)].startswith("Usage error")
    assert "--version" in section("Command line")


def test_the_alarm_prefix_and_its_context_are_documented() -> None:
    text = " ".join(README.split())
    assert f"`alarmPrefix` sets it (default `{DEFAULT_ALARM_PREFIX}`" in text
    assert "--alarm-prefix" in text


def test_the_rehearsal_uses_an_alarm_name_the_stack_makes() -> None:
    # Given the rehearsal in "Try it after deploying"
    rehearsal = section("Try it after deploying")
    (name,) = re.findall(r"set-alarm-state --alarm-name '([^']+)'", rehearsal)
    # Then its alarm name is the one the stack gives the stream's write-throttling alarm, set to ALARM
    assert name == alarm_name(DEFAULT_ALARM_PREFIX, "orders", "write-throttling")
    assert "--state-value ALARM --state-reason test" in rehearsal
