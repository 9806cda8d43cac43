"""The cost model: a stream's monthly bill from its usage, line by line, with figures worked out by hand.

Prices (core/pricing.py, us-east-1, UNCONFIRMED): shard-hour $0.015; PUT payload units $0.014 a million;
extended retention $0.020 a shard-hour (provisioned), $0.10 a GB-month (on-demand); long-term retention
$0.023 a GB-month; enhanced fan-out $0.015 a consumer-shard-hour and $0.013 a GB (provisioned), $0.05 a
GB (on-demand); on-demand $0.04 a stream-hour, $0.08 a GB ingested, $0.04 a GB retrieved. A month is 730 h.
"""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import pytest
from remediator.core import render
from remediator.core.cost import (
    Usage,
    compare,
    monthly_lines,
    monthly_usd,
    usage_of,
    with_cost_queries,
)
from remediator.core.evidence import Evidence, StreamMode, write_load_queries
from remediator.core.history import ActionHistory
from remediator.core.metrics import MetricQuery, kinesis_stream_metric
from remediator.core.plan import Diagnosis, Plan, Proposal
from remediator.core.planner import make_plan
from remediator.core.pricing import BYTES_PER_GB, monthly_retention_cost
from remediator.core.registry import REGISTRY
from remediator.core.stream_consumers import STREAM_CONSUMERS

from tests.fakes import NOW, evidence, policy

PROVISIONED, ON_DEMAND = StreamMode.PROVISIONED, StreamMode.ON_DEMAND
ONE_GB_AN_HOUR = BYTES_PER_GB / 3600  # 730 GB written a month; 1 GB stored per hour of retention
SECONDS = 730 * 3600


def usage(**fields: Any) -> Usage:
    base: dict[str, Any] = {"mode": PROVISIONED, "shards": 2, "retention_hours": 24}
    return Usage(**(base | fields))


def line_usd(u: Usage) -> dict[str, float]:
    return {line.item: round(line.usd, 4) for line in monthly_lines(u)}


