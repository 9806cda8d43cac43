"""What a stream costs a month, before and after each step of a plan: an estimate from one price table.

A stream's `Usage` is what its bill counts: the mode, open shards, retention, enhanced fan-out consumers,
the readers that poll with GetRecords, and its average write rate (IncomingBytes and IncomingRecords
averaged over the evidence window, which the service reads for every plan: `with_cost_queries`).
`monthly_lines(usage)` prices it with core/pricing.py, one line per billed item; each action declares
how a step changes the usage (`Action.usage_after`), and `compare` prices both sides.

What is counted: provisioned shard-hours, PUT payload units, extended and long-term retention, enhanced
fan-out consumer-shard-hours and data retrieval; on-demand stream-hours, data ingested and retrieved,
extended and long-term retention, enhanced fan-out retrieval. Not counted: the CloudWatch, Lambda,
DynamoDB and data-transfer costs around the stream, shard-level metrics, and any discount. The write rate
is the average of the minutes CloudWatch reported, taken as the month's: an estimate, never a bill.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import fmean
from typing import Any

from pydantic import BaseModel, ConfigDict, computed_field

from remediator.core.evidence import Evidence, StreamMode, write_load_queries
from remediator.core.metrics import MetricQuery
from remediator.core.policy import StreamPolicy
from remediator.core.pricing import (
    BYTES_PER_GB,
    HOURS_PER_MONTH,
    INCLUDED_HOURS,
    ON_DEMAND_RECORD_ROUNDING_BYTES,
    PRICES,
    PUT_PAYLOAD_UNIT_BYTES,
    SECONDS_PER_MONTH,
    KinesisPrices,
    extended_hours,
    long_term_hours,
    stored_gb,
)
from remediator.core.stream_consumers import stream_consumers

# A change smaller than half a cent a month reads as none.
CENT = 0.005


@dataclass(frozen=True)
class Usage:
    """What a stream's bill counts. Actions return a changed copy (dataclasses.replace) from `usage_after`."""

    mode: StreamMode
    shards: int
    retention_hours: int
    bytes_per_second: float | None = None  # average write rate; None: CloudWatch returned no datapoint
    records_per_second: float | None = None
    efo_consumers: int | None = None  # registered enhanced fan-out consumers; None: not known
    polling_readers: int = 0  # consumers that poll with GetRecords (billed per GB read on on-demand streams)

    @property
    def on_demand(self) -> bool:
        return self.mode == StreamMode.ON_DEMAND


@dataclass(frozen=True)
class Line:
    """One billed item of one usage: quantity a month x unit price."""

    item: str
    unit: str
    unit_price_usd: float
    quantity: float

    @property
    def usd(self) -> float:
        return self.quantity * self.unit_price_usd


def monthly_gb(bytes_per_second: float | None) -> float:
    return max(bytes_per_second or 0.0, 0.0) * SECONDS_PER_MONTH / BYTES_PER_GB


def _average_record_bytes(usage: Usage) -> float | None:
    if not usage.records_per_second or usage.bytes_per_second is None:
        return None
    return usage.bytes_per_second / usage.records_per_second


def _chunks(size: float, chunk: int) -> int:
    """Whole chunks a record of `size` bytes is billed as (at least one; rounded against float noise)."""
    return max(1, math.ceil(round(size, 6) / chunk))


def put_payload_units(usage: Usage) -> float:
    """PUT payload units a month: each record is billed in whole 25 KB units; records of the average size."""
    size = _average_record_bytes(usage)
    if size is None:
        return 0.0
    return (usage.records_per_second or 0.0) * _chunks(size, PUT_PAYLOAD_UNIT_BYTES) * SECONDS_PER_MONTH


def on_demand_billed_gb(usage: Usage) -> float:
    """GB written a month as on-demand bills it: each record rounded up to 1 KB (records of the average size)."""
    size = _average_record_bytes(usage)
    if size is None:
        return monthly_gb(usage.bytes_per_second)
    billed = _chunks(size, ON_DEMAND_RECORD_ROUNDING_BYTES) * ON_DEMAND_RECORD_ROUNDING_BYTES
    return monthly_gb((usage.records_per_second or 0.0) * billed)


