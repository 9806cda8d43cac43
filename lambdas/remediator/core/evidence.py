"""Evidence the diagnosis works from: the stream's state and the metric series its symptom asked for."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from statistics import fmean
from typing import Any

from pydantic import BaseModel, ConfigDict

from remediator.core import limits
from remediator.core.grants import ACCOUNT, STREAM, IamGrant
from remediator.core.metrics import MetricQuery, kinesis_stream_metric


class StreamStatus(StrEnum):
    CREATING = "CREATING"
    DELETING = "DELETING"
    ACTIVE = "ACTIVE"
    UPDATING = "UPDATING"
    UNKNOWN = "UNKNOWN"


class StreamMode(StrEnum):
    PROVISIONED = "PROVISIONED"
    ON_DEMAND = "ON_DEMAND"
    # A mode AWS did not report: no mutating guardrail accepts it.
    UNKNOWN = "UNKNOWN"


class StreamState(BaseModel):
    model_config = ConfigDict(frozen=True)

    name: str
    arn: str
    status: StreamStatus
    mode: StreamMode
    open_shards: int
    retention_hours: int
    # Registered enhanced fan-out consumers (DescribeStreamSummary's ConsumerCount); None when AWS did not say.
    consumer_count: int | None = None
    # Enhanced (shard-level) metrics enabled on the stream, as DescribeStreamSummary's EnhancedMonitoring lists them
    # ('ALL' or metric names); empty when none are (the default: they cost extra).
    shard_level_metrics: tuple[str, ...] = ()


# The stream's write load: every capacity judgement (saturated or not, how many shards) reads these. AWS defines
# them as what was *successfully put* ("The number of bytes/records successfully put to the Kinesis stream",
# https://docs.aws.amazon.com/streams/latest/dev/monitoring-with-cloudwatch.html; aws-facts.md section 6), so a
# throttled stream's IncomingBytes is its capacity, not what producers offer.
INCOMING_BYTES = kinesis_stream_metric("IncomingBytes", "Sum")
INCOMING_RECORDS = kinesis_stream_metric("IncomingRecords", "Sum")
# "The number of records rejected due to throttling" (same page): with IncomingRecords, an estimate of what producers
# offered (see Evidence.sizing_load). Its evidence key is the same in every symptom that reads it.
WRITE_THROTTLED = kinesis_stream_metric("WriteProvisionedThroughputExceeded", "Sum")
WRITE_THROTTLED_KEY = "write_throttled"


def write_load_queries(stream: str) -> tuple[MetricQuery, ...]:
    return (
        MetricQuery("incoming_bytes", INCOMING_BYTES.on(StreamName=stream)),
        MetricQuery("incoming_records", INCOMING_RECORDS.on(StreamName=stream)),
    )


EVIDENCE_WINDOW_MINUTES = 15

# What gathering evidence needs whatever the symptom: the stream's state and GetMetricData.
READ_GRANTS = (
    IamGrant(
        actions=("kinesis:DescribeStreamSummary",),
        scope=STREAM,
        why="Stream status, mode, shard count and retention of the streams in the policies.",
    ),
    IamGrant(
        actions=("cloudwatch:GetMetricData",),
        scope=ACCOUNT,
        why="The Service Authorization Reference lists no resource type for cloudwatch:GetMetricData.",
    ),
)


@dataclass(frozen=True)
class WriteLoad:
    """The peak write rates a reshard is sized from. `estimated`: what producers offered, estimated from the
    accepted plus the throttled records (the accepted load was a lower bound); otherwise what the stream accepted."""

    bytes_per_second: float
    records_per_second: float
    estimated: bool = False
    throttled_records: float = 0.0


class Evidence(BaseModel):
    """Per-minute datapoints (oldest first) for each query the symptom asked for, plus the stream state."""

    model_config = ConfigDict(frozen=True)

    stream: StreamState
    collected_at: datetime
    window_minutes: int = EVIDENCE_WINDOW_MINUTES
    period_seconds: int = limits.METRIC_PERIOD_SECONDS
    series: dict[str, tuple[float, ...]]
    # What the symptom's gather read beyond metrics (JSON-able), by the keys it chose.
    facts: dict[str, Any] = {}

    def values(self, key: str) -> tuple[float, ...]:
        return self.series.get(key, ())

    def total(self, key: str) -> float:
        return sum(self.values(key))

    def maximum(self, key: str) -> float | None:
        values = self.values(key)
        return max(values) if values else None

    def has_write_traffic_data(self) -> bool:
        return bool(self.values("incoming_bytes") or self.values("incoming_records"))

    def _rate(self, key: str, peak: bool) -> float:
        values = self.values(key)
        if not values:
            return 0.0
        return (max(values) if peak else fmean(values)) / self.period_seconds

    @property
    def peak_bytes_per_second(self) -> float:
        return self._rate("incoming_bytes", peak=True)

    @property
    def peak_records_per_second(self) -> float:
        return self._rate("incoming_records", peak=True)

    def sizing_load(self) -> WriteLoad:
        """The peak write rates to size the stream from.

        Without throttled writes in the evidence, the observed (accepted) peak. With them, the accepted load is
        only a lower bound of what producers offer: a throttled stream looks exactly full. The offered load is then
        estimated minute by minute as accepted + throttled records, and bytes as accepted bytes + throttled records
        x that minute's accepted mean record size (the window's mean when the minute accepted no record). Throttled
        records include the producers' retries, so the estimate may overstate; one UpdateShardCount call at most
        doubles the shards and the policy's max_shards bounds them. When the series do not line up minute for
        minute (CloudWatch left a datapoint out), the busiest minute's throttles are added to the accepted peak.
        """
        accepted = WriteLoad(self.peak_bytes_per_second, self.peak_records_per_second)
        in_bytes, in_records = self.values("incoming_bytes"), self.values("incoming_records")
        throttled = self.values(WRITE_THROTTLED_KEY)
        total = sum(throttled)
        if total <= 0 or not in_records or sum(in_records) <= 0:
            return accepted  # nothing throttled, or no accepted record to take a record size from
        mean_size = sum(in_bytes) / sum(in_records) if in_bytes else 0.0
        if len(in_bytes) == len(in_records) == len(throttled):
            offered_bytes = max(
                b + t * (b / r if r > 0 else mean_size) for b, r, t in zip(in_bytes, in_records, throttled, strict=True)
            )
            offered_records = max(r + t for r, t in zip(in_records, throttled, strict=True))
        else:
            offered_bytes = max(in_bytes, default=0.0) + max(throttled) * mean_size
            offered_records = max(in_records) + max(throttled)
        return WriteLoad(
            bytes_per_second=max(offered_bytes / self.period_seconds, accepted.bytes_per_second),
            records_per_second=max(offered_records / self.period_seconds, accepted.records_per_second),
            estimated=True,
            throttled_records=total,
        )

    def write_utilisation(self, peak: bool) -> float:
        """Share of the stream's write capacity in use: the larger of the bytes and records shares."""
        shards = max(self.stream.open_shards, 1)
        by_bytes = self._rate("incoming_bytes", peak) / (shards * limits.SHARD_WRITE_BYTES_PER_SECOND)
        by_records = self._rate("incoming_records", peak) / (shards * limits.SHARD_WRITE_RECORDS_PER_SECOND)
        return max(by_bytes, by_records)
