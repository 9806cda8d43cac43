"""The bench's table and its verdicts: pure functions of the figures, so that they are tested without a run.

A Row is one scaler on one trace. The goals of the default policy (issue 10, item 4), per trace:
- fewer throttled minutes and fewer lag minutes than EACH autoscaler baseline (where the baseline has none
  either, 0 = 0 counts as met: there is nothing to beat);
- shard-hours within 1.3x the lower bound;
- at most half of on-demand mode's cost (its throttled minutes printed beside on-demand's).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

from remediator.core import limits, pricing
from remediator.core.evidence import StreamMode
from remediator.rehearsal.simulator import SimulationResult
from remediator.rehearsal.trace import TraceMinute

Kind = Literal["ours", "autoscaler", "reference"]
SHARD_HOURS_GOAL = 1.3
ON_DEMAND_COST_GOAL = 0.5


@dataclass(frozen=True)
class Row:
    """One scaler's figures on one trace. None where a figure does not apply (shown as "-")."""

    scaler: str
    kind: Kind
    throttled_minutes: int
    lag_minutes: int | None
    records_lost: float
    shard_hours: float | None
    cost_usd: float
    scaling_calls: int | None
    # Minute indexes of the accepted scaling calls, and the shard count each minute (for the reasons and the plot).
    scaling_minutes: tuple[int, ...] = ()
    throttled_at: tuple[int, ...] = field(default=(), repr=False)
    shards: tuple[int, ...] = field(default=(), repr=False)


@dataclass(frozen=True)
class Goal:
    name: str
    met: bool
    figures: str
    why: str = ""

    def line(self) -> str:
        text = f"{'met' if self.met else 'NOT met'}: {self.name}: {self.figures}"
        return text + (f"\n      why: {self.why}" if not self.met and self.why else "")


def row_of(name: str, kind: Kind, result: SimulationResult, lag_threshold_ms: float) -> Row:
    """A simulation's figures as a row; an on-demand stream has no shard-hours nor scaling calls of its own."""
    on_demand = result.setup.mode == StreamMode.ON_DEMAND
    return Row(
        scaler=name,
        kind=kind,
        throttled_minutes=result.throttled_minutes,
        lag_minutes=result.lag_minutes(lag_threshold_ms),
        records_lost=result.records_lost,
        shard_hours=None if on_demand else result.shard_hours,
        cost_usd=result.cost_usd,
        scaling_calls=None if on_demand else result.scaling_calls,
        scaling_minutes=tuple(c.index for c in result.actions if c.error_code is None),
        throttled_at=tuple(m.index for m in result.minutes if m.write_throttled_records > 0),
        shards=tuple(result.shards_per_minute),
    )


def lower_bound_row(trace: Sequence[TraceMinute], shards: Sequence[int]) -> Row:
    """The lower bound's figures: nothing throttled, lost or behind; its shard-hours and what they cost (shard-hours
    and PUT payload units of 25 KB, as the simulator bills a provisioned stream)."""
    shard_hours = sum(shards) / 60
    units = 0.0
    for row in trace:
        size = row.incoming_bytes / row.incoming_records if row.incoming_records else 0.0
        units += row.incoming_records * max(math.ceil(size / pricing.PUT_PAYLOAD_UNIT_BYTES), 1)
    cost = shard_hours * pricing.PRICES.shard_hour + units / 1e6 * pricing.PRICES.put_payload_units_per_million
    return Row("lower bound", "reference", 0, None, 0.0, shard_hours, cost, None, shards=tuple(shards))


def _count(value: float) -> str:
    return f"{value:,.0f}"


def cells(row: Row, lower: Row) -> list[str]:
    """The table's cells for a row: scaler, throttled, lag, lost, shard-hours, x lower bound, cost, calls."""
    ratio = "-"
    if row.shard_hours is not None and lower.shard_hours:
        ratio = f"{row.shard_hours / lower.shard_hours:.2f}"
    return [
        row.scaler,
        str(row.throttled_minutes),
        "-" if row.lag_minutes is None else str(row.lag_minutes),
        _count(row.records_lost),
        "-" if row.shard_hours is None else f"{row.shard_hours:,.1f}",
        ratio,
        f"{row.cost_usd:,.2f}",
        "-" if row.scaling_calls is None else str(row.scaling_calls),
    ]


HEADERS = [
    "scaler",
    "throttled min",
    "lag min",
    "records lost",
    "shard-hours",
    "x lower bound",
    "cost USD",
    "scaling calls",
]


