"""A minute-by-minute model of one Kinesis data stream, written from AWS's documentation.

What it models, each minute of a trace (the bytes and records producers offered):

- Writes, provisioned mode: each shard takes 1 MB/s and 1,000 records/s (aws-facts.md §5, "Per-shard data plane";
  the decimal reading, as core/limits.py). What is offered beyond the stream's capacity is throttled: counted as
  WriteProvisionedThroughputExceeded records and not written. The trace is what producers offered, retries
  included, so a throttled record is not offered again by the model.
- Writes, on-demand mode: the stream "accommodates up to double its previous peak write throughput", and "write
  throttling can occur if your traffic grows to more than double the previous peak within a 15-minute duration";
  a new on-demand stream starts at 4 MB/s and 4,000 records/s of write capacity (8 MB/s read)
  (https://docs.aws.amazon.com/streams/latest/dev/how-do-i-size-a-stream.html, "On-demand mode features";
  aws-facts.md §5 "On-demand streams" for the 4 MB/s / 8 MB/s start). Modelled as: the write capacity of a minute is
  twice the highest write rate accepted up to 15 minutes before it (and never less than the 4 MB/s and 4,000
  records/s start), up to the 10 GB/s maximum of us-east-1. Bytes and records are judged apart. A stream switched
  to on-demand starts from the capacity its shards had (the shard count is kept at the switch, aws-facts.md §1;
  the rest is UNCONFIRMED).
- Reads by polling (GetRecords) consumers: 2 MB/s and 5 GetRecords calls/s per shard, shared by every polling
  consumer; at most 10,000 records per call (aws-facts.md §5). Each polling consumer calls GetRecords once a
  second per shard (the KCL's and Lambda's default polling pace; an assumption): calls beyond 5 per shard and
  second are throttled (ReadProvisionedThroughputExceeded counts calls), and a consumer whose share of the 2 MB/s
  cannot carry what it wants sees that share of its calls throttled too. Enhanced fan-out consumers get 2 MB/s per
  shard each and take nothing from the polling consumers (they are billed, not otherwise modelled: no EFO metric).
- Consumers process at most `consumer_records_per_s` records a second (the trace's column, else StreamSetup's;
  None: all they may read). Every polling consumer is alike, so one backlog stands for all of them.
- Backlog and iterator age: records written and not yet read, oldest first; the iterator age of a minute is the
  age, at the minute's end, of the oldest unread record (0 when the consumers are caught up), as
  GetRecords.IteratorAgeMilliseconds Maximum reports it (aws-facts.md §6). Records of one minute arrive evenly
  through it.
- Retention: a record older than the retention period is gone: counted as lost (aws-facts.md §2; an increase does
  not bring expired records back).
- Resharding takes time: UpdateShardCount and UpdateStreamMode put the stream in UPDATING for `reshard_minutes`
  (DEFAULT_RESHARD_MINUTES: AWS says only "a few minutes", "depending on the size of the stream", aws-facts.md §1;
  5 is our choice, and a flag). Reads and writes go on at the old capacity meanwhile; the new one starts at the end.
  Any scaling call on a stream that is not ACTIVE gets ResourceInUseException.
- AWS's limits on UpdateShardCount (aws-facts.md §1): at most 2x and at least 1/2 the current count per call, at
  most 10,000 shards, the account's shard quota, and 10 scalings per stream per rolling 24 h. Which error code a
  call over these limits gets is UNCONFIRMED (aws-facts.md, open item 2); the model answers LimitExceededException
  for all of them (what awslabs/amazon-kinesis-scaling-utils expects for the daily limit). A target equal to the
  current count gets InvalidArgumentException (UNCONFIRMED). UpdateShardCount on an on-demand stream gets
  ValidationException (documented). UpdateStreamMode: twice per 24 h (UNCONFIRMED still current), else
  LimitExceededException. IncreaseStreamRetentionPeriod: more than the current period, at most 8,760 h, else
  InvalidArgumentException (UNCONFIRMED code).

What it does not model: hot shards (load spreads evenly over shards), bursts within a minute, producer retries and
back-off, GetRecords latency and errors other than throttling, PutRecord vs PutRecords, intermediate shards of a
reshard, and Lambda, KCL or DynamoDB consumers' own metrics.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any, Protocol

from remediator.core import limits, pricing
from remediator.core.evidence import StreamMode, StreamStatus
from remediator.rehearsal.trace import TraceMinute

MINUTE = timedelta(minutes=1)
SECONDS_PER_MINUTE = 60
# See the module docstring: AWS documents no duration ("a few minutes"). Our choice; `--reshard-minutes` changes it.
DEFAULT_RESHARD_MINUTES = 5
# Polling consumers call GetRecords once a second per shard (an assumption, see the module docstring).
GET_RECORDS_PER_CONSUMER_PER_SECOND = 1
MAX_RECORDS_PER_GET_RECORDS = 10_000  # aws-facts.md §5
EFO_BYTES_PER_SHARD_PER_SECOND = 2_000_000  # 2 MiB/s per shard per consumer (aws-facts.md §3), decimal reading
# On-demand (see the module docstring): a new stream's write capacity, the window within which traffic may at most
# double, and the most an on-demand stream takes in us-east-1 (aws-facts.md §5).
ON_DEMAND_START_BYTES_PER_SECOND = 4_000_000
ON_DEMAND_START_RECORDS_PER_SECOND = 4_000
ON_DEMAND_DOUBLING_MINUTES = 15
ON_DEMAND_MAX_BYTES_PER_SECOND = 10_000_000_000
# Default shard quota of an account in us-east-1, us-west-2 and eu-west-1 (aws-facts.md §1; 1,000 or 6,000 elsewhere).
DEFAULT_ACCOUNT_SHARD_LIMIT = 20_000
MODE_SWITCHES_PER_24H = 2  # aws-facts.md §1, UNCONFIRMED still current
DAY_MINUTES = 24 * 60


class SimulatedAwsError(Exception):
    """What AWS would answer a call the model refuses: its error code and a message."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code, self.message = code, message


