"""Symptoms: the alarm each one declares, and the diagnosis it draws from the evidence."""

from __future__ import annotations

from typing import Any

import pytest
from remediator.core.actions.base import ValidationContext
from remediator.core.evidence import Evidence
from remediator.core.history import ActionHistory
from remediator.core.metrics import Comparison, Metric, MissingData
from remediator.core.plan import Cause, Diagnosis, Proposal
from remediator.core.policy import StreamPolicy
from remediator.core.registry import REGISTRY
from remediator.core.symptoms.base import AlarmSpec, Symptom

from tests.fakes import NOW, evidence, policy, stream_arn

WRITE = REGISTRY.symptoms["write-throttling"]
AGE = REGISTRY.symptoms["iterator-age"]
RESHARD = REGISTRY.actions["reshard"]
ARN = stream_arn("orders")
HOUR_MS = 3_600_000


def without_write_traffic(base: Evidence) -> Evidence:
    """The same evidence, but CloudWatch returned no IncomingBytes and no IncomingRecords."""
    series = {k: v for k, v in base.series.items() if k not in ("incoming_bytes", "incoming_records")}
    return base.model_copy(update={"series": series})


def shaped(proposal: Proposal, ev: Evidence, p: StreamPolicy) -> Proposal:
    """The proposal as the reshard action shapes it into one call (what the planner does next)."""
    context = ValidationContext(policy=p, evidence=ev, history=ActionHistory(), now=NOW)
    return RESHARD.shape(proposal, context)


def figures(diagnosis: Diagnosis) -> dict[str, tuple[float, str]]:
    return {f.name: (f.value, f.unit) for f in diagnosis.figures}


# write-throttling ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("shards", "bytes_per_s", "records_per_s", "max_shards", "parameters", "reason"),
    [
        pytest.param(
            2,
            1_900_000,
            0,
            16,
            {"current_shards": 2, "desired_shards": 4, "target_shards": 4},
            "peak write utilisation 95%; 4 shards would put the observed peak at 48% of capacity (target 60%)",
            id="bytes-saturated 2 -> 4",
        ),
        pytest.param(
            4,
            0,
            3_800,
            16,
            {"current_shards": 4, "desired_shards": 7, "target_shards": 7},
            "peak write utilisation 95%; 150 records were throttled, so what the stream accepted is a lower bound of "
            "what producers offer: accepted plus throttled records give an estimated peak of 0.00 MB/s and 3,800 "
            "records/s (an estimate: throttled records include the producers' retries, so it may overstate; one call "
            "at most doubles the shards and the policy's max_shards bounds them); 7 shards would put that estimated "
            "peak at 54% of capacity (target 60%)",
            id="records-saturated 4 -> 7 (throttled records: sized from the estimate)",
        ),
        pytest.param(
            2,
            1_600_000,
            0,
            16,
            {"current_shards": 2, "desired_shards": 3, "target_shards": 3},
            "peak write utilisation 80%; 3 shards would put the observed peak at 53% of capacity (target 60%)",
            id="exactly at saturated_at (80%) counts as saturated",
        ),
        pytest.param(
            8,
            7_600_000,
            0,
            10,
            {"current_shards": 8, "desired_shards": 13, "target_shards": 10},
            "peak write utilisation 95%; 13 shards would put the observed peak at 58% of capacity (target 60%); "
            "this call goes to 10 because policy max_shards is 10; 10 shards put the observed write peak at 76% of "
            "capacity",
            id="capped by max_shards, reason says why",
        ),
        pytest.param(
            2,
            3_000_000,
            0,
            16,
            {"current_shards": 2, "desired_shards": 5, "target_shards": 4},
            "peak write utilisation 150%; 5 shards would put the observed peak at 60% of capacity (target 60%); "
            "this call goes to 4 because AWS allows at most 2x per call (4); 4 shards put the observed write peak at "
            "75% of capacity",
            id="capped at 2x, reason says why",
        ),
    ],
)
def test_write_throttling_saturated_proposes_one_reshard(
    shards: int, bytes_per_s: float, records_per_s: float, max_shards: int, parameters: dict, reason: str
) -> None:
    # Given throttled writes on saturated shards
    ev = evidence(
        shards=shards, bytes_per_second=bytes_per_s, records_per_second=records_per_s, throttled_per_minute=10
    )
    p = policy(reshard={"max_shards": max_shards})
    # When the write-throttling symptom is diagnosed
    diagnosis = WRITE.diagnose(ev, p)
    # Then the cause is saturation and there is exactly one reshard proposal for the desired count
    assert diagnosis.cause == Cause.SATURATED
    (proposal,) = diagnosis.proposals
    why, _, _ = reason.partition("; this call goes to")
    assert proposal == Proposal(
        action="reshard", parameters={"desired_shards": parameters["desired_shards"]}, reason=why
    )
    assert diagnosis.advice == ()
    # And the reshard action turns it into one call with these parameters, saying why it was limited
    assert shaped(proposal, ev, p) == Proposal(action="reshard", parameters=parameters, reason=reason)


