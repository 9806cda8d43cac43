"""How a stream's writes spread over its shards, from enhanced (shard-level) metrics when the stream has them.

Stream-level metrics are per minute and per stream: throttles with a low per-minute average may come from one
hot shard (a hot partition key) or from bursts shorter than a minute on every shard, and only shard-level
metrics (IncomingBytes, IncomingRecords, WriteProvisionedThroughputExceeded with the ShardId dimension) tell
them apart. They exist only where someone enabled them (EnableEnhancedMonitoring; DescribeStreamSummary lists
them in EnhancedMonitoring, carried by StreamState.shard_level_metrics). The facts travel in
Evidence.facts[SHARD_LOAD], so a plan can be replayed.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict

from remediator.core import limits
from remediator.core.evidence import Evidence, StreamState
from remediator.core.grants import ACCOUNT, STREAM, IamGrant
from remediator.core.metrics import KINESIS_NAMESPACE
from remediator.core.ports import ReadPorts

SHARD_LOAD = "shard_load"

# Shard-level metric name -> ShardLoad field prefix. The names are the stream-level ones (aws-facts.md §6).
SHARD_METRICS = {
    "IncomingBytes": "bytes",
    "IncomingRecords": "records",
    "WriteProvisionedThroughputExceeded": "throttled",
}
ALL_METRICS = "ALL"

# GetMetricData takes at most 500 queries per request (botocore's CloudWatch model; UNCONFIRMED: not in
# aws-facts.md). Beyond MAX_SHARDS_READ open shards the rest is not read (said in the facts): 3 metrics x 500
# shards is 3 requests, well within the function's time.
QUERIES_PER_REQUEST = 500
MAX_SHARDS_READ = 500

SHARD_LOAD_READ_GRANTS = (
    IamGrant(
        actions=("kinesis:ListShards",),
        scope=STREAM,
        why="The stream's open shards, whose shard-level metrics (by ShardId) tell a hot shard from short bursts.",
    ),
    IamGrant(
        actions=("cloudwatch:GetMetricData",),
        scope=ACCOUNT,
        why="The Service Authorization Reference lists no resource type for cloudwatch:GetMetricData.",
    ),
)
SHARD_LOAD_READ_ACTIONS = tuple(action for grant in SHARD_LOAD_READ_GRANTS for action in grant.actions)


class ShardLoad(BaseModel):
    """One open shard over the evidence window: per-minute peaks and totals (None: metric not enabled/no data)."""

    model_config = ConfigDict(frozen=True)

    shard_id: str
    peak_bytes: float | None = None  # the busiest minute's IncomingBytes Sum
    bytes: float | None = None
    peak_records: float | None = None
    records: float | None = None
    throttled: float | None = None  # WriteProvisionedThroughputExceeded, records

    def peak_utilisation(self, period_seconds: int = limits.METRIC_PERIOD_SECONDS) -> float | None:
        """The busiest minute as a share of one shard's write capacity (None without bytes and records)."""
        shares = []
        if self.peak_bytes is not None:
            shares.append(self.peak_bytes / period_seconds / limits.SHARD_WRITE_BYTES_PER_SECOND)
        if self.peak_records is not None:
            shares.append(self.peak_records / period_seconds / limits.SHARD_WRITE_RECORDS_PER_SECOND)
        return max(shares) if shares else None


class ShardLoadFacts(BaseModel):
    model_config = ConfigDict(frozen=True)

    enabled: tuple[str, ...] = ()  # the shard-level metrics this symptom can use that the stream has on
    shards: tuple[ShardLoad, ...] = ()
    shards_not_read: int = 0  # open shards beyond MAX_SHARDS_READ


def usable_metrics(stream: StreamState) -> tuple[str, ...]:
    """The shard-level metrics enabled on the stream that tell where writes go."""
    on = set(stream.shard_level_metrics)
    return tuple(name for name in SHARD_METRICS if ALL_METRICS in on or name in on)


def _open_shards(stream: StreamState, aws: ReadPorts) -> list[str]:
    kinesis = aws.service("kinesis")
    shards: list[str] = []
    response = kinesis.call("ListShards", StreamARN=stream.arn)
    while True:
        # A closed shard has an EndingSequenceNumber; it takes no writes.
        shards += [
            s["ShardId"] for s in response.get("Shards", []) if "EndingSequenceNumber" not in s["SequenceNumberRange"]
        ]
        token = response.get("NextToken")
        if not token:
            return shards
        # ListShards refuses the stream's name alongside a NextToken (botocore's Kinesis model; UNCONFIRMED in
        # aws-facts.md, and assumed for the ARN too), so the next page is asked for by the token alone.
        response = kinesis.call("ListShards", NextToken=token)


