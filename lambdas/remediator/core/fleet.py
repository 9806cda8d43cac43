"""Fleet alarms: one CloudWatch Metrics Insights alarm watches many streams and alarms per stream.

A stream whose policy says `alarms: fleet` gets no alarm of its own for a symptom whose alarm one Metrics Insights
query can express; instead, the streams with the same thresholds share a "multi time series" alarm whose query
selects exactly them and groups by StreamName. Each stream is then a contributor of that alarm with its own state,
and CloudWatch sends a "CloudWatch Alarm Contributor State Change" event per contributor (core.alarm turns it into
the same trigger a stream's own alarm makes).

Names. A stream's alarm is `<prefix><stream>/<symptom>[/<qualifier>]`. A fleet alarm is
`<prefix>fleet~<group>.<n>/<symptom>[/<qualifier>]`: `~` is in no stream name, so the two forms never collide;
`<group>` is a digest of the thresholds the streams share (symptom, qualifier, metric, statistic, period,
threshold, comparison, M of N, missing data), so a name depends on what the alarm checks, never on the order of
the policies; `<n>` numbers the alarms a large group is split into. One stream's unit of work under a fleet
alarm (its trigger's alarm name in audit rows, idempotency keys and follow-through schedules) is
`<fleet alarm name>[<stream>]`.

AWS facts this relies on (sources in the README's "Fleet alarms" section):
- the Metrics Insights syntax (SELECT FUNCTION(metric) FROM SCHEMA(namespace, StreamName) WHERE ... GROUP BY
  StreamName ORDER BY FUNCTION() DESC); FUNCTION is AVG, COUNT, MAX, MIN or SUM; SCHEMA(ns, StreamName) matches
  only metrics with exactly that one dimension, so each stream is one time series and one metric analysed;
- UNCONFIRMED: `OR` between WHERE conditions. AWS's query-language page lists `=`, `!=` and `AND`; the Amazon
  Managed Grafana guide's Metrics Insights syntax adds `OR` and parentheses. `WHERE_JOIN` is the one place
  that spells it;
- a query (MetricDataQuery.Expression) is at most 2,048 characters (botocore's model);
- a multi-time-series alarm reports at most 100 contributors in ALARM, evaluates only the last 3 hours, has
  standard resolution only (60 s), and an account has 200 Metrics Insights alarms per region by default.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from remediator.core.deployment import ALARM_NAME_MAX_LENGTH, ALARM_NAME_SEPARATOR
from remediator.core.metrics import KINESIS_NAMESPACE, Comparison, Metric, MissingData
from remediator.core.policy import FLEET, StreamPolicy
from remediator.core.pricing import monthly_alarm_cost
from remediator.core.registry import REGISTRY

if TYPE_CHECKING:
    from remediator.core.symptoms.base import AlarmSpec

SEP: Final = ALARM_NAME_SEPARATOR
FLEET_MARK: Final = "fleet~"
GROUP_DIGEST_LENGTH: Final = 10
QUALIFIER_DIGEST_LENGTH: Final = 12
STREAM_DIMENSION: Final = "StreamName"
STREAM_NAME_MAX_LENGTH: Final = 128
# A fleet alarm's name leaves room for "[<stream>]" within CloudWatch's 255 characters (a unit of work's name).
FLEET_NAME_MAX_LENGTH: Final = ALARM_NAME_MAX_LENGTH - STREAM_NAME_MAX_LENGTH - 2

CONTRIBUTOR_DETAIL_TYPE: Final = "CloudWatch Alarm Contributor State Change"
QUERY_MAX_LENGTH: Final = 2048  # botocore: MetricDataQuery.Expression, max 2048
# CloudWatch reports at most 100 contributors in ALARM per alarm: with at most 100 streams, none goes unreported.
STREAMS_PER_ALARM_MAX: Final = 100
METRICS_INSIGHTS_ALARMS_PER_REGION: Final = 200  # default quota
EVALUATION_WINDOW_MAX_SECONDS: Final = 3 * 3600  # only the last 3 hours are evaluated
QUERY_FUNCTIONS: Final = {"Sum": "SUM", "Maximum": "MAX", "Minimum": "MIN", "Average": "AVG", "SampleCount": "COUNT"}
WHERE_JOIN: Final = " OR "  # UNCONFIRMED (module docstring)
QUERY_ID: Final = "streams"


def why_not_fleet(spec: AlarmSpec, stream: str) -> str:
    """Why this alarm of `stream` cannot be a fleet alarm, or '' when one Metrics Insights query expresses it."""
    metric = spec.metric
    if not isinstance(metric, Metric):
        return "its metric math expression is not one Metrics Insights query"
    if metric.namespace != KINESIS_NAMESPACE:
        return f"its metric is in {metric.namespace}, not in {KINESIS_NAMESPACE} per stream"
    if metric.dimensions != ((STREAM_DIMENSION, stream),):
        dimensions = ", ".join(name for name, _ in metric.dimensions) or "none"
        return f"its metric has the dimensions {dimensions}, not {STREAM_DIMENSION} alone"
    if metric.statistic not in QUERY_FUNCTIONS:
        return f"statistic {metric.statistic} has no Metrics Insights function"
    if metric.period_seconds % 60:
        return f"period {metric.period_seconds} s: Metrics Insights alarms evaluate whole minutes only"
    if metric.period_seconds * spec.evaluation_periods > EVALUATION_WINDOW_MAX_SECONDS:
        return "it looks back more than the 3 hours a Metrics Insights alarm evaluates"
    return ""


@dataclass(frozen=True)
class Thresholds:
    """What a fleet alarm checks: the streams that share all of it share one alarm (or a few, when many)."""

    symptom: str
    qualifier: str
    namespace: str
    metric: str
    statistic: str
    period_seconds: int
    threshold: float
    comparison: Comparison
    evaluation_periods: int
    datapoints_to_alarm: int
    missing_data: MissingData
    description: str

    @classmethod
    def of(cls, symptom: str, spec: AlarmSpec) -> Thresholds:
        metric = spec.metric
        assert isinstance(metric, Metric)  # why_not_fleet(spec) == '' first
        return cls(
            symptom=symptom,
            qualifier=spec.qualifier,
            namespace=metric.namespace,
            metric=metric.name,
            statistic=metric.statistic,
            period_seconds=metric.period_seconds,
            threshold=float(spec.threshold),
            comparison=spec.comparison,
            evaluation_periods=spec.evaluation_periods,
            datapoints_to_alarm=spec.datapoints_to_alarm,
            missing_data=spec.missing_data,
            description=spec.description,
        )

    @property
    def group(self) -> str:
        """A digest of everything the alarm checks (not its description): the group's name, stable across syntheses."""
        text = "|".join(
            str(part)
            for part in (
                self.symptom,
                self.qualifier,
                self.namespace,
                self.metric,
                self.statistic,
                self.period_seconds,
                repr(self.threshold),
                self.comparison.value,
                self.evaluation_periods,
                self.datapoints_to_alarm,
                self.missing_data.value,
            )
        )
        return hashlib.sha256(text.encode()).hexdigest()[:GROUP_DIGEST_LENGTH]