def test_write_throttling_saturated_summary_and_figures() -> None:
    diagnosis = WRITE.diagnose(evidence(shards=2, bytes_per_second=1_900_000, throttled_per_minute=4), policy())
    assert diagnosis.summary == (
        "The shards are saturated: writes peaked at 95% of the stream's capacity (saturated from 80%)."
    )
    assert figures(diagnosis) == {
        "open shards": (2, ""),
        "peak write utilisation": (95.0, "%"),
        "average write utilisation": (95.0, "%"),
        "peak incoming bytes": (1_900_000.0, "B/s"),
        "peak incoming records": (0.0, "records/s"),
        "throttled writes": (60.0, "records"),
    }


def test_write_throttling_respects_policy_saturation_threshold() -> None:
    # Given 70% peak utilisation and a policy whose capacity block calls 65% saturated
    ev = evidence(shards=2, bytes_per_second=1_400_000, throttled_per_minute=1)
    p = policy(capacity={"saturated_at": 0.65, "target_utilisation": 0.5})
    # When diagnosed
    diagnosis = WRITE.diagnose(ev, p)
    # Then it reshards towards 50%: 1.4 MB/s / 0.5 -> 3 shards
    assert diagnosis.cause == Cause.SATURATED
    assert diagnosis.summary.endswith("(saturated from 65%).")
    (proposal,) = diagnosis.proposals
    assert proposal.parameters == {"desired_shards": 3}
    assert shaped(proposal, ev, p).parameters == {"current_shards": 2, "desired_shards": 3, "target_shards": 3}


def test_write_throttling_below_the_default_saturation_is_not_saturated() -> None:
    # Given the same 70% peak with the default capacity block (saturated from 80%)
    ev = evidence(shards=2, bytes_per_second=1_400_000, throttled_per_minute=1)
    # Then it is not saturation, so no reshard: the threshold above really came from the policy
    diagnosis = WRITE.diagnose(ev, policy())
    assert (diagnosis.cause, diagnosis.proposals) == ("hot-shard-or-bursts", ())


def test_write_throttling_with_low_utilisation_and_no_shard_metrics_cannot_tell() -> None:
    # Given throttled writes while the stream as a whole runs at 10%, and no shard-level metrics
    ev = evidence(shards=4, bytes_per_second=400_000, throttled_per_minute=3)
    # When diagnosed
    diagnosis = WRITE.diagnose(ev, policy())
    # Then a hot shard and short bursts cannot be told apart: advice only, starting with the command that finds out
    assert diagnosis.cause == "hot-shard-or-bursts"
    assert diagnosis.proposals == ()
    assert diagnosis.summary == (
        "Writes were throttled although the stream as a whole peaked at only 10% of its capacity in any minute: "
        "either a hot partition key overloads one shard, or bursts shorter than a minute overload all of them, and "
        "the stream-level metrics cannot tell which. Shard-level metrics can: see the advice."
    )
    assert [a.title for a in diagnosis.advice] == [
        "Find out: enable shard-level metrics",
        "Spread the partition keys",
        "Batch and back off",
    ]
    assert [a.cli_command for a in diagnosis.advice] == [
        f"aws kinesis enable-enhanced-monitoring --stream-arn {ARN} "
        "--shard-level-metrics IncomingBytes IncomingRecords WriteProvisionedThroughputExceeded",
        None,
        None,
    ]


