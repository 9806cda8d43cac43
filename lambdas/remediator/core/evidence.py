"""Evidence the diagnosis works from: the stream's state and its recent CloudWatch metrics."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from statistics import fmean

from pydantic import BaseModel, ConfigDict

from remediator.core import limits
from remediator.core.grants import IamGrant


class StreamState(BaseModel):
    model_config = ConfigDict(frozen=True)

    name: str
    arn: str
    status: str  # CREATING | DELETING | ACTIVE | UPDATING
    mode: str  # PROVISIONED | ON_DEMAND
    open_shards: int
    retention_hours: int


@dataclass(frozen=True)
class MetricQuery:
    """One AWS/Kinesis stream metric the remediator reads (the clients layer turns it into GetMetricData)."""

    key: str
    metric_name: str
    statistic: str


INCOMING_BYTES = MetricQuery("incoming_bytes", "IncomingBytes", "Sum")
INCOMING_RECORDS = MetricQuery("incoming_records", "IncomingRecords", "Sum")
WRITE_THROTTLED = MetricQuery("write_throttled", "WriteProvisionedThroughputExceeded", "Sum")
READ_THROTTLED = MetricQuery("read_throttled", "ReadProvisionedThroughputExceeded", "Sum")
ITERATOR_AGE = MetricQuery("iterator_age_ms", "GetRecords.IteratorAgeMilliseconds", "Maximum")

EVIDENCE_QUERIES: tuple[MetricQuery, ...] = (
    INCOMING_BYTES,
    INCOMING_RECORDS,
    WRITE_THROTTLED,
    READ_THROTTLED,
    ITERATOR_AGE,
)
EVIDENCE_WINDOW_MINUTES = 15

# IAM the evidence-gathering needs, in the registry's terms (the stack builds the role from these).
READ_GRANTS = (
    IamGrant(
        actions=("kinesis:DescribeStreamSummary",),
        scope="stream",
        why="Stream status, mode, shard count and retention of the streams in the policies.",
    ),
    IamGrant(
        actions=("cloudwatch:GetMetricData",),
        scope="account",
        why="The Service Authorization Reference lists no resource type for cloudwatch:GetMetricData.",
    ),
)


class Evidence(BaseModel):
    """Per-minute datapoints (oldest first) for each query in EVIDENCE_QUERIES, plus the stream state."""

    model_config = ConfigDict(frozen=True)

    stream: StreamState
    collected_at: datetime
    window_minutes: int = EVIDENCE_WINDOW_MINUTES
    period_seconds: int = limits.METRIC_PERIOD_SECONDS
    series: dict[str, tuple[float, ...]]

    def values(self, query: MetricQuery) -> tuple[float, ...]:
        return self.series.get(query.key, ())

    def has_write_traffic_data(self) -> bool:
        return bool(self.values(INCOMING_BYTES) or self.values(INCOMING_RECORDS))

    def _rate(self, query: MetricQuery, peak: bool) -> float:
        values = self.values(query)
        if not values:
            return 0.0
        return (max(values) if peak else fmean(values)) / self.period_seconds

    @property
    def peak_bytes_per_second(self) -> float:
        return self._rate(INCOMING_BYTES, peak=True)

    @property
    def peak_records_per_second(self) -> float:
        return self._rate(INCOMING_RECORDS, peak=True)

    def write_utilisation(self, peak: bool) -> float:
        """Share of the stream's write capacity in use: the larger of the bytes and records shares."""
        shards = max(self.stream.open_shards, 1)
        by_bytes = self._rate(INCOMING_BYTES, peak) / (shards * limits.SHARD_WRITE_BYTES_PER_SECOND)
        by_records = self._rate(INCOMING_RECORDS, peak) / (shards * limits.SHARD_WRITE_RECORDS_PER_SECOND)
        return max(by_bytes, by_records)

    @property
    def throttled_writes(self) -> float:
        return sum(self.values(WRITE_THROTTLED))

    @property
    def max_iterator_age_ms(self) -> float | None:
        values = self.values(ITERATOR_AGE)
        return max(values) if values else None