def _specs(policy: StreamPolicy) -> Iterable[tuple[str, AlarmSpec]]:
    for key, symptom in REGISTRY.symptoms.items():
        detector = symptom.detector(policy)
        if detector.enabled:
            for spec in symptom.alarms(policy, detector):
                yield key, spec


MEMBER_STREAM: Final = (
    "the stream is in another account or region (a member's): fleet alarms are made in the hub's own account and "
    "region only"
)


def hub_local(policy: StreamPolicy) -> bool:
    """A stream in the hub's own account and region (issue 11.4's policies leave both out for those)."""
    return getattr(policy, "account", None) is None and getattr(policy, "region", None) is None


def fleet_thresholds(policy: StreamPolicy) -> dict[tuple[str, str], Thresholds]:
    """(symptom, qualifier) -> thresholds, for each alarm of a fleet policy that a fleet alarm carries ({} when the
    policy keeps per-stream alarms, or is a member's stream)."""
    if policy.alarms != FLEET or not hub_local(policy):
        return {}
    return {
        (key, spec.qualifier): Thresholds.of(key, spec)
        for key, spec in _specs(policy)
        if not why_not_fleet(spec, policy.name)
    }


def covered(policy: StreamPolicy, symptom: str, spec: AlarmSpec) -> bool:
    """Whether this alarm of the stream is carried by a fleet alarm (so the stream gets no alarm of its own)."""
    return policy.alarms == FLEET and hub_local(policy) and not why_not_fleet(spec, policy.name)


def per_stream_only(policy: StreamPolicy) -> list[tuple[str, str, str]]:
    """(symptom, qualifier, why) for each alarm of a fleet policy that stays a per-stream alarm."""
    if policy.alarms != FLEET:
        return []
    if not hub_local(policy):
        return [(key, spec.qualifier, MEMBER_STREAM) for key, spec in _specs(policy)]
    return [(key, spec.qualifier, why) for key, spec in _specs(policy) if (why := why_not_fleet(spec, policy.name))]


