"""efo-consumer-lag: an enhanced fan-out consumer falls behind (SubscribeToShardEvent.MillisBehindLatest), or its
subscriptions are refused (SubscribeToShard.RateExceeded).

Two alarms per enhanced fan-out consumer the policy lists (`efo: NAME`), on the stream's metrics with the
dimensions StreamName and ConsumerName; their qualifiers are `lag-<consumer>` and `rate-exceeded-<consumer>`.
An enhanced fan-out consumer has 2 MB/s per shard of its own, pushed to it, so its lag is not competition with
other readers: with saturated shards, more shards spread the work (reshard); otherwise the consumer's own code is
slow, which no automatic action fixes (advice). RateExceeded means the consumer subscribed to a shard while a
subscription was active, or more than once per second: subscription handling (advice). Once the furthest-behind
consumer has used `retention_share` of the retention period, raise-retention as well, ahead of the fix for the lag.
"""

from __future__ import annotations

from pydantic import Field

from remediator.core import limits
from remediator.core.evidence import Evidence, StreamMode
from remediator.core.metrics import KINESIS_NAMESPACE, MetricName, MetricQuery, MissingData
from remediator.core.plan import Advice, Cause, Diagnosis, Figure
from remediator.core.policy import DetectorPolicy, StreamPolicy
from remediator.core.registry import REGISTRY
from remediator.core.symptoms.base import AlarmSpec, Symptom
from remediator.core.symptoms.capacity import capacity_figures, insufficient, is_saturated, saturated
from remediator.core.symptoms.lag import protect_data, retention_share_field

MILLIS_BEHIND = MetricName(KINESIS_NAMESPACE, "SubscribeToShardEvent.MillisBehindLatest", "Maximum")
# aws-facts lists no statistic for RateExceeded (UNCONFIRMED): Sum counts the refused subscriptions per minute,
# and reads as "at least one" whatever the metric's unit turns out to be, so the default threshold of 1 holds.
RATE_EXCEEDED = MetricName(KINESIS_NAMESPACE, "SubscribeToShard.RateExceeded", "Sum")

SUBSCRIPTION_CONFLICT = "efo-subscription-conflict"


class EfoConsumerLagDetector(DetectorPolicy):
    threshold_ms: int = Field(
        60_000,
        ge=1_000,
        le=limits.MAX_RETENTION_HOURS * 3_600_000,
        description=f"Alarm when a consumer's {MILLIS_BEHIND.name} ({MILLIS_BEHIND.statistic}) reaches this.",
    )
    rate_exceeded_threshold: int = Field(
        1,
        ge=1,
        description=f"Alarm when a consumer's {RATE_EXCEEDED.name} ({RATE_EXCEEDED.statistic} per minute) reaches "
        "this many refused subscriptions.",
    )
    retention_share: float = retention_share_field()


def lag_key(index: int) -> str:
    return f"efo_lag_{index}"


def rate_key(index: int) -> str:
    return f"efo_rate_exceeded_{index}"


SUBSCRIPTION_ADVICE = (
    "A registered consumer holds one subscription per shard: call SubscribeToShard at most once per second per "
    "shard, renew a subscription only when the previous one has ended (each lasts up to 5 minutes), wait at least "
    "5 seconds before subscribing to the same shard again, and never share one consumer between two applications "
    "or two workers of one shard: register one consumer per reader (the KCL 2.x does all this for you)."
)