# The lines, one item at a time -----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("u", "item", "usd"),
    [
        # Provisioned
        pytest.param(usage(), "shard-hours", 2 * 730 * 0.015, id="2 shards: 1,460 shard-hours"),
        pytest.param(usage(shards=10), "shard-hours", 109.50, id="10 shards"),
        pytest.param(
            usage(bytes_per_second=1_000_000, records_per_second=1000),
            "PUT payload units",
            1000 * SECONDS / 1e6 * 0.014,
            id="1 KB records: one unit each",
        ),
        pytest.param(
            usage(bytes_per_second=100 * 35 * 1024, records_per_second=100),
            "PUT payload units",
            2 * 100 * SECONDS / 1e6 * 0.014,
            id="35 KB records: two 25 KB units each (AWS's example)",
        ),
        pytest.param(
            usage(bytes_per_second=10 * 25 * 1024, records_per_second=10),
            "PUT payload units",
            10 * SECONDS / 1e6 * 0.014,
            id="exactly 25 KB: one unit",
        ),
        pytest.param(
            usage(bytes_per_second=10 * (25 * 1024 + 1), records_per_second=10),
            "PUT payload units",
            2 * 10 * SECONDS / 1e6 * 0.014,
            id="one byte over 25 KB: two units",
        ),
        pytest.param(
            usage(bytes_per_second=None, records_per_second=None), "PUT payload units", 0.0, id="no traffic data"
        ),
        pytest.param(usage(retention_hours=24), "extended retention", 0.0, id="24 h is included"),
        pytest.param(usage(shards=4, retention_hours=48), "extended retention", 4 * 730 * 0.02, id="48 h on 4 shards"),
        pytest.param(usage(shards=4, retention_hours=168), "extended retention", 58.40, id="7 days: the same"),
        pytest.param(
            usage(retention_hours=168, bytes_per_second=ONE_GB_AN_HOUR), "long-term retention", 0.0, id="7 days"
        ),
        pytest.param(
            usage(retention_hours=8_760, bytes_per_second=ONE_GB_AN_HOUR),
            "long-term retention",
            (8_760 - 168) * 0.023,
            id="365 days: 8,592 GB beyond 7 days",
        ),
        pytest.param(
            usage(shards=3, efo_consumers=2),
            "enhanced fan-out consumer-shard-hours",
            2 * 3 * 730 * 0.015,
            id="2 consumers on 3 shards",
        ),
        pytest.param(
            usage(efo_consumers=None), "enhanced fan-out consumer-shard-hours", 0.0, id="unknown consumers: none"
        ),
        pytest.param(
            usage(efo_consumers=2, bytes_per_second=ONE_GB_AN_HOUR),
            "enhanced fan-out data retrieval",
            2 * 730 * 0.013,
            id="2 consumers each read 730 GB",
        ),
        # On-demand
        pytest.param(usage(mode=ON_DEMAND), "stream-hours", 730 * 0.04, id="on-demand: one stream, 730 h"),
        pytest.param(
            usage(mode=ON_DEMAND, bytes_per_second=ONE_GB_AN_HOUR, records_per_second=ONE_GB_AN_HOUR / 1024),
            "data ingested",
            730 * 0.08,
            id="on-demand: 1 KB records, 730 GB",
        ),
        pytest.param(
            usage(mode=ON_DEMAND, bytes_per_second=500 * 1000, records_per_second=1000),
            "data ingested",
            1000 * 1024 * SECONDS / BYTES_PER_GB * 0.08,
            id="on-demand: 500 B records billed as 1 KB",
        ),
        pytest.param(
            usage(mode=ON_DEMAND, bytes_per_second=ONE_GB_AN_HOUR, records_per_second=None),
            "data ingested",
            730 * 0.08,
            id="on-demand: records unknown, bytes as written",
        ),
        pytest.param(
            usage(mode=ON_DEMAND, bytes_per_second=ONE_GB_AN_HOUR, polling_readers=2),
            "data retrieval",
            2 * 730 * 0.04,
            id="on-demand: 2 polling readers",
        ),
        pytest.param(
            usage(mode=ON_DEMAND, retention_hours=48, bytes_per_second=ONE_GB_AN_HOUR),
            "extended retention",
            24 * 0.10,
            id="on-demand 48 h: 24 GB stored beyond 24 h",
        ),
        pytest.param(
            usage(mode=ON_DEMAND, efo_consumers=1, bytes_per_second=ONE_GB_AN_HOUR),
            "enhanced fan-out data retrieval",
            730 * 0.05,
            id="on-demand: 1 consumer reads 730 GB",
        ),
    ],
)
def test_each_line_is_aws_billing_rule_on_the_price_table(u: Usage, item: str, usd: float) -> None:
    # Given a usage
    # When it is priced for a month
    lines = line_usd(u)
    # Then the item costs what the billing rule gives, worked out by hand
    assert lines[item] == pytest.approx(usd, abs=1e-4)


@pytest.mark.parametrize(
    ("mode", "items"),
    [
        (
            PROVISIONED,
            [
                "shard-hours",
                "PUT payload units",
                "extended retention",
                "long-term retention",
                "enhanced fan-out consumer-shard-hours",
                "enhanced fan-out data retrieval",
            ],
        ),
        (
            ON_DEMAND,
            [
                "stream-hours",
                "data ingested",
                "data retrieval",
                "extended retention",
                "long-term retention",
                "enhanced fan-out data retrieval",
            ],
        ),
    ],
)
def test_every_billed_item_of_the_mode_is_a_line(mode: StreamMode, items: list[str]) -> None:
    assert [line.item for line in monthly_lines(usage(mode=mode))] == items


def test_a_whole_provisioned_bill_by_hand() -> None:
    # Given 4 shards at 48 h, 1 GB an hour in 1 KB records, one enhanced fan-out consumer
    u = usage(
        shards=4,
        retention_hours=48,
        bytes_per_second=ONE_GB_AN_HOUR,
        records_per_second=ONE_GB_AN_HOUR / 1024,
        efo_consumers=1,
    )
    # Then: shard-hours 43.80 + PUT units (291.27/s x 2,628,000 = 765.45 M) 10.72 + extended 58.40
    # + consumer-shard-hours 43.80 + retrieval 730 GB x 0.013 = 9.49
    units = ONE_GB_AN_HOUR / 1024 * SECONDS / 1e6 * 0.014
    assert monthly_usd(u) == pytest.approx(43.80 + units + 58.40 + 43.80 + 9.49)
    assert round(units, 2) == 10.72