# --- names -------------------------------------------------------------------------------------------------------


def _qualifier(text: str, room: int) -> str:
    if SEP in text:
        raise ValueError(f"alarm qualifier '{text}' must not contain '{SEP}'")
    if len(text) <= room:
        return text
    return hashlib.sha256(text.encode()).hexdigest()[:QUALIFIER_DIGEST_LENGTH]


def fleet_alarm_name(prefix: str, thresholds: Thresholds, index: int) -> str:
    """`<prefix>fleet~<group>.<index>/<symptom>[/<qualifier>]`."""
    if SEP in prefix:
        raise ValueError(f"alarm prefix '{prefix}' must not contain '{SEP}'")
    if index < 0:
        raise ValueError(f"fleet alarm index {index} is negative")
    name = f"{prefix}{FLEET_MARK}{thresholds.group}.{index}{SEP}{thresholds.symptom}"
    if thresholds.qualifier:
        name += SEP + _qualifier(thresholds.qualifier, FLEET_NAME_MAX_LENGTH - len(name) - 1)
    if len(name) > FLEET_NAME_MAX_LENGTH:
        raise ValueError(
            f"fleet alarm name '{name}' is longer than {FLEET_NAME_MAX_LENGTH} characters (a shorter alarm prefix?)"
        )
    return name


@dataclass(frozen=True)
class FleetName:
    """A fleet alarm's name, parsed: its group, its number within the group, the symptom and the qualifier as
    spelled in the name (a digest when the qualifier was too long)."""

    alarm: str
    group: str
    index: int
    symptom: str
    qualifier: str


_GROUP = re.compile(rf"^{re.escape(FLEET_MARK)}([0-9a-f]{{{GROUP_DIGEST_LENGTH}}})\.(0|[1-9][0-9]{{0,3}})$")


def is_fleet_name(alarm: str, prefix: str) -> bool:
    return alarm.startswith(prefix + FLEET_MARK)


def parse_fleet_name(alarm: str, prefix: str) -> FleetName | str:
    """The parts of one of our fleet alarms' names, or why the name is not one."""
    if not is_fleet_name(alarm, prefix):
        return f"alarm '{alarm[:80]}' does not start with '{prefix}{FLEET_MARK}'"
    if len(alarm) > FLEET_NAME_MAX_LENGTH:
        return f"fleet alarm name of {len(alarm)} characters, longer than {FLEET_NAME_MAX_LENGTH}"
    parts = alarm[len(prefix) :].split(SEP)
    if len(parts) not in (2, 3) or not all(parts):
        return f"alarm '{alarm}' is not named <prefix>{FLEET_MARK}<group>.<n>{SEP}<symptom>[{SEP}<qualifier>]"
    matched = _GROUP.fullmatch(parts[0])
    if matched is None:
        return f"alarm '{alarm}' names no fleet group ('{parts[0]}')"
    if parts[1] not in REGISTRY.symptoms:
        return f"alarm '{alarm}' names no known symptom ('{parts[1]}')"
    return FleetName(
        alarm=alarm,
        group=matched.group(1),
        index=int(matched.group(2)),
        symptom=parts[1],
        qualifier=parts[2] if len(parts) == 3 else "",
    )


def unit_name(fleet_alarm: str, stream: str) -> str:
    """One stream's unit of work under a fleet alarm: `<fleet alarm name>[<stream>]`."""
    return f"{fleet_alarm}[{stream}]"


@dataclass(frozen=True)
class FleetUnit:
    """One stream under one fleet alarm (the contributor whose StreamName is `stream`)."""

    name: str  # the unit's name, `<fleet alarm>[<stream>]`
    fleet: FleetName
    stream: str


_STREAM = re.compile(r"^[a-zA-Z0-9_.-]{1,128}$")


def parse_unit_name(name: str, prefix: str) -> FleetUnit | str:
    """The fleet alarm and stream of a unit name, or why it is not one."""
    if not (name.endswith("]") and "[" in name):
        return f"'{name[:80]}' is not named <fleet alarm>[<stream>]"
    alarm, _, rest = name.partition("[")
    stream = rest[:-1]
    if not _STREAM.fullmatch(stream):
        return f"'{name[:300]}' names no valid stream ('{stream[:140]}')"
    fleet = parse_fleet_name(alarm, prefix)
    if isinstance(fleet, str):
        return fleet
    return FleetUnit(name=name, fleet=fleet, stream=stream)


# --- queries -----------------------------------------------------------------------------------------------------


