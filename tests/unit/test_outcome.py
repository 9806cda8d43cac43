"""Typed outcomes: what a trigger came to as a whole, and the audit row that records it."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import ValidationError
from remediator.core.outcome import AuditEntry, OutcomeStatus, StepResult
from remediator.core.policy import Mode

FAILED, APPLIED, DRY_RUN, BLOCKED = StepResult.FAILED, StepResult.APPLIED, StepResult.DRY_RUN, StepResult.BLOCKED


@pytest.mark.parametrize(
    ("results", "status"),
    [
        pytest.param({FAILED, APPLIED, DRY_RUN, BLOCKED}, OutcomeStatus.FAILED, id="failed beats everything"),
        pytest.param({FAILED, BLOCKED}, OutcomeStatus.FAILED, id="failed beats blocked"),
        pytest.param({APPLIED, DRY_RUN, BLOCKED}, OutcomeStatus.APPLIED, id="applied beats dry-run and blocked"),
        pytest.param({APPLIED, BLOCKED}, OutcomeStatus.APPLIED, id="applied beats blocked"),
        pytest.param({DRY_RUN, BLOCKED}, OutcomeStatus.DRY_RUN, id="dry-run beats blocked"),
        pytest.param({FAILED}, OutcomeStatus.FAILED, id="failed alone"),
        pytest.param({APPLIED}, OutcomeStatus.APPLIED, id="applied alone"),
        pytest.param({DRY_RUN}, OutcomeStatus.DRY_RUN, id="dry-run alone"),
        pytest.param({BLOCKED}, OutcomeStatus.BLOCKED, id="blocked alone"),
        pytest.param(set(), OutcomeStatus.BLOCKED, id="no step result"),
    ],
)
def test_the_most_telling_step_result_is_the_outcome(results: set[StepResult], status: OutcomeStatus) -> None:
    # Given the results of a plan's steps
    # When they are summed up into the trigger's outcome
    # Then a failure wins, then an applied change, then a rehearsal, and otherwise the plan was blocked
    assert OutcomeStatus.of_steps(results) is status


def entry(**changes: Any) -> AuditEntry:
    raw: dict[str, Any] = {
        "at": datetime(2026, 11, 26, 3, 0, tzinfo=UTC),
        "stream": "orders",
        "alarm_name": "kinesis-remediator-orders/write-throttling",
        "symptom": "write-throttling",
        "outcome": "dry-run",
        "reason": "plan e-mailed",
        **changes,
    }
    return AuditEntry.model_validate(raw)


@pytest.mark.parametrize("result", list(StepResult))
def test_every_step_result_is_recorded_as_the_outcome_of_the_same_name(result: StepResult) -> None:
    # A step's result is audited as the outcome status of the same name
    assert entry(outcome=result.value, action="reshard").outcome is OutcomeStatus(result.value)


def test_audit_entry_types_its_fields() -> None:
    recorded = entry(outcome="applied", mode="enforce", action="reshard", parameters={"target_shards": 4})
    assert (recorded.outcome, recorded.mode) == (OutcomeStatus.APPLIED, Mode.ENFORCE)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        pytest.param("outcome", "done", id="unknown outcome"),
        pytest.param("outcome", "Applied", id="outcome in the wrong case"),
        pytest.param("outcome", "", id="empty outcome"),
        pytest.param("mode", "yolo", id="unknown mode"),
    ],
)
def test_audit_entry_rejects_a_value_its_enum_does_not_know(field: str, value: str) -> None:
    # Given an audit row whose outcome (or mode) is not one of the enum's values
    # When it is built
    # Then it is refused, naming the field
    with pytest.raises(ValidationError) as caught:
        entry(**{field: value})
    assert [(e["loc"], e["type"]) for e in caught.value.errors()] == [((field,), "enum")]


def test_audit_entry_is_frozen() -> None:
    with pytest.raises(ValidationError, match="frozen"):
        entry().outcome = OutcomeStatus.FAILED  # type: ignore[misc]
