"""Judgements about consumers that fall behind or stop, shared by iterator-age, consumer-stalled and the
per-consumer lag symptoms (kcl-, efo- and lambda-consumer-lag) (not a symptom): the data-loss risk against the
retention period, and the Lambda consumers' mapping facts.

A symptom reads the retention share from its own detector block (`retention_share`, see retention_share_field),
never from the raise-retention action's block: the detector says when the risk is worth a proposal, the action's
policy whether and how far to act.
"""

from __future__ import annotations

import shlex
from typing import Any

from pydantic import Field

from remediator.core.consumers import (
    LAMBDA_MAPPINGS,
    MappingFacts,
    gather_lambda_mappings,
    gather_or_error,
    lambda_mappings,
    unreadable_key,
)
from remediator.core.evidence import Evidence, StreamState
from remediator.core.plan import Advice, Figure, Proposal
from remediator.core.policy import StreamPolicy, field_name
from remediator.core.ports import ReadPorts

HOUR_MS = 3_600_000
RAISE_RETENTION = "raise-retention"
TUNE_EVENT_SOURCE = "tune-event-source"
# Why the mapping facts could not be read, when they could not (Evidence.facts key).
MAPPINGS_UNREADABLE = unreadable_key(LAMBDA_MAPPINGS)


# --- retention --------------------------------------------------------------------------------------

RETENTION_SHARE_DESCRIPTION = (
    "Propose raise-retention once the oldest unread record has used this share of the retention "
    "period (AWS warns of data loss from 0.5), as well as the fix for the lag."
)


def retention_share_field() -> Any:
    """The `retention_share` field of a lag symptom's detector (`retention_share: float = retention_share_field()`):
    one default, range and description for every symptom that proposes raise-retention ahead of its fix for the lag.
    """
    return Field(0.5, gt=0.0, lt=1.0, description=RETENTION_SHARE_DESCRIPTION)


def retention_share(evidence: Evidence, oldest_unread_ms: float) -> float:
    """How far the oldest unread record is towards expiry (1.0: records expire unread now)."""
    return oldest_unread_ms / (max(evidence.stream.retention_hours, 1) * HOUR_MS)


def hours_until_expiry(evidence: Evidence, oldest_unread_ms: float) -> float:
    return max(evidence.stream.retention_hours - oldest_unread_ms / HOUR_MS, 0.0)


def raise_retention(evidence: Evidence, oldest_unread_ms: float, at_share: float, setting: str) -> Proposal | None:
    """A raise-retention proposal once the oldest unread record has used `at_share` of the retention;
    `setting` names the detector field that set the share, for the reason."""
    share = retention_share(evidence, oldest_unread_ms)
    if share < at_share:
        return None
    return Proposal(
        action=RAISE_RETENTION,
        parameters={"oldest_record_age_ms": int(oldest_unread_ms)},
        reason=f"the oldest unread record is {share:.0%} of the way to expiry (retention "
        f"{evidence.stream.retention_hours} h; {setting} is {at_share:.0%})",
    )


def protect_data(
    evidence: Evidence, oldest_unread_ms: float | None, at_share: float, symptom_id: str, reader: str = ""
) -> tuple[Proposal, ...]:
    """The raise-retention proposal of `symptom_id` (its detector's `retention_share` is `at_share`), as the
    proposals to put ahead of the fix for the lag: empty below the share, or when the lag is unknown. `reader`
    names the consumer furthest behind, for the reason, when the symptom knows it."""
    if oldest_unread_ms is None:
        return ()
    setting = f"detectors.{field_name(symptom_id)}.retention_share"
    proposal = raise_retention(evidence, oldest_unread_ms, at_share, setting)
    if proposal is None:
        return ()
    if reader:
        proposal = proposal.model_copy(update={"reason": f"{proposal.reason}; furthest behind: {reader}"})
    return (proposal,)


# --- Lambda consumers -------------------------------------------------------------------------------


def gather_mappings(policy: StreamPolicy, stream: StreamState, aws: ReadPorts) -> dict[str, Any]:
    """The Lambda consumers' mapping facts (core.consumers), or why they could not be read.

    A function the policy names but AWS does not know, or a denied or throttled read, must not stop the
    diagnosis: the lag still gets its other remedies (reshard, raise-retention) and the advice says what
    could not be read. A call outside the symptom's declared grants is a bug, and is raised.
    """
    if not policy.lambda_consumers:
        return {}
    return gather_or_error(LAMBDA_MAPPINGS, lambda: gather_lambda_mappings(policy, stream, aws))


def failing(result: str | None) -> bool:
    """Whether a mapping's LastProcessingResult reports a failure. UNCONFIRMED: the API documents it as free text;
    the values seen are 'OK', 'No records processed' and 'PROBLEM: ...' (e.g. 'PROBLEM: Function call failed'),
    so only the last counts as a failure."""
    return (result or "").strip().upper().startswith("PROBLEM")


