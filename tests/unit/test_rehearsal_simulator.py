"""The stream model's maths: each AWS limit it enforces, retention loss, on-demand doubling, reshard timing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from remediator.core.evidence import StreamMode, StreamStatus
from remediator.rehearsal.simulator import (
    MinuteStats,
    SimulatedAwsError,
    StreamControl,
    StreamSetup,
    simulate,
)
from remediator.rehearsal.trace import TraceMinute

T0 = datetime(2026, 11, 1, tzinfo=UTC)
MB = 1_000_000


def trace(rows: list[tuple[float, float]], rate: float | None = None) -> list[TraceMinute]:
    """rows: (bytes per second, records per second) per minute."""
    return [TraceMinute(T0 + timedelta(minutes=i), b * 60, r * 60, rate) for i, (b, r) in enumerate(rows)]


def steady(minutes: int, bytes_per_s: float, records_per_s: float, rate: float | None = None) -> list[TraceMinute]:
    return trace([(bytes_per_s, records_per_s)] * minutes, rate)


@pytest.mark.parametrize(
    ("shards", "bytes_per_s", "records_per_s", "throttled_per_minute"),
    [
        # Given one shard (1 MB/s, 1,000 records/s): within both limits nothing is throttled
        (1, 0.9 * MB, 900, 0),
        # bytes over: 2 MB/s on 1 MB/s -> half the records are throttled
        (1, 2 * MB, 1_000, 30_000),
        # records over: 4,000 records/s on 1,000 -> three quarters throttled
        (1, 0.1 * MB, 4_000, 180_000),
        # both over, the tighter one wins (records: 1/4 accepted)
        (1, 2 * MB, 4_000, 180_000),
        # four shards take four times as much
        (4, 4 * MB, 4_000, 0),
        (4, 8 * MB, 1_000, 30_000),
    ],
)
def test_write_limits_per_shard(
    shards: int, bytes_per_s: float, records_per_s: float, throttled_per_minute: float
) -> None:
    # When the trace offers that load for 3 minutes
    result = simulate(steady(3, bytes_per_s, records_per_s), StreamSetup(shards=shards))
    # Then each minute throttles exactly the excess, counted in records
    for minute in result.minutes:
        assert minute.write_throttled_records == pytest.approx(throttled_per_minute)
        assert minute.incoming_records == pytest.approx(records_per_s * 60 - throttled_per_minute)
    assert result.throttled_minutes == (3 if throttled_per_minute else 0)


@pytest.mark.parametrize(
    ("consumers", "shards", "throttled_calls_per_minute"),
    [
        # Given polling consumers calling once a second per shard: 5 calls/s per shard are allowed
        (1, 1, 0),
        (5, 1, 0),
        (7, 1, 120),  # 2 calls/s over, for 60 s
        (7, 2, 240),
    ],
)
def test_get_records_calls_limit(consumers: int, shards: int, throttled_calls_per_minute: float) -> None:
    # When a small load is read
    result = simulate(steady(2, 1_000, 10), StreamSetup(shards=shards, polling_consumers=consumers))
    # Then the calls beyond 5 per shard and second are throttled (ReadProvisionedThroughputExceeded)
    assert result.minutes[0].read_throttled == pytest.approx(throttled_calls_per_minute)


def test_read_bytes_are_shared_by_polling_consumers() -> None:
    # Given 1 shard holding a backlog of 3 MB/s x 10 min written to 4 shards' worth... simpler: 1 shard, 1 MB/s in,
    # 2 polling consumers: each gets 1 MB/s of the shard's 2 MB/s, enough to keep up
    result = simulate(steady(5, 1 * MB, 100), StreamSetup(shards=1, polling_consumers=2))
    assert all(m.iterator_age_ms == 0 for m in result.minutes)
    # When 4 consumers share it, each may read 0.5 MB/s of the 1 MB/s written: they fall behind
    behind = simulate(steady(5, 1 * MB, 100), StreamSetup(shards=1, polling_consumers=4))
    # Then each reads half of what arrives, the backlog grows and calls are throttled for the byte limit
    assert behind.minutes[0].outgoing_bytes == pytest.approx(0.5 * MB * 60)
    assert behind.minutes[-1].backlog_records == pytest.approx(5 * 100 * 60 / 2)
    assert behind.minutes[0].read_throttled > 0


def test_consumer_rate_makes_a_backlog_and_iterator_age() -> None:
    # Given 100 records/s written and a consumer processing 50/s
    result = simulate(steady(4, 10_000, 100), StreamSetup(consumer_records_per_s=50))
    # Then half a minute's records are left each minute, and the oldest unread one ages as the backlog grows
    assert [m.backlog_records for m in result.minutes] == pytest.approx([3_000, 6_000, 9_000, 12_000])
    # minute 0: half of it read, the oldest unread arrived at 0:30 -> 30 s old at 1:00
    assert result.minutes[0].iterator_age_ms == pytest.approx(30_000)
    assert result.minutes[3].iterator_age_ms == pytest.approx(120_000)
    assert result.lag_minutes(60_000) == 3
    # And the trace's own consumer rate wins over the setup's
    fast = simulate(steady(4, 10_000, 100, rate=1_000), StreamSetup(consumer_records_per_s=50))
    assert fast.lag_minutes(1) == 0


def test_no_polling_consumer_gives_no_iterator_age() -> None:
    result = simulate(steady(2, 1_000, 10), StreamSetup(polling_consumers=0))
    assert all(m.iterator_age_ms is None for m in result.minutes)


def test_records_past_retention_are_lost() -> None:
    # Given a stopped consumer and 24 h retention, 10 records a minute for 24 h + 3 min
    minutes = 24 * 60 + 3
    result = simulate(steady(minutes, 100, 10 / 60), StreamSetup(consumer_records_per_s=0))
    # Then nothing is lost for 24 h, then each minute the oldest minute's 10 records expire
    lost = [m.records_lost for m in result.minutes]
    assert sum(lost[: 24 * 60 - 1]) == 0
    assert lost[-3:] == pytest.approx([10, 10, 10])
    assert result.records_lost == pytest.approx(30)
    assert result.minutes[-1].iterator_age_ms == pytest.approx(24 * 3_600_000)


def test_on_demand_absorbs_twice_the_previous_peak() -> None:
    # Given an on-demand stream at 3 MB/s for 20 minutes (within the 4 MB/s a new stream starts with)
    rows = [(3 * MB, 100)] * 20
    # When traffic doubles to 6 MB/s (2x the previous peak): absorbed
    doubled = simulate(trace(rows + [(6 * MB, 100)] * 5), StreamSetup(mode=StreamMode.ON_DEMAND))
    assert doubled.throttled_minutes == 0
    # When it triples to 9 MB/s within 15 minutes: throttled down to 6 MB/s
    tripled = simulate(trace(rows + [(9 * MB, 100)] * 5), StreamSetup(mode=StreamMode.ON_DEMAND))
    assert tripled.minutes[20].incoming_bytes == pytest.approx(6 * MB * 60)
    assert tripled.throttled_minutes == 5


def test_on_demand_capacity_follows_the_peak_after_15_minutes() -> None:
    # Given 9 MB/s offered from the start (above the 4 MB/s start): throttled at 4 MB/s
    result = simulate(steady(40, 9 * MB, 100), StreamSetup(mode=StreamMode.ON_DEMAND))
    caps = [m.write_capacity_bytes / 60 / MB for m in result.minutes]
    # Then capacity stays 4 MB/s for 15 minutes, then doubles the peak accepted 15 minutes before (4 -> 8 -> 16)
    assert caps[0] == pytest.approx(4) and caps[14] == pytest.approx(4)
    assert caps[15] == pytest.approx(8)
    assert caps[30] == pytest.approx(16)
    assert result.minutes[35].write_throttled_records == 0


class Calls:
    """A scaler that makes the given calls after the given minutes and keeps what AWS answered."""

    name = "scripted"

    def __init__(self, script: dict[int, list[tuple[str, object]]]) -> None:
        self.script = script
        self.answers: dict[int, list[str]] = {}

    def observe(self, minute: MinuteStats, stream: StreamControl) -> None:
        for operation, value in self.script.get(minute.index, []):
            try:
                getattr(stream, operation)(value)
                self.answers.setdefault(minute.index, []).append("ok")
            except SimulatedAwsError as error:
                self.answers.setdefault(minute.index, []).append(error.code)


def test_reshard_takes_its_minutes_and_the_stream_is_updating() -> None:
    # Given a reshard 1 -> 2 after minute 0 that takes 3 minutes, and a second call while it runs
    scaler = Calls({0: [("update_shard_count", 2)], 1: [("update_shard_count", 4)]})
    result = simulate(steady(6, 1_000, 10), StreamSetup(reshard_minutes=3), scaler)
    # Then minutes 1-3 are UPDATING with the old shard count, minute 4 has the new one
    assert [m.status for m in result.minutes] == [StreamStatus.ACTIVE] + [StreamStatus.UPDATING] * 3 + [
        StreamStatus.ACTIVE
    ] * 2
    assert result.shards_per_minute == [1, 1, 1, 1, 2, 2]
    # And the call made while UPDATING got ResourceInUseException
    assert scaler.answers[1] == ["ResourceInUseException"]
    assert [c.error_code for c in result.actions] == [None, "ResourceInUseException"]
    assert result.scaling_calls == 1


@pytest.mark.parametrize(
    ("shards", "mode", "target", "code"),
    [
        (2, StreamMode.PROVISIONED, 5, "LimitExceededException"),  # more than 2x (code UNCONFIRMED)
        (4, StreamMode.PROVISIONED, 1, "LimitExceededException"),  # below 1/2
        (4, StreamMode.PROVISIONED, 4, "InvalidArgumentException"),  # no change
        (2, StreamMode.ON_DEMAND, 4, "ValidationException"),  # on-demand streams are not resharded
        (2, StreamMode.PROVISIONED, 4, None),  # exactly 2x: fine
        (4, StreamMode.PROVISIONED, 2, None),  # exactly 1/2: fine
    ],
)
def test_update_shard_count_limits(shards: int, mode: StreamMode, target: int, code: str | None) -> None:
    scaler = Calls({0: [("update_shard_count", target)]})
    simulate(steady(2, 1_000, 10), StreamSetup(shards=shards, mode=mode), scaler)
    assert scaler.answers[0] == ["ok" if code is None else code]


def test_account_shard_quota() -> None:
    scaler = Calls({0: [("update_shard_count", 8)]})
    simulate(steady(2, 1_000, 10), StreamSetup(shards=4, account_shard_limit=6), scaler)
    assert scaler.answers[0] == ["LimitExceededException"]


def test_ten_scalings_per_rolling_24_hours() -> None:
    # Given a reshard every 10 minutes, up and down (reshard takes 1 minute)
    script = {10 * i: [("update_shard_count", 2 if i % 2 == 0 else 1)] for i in range(11)}
    script[24 * 60 + 1] = [("update_shard_count", 2)]  # the 10th call left 1 shard
    scaler = Calls(script)
    simulate(steady(24 * 60 + 3, 100, 1), StreamSetup(reshard_minutes=1), scaler)
    # Then the first 10 are accepted, the 11th within 24 h is refused, and one 24 h after the first is accepted
    assert [scaler.answers[10 * i] for i in range(10)] == [["ok"]] * 10
    assert scaler.answers[100] == ["LimitExceededException"]
    assert scaler.answers[24 * 60 + 1] == ["ok"]


def test_retention_increase_limits_and_effect() -> None:
    scaler = Calls({0: [("increase_retention", 24), ("increase_retention", 9_000), ("increase_retention", 48)]})
    result = simulate(steady(2, 1_000, 10), StreamSetup(), scaler)
    assert scaler.answers[0] == ["InvalidArgumentException", "InvalidArgumentException", "ok"]
    assert result.minutes[1].retention_hours == 48


def test_mode_switch_to_on_demand_keeps_the_shards_capacity() -> None:
    scaler = Calls({0: [("update_stream_mode", StreamMode.ON_DEMAND)]})
    result = simulate(steady(4, 1_000, 10), StreamSetup(shards=8, reshard_minutes=1), scaler)
    assert [m.mode for m in result.minutes] == [StreamMode.PROVISIONED] * 2 + [StreamMode.ON_DEMAND] * 2
    assert result.minutes[3].write_capacity_bytes == pytest.approx(8 * MB * 60)


def test_cost_and_shard_hours() -> None:
    # Given 2 shards for 60 minutes, 1,000 records of 1 KB a minute
    result = simulate(steady(60, 1_000 * 1_000 / 60, 1_000 / 60), StreamSetup(shards=2))
    # Then 2 shard-hours at $0.015 and 60,000 PUT payload units at $0.014 per million
    assert result.shard_hours == pytest.approx(2)
    assert result.cost_items["shard-hours"] == pytest.approx(0.03)
    assert result.cost_items["PUT payload units"] == pytest.approx(60_000 / 1e6 * 0.014)
    on_demand = simulate(steady(60, 1_000 * 1_000 / 60, 1_000 / 60), StreamSetup(mode=StreamMode.ON_DEMAND))
    assert on_demand.cost_items["stream-hours"] == pytest.approx(0.04)


def test_bad_setup_is_refused_with_the_field() -> None:
    with pytest.raises(ValueError, match="shards 0"):
        StreamSetup(shards=0)
    with pytest.raises(ValueError, match="retention_hours"):
        StreamSetup(retention_hours=10)


@settings(max_examples=60, deadline=None)
@given(
    rows=st.lists(
        st.tuples(st.floats(0, 5 * MB), st.floats(0, 5_000), st.one_of(st.none(), st.floats(0, 3_000))),
        min_size=1,
        max_size=40,
    ),
    shards=st.integers(1, 4),
    consumers=st.integers(1, 7),
    retention_minutes_over=st.integers(0, 3),
)
def test_records_are_conserved(
    rows: list[tuple[float, float, float | None]], shards: int, consumers: int, retention_minutes_over: int
) -> None:
    # Given any small trace, stream and consumers
    trace_rows = [TraceMinute(T0 + timedelta(minutes=i), b * 60, r * 60, rate) for i, (b, r, rate) in enumerate(rows)]
    result = simulate(trace_rows, StreamSetup(shards=shards, polling_consumers=consumers))
    for m in result.minutes:
        # Then every offered record is written or throttled, never both, never more
        assert m.incoming_records + m.write_throttled_records == pytest.approx(m.offered_records, rel=1e-9, abs=1e-6)
        assert m.incoming_records <= m.write_capacity_records + 1e-6
        assert m.backlog_records >= 0 and (m.iterator_age_ms or 0) >= 0
    # And every written record is read, still waiting, or lost
    written = sum(m.incoming_records for m in result.minutes)
    read = sum(m.outgoing_records for m in result.minutes)
    assert written == pytest.approx(read + result.minutes[-1].backlog_records + result.records_lost, rel=1e-6, abs=1e-3)
