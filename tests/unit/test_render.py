"""What people read: the e-mail subject and body for a plan."""

from __future__ import annotations

from typing import Any

import pytest
from remediator.core import render
from remediator.core.alarm import DEFAULT_ALARM_PREFIX, alarm_name
from remediator.core.history import ActionHistory
from remediator.core.plan import Figure, Plan
from remediator.core.planner import make_plan

from tests.fakes import NOW, evidence, policy, stream_arn

ARN = stream_arn("orders")
CLI_2_TO_4 = f"aws kinesis update-shard-count --stream-arn {ARN} --target-shard-count 4 --scaling-type UNIFORM_SCALING"


def make(name: str = "orders", mode: str = "dry-run", symptom: str = "write-throttling", **evidence_args: Any) -> Plan:
    args = {
        "shards": 2,
        "bytes_per_second": 1_900_000,
        "throttled_per_minute": 10,
        "name": name,
        **evidence_args,
    }
    return make_plan(
        alarm_name=alarm_name(DEFAULT_ALARM_PREFIX, name, symptom),
        symptom=symptom,
        policy=policy(name, mode=mode),
        evidence=evidence(**args),
        history=ActionHistory(),
        now=NOW,
    )


def hot_key_plan() -> Plan:
    return make(bytes_per_second=400_000, shards=4, throttled_per_minute=3)


# Subject -------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("plan", "outcome", "expected"),
    [
        pytest.param(make(), "dry-run", "[DRY-RUN] orders: reshard 2 -> 4 shards (producers throttled)", id="step"),
        pytest.param(
            hot_key_plan(),
            "dry-run",
            "[DRY-RUN] orders: hot-shard-or-bursts (producers throttled)",
            id="no step",
        ),
        pytest.param(
            make(symptom="iterator-age", iterator_age_ms=60_000),
            "applied",
            "[APPLIED] orders: reshard 2 -> 4 shards (consumers falling behind)",
            id="applied",
        ),
    ],
)
def test_subject(plan: Plan, outcome: str, expected: str) -> None:
    assert render.subject(plan, outcome) == expected


@pytest.mark.parametrize(
    ("name", "outcome"),
    [
        pytest.param("s" * 128, "dry-run", id="128-char stream name"),
        pytest.param("orders", "blocked\nby guardrails\r\n" + "x" * 120, id="newlines and long outcome"),
    ],
)
def test_subject_is_under_100_chars_on_one_line(name: str, outcome: str) -> None:
    text = render.subject(make(name), outcome)
    assert len(text) <= 99
    assert text.endswith("…")
    assert "\n" not in text
    assert "\r" not in text
    assert text.startswith(f"[{outcome.upper().split()[0]}")


# Body ----------------------------------------------------------------------------------------------
def test_dry_run_body() -> None:
    # Given a dry-run plan with one allowed reshard
    plan = make()
    # When the e-mail body is rendered
    lines = render.body(plan, "dry-run").splitlines()
    # Then it says nothing changed, shows the alarm, the evidence, the command and each guardrail
    assert lines[0] == "Kinesis Remediator, DRY RUN: nothing was changed. This is what enforce mode would do."
    for expected in (
        "Alarm:     kinesis-remediator-orders/write-throttling",
        "Stream:    orders (mode: dry-run)",
        "Symptom:   producers throttled (write-throttling)",
        "Time:      2026-11-26 03:00:00 UTC",
        "  The shards are saturated: writes peaked at 95% of the stream's capacity (saturated from 80%).",
        "  open shards                2",
        "  peak write utilisation     95 %",
        "  average write utilisation  95 %",
        "  peak incoming bytes        1,900,000 B/s",
        "  peak incoming records      0 records/s",
        "  throttled writes           150 records",
        "  1. reshard 2 -> 4 shards [allowed]",
        "     Why:     peak write utilisation 95%; 4 shards would put the observed peak at "
        "48% of capacity (target 60%)",
        f"     Command: {CLI_2_TO_4}",
        "     Guardrails:",
        "       [pass] policy-enabled: enabled in the policy",
        "       [pass] aws-step-limit: 2 -> 4; allowed range 1–4 (one call: half to double)",
        "       [pass] aws-daily-scalings: 0 of AWS's 10 scalings used in the last 24 h (the remediator's audit: 0; "
        "CloudTrail was not read)",
    ):
        assert expected in lines
    (step,) = plan.steps
    guardrail_lines = [line for line in lines if line.startswith("       [")]
    assert guardrail_lines == [
        *(f"       [pass] {g.name}: {g.detail}" for g in step.guardrails),
        # the kill switch's verdict is among the guardrails whatever its state: a dry run does not read it
        "       [ -- ] kill-switch: not read: a dry run changes nothing",
    ]
    assert len(guardrail_lines) == 11
    assert lines[-1] == (
        "To let the remediator act on this stream, set `mode: enforce` for it in its policy file and redeploy."
    )
    assert "Result:" not in "\n".join(lines)


