"""Builders and readers shared by the integration tests (policies, alarm names, e-mails, audit rows)."""

from __future__ import annotations

import json
from typing import Any

from tests.fakes import ACCOUNT, REGION

PREFIX = "kinesis-remediator-"
STREAM = "orders"
ARN = f"arn:aws:kinesis:{REGION}:{ACCOUNT}:stream/{STREAM}"


def alarm(stream: str, symptom: str) -> str:
    """Our alarm names, spelled out here (not imported) so a change to the format shows in these tests."""
    return f"{PREFIX}{stream}/{symptom}"


WRITE_ALARM = alarm(STREAM, "write-throttling")
AGE_ALARM = alarm(STREAM, "iterator-age")

# 2 shards at 1.9 MB/s = 95 % of capacity: saturated; 1.9 / 0.6 -> 4 shards wanted (2x, allowed).
SATURATED = {"bytes_per_second": 1_900_000, "records_per_second": 500, "throttled": 50}
# 2 shards at 6 MB/s: 6 / 0.6 -> 10 shards wanted, far beyond one call's 2x.
NEEDS_TEN = {"bytes_per_second": 6_000_000, "records_per_second": 500, "throttled": 50}
# What a plan says when it sizes a reshard from the estimated offered load (throttled writes in the evidence).
ESTIMATE = (
    "{n} records were throttled, so what the stream accepted is a lower bound of what producers offer: accepted plus "
    "throttled records give an estimated peak of {mb} MB/s and {rec} records/s (an estimate: throttled records "
    "include the producers' retries, so it may overstate; one call at most doubles the shards and the policy's "
    "max_shards bounds them)"
)
# 2 shards at 0.2 MB/s = 10 % of capacity, yet throttled: a hot partition key.
HOT_KEY = {"bytes_per_second": 200_000, "records_per_second": 100, "throttled": 40}


def policy(
    name: str = STREAM, mode: str | None = None, capacity: dict[str, float] | None = None, **reshard: Any
) -> dict[str, Any]:
    """A raw stream policy: `capacity={...}` is the stream-level capacity block (saturated_at,
    target_utilisation); any other keyword goes to the reshard action's block."""
    raw: dict[str, Any] = {"name": name, "actions": {"reshard": {"max_shards": 16} | reshard}}
    if mode is not None:
        raw["mode"] = mode
    if capacity is not None:
        raw["capacity"] = capacity
    return raw


def update_command(target: int, arn: str = ARN) -> str:
    return (
        f"aws kinesis update-shard-count --stream-arn {arn} --target-shard-count {target} "
        "--scaling-type UNIFORM_SCALING"
    )


def deployed_alarm_event(raw_policy: dict[str, Any], symptom: str, **event: Any) -> dict[str, Any]:
    """The state-change event of the first alarm the stack makes for `symptom` under this policy (qualified when
    the symptom qualifies its alarms), carrying its metric's StreamName dimension when it has one."""
    from remediator.core.alarm import deployed_alarms
    from remediator.core.registry import REGISTRY

    from tests.fakes import alarm_event

    made = deployed_alarms(REGISTRY.parse_stream_policy(raw_policy), PREFIX)
    name, spec = next((name, spec) for name, (key, spec) in made.items() if key == symptom)
    streams = sorted({m.dimension_map["StreamName"] for m in spec.metrics if "StreamName" in m.dimension_map})
    return alarm_event(name, stream=streams[0] if streams else None, **event)


def only(items: list[Any]) -> Any:
    assert len(items) == 1, f"expected exactly one, got {len(items)}: {items}"
    return items[0]


def decisions(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Audit rows of the trigger's own decisions: without the follow-through bookkeeping (follow-up-scheduled)."""
    return [row for row in rows if row["outcome"] != "follow-up-scheduled"]


def plan_of(row: dict[str, Any]) -> dict[str, Any]:
    plan: dict[str, Any] = json.loads(row["plan"])
    return plan


def parameters_of(row: dict[str, Any]) -> dict[str, Any]:
    params: dict[str, Any] = json.loads(row["parameters"])
    return params
