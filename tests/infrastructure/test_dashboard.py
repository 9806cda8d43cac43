"""The deployment's CloudWatch dashboard: a row per stream with its alarms' thresholds, then the remediator's own
metrics under the names the handler emits (core/deployment.RemediatorMetric)."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from aws_cdk import App, Stack
from aws_cdk import aws_lambda as lambda_
from aws_cdk.assertions import Template
from remediator.core.deployment import METRICS_NAMESPACE, SERVICE_NAME, RemediatorMetric
from remediator.core.metrics import Comparison, Metric, MetricMath, MissingData
from remediator.core.outcome import OutcomeStatus
from remediator.core.policy import StreamPolicy
from remediator.core.symptoms.base import AlarmSpec
from remediator.policy_files import PolicySet

from stacks.constructs.dashboard import (
    FLEET_QUERIES,
    FLEET_WIDGETS,
    MAX_WIDGETS,
    STREAM_ROWS_LIMIT,
    RemediatorDashboard,
    fleet_query,
    renamed,
)
from tests.infrastructure.support import REGION, Synth, alarms_by_name, ref, resolve

pytestmark = pytest.mark.xdist_group("infrastructure")

SYMBOLS = {
    "GreaterThanOrEqualToThreshold": ">=",
    "GreaterThanThreshold": ">",
    "LessThanThreshold": "<",
    "LessThanOrEqualToThreshold": "<=",
}
ANNOTATION = re.compile(r"^(?P<alarm>\S+) alarm (?P<op>[<>]=?) (?P<threshold>\S+)$")


def body(synth: Synth) -> dict[str, Any]:
    (_, dashboard), *others = synth.resources("AWS::CloudWatch::Dashboard").items()
    assert others == []
    document: dict[str, Any] = json.loads(resolve(dashboard["Properties"]["DashboardBody"], synth.template))
    return document


def graphs(synth: Synth) -> dict[str, dict[str, Any]]:
    """Graph title -> its properties."""
    return {w["properties"]["title"]: w["properties"] for w in body(synth)["widgets"] if w["type"] == "metric"}


def metric_rows(properties: dict[str, Any]) -> list[tuple[str, str, dict[str, str]]]:
    """(namespace, metric name, dimensions) of each plain metric in a graph (expressions left out)."""
    rows = []
    for row in properties["metrics"]:
        plain = [part for part in row if isinstance(part, str)]
        if plain:
            namespace, name, *dimensions = plain
            rows.append((namespace, name, dict(zip(dimensions[::2], dimensions[1::2], strict=True))))
    return rows


def test_one_dashboard_named_by_stack_and_region_with_its_outputs(synth: Synth) -> None:
    # Given the test policies / When synthesized
    logical_id, dashboard = synth.only("AWS::CloudWatch::Dashboard")
    name = resolve(dashboard["Properties"]["DashboardName"], synth.template)

    # Then one dashboard is named after the stack and its region, and the stack outputs its name and console URL
    assert name == f"KinesisRemediator-{REGION}"
    outputs = {key: resolve(value["Value"], synth.template) for key, value in synth.template["Outputs"].items()}
    assert outputs["DashboardName"] == ref(logical_id)
    assert outputs["DashboardUrl"] == (
        f"https://{REGION}.console.aws.amazon.com/cloudwatch/home?region={REGION}#dashboards/dashboard/{name}"
    )


@pytest.mark.parametrize("fixture", ["synth", "example_synth", "grown_synth"])
def test_a_row_per_stream_then_the_remediator(request: pytest.FixtureRequest, fixture: str) -> None:
    # Given a set of policies
    synth: Synth = request.getfixturevalue(fixture)

    # When synthesized
    widgets = body(synth)["widgets"]

    # Then the fleet section opens it: a title and four Metrics Insights rankings of the account's streams
    fleet_title, *fleet = widgets[:FLEET_WIDGETS]
    assert fleet_title["properties"]["markdown"].startswith("### Fleet: the top 10 streams")
    assert [w["properties"]["metrics"][0][0]["expression"] for w in fleet] == [
        fleet_query(function, metric) for _, function, metric in FLEET_QUERIES
    ]
    # And each stream, in name order, has a title and one row of four graphs titled with its name
    streams = sorted(synth.policies.streams)
    for index, stream in enumerate(streams):
        title, *row = widgets[FLEET_WIDGETS + index * 5 : FLEET_WIDGETS + index * 5 + 5]
        assert title["type"] == "text"
        assert title["properties"]["markdown"].startswith(f"### Stream `{stream}`")
        assert [w["properties"]["title"] for w in row] == [
            f"{stream}: Write utilisation (% of the open shards' capacity)",
            f"{stream}: Iterator age (ms, maximum)",
            f"{stream}: Throttles (write: records, read: GetRecords calls)",
            f"{stream}: Error rates (%)",
        ]
        assert len({w["y"] for w in row}) == 1
        assert sum(w["width"] for w in row) == 24
        # And every Kinesis metric on it is this stream's
        for widget in row:
            for namespace, _, dimensions in metric_rows(widget["properties"]):
                if namespace == "AWS/Kinesis":
                    assert dimensions == {"StreamName": stream}
    # And the remediator's section closes the dashboard
    assert widgets[FLEET_WIDGETS + len(streams) * 5]["properties"]["markdown"].startswith("### The remediator")
    assert len(widgets) == FLEET_WIDGETS + len(streams) * 5 + 5 <= MAX_WIDGETS


@pytest.mark.parametrize("fixture", ["synth", "example_synth"])
def test_thresholds_on_the_graphs_are_the_alarms(request: pytest.FixtureRequest, fixture: str) -> None:
    # Given the synthesized alarms (name -> properties)
    synth: Synth = request.getfixturevalue(fixture)
    alarms = alarms_by_name(synth)

    # When the dashboard's threshold annotations are read
    annotated = {}
    for title, properties in graphs(synth).items():
        stream = title.split(":")[0]
        for mark in properties.get("annotations", {}).get("horizontal", []):
            match = ANNOTATION.match(mark["label"])
            assert match, mark
            annotated[f"kinesis-remediator-{stream}/{match['alarm']}"] = (match["op"], mark["value"])

    # Then each is an alarm of that stream, with its comparison and threshold
    assert annotated
    for name, (op, value) in annotated.items():
        assert name in alarms, name
        assert (op, value) == (SYMBOLS[alarms[name]["ComparisonOperator"]], alarms[name]["Threshold"]), name
    # And every alarm on a stream-level metric the graphs show is annotated
    shown = {
        "GetRecords.IteratorAgeMilliseconds",
        "WriteProvisionedThroughputExceeded",
        "ReadProvisionedThroughputExceeded",
    }
    stream_level = {n for n, p in alarms.items() if p.get("MetricName") in shown}
    assert stream_level <= set(annotated)


def test_the_policys_own_thresholds_are_shown(synth: Synth) -> None:
    # Given orders alarms on an iterator age of 120 s and 5 throttled records; payments on 30 s, no write alarm
    titles = graphs(synth)

    def marks(title: str) -> list[tuple[str, float]]:
        return [(m["label"], m["value"]) for m in titles[title].get("annotations", {}).get("horizontal", [])]

    # When the graphs are read / Then they carry those thresholds, and payments none for writes
    assert marks("orders: Iterator age (ms, maximum)") == [("iterator-age alarm >= 120000", 120000)]
    assert ("write-throttling alarm >= 5", 5) in marks("orders: Throttles (write: records, read: GetRecords calls)")
    assert marks("payments: Iterator age (ms, maximum)") == [("iterator-age alarm >= 30000", 30000)]
    assert not [m for m in marks("payments: Throttles (write: records, read: GetRecords calls)") if "write" in m[0]]


def test_utilisation_divides_the_write_load_by_the_shards_the_remediator_publishes(synth: Synth) -> None:
    # Given the orders utilisation graph
    properties = graphs(synth)["orders: Write utilisation (% of the open shards' capacity)"]

    # When its expressions and metrics are read
    expressions = [row[0]["expression"] for row in properties["metrics"] if isinstance(row[0], dict)]

    # Then bytes and records are shares of the open shards' capacity (1 MB/s and 1,000 records/s a shard)
    assert expressions[:2] == [
        "100 * bytes / PERIOD(bytes) / (1000000 * FILL(shards, REPEAT))",
        "100 * records / PERIOD(records) / (1000 * FILL(shards, REPEAT))",
    ]
    # (and the under-utilised alarm, which reads the same write load and the same OpenShards, with its own
    # expression: a fraction, on the right axis with its threshold)
    assert expressions[2:] == ["MAX([a10_bytes / (300000000 * a10_shards), a10_records / (300000 * a10_shards)])"]
    assert [a["label"] for a in properties["annotations"]["horizontal"]] == ["under-utilised alarm < 0.3"]
    # And the shard count is the remediator's OpenShards metric of this stream
    assert (
        METRICS_NAMESPACE,
        RemediatorMetric.OPEN_SHARDS,
        {RemediatorMetric.SERVICE_DIMENSION: SERVICE_NAME, RemediatorMetric.STREAM_DIMENSION: "orders"},
    ) in metric_rows(properties)


def test_remediator_metrics_are_the_names_the_handler_emits(synth: Synth) -> None:
    # Given the names the handler emits (tests/integration/test_remediator_metrics.py checks its EMF output)
    emitted = {
        value
        for key, value in vars(RemediatorMetric).items()
        if key.isupper() and not key.endswith(("_PREFIX", "_DIMENSION"))
    } | {RemediatorMetric.outcome(status) for status in OutcomeStatus}

    # When the dashboard's metrics in our namespace are read
    ours = [row for p in graphs(synth).values() for row in metric_rows(p) if row[0] == METRICS_NAMESPACE]

    # Then each is one of them, with the dimensions Powertools gives it
    names = {name for _, name, _ in ours}
    assert names <= emitted, names - emitted
    for _, name, dimensions in ours:
        assert dimensions.pop(RemediatorMetric.SERVICE_DIMENSION) == SERVICE_NAME
        assert dimensions == ({} if name != RemediatorMetric.OPEN_SHARDS else {"StreamName": dimensions["StreamName"]})
    # And the counters the issue asks for are all there, with the failed outcomes H-TRUST's alarm reads
    asked = {
        RemediatorMetric.PLANS_MADE,
        RemediatorMetric.ACTIONS_APPLIED,
        RemediatorMetric.STEPS_BLOCKED,
        RemediatorMetric.STEPS_FAILED,
        RemediatorMetric.ADVICE_SENT,
        RemediatorMetric.OUTCOMES_NEEDING_ATTENTION,
    }
    assert asked <= names
    # And the Lambda's errors and duration are shown
    lambda_metrics = {name for p in graphs(synth).values() for ns, name, _ in metric_rows(p) if ns == "AWS/Lambda"}
    assert lambda_metrics == {"Errors", "Duration"}


def dashboard_of(count: int) -> RemediatorDashboard:
    streams = {f"s{i:04}": StreamPolicy.model_validate({"name": f"s{i:04}"}) for i in range(count)}
    stack = Stack(App(), "S")
    function = lambda_.Function.from_function_name(stack, "F", "f")
    return RemediatorDashboard(stack, "D", policies=PolicySet(streams=streams, sources={}), specs={}, function=function)


@pytest.mark.parametrize(
    ("count", "rows"),
    [(STREAM_ROWS_LIMIT, True), (STREAM_ROWS_LIMIT + 1, False), (1000, False)],
)
def test_rows_per_stream_up_to_the_limit_then_the_fleet_graphs_alone(count: int, rows: bool) -> None:
    # Given `count` streams / When the dashboard is built
    dashboard = dashboard_of(count)

    # Then up to the limit each stream has its row; above it, none, and the fleet graphs rank them: it fits at any
    # number of streams
    assert dashboard.stream_rows is rows
    assert dashboard.widget_count == FLEET_WIDGETS + (count * 5 if rows else 0) + 5 <= MAX_WIDGETS


@pytest.mark.parametrize(
    ("expression", "inputs", "prefix", "expected"),
    [
        ("100 * success", ("success",), "a1_", "100 * a1_success"),
        ("FILL(failed, 0) + failed_2", ("failed", "failed_2"), "b_", "FILL(b_failed, 0) + b_failed_2"),
        ("IF(FILL(total, 0) > 0, 100 * FILL(failed, 0) / FILL(total, 0), 0)", ("failed", "total"), "x",
         "IF(FILL(xtotal, 0) > 0, 100 * FILL(xfailed, 0) / FILL(xtotal, 0), 0)"),
        ("PERIOD(bytes) * REPEAT", ("bytes",), "p_", "PERIOD(p_bytes) * REPEAT"),
    ],
)  # fmt: skip
def test_alarm_expressions_get_their_ids_prefixed(
    expression: str, inputs: tuple[str, ...], prefix: str, expected: str
) -> None:
    # Given an alarm's expression / When its ids are prefixed / Then only the ids change, and the inputs follow
    metric = Metric("AWS/Kinesis", "GetRecords.Success", "Average", (("StreamName", "s"),))
    result = renamed(MetricMath(expression, dict.fromkeys(inputs, metric)), prefix)
    assert isinstance(result, MetricMath)
    assert result.expression == expected
    assert sorted(result.inputs) == sorted(f"{prefix}{name}" for name in inputs)


def test_alarms_on_the_same_ids_or_other_expressions_share_a_graph() -> None:
    # Given two alarms of one stream that both call different metrics `success`, one of which is no line of the
    # errors graph (PutRecords.Success), and an alarm on another expression of the throttles
    def spec(metric: Metric | MetricMath, threshold: float) -> AlarmSpec:
        return AlarmSpec(metric, threshold, Comparison.LESS_THAN_THRESHOLD, 1, 1, MissingData.NOT_BREACHING, "d")

    def on_s(name: str, statistic: str) -> Metric:
        return Metric("AWS/Kinesis", name, statistic, (("StreamName", "s"),))

    gets, puts = on_s("GetRecords.Success", "Average"), on_s("PutRecords.Success", "Average")
    specs = {
        ("s", "get-errors", ""): spec(MetricMath("100 * success", {"success": gets}), 99),
        ("s", "toy", "puts"): spec(MetricMath("100 * success", {"success": puts}), 98),
        ("s", "toy", "throttles"): spec(
            MetricMath("w + r", {"w": on_s("WriteProvisionedThroughputExceeded", "Sum"),
                                 "r": on_s("ReadProvisionedThroughputExceeded", "Sum")}), 7
        ),
    }  # fmt: skip
    stack = Stack(App(), "S")
    function = lambda_.Function.from_function_name(stack, "F", "f")
    policies = PolicySet(streams={"s": StreamPolicy.model_validate({"name": "s"})}, sources={})

    # When the dashboard is built and synthesized (CDK refuses two metrics under one id in a graph)
    RemediatorDashboard(stack, "D", policies=policies, specs=specs, function=function)
    template = Template.from_stack(stack).to_json()
    (dashboard,) = [r for r in template["Resources"].values() if r["Type"] == "AWS::CloudWatch::Dashboard"]
    widgets = json.loads(resolve(dashboard["Properties"]["DashboardBody"], template))["widgets"]
    by_title = {w["properties"].get("title"): w["properties"] for w in widgets if w["type"] == "metric"}

    # Then GetRecords success is drawn as the get-errors alarm's line, its threshold on the left
    errors = by_title["s: Error rates (%)"]
    expressions = [row[0]["expression"] for row in errors["metrics"] if isinstance(row[0], dict)]
    assert "100 * a0_success" in expressions
    marks = {(m["label"], m.get("yAxis", "left")) for m in errors["annotations"]["horizontal"]}
    assert ("get-errors alarm < 99", "left") in marks
    # And the PutRecords.Success alarm, no line of the graph, has its own line and threshold on the right
    assert ("toy/puts alarm < 98", "right") in marks
    assert "100 * a1_success" in expressions
    # And the throttles' sum is a right-axis line beside the two throttle counts
    throttles = by_title["s: Throttles (write: records, read: GetRecords calls)"]
    assert [m["label"] for m in throttles["annotations"]["horizontal"]] == ["toy/throttles alarm < 7"]
    assert throttles["annotations"]["horizontal"][0]["yAxis"] == "right"
