"""`make bench`: the default policy against the known autoscalers on the standard traces, then the remediator's own
figures. Progress goes to stderr, the report to stdout, the pictures to build/bench/."""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, TextIO

from remediator.core.evidence import StreamMode
from remediator.core.policy import StreamPolicy
from remediator.core.registry import REGISTRY
from remediator.rehearsal.backtest import backtest
from remediator.rehearsal.simulator import StreamSetup, simulate

from bench import baselines, self_measure
from bench.plot import shards_plot
from bench.report import Goal, Row, goals, lower_bound_row, row_of, trace_table
from bench.traces import StandardTrace, standard_traces

ROOT = Path(__file__).resolve().parents[1]
STREAM = "bench-stream"
SYNTH_STREAMS = (10, 100, 500, 1000)


def default_policy(*, scale_in: bool = False) -> StreamPolicy:
    """The default policy: a name and enforce mode, everything else default. The reshard action's max_shards has no
    default (the policy must say it), so it is set to the ceiling every baseline gets (baselines.MAX_SHARDS)."""
    reshard: dict[str, Any] = {"max_shards": baselines.MAX_SHARDS}
    if scale_in:
        reshard["scale_in"] = True
    return REGISTRY.parse_stream_policy({"name": STREAM, "mode": "enforce", "actions": {"reshard": reshard}})


def _detector(policy: StreamPolicy, name: str) -> Any:
    return getattr(policy.detectors, name)


@dataclass(frozen=True)
class TraceReport:
    trace: StandardTrace
    rows: list[Row]
    lower: Row
    goals: list[Goal]
    picture: Path | None
    not_simulated: list[str]
    # What the opt-in scale-in's under-utilised alarm led to: (minute, outcome, the core's diagnosis).
    scale_in: list[tuple[int, str, str]]


class Progress:
    """One line per step on stderr, with the elapsed time; a backtest's minutes as a percentage."""

    def __init__(self, err: TextIO) -> None:
        self.err = err
        self.started = time.perf_counter()

    def __call__(self, text: str) -> None:
        self.err.write(f"[{time.perf_counter() - self.started:6.1f} s] {text}\n")
        self.err.flush()

    def minutes(self, label: str) -> Callable[[int, int], None]:
        shown = {-1}

        def show(done: int, total: int) -> None:
            decile = done * 10 // max(total, 1)
            if decile not in shown and decile % 5 == 0:
                shown.add(decile)
                self(f"  {label}: {done}/{total} minutes")

        return show


def run_trace(trace: StandardTrace, progress: Progress, out_dir: Path | None) -> TraceReport:
    policy = default_policy()
    lag_threshold = float(_detector(policy, "iterator_age").threshold_ms)
    setup = StreamSetup(shards=trace.initial_shards)
    rows = []
    not_simulated: list[str] = []
    scale_in: list[tuple[int, str, str]] = []
    for label, candidate in (("default policy", policy), ("default + scale-in", default_policy(scale_in=True))):
        progress(f"{trace.name}: {label} (backtest, the real core)")
        result = backtest(candidate, trace.minutes, setup, progress=progress.minutes(label))
        rows.append(row_of(label, "ours", result.simulation, lag_threshold))
        not_simulated = list(result.not_simulated)
        scale_in = [
            (d.index, d.status, d.detail)
            for d in result.deliveries
            if d.kind == "alarm" and d.alarm.endswith("/under-utilised")
        ]
    progress(f"{trace.name}: baselines")
    rows.append(row_of("no remediation", "reference", simulate(trace.minutes, setup), lag_threshold))
    autoscalers = []
    for scaler in baselines.scalers():
        autoscalers.append(row_of(scaler.name, "autoscaler", simulate(trace.minutes, setup, scaler), lag_threshold))
    rows += autoscalers
    on_demand = row_of(
        "on-demand mode", "reference", simulate(trace.minutes, replace(setup, mode=StreamMode.ON_DEMAND)), lag_threshold
    )
    rows.append(on_demand)
    lower = lower_bound_row(trace.minutes, baselines.lower_bound(trace.minutes))
    verdicts = goals(
        rows[0],
        autoscalers,
        on_demand,
        lower,
        alarm_delay_minutes=_detector(policy, "write_throttling").datapoints_to_alarm,
        reshard_minutes=setup.reshard_minutes,
        target_utilisation=policy.capacity.target_utilisation,
    )
    picture = None
    if out_dir is not None:
        picture = shards_plot(out_dir / f"{trace.name}.png", trace, [*rows, lower])
    return TraceReport(trace, rows, lower, verdicts, picture, not_simulated, scale_in)


