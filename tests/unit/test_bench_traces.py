"""The bench's standard traces: deterministic, one row per minute, and shaped as bench/traces.py documents."""

from __future__ import annotations

import itertools
from datetime import UTC, timedelta

import pytest
from remediator.core import limits

from bench import traces
from bench.traces import StandardTrace, standard_traces

EXPECTED_LENGTHS = {
    "steady": 240,
    "diurnal": 2880,
    "ramp": 240,
    "spike-3x": 240,
    "flash-crowd-8x": 240,
    "consumer-slowing": 240,
    "small-records": 240,
}


def mb_per_s(trace: StandardTrace, minute: int) -> float:
    return trace.minutes[minute].incoming_bytes / 60 / 1_000_000


def by_name() -> dict[str, StandardTrace]:
    return {t.name: t for t in standard_traces()}


def test_the_seven_traces_have_their_documented_lengths() -> None:
    # Given the standard traces / Then they are the seven the issue names, each as long as documented
    assert {t.name: len(t.minutes) for t in standard_traces()} == EXPECTED_LENGTHS


def test_two_builds_give_the_same_rows() -> None:
    # Given the traces built twice / Then every row is the same (seeded noise): two bench runs compare
    assert [t.minutes for t in standard_traces()] == [t.minutes for t in standard_traces()]


@pytest.mark.parametrize("trace", standard_traces(), ids=lambda t: t.name)
def test_rows_are_consecutive_utc_minutes_with_noise_within_three_percent(trace: StandardTrace) -> None:
    # Given a trace / Then its rows start at the documented minute, one minute apart, in UTC
    stamps = [m.timestamp for m in trace.minutes]
    assert stamps[0] == traces.START
    assert all(b - a == timedelta(minutes=1) for a, b in itertools.pairwise(stamps))
    assert all(s.tzinfo == UTC for s in stamps)
    # And nothing is negative, and the first shards are a valid count
    assert all(m.incoming_bytes >= 0 and m.incoming_records >= 0 for m in trace.minutes)
    assert trace.initial_shards >= 1


@pytest.mark.parametrize(
    ("name", "minute", "low", "high"),
    [
        ("steady", 0, 2.5 * 0.97, 2.5 * 1.03),
        ("steady", 239, 2.5 * 0.97, 2.5 * 1.03),
        ("diurnal", 120, 0.8 * 0.97, 0.8 * 1.03),  # 02:00, the trough
        ("diurnal", 840, 5.6 * 0.97, 5.6 * 1.03),  # 14:00, the peak
        ("ramp", 0, 0.97, 1.03),
        ("ramp", 239, 7 * 0.97, 7 * 1.03),
        ("spike-3x", 59, 2 * 0.97, 2 * 1.03),
        ("spike-3x", 70, 6 * 0.97, 6 * 1.03),  # 3x, reached 10 minutes after it starts
        ("spike-3x", 200, 2 * 0.97, 2 * 1.03),
        ("flash-crowd-8x", 59, 0.97, 1.03),
        ("flash-crowd-8x", 62, 8 * 0.97, 8 * 1.03),  # 8x within 2 minutes
        ("flash-crowd-8x", 200, 0.97, 1.03),
    ],
)
def test_the_load_has_the_documented_shape(name: str, minute: int, low: float, high: float) -> None:
    # Given a trace and a minute / Then the offered MB/s is the documented value, give or take the noise
    assert low <= mb_per_s(by_name()[name], minute) <= high


def test_the_spike_is_three_times_the_base_within_ten_minutes() -> None:
    # Given the spike trace / When its load is compared 10 minutes apart at the start of the spike
    spike = by_name()["spike-3x"]
    # Then it triples (noise aside) within those 10 minutes
    assert mb_per_s(spike, 70) / mb_per_s(spike, 60) == pytest.approx(3, rel=0.07)


def test_consumers_slow_down_from_faster_to_slower_than_the_writes() -> None:
    # Given the consumer-slowing trace
    trace = by_name()["consumer-slowing"]
    rates = [m.consumer_records_per_s for m in trace.minutes]
    assert all(r is not None for r in rates)
    records_per_s = trace.minutes[0].incoming_records / 60
    # Then the consumers keep up at first, fall monotonically, and end slower than the producers write
    assert rates[0] == 4000 and rates[-1] == 1500
    assert all(a >= b for a, b in itertools.pairwise(rates))  # type: ignore[operator]
    assert rates[0] > records_per_s > rates[-1]  # type: ignore[operator]
    # And only this trace limits the consumers
    assert [t.name for t in standard_traces() if t.consumer_limited] == ["consumer-slowing"]


def test_small_records_bind_on_records_before_bytes() -> None:
    # Given the small-records trace at its peak
    peak = by_name()["small-records"].minutes[-1]
    records_need = peak.incoming_records / 60 / limits.SHARD_WRITE_RECORDS_PER_SECOND
    bytes_need = peak.incoming_bytes / 60 / limits.SHARD_WRITE_BYTES_PER_SECOND
    # Then it needs more shards for its records than for its bytes: the 1,000 records/s limit binds first
    assert records_need > 4 * bytes_need
    assert records_need == pytest.approx(5, rel=0.04)
