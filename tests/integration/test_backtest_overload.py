"""Sustained overload, rehearsed: the real core (diagnosis, planner, guardrails, write-ahead, follow-through) driven by
the backtest's simulated stream and CloudWatch alarms (remediator.rehearsal.backtest).

The defect this guards (found by the backtest): IncomingBytes counts only what a stream accepted, so a throttled stream
looks exactly 100% full; with the default target_utilisation (0.6) the diagnosis asked for 2x at most, follow-through
saw nothing more to do, and the write-throttling alarm stayed in ALARM with no new event: a 1-shard stream offered
3.5 MB/s went to 2 shards and stayed throttled for 50 minutes.
"""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime, timedelta

import pytest
from remediator.rehearsal.backtest import BacktestResult, backtest
from remediator.rehearsal.simulator import StreamSetup
from remediator.rehearsal.trace import TraceMinute

from tests.fakes import policy

T0 = datetime(2026, 11, 1, tzinfo=UTC)
WRITE_ALARM = "kinesis-remediator-orders/write-throttling"
RECORD_BYTES = 1_000


def trace(rates: list[float]) -> list[TraceMinute]:
    """Bytes/s offered in each minute, in 1 KB records."""
    return [TraceMinute(T0 + timedelta(minutes=i), rate * 60, rate / RECORD_BYTES * 60) for i, rate in enumerate(rates)]


def last_throttled_minute(result: BacktestResult) -> int:
    return max((m.index for m in result.simulation.minutes if m.write_throttled_records > 0), default=-1)


def enforce_with_defaults() -> object:
    p = policy("orders", mode="enforce")  # only max_shards (16) and the mode set; everything else the default
    assert p.capacity.target_utilisation == 0.6
    return p


def test_a_one_shard_stream_offered_3_5_mb_s_with_the_default_policy_reaches_enough_shards_and_stops_throttling() -> (
    None
):
    # Given the default policy (enforce), 1 shard, and producers offering 3.5 MB/s for 90 minutes
    p = enforce_with_defaults()
    result = backtest(p, trace([3.5e6] * 90), StreamSetup(shards=1))  # type: ignore[arg-type]
    shards = result.simulation.shards_per_minute
    # Then the stream reaches enough shards (>= 4) within 20 minutes and keeps them
    assert min(i for i, n in enumerate(shards) if n >= 4) <= 20
    assert shards[-1] >= 4
    # And throttling stops within 20 minutes and never comes back (it lasted the whole 90 before the fix)
    assert last_throttled_minute(result) < 20
    assert result.simulation.throttled_minutes < 20
    # And it took one alarm state change: the alarm went to ALARM once, then back to OK
    changes = [(c.old, c.new) for c in result.alarm_changes if c.alarm == WRITE_ALARM and c.new in ("ALARM", "OK")]
    assert changes[-2:] == [("OK", "ALARM"), ("ALARM", "OK")]
    assert sum(1 for _, new in changes if new == "ALARM") == 1
    # And the first plan sized from the offered load, said it is an estimate and why; one call went no further than 2x
    applied = [a for a in result.actions if a.status == "applied"]
    assert applied[0].parameters == {"current_shards": 1, "desired_shards": 6, "target_shards": 2}
    assert [a.parameters["target_shards"] for a in applied] == [2, 4, 6]
    body = result.emails[0].body
    assert "accepted plus throttled records give an estimated peak of 3.50 MB/s" in body
    assert "throttled records include the producers' retries, so it may overstate" in body
    assert [c.parameters["TargetShardCount"] for c in result.simulation.actions] == [2, 4, 6]


@pytest.mark.parametrize("offered", [1.5e6, 2.5e6, 3.5e6, 6e6, 9.5e6])
def test_sustained_overload_is_remedied_within_a_bounded_time(offered: float) -> None:
    # Given the default policy, 1 shard, and producers offering `offered` bytes/s for 90 minutes
    result = backtest(enforce_with_defaults(), trace([offered] * 90), StreamSetup(shards=1))  # type: ignore[arg-type]
    # Then the stream ends with enough shards that the load no longer saturates them (saturated_at 0.8) ...
    needed = math.ceil(offered / 1e6 / 0.8)
    assert result.simulation.shards_per_minute[-1] >= needed
    # ... reached one doubling at a time, each about one reshard time plus a settle apart: throttling ends within
    # 8 minutes per doubling from 1 shard to what the load needs
    doublings = math.ceil(math.log2(offered / 1e6))
    assert last_throttled_minute(result) < 8 * doublings + 4
    # And no call was refused, and the daily budget (4) was enough
    assert all(c.error_code is None for c in result.simulation.actions)
    assert result.simulation.scaling_calls <= 4


def test_a_load_that_grows_after_a_reshard_reached_its_target_is_rechecked_on_the_minutes_after_it() -> None:
    # Given 1 shard offered 1.2 MB/s (2 shards are enough), rising to 4 MB/s at minute 9, before the alarm could clear
    rates = [1.2e6] * 9 + [4e6] * 51
    result = backtest(enforce_with_defaults(), trace(rates), StreamSetup(shards=1))  # type: ignore[arg-type]
    applied = [a for a in result.actions if a.status == "applied"]
    # Then the alarm's reshard reaches its target (1 -> 2, all the load needed then)
    assert applied[0].parameters == {"current_shards": 1, "desired_shards": 2, "target_shards": 2}
    # And the write-throttling alarm stays in ALARM throughout: no new event would ever come
    alarm_events = [c for c in result.alarm_changes if c.alarm == WRITE_ALARM and c.new == "ALARM"]
    assert len(alarm_events) == 1
    # And follow-through rechecks once the change can show in the alarm, and, finding the alarm still in ALARM,
    # re-plans from the minutes after the change: 2 -> 4 -> 7 for the 4 MB/s
    assert [a.parameters["target_shards"] for a in applied] == [2, 4, 7]
    assert all(a.symptom == "write-throttling" for a in applied)
    rechecks = [d for d in result.deliveries if d.kind == "follow-up"]
    assert rechecks and rechecks[0].index >= applied[0].index + 6  # SETTLE (2) + the alarm's 4 clean minutes
    # And the recheck read only the minutes after the change settled (SETTLE, 2 min, after it), not the 15 before
    windows = [re.findall(r"Evidence \(CloudWatch, last (\d+) minutes\)", e.body) for e in result.emails]
    assert windows[0] == ["15"]
    assert windows[1] == [str(rechecks[0].index - (applied[0].index + 2))]
    assert int(windows[1][0]) < 15
    # And throttling stops: 17 throttled minutes, where the chain that ended at its target left 58
    assert last_throttled_minute(result) < 25
    assert result.simulation.throttled_minutes <= 20
