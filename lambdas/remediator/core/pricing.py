"""What a Kinesis data stream costs: one dated price table, and the retention arithmetic the plans show.

The table is AWS's list price for Kinesis Data Streams in us-east-1 (provisioned, and on-demand
Standard). Other regions cost more or less, and On-demand Advantage, Savings, free tiers and taxes are
not modelled: a plan's figure is an estimate for a person deciding, never a bill. core/cost.py turns a
stream's usage into itemised monthly lines with these prices.

UNCONFIRMED: ../shared/reference/aws-facts.md confirms none of these prices (it only says that retention
above 24 hours costs extra, and points to the pricing page for the tiers). They were written down on
2026-11-26 from https://aws.amazon.com/kinesis/data-streams/pricing/ and were not re-read from the live
page; check them there before relying on a figure. Every price below is UNCONFIRMED.

How AWS bills (same page):
- provisioned: each shard-hour; each PUT payload unit, a 25 KB chunk of a record (a 5 KB record is one
  unit, a 45 KB record two), per million; reads through GetRecords are not billed;
- on-demand (Standard): each stream-hour; each GB written, every record rounded up to 1 KB; each GB read;
- retention: the first 24 h are included; extended retention (beyond 24 h, up to 7 days): provisioned
  streams pay per shard-hour whatever the volume, on-demand streams per GB-month of data stored in that
  window; long-term retention (beyond 7 days, up to 365 days): per GB-month of data stored beyond 7 days,
  in both modes, on top of the extended retention charge;
- enhanced fan-out: provisioned streams pay per consumer-shard-hour (each registered consumer, for each
  shard) and per GB it reads; on-demand streams per GB read by enhanced fan-out consumers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

HOURS_PER_MONTH: Final = 730  # AWS's pricing pages count a month as 730 hours
SECONDS_PER_MONTH: Final = HOURS_PER_MONTH * 3600
INCLUDED_HOURS: Final = 24
EXTENDED_UNTIL_HOURS: Final = 7 * 24
# AWS bills data in GB of 1,024 x 1,024 x 1,024 bytes (the page rounds records to "1 KB (1,024 bytes)").
BYTES_PER_GB: Final = 1024**3
# Provisioned: a record is billed as whole 25 KB PUT payload units; on-demand: rounded up to whole 1 KB.
PUT_PAYLOAD_UNIT_BYTES: Final = 25 * 1024
ON_DEMAND_RECORD_ROUNDING_BYTES: Final = 1024


@dataclass(frozen=True)
class KinesisPrices:
    """One region's Kinesis Data Streams prices, in USD, with where and when they were taken."""

    region: str
    taken_on: str
    source: str
    confirmed: bool
    # Provisioned
    shard_hour: float
    put_payload_units_per_million: float
    extended_per_shard_hour: float  # retention 24 h .. 7 days
    efo_consumer_shard_hour: float
    efo_retrieval_per_gb: float
    # On-demand (Standard)
    on_demand_stream_hour: float
    on_demand_ingest_per_gb: float
    on_demand_retrieval_per_gb: float
    on_demand_efo_retrieval_per_gb: float
    extended_per_gb_month_on_demand: float  # retention 24 h .. 7 days
    # Both modes
    long_term_per_gb_month: float  # retention beyond 7 days


# The name the retention arithmetic was first written against.
RetentionPrices = KinesisPrices

PRICES: Final = KinesisPrices(
    region="us-east-1",
    taken_on="2026-11-26",
    source="https://aws.amazon.com/kinesis/data-streams/pricing/",
    confirmed=False,  # UNCONFIRMED: not in aws-facts.md; see the module docstring
    shard_hour=0.015,
    put_payload_units_per_million=0.014,
    extended_per_shard_hour=0.020,
    efo_consumer_shard_hour=0.015,
    efo_retrieval_per_gb=0.013,
    on_demand_stream_hour=0.04,
    on_demand_ingest_per_gb=0.08,
    on_demand_retrieval_per_gb=0.04,
    on_demand_efo_retrieval_per_gb=0.05,
    extended_per_gb_month_on_demand=0.10,
    long_term_per_gb_month=0.023,
)


def stored_gb(average_bytes_per_second: float, hours: float) -> float:
    """GB held at any time by `hours` of a stream writing `average_bytes_per_second`."""
    return max(average_bytes_per_second, 0.0) * 3600 * max(hours, 0.0) / BYTES_PER_GB


def extended_hours(retention_hours: int) -> int:
    """The part of the retention period billed as extended retention (24 h .. 7 days)."""
    return max(min(retention_hours, EXTENDED_UNTIL_HOURS) - INCLUDED_HOURS, 0)


def long_term_hours(retention_hours: int) -> int:
    """The part of the retention period billed as long-term retention (beyond 7 days)."""
    return max(retention_hours - EXTENDED_UNTIL_HOURS, 0)


