"""read-throttling: its alarm, its evidence, and the diagnosis that picks enhanced fan-out, smaller batches, a
reshard or advice from who polls the stream and how hard the shards are read."""

from __future__ import annotations

from typing import Any

import pytest
from remediator.core.consumers import LAMBDA_MAPPINGS
from remediator.core.evidence import Evidence
from remediator.core.history import ActionHistory
from remediator.core.metrics import Comparison, MissingData
from remediator.core.plan import Cause, Diagnosis, Proposal
from remediator.core.planner import make_plan
from remediator.core.registry import REGISTRY
from remediator.core.stream_consumers import STREAM_CONSUMERS

from tests.fakes import NOW, evidence, policy, stream_arn

READ = REGISTRY.symptoms["read-throttling"]
ARN = stream_arn("orders")


def read_evidence(
    *,
    shards: int = 2,
    throttled_per_minute: float = 20.0,
    read_bytes_per_second: float | None = 400_000,
    write_bytes_per_second: float = 200_000,
    iterator_age_ms: float | None = 5_000,
    mode: str = "PROVISIONED",
    facts: dict[str, Any] | None = None,
) -> Evidence:
    base = evidence(
        shards=shards, bytes_per_second=write_bytes_per_second, records_per_second=100, mode=mode,
        iterator_age_ms=iterator_age_ms,
    )  # fmt: skip
    series = dict(base.series) | {"read_throttled": (throttled_per_minute,) * base.window_minutes}
    if read_bytes_per_second is not None:
        series["read_bytes"] = (read_bytes_per_second * 60,) * base.window_minutes
    return base.model_copy(update={"series": series, "facts": facts or {}})


def mapping(function: str, *, source: str = ARN, state: str = "Enabled", uuid: str = "u-1") -> dict[str, Any]:
    return {"function": function, "uuid": uuid, "state": state, "source_arn": source, "batch_size": 100}


def figures(diagnosis: Diagnosis) -> dict[str, tuple[float, str]]:
    return {f.name: (f.value, f.unit) for f in diagnosis.figures}


def test_alarm_is_throttled_get_records_per_minute_on_the_stream() -> None:
    # Given a policy that raises the threshold
    p = policy(detectors={"read_throttling": {"threshold_calls": 25}})
    # When the symptom declares its alarm
    (spec,) = READ.alarms(p, READ.detector(p))
    # Then it watches ReadProvisionedThroughputExceeded (Sum) of the stream; no data is no throttled call
    assert (spec.metric.namespace, spec.metric.name, spec.metric.statistic) == (
        "AWS/Kinesis",
        "ReadProvisionedThroughputExceeded",
        "Sum",
    )
    assert spec.metric.dimension_map == {"StreamName": "orders"}
    assert (spec.threshold, spec.comparison) == (25, Comparison.GREATER_THAN_OR_EQUAL_TO_THRESHOLD)
    assert spec.missing_data == MissingData.NOT_BREACHING
    assert spec.qualifier == ""


def test_evidence_reads_throttles_read_bytes_and_iterator_age() -> None:
    queries = {q.key: q.source for q in READ.evidence_queries(policy())}
    assert {k: (m.name, m.statistic) for k, m in queries.items()} == {  # type: ignore[union-attr]
        "incoming_bytes": ("IncomingBytes", "Sum"),
        "incoming_records": ("IncomingRecords", "Sum"),
        "read_throttled": ("ReadProvisionedThroughputExceeded", "Sum"),
        "read_bytes": ("GetRecords.Bytes", "Sum"),
        "iterator_age_ms": ("GetRecords.IteratorAgeMilliseconds", "Maximum"),
    }


def test_read_grants_cover_the_mapping_facts_and_the_stream_consumers() -> None:
    assert {
        "lambda:ListEventSourceMappings",
        "lambda:GetFunctionConfiguration",
        "lambda:GetFunctionConcurrency",
        "kinesis:ListStreamConsumers",
    } == READ.read_iam_actions


# --- The examples ---------------------------------------------------------------------------------------


