"""Builders shared by tests: alarm events, stream policies, evidence."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from remediator.core.evidence import Evidence, StreamMode, StreamState, StreamStatus
from remediator.core.policy import StreamPolicy
from remediator.core.registry import REGISTRY

ACCOUNT = "123456789012"
REGION = "us-east-1"
NOW = datetime(2026, 11, 26, 3, 0, tzinfo=UTC)
# The order in which a reshard step's guardrails report: the common ones, then the action's own.
GUARDRAIL_ORDER = [
    "policy-enabled",
    "stream-active",
    "cooldown",
    "daily-budget",
    "provisioned-mode",
    "aws-step-limit",
    "aws-max-shards",
    "policy-bounds",
    "aws-daily-scalings",
    "account-shard-quota",
]
# What a scale-in (fewer shards) is checked on as well, after those.
SCALE_IN_GUARDRAILS = ["scale-in-enabled", "stabilisation-window", "scale-up-reserve"]


def stream_arn(name: str) -> str:
    return f"arn:aws:kinesis:{REGION}:{ACCOUNT}:stream/{name}"


def policy(name: str = "orders", **overrides: Any) -> StreamPolicy:
    """A stream policy validated by the registry's model; `reshard={...}` updates the reshard block."""
    raw: dict[str, Any] = {"name": name, "actions": {"reshard": {"max_shards": 16}}}
    for key, value in overrides.items():
        if key == "reshard":
            raw["actions"]["reshard"].update(value)
        else:
            raw[key] = value
    return REGISTRY.parse_stream_policy(raw)


def evidence(
    *,
    shards: int = 2,
    bytes_per_second: float = 0.0,
    records_per_second: float = 0.0,
    throttled_per_minute: float = 0.0,
    iterator_age_ms: float | None = None,
    status: str = "ACTIVE",
    mode: str = "PROVISIONED",
    retention_hours: int = 24,
    name: str = "orders",
    minutes: int = 15,
) -> Evidence:
    series: dict[str, tuple[float, ...]] = {
        "incoming_bytes": (bytes_per_second * 60,) * minutes,
        "incoming_records": (records_per_second * 60,) * minutes,
        "write_throttled": (throttled_per_minute,) * minutes,
        "read_throttled": (0.0,) * minutes,
    }
    if iterator_age_ms is not None:
        series["iterator_age_ms"] = (iterator_age_ms,) * minutes
    return Evidence(
        stream=StreamState(
            name=name,
            arn=stream_arn(name),
            status=StreamStatus(status),
            mode=StreamMode(mode),
            open_shards=shards,
            retention_hours=retention_hours,
        ),
        collected_at=NOW,
        series=series,
    )


def alarm_event(
    alarm_name: str,
    *,
    stream: str | None = "orders",
    state: str = "ALARM",
    previous: str = "OK",
    timestamp: str = "2026-11-26T02:59:00.000+0000",
    metric: str = "WriteProvisionedThroughputExceeded",
) -> dict[str, Any]:
    dimensions = {"StreamName": stream} if stream else {}
    return {
        "version": "0",
        "id": "c4c1c1c9-6542-e61b-6ef0-8c4d36933a92",
        "detail-type": "CloudWatch Alarm State Change",
        "source": "aws.cloudwatch",
        "account": ACCOUNT,
        "time": "2026-11-26T02:59:10Z",
        "region": REGION,
        "resources": [f"arn:aws:cloudwatch:{REGION}:{ACCOUNT}:alarm:{alarm_name}"],
        "detail": {
            "alarmName": alarm_name,
            "state": {
                "value": state,
                "reason": "Threshold Crossed: 3 out of the last 5 datapoints were greater than the threshold",
                "reasonData": '{"version":"1.0"}',
                "timestamp": timestamp,
            },
            "previousState": {"value": previous, "reason": "", "timestamp": "2026-11-26T02:00:00.000+0000"},
            "configuration": {
                "description": "Kinesis Remediator alarm",
                "metrics": [
                    {
                        "id": "m1",
                        "metricStat": {
                            "metric": {"namespace": "AWS/Kinesis", "name": metric, "dimensions": dimensions},
                            "period": 60,
                            "stat": "Sum",
                        },
                        "returnData": True,
                    }
                ],
            },
        },
    }
