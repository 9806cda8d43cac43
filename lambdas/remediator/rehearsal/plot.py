"""The backtest's picture (`backtest --plot PNG`): load against capacity, iterator age against the policy's threshold,
and the actions, minute by minute (matplotlib, Agg backend, as demo/plot.py)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import matplotlib

matplotlib.use("Agg")  # files only; no display needed

import matplotlib.pyplot as plt

if TYPE_CHECKING:
    from remediator.rehearsal.backtest import BacktestResult

MB = 1_000_000
STATUS_COLOURS = {"applied": "tab:green", "dry-run": "tab:blue", "blocked": "tab:orange"}


def backtest_plot(path: Path, result: BacktestResult) -> Path:
    minutes = result.simulation.minutes
    x = [m.index for m in minutes]
    figure, (load, age) = plt.subplots(2, 1, figsize=(10, 6.5), dpi=110, sharex=True)
    load.plot(x, [m.offered_bytes / 60 / MB for m in minutes], color="tab:grey", label="offered (MB/s)")
    load.plot(x, [m.incoming_bytes / 60 / MB for m in minutes], color="tab:blue", label="written (MB/s)")
    load.plot(
        x,
        [m.write_capacity_bytes / 60 / MB for m in minutes],
        color="tab:red",
        linestyle="--",
        drawstyle="steps-post",
        label="write capacity (MB/s)",
    )
    throttled = [m.index for m in minutes if m.write_throttled_records > 0]
    if throttled:
        top = max(m.offered_bytes / 60 / MB for m in minutes) or 1.0
        load.scatter(throttled, [top * 1.02] * len(throttled), marker="|", color="tab:red", label="throttled minute")
    load.set_ylabel("write load")
    load.set_title(f"{result.policy}: backtest of {len(minutes)} minutes")
    ages = [(m.iterator_age_ms or 0.0) / 1000 for m in minutes]
    age.plot(x, ages, color="tab:purple", label="iterator age (s)")
    age.axhline(result.lag_threshold_ms / 1000, color="tab:red", linestyle="--", label="policy threshold")
    age.set_ylabel("iterator age (s)")
    age.set_xlabel(f"minutes from {minutes[0].timestamp:%Y-%m-%d %H:%M} UTC" if minutes else "minutes")
    shown: set[str] = set()
    for action in result.actions:
        colour = STATUS_COLOURS.get(action.status, "black")
        label = f"{action.action}: {action.status}"
        for axes in (load, age):
            axes.axvline(
                action.index,
                color=colour,
                alpha=0.6,
                linestyle=":",
                label=label if axes is load and label not in shown else None,
            )
        shown.add(label)
    for axes in (load, age):
        axes.grid(alpha=0.3)
        axes.legend(loc="upper left", fontsize="small")
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)
    return path
