"""lease-table-throttling, kcl-consumer-lag, get-errors and get-latency: the alarms each declares (with its
missing-data choice), the evidence it reads, and each diagnosis it draws."""

from __future__ import annotations

from typing import Any

import pytest
from remediator.core.evidence import Evidence
from remediator.core.lease_tables import LEASE_TABLES
from remediator.core.metrics import Comparison, Metric, MetricMath, MissingData
from remediator.core.plan import Cause, Diagnosis, Proposal
from remediator.core.policy import StreamPolicy
from remediator.core.registry import REGISTRY
from remediator.core.symptoms.base import AlarmSpec, Symptom

from tests.fakes import evidence, policy, stream_arn

LEASE = REGISTRY.symptoms["lease-table-throttling"]
KCL = REGISTRY.symptoms["kcl-consumer-lag"]
ERRORS = REGISTRY.symptoms["get-errors"]
LATENCY = REGISTRY.symptoms["get-latency"]
APP = "orders-indexer"
ARN = stream_arn("orders")
HOUR_MS = 3_600_000
IDLE = {"bytes_per_second": 200_000}  # 10 % of 2 shards
SATURATED = {"bytes_per_second": 1_900_000}  # 95 % of 2 shards


def alarms(symptom: Symptom[Any], p: StreamPolicy) -> list[AlarmSpec]:
    return symptom.alarms(p, symptom.detector(p))


def with_series(base: Evidence, **series: float | None) -> Evidence:
    """The evidence plus the given series, one value every minute (None: no datapoint at all)."""
    extra = {key: () if value is None else (value,) * base.window_minutes for key, value in series.items()}
    return base.model_copy(update={"series": {**base.series, **extra}})


def table(app: str = APP, **overrides: Any) -> dict[str, Any]:
    facts = {
        "application": app,
        "table": app,
        "found": True,
        "status": "ACTIVE",
        "billing_mode": "PROVISIONED",
        "read_capacity": 10,
        "write_capacity": 10,
    }
    return facts | overrides


def figures(diagnosis: Diagnosis) -> dict[str, float]:
    return {f.name: f.value for f in diagnosis.figures}


def titles(diagnosis: Diagnosis) -> list[str]:
    return [a.title for a in diagnosis.advice]


# lease-table-throttling -----------------------------------------------------------------------------------------
TWO_APPS = [{"kcl": APP}, {"kcl": "orders.search", "lease_table": "search-leases"}]


def test_lease_table_alarm_per_application_sums_write_and_read_throttles() -> None:
    # Given a policy with two KCL applications, one with its own lease table name
    specs = alarms(LEASE, policy(consumers=TWO_APPS))
    # Then each application's lease table gets one alarm, qualified by the application, missing data not breaching
    assert [s.qualifier for s in specs] == [APP, "orders.search"]
    spec = specs[1]
    assert isinstance(spec.metric, MetricMath)
    assert spec.metric.expression == "FILL(writes, 0) + FILL(reads, 0)"
    assert {k: (m.namespace, m.name, m.statistic, m.dimension_map) for k, m in spec.metric.inputs.items()} == {
        "writes": ("AWS/DynamoDB", "WriteThrottleEvents", "Sum", {"TableName": "search-leases"}),
        "reads": ("AWS/DynamoDB", "ReadThrottleEvents", "Sum", {"TableName": "search-leases"}),
    }
    assert (spec.threshold, spec.comparison, spec.missing_data) == (
        1,
        Comparison.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        MissingData.NOT_BREACHING,
    )
    assert (spec.evaluation_periods, spec.datapoints_to_alarm) == (5, 2)
    # And a stream without KCL applications has none
    assert alarms(LEASE, policy()) == []


def test_lease_table_evidence_is_the_throttles_of_each_table() -> None:
    keys = [q.key for q in LEASE.evidence_queries(policy(consumers=TWO_APPS))]
    assert keys[2:] == [
        "lease_write_throttles_0",
        "lease_read_throttles_0",
        "lease_write_throttles_1",
        "lease_read_throttles_1",
    ]
    assert LEASE.read_iam_actions == {"dynamodb:DescribeTable"}