def reads_normally(mapping: MappingFacts) -> bool:
    """Nothing in the facts keeps this function from reading (mapping_problems names whatever does)."""
    return (
        mapping.found
        and mapping.state == "Enabled"
        and mapping.reserved_concurrency != 0
        and not failing(mapping.last_processing_result)
    )


def polling_mappings(evidence: Evidence) -> list[MappingFacts]:
    """The Lambda consumers that read normally and poll this stream itself (GetRecords, not an enhanced fan-out
    consumer): the readers GetRecords.IteratorAgeMilliseconds measures, and whose throughput tuning can raise.
    A function that cannot read (mapping_problems says why) is not tuned: more throughput would not help it."""
    return [m for m in lambda_mappings(evidence) if reads_normally(m) and m.source_arn == evidence.stream.arn]


def _setting(value: int | None) -> str:
    return "AWS's default" if value is None else f"{value:,}"


def tune_for_throughput(mapping: MappingFacts, why: str) -> Proposal:
    return Proposal(
        action=TUNE_EVENT_SOURCE,
        parameters={"function": mapping.function, "goal": "throughput"},
        reason=f"{mapping.function} reads with batch size {_setting(mapping.batch_size)} and parallelization "
        f"factor {_setting(mapping.parallelization_factor)} while {why}",
    )


def mapping_figures(mappings: list[MappingFacts]) -> list[Figure]:
    figures = []
    for m in mappings:
        if m.batch_size is not None:
            figures.append(Figure(name=f"{m.function}: batch size", value=m.batch_size))
        if m.parallelization_factor is not None:
            figures.append(Figure(name=f"{m.function}: parallelization factor", value=m.parallelization_factor))
    return figures


def logs_command(function: str) -> str:
    return shlex.join(["aws", "logs", "tail", f"/aws/lambda/{function}", "--since", "30m"])


def mapping_problems(evidence: Evidence, policy: StreamPolicy) -> list[Advice]:
    """What the facts say keeps a Lambda consumer from reading this stream: no mapping, a mapping that is
    not Enabled, reserved concurrency 0, a failing last batch, or facts that could not be read."""
    unreadable = evidence.facts.get(MAPPINGS_UNREADABLE)
    if unreadable:
        names = ", ".join(c.function for c in policy.lambda_consumers)
        return [
            Advice(
                title="Check the Lambda consumers",
                detail=f"The event-source mappings of {names} could not be read ({unreadable}); check that the "
                "functions exist under these names and read this stream.",
            )
        ]
    advice = []
    arn = evidence.stream.arn
    for m in lambda_mappings(evidence):
        if not m.found:
            advice.append(
                Advice(
                    title=f"No mapping for {m.function}",
                    detail=f"{m.function} has no event-source mapping on this stream, so it reads nothing from "
                    "it: create one, or correct the policy's consumers.",
                    cli_command=shlex.join(
                        ["aws", "lambda", "list-event-source-mappings", "--function-name", m.function]
                    ),
                )
            )
            continue
        if m.state in ("Disabled", "Disabling"):
            advice.append(
                Advice(
                    title=f"Mapping of {m.function} is {m.state}",
                    detail=f"The mapping {m.uuid} of {m.function} on {m.source_arn or arn} is {m.state}: it reads "
                    "nothing. Enable it once the reason it was disabled is fixed.",
                    cli_command=shlex.join(
                        ["aws", "lambda", "update-event-source-mapping", "--uuid", str(m.uuid), "--enabled"]
                    ),
                )
            )
        elif m.state != "Enabled":
            advice.append(
                Advice(
                    title=f"Mapping of {m.function} is {m.state}",
                    detail=f"The mapping {m.uuid} of {m.function} is {m.state}; it reads again once it is Enabled.",
                    cli_command=shlex.join(["aws", "lambda", "get-event-source-mapping", "--uuid", str(m.uuid)]),
                )
            )
        if m.reserved_concurrency == 0:
            advice.append(
                Advice(
                    title=f"{m.function} has reserved concurrency 0",
                    detail=f"Reserved concurrency 0 throttles every invocation of {m.function}, so its mapping "
                    "cannot deliver a batch. Remove the reservation (or set one above 0).",
                    cli_command=shlex.join(
                        ["aws", "lambda", "delete-function-concurrency", "--function-name", m.function]
                    ),
                )
            )
        result = (m.last_processing_result or "").strip()
        if failing(result):
            timeout = "" if m.function_timeout_seconds is None else f" (its timeout is {m.function_timeout_seconds} s)"
            advice.append(
                Advice(
                    title=f"{m.function} fails its batches",
                    detail=f"The mapping's last processing result is '{result}'. A batch that keeps failing is "
                    f"retried and holds its shard: read the function's errors{timeout}.",
                    cli_command=logs_command(m.function),
                )
            )
    return advice
