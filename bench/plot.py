"""One picture per trace: the offered load (in shards' worth) and each scaler's shards, minute by minute."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only; no display needed

import matplotlib.pyplot as plt

from bench.report import Row, write_capacity_needed
from bench.traces import StandardTrace


def shards_plot(path: Path, trace: StandardTrace, rows: Sequence[Row]) -> Path:
    """Save the trace's picture at `path` (PNG) and return the path."""
    hours = [m / 60 for m in range(len(trace.minutes))]
    load = [write_capacity_needed(row) for row in trace.minutes]
    figure, axes = plt.subplots(figsize=(10, 4.8), dpi=100)
    axes.fill_between(hours, load, color="0.85", step="post", label="offered load (shards' worth)")
    ours_drawn = 0
    for row in rows:
        if not row.shards:
            continue
        # Ours thick (a second row of ours dotted, so that it shows where it lies on the first), references dashed.
        style = "--" if row.kind == "reference" else ":" if row.kind == "ours" and ours_drawn else "-"
        ours_drawn += row.kind == "ours"
        axes.step(
            hours,
            row.shards,
            where="post",
            linewidth=2.4 if row.kind == "ours" else 1.2,
            linestyle=style,
            label=row.scaler,
        )
    axes.set_xlabel("hours into the trace")
    axes.set_ylabel("shards")
    axes.set_title(f"{trace.name}: {trace.description}", fontsize="medium")
    axes.set_ylim(bottom=0)
    axes.grid(alpha=0.3)
    axes.legend(loc="upper left", fontsize="x-small", ncol=2)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path)
    plt.close(figure)
    return path
