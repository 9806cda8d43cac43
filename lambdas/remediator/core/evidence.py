"""Evidence the diagnosis works from: the stream's state and the metric series its symptom asked for."""

from __future__ import annotations

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


# The stream's write load: every capacity judgement (saturated or not, how many shards) reads these.
INCOMING_BYTES = kinesis_stream_metric("IncomingBytes", "Sum")
INCOMING_RECORDS = kinesis_stream_metric("IncomingRecords", "Sum")


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

    def write_utilisation(self, peak: bool) -> float:
        """Share of the stream's write capacity in use: the larger of the bytes and records shares."""
        shards = max(self.stream.open_shards, 1)
        by_bytes = self._rate("incoming_bytes", peak) / (shards * limits.SHARD_WRITE_BYTES_PER_SECOND)
        by_records = self._rate("incoming_records", peak) / (shards * limits.SHARD_WRITE_RECORDS_PER_SECOND)
        return max(by_bytes, by_records)
