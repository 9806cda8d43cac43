"""Judgements about a stream's write capacity that several symptoms share (not a symptom itself)."""

from __future__ import annotations

from remediator.core.evidence import INCOMING_BYTES, INCOMING_RECORDS, Evidence, StreamMode, WriteLoad
from remediator.core.plan import Advice, Cause, Diagnosis, Figure, Proposal
from remediator.core.policy import StreamPolicy
from remediator.core.reshard import peak_share, required_shards

ON_DEMAND_SUMMARY = "The stream is on-demand: AWS scales its capacity, so it is never resharded."


def capacity_figures(evidence: Evidence) -> list[Figure]:
    """The stream's write figures; one CloudWatch returned no datapoint for is n/a (None), never 0."""
    traffic = evidence.has_write_traffic_data()
    return [
        Figure(name="open shards", value=evidence.stream.open_shards),
        Figure(
            name="peak write utilisation",
            value=100 * evidence.write_utilisation(peak=True) if traffic else None,
            unit="%",
        ),
        Figure(
            name="average write utilisation",
            value=100 * evidence.write_utilisation(peak=False) if traffic else None,
            unit="%",
        ),
        Figure(
            name="peak incoming bytes",
            value=_seen(evidence, "incoming_bytes", evidence.peak_bytes_per_second),
            unit="B/s",
        ),
        Figure(
            name="peak incoming records",
            value=_seen(evidence, "incoming_records", evidence.peak_records_per_second),
            unit="records/s",
        ),
    ]


def _seen(evidence: Evidence, key: str, value: float) -> float | None:
    return value if evidence.values(key) else None


def is_saturated(evidence: Evidence, policy: StreamPolicy) -> bool:
    return evidence.write_utilisation(peak=True) >= policy.capacity.saturated_at


def reshard_up(evidence: Evidence, policy: StreamPolicy, why: str) -> Proposal:
    """Ask for the fewest shards that put the peak load at or below the target utilisation; the reshard action
    decides how far one call may go. The reason states the share that count gives, not the target.

    The peak load is what the stream accepted, or, when writes were throttled, what producers offered, estimated
    (Evidence.sizing_load): the reason says so, and why it is an estimate."""
    target = policy.capacity.target_utilisation
    load = evidence.sizing_load()
    desired = required_shards(load.bytes_per_second, load.records_per_second, target)
    share = peak_share(load.bytes_per_second, load.records_per_second, desired)
    if not load.estimated:
        reason = f"{why}; {desired} shards would put the observed peak at {share:.0%} of capacity (target {target:.0%})"
    else:
        reason = (
            f"{why}; {offered_load_sentence(load)}; {desired} shards would put that estimated peak at {share:.0%} "
            f"of capacity (target {target:.0%})"
        )
    return Proposal(action="reshard", parameters={"desired_shards": desired}, reason=reason)


def offered_load_sentence(load: WriteLoad) -> str:
    """Why a reshard is sized from an estimate, and how much to trust it."""
    return (
        f"{load.throttled_records:,.0f} records were throttled, so what the stream accepted is a lower bound of what "
        f"producers offer: accepted plus throttled records give an estimated peak of "
        f"{load.bytes_per_second / 1e6:,.2f} MB/s and {load.records_per_second:,.0f} records/s (an estimate: "
        "throttled records include the producers' retries, so it may overstate; one call at most doubles the "
        "shards and the policy's max_shards bounds them)"
    )


def saturated(
    evidence: Evidence,
    policy: StreamPolicy,
    summary: str,
    figures: list[Figure] | tuple[Figure, ...],
    *,
    before: tuple[Proposal, ...] = (),
    advice: list[Advice] | tuple[Advice, ...] = (),
) -> Diagnosis:
    """The saturated-shards diagnosis every symptom ends in when writes fill the stream: a reshard up (after
    any `before` step, such as raising retention), with the symptom's own summary."""
    peak = evidence.write_utilisation(peak=True)
    return Diagnosis(
        cause=Cause.SATURATED,
        summary=summary,
        figures=tuple(figures),
        proposals=(*before, reshard_up(evidence, policy, f"peak write utilisation {peak:.0%}")),
        advice=tuple(advice),
    )


def on_demand(evidence: Evidence, figures: list[Figure], advice: tuple[Advice, ...]) -> Diagnosis | None:
    if evidence.stream.mode == StreamMode.PROVISIONED:
        return None
    return Diagnosis(cause=Cause.ON_DEMAND, summary=ON_DEMAND_SUMMARY, figures=tuple(figures), advice=advice)


def insufficient(
    evidence: Evidence, figures: list[Figure], missing: str | None = None, advice: tuple[Advice, ...] = ()
) -> Diagnosis | None:
    if missing is None and evidence.has_write_traffic_data():
        return None
    what = missing or f"{INCOMING_BYTES.name} or {INCOMING_RECORDS.name}"
    return Diagnosis(
        cause=Cause.INSUFFICIENT_EVIDENCE,
        summary=f"CloudWatch returned no {what} for the last {evidence.window_minutes} minutes; "
        "without these datapoints the remediator does not guess.",
        figures=tuple(figures),
        advice=(
            *advice,
            Advice(
                title="Check the metrics",
                detail="Confirm that the stream receives traffic and that its metrics reach CloudWatch.",
            ),
        ),
    )