def _identifier(text: str) -> str:
    """A namespace, metric or label key in double quotes (any of them may hold '/' or '.'), quotes escaped."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def query(thresholds: Thresholds, streams: Sequence[str]) -> str:
    """The Metrics Insights query of a fleet alarm over `streams`: one time series per stream."""
    if not streams:
        raise ValueError("a fleet alarm watches at least one stream")
    bad = [s for s in streams if not _STREAM.fullmatch(s)]
    if bad:
        raise ValueError(f"not stream names: {bad}")  # also keeps a quote out of the query
    function = QUERY_FUNCTIONS[thresholds.statistic]
    # Metrics Insights keeps 500 series at most, sorted by ORDER BY: the ones nearest to breaching come first.
    order = "ASC" if thresholds.comparison.value.startswith("Less") else "DESC"
    where = WHERE_JOIN.join(f"{STREAM_DIMENSION} = '{stream}'" for stream in sorted(streams))
    return (
        f"SELECT {function}({_identifier(thresholds.metric)}) "
        f"FROM SCHEMA({_identifier(thresholds.namespace)}, {STREAM_DIMENSION}) "
        f"WHERE {where} GROUP BY {STREAM_DIMENSION} ORDER BY {function}() {order}"
    )


_SELECTED = re.compile(rf"\b{STREAM_DIMENSION}\s*=\s*'([^']*)'")


def query_streams(expression: str) -> frozenset[str]:
    """The streams a fleet query selects by name (the values of its `StreamName = '...'` conditions)."""
    return frozenset(_SELECTED.findall(expression))


# --- grouping ----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FleetAlarm:
    """One fleet alarm the stack builds."""

    name: str
    thresholds: Thresholds
    streams: tuple[str, ...]

    @property
    def query(self) -> str:
        return query(self.thresholds, self.streams)

    @property
    def description(self) -> str:
        return (
            f"{self.thresholds.description} Fleet alarm: one Metrics Insights query over {len(self.streams)} "
            "stream(s), alarming per stream."
        )[:1024]


def _slot(stream: str, slots: int) -> int:
    return int(hashlib.sha256(stream.encode()).hexdigest()[:8], 16) % slots


def split(streams: Sequence[str], fits: Callable[[Sequence[str]], bool]) -> list[tuple[int, tuple[str, ...]]]:
    """The streams in the fewest hash slots that each fit (numbered by slot, empty slots left out).

    A stream's slot depends on its name and the number of slots only, so adding or removing a stream changes only
    the alarm of its own slot, unless the group needs one slot more (or fewer) than before."""
    ordered = sorted(set(streams))
    for slots in range(1, len(ordered) + 1):
        parts: list[list[str]] = [[] for _ in range(slots)]
        for stream in ordered:
            parts[_slot(stream, slots)].append(stream)
        if all(fits(part) for part in parts if part):
            return [(index, tuple(part)) for index, part in enumerate(parts) if part]
    raise ValueError(f"{len(ordered)} stream(s) fit in no fleet alarm")


def fleet_alarms(policies: Mapping[str, StreamPolicy], prefix: str) -> list[FleetAlarm]:
    """Every fleet alarm of these policies: streams with the same thresholds share one, split where the query or
    the contributor limit would be exceeded. Sorted by name."""
    groups: dict[Thresholds, list[str]] = {}
    for policy in policies.values():  # keyed by policy key (a member's is account/region/name); fleet: hub's own
        for thresholds in fleet_thresholds(policy).values():
            groups.setdefault(thresholds, []).append(policy.name)
    alarms = []
    for thresholds, streams in groups.items():

        def fits(part: Sequence[str], thresholds: Thresholds = thresholds) -> bool:
            return len(part) <= STREAMS_PER_ALARM_MAX and len(query(thresholds, part)) <= QUERY_MAX_LENGTH

        for index, part in split(streams, fits):
            alarms.append(FleetAlarm(fleet_alarm_name(prefix, thresholds, index), thresholds, part))
    return sorted(alarms, key=lambda alarm: alarm.name)


SHOWN_STREAMS: Final = 5


def fleet_warnings(
    policies: Mapping[str, StreamPolicy], prefix: str
) -> list[tuple[tuple[str, ...], str | None, str, str]]:
    """(streams concerned, stream or None, field, message): what `validate` says of fleet alarms that is valid but
    worth a look. One warning per alarm that stays per-stream (naming its streams), not one per stream: a thousand
    streams make a handful of lines."""
    kept: dict[tuple[str, str], list[tuple[str, str]]] = {}  # (label, why) -> [(policy key, stream name)]
    for key, policy in sorted(policies.items()):
        for symptom, qualifier, why in per_stream_only(policy):
            label = symptom + (f"{SEP}{qualifier}" if qualifier else "")
            kept.setdefault((label, why), []).append((key, policy.name))
    warnings: list[tuple[tuple[str, ...], str | None, str, str]] = []
    for (label, why), found in kept.items():
        keys, names = tuple(k for k, _ in found), [n for _, n in found]
        if len(found) == 1:
            warnings.append((keys, names[0], "alarms", f"fleet: '{label}' stays a per-stream alarm: {why}"))
            continue
        more = len(names) - SHOWN_STREAMS
        shown = ", ".join(names[:SHOWN_STREAMS]) + (f" and {more} more" if more > 0 else "")
        message = f"fleet: '{label}' stays a per-stream alarm for {len(names)} streams ({shown}): {why}"
        warnings.append((keys, None, "alarms", message))
    any_fleet = any(policy.alarms == FLEET for policy in policies.values())
    count = len(fleet_alarms(policies, prefix)) if any_fleet else 0
    if count > METRICS_INSIGHTS_ALARMS_PER_REGION:
        message = (
            f"{count} fleet alarms exceed the {METRICS_INSIGHTS_ALARMS_PER_REGION} Metrics Insights alarms an account "
            "has per region by default: ask AWS for more, or keep some streams per-stream"
        )
        on_fleet = tuple(sorted(k for k, p in policies.items() if p.alarms == FLEET))
        warnings.append((on_fleet, None, "alarms", message))
    return warnings


# --- what the alarms cost ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AlarmBill:
    """The alarms a deployment's policies make, counted as CloudWatch bills them (core.pricing)."""

    streams: int
    standard_alarms: int  # per-stream alarms (each billed per metric it lists)
    standard_alarm_metrics: int
    fleet_alarms: int  # Metrics Insights alarms (each billed per metric its query analyses)
    metrics_analyzed: int  # one per stream per fleet alarm: SCHEMA(ns, StreamName) matches one metric per stream

    @property
    def alarms(self) -> int:
        return self.standard_alarms + self.fleet_alarms

    @property
    def monthly_usd(self) -> float:
        return monthly_alarm_cost(self.standard_alarm_metrics, self.metrics_analyzed)


