"""write-throttling: producers are throttled (WriteProvisionedThroughputExceeded).

The diagnosis, on a provisioned stream with throttled writes:
- the shards are saturated (peak per-minute write utilisation from `capacity.saturated_at`) -> reshard up, sized
  from the load producers offered, estimated from the accepted and the throttled records (capacity.reshard_up):
  what a throttled stream accepted is its capacity, not its load;
- one open shard only -> bursts shorter than a minute (no shard can be hotter than the rest): advice;
- shard-level metrics on, and one shard takes the throttles or the bulk of the bytes or records (or was itself
  saturated in its busiest minute) -> a hot partition key: advice naming the shard;
- shard-level metrics on, and the load and the throttles spread evenly -> bursts shorter than a minute: advice;
- otherwise the remediator cannot tell a hot shard from short bursts, and says how to find out: the command that
  enables shard-level metrics, and what they cost for this stream.
"""

from __future__ import annotations

import shlex
from datetime import datetime
from typing import Any

from pydantic import Field

from remediator.core.consumers import gather_or_error, read_error, read_failure_advice
from remediator.core.evidence import (
    EVIDENCE_WINDOW_MINUTES,
    INCOMING_BYTES,
    INCOMING_RECORDS,
    WRITE_THROTTLED,
    WRITE_THROTTLED_KEY,
    Evidence,
    StreamState,
)
from remediator.core.metrics import MetricQuery, MissingData
from remediator.core.plan import Advice, Cause, Diagnosis, Figure
from remediator.core.policy import DetectorPolicy, StreamPolicy
from remediator.core.ports import ReadPorts
from remediator.core.pricing import (
    SHARD_LEVEL_METRIC_PRICE_NOTE,
    SHARD_LEVEL_METRIC_USD_PER_MONTH,
    monthly_shard_level_metrics_cost,
)
from remediator.core.registry import REGISTRY
from remediator.core.shard_load import (
    SHARD_LOAD,
    SHARD_LOAD_READ_ACTIONS,
    SHARD_LOAD_READ_GRANTS,
    Spread,
    Verdict,
    gather_shard_load,
    judge,
    shard_load,
)
from remediator.core.symptoms.base import AlarmSpec, Symptom
from remediator.core.symptoms.capacity import (
    capacity_figures,
    insufficient,
    is_saturated,
    on_demand,
    saturated,
)

# Shard-level metrics carry the stream-level metric names.
SHARD_METRIC_NAMES = tuple(metric.name for metric in (INCOMING_BYTES, INCOMING_RECORDS, WRITE_THROTTLED))
ENABLE_SHARD_METRICS = "aws kinesis enable-enhanced-monitoring --stream-arn {arn} --shard-level-metrics " + " ".join(
    SHARD_METRIC_NAMES
)
DISABLE_SHARD_METRICS = "aws kinesis disable-enhanced-monitoring --stream-arn {arn} --shard-level-metrics " + " ".join(
    SHARD_METRIC_NAMES
)

HOT_SHARD_OR_BURSTS = "hot-shard-or-bursts"  # cannot tell which
SUB_MINUTE_BURSTS = "sub-minute-bursts"

ON_DEMAND_THROTTLING = Advice(
    title="On-demand stream",
    detail="Throttling on an on-demand stream usually means traffic more than doubled its previous peak "
    "within 15 minutes, or a hot partition key. Spread partition keys and retry with exponential backoff.",
)
SPREAD_KEYS = Advice(
    title="Spread the partition keys",
    detail="Use random or better-spread partition keys so records land evenly on shards.",
)
BATCH_AND_BACK_OFF = Advice(
    title="Batch and back off",
    detail="Batch with PutRecords or the KPL's aggregation; retry throttled records with "
    "exponential backoff and rate-limit the producers.",
)


class WriteThrottlingDetector(DetectorPolicy):
    threshold_records: int = Field(
        1, ge=1, description=f"Alarm when {WRITE_THROTTLED.name} ({WRITE_THROTTLED.statistic} per minute) reaches this."
    )
    datapoints_to_alarm: int = Field(2, ge=1, le=60, description="Breaching minutes needed to alarm.")