def test_blocked_step_shows_stop_lines() -> None:
    plan = make_plan(
        alarm_name=alarm_name(DEFAULT_ALARM_PREFIX, "orders", "write-throttling"),
        symptom="write-throttling",
        policy=policy(reshard={"enabled": False}),
        evidence=evidence(shards=2, bytes_per_second=1_900_000, status="UPDATING"),
        history=ActionHistory(),
        now=NOW,
    )
    lines = render.body(plan, "dry-run").splitlines()
    assert "  1. reshard 2 -> 4 shards [BLOCKED]" in lines
    assert [line for line in lines if "[STOP]" in line] == [
        "       [STOP] policy-enabled: actions.reshard.enabled is false",
        "       [STOP] stream-active: stream status is UPDATING",
    ]
    assert sum("[pass]" in line for line in lines) == 8


def test_enforce_body_reports_outcome_and_results() -> None:
    plan = make(mode="enforce")
    text = render.body(plan, "applied", results=["UpdateShardCount accepted: 2 -> 4"])
    lines = text.splitlines()
    assert lines[0] == "Kinesis Remediator, ENFORCE: applied."
    assert "     Result:  UpdateShardCount accepted: 2 -> 4" in lines
    assert "DRY RUN" not in text
    assert "Stream:    orders (mode: enforce)" in lines
    assert "To let the remediator act" not in text


def test_advice_is_rendered_with_its_command() -> None:
    lines = render.body(hot_key_plan(), "dry-run").splitlines()
    assert "  No automatic action: see the diagnosis and the advice." in lines
    start = lines.index("Advice")
    assert lines[start + 1 : start + 5] == [
        "  - Find out: enable shard-level metrics: Turn on IncomingBytes, IncomingRecords, "
        "WriteProvisionedThroughputExceeded per shard: with them, the next alarm tells a hot shard (one shard takes "
        "the throttles or the bulk of the bytes) from bursts (spread over all shards). They cost about $3.60 a month "
        "for this stream's 4 shards (3 metrics x 4 shards x $0.30 per metric a month, prorated by the hour; "
        "CloudWatch custom-metric list price, us-east-1, 2026-11-26, UNCONFIRMED). Turn them off afterwards: "
        f"aws kinesis disable-enhanced-monitoring --stream-arn {ARN} "
        "--shard-level-metrics IncomingBytes IncomingRecords WriteProvisionedThroughputExceeded",
        f"      aws kinesis enable-enhanced-monitoring --stream-arn {ARN} "
        "--shard-level-metrics IncomingBytes IncomingRecords WriteProvisionedThroughputExceeded",
        "  - Spread the partition keys: Use random or better-spread partition keys so records land evenly on shards.",
        "  - Batch and back off: Batch with PutRecords or the KPL's aggregation; retry throttled records "
        "with exponential backoff and rate-limit the producers.",
    ]


def test_plan_without_advice_has_no_advice_section() -> None:
    assert "Advice" not in render.body(make(), "dry-run").splitlines()


@pytest.mark.parametrize(
    ("value", "unit", "shown"),
    [
        pytest.param(2, "", "2", id="whole, no unit"),
        pytest.param(95.0, "%", "95 %", id="whole percent"),
        pytest.param(0.5, "%", "0.50 %", id="small fraction: two decimals"),
        pytest.param(12.5, "s", "12.50 s", id="fraction under 100"),
        pytest.param(150.25, "s", "150 s", id="fraction from 100 on: no decimals"),
        pytest.param(1_234_567, "B/s", "1,234,567 B/s", id="thousands separators"),
        pytest.param(0, "%", "0 %", id="a measured zero stays 0"),
        pytest.param(None, "%", "n/a", id="no data: n/a, never 0"),
    ],
)
def test_figure_render(value: float | None, unit: str, shown: str) -> None:
    assert Figure(name="x", value=value, unit=unit).render() == shown


def test_a_long_step_summary_gives_way_to_the_symptom_title() -> None:
    # Given a plan whose first step has a summary far longer than a subject allows
    plan = make()
    long_step = plan.steps[0].model_copy(update={"summary": "move " + " ".join(f"function-{n}" for n in range(30))})
    plan = plan.model_copy(update={"steps": (long_step,)})
    # When the subject is rendered
    text = render.subject(plan, "dry-run")
    # Then it fits, the summary is cut at a word with an ellipsis, and the symptom title is whole
    assert len(text) <= 99
    assert text.endswith("… (producers throttled)")
    assert text.startswith("[DRY-RUN] orders: move function-0 function-1")
    assert text.count("…") == 1


def test_a_summary_that_fits_only_alone_drops_the_title_rather_than_its_end() -> None:
    # Given a step summary that fits a subject only without the symptom's title
    plan = make()
    summary = "tune orders-consumer: ParallelizationFactor 1 -> 2 and BatchSize 100 -> 200 now"
    plan = plan.model_copy(update={"steps": (plan.steps[0].model_copy(update={"summary": summary}),)})
    # When the subject is rendered
    text = render.subject(plan, "applied")
    # Then the summary is whole, and the title is left out
    assert text == f"[APPLIED] orders: {summary}"