def _chunks(items: list[dict[str, Any]], size: int) -> Iterator[list[dict[str, Any]]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def read_shard_load(stream: StreamState, aws: ReadPorts, *, end: datetime, minutes: int) -> ShardLoadFacts:
    """Per open shard, the enabled shard-level metrics over the window (needs SHARD_LOAD_READ_GRANTS). No read at
    all when the stream has none of them on."""
    enabled = usable_metrics(stream)
    if not enabled:
        return ShardLoadFacts()
    shard_ids = _open_shards(stream, aws)
    read, not_read = shard_ids[:MAX_SHARDS_READ], max(len(shard_ids) - MAX_SHARDS_READ, 0)
    queries = [
        {
            "Id": f"s{index}_{SHARD_METRICS[name]}",
            "MetricStat": {
                "Metric": {
                    "Namespace": KINESIS_NAMESPACE,
                    "MetricName": name,
                    "Dimensions": [{"Name": "StreamName", "Value": stream.name}, {"Name": "ShardId", "Value": shard}],
                },
                "Period": limits.METRIC_PERIOD_SECONDS,
                "Stat": "Sum",
            },
        }
        for index, shard in enumerate(read)
        for name in enabled
    ]
    values: dict[str, list[float]] = {}
    cloudwatch = aws.service("cloudwatch")
    for chunk in _chunks(queries, QUERIES_PER_REQUEST):
        token: str | None = None
        while True:
            page = cloudwatch.call(
                "GetMetricData",
                MetricDataQueries=chunk,
                StartTime=end - timedelta(minutes=minutes),
                EndTime=end,
                ScanBy="TimestampAscending",
                **({"NextToken": token} if token else {}),
            )
            for result in page.get("MetricDataResults", []):
                values.setdefault(result["Id"], []).extend(float(v) for v in result.get("Values", []))
            token = page.get("NextToken")
            if not token:
                break

    def series(index: int, field: str) -> list[float] | None:
        found = values.get(f"s{index}_{field}")
        return found or None

    loads = []
    for index, shard in enumerate(read):
        b, r, t = series(index, "bytes"), series(index, "records"), series(index, "throttled")
        loads.append(
            ShardLoad(
                shard_id=shard,
                peak_bytes=max(b) if b else None,
                bytes=sum(b) if b else None,
                peak_records=max(r) if r else None,
                records=sum(r) if r else None,
                throttled=sum(t) if t else None,
            )
        )
    return ShardLoadFacts(enabled=enabled, shards=tuple(loads), shards_not_read=not_read)


def gather_shard_load(stream: StreamState, aws: ReadPorts, *, end: datetime, minutes: int) -> dict[str, Any]:
    """A symptom's gather for the shard facts (raises when a read fails: wrap it in consumers.gather_or_error)."""
    return {SHARD_LOAD: read_shard_load(stream, aws, end=end, minutes=minutes).model_dump(mode="json")}


def shard_load(evidence: Evidence) -> ShardLoadFacts | None:
    """The shard facts a gather put into the evidence (None when none were gathered, or the read failed)."""
    raw = evidence.facts.get(SHARD_LOAD)
    return None if raw is None else ShardLoadFacts.model_validate(raw)


# --- Judging the spread -----------------------------------------------------------------------------------------


class Spread(StrEnum):
    HOT_SHARD = "hot-shard"  # one shard takes the throttles or the bulk of the load
    EVEN = "even"  # load and throttles spread over the shards: bursts shorter than a minute
    NO_DATA = "no-data"  # shard-level metrics on, but no datapoint in the window


@dataclass(frozen=True)
class Verdict:
    spread: Spread
    shard: str = ""
    why: str = ""  # e.g. "shardId-000000000001 took 92% of the throttled records (an even spread is 50%)"
    share: float | None = None  # the busiest shard's share of `of`
    of: str = ""  # what the share is of: "the throttled records", "the bytes", "the records"
    peak_utilisation: float | None = None  # the busiest shard's busiest minute, as a share of one shard's capacity


def concentration_bar(shards: int) -> float:
    """The share from which one shard 'takes the bulk': halfway between an even spread (1/n) and everything.
    2 shards: 75 %; 4: 62.5 %; 10: 55 %."""
    return (shards + 1) / (2 * shards) if shards > 0 else 1.0


def judge(facts: ShardLoadFacts, saturated_at: float) -> Verdict:
    """Hot shard, even spread, or no data, from the shard facts (a pure function of them)."""
    shards = facts.shards
    known = [s for s in shards if any(v is not None for v in (s.bytes, s.records, s.throttled))]
    if not known:
        return Verdict(Spread.NO_DATA)
    # A shard that was itself saturated in its busiest minute: hot, whatever the others did.
    utilisations = [(s.peak_utilisation(), s.shard_id) for s in shards if s.peak_utilisation() is not None]
    busiest_util, busiest = max(utilisations) if utilisations else (None, "")
    if busiest_util is not None and busiest_util >= saturated_at:
        return Verdict(
            Spread.HOT_SHARD,
            shard=busiest,
            why=f"{busiest} ran at {busiest_util:.0%} of one shard's write capacity in its busiest minute "
            f"(saturated from {saturated_at:.0%})",
            peak_utilisation=busiest_util,
        )
    bar = concentration_bar(len(shards))
    even = 1 / len(shards)
    shares: dict[str, float] = {}
    for field, what in (("throttled", "the throttled records"), ("bytes", "the bytes"), ("records", "the records")):
        counts = [(getattr(s, field) or 0.0, s.shard_id) for s in shards]
        total = sum(count for count, _ in counts)
        if total <= 0:
            continue
        top, shard = max(counts)
        share = top / total
        shares[field] = share
        if len(shards) >= 2 and round(share, 6) >= round(bar, 6):
            return Verdict(
                Spread.HOT_SHARD,
                shard=shard,
                why=f"{shard} took {share:.0%} of {what} (an even spread is {even:.0%})",
                share=share,
                of=what,
                peak_utilisation=next((u for u, sid in utilisations if sid == shard), None),
            )
    parts = [
        f"{shares[field]:.0%} of {what}"
        for field, what in (("throttled", "the throttled records"), ("bytes", "the bytes"), ("records", "the records"))
        if field in shares
    ]
    why = f"no shard took more than {' or '.join(parts)} (an even spread is {even:.0%})"
    return Verdict(
        Spread.EVEN,
        shard=busiest,
        why=why,
        share=shares.get("throttled"),
        of="the throttled records",
        peak_utilisation=busiest_util,
    )