def test_write_throttling_not_throttled_not_saturated_is_not_reproduced() -> None:
    diagnosis = WRITE.diagnose(evidence(shards=4, bytes_per_second=400_000, throttled_per_minute=0), policy())
    assert diagnosis.cause == Cause.NOT_REPRODUCED
    assert diagnosis.summary == (
        "No throttled writes in the evidence window and the shards are not saturated; nothing to change."
    )
    assert (diagnosis.proposals, diagnosis.advice) == ((), ())


@pytest.mark.parametrize("symptom", [WRITE, AGE], ids=lambda s: s.id)
def test_on_demand_stream_is_never_resharded(symptom: Symptom[Any]) -> None:
    # Given an on-demand stream that would look saturated if it were provisioned
    ev = evidence(
        shards=2,
        bytes_per_second=1_900_000,
        throttled_per_minute=10,
        mode="ON_DEMAND",
        iterator_age_ms=60_000,
    )
    # When diagnosed
    diagnosis = symptom.diagnose(ev, policy())
    # Then the cause is the on-demand mode, with advice and no proposals
    assert diagnosis.cause == Cause.ON_DEMAND
    assert diagnosis.proposals == ()
    assert diagnosis.summary == "The stream is on-demand: AWS scales its capacity, so it is never resharded."
    expected_first_advice = {"write-throttling": "On-demand stream", "iterator-age": "Speed up the consumer"}
    assert diagnosis.advice[0].title == expected_first_advice[symptom.id]


@pytest.mark.parametrize("symptom", [WRITE, AGE], ids=lambda s: s.id)
def test_no_write_traffic_data_is_insufficient_evidence(symptom: Symptom[Any]) -> None:
    # Given CloudWatch returned neither IncomingBytes nor IncomingRecords
    ev = without_write_traffic(evidence(shards=2, throttled_per_minute=10, iterator_age_ms=60_000))
    # When diagnosed
    diagnosis = symptom.diagnose(ev, policy())
    # Then the remediator does not guess
    assert diagnosis.cause == Cause.INSUFFICIENT_EVIDENCE
    assert diagnosis.proposals == ()
    assert diagnosis.summary == (
        "CloudWatch returned no IncomingBytes or IncomingRecords for the last 15 minutes; "
        "without these datapoints the remediator does not guess."
    )
    assert [a.title for a in diagnosis.advice] == ["Check the metrics"]
    # And the write figures it could not compute are n/a, not 0 %
    shown = {f.name: f.render() for f in diagnosis.figures}
    assert shown["open shards"] == "2"
    for name in ("peak write utilisation", "average write utilisation", "peak incoming bytes", "peak incoming records"):
        assert shown[name] == "n/a", name


def test_zero_write_traffic_is_data_not_missing_data() -> None:
    # Datapoints of 0 are evidence (an idle stream), unlike no datapoints at all.
    diagnosis = WRITE.diagnose(evidence(shards=2, throttled_per_minute=0), policy())
    assert diagnosis.cause == Cause.NOT_REPRODUCED
    # And its figures are a measured 0, not n/a
    shown = {f.name: f.render() for f in diagnosis.figures}
    assert shown["peak write utilisation"] == "0 %"


def test_on_demand_is_checked_before_missing_data() -> None:
    ev = without_write_traffic(evidence(mode="ON_DEMAND"))
    assert WRITE.diagnose(ev, policy()).cause == Cause.ON_DEMAND