@dataclass(frozen=True)
class StreamSetup:
    """The stream at the trace's first minute, and its consumers."""

    shards: int = 1
    mode: StreamMode = StreamMode.PROVISIONED
    retention_hours: int = limits.MIN_RETENTION_HOURS
    # Records a second every consumer processes; None: as many as it may read. A trace row's value wins.
    consumer_records_per_s: float | None = None
    polling_consumers: int = 1
    efo_consumers: int = 0
    reshard_minutes: int = DEFAULT_RESHARD_MINUTES
    # The shards this stream may have within the account's quota (other streams' shards taken off).
    account_shard_limit: int = DEFAULT_ACCOUNT_SHARD_LIMIT

    def __post_init__(self) -> None:
        problems = []
        if not 1 <= self.shards <= limits.MAX_SHARDS_PER_STREAM:
            problems.append(f"shards {self.shards} is not within 1..{limits.MAX_SHARDS_PER_STREAM}")
        if self.mode not in (StreamMode.PROVISIONED, StreamMode.ON_DEMAND):
            problems.append(f"mode {self.mode} is not PROVISIONED or ON_DEMAND")
        if not limits.MIN_RETENTION_HOURS <= self.retention_hours <= limits.MAX_RETENTION_HOURS:
            problems.append(
                f"retention_hours {self.retention_hours} is not within "
                f"{limits.MIN_RETENTION_HOURS}..{limits.MAX_RETENTION_HOURS}"
            )
        if self.consumer_records_per_s is not None and self.consumer_records_per_s < 0:
            problems.append(f"consumer_records_per_s {self.consumer_records_per_s} is negative")
        if self.polling_consumers < 0 or self.efo_consumers < 0:
            problems.append("consumer counts must not be negative")
        if self.efo_consumers > limits.MAX_EFO_CONSUMERS_PER_STREAM:
            problems.append(f"efo_consumers {self.efo_consumers} is above {limits.MAX_EFO_CONSUMERS_PER_STREAM}")
        if self.reshard_minutes < 1:
            problems.append(f"reshard_minutes {self.reshard_minutes} is below 1")
        if self.account_shard_limit < self.shards:
            problems.append(f"account_shard_limit {self.account_shard_limit} is below shards {self.shards}")
        if problems:
            raise ValueError("stream setup: " + "; ".join(problems))


