"""CloudWatch's alarm evaluation, on the simulated stream's metrics.

The alarms are the deployed ones: core.alarm.deployed_alarms (each symptom's `alarms(policy, detector)`), evaluated
as CloudWatch does (https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/alarms-and-missing-data.html,
"Configuring how CloudWatch alarms treat missing data", read from its copy in awsdocs/amazon-cloudwatch-user-guide
doc_source/AlarmThatSendsEmail.md):

- each period's datapoint is the period's minutes aggregated by the alarm's statistic (a period with no minute
  that has data has no datapoint: missing); periods start at multiples of the period since the epoch, and an alarm
  is evaluated when a period ends;
- CloudWatch retrieves an *evaluation range* of datapoints larger than Evaluation Periods (N): AWS shows 5 for N = 3
  and gives no rule; we take N + 2 (UNCONFIRMED for other N);
- with at least N real datapoints in the range, the N most recent real ones are evaluated and the missing-data
  setting is ignored; with fewer, every real one is kept and the shortfall is filled as the setting says
  (breaching / notBreaching), or not filled (missing / ignore); ALARM when at least Datapoints to Alarm (M) of them
  breach, else OK;
- nothing real in the range: missing -> INSUFFICIENT_DATA, ignore -> the state is kept, breaching -> ALARM,
  notBreaching -> OK;
- "premature alarm state": with fewer than N real datapoints, all of them breaching, the alarm goes to ALARM when the
  oldest breaching datapoint among the last N periods is at least M periods old and every newer one is breaching
  or missing (missing); `ignore` keeps its state then (the published tables' rows 5). Checked against every row
  of AWS's two tables (tests/unit/test_rehearsal_alarm_eval.py).

Metric math: the expressions our symptoms use, per period (FILL, IF, MAX of an array, + - * /, comparisons,
AND, OR); an unknown function raises UnknownExpression. A division by zero gives no datapoint. Alarms on metrics
the model does not produce (Lambda, KCL, DynamoDB, GetRecords latency and success, PutRecord(s) errors, enhanced
fan-out) are not simulated: they are listed, never guessed.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from remediator.core.deployment import CENSUS_RATE_MINUTES, METRICS_NAMESPACE, RemediatorMetric
from remediator.core.metrics import KINESIS_NAMESPACE, Comparison, Metric, MetricMath, MissingData
from remediator.rehearsal.simulator import MinuteStats

OK, ALARM, INSUFFICIENT_DATA = "OK", "ALARM", "INSUFFICIENT_DATA"
# The evaluation range beyond Evaluation Periods (AWS's example: 5 datapoints for 3 evaluation periods).
EXTRA_RANGE = 2


class UnknownExpression(ValueError):
    """A metric-math expression (or function) the evaluator does not implement: never guessed."""


# --- the metrics the model produces ------------------------------------------------------------------------


@dataclass(frozen=True)
class Stat:
    """One datapoint's statistic set (CloudWatch's StatisticSet)."""

    sum: float
    count: float
    minimum: float
    maximum: float

    @classmethod
    def of(cls, value: float) -> Stat:
        return cls(value, 1.0, value, value)

    def merge(self, other: Stat) -> Stat:
        return Stat(
            self.sum + other.sum,
            self.count + other.count,
            min(self.minimum, other.minimum),
            max(self.maximum, other.maximum),
        )

    def statistic(self, name: str) -> float:
        if name == "Sum":
            return self.sum
        if name == "SampleCount":
            return self.count
        if name == "Minimum":
            return self.minimum
        if name == "Maximum":
            return self.maximum
        if name == "Average":
            return self.sum / self.count if self.count else 0.0
        raise UnknownExpression(f"statistic {name!r}")


@dataclass(frozen=True)
class Produced:
    """A metric the model produces: its value in a minute (None: no datapoint), the statistics that mean what AWS's
    do, and the dimensions it carries besides StreamName."""

    value: Callable[[MinuteStats], float | None]
    statistics: frozenset[str]
    extra_dimensions: frozenset[str] = frozenset()


def _written(m: MinuteStats, value: float) -> float | None:
    # Put metrics have a datapoint in a minute with PutRecord(s) calls: one where producers offered anything.
    return value if (m.offered_records > 0 or m.offered_bytes > 0) else None


def _polled(m: MinuteStats, value: float) -> float | None:
    # GetRecords metrics: a minute with GetRecords calls (polling consumers poll each second, data or none).
    return value if m.polling_consumers > 0 else None


def _census(m: MinuteStats) -> float | None:
    # The remediator's shard census publishes OpenShards every CENSUS_RATE_MINUTES (core.deployment).
    return float(m.shards) if int(m.timestamp.timestamp() // 60) % CENSUS_RATE_MINUTES == 0 else None


SUM = frozenset({"Sum"})
PRODUCED: Mapping[tuple[str, str], Produced] = {
    (KINESIS_NAMESPACE, "IncomingBytes"): Produced(lambda m: _written(m, m.incoming_bytes), SUM),
    (KINESIS_NAMESPACE, "IncomingRecords"): Produced(lambda m: _written(m, m.incoming_records), SUM),
    (KINESIS_NAMESPACE, "WriteProvisionedThroughputExceeded"): Produced(
        lambda m: _written(m, m.write_throttled_records), SUM
    ),
    (KINESIS_NAMESPACE, "ReadProvisionedThroughputExceeded"): Produced(lambda m: _polled(m, m.read_throttled), SUM),
    (KINESIS_NAMESPACE, "GetRecords.Records"): Produced(
        lambda m: _polled(m, m.outgoing_records * m.polling_consumers), SUM
    ),
    (KINESIS_NAMESPACE, "GetRecords.Bytes"): Produced(
        lambda m: _polled(m, m.outgoing_bytes * m.polling_consumers), SUM
    ),
    (KINESIS_NAMESPACE, "GetRecords.IteratorAgeMilliseconds"): Produced(
        lambda m: m.iterator_age_ms, frozenset({"Maximum"})
    ),
    (METRICS_NAMESPACE, RemediatorMetric.OPEN_SHARDS): Produced(
        _census, frozenset({"Maximum", "Minimum", "Average"}), frozenset({RemediatorMetric.SERVICE_DIMENSION})
    ),
}


def why_not_produced(metric: Metric, stream: str) -> str:
    """'' when the model produces this metric of this stream, else why not."""
    produced = PRODUCED.get((metric.namespace, metric.name))
    if produced is None:
        return f"{metric.namespace} {metric.name} is not in the model"
    dimensions = metric.dimension_map
    if dimensions.get("StreamName") != stream or set(dimensions) - {"StreamName"} - produced.extra_dimensions:
        return f"{metric.name} on dimensions {dimensions} is not the stream's own metric"
    if metric.statistic not in produced.statistics:
        return f"{metric.name}'s {metric.statistic} is not modelled (only {', '.join(sorted(produced.statistics))})"
    return ""


class MetricSeries:
    """The simulated minutes as CloudWatch datapoints: per metric, per period, aggregated by statistic."""

    def __init__(self, stream: str) -> None:
        self.stream = stream
        self.minutes: list[MinuteStats] = []
        self._epoch_minute0 = 0

    def add(self, minute: MinuteStats) -> None:
        if not self.minutes:
            self._epoch_minute0 = epoch_minute(minute.timestamp)
        self.minutes.append(minute)

    def _minute_at(self, epoch: int) -> MinuteStats | None:
        index = epoch - self._epoch_minute0
        return self.minutes[index] if 0 <= index < len(self.minutes) else None

    def datapoint(self, metric: Metric, period_start: int, period_minutes: int) -> float | None:
        """The metric's datapoint for the period starting at this epoch minute (None: missing)."""
        produced = PRODUCED[(metric.namespace, metric.name)]
        stat: Stat | None = None
        for epoch in range(period_start, period_start + period_minutes):
            minute = self._minute_at(epoch)
            value = produced.value(minute) if minute is not None else None
            if value is not None:
                stat = Stat.of(value) if stat is None else stat.merge(Stat.of(value))
        return None if stat is None else stat.statistic(metric.statistic)

    def value(self, source: Metric | MetricMath, period_start: int) -> float | None:
        """A metric's or an expression's datapoint for one period."""
        if isinstance(source, Metric):
            return self.datapoint(source, period_start, source.period_seconds // 60)
        minutes = source.period_seconds // 60
        env = {name: self.datapoint(metric, period_start, minutes) for name, metric in source.inputs.items()}
        return evaluate_expression(source.expression, env)

    def series(self, source: Metric | MetricMath, end: datetime, minutes: int) -> tuple[float, ...]:
        """Datapoints of the periods that start within [end - minutes, end) and are over by `end`, oldest first,
        missing ones left out (as GetMetricData answers)."""
        period = source.period_seconds // 60
        stop = epoch_minute(end)
        first = stop - minutes
        start = -(-first // period) * period
        values = []
        for period_start in range(start, stop - period + 1, period):
            value = self.value(source, period_start)
            if value is not None:
                values.append(value)
        return tuple(values)


def epoch_minute(moment: datetime) -> int:
    return int(moment.timestamp() // 60)


# --- metric math ---------------------------------------------------------------------------------------------

TOKEN = re.compile(r"\s*(?:(\d+(?:\.\d*)?(?:[eE][-+]?\d+)?)|([A-Za-z_][A-Za-z0-9_]*)|(>=|<=|==|!=|[-+*/()<>\[\],]))")
FUNCTIONS = frozenset({"IF", "FILL", "MAX", "MIN"})
KEYWORDS = frozenset({"AND", "OR", "NOT"})


def _tokens(expression: str) -> list[str]:
    tokens, position = [], 0
    text = expression.rstrip()
    while position < len(text):
        match = TOKEN.match(text, position)
        if match is None:
            raise UnknownExpression(f"metric math {expression!r}: cannot read {text[position:]!r}")
        tokens.append(next(group for group in match.groups() if group is not None))
        position = match.end()
    return tokens


Node = tuple[Any, ...]


class _Parser:
    """Recursive descent over the tokens; nodes are tuples (kind, ...)."""

    def __init__(self, expression: str) -> None:
        self.expression = expression
        self.tokens = _tokens(expression)
        self.at = 0

    def peek(self) -> str | None:
        return self.tokens[self.at] if self.at < len(self.tokens) else None

    def take(self, expected: str | None = None) -> str:
        token = self.peek()
        if token is None or (expected is not None and token.upper() != expected):
            raise UnknownExpression(f"metric math {self.expression!r}: expected {expected or 'more'}, found {token!r}")
        self.at += 1
        return token

    def parse(self) -> Node:
        node = self.logical("OR", lambda: self.logical("AND", self.comparison))
        if self.peek() is not None:
            raise UnknownExpression(f"metric math {self.expression!r}: unexpected {self.peek()!r}")
        return node

    def logical(self, word: str, operand: Callable[[], Node]) -> Node:
        node = operand()
        while (self.peek() or "").upper() == word:
            self.take()
            node = (word, node, operand())
        return node

    def comparison(self) -> Node:
        node = self.additive()
        if self.peek() in (">", "<", ">=", "<=", "==", "!="):
            node = ("cmp", self.take(), node, self.additive())
        return node

    def additive(self) -> Node:
        node = self.multiplicative()
        while self.peek() in ("+", "-"):
            node = ("op", self.take(), node, self.multiplicative())
        return node

    def multiplicative(self) -> Node:
        node = self.unary()
        while self.peek() in ("*", "/"):
            node = ("op", self.take(), node, self.unary())
        return node

    def unary(self) -> Node:
        if self.peek() == "-":
            self.take()
            return ("neg", self.unary())
        if (self.peek() or "").upper() == "NOT":
            self.take()
            return ("not", self.unary())
        return self.primary()

    def primary(self) -> Node:
        token = self.take()
        if token == "(":
            node = self.logical("OR", lambda: self.logical("AND", self.comparison))
            self.take(")")
            return node
        if token == "[":
            items = [self.logical("OR", lambda: self.logical("AND", self.comparison))]
            while self.peek() == ",":
                self.take()
                items.append(self.logical("OR", lambda: self.logical("AND", self.comparison)))
            self.take("]")
            return ("array", items)
        if token[0].isdigit():
            return ("num", float(token))
        if self.peek() == "(":
            name = token.upper()
            if name not in FUNCTIONS:
                raise UnknownExpression(f"metric math {self.expression!r}: function {token} is not implemented")
            self.take("(")
            args = [self.logical("OR", lambda: self.logical("AND", self.comparison))]
            while self.peek() == ",":
                self.take()
                args.append(self.logical("OR", lambda: self.logical("AND", self.comparison)))
            self.take(")")
            return ("call", name, args)
        if token.upper() in KEYWORDS or not (token[0].isalpha() or token[0] == "_"):
            raise UnknownExpression(f"metric math {self.expression!r}: unexpected {token!r}")
        return ("name", token)


_PARSED: dict[str, Node] = {}


def parse_expression(expression: str) -> Node:
    if expression not in _PARSED:
        _PARSED[expression] = _Parser(expression).parse()
    return _PARSED[expression]


def _compare(operator: str, left: float, right: float) -> bool:
    return {
        ">": left > right,
        "<": left < right,
        ">=": left >= right,
        "<=": left <= right,
        "==": left == right,
        "!=": left != right,
    }[operator]


def _eval(node: Node, env: Mapping[str, float | None], expression: str) -> float | None:
    kind = node[0]
    if kind == "num":
        return float(node[1])
    if kind == "name":
        if node[1] not in env:
            raise UnknownExpression(f"metric math {expression!r}: {node[1]} is not one of its inputs")
        return env[node[1]]
    if kind == "neg":
        value = _eval(node[1], env, expression)
        return None if value is None else -value
    if kind == "not":
        value = _eval(node[1], env, expression)
        return None if value is None else float(value == 0)
    if kind in ("AND", "OR"):
        left, right = _eval(node[1], env, expression), _eval(node[2], env, expression)
        if left is None or right is None:
            return None
        return float(bool(left) and bool(right)) if kind == "AND" else float(bool(left) or bool(right))
    if kind == "cmp":
        left, right = _eval(node[2], env, expression), _eval(node[3], env, expression)
        return None if left is None or right is None else float(_compare(node[1], left, right))
    if kind == "op":
        left, right = _eval(node[2], env, expression), _eval(node[3], env, expression)
        if left is None or right is None:
            return None
        operator = node[1]
        if operator == "/":
            return None if right == 0 else left / right
        return left + right if operator == "+" else left - right if operator == "-" else left * right
    if kind == "call":
        return _call(node[1], node[2], env, expression)
    raise UnknownExpression(f"metric math {expression!r}: an array is only a MAX or MIN argument")


def _call(name: str, args: list[Node], env: Mapping[str, float | None], expression: str) -> float | None:
    if name == "FILL":
        if len(args) != 2:
            raise UnknownExpression(f"metric math {expression!r}: FILL takes a series and a value")
        value = _eval(args[0], env, expression)
        return _eval(args[1], env, expression) if value is None else value
    if name == "IF":
        if len(args) not in (2, 3):
            raise UnknownExpression(f"metric math {expression!r}: IF takes 2 or 3 arguments")
        condition = _eval(args[0], env, expression)
        if condition is None:
            return None
        if condition:
            return _eval(args[1], env, expression)
        return _eval(args[2], env, expression) if len(args) == 3 else None
    # MAX / MIN of an array of series: per timestamp, the largest (smallest) of those with a value. Of one series
    # they reduce the whole series to one number: not something our alarms use, so refused.
    if len(args) != 1 or args[0][0] != "array":
        raise UnknownExpression(f"metric math {expression!r}: {name} is implemented for an array [a, b, ...] only")
    values = [v for v in (_eval(item, env, expression) for item in args[0][1]) if v is not None]
    if not values:
        return None
    return max(values) if name == "MAX" else min(values)


def evaluate_expression(expression: str, env: Mapping[str, float | None]) -> float | None:
    """The expression's value for one period, its inputs' datapoints in `env` (None: missing)."""
    value = _eval(parse_expression(expression), env, expression)
    return None if value is None or math.isnan(value) else value


# --- alarm states --------------------------------------------------------------------------------------------


def breaches(value: float, comparison: Comparison, threshold: float) -> bool:
    if comparison == Comparison.GREATER_THAN_OR_EQUAL_TO_THRESHOLD:
        return value >= threshold
    if comparison == Comparison.GREATER_THAN_THRESHOLD:
        return value > threshold
    if comparison == Comparison.LESS_THAN_THRESHOLD:
        return value < threshold
    return value <= threshold


def next_state(
    window: Sequence[bool | None],
    *,
    evaluation_periods: int,
    datapoints_to_alarm: int,
    missing_data: MissingData,
    current: str,
) -> str:
    """The alarm's state from its evaluation range, oldest first: True breaching, False not, None missing."""
    n, m = evaluation_periods, datapoints_to_alarm
    real = [point for point in window if point is not None]
    if len(real) >= n:
        return ALARM if sum(real[-n:]) >= m else OK
    if not real:
        return {
            MissingData.MISSING: INSUFFICIENT_DATA,
            MissingData.IGNORE: current,
            MissingData.BREACHING: ALARM,
            MissingData.NOT_BREACHING: OK,
        }[missing_data]
    breaching = sum(real)
    if missing_data == MissingData.BREACHING:
        return ALARM if breaching + (n - len(real)) >= m else OK
    if breaching >= m:
        return ALARM
    if missing_data == MissingData.NOT_BREACHING:
        return OK
    if all(real) and _premature(window[-n:], m):
        return ALARM if missing_data == MissingData.MISSING else current
    return OK


def _premature(last: Sequence[bool | None], m: int) -> bool:
    """The oldest breaching datapoint of the last N periods is at least M periods old, and every newer one is
    breaching or missing."""
    for position, point in enumerate(last):
        if point:
            age = len(last) - position
            return age >= m and all(p is None or p for p in last[position:])
    return False


@dataclass(frozen=True)
class AlarmChange:
    index: int  # the minute after which the alarm changed state
    alarm: str
    old: str
    new: str
    at: datetime  # the state change's timestamp
    previous_at: datetime | None  # when the alarm had entered the old state (None: it started in it)


@dataclass
class _Alarm:
    name: str
    spec: Any  # AlarmSpec
    period_minutes: int
    state: str = INSUFFICIENT_DATA
    since: datetime | None = None


class AlarmEvaluator:
    """The deployed alarms of one stream, evaluated after every simulated minute."""

    def __init__(self, alarms: Mapping[str, Any], stream: str) -> None:
        """`alarms`: name -> AlarmSpec (core.alarm.deployed_alarms' specs)."""
        self.series = MetricSeries(stream)
        self.specs = dict(alarms)
        self.not_simulated: dict[str, str] = {}
        self._alarms: dict[str, _Alarm] = {}
        for name, spec in alarms.items():
            why = "; ".join(w for w in (why_not_produced(metric, stream) for metric in spec.metrics) if w)
            if not why and isinstance(spec.metric, MetricMath):
                try:
                    parse_expression(spec.metric.expression)
                except UnknownExpression as exc:
                    raise UnknownExpression(f"alarm {name}: {exc}") from exc
            if why:
                self.not_simulated[name] = why
            else:
                self._alarms[name] = _Alarm(name, spec, spec.metric.period_seconds // 60)

    @property
    def simulated(self) -> list[str]:
        return sorted(self._alarms)

    def state(self, name: str) -> tuple[str, datetime | None] | None:
        alarm = self._alarms.get(name)
        return None if alarm is None else (alarm.state, alarm.since)

    def advance(self, minute: MinuteStats, now: datetime) -> list[AlarmChange]:
        """Take one more simulated minute; evaluate the alarms whose period ends with it; their state changes."""
        self.series.add(minute)
        end = epoch_minute(minute.timestamp) + 1
        changes = []
        for alarm in self._alarms.values():
            period = alarm.period_minutes
            if end % period:
                continue
            spec = alarm.spec
            count = spec.evaluation_periods + EXTRA_RANGE
            window: list[bool | None] = []
            for k in range(count, 0, -1):
                value = self.series.value(spec.metric, end - k * period)
                window.append(None if value is None else breaches(value, spec.comparison, spec.threshold))
            new = next_state(
                window,
                evaluation_periods=spec.evaluation_periods,
                datapoints_to_alarm=spec.datapoints_to_alarm,
                missing_data=spec.missing_data,
                current=alarm.state,
            )
            if new != alarm.state:
                changes.append(AlarmChange(minute.index, alarm.name, alarm.state, new, now, alarm.since))
                alarm.state, alarm.since = new, now
        return changes