def test_read_throttling_with_several_polling_consumers_proposes_enhanced_fan_out() -> None:
    # Given three polling consumers (two functions, one KCL application), 1,200 throttled calls in 15 minutes,
    # reads at 10 % of the shards' 2 MB/s
    p = policy(consumers=[{"function": "orders-processor"}, {"function": "orders-audit"}, {"kcl": "orders-kcl"}])
    ev = read_evidence(throttled_per_minute=80, read_bytes_per_second=400_000)
    # When diagnosed
    diagnosis = READ.diagnose(ev, p)
    # Then the polling consumers compete, and an enhanced fan-out consumer is proposed (the action shapes it)
    assert diagnosis.cause == "polling-consumers-compete"
    assert diagnosis.summary == (
        "1,200 GetRecords calls were throttled while 3 polling consumers (Lambda function orders-processor, "
        "Lambda function orders-audit, KCL application orders-kcl) read the stream (reads peaked at 10% of the "
        "shards' 2 MB/s): they share each shard's 5 GetRecords calls per second and 2 MB/s. An enhanced fan-out "
        "consumer gives a reader its own 2 MB/s per shard and takes its calls off the shared budget."
    )
    assert diagnosis.proposals == (
        Proposal(
            action="enhanced-fan-out",
            parameters={},
            reason="3 polling consumers (Lambda function orders-processor, Lambda function orders-audit, KCL "
            "application orders-kcl) compete for each shard's GetRecords calls; 1,200 were throttled",
        ),
    )
    # And the advice says how each one leaves the shared budget, and to back off
    assert [a.title for a in diagnosis.advice] == [
        "Opt Lambda consumers in to enhanced fan-out",
        "Switch KCL applications to enhanced fan-out",
        "Retry with backoff",
    ]
    assert diagnosis.advice[0].detail.startswith("orders-processor, orders-audit keep polling")
    assert figures(diagnosis) == {
        "throttled GetRecords calls": (1_200.0, "calls"),
        "polling consumers": (3.0, ""),
        "open shards": (2.0, ""),
        "peak read bytes": (400_000.0, "B/s"),
        "peak read utilisation": (10.0, "%"),
        "max iterator age": (5.0, "s"),
    }


def test_read_throttling_with_one_lambda_consumer_asks_for_smaller_batches_and_backoff() -> None:
    # Given one polling consumer, a Lambda function, throttled while reads are far from saturation
    p = policy(consumers=[{"function": "orders-processor"}])
    ev = read_evidence(throttled_per_minute=4, read_bytes_per_second=400_000)
    # When diagnosed
    diagnosis = READ.diagnose(ev, p)
    # Then it asks the tune-event-source action for smaller batches, and advises backoff
    assert diagnosis.cause == "single-consumer-throttled"
    assert diagnosis.proposals == (
        Proposal(
            action="tune-event-source",
            parameters={"function": "orders-processor", "goal": "smaller-batches"},
            reason="60 throttled GetRecords calls with orders-processor the only polling consumer; a smaller batch "
            "size makes each GetRecords call smaller",
        ),
    )
    assert [a.title for a in diagnosis.advice] == ["Retry with backoff"]
    assert diagnosis.summary == (
        "60 GetRecords calls were throttled with one polling consumer, Lambda function orders-processor (reads "
        "peaked at 10% of the shards' 2 MB/s): it alone calls GetRecords too often or reads too much per call (a "
        "call may return 10 MB, after which the shard refuses reads for 5 seconds). Smaller batches and backoff "
        "keep it under the shard's limits."
    )


def test_one_lambda_consumer_is_planned_as_a_tune_step() -> None:
    # Given the one-Lambda-consumer diagnosis
    p = policy(consumers=[{"function": "orders-processor"}])
    ev = read_evidence(throttled_per_minute=4)
    # When it is planned
    plan = make_plan(alarm_name="a", symptom="read-throttling", policy=p, evidence=ev, history=ActionHistory(), now=NOW)
    # Then the one step is a tune-event-source step for the function
    (step,) = plan.steps
    assert step.action == "tune-event-source"
    assert step.parameters["function"] == "orders-processor"


# --- The other branches -----------------------------------------------------------------------------------------


def test_one_kcl_application_gets_advice_on_fewer_calls_and_backoff() -> None:
    # Given one polling consumer, a KCL application
    diagnosis = READ.diagnose(read_evidence(), policy(consumers=[{"kcl": "orders-kcl"}]))
    # Then no action: advice on fewer GetRecords calls (interval, maxRecords), fan-out and backoff
    assert (diagnosis.cause, diagnosis.proposals) == ("single-consumer-throttled", ())
    assert [a.title for a in diagnosis.advice] == [
        "Fewer GetRecords calls",
        "Or switch it to enhanced fan-out",
        "Retry with backoff",
    ]
    assert "idleTimeBetweenReadsInMillis" in diagnosis.advice[0].detail
    assert "maxRecords" in diagnosis.advice[0].detail
    assert diagnosis.summary.endswith("The KCL's settings decide how often and how much it reads.")


