"""Producer symptoms: put-errors (alarms, rates, throttled share, advice) and write-throttling telling a hot shard
from bursts shorter than a minute (shard-level metrics, the cannot-tell plan with its command and cost)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from botocore.exceptions import ClientError
from remediator.core.evidence import Evidence
from remediator.core.metrics import Comparison, MetricMath, MissingData
from remediator.core.plan import Cause, Diagnosis
from remediator.core.ports import DeclaredOnly, UndeclaredCall
from remediator.core.pricing import monthly_shard_level_metrics_cost
from remediator.core.registry import REGISTRY
from remediator.core.shard_load import SHARD_LOAD, ShardLoad, ShardLoadFacts, Spread, concentration_bar, judge
from remediator.core.symptoms.put_errors import failure_rates, share

from tests.fakes import NOW, evidence, policy, stream_arn

PUT = REGISTRY.symptoms["put-errors"]
WRITE = REGISTRY.symptoms["write-throttling"]
ARN = stream_arn("orders")
METRICS = "IncomingBytes IncomingRecords WriteProvisionedThroughputExceeded"


def figures(diagnosis: Diagnosis) -> dict[str, float]:
    return {f.name: f.value for f in diagnosis.figures}


def titles(diagnosis: Diagnosis) -> list[str]:
    return [a.title for a in diagnosis.advice]


# put-errors: alarms ------------------------------------------------------------------------------------------------


def test_put_errors_declares_two_alarms_with_qualifiers_thresholds_and_missing_data() -> None:
    # Given a policy with the put-errors thresholds changed
    p = policy(detectors={"put_errors": {"max_failed_percent": 2.5, "min_put_record_success_percent": 98}})
    # When its alarms are declared
    rate, success = PUT.alarms(p, PUT.detector(p))
    # Then the first is FailedRecords over TotalRecords by metric math, guarded against a zero or missing total
    assert rate.qualifier == "failed-records"
    assert isinstance(rate.metric, MetricMath)
    assert rate.metric.expression == "IF(FILL(total, 0) > 0, 100 * FILL(failed, 0) / FILL(total, 0), 0)"
    assert {k: (m.name, m.statistic, m.dimension_map) for k, m in rate.metric.inputs.items()} == {
        "failed": ("PutRecords.FailedRecords", "Sum", {"StreamName": "orders"}),
        "total": ("PutRecords.TotalRecords", "Sum", {"StreamName": "orders"}),
    }
    # And every input has the expression's period
    assert {m.period_seconds for m in rate.metric.inputs.values()} == {rate.metric.period_seconds} == {60}
    assert (rate.threshold, rate.comparison, rate.missing_data) == (
        2.5,
        Comparison.GREATER_THAN_THRESHOLD,
        MissingData.NOT_BREACHING,
    )
    # And the second is the Average of PutRecord.Success, as a percentage, below the threshold
    assert success.qualifier == "put-record-success"
    assert isinstance(success.metric, MetricMath)
    assert success.metric.expression == "100 * success"
    (metric,) = success.metric.metrics
    assert (metric.name, metric.statistic) == ("PutRecord.Success", "Average")
    assert (success.threshold, success.comparison, success.missing_data) == (
        98,
        Comparison.LESS_THAN_THRESHOLD,
        MissingData.NOT_BREACHING,
    )


def test_put_errors_defaults_are_one_percent_and_ninety_nine_percent() -> None:
    # Given the default policy
    p = policy()
    # Then the thresholds are 1 % failed records and 99 % PutRecord success
    assert [a.threshold for a in PUT.alarms(p, PUT.detector(p))] == [1.0, 99.0]


# put-errors: the maths ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("part", "whole", "expected"),
    [
        pytest.param(20, 1000, 0.02, id="2 %"),
        pytest.param(0, 1000, 0.0, id="nothing failed"),
        pytest.param(5, 0, None, id="zero whole: no division"),
        pytest.param(0, 0, None, id="nothing at all"),
        pytest.param(30, 40, 0.75, id="throttled 30 of 40 rejected"),
    ],
)
def test_share_guards_against_division_by_zero(part: float, whole: float, expected: float | None) -> None:
    assert share(part, whole) == expected


@pytest.mark.parametrize(
    ("failed", "total", "expected"),
    [
        pytest.param((1.0, 30.0), (100.0, 1000.0), [0.01, 0.03], id="paired minute by minute"),
        pytest.param((0.0, 5.0), (0.0, 100.0), [0.05], id="a minute with no records is skipped"),
        pytest.param((5.0,), (100.0, 100.0), [], id="unequal series are not paired"),
        pytest.param((), (), [], id="no data"),
    ],
)
def test_failure_rates_per_minute(failed: tuple[float, ...], total: tuple[float, ...], expected: list[float]) -> None:
    assert failure_rates(failed, total) == pytest.approx(expected)


def put_evidence(
    *,
    total: float | None = 1000,
    failed: float = 0,
    throttled: float = 0,
    success: float | None = None,
    write_throttled: float = 0,
    bytes_per_second: float = 200_000,
    shards: int = 2,
    mode: str = "PROVISIONED",
    minutes: int = 15,
) -> Evidence:
    base = evidence(shards=shards, bytes_per_second=bytes_per_second, mode=mode, minutes=minutes)
    series = dict(base.series)
    if total is not None:
        series |= {
            "put_total": (total,) * minutes,
            "put_failed": (failed,) * minutes,
            "put_throttled": (throttled,) * minutes,
        }
    if success is not None:
        series["put_record_success"] = (success,) * minutes
    series["write_throttled"] = (write_throttled,) * minutes
    return base.model_copy(update={"series": series})


@pytest.mark.parametrize(
    ("kwargs", "cause", "rate", "throttled_share", "last_advice"),
    [
        pytest.param(
            {"failed": 20, "throttled": 5},
            "put-internal-failures",
            2.0,
            20.0,
            "Not throttling",
            id="2 % failed, 20 % of rejected throttled: internal failures",
        ),
        pytest.param(
            {"failed": 20, "throttled": 60, "write_throttled": 60},
            "put-records-throttled",
            2.0,
            75.0,
            "Mostly throttling",
            id="mostly throttles, shards not saturated: advice pointing to write-throttling",
        ),
        pytest.param(
            {"failed": 20, "throttled": 20},
            "put-records-throttled",
            2.0,
            50.0,
            "Mostly throttling",
            id="exactly half throttled counts as mostly",
        ),
        pytest.param(
            {"failed": 10, "throttled": 0},
            "not-reproduced",
            1.0,
            0.0,
            None,
            id="exactly 1 % is not above 1 %",
        ),
        pytest.param(
            {"failed": 0, "throttled": 0},
            "not-reproduced",
            0.0,
            None,
            None,
            id="nothing rejected: no throttled share (0/0)",
        ),
    ],
)
def test_put_errors_diagnosis_table(
    kwargs: dict[str, Any], cause: str, rate: float, throttled_share: float | None, last_advice: str | None
) -> None:
    # Given 1,000 PutRecords records a minute with some failed and throttled
    ev = put_evidence(**kwargs)
    # When diagnosed
    diagnosis = PUT.diagnose(ev, policy())
    # Then the cause, the failure rate and the throttled share of the rejected records are as the table says
    assert diagnosis.cause == cause
    found = figures(diagnosis)
    assert found["failure rate"] == pytest.approx(rate)
    assert found.get("throttled share of rejected records") == (
        None if throttled_share is None else pytest.approx(throttled_share)
    )
    assert diagnosis.proposals == ()
    # And advice (retry with backoff, batch, then what the throttled share says) unless nothing failed
    if last_advice is None:
        assert diagnosis.advice == ()
    else:
        assert titles(diagnosis) == [
            "Retry failed records with backoff",
            "Batch with PutRecords or the KPL",
            last_advice,
        ]


def test_put_errors_throttled_on_saturated_shards_proposes_the_reshard() -> None:
    # Given mostly throttled records while writes run at 95 % of 2 shards
    ev = put_evidence(failed=20, throttled=80, write_throttled=80, bytes_per_second=1_900_000)
    # When diagnosed
    diagnosis = PUT.diagnose(ev, policy())
    # Then it is the saturated-shards diagnosis with the reshard every saturated symptom proposes
    assert diagnosis.cause == Cause.SATURATED
    (proposal,) = diagnosis.proposals
    assert (proposal.action, proposal.parameters) == ("reshard", {"desired_shards": 4})
    assert "mostly throttled while the shards are saturated" in diagnosis.summary
    assert titles(diagnosis)[-1] == "Mostly throttling"


def test_put_errors_internal_failures_on_saturated_shards_are_not_resharded() -> None:
    # Given 2 % internal failures (no throttle) while writes run at 95 %
    ev = put_evidence(failed=20, throttled=0, bytes_per_second=1_900_000)
    # When diagnosed
    diagnosis = PUT.diagnose(ev, policy())
    # Then no reshard: more shards do not cure internal failures
    assert (diagnosis.cause, diagnosis.proposals) == ("put-internal-failures", ())
    assert "KMS" in diagnosis.advice[-1].detail


@pytest.mark.parametrize(
    ("success", "write_throttled", "cause", "last_advice"),
    [
        pytest.param(0.97, 0, "put-internal-failures", "Not throttling", id="97 % success, no throttle"),
        pytest.param(0.97, 30, "put-records-throttled", "Mostly throttling", id="97 % success with throttles"),
        pytest.param(0.995, 0, "not-reproduced", None, id="99.5 % is fine"),
    ],
)
def test_put_record_success_below_99_percent(
    success: float, write_throttled: float, cause: str, last_advice: str | None
) -> None:
    # Given producers that call PutRecord only (no PutRecords metrics)
    ev = put_evidence(total=None, success=success, write_throttled=write_throttled)
    # When diagnosed
    diagnosis = PUT.diagnose(ev, policy())
    # Then PutRecord.Success decides, and its lowest minute is a figure
    assert diagnosis.cause == cause
    assert figures(diagnosis)["lowest PutRecord success"] == pytest.approx(100 * success)
    assert "failure rate" not in figures(diagnosis)
    if last_advice:
        assert titles(diagnosis)[-1] == last_advice
        assert "PutRecord calls succeeded only 97.0 %" in diagnosis.summary


def test_put_errors_without_put_metrics_does_not_guess() -> None:
    # Given write traffic but neither PutRecords.TotalRecords nor PutRecord.Success
    ev = put_evidence(total=None, success=None)
    # Then the evidence is insufficient
    diagnosis = PUT.diagnose(ev, policy())
    assert diagnosis.cause == Cause.INSUFFICIENT_EVIDENCE
    assert "PutRecords.TotalRecords" in diagnosis.summary


def test_put_errors_on_demand_stream_gets_the_advice_without_a_reshard() -> None:
    # Given mostly throttled records on an on-demand stream
    ev = put_evidence(failed=20, throttled=90, write_throttled=90, mode="ON_DEMAND", bytes_per_second=9_000_000)
    # Then no reshard, and the producer advice
    diagnosis = PUT.diagnose(ev, policy())
    assert (diagnosis.cause, diagnosis.proposals) == (Cause.ON_DEMAND, ())
    assert titles(diagnosis)[-1] == "Mostly throttling"


# write-throttling: hot shard or bursts ------------------------------------------------------------------------------


def with_shards(ev: Evidence, *shards: dict[str, Any], enabled: tuple[str, ...] = tuple(METRICS.split())) -> Evidence:
    facts = ShardLoadFacts(enabled=enabled, shards=tuple(ShardLoad(**s) for s in shards))
    return ev.model_copy(update={"facts": {SHARD_LOAD: facts.model_dump(mode="json")}})


def shard(index: int, *, mb: float = 0.1, throttled: float | None = 0, peak_mb: float | None = None) -> dict[str, Any]:
    """One shard over 15 minutes at `mb` MB/s (peak `peak_mb`), with `throttled` records in total."""
    return {
        "shard_id": f"shardId-{index:012d}",
        "bytes": mb * 1e6 * 60 * 15,
        "peak_bytes": (peak_mb if peak_mb is not None else mb) * 1e6 * 60,
        "throttled": throttled,
    }


LOW = evidence(shards=4, bytes_per_second=400_000, throttled_per_minute=3)  # 10 % of 4 shards, throttled


@pytest.mark.parametrize(
    ("ev", "cause", "summary_has"),
    [
        pytest.param(
            evidence(shards=4, bytes_per_second=3_800_000, throttled_per_minute=3),
            Cause.SATURATED,
            "The shards are saturated",
            id="saturated: reshard",
        ),
        pytest.param(
            with_shards(LOW, shard(0, throttled=40), shard(1, throttled=2), shard(2, throttled=1), shard(3)),
            Cause.HOT_PARTITION_KEY,
            "shardId-000000000000 took 93% of the throttled records (an even spread is 25%)",
            id="hot shard: takes the throttles",
        ),
        pytest.param(
            with_shards(LOW, shard(0, mb=0.7, throttled=None), shard(1, mb=0.1, throttled=None), enabled=("ALL",)),
            Cause.HOT_PARTITION_KEY,
            "shardId-000000000000 took 88% of the bytes (an even spread is 50%)",
            id="hot shard: takes the bulk of the bytes (ALL enabled, no throttle metric)",
        ),
        pytest.param(
            with_shards(LOW, shard(0, peak_mb=0.85), shard(1), shard(2), shard(3)),
            Cause.HOT_PARTITION_KEY,
            "shardId-000000000000 ran at 85% of one shard's write capacity in its busiest minute",
            id="hot shard: itself saturated in its busiest minute",
        ),
        pytest.param(
            with_shards(
                LOW, shard(0, throttled=12), shard(1, throttled=10), shard(2, throttled=11), shard(3, throttled=9)
            ),
            "sub-minute-bursts",
            "no shard took more than 29% of the throttled records or 25% of the bytes (an even spread is 25%)",
            id="even spread: bursts",
        ),
        pytest.param(
            evidence(shards=1, bytes_per_second=100_000, throttled_per_minute=3),
            "sub-minute-bursts",
            "a single open shard",
            id="one shard: bursts",
        ),
        pytest.param(LOW, "hot-shard-or-bursts", "cannot tell which", id="no shard metrics: cannot tell"),
        pytest.param(
            with_shards(LOW, {"shard_id": "shardId-000000000000"}, {"shard_id": "shardId-000000000001"}),
            "hot-shard-or-bursts",
            "had no datapoint in the last 15 minutes",
            id="shard metrics on but no data yet: cannot tell",
        ),
    ],
)
def test_write_throttling_tells_a_hot_shard_from_bursts(ev: Evidence, cause: str, summary_has: str) -> None:
    # When a throttled stream is diagnosed with the shard facts in the evidence
    diagnosis = WRITE.diagnose(ev, policy())
    # Then the cause is as the table says, and only saturation proposes a change
    assert diagnosis.cause == cause
    assert summary_has in diagnosis.summary
    assert bool(diagnosis.proposals) == (cause == Cause.SATURATED)


def test_hot_shard_figures_say_what_the_share_is_of() -> None:
    # Given shard 0 taking 7/8 of the bytes (no throttle metric), and, apart, 40 of 44 throttles
    by_bytes = with_shards(LOW, shard(0, mb=0.7, throttled=None), shard(1, mb=0.1, throttled=None))
    by_throttles = with_shards(LOW, shard(0, throttled=40), shard(1, throttled=2), shard(2, throttled=1), shard(3))
    # When diagnosed
    bytes_figures = figures(WRITE.diagnose(by_bytes, policy()))
    throttle_figures = figures(WRITE.diagnose(by_throttles, policy()))
    # Then each names the share it decided on, and the hot shard's busiest minute against one shard's capacity
    assert bytes_figures["busiest shard's share of the bytes"] == pytest.approx(87.5)
    assert bytes_figures["busiest shard's peak utilisation"] == pytest.approx(70)
    assert throttle_figures["busiest shard's share of the throttled records"] == pytest.approx(100 * 40 / 43)


def test_cannot_tell_gives_the_command_and_its_monthly_cost() -> None:
    # Given throttles at 10 % of 4 shards and no shard-level metrics
    diagnosis = WRITE.diagnose(LOW, policy())
    # Then the plan says it cannot tell, and how to find out: the exact command first
    assert diagnosis.cause == "hot-shard-or-bursts"
    assert titles(diagnosis) == [
        "Find out: enable shard-level metrics",
        "Spread the partition keys",
        "Batch and back off",
    ]
    find_out = diagnosis.advice[0]
    assert (
        find_out.cli_command
        == f"aws kinesis enable-enhanced-monitoring --stream-arn {ARN} --shard-level-metrics {METRICS}"
    )
    # And its cost: 3 metrics x 4 shards x $0.30 a month, marked UNCONFIRMED, and how to turn them off
    assert "about $3.60 a month for this stream's 4 shards (3 metrics x 4 shards x $0.30" in find_out.detail
    assert "UNCONFIRMED" in find_out.detail
    assert (
        f"aws kinesis disable-enhanced-monitoring --stream-arn {ARN} --shard-level-metrics {METRICS}" in find_out.detail
    )
    assert figures(diagnosis)["shard-level metrics cost"] == 3.6


@pytest.mark.parametrize(
    ("shards", "metrics", "usd"),
    [
        pytest.param(1, 3, 0.9, id="1 shard"),
        pytest.param(4, 3, 3.6, id="4 shards"),
        pytest.param(100, 3, 90.0, id="100 shards"),
        pytest.param(0, 3, 0.0, id="no shard"),
    ],
)
def test_shard_level_metrics_monthly_cost(shards: int, metrics: int, usd: float) -> None:
    assert monthly_shard_level_metrics_cost(shards, metrics) == pytest.approx(usd)


@pytest.mark.parametrize(
    ("shards", "bar"),
    [pytest.param(1, 1.0), pytest.param(2, 0.75), pytest.param(4, 0.625), pytest.param(10, 0.55)],
)
def test_concentration_bar_is_halfway_between_even_and_everything(shards: int, bar: float) -> None:
    assert concentration_bar(shards) == pytest.approx(bar)


def test_judge_just_below_the_bar_is_even_and_at_the_bar_is_hot() -> None:
    # Given 2 shards: the bar is 75 % of the throttles
    below = ShardLoadFacts(
        enabled=("ALL",), shards=(ShardLoad(shard_id="a", throttled=74), ShardLoad(shard_id="b", throttled=26))
    )
    at = ShardLoadFacts(
        enabled=("ALL",), shards=(ShardLoad(shard_id="a", throttled=75), ShardLoad(shard_id="b", throttled=25))
    )
    # Then 74 % is an even spread and 75 % a hot shard
    assert judge(below, 0.8).spread == Spread.EVEN
    verdict = judge(at, 0.8)
    assert (verdict.spread, verdict.shard, verdict.share) == (Spread.HOT_SHARD, "a", 0.75)


# write-throttling: gathering the shard facts ----------------------------------------------------------------------


class ShardPorts:
    """Kinesis and CloudWatch answering as AWS does (ListShards, GetMetricData), or raising `failure`."""

    def __init__(self, failure: Exception | None = None, pages: int = 1) -> None:
        self.failure, self.pages = failure, pages
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def service(self, name: str) -> Any:
        ports = self

        class Port:
            def call(self, operation: str, **params: Any) -> dict[str, Any]:
                ports.calls.append((operation, params))
                if ports.failure is not None:
                    raise ports.failure
                return ports.answer(operation, params)

        return Port()

    def answer(self, operation: str, params: dict[str, Any]) -> dict[str, Any]:
        if operation == "ListShards":
            open_range = {"StartingSequenceNumber": "1"}
            closed = {"StartingSequenceNumber": "0", "EndingSequenceNumber": "9"}
            if "NextToken" in params:
                return {"Shards": [{"ShardId": "shardId-000000000002", "SequenceNumberRange": open_range}]}
            return {
                "Shards": [
                    {"ShardId": "shardId-000000000000", "SequenceNumberRange": closed},
                    {"ShardId": "shardId-000000000001", "SequenceNumberRange": open_range},
                ],
                **({"NextToken": "more"} if self.pages > 1 else {}),
            }
        if operation == "GetMetricData":
            values = {"bytes": [6e6, 3e6], "records": [100.0], "throttled": [7.0, 1.0]}
            return {
                "MetricDataResults": [
                    {"Id": q["Id"], "Values": values[q["Id"].split("_", 1)[1]] if q["Id"].startswith("s0") else []}
                    for q in params["MetricDataQueries"]
                ]
            }
        raise AssertionError(f"unexpected {operation}")


def gather(ev: Evidence, ports: ShardPorts) -> dict[str, Any]:
    return WRITE.gather(
        policy(), ev.stream, DeclaredOnly(ports, WRITE.read_iam_actions, WRITE.id, read_only=True), ev.collected_at
    )


def test_gather_reads_nothing_when_no_shard_level_metric_is_on() -> None:
    # Given a stream without enhanced monitoring
    ports = ShardPorts()
    # When write-throttling gathers
    facts = gather(LOW, ports)
    # Then no AWS call is made, and the facts say none is enabled
    assert ports.calls == []
    assert facts == {SHARD_LOAD: {"enabled": [], "shards": [], "shards_not_read": 0}}


def test_gather_reads_each_open_shards_metrics_over_the_window() -> None:
    # Given a stream with ALL shard-level metrics on, two pages of shards (one closed), evidence collected at NOW
    assert LOW.collected_at == NOW
    stream = LOW.stream.model_copy(update={"shard_level_metrics": ("ALL",)})
    ports = ShardPorts(pages=2)
    # When write-throttling gathers
    facts = gather(LOW.model_copy(update={"stream": stream}), ports)
    # Then ListShards is paged (the second page by NextToken alone) and the closed shard is left out
    assert [op for op, _ in ports.calls] == ["ListShards", "ListShards", "GetMetricData"]
    assert ports.calls[0][1] == {"StreamARN": ARN}
    assert ports.calls[1][1] == {"NextToken": "more"}
    # And one GetMetricData reads the three metrics of each open shard over the 15 minutes before now
    request = ports.calls[2][1]
    assert (request["StartTime"], request["EndTime"]) == (NOW - timedelta(minutes=15), NOW)
    assert [q["Id"] for q in request["MetricDataQueries"]] == [
        f"s{i}_{m}" for i in (0, 1) for m in ("bytes", "records", "throttled")
    ]
    first = request["MetricDataQueries"][0]["MetricStat"]
    assert first["Metric"]["Dimensions"] == [
        {"Name": "StreamName", "Value": "orders"},
        {"Name": "ShardId", "Value": "shardId-000000000001"},
    ]
    assert (first["Stat"], first["Period"]) == ("Sum", 60)
    # And each shard's peak and total are kept (None where CloudWatch had no datapoint)
    assert facts[SHARD_LOAD]["shards"] == [
        {
            "shard_id": "shardId-000000000001",
            "peak_bytes": 6e6,
            "bytes": 9e6,
            "peak_records": 100.0,
            "records": 100.0,
            "throttled": 8.0,
        },
        {
            "shard_id": "shardId-000000000002",
            "peak_bytes": None,
            "bytes": None,
            "peak_records": None,
            "records": None,
            "throttled": None,
        },
    ]


def test_a_failed_shard_read_is_a_fact_and_the_plan_cannot_tell() -> None:
    # Given shard-level metrics on, but ListShards denied
    denied = ClientError({"Error": {"Code": "AccessDeniedException", "Message": "no"}}, "ListShards")
    stream = LOW.stream.model_copy(update={"shard_level_metrics": ("IncomingBytes",)})
    ev = LOW.model_copy(update={"stream": stream})
    # When write-throttling gathers and diagnoses
    facts = gather(ev, ShardPorts(failure=denied))
    diagnosis = WRITE.diagnose(ev.model_copy(update={"facts": facts}), policy())
    # Then the failure is a fact, not a crash, and the plan cannot tell, naming the read that failed
    assert facts == {"shard_load_error": "AccessDeniedException: no"}
    assert diagnosis.cause == "hot-shard-or-bursts"
    assert titles(diagnosis)[0] == "Could not read the shard-level metrics"
    assert "kinesis:ListShards" in diagnosis.advice[0].detail


def test_gather_may_only_read_what_it_declares() -> None:
    # Given write-throttling's read grants
    # Then they are ListShards and GetMetricData, and nothing else gets through
    assert WRITE.read_iam_actions == {"kinesis:ListShards", "cloudwatch:GetMetricData"}
    ports = DeclaredOnly(ShardPorts(), WRITE.read_iam_actions, WRITE.id, read_only=True)
    with pytest.raises(UndeclaredCall):
        ports.service("kinesis").call("DescribeStream", StreamARN=ARN)