def lease_evidence(*tables: dict[str, Any], **series: float) -> Evidence:
    base = evidence(**IDLE).model_copy(update={"facts": {LEASE_TABLES: list(tables)}})
    return with_series(base, **series)


@pytest.mark.parametrize(
    ("facts", "writes", "reads", "cause", "proposed", "advice"),
    [
        pytest.param(
            table(),
            5,
            0,
            "lease-table-throttled",
            True,
            ["Write less to the lease table"],
            id="throttled writes on a provisioned table: raise its capacity",
        ),
        pytest.param(
            table(),
            5,
            2,
            "lease-table-throttled",
            True,
            ["Reads of orders-indexer throttled too", "Write less to the lease table"],
            id="reads throttled too: also advice for the reads",
        ),
        pytest.param(
            table(),
            0,
            2,
            "lease-table-read-throttled",
            False,
            ["Raise the read capacity of orders-indexer", "Write less to the lease table"],
            id="reads only: raising writes would not help",
        ),
        pytest.param(
            table(billing_mode="PAY_PER_REQUEST", read_capacity=0, write_capacity=0),
            5,
            0,
            "lease-table-on-demand-throttled",
            False,
            ["On-demand lease table orders-indexer throttled", "Write less to the lease table"],
            id="on-demand table: nothing to raise",
        ),
        pytest.param(
            table(found=False, status=None, billing_mode=None, read_capacity=None, write_capacity=None),
            5,
            0,
            "lease-table-not-found",
            False,
            ["Check the lease table of orders-indexer", "Write less to the lease table"],
            id="no such table: fix the policy",
        ),
    ],
)
def test_lease_table_diagnosis(
    facts: dict[str, Any], writes: float, reads: float, cause: str, proposed: bool, advice: list[str]
) -> None:
    # Given one KCL application whose lease table saw these throttle events a minute
    ev = lease_evidence(facts, lease_write_throttles_0=writes, lease_read_throttles_0=reads)
    # When diagnosed
    diagnosis = LEASE.diagnose(ev, policy(consumers=[{"kcl": APP}]))
    # Then the cause, the proposal (if any) and the advice follow from the table's state and the throttles
    assert diagnosis.cause == cause
    expected = (
        (
            Proposal(
                action="lease-table-capacity",
                parameters={"application": APP},
                reason=f"{writes * 15:,.0f} write throttle events on lease table {APP} in 15 minutes "
                "at 10 provisioned WCU",
            ),
        )
        if proposed
        else ()
    )
    assert diagnosis.proposals == expected
    assert titles(diagnosis) == advice
    assert figures(diagnosis)[f"{APP}: write throttle events"] == writes * 15


def test_lease_table_read_advice_has_the_command_that_doubles_the_reads() -> None:
    ev = lease_evidence(table(read_capacity=25, write_capacity=40), lease_write_throttles_0=0, lease_read_throttles_0=1)
    diagnosis = LEASE.diagnose(ev, policy(consumers=[{"kcl": APP}]))
    assert diagnosis.advice[0].cli_command == (
        f"aws dynamodb update-table --table-name {APP} "
        "--provisioned-throughput ReadCapacityUnits=50,WriteCapacityUnits=40"
    )


def test_lease_table_diagnosis_proposes_for_each_throttled_application_only() -> None:
    # Given two applications: the second's table is throttled, the first's is not
    ev = lease_evidence(
        table(),
        table("orders.search", table="search-leases", write_capacity=40),
        lease_write_throttles_0=0,
        lease_read_throttles_0=0,
        lease_write_throttles_1=3,
        lease_read_throttles_1=0,
    )
    diagnosis = LEASE.diagnose(ev, policy(consumers=TWO_APPS))
    # Then only the second gets a proposal, and both have figures
    assert [p.parameters for p in diagnosis.proposals] == [{"application": "orders.search"}]
    assert diagnosis.summary.startswith("The lease table of orders.search was throttled in the last 15 minutes")
    shown = figures(diagnosis)
    assert shown["orders.search: provisioned write capacity"] == 40
    assert shown[f"{APP}: write throttle events"] == 0