@dataclass(frozen=True)
class MinuteStats:
    """One simulated minute: what was offered, written, throttled and read, and the stream's state in it."""

    index: int
    timestamp: datetime
    shards: int  # open shards (on-demand: the shards its write capacity equals)
    status: StreamStatus
    mode: StreamMode
    offered_bytes: float
    offered_records: float
    incoming_bytes: float
    incoming_records: float
    write_throttled_records: float
    read_throttled: float  # GetRecords calls throttled (ReadProvisionedThroughputExceeded)
    outgoing_records: float  # records read by one polling consumer (each reads the same)
    iterator_age_ms: float | None  # None: no polling consumer, so no GetRecords and no datapoint
    backlog_records: float
    records_lost: float
    # Beyond the contract: what the plot, the metrics and the cost read.
    outgoing_bytes: float = 0.0
    get_records_calls: float = 0.0
    write_capacity_bytes: float = 0.0  # bytes the stream could take this minute
    write_capacity_records: float = 0.0
    retention_hours: int = limits.MIN_RETENTION_HOURS
    polling_consumers: int = 1


@dataclass(frozen=True)
class StreamView:
    shards: int
    status: StreamStatus
    mode: StreamMode
    retention_hours: int
    now: datetime


@dataclass(frozen=True)
class ScalingCall:
    """A call a scaler made, at the minute after which it was made; error_code None when the model accepted it."""

    index: int
    operation: str
    parameters: dict[str, Any]
    error_code: str | None = None


class StreamControl(Protocol):
    """What a scaler may call; each call enforces AWS's limits and raises SimulatedAwsError as AWS would."""

    def describe(self) -> StreamView: ...

    def update_shard_count(self, target: int) -> None: ...

    def update_stream_mode(self, mode: StreamMode) -> None: ...

    def increase_retention(self, hours: int) -> None: ...


class Scaler(Protocol):
    name: str

    def observe(self, minute: MinuteStats, stream: StreamControl) -> None:
        """Called after every simulated minute."""
        ...


@dataclass
class _Chunk:
    """Unread records written in one minute (all polling consumers are alike: one backlog)."""

    minute: int
    records: float
    bytes: float
    written: float  # records written in that minute (the chunk's records before any was read)


@dataclass
class _Pending:
    ready_at: int  # the first minute with the new setting
    shards: int | None = None
    mode: StreamMode | None = None