@REGISTRY.symptom
class EfoConsumerLag(Symptom[EfoConsumerLagDetector]):
    id = "efo-consumer-lag"
    title = "enhanced fan-out consumer falling behind"
    meaning = (
        f"{MILLIS_BEHIND.name} ({MILLIS_BEHIND.statistic}) of an enhanced fan-out consumer is high: it is that far "
        f"behind the newest record; or {RATE_EXCEEDED.name} says its subscriptions were refused."
    )
    detector_schema = EfoConsumerLagDetector

    def alarms(self, policy: StreamPolicy, detector: EfoConsumerLagDetector) -> list[AlarmSpec]:
        specs = []
        for consumer in policy.efo_consumers:
            # No data means no subscription pushed events in that minute: a consumer that stops altogether is
            # the consumer-stalled symptom's, so a quiet consumer does not alarm here.
            lag = MILLIS_BEHIND.on(StreamName=policy.name, ConsumerName=consumer.efo)
            # No data means no subscription was refused.
            refused = RATE_EXCEEDED.on(StreamName=policy.name, ConsumerName=consumer.efo)
            specs += [
                self.alarm(
                    detector,
                    lag,
                    detector.threshold_ms,
                    missing_data=MissingData.NOT_BREACHING,
                    qualifier=f"lag-{consumer.efo}",
                ),
                self.alarm(
                    detector,
                    refused,
                    detector.rate_exceeded_threshold,
                    missing_data=MissingData.NOT_BREACHING,
                    qualifier=f"rate-exceeded-{consumer.efo}",
                ),
            ]
        return specs

    def evidence_queries(self, policy: StreamPolicy) -> tuple[MetricQuery, ...]:
        own: list[MetricQuery] = []
        for index, consumer in enumerate(policy.efo_consumers):
            own += [
                MetricQuery(lag_key(index), MILLIS_BEHIND.on(StreamName=policy.name, ConsumerName=consumer.efo)),
                MetricQuery(rate_key(index), RATE_EXCEEDED.on(StreamName=policy.name, ConsumerName=consumer.efo)),
            ]
        return (*super().evidence_queries(policy), *own)

    def diagnose(self, evidence: Evidence, policy: StreamPolicy) -> Diagnosis:
        detector = self.detector(policy)
        figures = capacity_figures(evidence)
        lagging: list[tuple[str, float]] = []
        refused: list[tuple[str, float]] = []
        for index, consumer in enumerate(policy.efo_consumers):
            lag = evidence.maximum(lag_key(index))
            rate = evidence.total(rate_key(index))
            if lag is not None:
                figures.append(Figure(name=f"max lag of {consumer.efo}", value=lag / 1000, unit="s"))
                if lag >= detector.threshold_ms:
                    lagging.append((consumer.efo, lag))
            figures.append(Figure(name=f"refused subscriptions of {consumer.efo}", value=rate))
            if rate > 0:
                refused.append((consumer.efo, rate))

        advice: list[Advice] = []
        if refused:
            advice.append(
                Advice(
                    title="Fix subscription handling",
                    detail=f"SubscribeToShard was refused: {self._listed(refused, '{:,.0f} times')}. "
                    + SUBSCRIPTION_ADVICE,
                )
            )
        # Protecting the data comes first: it is the one step that cannot wait for the lag to be fixed. A consumer's
        # MillisBehindLatest is how old the records pushed to it are: the oldest record it has not read.
        worst_name, worst = max(lagging, key=lambda item: item[1], default=("", None))
        protect = protect_data(evidence, worst, detector.retention_share, self.id, reader=worst_name)
        if not lagging and not refused:
            return Diagnosis(
                cause=Cause.NOT_REPRODUCED,
                summary="No enhanced fan-out consumer of the policy was behind by "
                f"{detector.threshold_ms / 1000:,.0f} s or more, and no subscription was refused, in the last "
                f"{evidence.window_minutes} minutes; nothing to change.",
                figures=tuple(figures),
            )
        if not lagging:
            return Diagnosis(
                cause=SUBSCRIPTION_CONFLICT,
                summary=f"Subscriptions were refused ({RATE_EXCEEDED.name}) for "
                f"{self._listed(refused, '{:,.0f}')}: a consumer subscribed to a shard while a subscription was "
                "active, or more than once per second. The consumer's subscription handling needs fixing; no "
                "stream setting changes that.",
                figures=tuple(figures),
                advice=tuple(advice),
            )
        behind = self._listed(lagging, "{:,.0f} s", scale=1000)
        consumer_advice = Advice(
            title="Speed up the consumer",
            detail=f"An enhanced fan-out consumer has 2 MB/s per shard of its own, pushed to it: lag ({behind}) "
            "comes from its processing. Process records outside the subscription's event handler, give it more "
            "workers (one per shard at most) or more CPU and memory, and check its logs for retries of failing "
            "records.",
        )
        if evidence.stream.mode != StreamMode.PROVISIONED:
            return Diagnosis(
                cause=Cause.ON_DEMAND,
                summary=f"Enhanced fan-out consumers fall behind ({behind}) on an on-demand stream: AWS scales its "
                "capacity, so it is never resharded.",
                figures=tuple(figures),
                proposals=protect,
                advice=(*advice, consumer_advice),
            )
        early = insufficient(evidence, figures, advice=(*advice, consumer_advice))
        if early:
            return early.model_copy(update={"proposals": protect})
        peak = evidence.write_utilisation(peak=True)
        if is_saturated(evidence, policy):
            return saturated(
                evidence,
                policy,
                f"Enhanced fan-out consumers fall behind ({behind}) while the shards are saturated (writes "
                f"peaked at {peak:.0%} of capacity): more shards spread the work over more subscriptions.",
                figures,
                before=protect,
                advice=advice,
            )
        return Diagnosis(
            cause=Cause.SLOW_CONSUMER,
            summary=f"Enhanced fan-out consumers fall behind ({behind}) although writes peaked at only {peak:.0%} "
            "of capacity: each has its own read throughput, so the consumer's processing is slow; resharding would "
            "not help.",
            figures=tuple(figures),
            proposals=protect,
            advice=(*advice, consumer_advice),
        )

    @staticmethod
    def _listed(items: list[tuple[str, float]], unit: str, scale: float = 1.0) -> str:
        return ", ".join(f"{name} {unit.format(value / scale)}" for name, value in items)