def test_lease_table_not_throttled_is_not_reproduced() -> None:
    # No datapoint at all is no throttling: DynamoDB publishes throttle events only when there are some
    ev = lease_evidence(table(), lease_write_throttles_0=None, lease_read_throttles_0=None)
    diagnosis = LEASE.diagnose(ev, policy(consumers=[{"kcl": APP}]))
    assert (diagnosis.cause, diagnosis.proposals, diagnosis.advice) == ("not-reproduced", (), ())


def test_lease_table_without_kcl_applications_says_so() -> None:
    diagnosis = LEASE.diagnose(evidence(), policy())
    assert diagnosis.cause == "no-kcl-application"
    assert titles(diagnosis) == ["List the KCL applications"]


# kcl-consumer-lag -----------------------------------------------------------------------------------------------
def test_kcl_lag_alarm_reads_the_application_level_series_in_its_namespace() -> None:
    # Given two KCL applications, one publishing to its own namespace
    p = policy(consumers=[{"kcl": APP}, {"kcl": "search", "namespace": "Orders/Search"}])
    specs = alarms(KCL, p)
    # Then each gets an alarm on MillisBehindLatest (Maximum) with Operation=ApplicationTracker, missing data kept
    assert [(s.qualifier, s.metric) for s in specs] == [
        (APP, Metric(APP, "MillisBehindLatest", "Maximum", (("Operation", "ApplicationTracker"),))),
        ("search", Metric("Orders/Search", "MillisBehindLatest", "Maximum", (("Operation", "ApplicationTracker"),))),
    ]
    assert {(s.threshold, s.missing_data) for s in specs} == {(60_000, MissingData.MISSING)}
    # And its description says the dimension set is unconfirmed, and how to fix it
    assert specs[0].description.startswith(f"Kinesis Remediator: {KCL.title}. {KCL.meaning} UNCONFIRMED:")
    assert "detectors.kcl_consumer_lag.operation" in specs[0].description
    assert len(specs[0].description) <= 1024  # CloudWatch's AlarmDescription limit


def test_kcl_lag_operation_comes_from_the_policy() -> None:
    p = policy(consumers=[{"kcl": APP}], detectors={"kcl_consumer_lag": {"operation": "ProcessTask"}})
    (spec,) = alarms(KCL, p)
    assert isinstance(spec.metric, Metric)
    assert spec.metric.dimension_map == {"Operation": "ProcessTask"}
    assert "(Operation=ProcessTask, no ShardId)" in spec.description
    assert [q.source for q in KCL.evidence_queries(p) if q.key == "kcl_lag_ms_0"] == [spec.metric]


def kcl_evidence(lag_ms: float | None, writes: float = 0, **stream: Any) -> Evidence:
    base = evidence(**({**IDLE, **stream}))
    return with_series(base, kcl_lag_ms_0=lag_ms, lease_write_throttles_0=writes, lease_read_throttles_0=0)


KCL_STEPS = [
    "Look for exceptions in processRecords",
    "Check maxLeasesPerWorker and the worker count",
    "Failover time and ZOMBIE shutdowns",
    "Turn on the KCL's debug logs",
]