@pytest.mark.parametrize("on_demand", [False, True])
@pytest.mark.parametrize("hours", [24, 25, 48, 168, 169, 720, 8_760])
def test_the_retention_lines_are_the_retention_arithmetic_raise_retention_shows(on_demand: bool, hours: int) -> None:
    # Given a stream at some retention, in either mode
    u = usage(
        mode=ON_DEMAND if on_demand else PROVISIONED, shards=3, retention_hours=hours, bytes_per_second=ONE_GB_AN_HOUR
    )
    # Then its two retention lines cost what raise-retention's figure says
    lines = line_usd(u)
    expected = monthly_retention_cost(hours, shards=3, average_bytes_per_second=ONE_GB_AN_HOUR, on_demand=on_demand)
    assert lines["extended retention"] + lines["long-term retention"] == pytest.approx(expected, abs=1e-3)


# Before -> after ------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("before", "after", "text", "change"),
    [
        (usage(shards=2), usage(shards=4), "monthly cost $21.90 -> $43.80 (+$21.90)", 21.90),
        (usage(shards=4), usage(shards=2), "monthly cost $43.80 -> $21.90 (saves $21.90 a month)", -21.90),
        (usage(shards=2), usage(shards=2), "monthly cost $21.90 -> $21.90 (no change)", 0.0),
        (
            usage(shards=2),
            usage(shards=2, retention_hours=48),
            "monthly cost $21.90 -> $51.10 (+$29.20)",
            29.20,
        ),
    ],
    ids=["scale-up", "scale-in saves", "unchanged", "retention 24 -> 48 h"],
)
def test_compare_renders_the_change_and_a_saving_reads_as_one(
    before: Usage, after: Usage, text: str, change: float
) -> None:
    # When both sides are priced
    cost = compare(before, after)
    # Then one readable line says before, after and the change
    assert cost.render() == text
    assert cost.monthly_change_usd == pytest.approx(change)


def test_a_steps_cost_lists_only_the_lines_it_changes_and_the_plans_lists_all() -> None:
    before, after = usage(shards=2, efo_consumers=1), usage(shards=4, efo_consumers=1)
    step = compare(before, after, only_changed=True)
    assert [(line.item, line.before_usd, line.after_usd) for line in step.lines] == [
        ("shard-hours", 21.90, 43.80),
        ("enhanced fan-out consumer-shard-hours", 21.90, 43.80),
    ]
    assert len(compare(before, after).lines) == 6


def test_the_report_names_its_prices_and_is_plain_json() -> None:
    report = compare(usage(), usage(shards=3), notes=("a note",)).report()
    assert report["monthly_before_usd"] == 21.90
    assert report["monthly_after_usd"] == 32.85
    assert report["monthly_change_usd"] == 10.95
    assert (report["region"], report["prices_as_of"], report["prices_confirmed"]) == ("us-east-1", "2026-11-26", False)
    assert report["price_source"] == "https://aws.amazon.com/kinesis/data-streams/pricing/"
    assert report["notes"] == ["a note"]
    assert report["lines"][0] == {
        "item": "shard-hours",
        "unit": "shard-hour",
        "unit_price_usd": 0.015,
        "quantity_before": 1460.0,
        "quantity_after": 2190.0,
        "before_usd": 21.90,
        "after_usd": 32.85,
    }
    assert json.loads(json.dumps(report)) == report


# Usage from the evidence ----------------------------------------------------------------------------------
def with_facts(ev: Evidence, **facts: Any) -> Evidence:
    return ev.model_copy(update={"facts": facts})


def test_usage_reads_the_stream_and_its_average_write_rate() -> None:
    # Given 15 minutes of 1 MB/s and 800 records/s on 3 shards at 48 h, one Lambda and one KCL consumer
    p = policy("orders", consumers=[{"function": "f"}, {"kcl": "app"}])
    ev = evidence(shards=3, retention_hours=48, bytes_per_second=1e6, records_per_second=800)
    # When the usage is read
    u, notes = usage_of(ev, p)
    # Then it is the stream's state and the window's average rates
    assert u == Usage(
        mode=PROVISIONED,
        shards=3,
        retention_hours=48,
        bytes_per_second=pytest.approx(1e6),
        records_per_second=pytest.approx(800),
        efo_consumers=None,
        polling_readers=2,
    )
    assert notes[0] == (
        "traffic: 1,000,000 B/s and 800.0 records/s, the average of the 15 minute(s) CloudWatch reported, "
        "taken as the month's"
    )
    assert "counted as none" in notes[1]