def monthly_lines(usage: Usage, prices: KinesisPrices = PRICES) -> list[Line]:
    """The usage's bill for a month of 730 h, one line per item the mode is billed for."""
    shards, hours = max(usage.shards, 0), usage.retention_hours
    efo = max(usage.efo_consumers or 0, 0)
    stored = usage.bytes_per_second or 0.0
    long_term = Line(
        "long-term retention", "GB-month", prices.long_term_per_gb_month, stored_gb(stored, long_term_hours(hours))
    )
    if usage.on_demand:
        ingested = on_demand_billed_gb(usage)
        return [
            Line("stream-hours", "stream-hour", prices.on_demand_stream_hour, HOURS_PER_MONTH),
            Line("data ingested", "GB", prices.on_demand_ingest_per_gb, ingested),
            Line("data retrieval", "GB", prices.on_demand_retrieval_per_gb, ingested * max(usage.polling_readers, 0)),
            Line(
                "extended retention",
                "GB-month",
                prices.extended_per_gb_month_on_demand,
                stored_gb(stored, extended_hours(hours)),
            ),
            long_term,
            Line(
                "enhanced fan-out data retrieval",
                "GB",
                prices.on_demand_efo_retrieval_per_gb,
                monthly_gb(usage.bytes_per_second) * efo,
            ),
        ]
    shard_hours = shards * HOURS_PER_MONTH
    return [
        Line("shard-hours", "shard-hour", prices.shard_hour, shard_hours),
        Line(
            "PUT payload units",
            "million units",
            prices.put_payload_units_per_million,
            put_payload_units(usage) / 1e6,
        ),
        Line(
            "extended retention",
            "shard-hour",
            prices.extended_per_shard_hour,
            shard_hours if hours > INCLUDED_HOURS else 0,
        ),
        long_term,
        Line(
            "enhanced fan-out consumer-shard-hours",
            "consumer-shard-hour",
            prices.efo_consumer_shard_hour,
            efo * shard_hours,
        ),
        Line(
            "enhanced fan-out data retrieval",
            "GB",
            prices.efo_retrieval_per_gb,
            monthly_gb(usage.bytes_per_second) * efo,
        ),
    ]


def monthly_usd(usage: Usage, prices: KinesisPrices = PRICES) -> float:
    return sum(line.usd for line in monthly_lines(usage, prices))


# --- the models plans carry ---------------------------------------------------------------------------


