"""The bench's baselines follow their published rules, and the lower bound is exactly the shards needed."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st
from remediator.core import limits
from remediator.core.evidence import StreamMode, StreamStatus
from remediator.rehearsal.simulator import MinuteStats, SimulatedAwsError, StreamView
from remediator.rehearsal.trace import TraceMinute

from bench import baselines
from bench.baselines import (
    ApplicationAutoScaling,
    AwsSamplesAutoscaler,
    KinesisScalingUtils,
    ScalingUtilsConfig,
    alarm_breaches,
    lower_bound,
    scaling_utils_direction,
    scaling_utils_new_count,
    scaling_utils_vote,
    shards_needed,
    usage_factor,
)

START = datetime(2026, 1, 5, tzinfo=UTC)


@dataclass
class FakeStream:
    """StreamControl for one scaler: records UpdateShardCount targets, applies them at once, can refuse them."""

    shards: int
    status: StreamStatus = StreamStatus.ACTIVE
    refuse: str | None = None
    calls: list[int] = field(default_factory=list)

    def describe(self) -> StreamView:
        return StreamView(self.shards, self.status, StreamMode.PROVISIONED, 24, START)

    def update_shard_count(self, target: int) -> None:
        self.calls.append(target)
        if self.refuse:
            raise SimulatedAwsError(self.refuse, "refused by the test")
        self.shards = target

    def update_stream_mode(self, mode: StreamMode) -> None:
        raise AssertionError("no baseline switches modes")

    def increase_retention(self, hours: int) -> None:
        raise AssertionError("no baseline changes the retention")


def minute(index: int, shards: int, utilisation: float, *, record_bytes: float = 1000) -> MinuteStats:
    """A minute whose writes use `utilisation` of `shards` shards' bytes (records of record_bytes each)."""
    written = utilisation * shards * limits.SHARD_WRITE_BYTES_PER_SECOND * 60
    return MinuteStats(
        index=index,
        timestamp=START + timedelta(minutes=index),
        shards=shards,
        status=StreamStatus.ACTIVE,
        mode=StreamMode.PROVISIONED,
        offered_bytes=written,
        offered_records=written / record_bytes,
        incoming_bytes=written,
        incoming_records=written / record_bytes,
        write_throttled_records=0,
        read_throttled=0,
        outgoing_records=written / record_bytes,
        iterator_age_ms=0,
        backlog_records=0,
        records_lost=0,
    )


def run(scaler: object, stream: FakeStream, utilisations: list[float], **kw: float) -> None:
    for i, u in enumerate(utilisations):
        scaler.observe(minute(i, stream.shards, u, **kw), stream)  # type: ignore[attr-defined]


# --- kinesis-scaling-utils --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("current", "direction", "expected"),
    [
        (1, "UP", 2),  # ceil(1 x 1.5)
        (2, "UP", 3),
        (75, "UP", 113),  # README: ceil(1.5 x 75)
        (60, "UP", 64),  # capped at max_shards
        (75, "DOWN", 57),  # 75 - floor(0.25 x 75) = 75 - 18
        (4, "DOWN", 3),
        (1, "DOWN", 1),  # never below one
    ],
)
def test_scaling_utils_new_shard_count_follows_get_new_shard_count(current: int, direction: str, expected: int) -> None:
    # Given the README's scale-percentage example (up 150 %, down 25 %) / Then the new count is getNewShardCount's
    assert scaling_utils_new_count(current, direction, ScalingUtilsConfig()) == min(expected, baselines.MAX_SHARDS)


@pytest.mark.parametrize(
    ("put", "get", "expected"),
    [
        ("DOWN", "DOWN", "DOWN"),
        ("NONE", "DOWN", "NONE"),
        ("UP", "DOWN", "UP"),
        ("DOWN", "NONE", "NONE"),
        ("NONE", "NONE", "NONE"),
        ("UP", "NONE", "UP"),
        ("DOWN", "UP", "UP"),
        ("NONE", "UP", "UP"),
        ("UP", "UP", "UP"),
    ],
)
def test_scaling_utils_combines_put_and_get_as_the_readme_table(put: str, get: str, expected: str) -> None:
    # Given a PUT and a GET vote / Then the README's table decides
    assert scaling_utils_direction(put, get) == expected


