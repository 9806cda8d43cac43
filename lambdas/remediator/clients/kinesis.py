"""Kinesis reads: a stream's state, as the evidence needs it."""

from __future__ import annotations

from typing import Any

from remediator.core.evidence import StreamMode, StreamState, StreamStatus


def _enum(kind: type[StreamMode] | type[StreamStatus], value: str | None) -> Any:
    # Anything AWS adds later reads as UNKNOWN, which no mutating guardrail accepts.
    try:
        return kind(value or "UNKNOWN")
    except ValueError:
        return kind.UNKNOWN


class KinesisStreams:
    def __init__(self, kinesis: Any) -> None:
        self._kinesis = kinesis

    def describe(self, stream_name: str) -> StreamState:
        summary = self._kinesis.describe_stream_summary(StreamName=stream_name)["StreamDescriptionSummary"]
        return StreamState(
            name=summary["StreamName"],
            arn=summary["StreamARN"],
            status=_enum(StreamStatus, summary.get("StreamStatus")),
            mode=_enum(StreamMode, summary.get("StreamModeDetails", {}).get("StreamMode")),
            open_shards=summary["OpenShardCount"],
            retention_hours=summary["RetentionPeriodHours"],
            consumer_count=summary.get("ConsumerCount"),
            shard_level_metrics=tuple(
                sorted({m for e in summary.get("EnhancedMonitoring", []) for m in e.get("ShardLevelMetrics", [])})
            ),
        )