@REGISTRY.symptom
class WriteThrottling(Symptom[WriteThrottlingDetector]):
    id = "write-throttling"
    title = "producers throttled"
    meaning = (
        f"Records were rejected with {WRITE_THROTTLED.name}: producers write faster than the "
        "shards accept (1 MB/s or 1,000 records/s per shard), overall or on one hot shard."
    )
    detector_schema = WriteThrottlingDetector
    read_grants = SHARD_LOAD_READ_GRANTS
    # Throttled writes stop as soon as the shards take the load: an alarm still in ALARM after a reshard reached its
    # target means the load needs more (follow-through rechecks it).
    recheck_after_change = True

    def alarms(self, policy: StreamPolicy, detector: WriteThrottlingDetector) -> list[AlarmSpec]:
        # No data means no producer was throttled.
        metric = WRITE_THROTTLED.on(StreamName=policy.name)
        return [self.alarm(detector, metric, detector.threshold_records, missing_data=MissingData.NOT_BREACHING)]

    def evidence_queries(self, policy: StreamPolicy) -> tuple[MetricQuery, ...]:
        own = MetricQuery(WRITE_THROTTLED_KEY, WRITE_THROTTLED.on(StreamName=policy.name))
        return (*super().evidence_queries(policy), own)

    def gather(self, policy: StreamPolicy, stream: StreamState, aws: ReadPorts, now: datetime) -> dict[str, Any]:
        # Shard-level metrics, read only when the stream has some on (DescribeStreamSummary said so). A denied or
        # throttled read is a fact: the diagnosis then cannot tell, and names the read that failed.
        minutes = int(getattr(self, "evidence_window_minutes", EVIDENCE_WINDOW_MINUTES))
        return gather_or_error(SHARD_LOAD, lambda: gather_shard_load(stream, aws, end=now, minutes=minutes))

    def diagnose(self, evidence: Evidence, policy: StreamPolicy) -> Diagnosis:
        throttled = evidence.total(WRITE_THROTTLED_KEY)
        figures = [*capacity_figures(evidence), Figure(name="throttled writes", value=throttled, unit="records")]
        early = on_demand(evidence, figures, (ON_DEMAND_THROTTLING,)) or insufficient(evidence, figures)
        if early:
            return early
        peak = evidence.write_utilisation(peak=True)
        if is_saturated(evidence, policy):
            return saturated(
                evidence,
                policy,
                f"The shards are saturated: writes peaked at {peak:.0%} of the stream's capacity "
                f"(saturated from {policy.capacity.saturated_at:.0%}).",
                figures,
            )
        if throttled <= 0:
            return Diagnosis(
                cause=Cause.NOT_REPRODUCED,
                summary="No throttled writes in the evidence window and the shards are not saturated; "
                "nothing to change.",
                figures=tuple(figures),
            )
        low = (
            f"Writes were throttled although the stream as a whole peaked at only {peak:.0%} of its capacity "
            "in any minute"
        )
        if evidence.stream.open_shards == 1:
            return self._bursts(
                figures, f"{low}, and it has a single open shard, so no shard can be hotter than the others"
            )
        facts = shard_load(evidence)
        if facts is not None and facts.enabled:
            if facts.shards_not_read:  # beyond MAX_SHARDS_READ: judged on the shards that were read
                figures.append(Figure(name="open shards not read", value=facts.shards_not_read))
            verdict = judge(facts, policy.capacity.saturated_at)
            if verdict.spread == Spread.HOT_SHARD:
                return self._hot_shard(figures, low, verdict)
            if verdict.spread == Spread.EVEN:
                figures += self._shard_figures(verdict)
                return self._bursts(
                    figures,
                    f"{low}, and the shard-level metrics show the load spread over the "
                    f"{len(facts.shards)} shards: {verdict.why}",
                )
        return self._cannot_tell(evidence, figures, low, facts is not None and bool(facts.enabled))

    @staticmethod
    def _shard_figures(verdict: Verdict) -> list[Figure]:
        figures = []
        if verdict.share is not None:
            figures.append(Figure(name=f"busiest shard's share of {verdict.of}", value=100 * verdict.share, unit="%"))
        if verdict.peak_utilisation is not None:
            figures.append(
                Figure(name="busiest shard's peak utilisation", value=100 * verdict.peak_utilisation, unit="%")
            )
        return figures

    def _hot_shard(self, figures: list[Figure], low: str, verdict: Verdict) -> Diagnosis:
        return Diagnosis(
            cause=Cause.HOT_PARTITION_KEY,
            summary=f"{low}, and the shard-level metrics show one shard taking the load: {verdict.why}. A hot "
            "partition key sends that shard more than it accepts; more shards would not help.",
            figures=(*figures, *self._shard_figures(verdict)),
            advice=(
                Advice(
                    title="Spread the partition keys",
                    detail=f"Records whose partition keys hash to {verdict.shard} overload it: use more distinct or "
                    "random keys (a random suffix on a hot key), or an ExplicitHashKey that spreads them. If many "
                    f"keys land on {verdict.shard}, splitting it (aws kinesis split-shard) spreads them; a single hot "
                    "key cannot be split.",
                ),
                BATCH_AND_BACK_OFF,
            ),
        )

    @staticmethod
    def _bursts(figures: list[Figure], why: str) -> Diagnosis:
        return Diagnosis(
            cause=SUB_MINUTE_BURSTS,
            summary=f"{why}: bursts shorter than a minute go past a shard's 1 MB/s or 1,000 records/s, and the "
            "per-minute figures average them away. No change is made for a burst.",
            figures=tuple(figures),
            advice=(
                Advice(
                    title="Smooth the bursts",
                    detail="Spread each burst over the second: the KPL's rate limiting and RecordMaxBufferedTime, or "
                    "a token bucket in the producer; retry throttled records with exponential backoff and jitter "
                    "(a throttled record is not lost when it is retried).",
                ),
                Advice(
                    title="If the bursts are the normal shape of the traffic",
                    detail="Size the stream for the burst, not for the minute: reshard by hand. The remediator "
                    "reshards only on saturated per-minute figures.",
                ),
            ),
        )

    @staticmethod
    def _cannot_tell(evidence: Evidence, figures: list[Figure], low: str, enabled: bool) -> Diagnosis:
        stream = evidence.stream
        error = read_error(evidence, SHARD_LOAD)
        metrics = len(SHARD_METRIC_NAMES)
        cost = monthly_shard_level_metrics_cost(stream.open_shards, metrics)
        summary = (
            f"{low}: either a hot partition key overloads one shard, or bursts shorter than a minute overload all "
            "of them, and the stream-level metrics cannot tell which."
        )
        find_out: list[Advice] = []
        if error is not None:
            summary += " Its shard-level metrics could not be read."
            find_out += read_failure_advice(evidence, SHARD_LOAD, "the shard-level metrics", SHARD_LOAD_READ_ACTIONS)
        elif enabled:
            summary += (
                f" Its shard-level metrics are on, but had no datapoint in the last {evidence.window_minutes} minutes."
            )
            find_out.append(
                Advice(
                    title="Wait for the shard-level metrics",
                    detail="Shard-level metrics have datapoints only from when they were enabled: the next alarm "
                    "reads them and tells a hot shard from bursts.",
                )
            )
        else:
            summary += " Shard-level metrics can: see the advice."
            figures = [*figures, Figure(name="shard-level metrics cost", value=round(cost, 2), unit="USD/month")]
            arn = shlex.quote(stream.arn)
            find_out.append(
                Advice(
                    title="Find out: enable shard-level metrics",
                    detail=f"Turn on {', '.join(SHARD_METRIC_NAMES)} per shard: with them, the next alarm tells a hot "
                    "shard (one shard takes the throttles or the bulk of the bytes) from bursts (spread over all "
                    f"shards). They cost about ${cost:,.2f} a month for this stream's {stream.open_shards} shards "
                    f"({metrics} metrics x {stream.open_shards} shards x ${SHARD_LEVEL_METRIC_USD_PER_MONTH:.2f} per "
                    f"metric a month, prorated by the hour; {SHARD_LEVEL_METRIC_PRICE_NOTE}). Turn them off "
                    f"afterwards: {DISABLE_SHARD_METRICS.format(arn=arn)}",
                    cli_command=ENABLE_SHARD_METRICS.format(arn=arn),
                )
            )
        return Diagnosis(
            cause=HOT_SHARD_OR_BURSTS,
            summary=summary,
            figures=tuple(figures),
            advice=(*find_out, SPREAD_KEYS, BATCH_AND_BACK_OFF),
        )
