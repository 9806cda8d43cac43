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
HOUR_MS = 3_600_000


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
            reason="peak write utilisation 95%; 4 shards would put the observed peak at 48% of capacity (target 60%)",
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
    ("lag_hours", "raised"),
    [pytest.param(11.9, False, id="49.6 % of 24 h"), pytest.param(12, True, id="50 % of 24 h")],
)
def test_lag_at_half_the_retention_proposes_raise_retention_and_keeps_the_advice(
    lag_hours: float, raised: bool
) -> None:
    # Given consumer 'a' this far behind on idle shards (the fix for the lag: advice to speed up the consumer)
    age = int(lag_hours * HOUR_MS)
    # When diagnosed
    diagnosis = LAG.diagnose(lag_evidence([age]), efo_policy("a"))
    # Then from half the retention raise-retention is proposed with its age; the advice for the lag stays either way
    assert [(p.action, p.parameters) for p in diagnosis.proposals] == (
        [("raise-retention", {"oldest_record_age_ms": age})] if raised else []
    )
    assert (diagnosis.cause, [a.title for a in diagnosis.advice]) == (Cause.SLOW_CONSUMER, ["Speed up the consumer"])


@pytest.mark.parametrize(
    ("lag_hours", "retention_hours", "raised"),
    [
        pytest.param(11.9, 24, False, id="49.6 % of 24 h: the reshard only"),
        pytest.param(12, 24, True, id="50 % of 24 h: raise-retention ahead of the reshard"),
        pytest.param(23.9, 48, False, id="49.8 % of 48 h"),
        pytest.param(30, 48, True, id="62.5 % of 48 h"),
    ],
)
def test_lag_at_the_retention_share_raises_retention_as_well_as_the_reshard(
    lag_hours: float, retention_hours: int, raised: bool
) -> None:
    # Given consumer 'b' this far behind ('a' a little) on saturated shards (the fix for the lag: reshard)
    age = int(lag_hours * HOUR_MS)
    ev = lag_evidence([120_000, age], bytes_per_second=1_900_000, retention_hours=retention_hours)
    # When diagnosed
    diagnosis = LAG.diagnose(ev, efo_policy("a", "b"))
    # Then raise-retention for the furthest-behind consumer comes first from the share on; the reshard stays
    retention = [("raise-retention", {"oldest_record_age_ms": age})] if raised else []
    assert [(p.action, p.parameters) for p in diagnosis.proposals] == [
        *retention,
        ("reshard", {"desired_shards": 4}),
    ]


def test_retention_share_comes_from_its_own_detector() -> None:
    # Given a detector that proposes raise-retention from a quarter of the retention, and 'a' 7 h behind (29 %)
    p = policy(consumers=[{"efo": "a"}], detectors={"efo_consumer_lag": {"retention_share": 0.25}})
    # When diagnosed
    (proposal,) = LAG.diagnose(lag_evidence([7 * HOUR_MS]), p).proposals
    # Then raise-retention is proposed, the reason naming the detector's setting and the consumer
    assert proposal == Proposal(
        action="raise-retention",
        parameters={"oldest_record_age_ms": 7 * HOUR_MS},
        reason="the oldest unread record is 29% of the way to expiry (retention 24 h; "
        "detectors.efo_consumer_lag.retention_share is 25%); furthest behind: a",
    )
    # And the default detector does not propose it at 29 %
    assert LAG.diagnose(lag_evidence([7 * HOUR_MS]), efo_policy("a")).proposals == ()


def test_retention_share_is_the_one_iterator_age_has() -> None:
    # The field is shared (symptoms.lag.retention_share_field): same default, bounds and description
    ours = LAG.detector_schema.model_fields["retention_share"]
    theirs = REGISTRY.symptoms["iterator-age"].detector_schema.model_fields["retention_share"]
    assert (ours.default, ours.metadata, ours.description) == (theirs.default, theirs.metadata, theirs.description)


def test_refusals_alone_never_raise_retention() -> None:
    # Given subscriptions refused and no consumer behind the threshold
    diagnosis = LAG.diagnose(lag_evidence([1_000], refused=[3]), efo_policy("a"))
    # Then there is no lag to protect the data from: nothing is proposed
    assert (diagnosis.cause, diagnosis.proposals) == ("efo-subscription-conflict", ())


def test_on_demand_stream_is_never_resharded() -> None:
    ev = lag_evidence([300_000], bytes_per_second=1_900_000, mode="ON_DEMAND")
    diagnosis = LAG.diagnose(ev, efo_policy("a"))
    assert (diagnosis.cause, diagnosis.proposals) == (Cause.ON_DEMAND, ())
    assert [a.title for a in diagnosis.advice] == ["Speed up the consumer"]
    # And past half the retention, its retention is raised all the same (retention is not a matter of capacity)
    ev = lag_evidence([13 * HOUR_MS], bytes_per_second=1_900_000, mode="ON_DEMAND")
    assert [p.action for p in LAG.diagnose(ev, efo_policy("a")).proposals] == ["raise-retention"]


def test_lag_without_write_traffic_data_does_not_guess() -> None:
    ev = lag_evidence([300_000])
    ev = ev.model_copy(update={"series": {k: v for k, v in ev.series.items() if not k.startswith("incoming")}})
    diagnosis = LAG.diagnose(ev, efo_policy("a"))
    assert (diagnosis.cause, diagnosis.proposals) == (Cause.INSUFFICIENT_EVIDENCE, ())
    # And past half the retention, the one proposal that needs no write figures is still made
    ev = ev.model_copy(update={"series": ev.series | {"efo_lag_0": (13.0 * HOUR_MS,) * ev.window_minutes}})
    diagnosis = LAG.diagnose(ev, efo_policy("a"))
    assert (diagnosis.cause, [p.action for p in diagnosis.proposals]) == (
        Cause.INSUFFICIENT_EVIDENCE,
        ["raise-retention"],
    )


def test_a_single_refused_subscription_counts() -> None:
    # Given one refused subscription in the whole window, and no lag
    ev = lag_evidence([1_000])
    ev = ev.model_copy(update={"series": ev.series | {"efo_rate_exceeded_0": (1.0,)}})
    # Then it is diagnosed, not dismissed
    assert LAG.diagnose(ev, efo_policy("a")).cause == "efo-subscription-conflict"
