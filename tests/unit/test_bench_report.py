"""The bench's table and the default policy's verdicts, from hand-made figures (no simulation, nothing timed)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from remediator.core import pricing
from remediator.policy_files import load_policies
from remediator.rehearsal.trace import TraceMinute

from bench.report import Row, cells, goals, last_change, lower_bound_row, render_table, trace_table
from bench.self_measure import (
    CallCounter,
    by_service,
    count_resources,
    first_error_line,
    fleet_policy,
    mutating,
    percentile,
)

START = datetime(2026, 1, 5, tzinfo=UTC)


def row(scaler: str, throttled: int, lag: int | None, shard_hours: float | None, cost: float, **kw: object) -> Row:
    kind = kw.pop("kind", "autoscaler")
    return Row(scaler, kind, throttled, lag, 0.0, shard_hours, cost, 1, **kw)  # type: ignore[arg-type]


LOWER = Row("lower bound", "reference", 0, None, 0.0, 10.0, 1.0, None, shards=(1, 2, 3))


def test_the_table_aligns_figures_right_and_names_left() -> None:
    # Given two rows of different widths / When rendered
    text = render_table(["scaler", "n"], [["a", "1"], ["longer", "100"]])
    # Then names are left-aligned, figures right-aligned, under a rule as wide as each column
    assert text.splitlines() == ["scaler    n", "------  ---", "a         1", "longer  100"]


def test_cells_show_a_dash_where_a_figure_does_not_apply() -> None:
    # Given on-demand (no shard-hours, no scaling calls) and a provisioned row
    on_demand = Row("on-demand mode", "reference", 3, 0, 12.5, None, 4.2, None)
    provisioned = row("x", 1, 2, 13.0, 0.5)
    # Then on-demand's shard-hours, ratio and calls are "-", and the ratio is against the lower bound
    assert cells(on_demand, LOWER) == ["on-demand mode", "3", "0", "12", "-", "-", "4.20", "-"]
    assert cells(provisioned, LOWER)[4:6] == ["13.0", "1.30"]


def test_the_trace_table_ends_with_the_lower_bound() -> None:
    # Given one row / When the trace's table is rendered / Then the header, the rule, the row and the lower bound
    text = trace_table([row("x", 1, 2, 13.0, 0.5)], LOWER)
    assert text.splitlines()[-1].startswith("lower bound")
    assert len(text.splitlines()) == 4


def test_the_lower_bound_costs_its_shard_hours_and_put_payload_units() -> None:
    # Given two minutes of 1 KB records (1 PUT payload unit each) and the shards they need
    trace = [TraceMinute(START, 60_000_000, 60_000), TraceMinute(START, 120_000_000, 120_000)]
    lower = lower_bound_row(trace, [1, 2])
    # Then its shard-hours are 3 shard-minutes, and its cost those plus 180,000 units
    assert lower.shard_hours == pytest.approx(3 / 60)
    expected = 3 / 60 * pricing.PRICES.shard_hour + 0.18 * pricing.PRICES.put_payload_units_per_million
    assert lower.cost_usd == pytest.approx(expected)
    assert (lower.throttled_minutes, lower.records_lost, lower.lag_minutes) == (0, 0.0, None)
    # And it keeps its shards per minute (the plot and the shard-hours verdict read them)
    assert (lower.shards, lower.throttled_at) == ((1, 2), ())


def verdicts(ours: Row, autoscaler: Row, on_demand: Row) -> dict[str, bool]:
    found = goals(
        ours, [autoscaler], on_demand, LOWER, alarm_delay_minutes=2, reshard_minutes=5, target_utilisation=0.6
    )
    return {g.name: g.met for g in found}


@pytest.mark.parametrize(
    ("ours", "theirs", "met"),
    [
        ((3, 0), (5, 0), True),  # fewer throttled, no lag on either side
        ((5, 0), (5, 0), False),  # as many is not fewer
        ((0, 0), (0, 0), True),  # nothing to beat: met
        ((3, 4), (5, 2), False),  # fewer throttled, more lag
        ((6, 0), (5, 0), False),
    ],
)
def test_fewer_throttled_and_lag_minutes_than_each_autoscaler(
    ours: tuple[int, int], theirs: tuple[int, int], met: bool
) -> None:
    # Given our (throttled, lag) and an autoscaler's / Then the goal is met only when both are fewer (or 0 = 0)
    result = verdicts(
        row("ours", *ours, 12.0, 1.0, kind="ours"), row("them", *theirs, 12.0, 1.0), row("od", 0, 0, None, 9.0)
    )
    assert result["fewer throttled and lag minutes than them"] is met


@pytest.mark.parametrize(("shard_hours", "met"), [(13.0, True), (13.1, False), (9.0, True)])
def test_shard_hours_within_1_3x_the_lower_bound(shard_hours: float, met: bool) -> None:
    # Given our shard-hours against a lower bound of 10 / Then met up to 13.0, not above
    result = verdicts(row("ours", 0, 0, shard_hours, 1.0, kind="ours"), row("t", 0, 0, 1, 1), row("od", 0, 0, None, 9))
    assert result["shard-hours within 1.3x the lower bound"] is met


def test_the_shard_hours_verdict_names_both_peaks_and_last_minutes() -> None:
    # Given ours ending on 7 shards after a peak of 7, against a lower bound peaking at 3 and ending at 3
    ours = row("ours", 0, 0, 20.0, 1.0, kind="ours", shards=(2, 7, 7), scaling_minutes=(0,))
    found = goals(
        ours, [], row("od", 0, 0, None, 9), LOWER, alarm_delay_minutes=2, reshard_minutes=5, target_utilisation=0.6
    )
    (shard_hours,) = [g for g in found if g.name.startswith("shard-hours")]
    # Then it is not met, and says the peaks and the last minutes of both
    assert not shard_hours.met
    assert "peak 7 shards vs the lower bound's 3, last minute 7 vs 3" in shard_hours.why


def test_without_a_reshard_the_shard_hours_verdict_says_the_stream_kept_its_shards() -> None:
    # Given ours never resharding from 4 shards / Then the verdict says the stream kept the shards it started with
    ours = row("ours", 0, 0, 20.0, 1.0, kind="ours", shards=(4, 4, 4))
    found = goals(
        ours, [], row("od", 0, 0, None, 9), LOWER, alarm_delay_minutes=2, reshard_minutes=5, target_utilisation=0.6
    )
    (shard_hours,) = [g for g in found if g.name.startswith("shard-hours")]
    assert "no reshard: the stream kept the 4 shards it started with" in shard_hours.why


@pytest.mark.parametrize(("cost", "met"), [(4.5, True), (4.51, False)])
def test_at_most_half_of_on_demands_cost(cost: float, met: bool) -> None:
    # Given on-demand costing $9 / Then ours is met up to $4.50, not above
    result = verdicts(row("ours", 0, 0, 10, cost, kind="ours"), row("t", 0, 0, 1, 1), row("od", 0, 0, None, 9.0))
    assert result["at most half of on-demand's cost"] is met


def test_a_goal_not_met_says_why_with_the_figures() -> None:
    # Given ours throttling from minute 3, resharding at minute 5 (2 -> 4 shards from minute 8) and still throttled
    # after, against an autoscaler that scaled at minute 2, before any write was throttled
    shards = (2,) * 8 + (4,) * 4
    ours = row("ours", 5, 0, 12.0, 1.0, kind="ours", scaling_minutes=(5,), shards=shards, throttled_at=(3, 4, 5, 9, 10))
    theirs = row("them", 0, 0, 12.0, 1.0, scaling_minutes=(2,))
    found = goals(
        ours,
        [theirs],
        row("od", 0, 0, None, 9),
        LOWER,
        alarm_delay_minutes=2,
        reshard_minutes=5,
        target_utilisation=0.6,
    )
    line = found[0].line()
    # Then the line says NOT met, both figures, and why: who scaled when, and what throttled after our reshard
    assert line.startswith("NOT met: fewer throttled and lag minutes than them: throttled 5 vs 0")
    assert "ours from minute 3, our reshards at minutes 5; them scaled at minutes 2" in line
    assert "them scales on utilisation, before any write is throttled" in line
    assert "2 throttled minutes came after our last reshard took effect (minute 8, 4 shards)" in line


@pytest.mark.parametrize(("shards", "expected"), [((2, 2, 4, 4, 7), 4), ((3, 3), None), ((1, 2, 1), 2)])
def test_the_last_change_is_where_the_final_shard_count_starts(shards: tuple[int, ...], expected: int | None) -> None:
    # Given shards per minute / Then the minute the last count starts (None when it never changed)
    assert last_change(shards) == expected


# --- self-measurement helpers ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("values", "fraction", "expected"),
    [([1.0] * 19 + [9.0], 0.95, 1.0), ([float(n) for n in range(1, 21)], 0.95, 19.0), ([5.0], 0.95, 5.0)],
)
def test_percentile_is_the_nearest_rank(values: list[float], fraction: float, expected: float) -> None:
    # Given latencies / Then p95 is the nearest-rank value (one outlier in 20 does not move it)
    assert percentile(values, fraction) == expected


def test_calls_are_counted_by_service_only_while_recording() -> None:
    # Given botocore's before-call events for three operations, one outside the recording
    class Model:
        def __init__(self, service: str, name: str) -> None:
            self.service_model = type("S", (), {"service_name": service})()
            self.name = name

    counter = CallCounter()
    counter(Model("kinesis", "DescribeStreamSummary"))
    with counter.record() as calls:
        counter(Model("kinesis", "DescribeStreamSummary"))
        counter(Model("kinesis", "UpdateShardCount"))
        counter(Model("sns", "Publish"))
    # Then only the recorded ones count, by service, and the Kinesis mutation is found
    assert by_service(calls) == {"kinesis": 2, "sns": 1}
    assert mutating(calls, "kinesis") == {"UpdateShardCount": 1}


def test_the_fleet_policy_validates(tmp_path: Path) -> None:
    # Given the generated policy for 12 streams / When loaded as `validate` would
    (tmp_path / "fleet.yaml").write_text(fleet_policy(12), encoding="utf-8")
    policies = load_policies([tmp_path])
    # Then it holds 12 streams
    assert len(policies.streams) == 12


def test_resources_are_counted_in_every_stack_and_nested_template(tmp_path: Path) -> None:
    # Given a cloud assembly with two stacks and one nested template larger than both
    import json

    manifest = {
        "artifacts": {
            "A": {"type": "aws:cloudformation:stack", "properties": {"templateFile": "A.template.json"}},
            "B": {"type": "aws:cloudformation:stack", "properties": {"templateFile": "B.template.json"}},
            "T": {"type": "cdk:tree"},
        }
    }
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    for name, n in (("A.template.json", 3), ("B.template.json", 5), ("ANested.nested.template.json", 7)):
        (tmp_path / name).write_text(json.dumps({"Resources": {f"R{i}": {} for i in range(n)}}))
    # Then two stacks and one nested, and the largest is the nested one
    assert count_resources(tmp_path) == (2, 1, "ANested.nested", 7)


@pytest.mark.parametrize(
    ("output", "expected"),
    [
        ('Traceback (most recent call last):\n  File "x", line 1\nValueError: bad thing\n', "ValueError: bad thing"),
        ("100 streams need 505 dashboard widgets\n", "100 streams need 505 dashboard widgets"),
        ("", "(no output)"),
    ],
)
def test_the_first_error_line_is_the_one_that_says_what_failed(output: str, expected: str) -> None:
    # Given a failed synth's stderr / Then the line that says what failed (the exception, or the message)
    assert first_error_line(output) == expected


def test_the_plot_is_a_png_of_every_row(tmp_path: Path) -> None:
    # Given a short trace and two rows of shards
    from bench.plot import shards_plot
    from bench.traces import StandardTrace

    trace = StandardTrace("t", "two minutes", 1, [TraceMinute(START, 6e7, 6e4), TraceMinute(START, 1.2e8, 1.2e5)])
    rows = [row("ours", 0, 0, 1.0, 1.0, kind="ours", shards=(1, 2)), lower_bound_row(trace.minutes, [1, 2])]
    # When drawn / Then a PNG file is written where asked (a folder made if needed)
    path = shards_plot(tmp_path / "plots" / "t.png", trace, rows)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