class SimulatedStream:
    """The stream's state between minutes, and the control plane a scaler calls (StreamControl)."""

    def __init__(self, setup: StreamSetup, start: datetime) -> None:
        self.setup = setup
        self.start = start
        self.shards = setup.shards
        self.mode = setup.mode
        self.retention_hours = setup.retention_hours
        self.pending: _Pending | None = None
        self.minute = 0  # the minute being simulated, or the last one simulated once it is over
        self.calls: list[ScalingCall] = []
        self._scalings: list[int] = []  # minutes of accepted UpdateShardCount calls
        self._switches: list[int] = []
        # On-demand: accepted write rates per minute (bytes/s, records/s), for the previous peak.
        self._accepted: list[tuple[float, float]] = []
        self._peak = self._start_peak(setup.shards, setup.mode == StreamMode.ON_DEMAND)
        self._peak_until = -1  # the last minute folded into _peak

    @staticmethod
    def _start_peak(shards: int, fresh_on_demand: bool) -> tuple[float, float]:
        if fresh_on_demand:
            return ON_DEMAND_START_BYTES_PER_SECOND / 2, ON_DEMAND_START_RECORDS_PER_SECOND / 2
        # Switched from provisioned: the shards it had (UNCONFIRMED, see the module docstring), at least the start.
        return (
            max(shards * limits.SHARD_WRITE_BYTES_PER_SECOND, ON_DEMAND_START_BYTES_PER_SECOND) / 2,
            max(shards * limits.SHARD_WRITE_RECORDS_PER_SECOND, ON_DEMAND_START_RECORDS_PER_SECOND) / 2,
        )

    # --- StreamControl ------------------------------------------------------------------------------------

    @property
    def status(self) -> StreamStatus:
        return StreamStatus.UPDATING if self.pending is not None else StreamStatus.ACTIVE

    def now(self) -> datetime:
        """The end of the minute last simulated: when a scaler's call is made."""
        return self.start + (self.minute + 1) * MINUTE

    def describe(self) -> StreamView:
        return StreamView(self.open_shards(), self.status, self.mode, self.retention_hours, self.now())

    def open_shards(self) -> int:
        if self.mode == StreamMode.ON_DEMAND:
            return self._on_demand_shards(self.minute)
        return self.shards

    def _record(self, operation: str, parameters: dict[str, Any], error: SimulatedAwsError | None) -> None:
        self.calls.append(ScalingCall(self.minute, operation, parameters, error.code if error else None))

    def _checked(self, operation: str, parameters: dict[str, Any], check: Callable[[], None]) -> None:
        try:
            check()
        except SimulatedAwsError as error:
            self._record(operation, parameters, error)
            raise
        self._record(operation, parameters, None)

    def _active(self) -> None:
        if self.pending is not None:
            raise SimulatedAwsError(
                "ResourceInUseException", f"stream is UPDATING until minute {self.pending.ready_at}; it must be ACTIVE"
            )

    def update_shard_count(self, target: int) -> None:
        def check() -> None:
            self._active()
            if self.mode != StreamMode.PROVISIONED:
                raise SimulatedAwsError(
                    "ValidationException", "UpdateShardCount is only supported for streams in provisioned mode"
                )
            current = self.shards
            if target < 1:
                raise SimulatedAwsError("InvalidArgumentException", f"TargetShardCount {target} is below 1")
            if target == current:
                raise SimulatedAwsError("InvalidArgumentException", f"the stream already has {current} shards")
            if target > current * limits.MAX_SCALE_UP_FACTOR:
                raise SimulatedAwsError("LimitExceededException", f"{target} is more than double {current} shards")
            if target < math.ceil(current * limits.MIN_SCALE_DOWN_FRACTION):
                raise SimulatedAwsError("LimitExceededException", f"{target} is below half of {current} shards")
            if target > limits.MAX_SHARDS_PER_STREAM:
                raise SimulatedAwsError(
                    "LimitExceededException", f"{target} is above {limits.MAX_SHARDS_PER_STREAM} shards per stream"
                )
            if target > self.setup.account_shard_limit:
                raise SimulatedAwsError(
                    "LimitExceededException",
                    f"{target} shards pass the account's quota ({self.setup.account_shard_limit})",
                )
            used = [m for m in self._scalings if m > self.minute - DAY_MINUTES]
            if len(used) >= limits.MAX_SCALINGS_PER_24H:
                raise SimulatedAwsError(
                    "LimitExceededException",
                    f"{len(used)} scalings in the last 24 h; AWS allows {limits.MAX_SCALINGS_PER_24H}",
                )
            self._scalings.append(self.minute)
            self.pending = _Pending(ready_at=self.minute + 1 + self.setup.reshard_minutes, shards=target)

        self._checked("UpdateShardCount", {"TargetShardCount": target}, check)

    def update_stream_mode(self, mode: StreamMode) -> None:
        def check() -> None:
            self._active()
            if mode not in (StreamMode.PROVISIONED, StreamMode.ON_DEMAND):
                raise SimulatedAwsError("InvalidArgumentException", f"unknown stream mode {mode}")
            if mode == self.mode:
                raise SimulatedAwsError("InvalidArgumentException", f"the stream is already {mode}")
            used = [m for m in self._switches if m > self.minute - DAY_MINUTES]
            if len(used) >= MODE_SWITCHES_PER_24H:
                raise SimulatedAwsError(
                    "LimitExceededException", f"{len(used)} mode switches in the last 24 h; AWS allows two"
                )
            self._switches.append(self.minute)
            self.pending = _Pending(ready_at=self.minute + 1 + self.setup.reshard_minutes, mode=mode)

        self._checked("UpdateStreamMode", {"StreamMode": str(mode)}, check)

    def increase_retention(self, hours: int) -> None:
        def check() -> None:
            self._active()
            if hours <= self.retention_hours:
                raise SimulatedAwsError(
                    "InvalidArgumentException", f"{hours} h is not more than the current {self.retention_hours} h"
                )
            if hours > limits.MAX_RETENTION_HOURS:
                raise SimulatedAwsError(
                    "InvalidArgumentException", f"{hours} h is above {limits.MAX_RETENTION_HOURS} h"
                )
            self.retention_hours = hours

        self._checked("IncreaseStreamRetentionPeriod", {"RetentionPeriodHours": hours}, check)

    # --- the minute's capacity ------------------------------------------------------------------------------

    def begin_minute(self, index: int) -> None:
        """Finish a change whose time is up: from this minute on, the stream has its new setting."""
        self.minute = index
        pending = self.pending
        if pending is not None and index >= pending.ready_at:
            if pending.shards is not None:
                self.shards = pending.shards
            if pending.mode is not None:
                if pending.mode == StreamMode.ON_DEMAND:
                    self._accepted = [(0.0, 0.0)] * index
                    self._peak, self._peak_until = self._start_peak(self.shards, False), index - 1
                else:  # on-demand -> provisioned keeps the shards it had at the switch
                    self.shards = self._on_demand_shards(index)
                self.mode = pending.mode
            self.pending = None

    def _on_demand_capacity(self, index: int) -> tuple[float, float]:
        """Bytes/s and records/s the on-demand stream takes at this minute: twice the previous peak, where only
        rates at least ON_DEMAND_DOUBLING_MINUTES old count."""
        until = index - ON_DEMAND_DOUBLING_MINUTES
        while self._peak_until < until and self._peak_until + 1 < len(self._accepted):
            self._peak_until += 1
            rate_bytes, rate_records = self._accepted[self._peak_until]
            self._peak = (max(self._peak[0], rate_bytes), max(self._peak[1], rate_records))
        return min(2 * self._peak[0], ON_DEMAND_MAX_BYTES_PER_SECOND), 2 * self._peak[1]

    def _on_demand_shards(self, index: int) -> int:
        capacity_bytes, capacity_records = self._on_demand_capacity(index)
        return max(
            math.ceil(capacity_bytes / limits.SHARD_WRITE_BYTES_PER_SECOND - 1e-9),
            math.ceil(capacity_records / limits.SHARD_WRITE_RECORDS_PER_SECOND - 1e-9),
            1,
        )

    def write_capacity(self, index: int) -> tuple[float, float]:
        """Bytes and records the stream can take in this minute."""
        if self.mode == StreamMode.ON_DEMAND:
            rate_bytes, rate_records = self._on_demand_capacity(index)
        else:
            rate_bytes = self.shards * limits.SHARD_WRITE_BYTES_PER_SECOND
            rate_records = self.shards * limits.SHARD_WRITE_RECORDS_PER_SECOND
        return rate_bytes * SECONDS_PER_MINUTE, rate_records * SECONDS_PER_MINUTE

    def accepted(self, incoming_bytes: float, incoming_records: float) -> None:
        self._accepted.append((incoming_bytes / SECONDS_PER_MINUTE, incoming_records / SECONDS_PER_MINUTE))


