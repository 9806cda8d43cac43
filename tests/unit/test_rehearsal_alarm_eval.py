"""CloudWatch's alarm rules on hand-made series: AWS's published missing-data tables row by row, M of N, period
aggregation by statistic, and the metric math our symptoms use."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from remediator.core.metrics import Comparison, Metric, MetricMath, MissingData
from remediator.core.symptoms.base import AlarmSpec
from remediator.rehearsal.alarm_eval import (
    ALARM,
    INSUFFICIENT_DATA,
    OK,
    AlarmEvaluator,
    UnknownExpression,
    evaluate_expression,
    next_state,
)
from remediator.rehearsal.simulator import StreamSetup, simulate
from remediator.rehearsal.trace import TraceMinute

RETAIN = "retain"
MODES = (MissingData.MISSING, MissingData.IGNORE, MissingData.BREACHING, MissingData.NOT_BREACHING)


def points(notation: str) -> list[bool | None]:
    return [{"0": False, "X": True, "-": None}[token] for token in notation.split()]


# AWS's two tables ("Configuring how CloudWatch alarms treat missing data"): data points (newest on the right),
# then the state for MISSING, IGNORE, BREACHING, NOT BREACHING.
TABLE_3_OF_3 = [
    ("0 - X - X", OK, OK, OK, OK),
    ("0 - - - -", OK, OK, OK, OK),
    ("- - - - -", INSUFFICIENT_DATA, RETAIN, ALARM, OK),
    ("0 X X - X", ALARM, ALARM, ALARM, ALARM),
    ("- - X - -", ALARM, RETAIN, ALARM, OK),
]
TABLE_2_OF_3 = [
    ("0 - X - X", ALARM, ALARM, ALARM, ALARM),
    ("0 0 X 0 X", ALARM, ALARM, ALARM, ALARM),
    ("0 - X - -", OK, OK, ALARM, OK),
    ("- - - - 0", OK, OK, ALARM, OK),
    ("- - - X -", ALARM, RETAIN, ALARM, OK),
]


@pytest.mark.parametrize(("m", "row"), [(3, row) for row in TABLE_3_OF_3] + [(2, row) for row in TABLE_2_OF_3])
@pytest.mark.parametrize("current", [OK, ALARM, INSUFFICIENT_DATA])
def test_published_missing_data_tables(m: int, row: tuple[str, str, str, str, str], current: str) -> None:
    # Given AWS's example range of 5 datapoints, 3 evaluation periods, M of them to alarm
    notation, *expected = row
    for mode, want in zip(MODES, expected, strict=True):
        # When the alarm is evaluated from any current state
        got = next_state(
            points(notation), evaluation_periods=3, datapoints_to_alarm=m, missing_data=mode, current=current
        )
        # Then the state is the table's
        assert got == (current if want == RETAIN else want), f"{notation} {mode} from {current}"


@pytest.mark.parametrize(
    ("notation", "expected"),
    [
        ("- - - - X", OK),  # AWS: not yet, the next point may be fine
        ("- - - X -", OK),
        ("- - - X 0", OK),
        ("X - - - -", OK),  # the breach aged out of the last N periods
        ("X X X X X", ALARM),
        ("X X X X 0", OK),  # 3 of 3: the newest is fine
    ],
)
def test_premature_alarm_rule(notation: str, expected: str) -> None:
    got = next_state(
        points(notation), evaluation_periods=3, datapoints_to_alarm=3, missing_data=MissingData.MISSING, current=OK
    )
    assert got == expected


T0 = datetime(2026, 11, 1, tzinfo=UTC)  # a multiple of 5 minutes since the epoch


def minutes_of(rows: list[tuple[float, float]], shards: int = 1) -> list:
    trace = [TraceMinute(T0 + timedelta(minutes=i), b, r) for i, (b, r) in enumerate(rows)]
    return simulate(trace, StreamSetup(shards=shards)).minutes


def run(spec: AlarmSpec, rows: list[tuple[float, float]], shards: int = 1) -> list[tuple[int, str, str]]:
    evaluator = AlarmEvaluator({"a": spec}, "orders")
    changes = []
    for minute in minutes_of(rows, shards):
        changes += evaluator.advance(minute, minute.timestamp + timedelta(minutes=1))
    return [(c.index, c.old, c.new) for c in changes]


THROTTLED = Metric("AWS/Kinesis", "WriteProvisionedThroughputExceeded", "Sum", (("StreamName", "orders"),))


def spec(
    metric: Metric | MetricMath,
    threshold: float,
    n: int,
    m: int,
    missing: MissingData,
    comparison=Comparison.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
) -> AlarmSpec:
    return AlarmSpec(metric, threshold, comparison, n, m, missing, "test")


def test_m_of_n_on_simulated_throttling() -> None:
    # Given 2 of 5 minutes throttled to alarm; writes of 2 MB/s on 1 shard at minutes 3 and 5 only
    quiet, over = (60e6 * 0.5, 100.0), (120e6, 100.0)
    rows = [quiet, quiet, quiet, over, quiet, over, quiet, quiet, quiet, quiet, quiet, quiet]
    changes = run(spec(THROTTLED, 1, 5, 2, MissingData.NOT_BREACHING), rows)
    # Then OK at the first minute, ALARM once the second throttled minute closes, OK once both left the 5 periods
    assert changes == [(0, INSUFFICIENT_DATA, OK), (5, OK, ALARM), (8, ALARM, OK)]


def test_period_aggregation_by_statistic() -> None:
    # Given a 5-minute Sum alarm on IncomingRecords: 100 records a minute sum to 500 per period
    records = Metric("AWS/Kinesis", "IncomingRecords", "Sum", (("StreamName", "orders"),), 300)
    rows = [(1_000.0, 100.0)] * 10
    assert run(spec(records, 500, 1, 1, MissingData.MISSING), rows) == [(4, INSUFFICIENT_DATA, ALARM)]
    assert run(spec(records, 501, 1, 1, MissingData.MISSING), rows) == [(4, INSUFFICIENT_DATA, OK)]
    # And a Maximum alarm takes the period's largest minute
    age = Metric("AWS/Kinesis", "GetRecords.IteratorAgeMilliseconds", "Maximum", (("StreamName", "orders"),), 300)
    assert run(spec(age, 0, 1, 1, MissingData.MISSING), rows) == [(4, INSUFFICIENT_DATA, ALARM)]


def test_missing_minutes_follow_the_treatment() -> None:
    # Given no writes at all: Put metrics have no datapoint
    rows = [(0.0, 0.0)] * 6
    for missing, expected in [
        (MissingData.MISSING, [(0, INSUFFICIENT_DATA, INSUFFICIENT_DATA)][:0]),
        (MissingData.BREACHING, [(0, INSUFFICIENT_DATA, ALARM)]),
        (MissingData.NOT_BREACHING, [(0, INSUFFICIENT_DATA, OK)]),
        (MissingData.IGNORE, []),
    ]:
        assert run(spec(THROTTLED, 1, 3, 3, missing), rows) == expected, missing


def test_metric_math_functions_our_symptoms_use() -> None:
    stalled = "IF(FILL(incoming, 0) > 0 AND (FILL(reads, 0)) == 0, 1, 0)"
    assert evaluate_expression(stalled, {"incoming": 10.0, "reads": None}) == 1
    assert evaluate_expression(stalled, {"incoming": 10.0, "reads": 3.0}) == 0
    assert evaluate_expression(stalled, {"incoming": None, "reads": None}) == 0
    failed = "IF(FILL(total, 0) > 0, 100 * FILL(failed, 0) / FILL(total, 0), 0)"
    assert evaluate_expression(failed, {"failed": 5.0, "total": 200.0}) == pytest.approx(2.5)
    assert evaluate_expression(failed, {"failed": None, "total": None}) == 0
    used = "MAX([bytes / (300000000 * shards), records / (300000 * shards)])"
    assert evaluate_expression(used, {"bytes": 150e6, "records": 30_000.0, "shards": 2.0}) == pytest.approx(0.25)
    assert evaluate_expression(used, {"bytes": None, "records": None, "shards": 2.0}) is None
    assert evaluate_expression("100 * success", {"success": 0.5}) == 50
    assert evaluate_expression("FILL(writes, 0) + FILL(reads, 0)", {"writes": 2.0, "reads": None}) == 2
    assert evaluate_expression("a / b", {"a": 1.0, "b": 0.0}) is None  # no datapoint


@pytest.mark.parametrize("expression", ["RATE(m)", "ANOMALY_DETECTION_BAND(m)", "MAX(m)", "m +", "SUM([m])"])
def test_unknown_metric_math_fails_loudly(expression: str) -> None:
    with pytest.raises(UnknownExpression):
        evaluate_expression(expression, {"m": 1.0})


def test_alarms_on_metrics_the_model_lacks_are_not_simulated() -> None:
    lambda_errors = Metric("AWS/Lambda", "Errors", "Sum", (("FunctionName", "f"),))
    latency = Metric("AWS/Kinesis", "GetRecords.Latency", "Average", (("StreamName", "orders"),))
    other_stream = Metric("AWS/Kinesis", "IncomingBytes", "Sum", (("StreamName", "payments"),))
    evaluator = AlarmEvaluator(
        {
            "errors": spec(lambda_errors, 1, 1, 1, MissingData.NOT_BREACHING),
            "latency": spec(latency, 1, 1, 1, MissingData.NOT_BREACHING),
            "elsewhere": spec(other_stream, 1, 1, 1, MissingData.NOT_BREACHING),
            "throttled": spec(THROTTLED, 1, 1, 1, MissingData.NOT_BREACHING),
        },
        "orders",
    )
    assert sorted(evaluator.not_simulated) == ["elsewhere", "errors", "latency"]
    assert evaluator.simulated == ["throttled"]


@settings(max_examples=200, deadline=None)
@given(
    window=st.lists(st.sampled_from([True, False, None]), min_size=3, max_size=7),
    n=st.integers(1, 5),
    m_share=st.integers(1, 5),
    current=st.sampled_from([OK, ALARM, INSUFFICIENT_DATA]),
)
def test_enough_real_datapoints_make_the_missing_data_setting_irrelevant(
    window: list[bool | None], n: int, m_share: int, current: str
) -> None:
    # Given an evaluation range holding at least N real datapoints (AWS: "the value you set for how to treat
    # missing data is not needed and is ignored")
    m = min(m_share, n)
    assume(sum(point is not None for point in window) >= n)
    states = {
        next_state(window, evaluation_periods=n, datapoints_to_alarm=m, missing_data=mode, current=current)
        for mode in MODES
    }
    # Then every treatment gives the same state: ALARM exactly when M of the N newest real ones breach
    newest = [point for point in window if point is not None][-n:]
    assert states == {ALARM if sum(newest) >= m else OK}
