from __future__ import annotations

from typing import Any

from remediator.core.evidence import StreamState


class KinesisStreams:
    def __init__(self, kinesis: Any) -> None:
        self._kinesis = kinesis

    def describe(self, stream_name: str) -> StreamState:
        summary = self._kinesis.describe_stream_summary(StreamName=stream_name)["StreamDescriptionSummary"]
        # A missing mode is treated as unknown, which no mutating guardrail accepts.
        mode = summary.get("StreamModeDetails", {}).get("StreamMode", "UNKNOWN")
        return StreamState(
            name=summary["StreamName"],
            arn=summary["StreamARN"],
            status=summary["StreamStatus"],
            mode=mode,
            open_shards=summary["OpenShardCount"],
            retention_hours=summary["RetentionPeriodHours"],
        )

    def update_shard_count(self, stream_arn: str, target_shards: int) -> dict[str, Any]:
        response = self._kinesis.update_shard_count(
            StreamARN=stream_arn, TargetShardCount=target_shards, ScalingType="UNIFORM_SCALING"
        )
        return {
            "current_shards": response.get("CurrentShardCount"),
            "target_shards": response.get("TargetShardCount"),
        }
