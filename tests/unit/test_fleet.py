"""Fleet alarms (remediator.core.fleet): which alarms a query can carry, how streams are grouped and split, the
names (round trip, no collision with a stream's alarms), the query text, what `validate` says, how a contributor
state change becomes a trigger, and the follow-through's read of a contributor's state (botocore Stubber: moto has
no DescribeAlarmContributors)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber
from hypothesis import given, settings
from hypothesis import strategies as st
from remediator.clients.follow_through import CloudWatchAlarmStates
from remediator.core import fleet
from remediator.core.alarm import (
    AlarmResolved,
    AlarmTrigger,
    deployed_alarms,
    identify,
    identify_contributor,
    parse_alarm_name,
    parse_trigger_name,
    untrusted,
)
from remediator.core.metrics import Comparison, Metric, MetricMath, MissingData
from remediator.core.registry import REGISTRY
from remediator.core.symptoms.base import AlarmSpec
from remediator.policy_files import load_policies

from tests.fakes import ACCOUNT, REGION

PREFIX = "kinesis-remediator-"
AT = "2026-11-26T02:59:00.000+0000"
FLEET_SYMPTOMS = {"iterator-age", "get-latency", "read-throttling", "write-throttling"}
STREAM_NAMES = st.text(
    alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-", min_size=1, max_size=128
)


def raw(name: str, alarms: str = "fleet", **detectors: Any) -> dict[str, Any]:
    return {"name": name, "alarms": alarms, "actions": {"reshard": {"max_shards": 16}}, "detectors": detectors}


def parsed(name: str, alarms: str = "fleet", **detectors: Any) -> Any:
    return REGISTRY.parse_stream_policy(raw(name, alarms, **detectors))


def spec(metric: Metric | MetricMath, evaluation_periods: int = 5) -> AlarmSpec:
    return AlarmSpec(metric, 1, Comparison.GREATER_THAN_OR_EQUAL_TO_THRESHOLD, evaluation_periods, 3,
                     MissingData.NOT_BREACHING, "d")  # fmt: skip


# --- which alarms a fleet alarm can carry ------------------------------------------------------------------------

KINESIS = "AWS/Kinesis"


@pytest.mark.parametrize(
    ("alarm", "why"),
    [
        (spec(Metric(KINESIS, "WriteProvisionedThroughputExceeded", "Sum", (("StreamName", "s"),))), ""),
        (spec(Metric(KINESIS, "GetRecords.Latency", "Average", (("StreamName", "s"),))), ""),
        (spec(Metric(KINESIS, "X", "SampleCount", (("StreamName", "s"),), 300)), ""),
        (spec(MetricMath("100 * m", {"m": Metric(KINESIS, "X", "Average", (("StreamName", "s"),))})), "metric math"),
        (spec(Metric("AWS/Lambda", "Errors", "Sum", (("FunctionName", "f"),))), "in AWS/Lambda"),
        (
            spec(Metric(KINESIS, "X", "Maximum", (("ConsumerName", "c"), ("StreamName", "s")))),
            "dimensions ConsumerName, StreamName",
        ),
        (spec(Metric(KINESIS, "X", "Maximum", (("StreamName", "other"),))), "not StreamName alone"),
        (spec(Metric(KINESIS, "X", "Maximum", (("StreamName", "s"),), 90)), "whole minutes"),
        (spec(Metric(KINESIS, "X", "Maximum", (("StreamName", "s"),), 3600), evaluation_periods=4), "3 hours"),
    ],
)
def test_only_one_kinesis_metric_per_stream_can_be_a_fleet_alarm(alarm: AlarmSpec, why: str) -> None:
    # When we ask whether stream s's alarm can be a Metrics Insights fleet alarm
    found = fleet.why_not_fleet(alarm, "s")
    # Then only a single AWS/Kinesis metric on exactly its StreamName can, within 3 hours of whole minutes
    assert (found == "") if not why else (why in found), found


def test_a_fleet_policy_has_no_own_alarm_for_what_a_fleet_alarm_carries() -> None:
    # Given the same stream with per-stream and with fleet alarms
    own = {key for key, _ in deployed_alarms(parsed("orders", "per-stream"), PREFIX).values()}
    shared = {key for key, _ in deployed_alarms(parsed("orders"), PREFIX).values()}
    # Then the fleet one keeps exactly the alarms no query can carry
    assert own >= FLEET_SYMPTOMS
    assert own - shared == FLEET_SYMPTOMS
    assert set(s for s, _ in fleet.fleet_thresholds(parsed("orders"))) == FLEET_SYMPTOMS
    assert fleet.fleet_thresholds(parsed("orders", "per-stream")) == {}


# --- grouping ----------------------------------------------------------------------------------------------------


def test_streams_with_the_same_thresholds_share_and_others_do_not() -> None:
    # Given two fleet streams with defaults, one with a longer iterator-age threshold, and a per-stream stream
    policies = {
        "a": parsed("a"),
        "b": parsed("b"),
        "c": parsed("c", iterator_age={"threshold_ms": 300000}),
        "d": parsed("d", "per-stream"),
    }
    alarms = fleet.fleet_alarms(policies, PREFIX)
    by_symptom: dict[str, list[tuple[str, ...]]] = {}
    for alarm in alarms:
        by_symptom.setdefault(alarm.thresholds.symptom, []).append(alarm.streams)
    # Then a, b, c share every symptom but iterator age, where c has its own group; d is on none
    assert by_symptom["write-throttling"] == [("a", "b", "c")]
    assert sorted(by_symptom["iterator-age"]) == [("a", "b"), ("c",)]
    assert all("d" not in streams for groups in by_symptom.values() for streams in groups)


def test_names_depend_on_thresholds_not_on_the_order_of_the_policies() -> None:
    # Given the same policies listed in two orders
    names = ["x", "b", "a", "c"]
    forward = fleet.fleet_alarms({n: parsed(n) for n in names}, PREFIX)
    backward = fleet.fleet_alarms({n: parsed(n) for n in reversed(names)}, PREFIX)
    # Then the alarms, names and queries are the same
    assert [(a.name, a.query) for a in forward] == [(a.name, a.query) for a in backward]
    # And a threshold change makes another name (another group), not the same name with another meaning
    other = fleet.fleet_alarms({"a": parsed("a", write_throttling={"threshold_records": 9})}, PREFIX)
    written = {a.name for a in forward if a.thresholds.symptom == "write-throttling"}
    assert {a.name for a in other if a.thresholds.symptom == "write-throttling"}.isdisjoint(written)


def fits_in_one_alarm(thresholds: fleet.Thresholds) -> Any:
    return lambda part: len(part) <= fleet.STREAMS_PER_ALARM_MAX and len(fleet.query(thresholds, part)) <= 2048


def test_a_large_group_is_split_within_the_query_and_contributor_limits() -> None:
    # Given 1,000 fleet streams with long names and the same thresholds
    names = [f"team-{i:04d}-clickstream-events-production-eu-west-1" for i in range(1000)]
    alarms = [
        a
        for a in fleet.fleet_alarms({n: parsed(n) for n in names}, PREFIX)
        if a.thresholds.symptom == "write-throttling"
    ]
    # Then they are split into several alarms, each query within 2,048 characters and 100 streams
    assert len(alarms) > 1
    assert all(len(a.query) <= fleet.QUERY_MAX_LENGTH and len(a.streams) <= 100 for a in alarms)
    # And each stream is watched by exactly one of them
    watched = [s for a in alarms for s in a.streams]
    assert sorted(watched) == sorted(names)
    # And every alarm's query selects exactly its streams
    assert all(fleet.query_streams(a.query) == set(a.streams) for a in alarms)


def test_adding_a_stream_changes_only_its_own_alarm_while_the_split_holds() -> None:
    # Given 200 streams split into several alarms, and the same with one stream more
    names = [f"stream-{i:03d}-events" for i in range(200)]
    before = {a.name: a.streams for a in fleet.fleet_alarms({n: parsed(n) for n in names}, PREFIX)}
    grown = [*names, "zz-new-stream"]
    after = {a.name: a.streams for a in fleet.fleet_alarms({n: parsed(n) for n in grown}, PREFIX)}
    # Then the same alarms exist, and only the alarms the new stream joined changed (one per symptom)
    assert set(after) == set(before)
    changed = {name for name in after if after[name] != before[name]}
    assert len(changed) == len(FLEET_SYMPTOMS)
    assert all("zz-new-stream" in after[name] for name in changed)


@settings(max_examples=50, deadline=None)
@given(st.lists(STREAM_NAMES, min_size=1, max_size=60, unique=True))
def test_split_puts_each_stream_in_exactly_one_alarm_that_fits(names: list[str]) -> None:
    # Given any set of stream names and the write-throttling thresholds
    thresholds = next(t for (s, _), t in fleet.fleet_thresholds(parsed("x")).items() if s == "write-throttling")
    fits = fits_in_one_alarm(thresholds)
    # When they are split
    parts = fleet.split(names, fits)
    # Then every part fits, and every stream is in exactly one part
    assert all(fits(part) for _, part in parts)
    assert sorted(s for _, part in parts for s in part) == sorted(names)


# --- names -------------------------------------------------------------------------------------------------------


QUALIFIERS = st.text(
    alphabet=st.characters(blacklist_characters="/[]", min_codepoint=33, max_codepoint=126), max_size=200
)


@settings(max_examples=200, deadline=None)
@given(
    symptom=st.sampled_from(sorted(REGISTRY.symptoms)),
    qualifier=QUALIFIERS,
    index=st.integers(min_value=0, max_value=9999),
    stream=STREAM_NAMES,
)
def test_fleet_names_round_trip_and_never_look_like_a_streams_alarm(symptom, qualifier, index, stream) -> None:
    # Given thresholds of any symptom and qualifier, and a group number
    thresholds = fleet.Thresholds(symptom, qualifier, "AWS/Kinesis", "M", "Sum", 60, 1.0,
                                  Comparison.GREATER_THAN_THRESHOLD, 5, 3, MissingData.NOT_BREACHING, "d")  # fmt: skip
    # When the fleet alarm and a stream's unit under it are named
    name = fleet.fleet_alarm_name(PREFIX, thresholds, index)
    unit = fleet.unit_name(name, stream)
    # Then the names fit CloudWatch's 255 characters and parse back to the symptom, qualifier, group and stream
    assert len(name) <= fleet.FLEET_NAME_MAX_LENGTH and len(unit) <= 255
    back = fleet.parse_fleet_name(name, PREFIX)
    assert isinstance(back, fleet.FleetName)
    assert (back.symptom, back.group, back.index) == (symptom, thresholds.group, index)
    assert back.qualifier == qualifier or (len(back.qualifier) == 12 and len(qualifier) > len(back.qualifier))
    parsed_unit = fleet.parse_unit_name(unit, PREFIX)
    assert isinstance(parsed_unit, fleet.FleetUnit)
    assert (parsed_unit.stream, parsed_unit.fleet) == (stream, back)
    assert parse_trigger_name(unit, PREFIX) == (stream, symptom)
    # And neither is ever taken for a stream's own alarm, nor a stream's alarm for a fleet alarm
    assert isinstance(parse_alarm_name(name, PREFIX), str)
    assert isinstance(parse_alarm_name(unit, PREFIX), str)
    own = f"{PREFIX}{stream}/{symptom}"
    assert isinstance(fleet.parse_fleet_name(own, PREFIX), str)
    assert isinstance(fleet.parse_unit_name(own, PREFIX), str)


@pytest.mark.parametrize(
    ("name", "why"),
    [
        (f"{PREFIX}fleet~0123456789.0", "is not named"),
        (f"{PREFIX}fleet~01234/write-throttling", "names no fleet group"),
        (f"{PREFIX}fleet~0123456789.01/write-throttling", "names no fleet group"),
        (f"{PREFIX}fleet~0123456789.0/no-such-symptom", "no known symptom"),
        ("other-fleet~0123456789.0/write-throttling", "does not start with"),
    ],
)
def test_names_that_are_not_our_fleet_alarms(name: str, why: str) -> None:
    assert why in str(fleet.parse_fleet_name(name, PREFIX))


# --- query text --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("symptom", "streams", "query"),
    [
        (
            "write-throttling",
            ("b", "a"),
            'SELECT SUM("WriteProvisionedThroughputExceeded") FROM SCHEMA("AWS/Kinesis", StreamName) '
            "WHERE StreamName = 'a' OR StreamName = 'b' GROUP BY StreamName ORDER BY SUM() DESC",
        ),
        (
            "iterator-age",
            ("orders.v2",),
            'SELECT MAX("GetRecords.IteratorAgeMilliseconds") FROM SCHEMA("AWS/Kinesis", StreamName) '
            "WHERE StreamName = 'orders.v2' GROUP BY StreamName ORDER BY MAX() DESC",
        ),
        (
            "get-latency",
            ("x",),
            'SELECT AVG("GetRecords.Latency") FROM SCHEMA("AWS/Kinesis", StreamName) '
            "WHERE StreamName = 'x' GROUP BY StreamName ORDER BY AVG() DESC",
        ),
    ],
)
def test_query_text(symptom: str, streams: tuple[str, ...], query: str) -> None:
    thresholds = next(t for (s, _), t in fleet.fleet_thresholds(parsed("x")).items() if s == symptom)
    assert fleet.query(thresholds, streams) == query
    assert fleet.query_streams(query) == set(streams)


def test_a_below_threshold_alarm_orders_the_lowest_first() -> None:
    thresholds = fleet.Thresholds("get-errors", "", "AWS/Kinesis", "GetRecords.Success", "Average", 60, 0.99,
                                  Comparison.LESS_THAN_THRESHOLD, 5, 3, MissingData.NOT_BREACHING, "d")  # fmt: skip
    assert fleet.query(thresholds, ["a"]).endswith("ORDER BY AVG() ASC")


def test_a_query_refuses_what_is_not_a_stream_name() -> None:
    thresholds = next(iter(fleet.fleet_thresholds(parsed("x")).values()))
    with pytest.raises(ValueError, match="not stream names"):
        fleet.query(thresholds, ["a' OR StreamName != '"])


# --- validate ----------------------------------------------------------------------------------------------------


def test_validate_says_which_alarms_stay_per_stream(tmp_path: Path) -> None:
    # Given a policy file with two fleet streams and one per-stream stream
    (tmp_path / "p.yaml").write_text(
        "version: 1\nstreams:\n"
        + "".join(
            f"  - name: {n}\n    alarms: {a}\n    notify: {{emails: [a@example.com]}}\n"
            "    actions: {reshard: {max_shards: 4}}\n"
            for n, a in (("orders", "fleet"), ("clicks", "fleet"), ("payments", "per-stream"))
        ),
        encoding="utf-8",
    )
    # When the policies are loaded (what `validate` prints)
    warnings = [str(w) for w in load_policies([tmp_path]).warnings]
    # Then one warning per alarm that stays per-stream names the fleet streams and why; the per-stream one is not named
    expected = {
        "consumer-stalled",
        "get-errors",
        "put-errors/failed-records",
        "put-errors/put-record-success",
        "under-utilised",
    }
    assert len(warnings) == len(expected)
    for label in expected:
        (line,) = [w for w in warnings if f"'{label}'" in w]
        assert "stays a per-stream alarm for 2 streams (clicks, orders)" in line
        assert "its metric math expression is not one Metrics Insights query" in line
        assert line.startswith(f"{tmp_path / 'p.yaml'}: alarms: fleet: ")


def test_validate_warns_past_the_regions_metrics_insights_alarm_quota() -> None:
    # Given more fleet groups than the region's 200 Metrics Insights alarms (every stream its own threshold)
    policies = {f"s{i}": parsed(f"s{i}", write_throttling={"threshold_records": i + 1}) for i in range(201)}
    # Then validate warns about the quota
    messages = [message for _, _, _, message in fleet.fleet_warnings(policies, PREFIX)]
    assert any("exceed the 200 Metrics Insights alarms" in m for m in messages)


# --- contributor state changes -----------------------------------------------------------------------------------


def fleet_alarm_of(*names: str, symptom: str = "write-throttling") -> fleet.FleetAlarm:
    return next(a for a in fleet.fleet_alarms({n: parsed(n) for n in names}, PREFIX) if a.thresholds.symptom == symptom)


def contributor(alarm: str, **overrides: Any) -> tuple[AlarmTrigger | AlarmResolved | None, str]:
    kwargs: dict[str, Any] = {
        "alarm": alarm,
        "prefix": PREFIX,
        "contributor_id": "6d442278dba546f6",
        "attributes": {"StreamName": "orders"},
        "state": "ALARM",
        "previous_state": None,
        "state_timestamp": AT,
        "account": ACCOUNT,
        "region": REGION,
    }
    return identify_contributor(**(kwargs | overrides))


def test_a_contributor_into_alarm_is_the_streams_trigger() -> None:
    alarm = fleet_alarm_of("orders", "clicks")
    trigger, why = contributor(alarm.name, expressions=(alarm.query,))
    assert why == "" and isinstance(trigger, AlarmTrigger)
    assert (trigger.stream, trigger.symptom) == ("orders", "write-throttling")
    assert trigger.alarm_name == f"{alarm.name}[orders]"
    assert trigger.key == f"{alarm.name}[orders]@{AT}#0"
    assert trigger.dimensions == (("StreamName", "orders"),)
    assert "6d442278dba546f6" in trigger.reason
    # And the deployed fleet policy trusts it
    assert untrusted(trigger, parsed("orders"), PREFIX) == ""


def test_a_contributor_back_to_ok_is_the_streams_resolution() -> None:
    alarm = fleet_alarm_of("orders")
    resolved, _ = contributor(alarm.name, state="OK")
    assert isinstance(resolved, AlarmResolved)
    assert (resolved.alarm_name, resolved.stream, resolved.alarm_timestamp) == (f"{alarm.name}[orders]", "orders", None)


@pytest.mark.parametrize(
    ("overrides", "why"),
    [
        ({"attributes": {}}, "has no StreamName attribute"),
        ({"attributes": {"StreamName": "no/slash"}}, "names no valid stream"),
        ({"attributes": {"StreamName": "elsewhere"}, "expressions": ("QUERY",)}, "does not select"),
        ({"state": "INSUFFICIENT_DATA"}, "went to INSUFFICIENT_DATA"),
        ({"previous_state": "ALARM"}, "already in ALARM"),
        ({"alarm": f"{PREFIX}orders/write-throttling"}, "does not start with"),
    ],
)
def test_contributor_changes_that_are_not_for_us(overrides: dict[str, Any], why: str) -> None:
    alarm = fleet_alarm_of("orders")
    if overrides.get("expressions") == ("QUERY",):
        overrides = overrides | {"expressions": (alarm.query,)}
    found, reason = contributor(overrides.pop("alarm", alarm.name), **overrides)
    assert found is None and why in reason, reason


def test_the_attribute_is_matched_case_insensitively() -> None:
    trigger, _ = contributor(fleet_alarm_of("orders").name, attributes={"streamname": "orders"})
    assert isinstance(trigger, AlarmTrigger) and trigger.stream == "orders"


def test_a_fleet_alarms_own_state_change_is_not_a_trigger() -> None:
    found, why = identify(
        alarm=fleet_alarm_of("orders").name, prefix=PREFIX, state="ALARM", previous_state="OK",
        state_timestamp=AT, dimensions={}, account=ACCOUNT, region=REGION,
    )  # fmt: skip
    assert found is None and "changed state as a whole" in why


@pytest.mark.parametrize(
    ("deployed", "why"),
    [
        (parsed("orders", "per-stream"), "keeps per-stream alarms"),
        (parsed("orders", write_throttling={"threshold_records": 7}), "is not one this deployment made"),
        (parsed("clicks"), "names stream 'orders', not 'clicks'"),
    ],
)
def test_a_contributor_trigger_is_trusted_only_under_the_policy_that_makes_its_alarm(deployed: Any, why: str) -> None:
    trigger, _ = contributor(fleet_alarm_of("orders").name)
    assert isinstance(trigger, AlarmTrigger)
    assert why in untrusted(trigger, deployed, PREFIX)


def test_a_streams_own_alarm_for_a_fleet_symptom_is_not_trusted_under_a_fleet_policy() -> None:
    own = AlarmTrigger(alarm_name=f"{PREFIX}orders/write-throttling", stream="orders", symptom="write-throttling",
                       state_timestamp=AT, account=ACCOUNT, region=REGION)  # fmt: skip
    assert "is not one this deployment created" in untrusted(own, parsed("orders"), PREFIX)
    assert untrusted(own, parsed("orders", "per-stream"), PREFIX) == ""


# --- the follow-through's read of a contributor (moto gap: botocore Stubber) ----------------------------------------


def states(responses: list[tuple[str, dict[str, Any], dict[str, Any]]]) -> tuple[CloudWatchAlarmStates, Stubber]:
    client = boto3.client("cloudwatch", region_name=REGION, aws_access_key_id="x", aws_secret_access_key="x")
    stubber = Stubber(client)
    for method, response, expected in responses:
        if method == "error":
            stubber.add_client_error("describe_alarm_contributors", service_error_code="ResourceNotFoundException")
        else:
            stubber.add_response(method, response, expected)
    stubber.activate()
    return CloudWatchAlarmStates(client, PREFIX), stubber


def row(stream: str, since: datetime) -> dict[str, Any]:
    return {"ContributorId": "c", "ContributorAttributes": {"StreamName": stream}, "StateReason": "r",
            "StateTransitionedTimestamp": since}  # fmt: skip


def test_a_contributor_listed_in_alarm_is_alarm_since_its_transition() -> None:
    alarm = fleet_alarm_of("orders").name
    since = datetime(2026, 11, 26, 2, 59, tzinfo=UTC)
    first = {"AlarmName": alarm}
    reader, stubber = states(
        [
            ("describe_alarm_contributors", {"AlarmContributors": [row("a", since)], "NextToken": "t"}, first),
            ("describe_alarm_contributors", {"AlarmContributors": [row("orders", since)]}, first | {"NextToken": "t"}),
        ]
    )
    state = reader.state(f"{alarm}[orders]")
    stubber.assert_no_pending_responses()
    assert state is not None and (state.value, state.transitioned_at) == ("ALARM", since)


def test_a_contributor_not_listed_is_ok_and_a_missing_alarm_is_none() -> None:
    alarm = fleet_alarm_of("orders").name
    since = datetime(2026, 11, 26, 2, 59, tzinfo=UTC)
    reader, _ = states(
        [("describe_alarm_contributors", {"AlarmContributors": [row("other", since)]}, {"AlarmName": alarm})]
    )
    state = reader.state(f"{alarm}[orders]")
    assert state is not None and state.value == "OK"
    reader, _ = states([("error", {}, {})])
    assert reader.state(f"{alarm}[orders]") is None


# --- cost ----------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("standard_metrics", "analyzed", "usd"),
    [
        (0, 0, 0.0),
        (10, 0, 0.0),  # the free tier's 10 alarm metrics
        (11, 0, 0.10),
        (10, 1, 0.10),  # no free tier for metrics analysed by a Metrics Insights alarm
        (130, 0, 12.00),
        (90, 40, 12.00),
    ],
)
def test_monthly_alarm_cost(standard_metrics: int, analyzed: int, usd: float) -> None:
    from remediator.core.pricing import monthly_alarm_cost

    assert monthly_alarm_cost(standard_metrics, analyzed) == pytest.approx(usd)


def test_the_readme_cost_table_is_the_one_pricing_computes() -> None:
    # Given the README and the cost table computed from core/pricing.py's prices and the policies' alarms
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    table = fleet.cost_table_markdown(PREFIX)
    # Then the README shows exactly that table
    assert table in readme, f"README's Fleet alarms table is stale; it should read:\n{table}"
    # And it covers 10, 100 and 1,000 streams, the fleet bill counting one analysed metric per stream and alarm
    rows = fleet.cost_table(PREFIX)
    assert [count for count, _, _ in rows] == [10, 100, 1000]
    for count, own, shared in rows:
        assert own.fleet_alarms == 0 and shared.metrics_analyzed == count * len(FLEET_SYMPTOMS)
        assert own.standard_alarms - shared.standard_alarms == count * len(FLEET_SYMPTOMS)


def test_a_members_stream_keeps_per_stream_alarms_and_says_so() -> None:
    # Given a stream in another account and region (a member's) whose policy asks for fleet alarms
    member = REGISTRY.parse_stream_policy(raw("orders") | {"account": "111122223333", "region": "eu-west-1"})
    # Then no fleet alarm carries any of its alarms: the hub's fleet alarms query the hub's own metrics only
    assert fleet.fleet_thresholds(member) == {}
    assert fleet.fleet_alarms({"111122223333/eu-west-1/orders": member}, PREFIX) == []
    assert {key for key, _ in deployed_alarms(member, PREFIX).values()} >= FLEET_SYMPTOMS
    # And validate says why, naming the stream
    ((keys, stream, _, message), *_) = fleet.fleet_warnings({"111122223333/eu-west-1/orders": member}, PREFIX)
    assert (keys, stream) == (("111122223333/eu-west-1/orders",), "orders")
    assert "fleet alarms are made in the hub's own account and region only" in message
