"""efo-consumer-lag: two alarms per enhanced fan-out consumer of the policy, and the diagnosis that tells a
saturated stream (reshard) from a slow consumer or refused subscriptions (advice)."""

from __future__ import annotations

import pytest
from remediator.core.evidence import Evidence
from remediator.core.metrics import Comparison, MissingData
from remediator.core.plan import Cause, Proposal
from remediator.core.policy import StreamPolicy
from remediator.core.registry import REGISTRY

from tests.fakes import evidence, policy

LAG = REGISTRY.symptoms["efo-consumer-lag"]


def efo_policy(*names: str, **detector: int) -> StreamPolicy:
    return policy(
        consumers=[{"function": "orders-processor"}, *({"efo": n} for n in names)],
        detectors={"efo_consumer_lag": detector} if detector else {},
    )


def lag_evidence(
    lags_ms: list[float | None],
    refused: list[float] | None = None,
    *,
    bytes_per_second: float = 200_000,
    mode: str = "PROVISIONED",
    retention_hours: int = 24,
) -> Evidence:
    base = evidence(shards=2, bytes_per_second=bytes_per_second, mode=mode, retention_hours=retention_hours)
    series = dict(base.series)
    for index, lag in enumerate(lags_ms):
        if lag is not None:
            series[f"efo_lag_{index}"] = (lag,) * base.window_minutes
        series[f"efo_rate_exceeded_{index}"] = ((refused or [0.0] * len(lags_ms))[index],) * base.window_minutes
    return base.model_copy(update={"series": series})


def test_two_alarms_per_enhanced_fan_out_consumer() -> None:
    # Given two enhanced fan-out consumers and a Lambda consumer, and custom thresholds
    p = efo_policy("analytics", "search.v2", threshold_ms=90_000, rate_exceeded_threshold=3)
    # When the symptom declares its alarms
    specs = LAG.alarms(p, LAG.detector(p))
    # Then each EFO consumer (only they) gets a lag alarm and a refused-subscription alarm, on its own dimensions
    assert [
        (s.qualifier, s.metric.name, s.metric.statistic, s.metric.dimension_map, s.threshold)  # type: ignore[union-attr]
        for s in specs
    ] == [
        (
            "lag-analytics",
            "SubscribeToShardEvent.MillisBehindLatest",
            "Maximum",
            {"StreamName": "orders", "ConsumerName": "analytics"},
            90_000,
        ),
        (
            "rate-exceeded-analytics",
            "SubscribeToShard.RateExceeded",
            "Sum",
            {"StreamName": "orders", "ConsumerName": "analytics"},
            3,
        ),
        (
            "lag-search.v2",
            "SubscribeToShardEvent.MillisBehindLatest",
            "Maximum",
            {"StreamName": "orders", "ConsumerName": "search.v2"},
            90_000,
        ),
        (
            "rate-exceeded-search.v2",
            "SubscribeToShard.RateExceeded",
            "Sum",
            {"StreamName": "orders", "ConsumerName": "search.v2"},
            3,
        ),
    ]
    # And no data is not breaching for both (a stopped consumer is consumer-stalled's; no refusal is no data)
    assert {(s.missing_data, s.comparison) for s in specs} == {
        (MissingData.NOT_BREACHING, Comparison.GREATER_THAN_OR_EQUAL_TO_THRESHOLD)
    }


def test_a_stream_without_enhanced_fan_out_consumers_has_no_alarm() -> None:
    p = efo_policy()
    assert LAG.alarms(p, LAG.detector(p)) == []


def test_evidence_is_keyed_per_consumer() -> None:
    keys = [q.key for q in LAG.evidence_queries(efo_policy("analytics", "search"))]
    assert keys == [
        "incoming_bytes",
        "incoming_records",
        "efo_lag_0",
        "efo_rate_exceeded_0",
        "efo_lag_1",
        "efo_rate_exceeded_1",
    ]


def test_lag_on_saturated_shards_reshards() -> None:
    # Given a consumer 5 minutes behind while writes use 95 % of the shards
    diagnosis = LAG.diagnose(lag_evidence([300_000, 1_000], bytes_per_second=1_900_000), efo_policy("a", "b"))
    # Then more shards are proposed
    assert diagnosis.cause == Cause.SATURATED
    assert diagnosis.summary == (
        "Enhanced fan-out consumers fall behind (a 300 s) while the shards are saturated (writes peaked at 95% of "
        "capacity): more shards spread the work over more subscriptions."
    )
    assert diagnosis.proposals == (
        Proposal(
            action="reshard",
            parameters={"desired_shards": 4},
            reason="peak write utilisation 95%; 4 shards would put the observed peak at 60% of capacity",
        ),
    )


