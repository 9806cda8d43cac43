"""Reshard maths: shards needed, the 25 % steps AWS prefers, and how far one UpdateShardCount may go."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from remediator.core import limits
from remediator.core.reshard import min_scale_down, quarter_step, required_shards, scale_up_target


# required_shards -----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("bytes_per_s", "records_per_s", "target", "expected"),
    [
        pytest.param(3_000_000, 100, 0.6, 5, id="bytes-bound: 3 MB/s at 60% -> 5"),
        pytest.param(100_000, 3_000, 0.6, 5, id="records-bound: 3000 rec/s at 60% -> 5"),
        pytest.param(2_500_000, 4_000, 0.5, 8, id="both: the larger need (records 8 > bytes 5) wins"),
        pytest.param(1_000_000, 0, 1.0, 1, id="exactly one shard's capacity at 100% -> 1"),
        pytest.param(1_000_001, 0, 1.0, 2, id="one byte over one shard at 100% -> 2"),
        pytest.param(1_200_000, 0, 0.6, 2, id="exact ratio 2.0 -> 2"),
        pytest.param(1_200_001, 0, 0.6, 3, id="ratio 2.0000017 is real demand, not noise -> 3"),
        pytest.param(2_100_000, 0, 0.3, 7, id="float noise 7.000000000000001 -> 7, not 8"),
        pytest.param(0, 2_100, 0.7, 3, id="float noise 3.0000000000000004 -> 3, not 4"),
        pytest.param(0, 0, 0.6, 1, id="no traffic -> minimum 1"),
        pytest.param(10, 1, 0.6, 1, id="trickle -> minimum 1"),
    ],
)
def test_required_shards(bytes_per_s: float, records_per_s: float, target: float, expected: int) -> None:
    # Given a peak write rate and a target utilisation
    # When we ask how many shards put that peak at the target
    # Then we get the smallest whole count, bound by the larger of bytes and records
    assert required_shards(bytes_per_s, records_per_s, target) == expected


@pytest.mark.parametrize(
    "utilisation",
    [
        pytest.param(0.0, id="zero"),
        pytest.param(-0.1, id="negative"),
        pytest.param(1.01, id="above one"),
        pytest.param(float("nan"), id="nan"),
    ],
)
def test_required_shards_rejects_invalid_utilisation(utilisation: float) -> None:
    with pytest.raises(ValueError, match=r"target_utilisation must be in \(0, 1\], got "):
        required_shards(1_000_000, 1_000, utilisation)


# quarter_step --------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("current", "desired", "expected"),
    [
        pytest.param(4, 5, 5, id="4->5: +25% is exactly 5"),
        pytest.param(4, 6, 6, id="4->6: +50%"),
        pytest.param(4, 7, 7, id="4->7: +75%"),
        pytest.param(4, 8, 8, id="4->8: +100%"),
        pytest.param(10, 11, 13, id="10->11 rounds up to 13 (ceil 12.5)"),
        pytest.param(10, 13, 13, id="10->13 is the 125% step"),
        pytest.param(10, 14, 15, id="10->14 rounds up to 15 (150%)"),
        pytest.param(10, 16, 18, id="10->16 rounds up to 18 (ceil 17.5)"),
        pytest.param(10, 19, 20, id="10->19 rounds up to 20 (200%)"),
        pytest.param(1, 2, 2, id="1->2"),
        pytest.param(3, 4, 4, id="3->4 (ceil 3.75)"),
        pytest.param(100, 101, 125, id="100->101 rounds up to 125"),
        pytest.param(4, 9, 9, id="beyond 2x: desired stands"),
        pytest.param(10, 21, 21, id="beyond 2x: desired stands (10->21)"),
        pytest.param(10, 1_000, 1_000, id="far beyond 2x: desired stands"),
    ],
)
def test_quarter_step(current: int, desired: int, expected: int) -> None:
    assert quarter_step(current, desired) == expected


# scale_up_target -----------------------------------------------------------------------------------
TWO_X = "AWS allows at most 2x per call ({})"
AWS_CAP = "AWS allows at most 10,000 shards per stream"


@pytest.mark.parametrize(
    ("current", "desired", "min_shards", "max_shards", "target", "limited_by"),
    [
        pytest.param(4, 5, 1, 16, 5, (), id="small step within every bound"),
        pytest.param(10, 11, 1, 100, 13, (), id="rounded up to the 25% step"),
        pytest.param(1, 2, 1, 16, 2, (), id="1 -> 2"),
        pytest.param(4, 9, 1, 100, 8, (TWO_X.format(8),), id="desired just beyond 2x -> 2x"),
        pytest.param(4, 20, 1, 100, 8, (TWO_X.format(8),), id="desired far beyond 2x -> 2x"),
        pytest.param(
            6_000,
            15_000,
            1,
            10_000,
            10_000,
            (TWO_X.format(12_000), AWS_CAP),
            id="2x then the 10,000-shard AWS cap",
        ),
        pytest.param(9_000, 9_500, 1, 10_000, 10_000, (), id="25% step trimmed at 10,000 (desired was below)"),
        pytest.param(4, 8, 1, 6, 6, ("policy max_shards is 6",), id="policy max_shards caps"),
        pytest.param(10, 11, 1, 12, 12, (), id="25% step trimmed by max_shards (desired was below)"),
        pytest.param(8, 100, 1, 12, 12, (TWO_X.format(16), "policy max_shards is 12"), id="2x and then max_shards"),
        pytest.param(16, 30, 1, 16, 16, ("policy max_shards is 16",), id="already at max -> no change"),
        pytest.param(20, 30, 1, 16, 20, ("policy max_shards is 16",), id="above max -> no change, no cut"),
        pytest.param(5, 3, 1, 16, 5, (), id="desired below current -> no change"),
        pytest.param(5, 5, 1, 16, 5, (), id="desired equals current -> no change"),
        pytest.param(2, 1, 3, 16, 3, (), id="below min_shards -> lifted to the floor"),
        pytest.param(2, 1, 8, 16, 4, (), id="far below min_shards -> lifted at most 2x"),
        pytest.param(2, 3, 8, 16, 4, (), id="floor beyond 2x with demand -> 2x"),
    ],
)
def test_scale_up_target(
    current: int, desired: int, min_shards: int, max_shards: int, target: int, limited_by: tuple[str, ...]
) -> None:
    # Given the current count, the desired count and the policy's bounds
    # When we compute one call's target
    result = scale_up_target(current, desired, min_shards, max_shards)
    # Then the target and the reasons it was limited are exactly these
    assert (result.current, result.desired, result.target, result.limited_by) == (
        current,
        desired,
        target,
        limited_by,
    )


@pytest.mark.parametrize(
    ("current", "desired", "max_shards", "is_change", "reaches_desired"),
    [
        pytest.param(4, 6, 16, True, True, id="full step"),
        pytest.param(4, 20, 100, True, False, id="cut at 2x"),
        pytest.param(16, 30, 16, False, False, id="at max"),
        pytest.param(5, 3, 16, False, True, id="nothing needed"),
    ],
)
def test_reshard_target_flags(
    current: int, desired: int, max_shards: int, is_change: bool, reaches_desired: bool
) -> None:
    result = scale_up_target(current, desired, 1, max_shards)
    assert (result.is_change, result.reaches_desired) == (is_change, reaches_desired)


@pytest.mark.parametrize("current", [pytest.param(0, id="zero"), pytest.param(-3, id="negative")])
def test_scale_up_target_rejects_current_below_one(current: int) -> None:
    with pytest.raises(ValueError, match=f"current shard count must be at least 1, got {current}"):
        scale_up_target(current, 4, 1, 16)


@given(
    current=st.integers(1, limits.MAX_SHARDS_PER_STREAM),
    desired=st.integers(1, 3 * limits.MAX_SHARDS_PER_STREAM),
    bounds=st.tuples(st.integers(1, limits.MAX_SHARDS_PER_STREAM), st.integers(1, limits.MAX_SHARDS_PER_STREAM)).map(
        sorted
    ),
)
def test_scale_up_target_stays_within_every_limit(current: int, desired: int, bounds: list[int]) -> None:
    # Given any valid current count, desired count and policy bounds min <= max
    min_shards, max_shards = bounds
    # When one call's target is computed
    target = scale_up_target(current, desired, min_shards, max_shards).target
    # Then it never shrinks, never more than doubles, respects AWS's cap and the policy's maximum
    assert current <= target <= limits.MAX_SCALE_UP_FACTOR * current
    assert target <= limits.MAX_SHARDS_PER_STREAM
    assert target <= max(max_shards, current)


# min_scale_down ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("current", "expected"),
    [
        pytest.param(1, 1, id="1 -> 1"),
        pytest.param(2, 1, id="2 -> 1"),
        pytest.param(3, 2, id="3 -> 2 (half, rounded up)"),
        pytest.param(10, 5, id="10 -> 5"),
        pytest.param(11, 6, id="11 -> 6"),
        pytest.param(10_000, 5_000, id="10,000 -> 5,000"),
    ],
)
def test_min_scale_down(current: int, expected: int) -> None:
    assert min_scale_down(current) == expected


def test_limits_keep_a_reserve_below_aws() -> None:
    # The policy's daily budget ceiling is AWS's 10 scalings minus the reserve of 2 for people.
    assert (limits.MAX_SCALINGS_PER_24H, limits.RESHARD_RESERVE, limits.MAX_POLICY_DAILY_BUDGET) == (10, 2, 8)
