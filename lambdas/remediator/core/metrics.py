"""CloudWatch vocabulary shared by alarms (built by the stack) and evidence (read by the remediator).

A symptom names each metric once, as a `MetricName`, and derives both its alarms and its evidence
queries from it, so no metric name is spelled in two places.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from remediator.core import limits

KINESIS_NAMESPACE = "AWS/Kinesis"
STATISTICS = ("Sum", "Maximum", "Minimum", "Average", "SampleCount")


class MissingData(StrEnum):
    """CloudWatch's TreatMissingData: what an alarm makes of a minute with no datapoint (member names as
    in aws_cdk.aws_cloudwatch)."""

    BREACHING = "breaching"
    NOT_BREACHING = "notBreaching"
    IGNORE = "ignore"
    MISSING = "missing"


class Comparison(StrEnum):
    """CloudWatch's ComparisonOperator (member names as in aws_cdk.aws_cloudwatch)."""

    GREATER_THAN_OR_EQUAL_TO_THRESHOLD = "GreaterThanOrEqualToThreshold"
    GREATER_THAN_THRESHOLD = "GreaterThanThreshold"
    LESS_THAN_THRESHOLD = "LessThanThreshold"
    LESS_THAN_OR_EQUAL_TO_THRESHOLD = "LessThanOrEqualToThreshold"


@dataclass(frozen=True)
class Metric:
    """One CloudWatch metric with its dimensions and statistic: what an alarm or a query reads."""

    namespace: str
    name: str
    statistic: str
    dimensions: tuple[tuple[str, str], ...] = ()
    period_seconds: int = limits.METRIC_PERIOD_SECONDS

    def __post_init__(self) -> None:
        if self.statistic not in STATISTICS:
            raise ValueError(f"metric {self.name}: statistic {self.statistic!r} is not one of {STATISTICS}")

    @property
    def dimension_map(self) -> dict[str, str]:
        return dict(self.dimensions)


@dataclass(frozen=True)
class MetricName:
    """A metric before its dimensions are known: `ITERATOR_AGE.on(StreamName="orders")`."""

    namespace: str
    name: str
    statistic: str

    def on(self, **dimensions: str) -> Metric:
        return Metric(self.namespace, self.name, self.statistic, tuple(sorted(dimensions.items())))


def kinesis_stream_metric(name: str, statistic: str) -> MetricName:
    return MetricName(KINESIS_NAMESPACE, name, statistic)


@dataclass(frozen=True)
class MetricMath:
    """A metric-math expression over named metrics, e.g. `100 * failed / total`."""

    expression: str
    inputs: Mapping[str, Metric] = field(default_factory=dict)
    label: str = ""
    period_seconds: int = limits.METRIC_PERIOD_SECONDS

    def __post_init__(self) -> None:
        # CloudWatch applies the expression's period to every input, so a different one would be ignored.
        mixed = sorted(name for name, metric in self.inputs.items() if metric.period_seconds != self.period_seconds)
        if mixed:
            raise ValueError(f"metric math {self.expression!r}: inputs {mixed} have another period than the expression")

    def __hash__(self) -> int:
        return hash((self.expression, tuple(sorted(self.inputs.items())), self.label, self.period_seconds))

    @property
    def metrics(self) -> tuple[Metric, ...]:
        return tuple(self.inputs.values())


@dataclass(frozen=True)
class MetricQuery:
    """One series the evidence needs; `key` names it in Evidence.series."""

    key: str
    source: Metric | MetricMath

    def __post_init__(self) -> None:
        # GetMetricData ids: a lower-case letter first, then letters, digits and underscores.
        if not (self.key[:1].islower() and self.key.replace("_", "").isalnum()):
            raise ValueError(f"metric query key {self.key!r}: use a lower-case letter, then letters, digits or _")