@pytest.mark.parametrize(
    ("ev", "cause", "proposals", "advice"),
    [
        pytest.param(kcl_evidence(300_000), "slow-kcl-application", [], KCL_STEPS, id="idle shards: the KCL steps"),
        pytest.param(
            kcl_evidence(300_000, writes=4),
            "lease-table-throttled",
            [],
            ["Lease table throttled", *KCL_STEPS],
            id="lease table throttled: point to it",
        ),
        pytest.param(
            kcl_evidence(300_000, **SATURATED),
            Cause.SATURATED,
            [("reshard", {"desired_shards": 4})],
            [],
            id="saturated shards: reshard",
        ),
        pytest.param(
            kcl_evidence(18 * HOUR_MS),
            "slow-kcl-application",
            [("raise-retention", {"oldest_record_age_ms": 18 * HOUR_MS})],
            KCL_STEPS,
            id="75 % of the retention: raise it, and the KCL steps",
        ),
        pytest.param(
            kcl_evidence(18 * HOUR_MS, mode="ON_DEMAND"),
            Cause.ON_DEMAND,
            [("raise-retention", {"oldest_record_age_ms": 18 * HOUR_MS})],
            KCL_STEPS,
            id="75 % of the retention on demand: raise it all the same",
        ),
        pytest.param(
            kcl_evidence(300_000, mode="ON_DEMAND"),
            Cause.ON_DEMAND,
            [],
            KCL_STEPS,
            id="on-demand stream: never resharded",
        ),
        pytest.param(
            kcl_evidence(None),
            Cause.INSUFFICIENT_EVIDENCE,
            [],
            ["Check the KCL application's metrics", "Check the metrics"],
            id="no lag datapoints: does not guess",
        ),
    ],
)
def test_kcl_lag_diagnosis(
    ev: Evidence, cause: str, proposals: list[tuple[str, dict[str, Any]]], advice: list[str]
) -> None:
    # Given a KCL application's lag, its lease table's throttles and the stream's load
    # When diagnosed
    diagnosis = KCL.diagnose(ev, policy(consumers=[{"kcl": APP}]))
    # Then the cause, the proposals and the advice follow
    assert diagnosis.cause == cause
    assert [(p.action, p.parameters) for p in diagnosis.proposals] == proposals
    assert titles(diagnosis) == advice


@pytest.mark.parametrize(
    ("lag_hours", "retention_hours", "raised"),
    [
        pytest.param(11.9, 24, False, id="49.6 % of 24 h: the fix for the lag only"),
        pytest.param(12, 24, True, id="50 % of 24 h: raise-retention ahead of the reshard"),
        pytest.param(30, 48, True, id="62.5 % of 48 h"),
        pytest.param(23.9, 48, False, id="49.8 % of 48 h"),
    ],
)
def test_kcl_lag_at_the_retention_share_raises_retention_as_well_as_the_fix(
    lag_hours: float, retention_hours: int, raised: bool
) -> None:
    # Given the KCL application this far behind, on saturated shards (the fix for the lag: reshard), and a second
    # application further ahead
    age = int(lag_hours * HOUR_MS)
    ev = with_series(kcl_evidence(age, retention_hours=retention_hours, **SATURATED), kcl_lag_ms_1=1_000)
    # When diagnosed
    diagnosis = KCL.diagnose(ev, policy(consumers=[{"kcl": APP}, {"kcl": "search"}]))
    # Then from half the retention, raise-retention with the age of the worst application comes first, and the
    # reshard stays; below it, the reshard alone
    retention = [("raise-retention", {"oldest_record_age_ms": age})] if raised else []
    assert [(p.action, p.parameters) for p in diagnosis.proposals] == [
        *retention,
        ("reshard", {"desired_shards": 4}),
    ]


def test_kcl_lag_retention_share_comes_from_its_own_detector() -> None:
    # Given a detector that proposes raise-retention from a quarter of the retention, and an application 7 h behind
    p = policy(consumers=[{"kcl": APP}], detectors={"kcl_consumer_lag": {"retention_share": 0.25}})
    # When diagnosed (7 h is 29 % of 24 h)
    (proposal,) = KCL.diagnose(kcl_evidence(7 * HOUR_MS), p).proposals
    # Then raise-retention is proposed, the reason naming the detector's setting and the application
    assert proposal == Proposal(
        action="raise-retention",
        parameters={"oldest_record_age_ms": 7 * HOUR_MS},
        reason="the oldest unread record is 29% of the way to expiry (retention 24 h; "
        f"detectors.kcl_consumer_lag.retention_share is 25%); furthest behind: {APP}",
    )
    # And the default detector does not propose it at 29 %
    assert KCL.diagnose(kcl_evidence(7 * HOUR_MS), policy(consumers=[{"kcl": APP}])).proposals == ()


def test_kcl_lag_retention_share_is_the_one_iterator_age_has() -> None:
    # The field is shared (symptoms.lag.retention_share_field): same default, bounds and description
    ours = KCL.detector_schema.model_fields["retention_share"]
    theirs = REGISTRY.symptoms["iterator-age"].detector_schema.model_fields["retention_share"]
    assert (ours.default, ours.metadata, ours.description) == (theirs.default, theirs.metadata, theirs.description)


