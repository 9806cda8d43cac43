"""One CloudWatch dashboard per deployment, at any number of streams: fleet graphs first (CloudWatch Metrics Insights
queries ranking the streams of the account and region: the ten oldest iterators, the ten most throttled, the ten
busiest), then, up to STREAM_ROWS_LIMIT streams, a row per stream (write utilisation against capacity, iterator
age, throttles, error rates), each graph with the thresholds of the alarms StreamAlarms built for it, then the
remediator's own metrics (core/deployment.RemediatorMetric) and its Lambda's errors and duration."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from aws_cdk import Duration, Stack
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_lambda as lambda_
from constructs import Construct
from remediator.core import limits
from remediator.core.deployment import METRICS_NAMESPACE, SERVICE_NAME, RemediatorMetric
from remediator.core.evidence import INCOMING_BYTES, INCOMING_RECORDS
from remediator.core.metrics import KINESIS_NAMESPACE, Comparison, Metric, MetricMath, kinesis_stream_metric
from remediator.core.outcome import OutcomeStatus
from remediator.core.policy import StreamPolicy
from remediator.core.symptoms.base import AlarmSpec
from remediator.core.symptoms.get_errors import GET_SUCCESS
from remediator.core.symptoms.iterator_age import ITERATOR_AGE
from remediator.core.symptoms.read_throttling import READ_THROTTLED
from remediator.core.symptoms.under_utilised import open_shards_metric
from remediator.core.symptoms.write_throttling import WRITE_THROTTLED
from remediator.policy_files import PolicySet

from stacks.constructs.alarms import cdk_metric

# CloudWatch: "A DashboardBody ... can include an array of between 0 and 500 widget objects" (Dashboard Body
# Structure and Syntax, CloudWatch API reference).
MAX_WIDGETS = 500
GRAPH_WIDTH, GRAPH_HEIGHT = 6, 6  # four graphs fill the dashboard's 24 columns: one row per stream
STREAM_GRAPHS = 4
WIDGETS_PER_STREAM = 1 + STREAM_GRAPHS  # a title, then the graphs
REMEDIATOR_WIDGETS = 1 + 4  # a title, then triggers/plans, steps, outcomes, the Lambda
FLEET_WIDGETS = 1 + 4  # a title, then four Metrics Insights rankings
# Per-stream rows up to this many streams (255 widgets); above it the fleet graphs rank the streams instead, and
# the dashboard body stays far below CloudWatch's limits at any fleet size.
STREAM_ROWS_LIMIT = 50
MAX_STREAMS = STREAM_ROWS_LIMIT
FLEET_TOP = 10
# Metrics Insights: names with characters other than letters, digits and '_' are double-quoted (Metrics Insights
# query components and syntax, CloudWatch user guide).
FLEET_QUERIES = (
    ("Oldest iterators (ms, maximum)", "MAX", '"GetRecords.IteratorAgeMilliseconds"'),
    ("Most throttled writes (records)", "SUM", "WriteProvisionedThroughputExceeded"),
    ("Most throttled reads (GetRecords calls)", "SUM", "ReadProvisionedThroughputExceeded"),
    ("Busiest (incoming bytes)", "SUM", "IncomingBytes"),
)


def fleet_query(function: str, metric: str, top: int = FLEET_TOP) -> str:
    return (
        f'SELECT {function}({metric}) FROM SCHEMA("{KINESIS_NAMESPACE}", StreamName) GROUP BY StreamName '
        f"ORDER BY {function}() DESC LIMIT {top}"
    )


# Producer-side metrics (aws-facts.md §6: Sum of the PutRecords counts, Average of the .Success fraction).
PUT_RECORDS_FAILED = kinesis_stream_metric("PutRecords.FailedRecords", "Sum")
PUT_RECORDS_TOTAL = kinesis_stream_metric("PutRecords.TotalRecords", "Sum")
PUT_RECORD_SUCCESS = kinesis_stream_metric("PutRecord.Success", "Average")

SYMBOLS = {
    Comparison.GREATER_THAN_OR_EQUAL_TO_THRESHOLD: ">=",
    Comparison.GREATER_THAN_THRESHOLD: ">",
    Comparison.LESS_THAN_THRESHOLD: "<",
    Comparison.LESS_THAN_OR_EQUAL_TO_THRESHOLD: "<=",
}


class DashboardTooLarge(ValueError):
    """More widgets than one dashboard holds (cannot happen since per-stream rows stop at STREAM_ROWS_LIMIT; kept
    for app.py's error handling)."""


@dataclass(frozen=True)
class Graph:
    """One per-stream graph: the lines it always shows, and the Kinesis metrics whose alarms it annotates.

    An alarm belongs to the graph when every metric it reads is one of `reads` on the stream (StreamName only), or
    the stream's OpenShards when the graph divides by it (`per_shard`): so a new symptom's alarm lands on the right
    graph without the dashboard naming the symptom."""

    title: str
    lines: tuple[Metric | MetricMath, ...]
    reads: frozenset[str]
    unit: str
    per_shard: bool = False


def stream_graphs(policy: StreamPolicy) -> tuple[Graph, ...]:
    stream = policy.name
    bytes_, records = INCOMING_BYTES.on(StreamName=stream), INCOMING_RECORDS.on(StreamName=stream)
    # CloudWatch publishes no shard count: the remediator does (OpenShards: its shard census every 5 minutes, and
    # each time it reads the stream or reshards it). FILL(..., REPEAT) carries the last count forward between its
    # datapoints.
    shards = open_shards_metric(stream, limits.METRIC_PERIOD_SECONDS)
    capacity = "FILL(shards, REPEAT)"
    return (
        Graph(
            "Write utilisation (% of the open shards' capacity)",
            (
                MetricMath(
                    f"100 * bytes / PERIOD(bytes) / ({limits.SHARD_WRITE_BYTES_PER_SECOND} * {capacity})",
                    {"bytes": bytes_, "shards": shards},
                    label="bytes",
                ),
                MetricMath(
                    f"100 * records / PERIOD(records) / ({limits.SHARD_WRITE_RECORDS_PER_SECOND} * {capacity})",
                    {"records": records, "shards": shards},
                    label="records",
                ),
            ),
            frozenset({INCOMING_BYTES.name, INCOMING_RECORDS.name}),
            "%",
            per_shard=True,
        ),
        Graph(
            "Iterator age (ms, maximum)",
            (ITERATOR_AGE.on(StreamName=stream),),
            frozenset({ITERATOR_AGE.name}),
            "ms",
        ),
        Graph(
            "Throttles (write: records, read: GetRecords calls)",
            (WRITE_THROTTLED.on(StreamName=stream), READ_THROTTLED.on(StreamName=stream)),
            frozenset({WRITE_THROTTLED.name, READ_THROTTLED.name}),
            "count",
        ),
        Graph(
            "Error rates (%)",
            (
                MetricMath(
                    "IF(FILL(put_total, 0) > 0, 100 * FILL(put_failed, 0) / FILL(put_total, 0), 0)",
                    {
                        "put_failed": PUT_RECORDS_FAILED.on(StreamName=stream),
                        "put_total": PUT_RECORDS_TOTAL.on(StreamName=stream),
                    },
                    label="PutRecords failed records (%)",
                ),
                MetricMath(
                    "100 * put_success",
                    {"put_success": PUT_RECORD_SUCCESS.on(StreamName=stream)},
                    label="PutRecord success (%)",
                ),
                MetricMath(
                    "100 * get_success",
                    {"get_success": GET_SUCCESS.on(StreamName=stream)},
                    label="GetRecords success (%)",
                ),
            ),
            frozenset(
                {
                    PUT_RECORDS_FAILED.name,
                    PUT_RECORDS_TOTAL.name,
                    PUT_RECORD_SUCCESS.name,
                    "PutRecords.Success",
                    "PutRecords.ThrottledRecords",
                    GET_SUCCESS.name,
                }
            ),
            "%",
        ),
    )


def reads(source: Metric | MetricMath) -> tuple[Metric, ...]:
    return source.metrics if isinstance(source, MetricMath) else (source,)


def open_shards_of(metric: Metric, stream: str) -> bool:
    """The remediator's OpenShards of the stream (the census's count), whatever its period."""
    return (
        metric.namespace == METRICS_NAMESPACE
        and metric.name == RemediatorMetric.OPEN_SHARDS
        and metric.dimension_map
        == {RemediatorMetric.SERVICE_DIMENSION: SERVICE_NAME, RemediatorMetric.STREAM_DIMENSION: stream}
    )


def belongs(spec: AlarmSpec, graph: Graph, stream: str) -> bool:
    return all(
        (
            metric.namespace == KINESIS_NAMESPACE
            and metric.dimension_map == {"StreamName": stream}
            and metric.name in graph.reads
        )
        or (graph.per_shard and open_shards_of(metric, stream))
        for metric in spec.metrics
    )


def annotation(symptom: str, qualifier: str, spec: AlarmSpec) -> cloudwatch.HorizontalAnnotation:
    name = "/".join(part for part in (symptom, qualifier) if part)
    return cloudwatch.HorizontalAnnotation(
        value=spec.threshold,
        label=f"{name} alarm {SYMBOLS[spec.comparison]} {spec.threshold:g}",
        color=cloudwatch.Color.RED,
    )


def renamed(source: Metric | MetricMath, prefix: str) -> Metric | MetricMath:
    """The expression with its input ids prefixed: ids share one namespace per graph, and two alarms may both
    call different metrics `success`. Ids start with a lower-case letter, functions (FILL, PERIOD) do not."""
    if isinstance(source, Metric):
        return source
    expression = source.expression
    for name in sorted(source.inputs, key=len, reverse=True):
        expression = re.sub(rf"\b{re.escape(name)}\b", f"{prefix}{name}", expression)
    inputs = {f"{prefix}{name}": metric for name, metric in source.inputs.items()}
    return MetricMath(expression, inputs, label=source.label, period_seconds=source.period_seconds)


def labelled(source: Metric | MetricMath) -> cloudwatch.IMetric:
    metric = cdk_metric(source)
    if isinstance(source, Metric) and isinstance(metric, cloudwatch.Metric):
        return metric.with_(label=source.name)
    return metric


def remediator_metric(name: str, label: str | None = None) -> cloudwatch.Metric:
    return cloudwatch.Metric(
        namespace=METRICS_NAMESPACE,
        metric_name=name,
        dimensions_map={RemediatorMetric.SERVICE_DIMENSION: SERVICE_NAME},
        statistic="Sum",
        period=Duration.minutes(5),
        label=label or name,
    )


class RemediatorDashboard(Construct):
    """`specs`: StreamAlarms.specs, keyed (stream, symptom, qualifier)."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        policies: PolicySet,
        specs: Mapping[tuple[str, str, str], AlarmSpec],
        function: lambda_.IFunction,
    ) -> None:
        super().__init__(scope, construct_id)
        streams = sorted(policies.streams.items())
        self.stream_rows = len(streams) <= STREAM_ROWS_LIMIT
        stack = Stack.of(self)
        # Dashboards are global to the account: the region in the name keeps two regions' deployments apart.
        self.dashboard_name = f"{stack.stack_name}-{stack.region}"
        self.dashboard = cloudwatch.Dashboard(
            self,
            "Dashboard",
            dashboard_name=self.dashboard_name,
            default_interval=Duration.hours(3),
            period_override=cloudwatch.PeriodOverride.AUTO,
        )
        # (stream, graph title) -> the thresholds annotated on it; read by the tests.
        self.annotated: dict[tuple[str, str], list[float]] = {}
        self._fleet(len(streams))
        for name, policy in streams if self.stream_rows else []:
            self.dashboard.add_widgets(
                cloudwatch.TextWidget(
                    markdown=f"### Stream `{name}`: {policy.mode.value}",
                    width=GRAPH_WIDTH * STREAM_GRAPHS,
                    height=1,
                )
            )
            own = {(symptom, qualifier): spec for (stream, symptom, qualifier), spec in specs.items() if stream == name}
            self.dashboard.add_widgets(*(self._graph(name, graph, own) for graph in stream_graphs(policy)))
        self._remediator(function)
        self.widget_count = (
            FLEET_WIDGETS + (len(streams) * WIDGETS_PER_STREAM if self.stream_rows else 0) + REMEDIATOR_WIDGETS
        )
        if self.widget_count > MAX_WIDGETS:
            raise DashboardTooLarge(
                f"{self.widget_count} dashboard widgets; a CloudWatch dashboard holds {MAX_WIDGETS}"
            )
        self.console_url = (
            f"https://{stack.region}.console.aws.amazon.com/cloudwatch/home?region={stack.region}"
            f"#dashboards/dashboard/{self.dashboard_name}"
        )

    def _graph(self, stream: str, graph: Graph, specs: Mapping[tuple[str, str], AlarmSpec]) -> cloudwatch.GraphWidget:
        """The graph's lines on the left axis. An alarm that reads exactly the metrics of one of them takes its place
        (the alarm's own expression) and puts its threshold on the left; any other alarm of the graph gets its own
        line and threshold on the right: a threshold always sits on the axis of the series it is compared with.
        Alarm expressions get their input ids prefixed, since ids are shared by every line of a graph."""
        lines: list[Metric | MetricMath] = list(graph.lines)
        right: list[cloudwatch.IMetric] = []
        left_marks: list[cloudwatch.HorizontalAnnotation] = []
        right_marks: list[cloudwatch.HorizontalAnnotation] = []
        for index, ((symptom, qualifier), spec) in enumerate(sorted(specs.items())):
            if not belongs(spec, graph, stream):
                continue
            mark = annotation(symptom, qualifier, spec)
            own = renamed(spec.metric, f"a{index}_")
            covered = next((i for i, line in enumerate(graph.lines) if set(reads(line)) == set(spec.metrics)), None)
            # Two alarms on one series (other thresholds) share its line; two different expressions of it do not.
            if covered is not None and lines[covered] in (graph.lines[covered], own):
                lines[covered] = own
                left_marks.append(mark)
            else:
                right.append(labelled(own))
                right_marks.append(mark)
            self.annotated.setdefault((stream, graph.title), []).append(spec.threshold)
        left = [labelled(line) for line in lines]
        return cloudwatch.GraphWidget(
            title=f"{stream}: {graph.title}",
            left=left,
            right=right or None,
            left_annotations=left_marks or None,
            right_annotations=right_marks or None,
            left_y_axis=cloudwatch.YAxisProps(label=graph.unit, show_units=False, min=0),
            width=GRAPH_WIDTH,
            height=GRAPH_HEIGHT,
        )

    def _fleet(self, streams: int) -> None:
        rows = (
            "a row per stream follows"
            if self.stream_rows
            else f"{streams} streams: more than {STREAM_ROWS_LIMIT}, so no row per stream; find one here, then in "
            "the Kinesis console or its alarms"
        )
        self.dashboard.add_widgets(
            cloudwatch.TextWidget(
                markdown=f"### Fleet: the top {FLEET_TOP} streams of this account and region ({rows})",
                width=GRAPH_WIDTH * STREAM_GRAPHS,
                height=1,
            )
        )
        self.dashboard.add_widgets(
            *(
                cloudwatch.GraphWidget(
                    title=f"Fleet: {title}",
                    left=[
                        cloudwatch.MathExpression(
                            expression=fleet_query(function, metric), label="", period=Duration.minutes(5)
                        )
                    ],
                    width=GRAPH_WIDTH,
                    height=GRAPH_HEIGHT,
                )
                for title, function, metric in FLEET_QUERIES
            )
        )

    def _remediator(self, function: lambda_.IFunction) -> None:
        metric = RemediatorMetric
        self.dashboard.add_widgets(
            cloudwatch.TextWidget(
                markdown=f"### The remediator (namespace `{METRICS_NAMESPACE}`, 5-minute sums)",
                width=GRAPH_WIDTH * STREAM_GRAPHS,
                height=1,
            )
        )
        self.dashboard.add_widgets(
            cloudwatch.GraphWidget(
                title="Remediator: alarms, plans, advice",
                left=[
                    remediator_metric(metric.ALARM_TRIGGERS, "alarm triggers"),
                    remediator_metric(metric.PLANS_MADE, "plans made"),
                    remediator_metric(metric.ADVICE_SENT, "advice e-mails sent"),
                ],
                width=GRAPH_WIDTH,
                height=GRAPH_HEIGHT,
            ),
            cloudwatch.GraphWidget(
                title="Remediator: steps",
                left=[
                    remediator_metric(metric.ACTIONS_APPLIED, "actions applied"),
                    remediator_metric(metric.STEPS_REHEARSED, "steps rehearsed (dry-run)"),
                    remediator_metric(metric.STEPS_BLOCKED, "steps blocked"),
                    remediator_metric(metric.STEPS_FAILED, "steps failed"),
                    remediator_metric(metric.STEPS_LIMIT_REACHED, "steps refused for an AWS limit"),
                    remediator_metric(metric.STEPS_UNCERTAIN, "steps of uncertain fate"),
                ],
                width=GRAPH_WIDTH,
                height=GRAPH_HEIGHT,
            ),
            cloudwatch.GraphWidget(
                title="Remediator: failed and ignored",
                left=[
                    remediator_metric(
                        metric.OUTCOMES_NEEDING_ATTENTION, "needing attention (failed, limit, uncertain)"
                    ),
                    remediator_metric(metric.outcome(OutcomeStatus.IGNORED), "ignored (no valid policy)"),
                    remediator_metric(metric.IGNORED_ALARM_CHANGES, "ignored alarm changes"),
                    remediator_metric(metric.UNRECOGNISED_EVENTS, "unrecognised events"),
                ],
                width=GRAPH_WIDTH,
                height=GRAPH_HEIGHT,
            ),
            cloudwatch.GraphWidget(
                title="Remediator Lambda: errors and duration",
                left=[function.metric_errors(period=Duration.minutes(5), label="errors")],
                right=[
                    function.metric_duration(period=Duration.minutes(5), statistic="p99", label="duration p99 (ms)"),
                    function.metric_duration(
                        period=Duration.minutes(5), statistic="Maximum", label="duration max (ms)"
                    ),
                ],
                width=GRAPH_WIDTH,
                height=GRAPH_HEIGHT,
            ),
        )