@dataclass(frozen=True)
class SimulationResult:
    minutes: list[MinuteStats]
    actions: list[ScalingCall]
    setup: StreamSetup
    # USD, from core/pricing.py (us-east-1 list prices, UNCONFIRMED there).
    cost_usd: float = 0.0
    cost_items: dict[str, float] = field(default_factory=dict)

    @property
    def throttled_minutes(self) -> int:
        return sum(1 for m in self.minutes if m.write_throttled_records > 0)

    def lag_minutes(self, threshold_ms: float) -> int:
        """Minutes whose iterator age is at or above the threshold (as the iterator-age alarm compares)."""
        return sum(1 for m in self.minutes if m.iterator_age_ms is not None and m.iterator_age_ms >= threshold_ms)

    @property
    def records_lost(self) -> float:
        return sum(m.records_lost for m in self.minutes)

    @property
    def write_throttled_records(self) -> float:
        return sum(m.write_throttled_records for m in self.minutes)

    @property
    def shard_hours(self) -> float:
        return sum(m.shards for m in self.minutes) / 60

    @property
    def scaling_calls(self) -> int:
        """Calls AWS accepted (a refused call changes nothing and costs no daily scaling)."""
        return sum(1 for call in self.actions if call.error_code is None)

    @property
    def shards_per_minute(self) -> list[int]:
        return [m.shards for m in self.minutes]

    @property
    def max_iterator_age_ms(self) -> float:
        return max((m.iterator_age_ms or 0.0 for m in self.minutes), default=0.0)


