"""Reshard target maths: how many shards a stream needs and how far one UpdateShardCount call may go."""

from __future__ import annotations

import math
from dataclasses import dataclass

from remediator.core import limits
from remediator.core.pricing import HOURS_PER_MONTH


def required_shards(peak_bytes_per_second: float, peak_records_per_second: float, target_utilisation: float) -> int:
    """Shards needed so that the peak write rate sits at `target_utilisation` of capacity."""
    if not 0 < target_utilisation <= 1:
        raise ValueError(f"target_utilisation must be in (0, 1], got {target_utilisation}")
    by_bytes = peak_bytes_per_second / limits.SHARD_WRITE_BYTES_PER_SECOND
    by_records = peak_records_per_second / limits.SHARD_WRITE_RECORDS_PER_SECOND
    # Round the ratio first so that float noise (2.0000000004) does not cost a whole shard.
    return max(1, math.ceil(round(max(by_bytes, by_records) / target_utilisation, 6)))


def peak_share(peak_bytes_per_second: float, peak_records_per_second: float, shards: int) -> float:
    """The share of `shards` shards' write capacity the peak write rate fills (the larger of bytes and records):
    what a reason states for the count it names, not the target it aimed at."""
    by_bytes = peak_bytes_per_second / limits.SHARD_WRITE_BYTES_PER_SECOND
    by_records = peak_records_per_second / limits.SHARD_WRITE_RECORDS_PER_SECOND
    return max(by_bytes, by_records) / max(shards, 1)


def quarter_step(current: int, desired: int) -> int:
    """Round a scale-up to the next multiple of 25 % of the current count.

    AWS says targets that are 25/50/75/100 % above the current count finish faster; others
    "might take longer". Beyond 2x there is no such step, so the desired count stands.
    """
    if desired <= current:
        return current
    for quarters in (5, 6, 7, 8):
        candidate = math.ceil(current * quarters / 4)
        if candidate >= desired:
            return candidate
    return desired


@dataclass(frozen=True)
class ReshardTarget:
    current: int
    desired: int
    target: int
    limited_by: tuple[str, ...]

    @property
    def is_change(self) -> bool:
        return self.target != self.current

    @property
    def reaches_desired(self) -> bool:
        return self.target >= self.desired


def scale_up_target(current: int, desired: int, min_shards: int, max_shards: int) -> ReshardTarget:
    """The shard count for one scale-up call, within AWS's per-call limits and the policy's bounds."""
    if current < 1:
        raise ValueError(f"current shard count must be at least 1, got {current}")
    limited_by: list[str] = []
    target = quarter_step(current, desired) if desired > current else current
    aws_step = current * limits.MAX_SCALE_UP_FACTOR
    if target > aws_step:
        target = aws_step
        if desired > aws_step:
            limited_by.append(f"AWS allows at most {limits.MAX_SCALE_UP_FACTOR}x per call ({aws_step})")
    # A cap is named only when the desired count is above it, not when it merely trims the 25 % rounding.
    if target > limits.MAX_SHARDS_PER_STREAM:
        target = limits.MAX_SHARDS_PER_STREAM
        if desired > limits.MAX_SHARDS_PER_STREAM:
            limited_by.append(f"AWS allows at most {limits.MAX_SHARDS_PER_STREAM:,} shards per stream")
    if target > max_shards:
        target = max(max_shards, current)
        if desired > max_shards:
            limited_by.append(f"policy max_shards is {max_shards}")
    # A stream below the policy's floor is lifted towards it, never past one call's reach.
    target = max(target, min(min_shards, aws_step, max_shards))
    return ReshardTarget(current=current, desired=desired, target=target, limited_by=tuple(limited_by))


def min_scale_down(current: int) -> int:
    """The smallest count one UpdateShardCount call may reach from `current` (AWS: at least half)."""
    return math.ceil(current / 2)


def quarter_step_down(current: int, desired: int) -> int:
    """Round a scale-down up to the next multiple of 25 % of the current count (50 % or 75 %), when that still
    removes a shard: AWS says such targets finish faster. Rounding up keeps more shards, never fewer."""
    if desired >= current:
        return current
    for quarters in (2, 3):
        candidate = math.ceil(current * quarters / 4)
        if desired <= candidate < current:
            return candidate
    return desired


def scale_down_target(current: int, desired: int, min_shards: int) -> ReshardTarget:
    """The shard count for one scale-down call: never below half the current count (AWS), never below the
    policy's floor (a stream at or below it stays where it is). A stream above the policy's ceiling comes down
    towards it like any other."""
    if current < 1:
        raise ValueError(f"current shard count must be at least 1, got {current}")
    if desired >= current:
        raise ValueError(f"a scale-down needs fewer shards than the current {current}, got {desired}")
    limited_by: list[str] = []
    floor = min_scale_down(current)
    target = max(quarter_step_down(current, max(desired, 1)), floor)
    if desired < floor:
        limited_by.append(f"AWS allows at most halving per call ({floor})")
    if target < min_shards:
        # Never below the floor; a stream already at or below it stays where it is.
        target = min(min_shards, current)
        limited_by.append(f"policy min_shards is {min_shards}")
    return ReshardTarget(current=current, desired=desired, target=target, limited_by=tuple(limited_by))


def shard_hours_per_month(shards: int) -> int:
    """Shard-hours a month for `shards` shards (AWS's pricing pages count a month as 730 hours)."""
    return shards * HOURS_PER_MONTH
