"""Sizing while throttled: IncomingBytes/IncomingRecords count what the stream accepted, so a throttled stream looks
exactly full. A reshard is then sized from the load producers offered, estimated from the accepted and the throttled
records (Evidence.sizing_load), and the reason says it is an estimate and why."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from remediator.core.actions.base import ValidationContext
from remediator.core.evidence import Evidence, WriteLoad
from remediator.core.history import ActionHistory
from remediator.core.plan import Cause
from remediator.core.registry import REGISTRY

from tests.fakes import NOW, evidence, policy

WRITE: Any = REGISTRY.symptoms["write-throttling"]
AGE: Any = REGISTRY.symptoms["iterator-age"]
RESHARD: Any = REGISTRY.actions["reshard"]


def with_series(ev: Evidence, **series: tuple[float, ...]) -> Evidence:
    return ev.model_copy(update={"series": {**ev.series, **series}})


@pytest.mark.parametrize(
    ("series", "expected"),
    [
        pytest.param(
            {"incoming_bytes": (60e6, 60e6), "incoming_records": (60e3, 60e3), "write_throttled": (0.0, 0.0)},
            WriteLoad(1e6, 1e3),
            id="nothing throttled: the accepted peak",
        ),
        pytest.param(
            {"incoming_bytes": (60e6,), "incoming_records": (60e3,)},
            WriteLoad(1e6, 1e3),
            id="no throttled series (a symptom that does not read it): the accepted peak",
        ),
        pytest.param(
            # 1 shard full (1 MB/s, 1,000 records/s of 1 KB) and 2,500 records/s throttled: 3.5 MB/s offered
            {"incoming_bytes": (60e6, 60e6), "incoming_records": (60e3, 60e3), "write_throttled": (150e3, 150e3)},
            WriteLoad(3.5e6, 3.5e3, estimated=True, throttled_records=300e3),
            id="throttled: accepted + throttled, bytes at the accepted record size",
        ),
        pytest.param(
            # minute 1: 500 B records, 60,000 throttled; minute 2: 2 KB records, 6,000 throttled
            {
                "incoming_bytes": (30e6, 60e6),
                "incoming_records": (60e3, 30e3),
                "write_throttled": (60e3, 6e3),
            },
            WriteLoad((60e6 + 6e3 * 2_000) / 60, 120e3 / 60, estimated=True, throttled_records=66e3),
            id="each minute's own record size; bytes and records peak in different minutes",
        ),
        pytest.param(
            # CloudWatch left a throttled datapoint out: the busiest minute's throttles on top of the accepted peak
            {"incoming_bytes": (60e6, 60e6), "incoming_records": (60e3, 60e3), "write_throttled": (120e3,)},
            WriteLoad(3e6, 3e3, estimated=True, throttled_records=120e3),
            id="series that do not line up",
        ),
        pytest.param(
            {"incoming_bytes": (0.0,), "incoming_records": (0.0,), "write_throttled": (500.0,)},
            WriteLoad(0.0, 0.0),
            id="no accepted record to take a size from: the accepted peak (the diagnosis says no data)",
        ),
    ],
)
def test_sizing_load(series: dict[str, tuple[float, ...]], expected: WriteLoad) -> None:
    # Given these per-minute series (Sum over a minute)
    ev = with_series(evidence(shards=1), **({"write_throttled": ()} | series))
    # When the load to size from is worked out
    load = ev.sizing_load()
    # Then it is the accepted peak, or the estimate of what producers offered
    assert load.estimated == expected.estimated
    assert load.throttled_records == pytest.approx(expected.throttled_records)
    assert load.bytes_per_second == pytest.approx(expected.bytes_per_second)
    assert load.records_per_second == pytest.approx(expected.records_per_second)


minute = st.floats(min_value=0, max_value=1e9, allow_nan=False)


@given(
    st.lists(
        st.tuples(minute, st.floats(min_value=1, max_value=1e6), st.floats(min_value=0, max_value=1e6)), min_size=1
    )
)
def test_the_estimate_is_never_below_what_the_stream_accepted(rows: list[tuple[float, float, float]]) -> None:
    # Given any minutes of accepted bytes, accepted records and throttled records
    ev = with_series(
        evidence(shards=1),
        incoming_bytes=tuple(r[0] for r in rows),
        incoming_records=tuple(r[1] for r in rows),
        write_throttled=tuple(r[2] for r in rows),
    )
    # When the load to size from is worked out
    load = ev.sizing_load()
    # Then it is at least the accepted peak, and an estimate exactly when something was throttled
    assert load.bytes_per_second >= ev.peak_bytes_per_second
    assert load.records_per_second >= ev.peak_records_per_second
    assert load.estimated == (sum(r[2] for r in rows) > 0)


def test_a_throttled_one_shard_stream_is_sized_from_what_producers_offer() -> None:
    # Given 1 shard accepting its full 1 MB/s (1 KB records) while 2,500 records/s are throttled: 3.5 MB/s offered
    ev = evidence(shards=1, bytes_per_second=1e6, records_per_second=1e3, throttled_per_minute=150e3)
    p = policy()  # target_utilisation 0.6 by default
    # When write-throttling is diagnosed
    diagnosis = WRITE.diagnose(ev, p)
    # Then it asks for the shards the offered load needs (3.5 / 0.6 -> 6), not 2 (what the accepted 100% asks)
    assert diagnosis.cause == Cause.SATURATED
    (proposal,) = diagnosis.proposals
    assert proposal.parameters == {"desired_shards": 6}
    # And the reason says it is an estimate, why, and what bounds it
    assert proposal.reason == (
        "peak write utilisation 100%; 2,250,000 records were throttled, so what the stream accepted is a lower bound "
        "of what producers offer: accepted plus throttled records give an estimated peak of 3.50 MB/s and 3,500 "
        "records/s (an estimate: throttled records include the producers' retries, so it may overstate; one call at "
        "most doubles the shards and the policy's max_shards bounds them); 6 shards would put that estimated peak "
        "at 58% of capacity (target 60%)"
    )
    # And the reshard action goes as far as one call may (2x), stating the share of the estimate it gives
    context = ValidationContext(policy=p, evidence=ev, history=ActionHistory(), now=NOW)
    step = RESHARD.shape(proposal, context)
    assert step.parameters == {"current_shards": 1, "desired_shards": 6, "target_shards": 2}
    assert step.reason.endswith(
        "this call goes to 2 because AWS allows at most 2x per call (2); 2 shards put the estimated offered write "
        "peak at 175% of capacity"
    )
    # And the action says there is more to do, so follow-through carries on
    assert RESHARD.more_to_do(step.parameters, RESHARD.block(p))


def test_iterator_age_on_throttled_saturated_shards_sizes_from_the_estimate_too() -> None:
    # Given consumers behind on a full, throttled 1-shard stream
    ev = evidence(
        shards=1, bytes_per_second=1e6, records_per_second=1e3, throttled_per_minute=150e3, iterator_age_ms=120_000
    )
    # When iterator-age is diagnosed
    diagnosis = AGE.diagnose(ev, policy())
    # Then its reshard is sized from the offered load as well
    (proposal,) = [p for p in diagnosis.proposals if p.action == "reshard"]
    assert proposal.parameters == {"desired_shards": 6}
    assert "estimated peak of 3.50 MB/s" in proposal.reason


def test_the_estimate_is_bounded_by_max_shards() -> None:
    # Given a huge throttled count (retries pile up) on 4 shards, and a policy capped at 6 shards
    ev = evidence(shards=4, bytes_per_second=4e6, records_per_second=4e3, throttled_per_minute=6e6)
    p = policy(reshard={"max_shards": 6})
    (proposal,) = WRITE.diagnose(ev, p).proposals
    # When the reshard action shapes it
    step = RESHARD.shape(proposal, ValidationContext(policy=p, evidence=ev, history=ActionHistory(), now=NOW))
    # Then the call stops at max_shards, whatever the estimate asked for
    assert proposal.parameters["desired_shards"] > 8
    assert step.parameters["target_shards"] == 6
    assert "policy max_shards is 6" in step.reason