def _read(
    backlog: deque[_Chunk],
    backlog_records: float,
    rate: float | None,
    setup: StreamSetup,
    shards: int,
) -> tuple[float, float, float, float]:
    """One minute of reading by the polling consumers: (records read, bytes read, throttled calls, calls)."""
    consumers = setup.polling_consumers
    if consumers == 0:
        return 0.0, 0.0, 0.0, 0.0
    wanted_calls = consumers * GET_RECORDS_PER_CONSUMER_PER_SECOND * shards * SECONDS_PER_MINUTE
    call_limit = limits.SHARD_GET_RECORDS_PER_SECOND * shards * SECONDS_PER_MINUTE
    calls_per_consumer = min(wanted_calls, call_limit) / consumers
    throttled = max(wanted_calls - call_limit, 0.0)
    # Each consumer's share of the shards' 2 MB/s (on-demand: read capacity is twice the write capacity, so 2 MB/s
    # for each shard the write capacity equals), and of the calls' 10,000 records.
    bytes_limit = shards * limits.SHARD_READ_BYTES_PER_SECOND * SECONDS_PER_MINUTE / consumers
    records_limit = calls_per_consumer * MAX_RECORDS_PER_GET_RECORDS
    if rate is not None:
        records_limit = min(records_limit, rate * SECONDS_PER_MINUTE)
    records = bytes_read = 0.0
    left_records, left_bytes = records_limit, bytes_limit
    wanted_bytes = 0.0  # what the consumer would read within its records limit, bytes unbounded
    for chunk in backlog:
        if left_records <= 0:
            break
        take = min(chunk.records, left_records)
        size = chunk.bytes / chunk.records if chunk.records > 1e-9 else 0.0
        wanted_bytes += take * size
        if left_bytes > 0:
            by_bytes = take if size == 0 else min(take, left_bytes / size)
            records += by_bytes
            bytes_read += by_bytes * size
            left_bytes -= by_bytes * size
        left_records -= take
    if wanted_bytes > bytes_limit > 0:
        # The calls beyond the consumers' share of 2 MB/s are refused (ReadProvisionedThroughputExceeded).
        throttled += consumers * calls_per_consumer * (1 - bytes_limit / wanted_bytes)
    return min(records, backlog_records), bytes_read, throttled, consumers * calls_per_consumer


def simulate(
    trace: Sequence[TraceMinute],
    setup: StreamSetup,
    scaler: Scaler | None = None,
    *,
    progress: Callable[[int, int], None] | None = None,
) -> SimulationResult:
    """Run the trace through the model; `scaler.observe` is called after every minute."""
    if not trace:
        raise ValueError("the trace has no minutes")
    stream = SimulatedStream(setup, trace[0].timestamp)
    backlog: deque[_Chunk] = deque()
    backlog_records = 0.0
    minutes: list[MinuteStats] = []
    total = len(trace)
    for index, row in enumerate(trace):
        stream.begin_minute(index)
        shards = stream.open_shards()
        capacity_bytes, capacity_records = stream.write_capacity(index)
        offered_bytes, offered_records = max(row.incoming_bytes, 0.0), max(row.incoming_records, 0.0)
        share = 1.0
        if offered_bytes > capacity_bytes:
            share = min(share, capacity_bytes / offered_bytes)
        if offered_records > capacity_records:
            share = min(share, capacity_records / offered_records)
        incoming_bytes, incoming_records = offered_bytes * share, offered_records * share
        stream.accepted(incoming_bytes, incoming_records)
        if incoming_records > 0 or incoming_bytes > 0:
            backlog.append(_Chunk(index, incoming_records, incoming_bytes, incoming_records))
            backlog_records += incoming_records

        rate = row.consumer_records_per_s if row.consumer_records_per_s is not None else setup.consumer_records_per_s
        read_records, read_bytes, read_throttled, calls = _read(backlog, backlog_records, rate, setup, shards)
        left = read_records
        while left > 0 and backlog:
            chunk = backlog[0]
            if chunk.records <= left + 1e-9:
                left -= chunk.records
                backlog.popleft()
            else:
                size = chunk.bytes / chunk.records if chunk.records > 1e-9 else 0.0
                chunk.records -= left
                chunk.bytes = chunk.records * size
                left = 0
        backlog_records = max(backlog_records - read_records, 0.0) if backlog else 0.0

        # Retention: a record older than the period at the minute's end is gone (whole minutes, oldest first).
        lost = 0.0
        oldest_kept = index + 1 - stream.retention_hours * 60
        while backlog and backlog[0].minute < oldest_kept:
            lost += backlog.popleft().records
        backlog_records = max(backlog_records - lost, 0.0) if backlog else 0.0

        age: float | None = None
        if setup.polling_consumers:
            age = 0.0
            if backlog:
                oldest = backlog[0]
                # Records of a minute arrive evenly: the oldest unread one of a partly read minute arrived as far
                # into it as the share already read.
                read_share = 1 - oldest.records / oldest.written if oldest.written else 0.0
                arrived = oldest.minute + min(max(read_share, 0.0), 1.0)
                age = (index + 1 - arrived) * 60_000
        minutes.append(
            MinuteStats(
                index=index,
                timestamp=row.timestamp,
                shards=shards,
                status=stream.status,
                mode=stream.mode,
                offered_bytes=offered_bytes,
                offered_records=offered_records,
                incoming_bytes=incoming_bytes,
                incoming_records=incoming_records,
                write_throttled_records=offered_records - incoming_records,
                read_throttled=read_throttled,
                outgoing_records=read_records,
                iterator_age_ms=age,
                backlog_records=backlog_records,
                records_lost=lost,
                outgoing_bytes=read_bytes,
                get_records_calls=calls,
                write_capacity_bytes=capacity_bytes,
                write_capacity_records=capacity_records,
                retention_hours=stream.retention_hours,
                polling_consumers=setup.polling_consumers,
            )
        )
        if scaler is not None:
            scaler.observe(minutes[-1], stream)
        if progress is not None:
            progress(index + 1, total)
    cost, items = cost_of(minutes, setup)
    return SimulationResult(minutes=minutes, actions=list(stream.calls), setup=setup, cost_usd=cost, cost_items=items)