def test_usage_without_traffic_says_the_volume_lines_are_left_out() -> None:
    ev = evidence().model_copy(update={"series": {}})
    u, notes = usage_of(ev, policy())
    assert (u.bytes_per_second, u.records_per_second) == (None, None)
    assert "left at 0" in notes[0]


CONSUMER = {"arn": "arn:aws:kinesis:us-east-1:123456789012:stream/orders/consumer/c:1", "status": "ACTIVE"}


@pytest.mark.parametrize(
    ("facts", "consumer_count", "listed", "expected", "source"),
    [
        pytest.param(
            {STREAM_CONSUMERS: [CONSUMER | {"name": "a"}, CONSUMER | {"name": "b", "status": "DELETING"}]},
            7,
            1,
            1,
            "ListStreamConsumers",
            id="ListStreamConsumers first, DELETING not billed on",
        ),
        pytest.param({}, 3, 1, 3, "DescribeStreamSummary", id="then DescribeStreamSummary's ConsumerCount"),
        pytest.param({}, None, 2, 2, "listed in the policy", id="then the policy's efo consumers"),
        pytest.param({}, None, 0, None, "unknown", id="else unknown"),
    ],
)
def test_enhanced_fan_out_consumers_come_from_the_best_source_read(
    facts: dict[str, Any], consumer_count: int | None, listed: int, expected: int | None, source: str
) -> None:
    p = policy("orders", consumers=[{"efo": f"e{i}"} for i in range(listed)])
    ev = evidence()
    ev = with_facts(
        ev.model_copy(update={"stream": ev.stream.model_copy(update={"consumer_count": consumer_count})}), **facts
    )
    u, notes = usage_of(ev, p)
    assert u.efo_consumers == expected
    assert source in notes[1]


# The queries every plan reads ------------------------------------------------------------------------------
THROTTLES = MetricQuery(
    "throttles", kinesis_stream_metric("WriteProvisionedThroughputExceeded", "Sum").on(StreamName="orders")
)


def test_cost_queries_are_added_once_by_key() -> None:
    # Given a symptom that reads only its own metric
    # Then the write load is added after it
    assert [q.key for q in with_cost_queries((THROTTLES,), "orders")] == [
        "throttles",
        "incoming_bytes",
        "incoming_records",
    ]
    # And a symptom that declares the write load already reads it once
    declared = (*write_load_queries("orders"), THROTTLES)
    assert with_cost_queries(declared, "orders") == declared


def test_a_cost_key_declared_for_another_series_is_refused() -> None:
    # Given a symptom that reads the Maximum under the key the cost reads as Sum
    wrong = MetricQuery("incoming_bytes", kinesis_stream_metric("IncomingBytes", "Maximum").on(StreamName="orders"))
    with pytest.raises(ValueError, match=r"evidence query 'incoming_bytes'.*another key"):
        with_cost_queries((wrong,), "orders")


@pytest.mark.parametrize("key", sorted(REGISTRY.symptoms))
def test_every_registered_symptoms_queries_leave_room_for_the_cost(key: str) -> None:
    # The service merges the cost queries into every symptom's: none may declare a cost key for another series
    p = policy("orders", consumers=[{"function": "f"}, {"efo": "e"}, {"kcl": "app"}])
    merged = with_cost_queries(REGISTRY.symptoms[key].evidence_queries(p), "orders")
    assert {"incoming_bytes", "incoming_records"} <= {q.key for q in merged}
    assert len({q.key for q in merged}) == len(merged)


# The plan's cost -----------------------------------------------------------------------------------------
SATURATED = {"bytes_per_second": 1.9e6, "records_per_second": 500, "throttled_per_minute": 100}