@pytest.mark.parametrize(
    ("samples", "expected"),
    [
        ([0.8] * 5 + [0.5] * 10, "UP"),  # 5 high of 15: scaleAfterMins 5
        ([0.8] * 4 + [0.5] * 11, "NONE"),
        ([0.75] * 15, "NONE"),  # above 75 %, not at it
        ([0.1] * 15, "DOWN"),  # 15 low: scaleAfterMins 15
        ([0.1] * 14 + [0.5], "NONE"),
        ([0.1] * 10, "DOWN"),  # five minutes without a datapoint count as low
    ],
)
def test_scaling_utils_votes_on_samples_held_for_scale_after_mins(samples: list[float], expected: str) -> None:
    # Given one metric's per-minute utilisations over the 15-minute window / Then the vote
    assert scaling_utils_vote(samples, ScalingUtilsConfig(), window=15) == expected


def test_scaling_utils_scales_up_at_its_check_and_waits_out_the_cool_off() -> None:
    # Given kinesis-scaling-utils on a 2-shard stream written at 90 % for 40 minutes
    stream = FakeStream(2)
    run(KinesisScalingUtils(), stream, [0.9] * 40)
    # Then it scales up at the first check with 5 high minutes (minute 4, the 5th), x1.5 each time, and
    # again only after its 15-minute cool-off (checks every 5 minutes: minutes 19 and 34)
    assert stream.calls == [3, 5, 8]


def test_scaling_utils_does_nothing_while_the_stream_is_updating() -> None:
    # Given a stream that stays UPDATING / When the load is high / Then the monitor waits, as StreamScaler does
    stream = FakeStream(2, status=StreamStatus.UPDATING)
    run(KinesisScalingUtils(), stream, [0.9] * 30)
    assert stream.calls == []


# --- aws-samples/kinesis-auto-scaling -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("bytes_sum", "records_sum", "shards", "expected"),
    [
        (1024 * 1024 * 300, 0, 1, 1.0),  # a full shard of MiB over 5 minutes
        (1024 * 1024 * 300, 0, 2, 0.5),
        (0, 1000 * 300 * 3, 2, 1.5),  # records win when they are the higher factor
        (0, 0, 4, 0.0),
    ],
)
def test_usage_factor_is_the_samples_metric_math(
    bytes_sum: float, records_sum: float, shards: int, expected: float
) -> None:
    # Given 5-minute Sums and shards / Then MAX(bytes / (1024*1024*60*5*s1), records / (1000*60*5*s1))
    assert usage_factor(bytes_sum, records_sum, shards) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("values", "below", "evaluation", "datapoints", "expected"),
    [
        ([0.8] * 5, False, 5, 5, True),
        ([0.8] * 4 + [0.7], False, 5, 5, False),
        ([0.75] * 5, False, 5, 5, True),  # GreaterThanOrEqualToThreshold
        ([0.8] * 4, False, 5, 5, False),  # not enough datapoints yet
        ([0.1] * 57 + [0.5] * 3, True, 60, 57, True),
        ([0.1] * 56 + [0.5] * 4, True, 60, 57, False),
    ],
)
def test_alarm_breaches_m_out_of_n(
    values: list[float], below: bool, evaluation: int, datapoints: int, expected: bool
) -> None:
    # Given a series of datapoints / Then the alarm breaches when M of the last N do
    assert (
        alarm_breaches(values, 0.75 if not below else 0.25, below=below, evaluation=evaluation, datapoints=datapoints)
        is expected
    )


def test_aws_samples_autoscaler_doubles_after_five_high_five_minute_periods() -> None:
    # Given the aws-samples autoscaler on a 2-shard stream at 90 % for 25 minutes, then at 40 %
    stream = FakeStream(2)
    scaler = AwsSamplesAutoscaler()
    run(scaler, stream, [0.9] * 24)
    assert stream.calls == []  # 4 periods: not yet
    scaler.observe(minute(24, 2, 0.9), stream)
    # Then it doubles at the end of the 5th period
    assert stream.calls == [4]


