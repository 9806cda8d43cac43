"""Scale-in through a night, rehearsed: the real core (diagnosis, planner, guardrails, follow-through) driven by the
backtest's simulated stream and CloudWatch alarms (remediator.rehearsal.backtest).

The defect this guards (found by the benchmark): the under-utilised alarm looks back an hour, the diagnosis judged the
peak of the last two; on an evening's falling load the hour before the alarm's is always busier, so every alarm was
answered "no shard to remove", the alarm stayed in ALARM all night, never fired again, and the opt-in scale-in removed
no shard on any trace. And a "not yet" (the stabilisation window not over) ended the chain the same way.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from typing import Any

import pytest
from remediator.rehearsal.backtest import BacktestAction, BacktestResult, backtest
from remediator.rehearsal.simulator import StreamSetup
from remediator.rehearsal.trace import TraceMinute

from bench.traces import diurnal
from tests.fakes import policy

DAY = 1440
UNDER_ALARM = "kinesis-remediator-orders/under-utilised"


def enforce(**reshard: Any) -> Any:
    """The default policy in enforce, with the bench's ceiling (64) and the given reshard settings."""
    return policy("orders", mode="enforce", reshard={"max_shards": 64} | reshard)


def scale_ins(result: BacktestResult) -> list[BacktestAction]:
    return [
        a
        for a in result.actions
        if a.status == "applied" and a.parameters["target_shards"] < a.parameters["current_shards"]
    ]


def throttled(result: BacktestResult, start: int, end: int) -> int:
    return sum(1 for m in result.simulation.minutes[start:end] if m.write_throttled_records > 0)


@pytest.fixture(scope="module")
def nights() -> tuple[BacktestResult, BacktestResult]:
    """The bench's diurnal trace (two days, 0.8 MB/s at 02:00 to 5.6 MB/s at 14:00, 2 shards at the start), replayed
    with the default policy without and with scale-in."""
    trace = diurnal()
    setup = StreamSetup(shards=trace.initial_shards)
    return backtest(enforce(), trace.minutes, setup), backtest(enforce(scale_in=True), trace.minutes, setup)