def monthly_retention_cost(
    retention_hours: int,
    *,
    shards: int,
    average_bytes_per_second: float,
    on_demand: bool = False,
    prices: KinesisPrices = PRICES,
) -> float:
    """USD a month for keeping records `retention_hours` (0 up to 24 h, which is included).

    Provisioned: extended retention is shards x 730 h x the shard-hour price; on-demand: the data in the
    24 h .. 7 days window x the GB-month price. Beyond 7 days, the data in that part of the window x the
    long-term GB-month price. The data volume is the stream's average IncomingBytes.
    """
    if retention_hours <= INCLUDED_HOURS:
        return 0.0
    if on_demand:
        extended = (
            stored_gb(average_bytes_per_second, extended_hours(retention_hours))
            * prices.extended_per_gb_month_on_demand
        )
    else:
        extended = max(shards, 0) * HOURS_PER_MONTH * prices.extended_per_shard_hour
    long_term = stored_gb(average_bytes_per_second, long_term_hours(retention_hours)) * prices.long_term_per_gb_month
    return extended + long_term


def price_note(prices: KinesisPrices = PRICES) -> str:
    """Where a plan's cost figure comes from, in a few words."""
    status = "" if prices.confirmed else ", UNCONFIRMED"
    return f"{prices.region} list prices of {prices.taken_on}{status}"


# --- Enhanced (shard-level) Kinesis metrics -------------------------------------------------------------------
# What turning shard-level metrics on costs (write-throttling prints it with the command that does it). Kept
# apart from the retention prices above: a different AWS service's price list.
#
# AWS's Kinesis developer guide (monitoring-with-cloudwatch) says shard-level data "is sent every minute for an
# additional cost" and points to the CloudWatch pricing page. CloudWatch bills each (metric name, dimensions)
# pair as one custom metric, so each enabled metric costs this much per shard per month, prorated by the hour.
# UNCONFIRMED: ../shared/reference/aws-facts.md §6 only says they "cost extra". The figure is CloudWatch's first
# tier for custom metrics (the first 10,000 metrics of an account) in us-east-1, written down on 2026-11-26
# from https://aws.amazon.com/cloudwatch/pricing/ and not re-read from the live page; higher volumes cost less
# per metric, and the GetMetricData requests that read them are billed apart.
SHARD_LEVEL_METRIC_USD_PER_MONTH: Final = 0.30
SHARD_LEVEL_METRIC_PRICE_NOTE: Final = "CloudWatch custom-metric list price, us-east-1, 2026-11-26, UNCONFIRMED"


def monthly_shard_level_metrics_cost(
    shards: int, metrics: int, per_metric_month: float = SHARD_LEVEL_METRIC_USD_PER_MONTH
) -> float:
    """USD a month for `metrics` shard-level metrics on `shards` shards, kept on for the whole month."""
    return max(shards, 0) * max(metrics, 0) * per_metric_month


# --- CloudWatch alarms ---------------------------------------------------------------------------------------------
# What the stack's alarms cost (README "Fleet alarms" computes its table from these, core.fleet.alarm_bill). A
# standard-resolution alarm is billed per metric it lists (a metric-math alarm per metric in its expression);
# the free tier's 10 alarm metrics apply to those alarms only ("only applicable to Standard resolution alarms that
# list metrics directly and don't use a Metrics Insights query", https://aws.amazon.com/cloudwatch/pricing/).
# A Metrics Insights query alarm is billed per metric its query analyses, per hour ("a Metric Insights query alarm
# that references a query whose filter matches ten metrics incurs ten metrics analyzed cost", CloudWatch user
# guide, cloudwatch_billing / "CloudWatch alarms" pricing notes). UNCONFIRMED: the two dollar figures, $0.10 per
# alarm metric-month and $0.10 per metric analysed-month in us-east-1, come from third-party summaries of
# https://aws.amazon.com/cloudwatch/pricing/ (2026-11-26) that agree with each other, not from the live page;
# aws-facts.md is silent on alarm prices.
ALARM_METRIC_USD_PER_MONTH: Final = 0.10
FREE_ALARM_METRICS: Final = 10  # per account and month, standard alarms only
METRICS_INSIGHTS_METRIC_ANALYZED_USD_PER_MONTH: Final = 0.10
ALARM_PRICE_NOTE: Final = "CloudWatch alarm list prices, us-east-1, 2026-11-26, UNCONFIRMED"


def monthly_alarm_cost(standard_alarm_metrics: int, metrics_analyzed: int, *, free_tier: bool = True) -> float:
    """USD a month for standard alarms listing `standard_alarm_metrics` metrics in all, and Metrics Insights alarms
    whose queries analyse `metrics_analyzed` metrics in all (the free tier applies to the former only)."""
    billed = max(standard_alarm_metrics - (FREE_ALARM_METRICS if free_tier else 0), 0)
    return (
        billed * ALARM_METRIC_USD_PER_MONTH + max(metrics_analyzed, 0) * METRICS_INSIGHTS_METRIC_ANALYZED_USD_PER_MONTH
    )