def test_the_plan_carries_its_cost_before_and_after_its_allowed_steps() -> None:
    # Given a 2-shard stream at 95 % of its capacity, in 3,800 B records (one PUT payload unit each)
    plan = make_plan(
        alarm_name="a",
        symptom="write-throttling",
        policy=policy(),
        evidence=evidence(**SATURATED),
        history=ActionHistory(),
        now=NOW,
    )
    # Then the reshard 2 -> 4 adds 1,460 shard-hours, $21.90, to 500 x 2,628,000 = 1,314 M units ($18.40)
    (step,) = plan.steps
    assert step.cost is not None and plan.cost is not None
    assert step.cost.render() == "monthly cost $40.30 -> $62.20 (+$21.90)"
    assert (plan.cost.monthly_before_usd, plan.cost.monthly_after_usd) == (40.30, 62.20)


def test_a_blocked_step_shows_its_cost_but_the_plan_leaves_it_out() -> None:
    plan = make_plan(
        alarm_name="a",
        symptom="write-throttling",
        policy=policy(reshard={"enabled": False}),
        evidence=evidence(**SATURATED),
        history=ActionHistory(),
        now=NOW,
    )
    (step,) = plan.blocked
    assert step.cost is not None and step.cost.monthly_after_usd == 62.20
    assert plan.cost is not None and plan.cost.render() == "monthly cost $40.30 -> $40.30 (no change)"