def test_lag_on_unsaturated_shards_is_the_consumers_code() -> None:
    # Given a consumer 5 minutes behind while writes use 10 % of the shards
    diagnosis = LAG.diagnose(lag_evidence([None, 300_000]), efo_policy("a", "b"))
    # Then no action: the consumer's processing is slow, and the advice says how to speed it up
    assert (diagnosis.cause, diagnosis.proposals) == (Cause.SLOW_CONSUMER, ())
    assert diagnosis.summary == (
        "Enhanced fan-out consumers fall behind (b 300 s) although writes peaked at only 10% of capacity: each has "
        "its own read throughput, so the consumer's processing is slow; resharding would not help."
    )
    assert [a.title for a in diagnosis.advice] == ["Speed up the consumer"]
    figures = {f.name: f.value for f in diagnosis.figures}
    assert figures["max lag of b"] == 300
    assert "max lag of a" not in figures


def test_a_lag_just_below_the_threshold_is_not_lag() -> None:
    diagnosis = LAG.diagnose(lag_evidence([59_999]), efo_policy("a"))
    assert diagnosis.cause == Cause.NOT_REPRODUCED
    assert LAG.diagnose(lag_evidence([60_000]), efo_policy("a")).cause == Cause.SLOW_CONSUMER


def test_refused_subscriptions_get_subscription_advice() -> None:
    # Given no lag, but subscriptions refused for one consumer
    diagnosis = LAG.diagnose(lag_evidence([1_000, 1_000], refused=[0, 2]), efo_policy("a", "b"))
    # Then the cause is the subscription handling, with the concrete rules
    assert (diagnosis.cause, diagnosis.proposals) == ("efo-subscription-conflict", ())
    assert diagnosis.summary.startswith("Subscriptions were refused (SubscribeToShard.RateExceeded) for b 30:")
    (advice,) = diagnosis.advice
    assert advice.title == "Fix subscription handling"
    assert advice.detail.startswith("SubscribeToShard was refused: b 30 times. A registered consumer holds one")
    assert "never share one consumer between two applications" in advice.detail


def test_lag_and_refusals_together_get_both_pieces_of_advice() -> None:
    diagnosis = LAG.diagnose(lag_evidence([300_000], refused=[1]), efo_policy("a"))
    assert diagnosis.cause == Cause.SLOW_CONSUMER
    assert [a.title for a in diagnosis.advice] == ["Fix subscription handling", "Speed up the consumer"]


@pytest.mark.parametrize(
    ("lag_hours", "warned"),
    [pytest.param(11.9, False, id="49.6 % of 24 h"), pytest.param(12, True, id="50 % of 24 h")],
)
def test_lag_at_half_the_retention_warns_of_data_loss(lag_hours: float, warned: bool) -> None:
    diagnosis = LAG.diagnose(lag_evidence([lag_hours * 3_600_000]), efo_policy("a"))
    titles = [a.title for a in diagnosis.advice]
    assert ("Data-loss risk: raise retention" in titles) is warned


def test_on_demand_stream_is_never_resharded() -> None:
    ev = lag_evidence([300_000], bytes_per_second=1_900_000, mode="ON_DEMAND")
    diagnosis = LAG.diagnose(ev, efo_policy("a"))
    assert (diagnosis.cause, diagnosis.proposals) == (Cause.ON_DEMAND, ())
    assert [a.title for a in diagnosis.advice] == ["Speed up the consumer"]


def test_lag_without_write_traffic_data_does_not_guess() -> None:
    ev = lag_evidence([300_000])
    ev = ev.model_copy(update={"series": {k: v for k, v in ev.series.items() if not k.startswith("incoming")}})
    diagnosis = LAG.diagnose(ev, efo_policy("a"))
    assert (diagnosis.cause, diagnosis.proposals) == (Cause.INSUFFICIENT_EVIDENCE, ())


def test_a_single_refused_subscription_counts() -> None:
    # Given one refused subscription in the whole window, and no lag
    ev = lag_evidence([1_000])
    ev = ev.model_copy(update={"series": ev.series | {"efo_rate_exceeded_0": (1.0,)}})
    # Then it is diagnosed, not dismissed
    assert LAG.diagnose(ev, efo_policy("a")).cause == "efo-subscription-conflict"