def test_a_diurnal_load_gives_shards_back_at_night_within_every_scale_in_rule(nights) -> None:
    # Given the diurnal trace, replayed with scale_in: true
    _, result = nights
    found = scale_ins(result)
    # Then shards are given back on each of the two nights (there was none before the fix)
    assert {a.index // DAY for a in found} == {0, 1}
    # And each scale-in is at night, once the day's load has fallen (21:00 to 06:00)
    assert all(a.index % DAY >= 21 * 60 or a.index % DAY < 6 * 60 for a in found)
    applied = [a for a in result.actions if a.status == "applied"]
    for step in found:
        current, target = step.parameters["current_shards"], step.parameters["target_shards"]
        # ... at most halving per call, never below min_shards (1)
        assert math.ceil(current / 2) <= target < current
        assert target >= 1
        # ... after a calm stabilisation window: no reshard and no throttled write in the 60 minutes before it
        assert all(not step.index - 60 <= a.index < step.index for a in applied)
        assert throttled(result, step.index - 60, step.index) == 0
        # ... keeping 2 of AWS's 10 daily scalings for a scale-up, and within the policy's daily budget (4)
        assert sum(1 for a in applied if step.index - DAY < a.index <= step.index) <= 4
    # And every AWS call was accepted
    assert all(c.error_code is None for c in result.simulation.actions)


def test_the_diagnosis_agrees_with_the_alarm_the_first_evening(nights) -> None:
    # Given the diurnal trace with scale_in: true
    _, result = nights
    # When the under-utilised alarm first goes to ALARM
    first = next(c for c in result.alarm_changes if c.alarm == UNDER_ALARM and c.new == "ALARM")
    # Then that very alarm removes shards (before the fix: "no shard to remove", then nothing all night)
    delivery = next(d for d in result.deliveries if d.alarm == UNDER_ALARM and d.index == first.index)
    assert delivery.status == "applied"
    assert "below 30% in 12 of the 12 5-minute periods of the last 60 minutes" in delivery.detail


def test_scale_in_costs_fewer_shard_hours_and_scales_up_again_by_day(nights) -> None:
    # Given the diurnal trace replayed without and with scale-in
    kept, given_back = nights
    shards = given_back.simulation.shards_per_minute
    # Then scale-in saves shard-hours (296 -> 245 today: more than 10 %)
    assert given_back.simulation.shard_hours < 0.9 * kept.simulation.shard_hours
    # And the nights have fewer shards than the days
    assert min(shards[DAY : DAY + 6 * 60]) < max(shards[:DAY])
    # And by the second day's peak (14:00) the stream is back to enough shards for 5.6 MB/s
    assert shards[DAY + 14 * 60] >= 6
    # And the first day, before any night, is the same with or without scale-in
    assert kept.simulation.shards_per_minute[: 18 * 60] == shards[: 18 * 60]
    # And scale-in throttles no write at night, and climbing back by day throttles no more than the policy without
    # scale-in did climbing from its starting 2 shards on the first morning (today 5 minutes against 8)
    assert throttled(given_back, 18 * 60, DAY + 6 * 60) == 0
    assert throttled(given_back, DAY, 2 * DAY) <= throttled(kept, 0, DAY)


def test_the_policy_without_scale_in_never_removes_a_shard(nights) -> None:
    # Given the same trace with the default (scale_in false)
    kept, _ = nights
    # Then no shard is removed (the scale-in is planned and blocked: opt-in)
    assert scale_ins(kept) == []
    shards = kept.simulation.shards_per_minute
    assert all(shards[i + 1] >= shards[i] for i in range(len(shards) - 1))


T0 = datetime(2026, 11, 1, tzinfo=UTC)


def trace(rates: list[float]) -> list[TraceMinute]:
    return [TraceMinute(T0 + timedelta(minutes=i), r * 60, r / 1_000 * 60) for i, r in enumerate(rates)]


def test_an_alarm_that_stays_in_alarm_after_a_not_yet_is_looked_at_again() -> None:
    # Given 1 shard offered 1.5 MB/s for 20 minutes (a scale-up to 2), then 0.1 MB/s for 6 hours, and a policy whose
    # stabilisation window is 2 hours
    p = enforce(scale_in=True, stabilisation_minutes=120)
    result = backtest(p, trace([1.5e6] * 20 + [0.1e6] * 360), StreamSetup(shards=1))
    # When the under-utilised alarm fires an hour after the load fell, while the window since the scale-up runs
    changes = [(c.index, c.new) for c in result.alarm_changes if c.alarm == UNDER_ALARM and c.new == "ALARM"]
    assert len(changes) == 1  # it goes to ALARM once and stays there: no new event ever comes
    fired = changes[0][0]
    first = next(a for a in result.actions if a.symptom == "under-utilised")
    assert (first.index, first.status) == (fired, "blocked")
    assert "stabilisation-window: not calm for 120 minutes" in first.reason
    # Then follow-through looks again an hour later, while the alarm stays in ALARM, and the window now over, the
    # scale-in is applied: 2 -> 1
    (applied,) = scale_ins(result)
    assert applied.index == fired + 61
    assert applied.parameters == {"current_shards": 2, "desired_shards": 1, "target_shards": 1}
    assert result.simulation.shards_per_minute[-1] == 1
    # And at one shard the answer is final: no more looks
    looks = [d for d in result.deliveries if d.kind == "follow-up" and d.alarm == UNDER_ALARM]
    assert [d.status for d in looks] == ["applied", "no-action"]
    assert "the fewest a stream can have" in looks[-1].detail


def test_without_scale_in_a_blocked_scale_in_is_not_looked_at_again() -> None:
    # Given the same load, and the policy's default: scale-in not opted in
    result = backtest(enforce(stabilisation_minutes=120), trace([1.5e6] * 20 + [0.1e6] * 360), StreamSetup(shards=1))
    # Then the scale-in is planned and blocked once, and never looked at again (opt-in is not "not yet")
    under = [a for a in result.actions if a.symptom == "under-utilised"]
    assert [a.status for a in under] == ["blocked"]
    assert [d for d in result.deliveries if d.kind == "follow-up" and d.alarm == UNDER_ALARM] == []
    assert result.simulation.shards_per_minute[-1] == 2


def test_a_night_of_not_yet_is_looked_at_every_hour_e_mailed_once_and_bounded() -> None:
    # Given 2 shards whose 5-minute periods stay at 25 % (0.4 MB/s, every fifth minute 0.9 MB/s) for 15 hours: the
    # alarm's hour is under-utilised, but the busiest minute needs both shards at 60 % (0.9 / 0.6 = 1.5 -> 2)
    rates = [0.9e6 if i % 5 == 4 else 0.4e6 for i in range(15 * 60)]
    result = backtest(enforce(scale_in=True), trace(rates), StreamSetup(shards=2))
    fired = [c.index for c in result.alarm_changes if c.alarm == UNDER_ALARM and c.new == "ALARM"]
    assert len(fired) == 1  # it goes to ALARM once and stays there all along
    # Then the alarm's own trigger answers "not yet" and each follow-up looks again an hour later: no shard removed
    looks = [d for d in result.deliveries if d.alarm == UNDER_ALARM and d.kind in ("alarm", "follow-up")]
    assert all(d.status == "no-action" and "no shard to remove yet" in d.detail for d in looks)
    assert [b.index - a.index for a, b in pairwise(looks)] == [61] * (len(looks) - 1)
    assert scale_ins(result) == []
    # And only the alarm's own "not yet" is e-mailed; the looks are audited, not mailed every hour
    assert len([e for e in result.emails if "under-utilised" in e.subject or "no action" in e.subject]) == 1
    assert all("audited, not e-mailed" in d.detail for d in looks[1:])
    # And the chain ends within its bounds: no look later than 12 h after the alarm
    assert looks[-1].index - fired[0] <= 12 * 60 < looks[-1].index + 61 - fired[0]
    assert len(looks) - 1 <= 16
