"""What the remediator reads about a stream's registered enhanced fan-out consumers (ListStreamConsumers):
their names, ARNs and states. A symptom that proposes `enhanced-fan-out` gathers them, so that the action can
count the stream's consumers against AWS's 20 and see which of its own already exist; the facts travel in
Evidence.facts under STREAM_CONSUMERS, so a plan can be replayed.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict

from remediator.core.evidence import Evidence, StreamState
from remediator.core.grants import STREAM, IamGrant
from remediator.core.policy import StreamPolicy
from remediator.core.ports import ReadPorts

STREAM_CONSUMERS = "stream_consumers"

STREAM_CONSUMER_READ_GRANTS = (
    IamGrant(
        actions=("kinesis:ListStreamConsumers",),
        scope=STREAM,
        why="The enhanced fan-out consumers registered on the policy's streams (how many of AWS's 20 are taken).",
    ),
)


class StreamConsumerFacts(BaseModel):
    """One registered consumer of the stream, as ListStreamConsumers describes it."""

    model_config = ConfigDict(frozen=True)

    name: str
    arn: str
    status: str  # CREATING | ACTIVE | DELETING


def read_stream_consumers(stream_arn: str, service: Any) -> list[StreamConsumerFacts]:
    """Every consumer of the stream, following NextToken (a kinesis ServicePort that may ListStreamConsumers)."""
    found: list[StreamConsumerFacts] = []
    token: str | None = None
    while True:
        # StreamARN is required on every page; NextToken expires after 300 s, far beyond a few pages.
        page = service.call("ListStreamConsumers", StreamARN=stream_arn, **({"NextToken": token} if token else {}))
        found += [
            StreamConsumerFacts(
                name=str(item.get("ConsumerName", "")),
                arn=str(item.get("ConsumerARN", "")),
                status=str(item.get("ConsumerStatus", "")),
            )
            for item in page.get("Consumers", [])
        ]
        token = page.get("NextToken")
        if not token:
            return found


def gather_stream_consumers(policy: StreamPolicy, stream: StreamState, aws: ReadPorts) -> dict[str, Any]:
    """A symptom's `gather` for these facts (needs STREAM_CONSUMER_READ_GRANTS)."""
    consumers = read_stream_consumers(stream.arn, aws.service("kinesis"))
    return {STREAM_CONSUMERS: [c.model_dump(mode="json") for c in consumers]}


def stream_consumers(evidence: Evidence) -> list[StreamConsumerFacts] | None:
    """The consumers a symptom's gather read, or None when it read none (then nobody knows how many there are)."""
    if STREAM_CONSUMERS not in evidence.facts:
        return None
    return [StreamConsumerFacts.model_validate(item) for item in evidence.facts[STREAM_CONSUMERS]]