class CostLine(BaseModel):
    """One billed item, before -> after: `shard-hours 1,460 -> 2,920 shard-hour x $0.015`."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    item: str
    unit: str
    unit_price_usd: float
    quantity_before: float
    quantity_after: float
    before_usd: float
    after_usd: float


class CostEstimate(BaseModel):
    """A step's or a plan's monthly cost before and after, itemised, with the prices' region and date."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    monthly_before_usd: float
    monthly_after_usd: float
    lines: tuple[CostLine, ...] = ()
    notes: tuple[str, ...] = ()
    region: str = PRICES.region
    prices_as_of: str = PRICES.taken_on
    prices_confirmed: bool = PRICES.confirmed
    price_source: str = PRICES.source

    @computed_field  # type: ignore[prop-decorator]
    @property
    def monthly_change_usd(self) -> float:
        return round(self.monthly_after_usd - self.monthly_before_usd, 2)

    def render(self) -> str:
        """One line for e-mails: 'monthly cost $21.90 -> $43.80 (+$21.90)'; a saving reads as one."""
        change = self.monthly_after_usd - self.monthly_before_usd
        if change >= CENT:
            how = f"+${change:,.2f}"
        elif change <= -CENT:
            how = f"saves ${-change:,.2f} a month"
        else:
            how = "no change"
        return f"monthly cost ${self.monthly_before_usd:,.2f} -> ${self.monthly_after_usd:,.2f} ({how})"

    def report(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


def compare(
    before: Usage,
    after: Usage,
    *,
    notes: tuple[str, ...] = (),
    only_changed: bool = False,
    prices: KinesisPrices = PRICES,
) -> CostEstimate:
    """Both usages priced line by line; `only_changed` keeps just the lines whose cost moves (a step's)."""
    old, new = monthly_lines(before, prices), monthly_lines(after, prices)
    if before.on_demand != after.on_demand:  # no action switches modes today; price each side on its own
        old_by_item = {line.item: line for line in old}
        new_by_item = {line.item: line for line in new}
        items = list(dict.fromkeys([*old_by_item, *new_by_item]))
        pairs = [(old_by_item.get(item), new_by_item.get(item)) for item in items]
    else:
        pairs = list(zip(old, new, strict=True))
    lines = []
    for was, now in pairs:
        either = was or now
        assert either is not None
        was_usd, now_usd = (was.usd if was else 0.0), (now.usd if now else 0.0)
        if only_changed and abs(now_usd - was_usd) < CENT:
            continue
        lines.append(
            CostLine(
                item=either.item,
                unit=either.unit,
                unit_price_usd=either.unit_price_usd,
                quantity_before=round(was.quantity if was else 0.0, 3),
                quantity_after=round(now.quantity if now else 0.0, 3),
                before_usd=round(was_usd, 2),
                after_usd=round(now_usd, 2),
            )
        )
    return CostEstimate(
        monthly_before_usd=round(sum(line.usd for line in old), 2),
        monthly_after_usd=round(sum(line.usd for line in new), 2),
        lines=tuple(lines),
        notes=notes,
        region=prices.region,
        prices_as_of=prices.taken_on,
        prices_confirmed=prices.confirmed,
        price_source=prices.source,
    )


# --- usage from the evidence --------------------------------------------------------------------------

BYTES_KEY, RECORDS_KEY = "incoming_bytes", "incoming_records"


def cost_queries(stream: str) -> tuple[MetricQuery, ...]:
    """The series every plan's cost reads: the stream's IncomingBytes and IncomingRecords (Sum per minute)."""
    return write_load_queries(stream)


def with_cost_queries(declared: tuple[MetricQuery, ...], stream: str) -> tuple[MetricQuery, ...]:
    """The symptom's queries, then those the cost reads that it did not declare (by key): one GetMetricData call.

    A symptom that declares a cost key for another series would make the cost read the wrong numbers: refused.
    """
    by_key = {query.key: query for query in declared}
    extra = []
    for query in cost_queries(stream):
        known = by_key.get(query.key)
        if known is None:
            extra.append(query)
        elif known.source != query.source:
            raise ValueError(
                f"evidence query '{query.key}' reads {known.source}, but the cost estimate reads that key as "
                f"{query.source}: give the symptom's series another key"
            )
    return (*declared, *extra)


def _average_per_second(evidence: Evidence, key: str) -> float | None:
    values = evidence.values(key)
    return fmean(values) / evidence.period_seconds if values else None


def efo_consumer_count(evidence: Evidence, policy: StreamPolicy) -> tuple[int | None, str]:
    """How many enhanced fan-out consumers the stream has, and where that number comes from."""
    registered = stream_consumers(evidence)
    if registered is not None:
        count = sum(1 for consumer in registered if consumer.status != "DELETING")
        return count, f"{count} enhanced fan-out consumer(s) registered (ListStreamConsumers)"
    if evidence.stream.consumer_count is not None:
        count = evidence.stream.consumer_count
        return count, f"{count} enhanced fan-out consumer(s) registered (DescribeStreamSummary)"
    if policy.efo_consumers:
        count = len(policy.efo_consumers)
        return count, f"{count} enhanced fan-out consumer(s) listed in the policy (the registered ones were not read)"
    return None, "enhanced fan-out consumers unknown (not read, none in the policy): counted as none"


def usage_of(evidence: Evidence, policy: StreamPolicy) -> tuple[Usage, tuple[str, ...]]:
    """The stream's usage now, from the evidence and the policy, and notes on where each figure comes from."""
    stream = evidence.stream
    bytes_per_second = _average_per_second(evidence, BYTES_KEY)
    records_per_second = _average_per_second(evidence, RECORDS_KEY)
    efo, efo_note = efo_consumer_count(evidence, policy)
    usage = Usage(
        mode=stream.mode,
        shards=stream.open_shards,
        retention_hours=stream.retention_hours,
        bytes_per_second=bytes_per_second,
        records_per_second=records_per_second,
        efo_consumers=efo,
        polling_readers=policy.polling_consumers,
    )
    minutes = len(evidence.values(BYTES_KEY))
    notes = []
    if bytes_per_second is None or records_per_second is None:
        notes.append(
            "CloudWatch returned no IncomingBytes or IncomingRecords in the evidence window: the lines priced "
            "by volume are left at 0"
        )
    else:
        notes.append(
            f"traffic: {bytes_per_second:,.0f} B/s and {records_per_second:,.1f} records/s, the average of the "
            f"{minutes} minute(s) CloudWatch reported, taken as the month's"
        )
    notes.append(efo_note)
    if stream.mode == StreamMode.UNKNOWN:
        notes.append("stream mode unknown: priced as provisioned")
    if usage.on_demand:
        notes.append(f"{usage.polling_readers} polling reader(s) listed in the policy (Lambda and KCL consumers)")
    return usage, tuple(notes)
