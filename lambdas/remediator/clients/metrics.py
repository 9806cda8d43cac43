from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from remediator.core import limits
from remediator.core.evidence import MetricQuery


class CloudWatchMetrics:
    def __init__(self, cloudwatch: Any) -> None:
        self._cloudwatch = cloudwatch

    def read(
        self, stream_name: str, queries: tuple[MetricQuery, ...], end: datetime, minutes: int
    ) -> dict[str, tuple[float, ...]]:
        """Per-minute values, oldest first, one GetMetricData call (paginated) for all queries."""
        request = [
            {
                "Id": query.key,
                "MetricStat": {
                    "Metric": {
                        "Namespace": "AWS/Kinesis",
                        "MetricName": query.metric_name,
                        "Dimensions": [{"Name": "StreamName", "Value": stream_name}],
                    },
                    "Period": limits.METRIC_PERIOD_SECONDS,
                    "Stat": query.statistic,
                },
                "ReturnData": True,
            }
            for query in queries
        ]
        series: dict[str, list[float]] = {query.key: [] for query in queries}
        paginator = self._cloudwatch.get_paginator("get_metric_data")
        for page in paginator.paginate(
            MetricDataQueries=request,
            StartTime=end - timedelta(minutes=minutes),
            EndTime=end,
            ScanBy="TimestampAscending",
        ):
            for result in page["MetricDataResults"]:
                series[result["Id"]].extend(float(v) for v in result.get("Values", []))
        return {key: tuple(values) for key, values in series.items()}