# iterator-age --------------------------------------------------------------------------------------
def test_iterator_age_on_saturated_shards_proposes_reshard() -> None:
    # Given consumers behind on shards at 90% peak write utilisation
    ev = evidence(shards=2, bytes_per_second=1_800_000, iterator_age_ms=120_000)
    # When diagnosed
    diagnosis = AGE.diagnose(ev, policy())
    # Then more shards are asked for: 1.8 MB/s at 60% -> 3
    assert diagnosis.cause == Cause.SATURATED
    reason = "peak write utilisation 90%; 3 shards would put the observed peak at 60% of capacity (target 60%)"
    assert diagnosis.proposals == (Proposal(action="reshard", parameters={"desired_shards": 3}, reason=reason),)
    assert diagnosis.advice == ()
    (proposal,) = diagnosis.proposals
    assert shaped(proposal, ev, policy()).parameters == {"current_shards": 2, "desired_shards": 3, "target_shards": 3}


@pytest.mark.parametrize(
    ("consumers", "named"),
    [
        pytest.param(
            [{"function": "orders-reader"}, {"function": "audit_writer"}],
            "orders-reader, audit_writer",
            id="policy consumers named",
        ),
        pytest.param([], "the stream's consumers", id="no consumers in the policy"),
    ],
)
def test_iterator_age_without_saturation_is_a_slow_consumer(consumers: list, named: str) -> None:
    # Given consumers 2 minutes behind on a stream at 10% utilisation
    ev = evidence(shards=2, bytes_per_second=200_000, iterator_age_ms=120_000)
    # When diagnosed
    diagnosis = AGE.diagnose(ev, policy(consumers=consumers))
    # Then the consumer is the bottleneck: advice naming the policy's consumers, no proposals
    assert diagnosis.cause == Cause.SLOW_CONSUMER
    assert diagnosis.proposals == ()
    assert diagnosis.summary == (
        "Consumers fall behind (max iterator age 120 s) although writes peaked at only 10% of capacity: "
        "resharding would not help."
    )
    assert [a.title for a in diagnosis.advice] == ["Speed up the consumer"]
    assert diagnosis.advice[0].detail == (
        f"Optimise the record processing of {named}, or give it more capacity (for Lambda: a larger batch "
        "size or parallelization factor)."
    )
    assert diagnosis.advice[0].cli_command is None


@pytest.mark.parametrize(
    ("retention_hours", "age_hours", "share"),
    [
        pytest.param(24, 12, "50%", id="exactly half of 24 h"),
        pytest.param(24, 20, "83%", id="most of 24 h"),
        pytest.param(168, 100, "60%", id="most of 7 days"),
        pytest.param(8_760, 5_000, "57%", id="already at the maximum: still proposed, the action refuses it"),
    ],
)
def test_iterator_age_near_retention_proposes_raising_it(retention_hours: int, age_hours: int, share: str) -> None:
    # Given the oldest unread record at or past half of the retention period, on shards that are not saturated
    ev = evidence(
        shards=2,
        bytes_per_second=200_000,
        iterator_age_ms=age_hours * HOUR_MS,
        retention_hours=retention_hours,
    )
    # When diagnosed
    diagnosis = AGE.diagnose(ev, policy())
    # Then raise-retention is proposed with the record's age and why, and the consumer advice stays
    assert diagnosis.cause == Cause.SLOW_CONSUMER
    assert diagnosis.proposals == (
        Proposal(
            action="raise-retention",
            parameters={"oldest_record_age_ms": age_hours * HOUR_MS},
            reason=f"the oldest unread record is {share} of the way to expiry (retention {retention_hours} h; "
            "detectors.iterator_age.retention_share is 50%)",
        ),
    )
    assert [a.title for a in diagnosis.advice] == ["Speed up the consumer"]


def test_iterator_age_below_half_retention_proposes_nothing() -> None:
    ev = evidence(shards=2, bytes_per_second=200_000, iterator_age_ms=11.9 * HOUR_MS, retention_hours=24)
    diagnosis = AGE.diagnose(ev, policy())
    assert diagnosis.proposals == ()
    assert [a.title for a in diagnosis.advice] == ["Speed up the consumer"]


