"""The remediator's own metrics: what the handler flushes to stdout as CloudWatch EMF for each outcome.

The names come from core/deployment.RemediatorMetric, which the dashboard reads too (tests/infrastructure)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from remediator.core.deployment import METRICS_NAMESPACE, SERVICE_NAME, RemediatorMetric

from tests.fakes import alarm_event
from tests.integration.support import SATURATED, STREAM, WRITE_ALARM, policy

M = RemediatorMetric
QUIET = {"bytes_per_second": 100_000, "records_per_second": 50, "throttled": 0}
OPEN_SHARDS = (M.OPEN_SHARDS, tuple(sorted((M.SERVICE_DIMENSION, M.STREAM_DIMENSION))))
COUNTERS = (
    M.PLANS_MADE,
    M.ACTIONS_APPLIED,
    M.STEPS_REHEARSED,
    M.STEPS_BLOCKED,
    M.STEPS_FAILED,
    M.STEPS_LIMIT_REACHED,
    M.STEPS_UNCERTAIN,
    M.OUTCOMES_NEEDING_ATTENTION,
    M.ADVICE_SENT,
)


def emf_documents(text: str) -> list[dict[str, Any]]:
    """Every EMF document in captured stdout (one JSON object a line; log lines have no `_aws`)."""
    documents = []
    for line in text.splitlines():
        if line.startswith("{"):
            document = json.loads(line)
            if "_aws" in document:
                documents.append(document)
    return documents


def emitted(documents: list[dict[str, Any]]) -> dict[tuple[str, tuple[str, ...]], Any]:
    """(metric name, its dimension names) -> value, checking each document's namespace and service."""
    values: dict[tuple[str, tuple[str, ...]], Any] = {}
    for document in documents:
        for directive in document["_aws"]["CloudWatchMetrics"]:
            assert directive["Namespace"] == METRICS_NAMESPACE
            dimensions = tuple(sorted(name for group in directive["Dimensions"] for name in group))
            assert document[M.SERVICE_DIMENSION] == SERVICE_NAME
            for metric in directive["Metrics"]:
                assert metric["Unit"] == "Count"
                value = document[metric["Name"]]  # Powertools writes a list when a metric was added twice
                values[(metric["Name"], dimensions)] = sum(value) if isinstance(value, list) else value
    return values


def counters(values: dict[tuple[str, tuple[str, ...]], Any]) -> dict[str, Any]:
    return {name: value for (name, dims), value in values.items() if dims == (M.SERVICE_DIMENSION,)}


def invoke_and_read(invoke: Any, capsys: pytest.CaptureFixture[str], **event: Any) -> dict[tuple[str, tuple], Any]:
    capsys.readouterr()
    invoke(alarm_event(WRITE_ALARM, **event))
    return emitted(emf_documents(capsys.readouterr().out))


def expected(**nonzero: int) -> dict[str, int]:
    return {name: 0 for name in COUNTERS} | nonzero


@pytest.mark.parametrize(
    ("mode", "traffic", "kill_switch", "status", "counts", "shards"),
    [
        ("enforce", SATURATED, "off", "applied", expected(PlansMade=1, ActionsApplied=1), 4),
        ("dry-run", SATURATED, "off", "dry-run", expected(PlansMade=1, StepsRehearsed=1), 2),
        ("enforce", SATURATED, "on", "blocked", expected(PlansMade=1, StepsBlocked=1), 2),
        ("enforce", QUIET, "off", "no-action", expected(PlansMade=1, AdviceSent=1), 2),
    ],
    ids=["applied", "dry-run", "blocked-by-kill-switch", "advice"],
)
def test_each_outcome_publishes_its_counters_as_emf(
    aws, invoke, capsys, mode, traffic, kill_switch, status, counts, shards
):
    # Given a 2-shard stream, its policy, its traffic and the kill switch
    aws.create_stream(STREAM, 2)
    aws.put_policy(policy(mode=mode))
    aws.push_traffic(STREAM, **traffic)
    aws.set_kill_switch(kill_switch)

    # When its alarm fires
    values = invoke_and_read(invoke, capsys)

    # Then the invocation's EMF counts the trigger, the outcome and each step by its result
    assert counters(values) == counts | {M.ALARM_TRIGGERS: 1, M.outcome(status): 1}
    # And the stream's open shards (after an applied reshard: its target) are published under its name
    assert values[OPEN_SHARDS] == shards


def test_a_failed_step_is_counted_as_failed(aws, invoke, capsys, monkeypatch):
    # Given a saturated stream whose reshard call fails
    from remediator.core.actions.reshard import Reshard

    aws.create_stream(STREAM, 2)
    aws.put_policy(policy(mode="enforce"))
    aws.push_traffic(STREAM, **SATURATED)

    def refuse(*_: Any, **__: Any) -> dict[str, Any]:
        raise RuntimeError("refused")

    monkeypatch.setattr(Reshard, "apply", refuse)

    # When its alarm fires
    values = invoke_and_read(invoke, capsys)

    # Then the step counts as failed, and the outcome too (the name H-TRUST's failed-outcome alarm reads)
    assert counters(values) == expected(PlansMade=1, StepsFailed=1, OutcomesNeedingAttention=1) | {
        M.ALARM_TRIGGERS: 1,
        "Outcome_failed": 1,
    }
    # And the shard count stays what was read: nothing changed it
    assert values[OPEN_SHARDS] == 2


def test_advice_held_back_by_its_interval_is_not_counted_as_sent(aws, invoke, capsys):
    # Given a quiet stream whose advice was e-mailed by a first alarm
    aws.create_stream(STREAM, 2)
    aws.put_policy(policy(mode="enforce"))
    aws.push_traffic(STREAM, **QUIET)
    first = invoke_and_read(invoke, capsys)
    assert counters(first)[M.ADVICE_SENT] == 1

    # When a second alarm state change comes within notify.advice_interval_minutes
    second = invoke_and_read(invoke, capsys, timestamp="2026-11-26T03:09:00.000+0000")

    # Then a plan was made but no advice counted as sent
    assert counters(second) == expected(PlansMade=1) | {M.ALARM_TRIGGERS: 1, "Outcome_no-action": 1}


def test_a_duplicate_delivery_counts_a_trigger_but_no_second_outcome(aws, invoke, capsys):
    # Given an alarm already handled once
    aws.create_stream(STREAM, 2)
    aws.put_policy(policy(mode="dry-run"))
    aws.push_traffic(STREAM, **SATURATED)
    invoke_and_read(invoke, capsys)

    # When the same state change is delivered again
    again = invoke_and_read(invoke, capsys)

    # Then only the trigger is counted (idempotency returned the stored outcome)
    assert counters(again) == {M.ALARM_TRIGGERS: 1}


def test_an_event_that_is_no_alarm_is_counted_as_unrecognised(aws, invoke, capsys):
    # Given an event of another kind
    capsys.readouterr()

    # When it reaches the handler
    invoke({"detail-type": "Something else", "source": "aws.s3", "detail": {}})

    # Then it is counted as unrecognised, and nothing else
    assert counters(emitted(emf_documents(capsys.readouterr().out))) == {M.UNRECOGNISED_EVENTS: 1}


def test_a_stream_without_policy_makes_no_plan(aws, invoke, capsys):
    # Given a stream whose policy was never deployed
    aws.create_stream(STREAM, 2)

    # When its alarm fires
    values = invoke_and_read(invoke, capsys)

    # Then the outcome is counted as ignored, with no plan, no step and no shard count
    assert counters(values) == expected() | {M.ALARM_TRIGGERS: 1, "Outcome_ignored": 1}
    assert OPEN_SHARDS not in values