@pytest.mark.parametrize(
    ("shards", "read_bps", "write_bps", "desired", "utilisation", "shares"),
    [
        pytest.param(2, 3_600_000, 200_000, 3, "90%", ("60%", "7%"), id="2 shards read at 90% -> 3.6 / (2 x 0.6) = 3"),
        pytest.param(4, 7_200_000, 200_000, 6, "90%", ("60%", "3%"), id="4 shards read at 90% -> 6"),
        pytest.param(2, 3_200_000, 200_000, 3, "80%", ("53%", "7%"), id="exactly at saturated_at counts -> 2.67 -> 3"),
        pytest.param(
            2, 3_400_000, 1_900_000, 4, "85%", ("42%", "48%"), id="writes need more (1.9 / 0.6 -> 4) than reads (3)"
        ),
    ],
)
def test_one_consumer_reading_saturated_shards_gets_a_reshard(
    shards: int, read_bps: float, write_bps: float, desired: int, utilisation: str, shares: tuple[str, str]
) -> None:
    # Given one polling consumer and reads at or above 80 % of the shards' 2 MB/s
    ev = read_evidence(shards=shards, read_bytes_per_second=read_bps, write_bytes_per_second=write_bps)
    # When diagnosed
    diagnosis = READ.diagnose(ev, policy(consumers=[{"function": "orders-processor"}]))
    # Then more shards are asked for, enough for the read peak and the write peak at the target (60 %), and the
    # reason states the shares that count gives (3.4 MB/s over 4 shards' 8 MB/s is 42 %, not the target)
    assert diagnosis.cause == Cause.SATURATED
    assert diagnosis.proposals == (
        Proposal(
            action="reshard",
            parameters={"desired_shards": desired},
            reason=f"peak read utilisation {utilisation}; {desired} shards would put the observed read peak at "
            f"{shares[0]} and the write peak at {shares[1]} of capacity (target 60%)",
        ),
    )


def test_reads_just_below_saturation_do_not_reshard() -> None:
    # Given reads at 79 % with one Lambda consumer: the boundary above is the policy's saturated_at
    diagnosis = READ.diagnose(read_evidence(read_bytes_per_second=3_160_000), policy(consumers=[{"function": "f"}]))
    assert [p.action for p in diagnosis.proposals] == ["tune-event-source"]


def test_several_polling_consumers_on_saturated_shards_still_get_enhanced_fan_out() -> None:
    # Given two polling consumers whose reads together saturate the shards: each would get its own 2 MB/s
    ev = read_evidence(read_bytes_per_second=3_800_000)
    diagnosis = READ.diagnose(ev, policy(consumers=[{"function": "a"}, {"kcl": "bbb"}]))
    assert [p.action for p in diagnosis.proposals] == ["enhanced-fan-out"]
    assert "(reads peaked at 95% of the shards' 2 MB/s)" in diagnosis.summary


@pytest.mark.parametrize(
    ("entries", "facts", "actions"),
    [
        pytest.param(
            [{"function": "a"}, {"function": "b"}],
            {LAMBDA_MAPPINGS: [mapping("a"), mapping("b", source=f"{ARN}/consumer/efo-b:1")]},
            ["tune-event-source"],
            id="a function already on a consumer does not poll",
        ),
        pytest.param(
            [{"function": "a"}, {"function": "b"}],
            {LAMBDA_MAPPINGS: [mapping("a"), mapping("b", state="Disabled")]},
            ["tune-event-source"],
            id="a disabled mapping does not poll",
        ),
        pytest.param(
            [{"function": "a"}, {"function": "b"}],
            {LAMBDA_MAPPINGS: [mapping("a"), {"function": "b"}]},
            ["tune-event-source"],
            id="a function without a mapping on the stream does not poll",
        ),
        pytest.param(
            [{"function": "a"}, {"kcl": "app"}],
            {STREAM_CONSUMERS: [{"name": "app", "arn": f"{ARN}/consumer/app:1", "status": "ACTIVE"}]},
            ["tune-event-source"],
            id="a KCL application with a consumer of its name reads through it",
        ),
        pytest.param(
            [{"function": "a"}, {"function": "b"}],
            {LAMBDA_MAPPINGS: [mapping("a"), mapping("b", state="Updating")]},
            ["enhanced-fan-out"],
            id="an updating mapping still polls",
        ),
        pytest.param(
            [{"function": "a"}, {"function": "b"}], {}, ["enhanced-fan-out"], id="without facts, the policy decides"
        ),
    ],
)
def test_who_polls_is_narrowed_by_the_facts(entries: list[dict], facts: dict, actions: list[str]) -> None:
    diagnosis = READ.diagnose(read_evidence(facts=facts), policy(consumers=entries))
    assert [p.action for p in diagnosis.proposals] == actions


