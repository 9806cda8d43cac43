"""The backtest's plumbing end to end: the simulated alarms drive the real core (remediate, follow-through, resolve)
through the in-memory adapters, and the model takes the core's calls as AWS would."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import pytest
from remediator.core.evidence import StreamMode
from remediator.core.ports import LimitReached
from remediator.rehearsal.adapters import CapturingNotifier, SimService, Where
from remediator.rehearsal.backtest import backtest
from remediator.rehearsal.simulator import SimulatedStream, StreamSetup
from remediator.rehearsal.trace import TraceMinute

from tests.fakes import policy

T0 = datetime(2026, 11, 1, tzinfo=UTC)
WRITE_ALARM = "kinesis-remediator-orders/write-throttling"


def spike(
    minutes: int = 60, start: int = 10, end: int = 45, high: float = 3.5e6, low: float = 0.5e6
) -> list[TraceMinute]:
    """Bytes/s per minute: `low`, then `high` from `start` to `end`; records of 1 KB."""
    rows = []
    for i in range(minutes):
        rate = high if start <= i < end else low
        rows.append(TraceMinute(T0 + timedelta(minutes=i), rate * 60, rate / 1_000 * 60))
    return rows


def test_a_spike_reshards_when_the_alarm_fires_and_follow_through_continues() -> None:
    # Given an enforcing policy aiming at 30 % utilisation, 1 shard, and 3.5 MB/s from minute 10
    enforce = policy("orders", mode="enforce", capacity={"target_utilisation": 0.3})
    result = backtest(enforce, spike(), StreamSetup(shards=1, reshard_minutes=5))
    # Then the write-throttling alarm goes to ALARM after its 2nd throttled minute (2 of 5), minute 11
    fired = [c for c in result.alarm_changes if c.alarm == WRITE_ALARM and c.new == "ALARM"]
    assert [c.index for c in fired] == [11]
    applied = [a for a in result.actions if a.status == "applied"]
    # And the core reshards at that minute (one call at most doubles), then follow-ups carry on: 1 -> 2 -> 4 -> 8
    assert applied[0].index == 11 and applied[0].parameters["target_shards"] == 2
    assert [a.parameters["target_shards"] for a in applied] == [2, 4, 8]
    assert any(d.kind == "follow-up" and d.status == "applied" for d in result.deliveries)
    # And a follow-up while the stream is UPDATING is blocked by the core's stream-active guardrail, not by us
    assert any(a.status == "blocked" and "stream-active" in a.reason for a in result.actions)
    # And the model took exactly those calls, and the shard count follows them after the reshard time
    assert [c.operation for c in result.simulation.actions] == ["UpdateShardCount"] * 3
    shards = result.simulation.shards_per_minute
    assert len(shards) == 60 and shards[11] == 1 and shards[17] == 2 and shards[-1] == 8
    # And when the alarm went back to OK the resolution ran (the "resolved" e-mail)
    assert any(d.kind == "resolution" and d.status == "resolved" for d in result.deliveries)
    assert result.simulation.throttled_minutes < 20
    document = result.to_json()
    assert document["shards_per_minute"] == shards
    assert document["summary"]["scaling_calls"] == 3


def test_dry_run_changes_nothing_but_lists_the_plan() -> None:
    dry = policy("orders", mode="dry-run", capacity={"target_utilisation": 0.3})
    result = backtest(dry, spike(), StreamSetup(shards=1))
    assert result.simulation.actions == []
    assert set(result.simulation.shards_per_minute) == {1}
    planned = [a for a in result.actions if a.status == "dry-run"]
    assert planned and planned[0].index == 11 and planned[0].action == "reshard"
    assert any("dry-run" in e.subject.lower() or "dry run" in e.body.lower() for e in result.emails)


def test_alarms_the_model_cannot_produce_are_listed() -> None:
    result = backtest(policy("orders", mode="enforce"), spike(20), StreamSetup())
    assert "kinesis-remediator-orders/get-latency" in result.not_simulated
    assert WRITE_ALARM in result.simulated_alarms
    assert WRITE_ALARM not in result.not_simulated


def test_write_port_refuses_as_aws_would() -> None:
    # Given the simulated stream at 1 shard, ACTIVE
    model = SimulatedStream(StreamSetup(shards=1), T0)
    kinesis = SimService("kinesis", lambda: model, Where("orders", "000000000000", "us-east-1"))
    # When the core asks for more than double: AWS's LimitExceededException becomes the core's LimitReached
    with pytest.raises(LimitReached):
        kinesis.call(
            "UpdateShardCount",
            StreamARN="arn:aws:kinesis:us-east-1:000000000000:stream/orders",
            TargetShardCount=3,
            ScalingType="UNIFORM_SCALING",
        )
    answer = kinesis.call(
        "UpdateShardCount",
        StreamARN="arn:aws:kinesis:us-east-1:000000000000:stream/orders",
        TargetShardCount=2,
        ScalingType="UNIFORM_SCALING",
    )
    assert answer["TargetShardCount"] == 2
    summary = kinesis.call("DescribeStreamSummary", StreamARN="arn:aws:kinesis:us-east-1:000000000000:stream/orders")
    assert summary["StreamDescriptionSummary"]["StreamStatus"] == "UPDATING"
    assert model.mode == StreamMode.PROVISIONED


def test_a_failed_delivery_is_retried_and_the_write_ahead_resumes_without_a_second_change(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given the first e-mail fails (after the reshard was made), as SNS might
    sent: list[str] = []
    original = CapturingNotifier.send

    def flaky(self: CapturingNotifier, stream: str, subject: str, body: str, recipients: Sequence[str] = ()) -> str:
        sent.append(subject)
        if len(sent) == 1:
            raise RuntimeError("SNS is down")
        return original(self, stream, subject, body, recipients)

    monkeypatch.setattr(CapturingNotifier, "send", flaky)
    enforce = policy("orders", mode="enforce")
    result = backtest(enforce, spike(30, high=1.5e6), StreamSetup(shards=1))
    # When the delivery is retried (as Lambda retries an asynchronous invocation)
    first = next(d for d in result.deliveries if d.kind == "alarm")
    assert "after 1 failed attempt(s)" in first.detail and "SNS is down" in first.detail
    assert first.detail.startswith("resumed an interrupted delivery")
    # Then the write-ahead audit settles the change already made: one UpdateShardCount, not two
    assert [c.operation for c in result.simulation.actions] == ["UpdateShardCount"]
    # (1.5 MB/s offered needs 3 shards: the follow-up of 1 -> 2 finds the stream UPDATING and is blocked, no call)
    assert [a.status for a in result.actions if a.action == "reshard" and a.status != "blocked"] == ["applied"]