def test_iterator_age_retention_share_comes_from_the_detector() -> None:
    # Given a lag at 30 % of the retention and a detector that raises from 25 %
    ev = evidence(shards=2, bytes_per_second=200_000, iterator_age_ms=7.2 * HOUR_MS, retention_hours=24)
    p = policy(detectors={"iterator_age": {"retention_share": 0.25}})
    # When diagnosed
    (proposal,) = AGE.diagnose(ev, p).proposals
    # Then raise-retention is proposed, the reason naming the detector's setting
    assert proposal.action == "raise-retention"
    assert proposal.reason.endswith("(retention 24 h; detectors.iterator_age.retention_share is 25%)")
    # And with the default share of 50 % it is not
    assert AGE.diagnose(ev, policy()).proposals == ()


def test_iterator_age_saturated_and_near_retention_gives_both() -> None:
    # Given consumers 18 h behind on 24 h retention while writes run at 90 % of the shards
    ev = evidence(shards=2, bytes_per_second=1_800_000, iterator_age_ms=18 * HOUR_MS, retention_hours=24)
    # When diagnosed
    diagnosis = AGE.diagnose(ev, policy())
    # Then retention is raised first, then the stream resharded
    assert diagnosis.cause == Cause.SATURATED
    assert [(p.action, p.parameters) for p in diagnosis.proposals] == [
        ("raise-retention", {"oldest_record_age_ms": 18 * HOUR_MS}),
        ("reshard", {"desired_shards": 3}),
    ]
    assert diagnosis.advice == ()


def test_iterator_age_figures() -> None:
    ev = evidence(shards=2, bytes_per_second=200_000, iterator_age_ms=6 * HOUR_MS, retention_hours=24)
    shown = figures(AGE.diagnose(ev, policy()))
    assert shown["max iterator age"] == (21_600.0, "s")
    assert shown["iterator age / retention"] == (25.0, "%")


def test_figures_leave_out_iterator_age_when_there_is_none() -> None:
    shown = figures(WRITE.diagnose(evidence(shards=2, bytes_per_second=200_000), policy()))
    assert "max iterator age" not in shown
    assert "iterator age / retention" not in shown


def test_iterator_age_on_demand_still_raises_retention() -> None:
    # Given an on-demand stream whose consumers are 20 h behind on 24 h retention
    ev = evidence(shards=2, bytes_per_second=200_000, iterator_age_ms=20 * HOUR_MS, mode="ON_DEMAND")
    # When diagnosed
    diagnosis = AGE.diagnose(ev, policy())
    # Then it gets no reshard, but raise-retention (retention is not a matter of capacity) and the advice
    assert diagnosis.cause == Cause.ON_DEMAND
    assert [p.action for p in diagnosis.proposals] == ["raise-retention"]
    assert [a.title for a in diagnosis.advice] == ["Speed up the consumer"]


def test_iterator_age_without_write_traffic_data_still_raises_retention() -> None:
    # Given no IncomingBytes/IncomingRecords, but consumers 20 h behind on 24 h retention
    ev = without_write_traffic(evidence(shards=2, iterator_age_ms=20 * HOUR_MS))
    # When diagnosed
    diagnosis = AGE.diagnose(ev, policy())
    # Then the remediator does not guess about the shards, but protects the data
    assert diagnosis.cause == Cause.INSUFFICIENT_EVIDENCE
    assert [p.action for p in diagnosis.proposals] == ["raise-retention"]


def test_iterator_age_without_age_data_is_insufficient_evidence() -> None:
    ev = evidence(shards=2, bytes_per_second=200_000, iterator_age_ms=None)
    diagnosis = AGE.diagnose(ev, policy())
    assert diagnosis.cause == Cause.INSUFFICIENT_EVIDENCE
    assert diagnosis.summary.startswith("CloudWatch returned no GetRecords.IteratorAgeMilliseconds ")


# Alarms and evidence queries ----------------------------------------------------------------------
def alarms(symptom: Symptom[Any], p: StreamPolicy) -> list[AlarmSpec]:
    return symptom.alarms(p, symptom.detector(p))