def test_kcl_lag_figures_and_summary() -> None:
    diagnosis = KCL.diagnose(kcl_evidence(6 * 3_600_000), policy(consumers=[{"kcl": APP}]))
    shown = figures(diagnosis)
    assert shown[f"{APP}: max MillisBehindLatest"] == 21_600
    assert shown[f"{APP}: behind / retention"] == 25
    assert shown[f"{APP}: lease table throttle events"] == 0
    assert diagnosis.summary == (
        f"{APP} is 21,600 s behind (writes peaked at 10% of capacity) although writes are not saturating the "
        "shards: resharding would not help."
    )


def test_kcl_lag_steps_name_the_shard_count() -> None:
    diagnosis = KCL.diagnose(
        kcl_evidence(300_000, shards=6, bytes_per_second=300_000), policy(consumers=[{"kcl": APP}])
    )
    (leases,) = [a for a in diagnosis.advice if a.title == "Check maxLeasesPerWorker and the worker count"]
    assert leases.detail.startswith("The stream has 6 open shards. With maxLeasesPerWorker x workers below 6,")


# get-errors -----------------------------------------------------------------------------------------------------
def test_get_errors_alarm_is_metric_math_below_99_percent() -> None:
    (spec,) = alarms(ERRORS, policy("clicks"))
    assert spec.metric == MetricMath(
        "100 * success",
        {"success": Metric("AWS/Kinesis", "GetRecords.Success", "Average", (("StreamName", "clicks"),))},
        label="GetRecords success (%)",
    )
    assert (spec.threshold, spec.comparison, spec.missing_data) == (
        99.0,
        Comparison.LESS_THAN_THRESHOLD,
        MissingData.NOT_BREACHING,
    )
    # And the evidence reads the same metric, plain (the percentage is taken by the diagnosis)
    queries = {q.key: q.source for q in ERRORS.evidence_queries(policy("clicks"))}
    assert queries["get_success"] == spec.metric.inputs["success"]
    # And the threshold is the policy's
    (custom,) = alarms(ERRORS, policy(detectors={"get_errors": {"min_success_percent": 95}}))
    assert custom.threshold == 95


@pytest.mark.parametrize(
    ("success", "load", "throttled", "cause", "proposals", "advice"),
    [
        pytest.param(
            0.95,
            IDLE,
            0,
            "get-records-errors",
            [],
            ["Retry with backoff", "Check the consumers' CPU and memory"],
            id="5 % errors on idle shards: advice",
        ),
        pytest.param(
            0.95,
            IDLE,
            2,
            "get-records-errors",
            [],
            ["Retry with backoff", "Check the consumers' CPU and memory", "GetRecords throttled"],
            id="throttled calls among them: point to read-throttling",
        ),
        pytest.param(
            0.95,
            SATURATED,
            0,
            Cause.SATURATED,
            [{"desired_shards": 4}],
            ["Retry with backoff", "Check the consumers' CPU and memory"],
            id="saturated shards: reshard",
        ),
        pytest.param(0.99, SATURATED, 0, Cause.NOT_REPRODUCED, [], [], id="exactly 99 %: not below the threshold"),
        pytest.param(1.0, IDLE, 0, Cause.NOT_REPRODUCED, [], [], id="no error in the window"),
        pytest.param(None, IDLE, 0, Cause.INSUFFICIENT_EVIDENCE, [], ["Check the metrics"], id="no datapoints"),
    ],
)
def test_get_errors_diagnosis(
    success: float | None,
    load: dict[str, float],
    throttled: float,
    cause: str,
    proposals: list[dict[str, Any]],
    advice: list[str],
) -> None:
    # Given the share of successful GetRecords calls each minute, the write load and throttled reads
    ev = with_series(evidence(**load), get_success=success, read_throttled=throttled)
    # When diagnosed
    diagnosis = ERRORS.diagnose(ev, policy())
    # Then
    assert diagnosis.cause == cause
    assert [p.parameters for p in diagnosis.proposals] == proposals
    assert titles(diagnosis) == advice


