"""`kinesis-remediator history`: durations, the before -> after column, shortened reasons, table cells."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from remediator.cli import before_after, history_cells, parse_duration, parser, shorten
from remediator.clients.audit import AuditRow


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("30m", timedelta(minutes=30)),
        ("6h", timedelta(hours=6)),
        ("7d", timedelta(days=7)),
        ("2w", timedelta(weeks=2)),
        ("45s", timedelta(seconds=45)),
        ("1h30m", timedelta(hours=1, minutes=30)),
        (" 6H ", timedelta(hours=6)),
    ],
)
def test_durations_parse(text: str, expected: timedelta) -> None:
    # Given a duration as an operator types it / When parsed / Then it is that long
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["", "6", "h", "6x", "-6h", "6 h", "1.5h", "0m", "6h later"])
def test_bad_durations_are_refused(text: str) -> None:
    # Given something that is not a positive duration / When parsed / Then it is refused with an example
    with pytest.raises(argparse.ArgumentTypeError, match=r"not a duration"):
        parse_duration(text)


def test_a_bad_since_names_the_option(capsys: pytest.CaptureFixture[str]) -> None:
    # Given a history command with a malformed --since
    # When the command line is parsed
    with pytest.raises(SystemExit) as exit_:
        parser().parse_args(["history", "--stream", "orders", "--since", "yesterday"])

    # Then argparse stops with a usage error naming --since and saying what a duration looks like
    assert exit_.value.code == 2
    error = capsys.readouterr().err
    assert "argument --since: 'yesterday' is not a duration" in error
    assert "e.g. 30m, 6h, 7d" in error


@pytest.mark.parametrize(
    ("text", "width", "expected"),
    [
        ("short reason", 72, "short reason"),
        ("line one\n  line two", 72, "line one line two"),
        ("one two three four", 12, "one two..."),
        ("one two, three four", 13, "one two..."),
        ("abcdefghijklmnop", 10, "abcdefg..."),
        ("exactly ten", 11, "exactly ten"),
    ],
)
def test_reasons_are_shortened_at_a_word(text: str, width: int, expected: str) -> None:
    # Given a reason and a column width / When shortened / Then it fits, cut at a word, marked with ...
    shortened = shorten(text, width)
    assert shortened == expected
    assert len(shortened) <= width


AT = datetime(2026, 11, 26, 3, 5, 7, tzinfo=UTC)
RESHARD = {"current_shards": 2, "desired_shards": 4, "target_shards": 4}
RESHARD_STEP = {
    "action": "reshard",
    "parameters": RESHARD,
    "changes": [{"setting": "open shards", "before": 2, "after": 4}],
}
RETENTION_STEP = {
    "action": "raise-retention",
    "parameters": {"current_hours": 24, "target_hours": 48},
    "changes": [{"setting": "retention hours", "before": 24, "after": 48}],
}


def row(**fields: Any) -> AuditRow:
    defaults: dict[str, Any] = {"at": AT, "stream": "orders", "outcome": "applied", "reason": "ok"}
    return AuditRow(**(defaults | fields))


@pytest.mark.parametrize(
    ("audit_row", "expected"),
    [
        # the step's changes, from the plan recorded with the row
        (
            row(action="reshard", parameters=RESHARD, plan={"actions": [RETENTION_STEP, RESHARD_STEP]}),
            "open shards 2 -> 4",
        ),
        # a blocked step's changes
        (
            row(action="reshard", parameters=RESHARD, plan={"actions": [], "blocked": [RESHARD_STEP]}),
            "open shards 2 -> 4",
        ),
        # a change recorded with fields this reader does not know
        (
            row(
                action="reshard",
                parameters=RESHARD,
                plan={
                    "actions": [
                        RESHARD_STEP
                        | {"changes": [{"setting": "open shards", "before": 2, "after": 4, "monthly_usd": 1}]}
                    ]
                },
            ),
            "open shards 2 -> 4",
        ),
        # no plan recorded: the parameters
        (
            row(action="reshard", parameters={"target_shards": 4, "current_shards": 2}),
            "current_shards=2, target_shards=4",
        ),
        # no step at all (no action, ignored, failed evidence)
        (row(outcome="no-action", plan={"actions": []}), "-"),
    ],
    ids=["changes", "blocked-changes", "newer-change", "parameters", "no-step"],
)
def test_before_after_comes_from_the_recorded_plan(audit_row: AuditRow, expected: str) -> None:
    # Given an audit row / When its before -> after cell is rendered / Then it shows what the step changes
    assert before_after(audit_row) == expected


def test_a_row_renders_as_table_cells() -> None:
    # Given an applied reshard and an advice row that was e-mailed
    applied = row(
        symptom="write-throttling",
        mode="enforce",
        action="reshard",
        parameters=RESHARD,
        plan={"actions": [RESHARD_STEP]},
        reason="accepted by AWS: open shards 2 -> 4 (AWS's answer: current shards 2, target shards 4) " + "x" * 100,
    )
    advice = row(symptom="iterator-age", mode="dry-run", outcome="no-action", notified=True, reason="consumer slow")

    # When each is rendered
    # Then time is UTC to the second, before -> after from the plan, and a long reason is cut
    assert history_cells(applied) == [
        "2026-11-26 03:05:07",
        "write-throttling",
        "enforce",
        "reshard",
        "open shards 2 -> 4",
        "applied",
        "accepted by AWS: open shards 2 -> 4 (AWS's answer: current shards 2...",
    ]
    assert history_cells(advice) == [
        "2026-11-26 03:05:07",
        "iterator-age",
        "dry-run",
        "-",
        "-",
        "no-action (e-mailed)",
        "consumer slow",
    ]