# The kill switch among the guardrails -------------------------------------------------------------------
@pytest.mark.parametrize(
    ("mode", "reshard", "results", "read", "line"),
    [
        pytest.param(
            "enforce",
            {},
            None,
            None,
            "       [ -- ] kill-switch: not read by plan; the service reads it right before each change",
            id="plan shown by the CLI: not read",
        ),
        pytest.param(
            "enforce",
            {},
            ["applied: accepted by AWS: open shards 2 -> 4"],
            ["off"],
            "       [pass] kill-switch: off (read right before the change)",
            id="applied: off as read",
        ),
        pytest.param(
            "enforce",
            {},
            ["blocked: kill-switch: engaged; no change made"],
            ["engaged"],
            "       [STOP] kill-switch: engaged (read right before the change)",
            id="engaged as read",
        ),
        pytest.param(
            "enforce",
            {"enabled": False},
            ["blocked: policy-enabled: actions.reshard.enabled is false"],
            [None],
            "       [ -- ] kill-switch: not read: the step is blocked by the guardrails above",
            id="blocked step: not read",
        ),
        pytest.param(
            "dry-run",
            {},
            None,
            None,
            "       [ -- ] kill-switch: not read: a dry run changes nothing",
            id="dry run: not read",
        ),
    ],
)
def test_the_kill_switch_verdict_is_among_the_guardrails_whatever_its_state(
    mode: str, reshard: dict[str, Any], results: list[str] | None, read: list[str | None] | None, line: str
) -> None:
    # Given a plan with one reshard step, and what the service read from the kill switch for it (if anything)
    plan = make_plan(
        alarm_name=alarm_name(DEFAULT_ALARM_PREFIX, "orders", "write-throttling"),
        symptom="write-throttling",
        policy=policy(mode=mode, reshard=reshard),
        evidence=evidence(shards=2, bytes_per_second=1_900_000, throttled_per_minute=10),
        history=ActionHistory(),
        now=NOW,
    )
    # When the plan is rendered
    lines = render.plan_text(plan, results, read).splitlines()
    # Then the last guardrail line is the kill switch's verdict, once
    guardrails = [text for text in lines if text.startswith("       [")]
    assert guardrails[-1] == line
    assert sum("kill-switch" in text for text in guardrails) == 1


# A step that changes nothing --------------------------------------------------------------------------
def test_a_step_that_changes_nothing_is_not_shown_as_a_command_to_run() -> None:
    # Given a saturated stream already at its max_shards of 1: the reshard goes 1 -> 1 and is blocked
    plan = make_plan(
        alarm_name=alarm_name(DEFAULT_ALARM_PREFIX, "orders", "write-throttling"),
        symptom="write-throttling",
        policy=policy(reshard={"min_shards": 1, "max_shards": 1}),
        evidence=evidence(shards=1, bytes_per_second=950_000, throttled_per_minute=10),
        history=ActionHistory(),
        now=NOW,
    )
    (step,) = plan.steps
    assert step.summary == "reshard 1 -> 1 shards"
    # When the plan is rendered
    lines = render.plan_text(plan).splitlines()
    # Then no AWS CLI command is offered, and the line says why
    assert "  1. reshard 1 -> 1 shards [BLOCKED]" in lines
    assert "     Command: none: this step changes nothing (open shards stays 1)" in lines
    assert not any("update-shard-count" in text for text in lines)
    # And `plan --json` carries no command for it either
    (blocked,) = plan.as_report()["blocked"]
    assert blocked["cli_command"] is None


def test_a_step_that_changes_something_keeps_its_command() -> None:
    assert f"     Command: {CLI_2_TO_4}" in render.plan_text(make()).splitlines()


# An applied step in words -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("response", "detail"),
    [
        pytest.param(
            {"current_shards": 2, "target_shards": 4},
            "accepted by AWS: open shards 2 -> 4 (AWS's answer: current shards 2, target shards 4)",
            id="reshard's answer",
        ),
        pytest.param({}, "accepted by AWS: open shards 2 -> 4", id="no answer body"),
        pytest.param(
            {"current_shards": None, "state": "Updating", "names": ["a", "b"]},
            "accepted by AWS: open shards 2 -> 4 (AWS's answer: state Updating, names a, b)",
            id="empty values left out, lists joined",
        ),
    ],
)
def test_an_applied_step_reads_as_words_not_a_python_dict(response: dict[str, Any], detail: str) -> None:
    # Given the planned reshard 2 -> 4 and what its call answered
    (step,) = make(mode="enforce").steps
    # When its outcome is put in words
    text = render.applied_detail(step, response)
    # Then it says what changed, before -> after, and AWS's answer without braces or quotes
    assert text == detail
    assert not any(mark in text for mark in ("{", "}", "': ", "_shards"))