def alarm_bill(policies: Mapping[str, StreamPolicy], prefix: str) -> AlarmBill:
    from remediator.core.alarm import deployed_alarms  # core.alarm imports this module

    standard = [spec for policy in policies.values() for _, spec in deployed_alarms(policy, prefix).values()]
    shared = fleet_alarms(policies, prefix)
    return AlarmBill(
        streams=len(policies),
        standard_alarms=len(standard),
        standard_alarm_metrics=sum(len(spec.metrics) for spec in standard),
        fleet_alarms=len(shared),
        metrics_analyzed=sum(len(alarm.streams) for alarm in shared),
    )


COST_TABLE_STREAMS: Final = (10, 100, 1000)


def cost_table_policy(name: str, alarms: str) -> dict[str, object]:
    """The README cost table's stream: every default detector, no consumer, a reshard bound."""
    return {"name": name, "alarms": alarms, "actions": {"reshard": {"max_shards": 16}}}


def cost_table(prefix: str, counts: Sequence[int] = COST_TABLE_STREAMS) -> list[tuple[int, AlarmBill, AlarmBill]]:
    """(streams, per-stream bill, fleet bill) for the README: `counts` streams named stream-0000..., defaults."""
    rows = []
    for count in counts:
        bills = []
        for style in ("per-stream", FLEET):
            policies = {
                f"stream-{i:04d}": REGISTRY.parse_stream_policy(cost_table_policy(f"stream-{i:04d}", style))
                for i in range(count)
            }
            bills.append(alarm_bill(policies, prefix))
        rows.append((count, bills[0], bills[1]))
    return rows


def cost_table_markdown(prefix: str, counts: Sequence[int] = COST_TABLE_STREAMS) -> str:
    """The README's table, as Markdown (tests/unit/test_fleet.py keeps the README equal to it)."""
    lines = [
        "| Streams | Per-stream: alarms | Per-stream: USD/month | Fleet: Metrics Insights alarms | "
        "Fleet: per-stream alarms left | Fleet: USD/month |",
        "|---:|---:|---:|---:|---:|---:|",
    ]
    for count, own, shared in cost_table(prefix, counts):
        lines.append(
            f"| {count:,} | {own.standard_alarms:,} | {own.monthly_usd:,.2f} | {shared.fleet_alarms:,} | "
            f"{shared.standard_alarms:,} | {shared.monthly_usd:,.2f} |"
        )
    return "\n".join(lines)
