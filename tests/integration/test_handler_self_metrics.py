"""The remediator's own metrics that its self-monitoring alarms read, and concurrent duplicate deliveries.

The failed-outcome alarm (stacks/constructs/self_monitoring.py) watches FAILED_OUTCOME_METRIC in METRICS_NAMESPACE
with exactly the dimensions Powertools writes; a second delivery of a state change while the first is still
running ends quietly (one result, no IdempotencyAlreadyInProgressError for the dead-letter queue).
"""

from __future__ import annotations

import json
import threading
from typing import Any

import pytest
from remediator.core.deployment import (
    DUPLICATE_DELIVERY_METRIC,
    FAILED_OUTCOME_METRIC,
    METRICS_NAMESPACE,
    METRICS_SERVICE_DIMENSION,
    SERVICE_NAME,
)
from remediator.core.outcome import Outcome, OutcomeStatus

from tests.fakes import alarm_event
from tests.integration.support import SATURATED, STREAM, WRITE_ALARM, only, policy


def emitted(text: str) -> list[dict[str, Any]]:
    """The EMF documents Powertools printed: one per flush."""
    documents = []
    for line in text.splitlines():
        if line.startswith("{") and '"_aws"' in line:
            documents.append(json.loads(line))
    return documents


def metric_names(document: dict[str, Any]) -> set[str]:
    (directive,) = document["_aws"]["CloudWatchMetrics"]
    return {m["Name"] for m in directive["Metrics"]}


def test_a_failed_outcome_is_emitted_where_the_self_monitoring_alarm_reads_it(
    aws, handler, context, monkeypatch, capsys
):
    # Given a stream with a policy, and a remediation that fails
    aws.create_stream(STREAM, 2)
    aws.put_policy(policy(mode="enforce"))

    def failing(trigger, deps):
        return Outcome(status=OutcomeStatus.FAILED, stream=trigger.stream, symptom=trigger.symptom, detail="boom")

    monkeypatch.setattr(handler, "remediate", failing)
    capsys.readouterr()

    # When its alarm fires
    handler.lambda_handler(alarm_event(WRITE_ALARM), context)

    # Then the failed-outcome metric is written in our namespace with the one dimension Powertools adds
    (document,) = [d for d in emitted(capsys.readouterr().out) if FAILED_OUTCOME_METRIC in metric_names(d)]
    (directive,) = document["_aws"]["CloudWatchMetrics"]
    assert directive["Namespace"] == METRICS_NAMESPACE
    assert directive["Dimensions"] == [[METRICS_SERVICE_DIMENSION]]
    assert document[METRICS_SERVICE_DIMENSION] == SERVICE_NAME
    assert document[FAILED_OUTCOME_METRIC] == [1.0]


def test_concurrent_duplicate_deliveries_end_in_one_result_and_no_error(aws, handler, context, monkeypatch, capsys):
    # Given an enforced, saturated stream, and a first delivery of its alarm that is still being handled
    aws.create_stream(STREAM, 2)
    aws.put_policy(policy(mode="enforce"))
    aws.push_traffic(STREAM, **SATURATED)
    started, release = threading.Event(), threading.Event()
    real = handler.remediate

    def slow(trigger, deps):
        started.set()
        assert release.wait(30), "the second delivery never finished"
        return real(trigger, deps)

    monkeypatch.setattr(handler, "remediate", slow)
    event = alarm_event(WRITE_ALARM)
    results: dict[str, Any] = {}

    def deliver(name: str) -> None:
        try:
            results[name] = handler.lambda_handler(event, context)
        except Exception as exc:  # what would reach the dead-letter queue
            results[name] = exc

    first = threading.Thread(target=deliver, args=("first",))
    first.start()
    assert started.wait(30), "the first delivery never started remediating"
    capsys.readouterr()

    # When the same event is delivered again, concurrently, while the first is in progress
    second = threading.Thread(target=deliver, args=("second",))
    second.start()
    second.join(30)
    duplicate_output = capsys.readouterr().out
    release.set()
    first.join(30)

    # Then the second returns quietly, as ignored, raising nothing
    assert results["second"] == {
        "status": "ignored",
        "stream": STREAM,
        "symptom": "write-throttling",
        "detail": "duplicate delivery in progress",
        "steps": [],
        "plan": None,
    }
    # And it is counted, for the dashboard and the operators
    assert any(DUPLICATE_DELIVERY_METRIC in metric_names(d) for d in emitted(duplicate_output))
    # And the first acts once: one reshard, one applied audit row
    assert not isinstance(results["first"], Exception), results["first"]
    assert results["first"]["status"] == "applied"
    assert aws.shard_count(STREAM) == 4
    assert only([r for r in aws.audit_rows(STREAM) if r["outcome"] == "applied"])["action"] == "reshard"


@pytest.mark.usefixtures("aws")
def test_a_duplicate_after_the_first_finished_gets_the_first_result(aws, handler, context):
    # Given a state change handled to the end
    aws.create_stream(STREAM, 2)
    aws.put_policy(policy(mode="enforce"))
    aws.push_traffic(STREAM, **SATURATED)
    first = handler.lambda_handler(alarm_event(WRITE_ALARM), context)
    # When it is delivered again
    again = handler.lambda_handler(alarm_event(WRITE_ALARM), context)
    # Then the stored result answers, and nothing changes twice
    assert again == first
    assert aws.shard_count(STREAM) == 4
