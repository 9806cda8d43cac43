"""The demo's picture: write utilisation per minute against the stream's capacity, before and after."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only; no display needed

import matplotlib.pyplot as plt
from remediator.core import limits


def utilisation_plot(
    path: Path,
    *,
    stream: str,
    bytes_per_minute: list[float],
    shards_before: int,
    shards_after: int,
    saturated_at: float,
    target: float,
) -> Path:
    minutes = list(range(-len(bytes_per_minute), 0))
    per_second = [value / 60 for value in bytes_per_minute]

    def share(shards: int) -> list[float]:
        return [100 * rate / (shards * limits.SHARD_WRITE_BYTES_PER_SECOND) for rate in per_second]

    figure, axes = plt.subplots(figsize=(8, 4.2), dpi=110)
    axes.plot(minutes, share(shards_before), marker="o", label=f"with {shards_before} shards (before)")
    axes.plot(minutes, share(shards_after), marker="o", label=f"with {shards_after} shards (after the reshard)")
    axes.axhline(100 * saturated_at, color="tab:red", linestyle="--", label=f"saturated from {saturated_at:.0%}")
    axes.axhline(100 * target, color="tab:green", linestyle=":", label=f"reshard target {target:.0%}")
    axes.set_ylim(0, 110)
    axes.set_xlabel("minutes before the alarm")
    axes.set_ylabel("write utilisation (% of capacity)")
    axes.set_title(f"{stream}: the same traffic against {shards_before} and {shards_after} shards")
    axes.legend(loc="upper left", fontsize="small")
    axes.grid(alpha=0.3)
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)
    return path