def print_trace(report: TraceReport, out: TextIO) -> None:
    trace = report.trace
    out.write(f"\n== {trace.name}: {trace.description} ({len(trace.minutes)} minutes)\n\n")
    out.write(trace_table(report.rows, report.lower) + "\n\n")
    out.write("Default policy's goals:\n")
    for goal in report.goals:
        out.write(f"  {goal.line()}\n")
    for minute, status, detail in report.scale_in:
        out.write(f"  default + scale-in: the under-utilised alarm fired at minute {minute}: {status}: {detail}\n")
    if report.picture is not None:
        out.write(f"Plot: {report.picture}\n")


def print_legend(out: TextIO, policy: StreamPolicy) -> None:
    age = _detector(policy, "iterator_age").threshold_ms
    out.write(
        "How to read the tables: one per trace, one row per scaler, the same simulated stream (remediator.rehearsal."
        "simulator) for all.\n"
        "  throttled min: minutes with any write throttled; lag min: minutes with iterator age at or above "
        f"{age / 1000:.0f} s (the default policy's iterator-age threshold);\n"
        "  records lost: records that expired unread (retention 24 h); shard-hours and x lower bound: what the shards "
        "cost in time, against exactly the shards needed each minute;\n"
        "  cost USD: core/pricing.py's us-east-1 list prices (UNCONFIRMED there); scaling calls: UpdateShardCount "
        "calls AWS accepted. '-': does not apply (on-demand has no shards to pay for).\n"
        "  default policy: name + enforce, every other setting default (scale-in is opt-in, off); "
        "default + scale-in: the same with actions.reshard.scale_in: true, because the default never removes the "
        "shards of a peak, and the shard-hours goal cannot be judged fairly without the opt-in that would.\n"
    )


def summary(reports: Sequence[TraceReport], out: TextIO) -> None:
    met = sum(g.met for r in reports for g in r.goals)
    total = sum(len(r.goals) for r in reports)
    out.write(f"\n== Goals of the default policy: {met} of {total} met\n")
    for report in reports:
        missed = [g.name for g in report.goals if not g.met]
        out.write(f"  {report.trace.name}: {'all met' if not missed else 'NOT met: ' + '; '.join(missed)}\n")
    skipped = sorted({name for r in reports for name in r.not_simulated})
    if skipped:
        out.write(f"  alarms the model does not simulate (they never fire in the backtest): {', '.join(skipped)}\n")


def parse(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    names = [t.name for t in standard_traces()]
    parser.add_argument("--traces", nargs="*", choices=names, default=names, help="traces to run (default: all)")
    parser.add_argument("--no-traces", action="store_true", help="skip the traces: only measure the remediator")
    parser.add_argument("--no-self", action="store_true", help="skip measuring the remediator itself")
    parser.add_argument(
        "--synth-streams",
        type=lambda text: [int(n) for n in text.split(",") if n],
        default=list(SYNTH_STREAMS),
        help="stream counts to synthesize, comma-separated (default: 10,100,500,1000; empty: none)",
    )
    parser.add_argument("--invocations", type=int, default=30, help="warm handler invocations (default: 30)")
    parser.add_argument("--import-runs", type=int, default=7, help="fresh interpreters for the import (default: 7)")
    parser.add_argument("--out", type=Path, default=ROOT / "build" / "bench", help="where the plots go")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None, out: TextIO = sys.stdout, err: TextIO = sys.stderr) -> int:
    args = parse(argv)
    progress = Progress(err)
    out.write(
        f"Kinesis Remediator bench on {platform.system()} {platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}, load average {os.getloadavg()[0]:.1f}\n\n"
    )
    reports = []
    if not args.no_traces:
        print_legend(out, default_policy())
        for trace in [t for t in standard_traces() if t.name in args.traces]:
            report = run_trace(trace, progress, args.out)
            print_trace(report, out)
            out.flush()
            reports.append(report)
        summary(reports, out)
    if not args.no_self:
        progress("the remediator itself: cold import")
        imports = self_measure.cold_import(args.import_runs, progress)
        progress("the remediator itself: the handler against moto's server")
        handler = self_measure.handler_against_emulator(args.invocations, progress)
        synths = []
        for streams in args.synth_streams:
            progress(f"cdk synth of {streams:,} streams")
            synths.append(self_measure.synth(streams))
            progress(f"  {synths[-1].seconds:.1f} s{': failed' if synths[-1].error else ''}")
        self_measure.report(out, imports=imports, handler=handler, synths=synths)
    return 0