def test_aws_samples_autoscaler_halves_after_57_low_periods_of_60() -> None:
    # Given 4 shards written at 10 % for five hours
    stream = FakeStream(4)
    run(AwsSamplesAutoscaler(), stream, [0.1] * 300)
    # Then it halves once, at the 60th period (an alarm that stays in ALARM does not act again)
    assert stream.calls == [2]


def test_aws_samples_autoscaler_tries_again_after_a_refused_call() -> None:
    # Given a stream that refuses the scaling / When the breach goes on
    stream = FakeStream(2, refuse="ResourceInUseException")
    run(AwsSamplesAutoscaler(), stream, [0.9] * 30)
    # Then the alarm was set back and fired again at the next period (errorHandler)
    assert stream.calls == [4, 4]


# --- Application Auto Scaling (the aws-samples custom resource) ------------------------------------------------


def test_application_auto_scaling_adds_one_shard_then_cools_down_ten_minutes() -> None:
    # Given 2 shards at 90 % of their records for 25 minutes (above 80 %: the alarm's threshold)
    stream = FakeStream(2)
    run(ApplicationAutoScaling(), stream, [0.9] * 25)
    # Then +1 at once, and again each time the 600 s cooldown is over while the alarm stays in ALARM
    # (the utilisations are of the shards each minute has: still 90 % after each scaling)
    assert stream.calls == [3, 4, 5]


def test_application_auto_scaling_sees_only_records() -> None:
    # Given 2 shards full of bytes with records of 10 KB (1 % of the records limit)
    stream = FakeStream(2)
    run(ApplicationAutoScaling(), stream, [1.0] * 30, record_bytes=10_000)
    # Then it never scales out, and even removes a shard after 15 minutes: its alarms watch IncomingRecords only
    assert stream.calls == [1]


def test_application_auto_scaling_removes_a_shard_after_three_low_five_minute_sums() -> None:
    # Given 4 shards at 10 % / Then -1 after three 5-minute Sums below 80 % of a minute's capacity, every 10 minutes
    stream = FakeStream(4)
    run(ApplicationAutoScaling(), stream, [0.1] * 35)
    assert stream.calls == [3, 2, 1]


def test_application_auto_scaling_threshold_is_eighty_percent_of_the_records_per_minute() -> None:
    # Given 3 shards / Then both alarms' threshold is 80 % of 3 x 1,000 records/s over a minute
    assert ApplicationAutoScaling.threshold(3) == 144_000


# --- the lower bound ---------------------------------------------------------------------------------------------


def row(bytes_per_s: float, records_per_s: float) -> TraceMinute:
    return TraceMinute(START, bytes_per_s * 60, records_per_s * 60)


@pytest.mark.parametrize(
    ("bytes_per_s", "records_per_s", "expected"),
    [
        (0, 0, 1),
        (1_000_000, 1_000, 1),  # exactly one shard
        (1_000_001, 10, 2),
        (2_500_000, 2_500, 3),
        (400_000, 4_200, 5),  # records bind
    ],
)
def test_shards_needed_is_the_larger_of_bytes_and_records(
    bytes_per_s: float, records_per_s: float, expected: int
) -> None:
    # Given a minute's offered writes / Then the shards needed are the larger of the bytes' and the records' need
    assert shards_needed(row(bytes_per_s, records_per_s)) == expected


def fits(shards: int, bytes_per_s: float, records_per_s: float) -> bool:
    slack = 1 + 1e-12
    return (
        bytes_per_s <= shards * limits.SHARD_WRITE_BYTES_PER_SECOND * slack
        and records_per_s <= shards * limits.SHARD_WRITE_RECORDS_PER_SECOND * slack
    )


@given(st.lists(st.tuples(st.floats(0, 1e9), st.floats(0, 1e6)), min_size=1, max_size=30))
def test_the_lower_bound_takes_every_minute_and_no_shard_more(loads: list[tuple[float, float]]) -> None:
    # Given any offered minutes / When the lower bound is computed
    shards = lower_bound([row(b, r) for b, r in loads])
    for (b, r), n in zip(loads, shards, strict=True):
        # Then its shards take the minute's writes, and one shard fewer would not (unless it is one)
        assert fits(n, b, r)
        assert n == 1 or not fits(n - 1, b, r)