def test_write_throttling_alarm_defaults() -> None:
    assert alarms(WRITE, policy()) == [
        AlarmSpec(
            metric=Metric("AWS/Kinesis", "WriteProvisionedThroughputExceeded", "Sum", (("StreamName", "orders"),), 60),
            threshold=1,
            comparison=Comparison.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            evaluation_periods=5,
            datapoints_to_alarm=2,
            missing_data=MissingData.NOT_BREACHING,
            description=f"Kinesis Remediator: producers throttled. {WRITE.meaning}",
        )
    ]


def test_iterator_age_alarm_defaults() -> None:
    assert alarms(AGE, policy()) == [
        AlarmSpec(
            metric=Metric(
                "AWS/Kinesis", "GetRecords.IteratorAgeMilliseconds", "Maximum", (("StreamName", "orders"),), 60
            ),
            threshold=60_000,
            comparison=Comparison.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            evaluation_periods=5,
            datapoints_to_alarm=3,
            missing_data=MissingData.NOT_BREACHING,
            description=f"Kinesis Remediator: consumers falling behind. {AGE.meaning}",
        )
    ]


@pytest.mark.parametrize(
    ("symptom", "detectors", "expected"),
    [
        pytest.param(
            WRITE,
            {
                "write_throttling": {
                    "threshold_records": 50,
                    "evaluation_periods": 10,
                    "datapoints_to_alarm": 4,
                }
            },
            ("WriteProvisionedThroughputExceeded", "Sum", 50, 10, 4),
            id="write-throttling from policy",
        ),
        pytest.param(
            AGE,
            {"iterator_age": {"threshold_ms": 300_000, "evaluation_periods": 15, "datapoints_to_alarm": 15}},
            ("GetRecords.IteratorAgeMilliseconds", "Maximum", 300_000, 15, 15),
            id="iterator-age from policy",
        ),
    ],
)
def test_alarm_takes_thresholds_and_periods_from_the_policy(
    symptom: Symptom[Any], detectors: dict[str, Any], expected: tuple[Any, ...]
) -> None:
    # Given a stream named 'clicks' whose policy sets the detector's threshold and periods
    # When the symptom declares its alarms
    (spec,) = alarms(symptom, policy("clicks", detectors=detectors))
    # Then the alarm reads the stream's metric with exactly those settings
    assert isinstance(spec.metric, Metric)
    assert (
        spec.metric.name,
        spec.metric.statistic,
        spec.threshold,
        spec.evaluation_periods,
        spec.datapoints_to_alarm,
    ) == expected
    assert (spec.metric.namespace, spec.metric.period_seconds, spec.metric.dimension_map) == (
        "AWS/Kinesis",
        60,
        {"StreamName": "clicks"},
    )


THROTTLED = ("write_throttled", "WriteProvisionedThroughputExceeded", "Sum")


@pytest.mark.parametrize(
    ("symptom", "extra", "own"),
    [
        pytest.param(WRITE, [], THROTTLED, id="write-throttling"),
        # iterator-age reads the throttled writes too: a reshard is sized from the load producers offered
        pytest.param(
            AGE, [THROTTLED], ("iterator_age_ms", "GetRecords.IteratorAgeMilliseconds", "Maximum"), id="iterator-age"
        ),
    ],
)
def test_evidence_queries_are_the_write_load_and_the_symptoms_own_metric(
    symptom: Symptom[Any], extra: list[tuple[str, str, str]], own: tuple[str, str, str]
) -> None:
    # Given a stream named 'clicks'
    # When the symptom declares the evidence it needs
    queries = symptom.evidence_queries(policy("clicks"))
    # Then it is the stream's write load (every capacity judgement reads it) and the metric it alarms on
    shown = []
    for query in queries:
        assert isinstance(query.source, Metric)
        assert (query.source.namespace, query.source.dimension_map) == ("AWS/Kinesis", {"StreamName": "clicks"})
        shown.append((query.key, query.source.name, query.source.statistic))
    assert shown == [
        ("incoming_bytes", "IncomingBytes", "Sum"),
        ("incoming_records", "IncomingRecords", "Sum"),
        *extra,
        own,
    ]
    # And the alarm watches the same metric the diagnosis reads (no metric name spelled twice)
    (spec,) = alarms(symptom, policy("clicks"))
    assert spec.metric == queries[-1].source