def render_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Aligned columns: the first left-aligned, the others right-aligned (they are figures)."""
    table = [list(headers), *[list(r) for r in rows]]
    widths = [max(len(r[i]) for r in table) for i in range(len(headers))]

    def line(row: Sequence[str]) -> str:
        parts = [row[0].ljust(widths[0])] + [c.rjust(w) for c, w in zip(row[1:], widths[1:], strict=True)]
        return "  ".join(parts).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([line(table[0]), rule, *[line(r) for r in table[1:]]])


def trace_table(rows: Sequence[Row], lower: Row) -> str:
    return render_table(HEADERS, [cells(r, lower) for r in [*rows, lower]])


def _first(minutes: Sequence[int]) -> str:
    return f"minute {minutes[0]}" if minutes else "never"


def _minutes(minutes: Sequence[int]) -> str:
    return ", ".join(str(m) for m in minutes) if minutes else "none"


def last_change(shards: Sequence[int]) -> int | None:
    """The first minute with the shard count the stream ends with, if it ever changed."""
    changes = [i for i in range(1, len(shards)) if shards[i] != shards[i - 1]]
    return changes[-1] if changes else None


def throttled_why(ours: Row, other: Row, alarm_delay_minutes: int, reshard_minutes: int) -> str:
    """Why we throttled more than `other`, from the figures: who scaled when, and what throttled after our last
    reshard took effect."""
    first = ours.throttled_at[0] if ours.throttled_at else None
    text = (
        f"throttled minutes: ours from {_first(ours.throttled_at)}, our reshards at minutes "
        f"{_minutes(ours.scaling_minutes)}; {other.scaler} scaled at minutes {_minutes(other.scaling_minutes)}"
    )
    if other.scaling_minutes and (first is None or other.scaling_minutes[0] < first):
        text += (
            f". {other.scaler} scales on utilisation, before any write is throttled; the default policy scales on "
            f"throttling: its alarm needs {alarm_delay_minutes} breaching minutes, and the new shards take writes "
            f"{reshard_minutes} minutes after the call"
        )
    settled = last_change(ours.shards)
    if settled is not None:
        after = sum(1 for m in ours.throttled_at if m >= settled)
        if after:
            text += (
                f". {after} throttled minutes came after our last reshard took effect (minute {settled}, "
                f"{ours.shards[settled]} shards): its target is sized from the writes AWS accepted, which throttling "
                "caps at the old capacity, and an alarm that stays in ALARM brings no new trigger"
            )
    return text


def _beats(ours: int, theirs: int) -> bool:
    return ours < theirs or ours == theirs == 0


def shard_hours_why(ours: Row, lower: Row, target_utilisation: float) -> str:
    """Why our shard-hours are above the lower bound's, from the shard counts."""
    peak, last = max(lower.shards, default=0), (lower.shards[-1] if lower.shards else 0)
    if not ours.scaling_minutes:
        return (
            f"no reshard: the stream kept the {ours.shards[0] if ours.shards else 0} shards it started with, where "
            f"the lower bound needs {peak} at the peak and {last} at the end; the default policy adds shards when "
            "writes are throttled and removes them only with scale-in (opt-in)"
        )
    return (
        f"peak {max(ours.shards, default=0)} shards vs the lower bound's {peak}, last minute "
        f"{ours.shards[-1] if ours.shards else 0} vs {last}: a reshard aims at {target_utilisation:.0%} utilisation at "
        f"the observed peak (headroom of {1 / target_utilisation:.2f}x over the lower bound's 100 %), in steps of at "
        "most 2x per call, and without scale-in (opt-in) the shards of a peak stay after it"
    )


def goals(
    ours: Row,
    autoscalers: Sequence[Row],
    on_demand: Row,
    lower: Row,
    *,
    alarm_delay_minutes: int,
    reshard_minutes: int,
    target_utilisation: float,
) -> list[Goal]:
    """The default policy's goals on one trace, each with its figures and, when not met, why."""
    found = []
    for other in autoscalers:
        throttled_ok = _beats(ours.throttled_minutes, other.throttled_minutes)
        lag_ok = _beats(ours.lag_minutes or 0, other.lag_minutes or 0)
        why = []
        if not throttled_ok:
            why.append(throttled_why(ours, other, alarm_delay_minutes, reshard_minutes))
        if not lag_ok:
            why.append(
                "lag minutes: the consumers' own rate bounds how fast a backlog drains; more shards do not read "
                "faster than the consumers process"
                if (ours.lag_minutes or 0) and ours.throttled_minutes == 0
                else "lag minutes: records throttled or waiting while the stream reshards reach consumers late"
            )
        found.append(
            Goal(
                f"fewer throttled and lag minutes than {other.scaler}",
                throttled_ok and lag_ok,
                f"throttled {ours.throttled_minutes} vs {other.throttled_minutes}, "
                f"lag {ours.lag_minutes or 0} vs {other.lag_minutes or 0}",
                "; ".join(why),
            )
        )
    ratio = (ours.shard_hours or 0.0) / lower.shard_hours if lower.shard_hours else math.inf
    found.append(
        Goal(
            f"shard-hours within {SHARD_HOURS_GOAL}x the lower bound",
            ratio <= SHARD_HOURS_GOAL,
            f"{ours.shard_hours or 0:,.1f} vs {lower.shard_hours or 0:,.1f} = {ratio:.2f}x",
            shard_hours_why(ours, lower, target_utilisation),
        )
    )
    half = ON_DEMAND_COST_GOAL * on_demand.cost_usd
    found.append(
        Goal(
            "at most half of on-demand's cost",
            ours.cost_usd <= half,
            f"${ours.cost_usd:,.2f} vs on-demand ${on_demand.cost_usd:,.2f} (half: ${half:,.2f}); throttled minutes "
            f"{ours.throttled_minutes} vs on-demand's {on_demand.throttled_minutes}",
            "on-demand bills a stream-hour and each GB written and read; provisioned shards cost the same whether "
            "used or not, so a stream kept well below its capacity (headroom, or the peak's shards kept after it) "
            "loses the advantage",
        )
    )
    return found


def write_capacity_needed(row: TraceMinute) -> float:
    """The minute's offered load in shards' worth (fractional): the larger of bytes and records."""
    return max(
        row.incoming_bytes / 60 / limits.SHARD_WRITE_BYTES_PER_SECOND,
        row.incoming_records / 60 / limits.SHARD_WRITE_RECORDS_PER_SECOND,
    )
