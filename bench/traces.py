"""The standard traces `make bench` replays: seven shapes of load, deterministic, one row per minute.

Each trace is what producers OFFER a stream (remediator.rehearsal.trace.TraceMinute: bytes and records per
minute, and optionally the consumers' processing rate), and the shard count the stream starts with. Every trace
starts on Monday 2026-01-05 00:00 UTC and carries a little noise (+-3 %, from a seeded generator) so that the
alarms see a real-looking series, yet two runs give the same figures.

| trace | minutes | shape |
|---|---|---|
| steady | 240 | 2.5 MB/s, 2,500 records/s (1 KB records) all along; 3 shards (83 %): nobody should act |
| diurnal | 2,880 | two days: 0.8 MB/s at 02:00 up to 5.6 MB/s at 14:00 (cosine); starts with 2 shards |
| ramp | 240 | linear from 1 MB/s to 7 MB/s over 4 hours; starts with 2 shards |
| spike-3x | 240 | 2 MB/s, then 6 MB/s reached within 10 minutes (minute 60), held an hour, back; 4 shards |
| flash-crowd-8x | 240 | 1 MB/s, then 8 MB/s within 2 minutes (minute 60), held 30 min, decays over 30; 2 shards |
| consumer-slowing | 240 | 2 MB/s steady; the consumers' rate falls from 4,000 to 1,500 records/s (minutes 60-120) |
| small-records | 240 | 200-byte records: 2,000 -> 5,000 records/s (minutes 60-120): the 1,000 records/s limit binds |

Records are 1 KB (1,000 bytes) but in small-records, so that the bytes and the records limits bind together
and a scaler that watches only one of them (the Application Auto Scaling sample watches records) is not
handicapped; small-records is where the records limit binds first. The load is in bytes of 1,000,000 per MB,
as the project's limits count a shard's 1 MB/s (remediator.core.limits.SHARD_WRITE_BYTES_PER_SECOND).
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from remediator.rehearsal.trace import TraceMinute

START = datetime(2026, 1, 5, tzinfo=UTC)
MB = 1_000_000
KB_RECORD = 1_000  # bytes per record in every trace but small-records
SMALL_RECORD = 200
NOISE = 0.03


@dataclass(frozen=True)
class StandardTrace:
    """A named trace, the shard count the stream has when it starts, and what it shows."""

    name: str
    description: str
    initial_shards: int
    minutes: list[TraceMinute]

    @property
    def consumer_limited(self) -> bool:
        return any(m.consumer_records_per_s is not None for m in self.minutes)


def _build(
    name: str,
    minutes: int,
    bytes_per_second: Callable[[int], float],
    *,
    record_bytes: float = KB_RECORD,
    consumer: Callable[[int], float | None] = lambda _: None,
) -> list[TraceMinute]:
    """One row per minute: bytes_per_second(minute) x 60 x (1 +- noise), and as many records of record_bytes."""
    rng = random.Random(name)  # seeded by the name: deterministic, and different per trace
    rows = []
    for minute in range(minutes):
        rate = max(bytes_per_second(minute), 0.0) * (1 + rng.uniform(-NOISE, NOISE))
        rows.append(
            TraceMinute(
                timestamp=START + timedelta(minutes=minute),
                incoming_bytes=round(rate * 60),
                incoming_records=round(rate * 60 / record_bytes),
                consumer_records_per_s=consumer(minute),
            )
        )
    return rows


def _ramp(minute: int, start: int, end: int, low: float, high: float) -> float:
    """low before `start`, high after `end`, linear between."""
    if minute <= start:
        return low
    if minute >= end:
        return high
    return low + (high - low) * (minute - start) / (end - start)


def steady() -> StandardTrace:
    return StandardTrace(
        "steady",
        "2.5 MB/s all along, 3 shards",
        3,
        _build("steady", 240, lambda _: 2.5 * MB),
    )


def diurnal() -> StandardTrace:
    def rate(minute: int) -> float:
        # Lowest at 02:00, highest at 14:00: 3.2 MB/s +- 2.4 MB/s.
        return (3.2 - 2.4 * math.cos(2 * math.pi * (minute - 120) / 1440)) * MB

    return StandardTrace(
        "diurnal", "two days, 0.8 MB/s at 02:00 to 5.6 MB/s at 14:00, 2 shards", 2, _build("diurnal", 2880, rate)
    )


def ramp() -> StandardTrace:
    return StandardTrace(
        "ramp", "1 -> 7 MB/s linearly over 4 h, 2 shards", 2, _build("ramp", 240, lambda m: (1 + 6 * m / 239) * MB)
    )


def spike_3x() -> StandardTrace:
    def rate(minute: int) -> float:
        if minute < 130:
            return _ramp(minute, 60, 70, 2, 6) * MB
        return _ramp(minute, 130, 140, 6, 2) * MB

    return StandardTrace(
        "spike-3x", "2 MB/s, 3x within 10 min at minute 60 for 1 h, 4 shards", 4, _build("spike-3x", 240, rate)
    )


def flash_crowd_8x() -> StandardTrace:
    def rate(minute: int) -> float:
        if minute < 92:
            return _ramp(minute, 60, 62, 1, 8) * MB
        return _ramp(minute, 92, 122, 8, 1) * MB

    return StandardTrace(
        "flash-crowd-8x",
        "1 MB/s, 8x within 2 min at minute 60 for 30 min, decays over 30 min, 2 shards",
        2,
        _build("flash-crowd-8x", 240, rate),
    )


def consumer_slowing() -> StandardTrace:
    return StandardTrace(
        "consumer-slowing",
        "2 MB/s; consumers fall from 4,000 to 1,500 records/s (min 60-120), 4 shards",
        4,
        _build("consumer-slowing", 240, lambda _: 2 * MB, consumer=lambda m: _ramp(m, 60, 120, 4000, 1500)),
    )


def small_records() -> StandardTrace:
    return StandardTrace(
        "small-records",
        "200 B records, 2,000 -> 5,000 records/s (min 60-120): record-bound, 3 shards",
        3,
        _build("small-records", 240, lambda m: _ramp(m, 60, 120, 2000, 5000) * SMALL_RECORD, record_bytes=SMALL_RECORD),
    )


def standard_traces() -> list[StandardTrace]:
    """The seven traces, in the order the table prints them."""
    return [steady(), diurnal(), ramp(), spike_3x(), flash_crowd_8x(), consumer_slowing(), small_records()]
