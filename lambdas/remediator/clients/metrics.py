"""CloudWatch reads: the metric series a symptom declared, in any namespace, plain or metric math."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Any

from remediator.core.metrics import Metric, MetricMath, MetricQuery


def _metric_stat(metric: Metric) -> dict[str, Any]:
    return {
        "Metric": {
            "Namespace": metric.namespace,
            "MetricName": metric.name,
            "Dimensions": [{"Name": name, "Value": value} for name, value in metric.dimensions],
        },
        "Period": metric.period_seconds,
        "Stat": metric.statistic,
    }


def metric_data_queries(queries: tuple[MetricQuery, ...]) -> list[dict[str, Any]]:
    """GetMetricData's MetricDataQueries: one returned series per query; math inputs are not returned."""
    request: list[dict[str, Any]] = []
    for query in queries:
        source = query.source
        if isinstance(source, MetricMath):
            request += [
                {"Id": f"{query.key}_{name}", "MetricStat": _metric_stat(metric), "ReturnData": False}
                for name, metric in source.inputs.items()
            ]
            expression = source.expression
            for name in source.inputs:
                expression = re.sub(rf"\b{re.escape(name)}\b", f"{query.key}_{name}", expression)
            request.append(
                {"Id": query.key, "Expression": expression, "Period": source.period_seconds, "ReturnData": True}
            )
        else:
            request.append({"Id": query.key, "MetricStat": _metric_stat(source), "ReturnData": True})
    return request


class CloudWatchMetrics:
    def __init__(self, cloudwatch: Any) -> None:
        self._cloudwatch = cloudwatch

    def read(self, queries: tuple[MetricQuery, ...], end: datetime, minutes: int) -> dict[str, tuple[float, ...]]:
        """Per-minute values, oldest first, one GetMetricData call (paginated) for all queries."""
        series: dict[str, list[float]] = {query.key: [] for query in queries}
        paginator = self._cloudwatch.get_paginator("get_metric_data")
        for page in paginator.paginate(
            MetricDataQueries=metric_data_queries(queries),
            StartTime=end - timedelta(minutes=minutes),
            EndTime=end,
            ScanBy="TimestampAscending",
        ):
            for result in page["MetricDataResults"]:
                if result["Id"] in series:
                    series[result["Id"]].extend(float(v) for v in result.get("Values", []))
        return {key: tuple(values) for key, values in series.items()}