def cost_of(minutes: Sequence[MinuteStats], setup: StreamSetup) -> tuple[float, dict[str, float]]:
    """USD for the simulated minutes at core/pricing.py's list prices, item by item.

    Provisioned: shard-hours, PUT payload units (25 KB each; a minute's records at its average size), extended
    retention per shard-hour, and EFO consumer-shard-hours and data. On-demand: stream-hours, GB written (records
    rounded up to 1 KB), GB read by polling consumers, and EFO data. Long-term retention, read by GetRecords on
    provisioned streams (not billed) and taxes are not counted."""
    prices = pricing.PRICES
    items: dict[str, float] = {}

    def add(name: str, usd: float) -> None:
        items[name] = items.get(name, 0.0) + usd

    for m in minutes:
        hours = 1 / 60
        # The minute's average record size (a fraction of a record, from throttling shares, counts as one).
        size = m.incoming_bytes / max(m.incoming_records, 1.0) if m.incoming_records else 0.0
        efo_bytes = m.incoming_bytes * setup.efo_consumers  # each EFO consumer reads every record once
        if m.mode == StreamMode.ON_DEMAND:
            add("stream-hours", hours * prices.on_demand_stream_hour)
            billed = m.incoming_records * math.ceil(size / pricing.ON_DEMAND_RECORD_ROUNDING_BYTES) * 1024
            add("data written", billed / pricing.BYTES_PER_GB * prices.on_demand_ingest_per_gb)
            read = m.outgoing_bytes * m.polling_consumers
            add("data read", read / pricing.BYTES_PER_GB * prices.on_demand_retrieval_per_gb)
            add("enhanced fan-out data", efo_bytes / pricing.BYTES_PER_GB * prices.on_demand_efo_retrieval_per_gb)
        else:
            add("shard-hours", m.shards * hours * prices.shard_hour)
            units = m.incoming_records * max(math.ceil(size / pricing.PUT_PAYLOAD_UNIT_BYTES), 1)
            add("PUT payload units", units / 1e6 * prices.put_payload_units_per_million)
            if pricing.extended_hours(m.retention_hours):
                add("extended retention", m.shards * hours * prices.extended_per_shard_hour)
            add(
                "enhanced fan-out consumer-shard-hours",
                setup.efo_consumers * m.shards * hours * prices.efo_consumer_shard_hour,
            )
            add("enhanced fan-out data", efo_bytes / pricing.BYTES_PER_GB * prices.efo_retrieval_per_gb)
    items = {name: usd for name, usd in items.items() if usd}
    return sum(items.values()), items


def with_setup(setup: StreamSetup, **changes: Any) -> StreamSetup:
    return replace(setup, **changes)