def test_no_polling_consumer_in_the_policy_gets_advice_to_list_them() -> None:
    diagnosis = READ.diagnose(read_evidence(), policy(consumers=[{"efo": "analytics"}]))
    assert (diagnosis.cause, diagnosis.proposals) == ("unknown-consumers", ())
    assert [a.title for a in diagnosis.advice] == ["List the consumers", "Retry with backoff"]


def test_on_demand_stream_gets_advice_only() -> None:
    # Given an on-demand stream with two polling consumers that would otherwise get enhanced fan-out
    ev = read_evidence(mode="ON_DEMAND", read_bytes_per_second=3_800_000)
    diagnosis = READ.diagnose(ev, policy(consumers=[{"function": "a"}, {"kcl": "bbb"}]))
    assert (diagnosis.cause, diagnosis.proposals) == (Cause.ON_DEMAND, ())
    assert [a.title for a in diagnosis.advice] == [
        "Opt Lambda consumers in to enhanced fan-out",
        "Switch KCL applications to enhanced fan-out",
        "Retry with backoff",
    ]


def test_no_throttled_call_in_the_window_is_not_reproduced() -> None:
    diagnosis = READ.diagnose(read_evidence(throttled_per_minute=0), policy(consumers=[{"function": "a"}]))
    assert (diagnosis.cause, diagnosis.proposals) == (Cause.NOT_REPRODUCED, ())


def test_no_throttling_datapoints_is_insufficient_evidence() -> None:
    ev = read_evidence()
    ev = ev.model_copy(update={"series": {k: v for k, v in ev.series.items() if k != "read_throttled"}})
    diagnosis = READ.diagnose(ev, policy(consumers=[{"function": "a"}, {"function": "b"}]))
    assert (diagnosis.cause, diagnosis.proposals) == (Cause.INSUFFICIENT_EVIDENCE, ())
    assert "ReadProvisionedThroughputExceeded" in diagnosis.summary


def test_without_read_bytes_the_consumers_still_decide() -> None:
    # Given no GetRecords.Bytes datapoints: saturation is unknown, figures leave it out
    ev = read_evidence(read_bytes_per_second=None)
    diagnosis = READ.diagnose(ev, policy(consumers=[{"function": "a"}, {"kcl": "bbb"}]))
    assert [p.action for p in diagnosis.proposals] == ["enhanced-fan-out"]
    assert "peak read utilisation" not in figures(diagnosis)
    assert "reads peaked" not in diagnosis.summary


def test_gather_reads_the_mappings_and_the_stream_consumers() -> None:
    # Given read ports that answer the mapping reads and ListStreamConsumers
    calls: list[tuple[str, str, dict[str, Any]]] = []
    answers = {
        "ListEventSourceMappings": {
            "EventSourceMappings": [{"UUID": "u-1", "EventSourceArn": ARN, "State": "Enabled"}]
        },
        "GetFunctionConfiguration": {"Timeout": 60},
        "GetFunctionConcurrency": {},
        "ListStreamConsumers": {
            "Consumers": [{"ConsumerName": "x", "ConsumerARN": f"{ARN}/consumer/x:1", "ConsumerStatus": "ACTIVE"}]
        },
    }

    class Ports:
        def service(self, name: str) -> Any:
            class Port:
                def call(self, operation: str, **parameters: Any) -> dict[str, Any]:
                    calls.append((name, operation, parameters))
                    return answers[operation]

            return Port()

    # When the symptom gathers its facts
    facts = READ.gather(policy(consumers=[{"function": "a"}]), read_evidence().stream, Ports(), NOW)
    # Then both sets of facts are there
    assert facts[LAMBDA_MAPPINGS][0]["uuid"] == "u-1"
    assert facts[STREAM_CONSUMERS] == [{"name": "x", "arn": f"{ARN}/consumer/x:1", "status": "ACTIVE"}]
    assert ("kinesis", "ListStreamConsumers", {"StreamARN": ARN}) in calls