def test_get_errors_figures_and_advice_carry_the_numbers() -> None:
    ev = with_series(evidence(**IDLE), get_success=0.97, read_throttled=0)
    ev = ev.model_copy(update={"series": {**ev.series, "get_success": (1.0,) * 14 + (0.97,)}})
    diagnosis = ERRORS.diagnose(ev, policy(consumers=[{"function": "orders-processor"}, {"kcl": APP}]))
    shown = figures(diagnosis)
    assert shown["lowest GetRecords success"] == 97
    assert shown["minutes below 99 %"] == 1
    assert shown["average GetRecords success"] == pytest.approx(99.8)
    assert diagnosis.advice[0].detail.startswith("In the worst minute 3.0 % of GetRecords calls failed.")
    assert "(orders-processor, orders-indexer)" in diagnosis.advice[1].detail


# get-latency ----------------------------------------------------------------------------------------------------
def test_get_latency_alarm() -> None:
    (spec,) = alarms(LATENCY, policy("clicks", detectors={"get_latency": {"threshold_ms": 250}}))
    assert spec.metric == Metric("AWS/Kinesis", "GetRecords.Latency", "Average", (("StreamName", "clicks"),))
    assert (spec.threshold, spec.missing_data) == (250, MissingData.NOT_BREACHING)


LATENCY_ADVICE = [
    "Check the consumers' CPU and memory",
    "Fewer, larger GetRecords calls",
    "Enhanced fan-out for latency-sensitive consumers",
]


@pytest.mark.parametrize(
    ("latency", "load", "cause", "proposals", "advice"),
    [
        pytest.param(1_500, IDLE, "get-records-slow", [], LATENCY_ADVICE, id="slow on idle shards: advice"),
        pytest.param(
            1_500, SATURATED, Cause.SATURATED, [{"desired_shards": 4}], LATENCY_ADVICE, id="saturated shards: reshard"
        ),
        pytest.param(1_000, IDLE, "get-records-slow", [], LATENCY_ADVICE, id="exactly at the threshold, as the alarm"),
        pytest.param(999, SATURATED, Cause.NOT_REPRODUCED, [], [], id="below the threshold"),
        pytest.param(None, IDLE, Cause.INSUFFICIENT_EVIDENCE, [], ["Check the metrics"], id="no datapoints"),
    ],
)
def test_get_latency_diagnosis(
    latency: float | None, load: dict[str, float], cause: str, proposals: list[dict[str, Any]], advice: list[str]
) -> None:
    ev = with_series(evidence(**load), get_latency_ms=latency, get_latency_max_ms=latency and latency * 3)
    diagnosis = LATENCY.diagnose(ev, policy(consumers=[{"kcl": APP}]))
    assert diagnosis.cause == cause
    assert [p.parameters for p in diagnosis.proposals] == proposals
    assert titles(diagnosis) == advice


def test_get_latency_figures_and_the_efo_command() -> None:
    ev = with_series(evidence(**IDLE), get_latency_ms=1_200, get_latency_max_ms=4_000)
    diagnosis = LATENCY.diagnose(ev, policy(consumers=[{"function": "orders-processor"}]))
    shown = figures(diagnosis)
    assert (shown["highest average GetRecords latency"], shown["maximum GetRecords latency"]) == (1_200, 4_000)
    assert shown["minutes at or above 1,000 ms"] == 15
    assert diagnosis.advice[2].cli_command == (
        f"aws kinesis register-stream-consumer --stream-arn {ARN} --consumer-name orders-processor-efo"
    )


def test_get_errors_throttled_advice_counts_the_polling_consumers() -> None:
    # Given failing calls, 2 throttled a minute, and a Lambda and a KCL consumer (an EFO consumer does not poll)
    ev = with_series(evidence(**IDLE), get_success=0.9, read_throttled=2)
    p = policy(consumers=[{"function": "orders-processor"}, {"kcl": APP}, {"efo": "analytics"}])
    # When diagnosed
    (throttled,) = [a for a in ERRORS.diagnose(ev, p).advice if a.title == "GetRecords throttled"]
    # Then the advice counts the throttled calls and the consumers that share each shard's reads
    assert throttled.detail == (
        "30 GetRecords calls were throttled: each shard serves 5 GetRecords calls and 2 MB per second, shared by "
        "every polling consumer (2 in the policy). See the read-throttling alarm."
    )