def test_allowed_steps_are_costed_in_order_each_on_top_of_the_last(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a diagnosis asking for a reshard 2 -> 4 and a retention raise, both allowed
    symptom = REGISTRY.symptoms["write-throttling"]
    p = policy("orders", actions={"reshard": {"max_shards": 16}, "raise_retention": {"enabled": True}})
    diagnosis = Diagnosis(
        cause="shards-saturated",
        summary="two steps",
        proposals=(
            Proposal(action="reshard", parameters={"desired_shards": 4}, reason="saturated"),
            Proposal(action="raise-retention", parameters={"oldest_record_age_ms": 20 * 3_600_000}, reason="old"),
        ),
    )
    monkeypatch.setattr(symptom, "diagnose", lambda evidence, policy: diagnosis)
    plan = make_plan(
        alarm_name="a", symptom=symptom.id, policy=p, evidence=evidence(**SATURATED), history=ActionHistory(), now=NOW
    )
    reshard, retention = plan.steps
    assert reshard.allowed and retention.allowed, [s.blocking_reasons for s in plan.steps]
    # Then the retention raise (24 -> 48 h) is priced on the 4 shards the reshard leaves: 4 x 730 x $0.02
    assert reshard.cost is not None and retention.cost is not None
    assert reshard.cost.render() == "monthly cost $40.30 -> $62.20 (+$21.90)"
    assert retention.cost.render() == "monthly cost $62.20 -> $120.60 (+$58.40)"
    assert plan.cost is not None and plan.cost.render() == "monthly cost $40.30 -> $120.60 (+$80.30)"


def test_a_step_whose_usage_cannot_be_worked_out_is_shown_without_a_cost(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given an action whose usage_after fails on the step's parameters
    action = REGISTRY.actions["reshard"]
    monkeypatch.setattr(action, "usage_after", lambda usage, parameters: parameters["missing"])
    plan = make_plan(
        alarm_name="a",
        symptom="write-throttling",
        policy=policy(),
        evidence=evidence(**SATURATED),
        history=ActionHistory(),
        now=NOW,
    )
    # Then the plan is still made: the step has no cost, and the plan says it left it out
    (step,) = plan.steps
    assert step.allowed and step.cost is None
    assert plan.cost is not None and plan.cost.monthly_after_usd == plan.cost.monthly_before_usd
    assert plan.cost.notes[-1] == "the cost of step 'reshard 2 -> 4 shards' could not be estimated and is left out"


def test_usage_is_a_value_that_actions_copy() -> None:
    u = usage()
    assert replace(u, shards=3) != u and u.shards == 2


# How each action's step changes the usage (the contract test in test_registry covers each sample step) -----
@pytest.mark.parametrize(
    ("action", "before", "parameters", "after"),
    [
        pytest.param(
            "reshard",
            usage(shards=8),
            {"current_shards": 8, "desired_shards": 2, "target_shards": 4},
            usage(shards=4),
            id="scale-in: billed for this call's target, not the desired count",
        ),
        pytest.param(
            "reshard",
            usage(shards=2),
            {"current_shards": 2, "desired_shards": 10, "target_shards": 4},
            usage(shards=4),
            id="scale-up beyond one call: this call's target",
        ),
        pytest.param(
            "raise-retention",
            usage(retention_hours=48),
            {"current_hours": 48, "target_hours": 168},
            usage(retention_hours=168),
            id="retention 48 -> 168 h",
        ),
        pytest.param(
            "enhanced-fan-out",
            usage(efo_consumers=1, polling_readers=2),
            {"register": "efo-f1,efo-f2", "move": "f1,f2"},
            usage(efo_consumers=3, polling_readers=0),
            id="two consumers registered, two Lambda consumers stop polling",
        ),
        pytest.param(
            "enhanced-fan-out",
            usage(efo_consumers=None, polling_readers=0),
            {"register": "mine", "move": ""},
            usage(efo_consumers=1, polling_readers=0),
            id="unknown consumers before: at least the one registered",
        ),
        pytest.param(
            "enhanced-fan-out",
            usage(efo_consumers=1, polling_readers=1),
            {"register": "", "move": "f1"},
            usage(efo_consumers=1, polling_readers=0),
            id="a move onto a consumer registered earlier",
        ),
    ],
)
def test_usage_after(action: str, before: Usage, parameters: dict[str, Any], after: Usage) -> None:
    assert REGISTRY.actions[action].usage_after(before, parameters) == after


def test_a_scale_in_reads_as_a_saving() -> None:
    # Given an 8-shard stream resharded down to 4 (scale-in, one call halves at most)
    before = usage(shards=8, retention_hours=48)
    after = REGISTRY.actions["reshard"].usage_after(
        before, {"current_shards": 8, "desired_shards": 4, "target_shards": 4}
    )
    # Then shard-hours and extended retention both halve: 8 x 730 x (0.015 + 0.02) = $204.40 -> $102.20
    assert compare(before, after).render() == "monthly cost $204.40 -> $102.20 (saves $102.20 a month)"


# As people read it --------------------------------------------------------------------------------------
def saturated_plan(**reshard: Any) -> Plan:
    return make_plan(
        alarm_name="a",
        symptom="write-throttling",
        policy=policy(reshard=reshard),
        evidence=evidence(**SATURATED),
        history=ActionHistory(),
        now=NOW,
    )


def test_the_email_shows_each_steps_cost_and_the_plans_in_one_line() -> None:
    # Given a plan with one allowed reshard
    lines = render.plan_text(saturated_plan()).splitlines()
    # Then the step has its cost line, and the plan's cost follows the steps, with the prices' region and date
    assert "     Cost:    monthly cost $40.30 -> $62.20 (+$21.90)" in lines
    at = lines.index("Cost (estimate)")
    assert lines[at + 1 : at + 3] == [
        "  monthly cost $40.30 -> $62.20 (+$21.90) once the allowed steps are done",
        "  us-east-1 list prices of 2026-11-26, UNCONFIRMED; Kinesis only, at the average write rate",
    ]


def test_a_plan_without_an_allowed_step_still_shows_what_the_stream_costs() -> None:
    lines = render.plan_text(saturated_plan(enabled=False)).splitlines()
    assert "  monthly cost $40.30 (no allowed step changes it)" in lines
    # And the blocked step says what it would have cost
    assert "     Cost:    if it were applied, monthly cost $40.30 -> $62.20 (+$21.90)" in lines


def test_the_cli_cost_table_itemises_the_plan() -> None:
    # Given the plan's cost, item by item
    text = render.cost_table(saturated_plan())
    rows = {line.split("  ")[0]: line.split() for line in text.splitlines()}
    # Then each item shows its quantity before -> after, its unit price and its cost before and after
    assert rows["shard-hours"][-2:] == ["$21.90", "$43.80"]
    assert "1,460.00 -> 2,920.00 shard-hour" in text
    assert rows["total"][-2:] == ["$40.30", "$62.20"]
    assert "  - traffic: 1,900,000 B/s and 500.0 records/s" in text
