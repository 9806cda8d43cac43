"""What the remediator reads about a stream's Lambda consumers: each function's event-source mapping on the
stream, its settings and last result, the function's timeout and concurrency. Shared by the symptoms that
diagnose consumers; the facts travel in Evidence.facts under LAMBDA_MAPPINGS, so a plan can be replayed.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from typing import Any

from pydantic import BaseModel, ConfigDict

from remediator.core.evidence import Evidence, StreamState
from remediator.core.grants import ACCOUNT, LAMBDA_FUNCTION, IamGrant
from remediator.core.plan import Advice
from remediator.core.policy import StreamPolicy
from remediator.core.ports import ReadPorts, UndeclaredCall

LAMBDA_MAPPINGS = "lambda_mappings"

MAPPING_READ_GRANTS = (
    IamGrant(
        actions=("lambda:ListEventSourceMappings",),
        scope=ACCOUNT,
        why="The Service Authorization Reference lists no resource type for lambda:ListEventSourceMappings; "
        "the remediator lists only the mappings of the functions its policies name.",
    ),
    IamGrant(
        actions=("lambda:GetFunctionConfiguration", "lambda:GetFunctionConcurrency"),
        scope=LAMBDA_FUNCTION,
        why="The timeout, role and reserved concurrency of the consumer functions the policies name.",
    ),
)


class MappingFacts(BaseModel):
    """One consumer function and its mapping on this stream (mapping fields are None when none was found)."""

    model_config = ConfigDict(frozen=True)

    function: str
    uuid: str | None = None
    state: str | None = None  # Creating | Enabling | Enabled | Disabling | Disabled | Updating | Deleting
    source_arn: str | None = None  # the stream, or one of its enhanced fan-out consumers
    batch_size: int | None = None
    parallelization_factor: int | None = None
    batching_window_seconds: int | None = None
    bisect_batch_on_error: bool | None = None
    maximum_retry_attempts: int | None = None
    maximum_record_age_seconds: int | None = None
    on_failure_destination: str | None = None
    last_processing_result: str | None = None
    function_timeout_seconds: int | None = None
    function_role_arn: str | None = None
    reserved_concurrency: int | None = None
    # Filters the mapping keeps, and whether the remediator could read them: AWS returns FilterCriteria only to a
    # caller allowed kms:Decrypt on KMSKeyArn, and FilterCriteriaError instead. UNCONFIRMED that
    # ListEventSourceMappings answers like GetEventSourceMapping here (both return EventSourceMappingConfiguration).
    kms_key_arn: str | None = None
    has_filter_criteria: bool = False
    filter_criteria_error: str | None = None
    # Why nothing could be read about the function (it does not exist: a typo in the policy, or deleted).
    read_error: str | None = None

    @property
    def found(self) -> bool:
        return self.uuid is not None

    @property
    def on_efo(self) -> bool:
        return self.source_arn is not None and "/consumer/" in self.source_arn


def _mapping_of(function: str, stream_arn: str, mappings: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The function's mapping on this stream: an enabled one first, the stream's own before an EFO one."""
    ours = [
        m
        for m in mappings
        if m.get("EventSourceArn") == stream_arn
        or str(m.get("EventSourceArn", "")).startswith(f"{stream_arn}/consumer/")
    ]
    ours.sort(key=lambda m: (m.get("State") != "Enabled", "/consumer/" in str(m.get("EventSourceArn", ""))))
    return ours[0] if ours else None


def _not_found(exc: Exception) -> str | None:
    """AWS's ResourceNotFoundException (a botocore ClientError, recognised by its error code), as text."""
    error = (getattr(exc, "response", None) or {}).get("Error", {})
    if error.get("Code") != "ResourceNotFoundException":
        return None
    return f"ResourceNotFoundException: {error.get('Message', '')}".rstrip(": ")


def read_lambda_mappings(policy: StreamPolicy, stream: StreamState, aws: ReadPorts) -> list[MappingFacts]:
    """Facts for each Lambda consumer of the policy (needs MAPPING_READ_GRANTS). A function that does not exist
    gets facts with no mapping and the reason, so one wrong name does not keep the others from being read."""
    found = []
    for consumer in policy.lambda_consumers:
        try:
            found.append(_read_consumer(consumer.function, stream, aws))
        except Exception as exc:
            missing = _not_found(exc)
            if missing is None:
                raise
            found.append(MappingFacts(function=consumer.function, read_error=missing))
    return found


def _read_consumer(function: str, stream: StreamState, aws: ReadPorts) -> MappingFacts:
    service = aws.service("lambda")
    mappings: list[dict[str, Any]] = []
    marker: str | None = None
    while True:
        page = service.call("ListEventSourceMappings", FunctionName=function, **({"Marker": marker} if marker else {}))
        mappings += page.get("EventSourceMappings", [])
        marker = page.get("NextMarker")
        if not marker:
            break
    config = service.call("GetFunctionConfiguration", FunctionName=function)
    concurrency = service.call("GetFunctionConcurrency", FunctionName=function)
    mapping = _mapping_of(function, stream.arn, mappings) or {}
    destination = mapping.get("DestinationConfig", {}).get("OnFailure", {}).get("Destination")
    return MappingFacts(
        function=function,
        uuid=mapping.get("UUID"),
        state=mapping.get("State"),
        source_arn=mapping.get("EventSourceArn"),
        batch_size=mapping.get("BatchSize"),
        parallelization_factor=mapping.get("ParallelizationFactor"),
        batching_window_seconds=mapping.get("MaximumBatchingWindowInSeconds"),
        bisect_batch_on_error=mapping.get("BisectBatchOnFunctionError"),
        maximum_retry_attempts=mapping.get("MaximumRetryAttempts"),
        maximum_record_age_seconds=mapping.get("MaximumRecordAgeInSeconds"),
        on_failure_destination=destination,
        last_processing_result=mapping.get("LastProcessingResult"),
        function_timeout_seconds=config.get("Timeout"),
        function_role_arn=config.get("Role"),
        reserved_concurrency=concurrency.get("ReservedConcurrentExecutions"),
        kms_key_arn=mapping.get("KMSKeyArn"),
        has_filter_criteria=bool(mapping.get("FilterCriteria")),
        filter_criteria_error=_filter_error(mapping),
    )


def _filter_error(mapping: dict[str, Any]) -> str | None:
    error = mapping.get("FilterCriteriaError")
    if not error:
        return None
    return f"{error.get('ErrorCode', '')}: {error.get('Message', '')}".strip(": ") or "FilterCriteriaError"


def lambda_mappings(evidence: Evidence) -> list[MappingFacts]:
    """The mapping facts a symptom's gather put into the evidence (none if it read none)."""
    return [MappingFacts.model_validate(item) for item in evidence.facts.get(LAMBDA_MAPPINGS, [])]


def unreadable_consumers(evidence: Evidence, named: Collection[str] = ()) -> list[Advice]:
    """Advice naming each consumer function of the policy that could not be read (does not exist), but for the
    functions a diagnosis already `named`."""
    return [
        Advice(
            title=f"Consumer {m.function} not found",
            detail=f"The policy names Lambda function {m.function}, but {m.function} could not be read "
            f"({m.read_error}): correct the name in the policy's consumers, or remove it.",
        )
        for m in lambda_mappings(evidence)
        if m.read_error and m.function not in named
    ]


# --- reads that may fail ----------------------------------------------------------------------------------
# A denied (AccessDeniedException), throttled or invalid (ValidationException) read must not stop a diagnosis:
# it becomes a fact under `unreadable_key(key)`, the diagnosis proposes what the rest of the evidence supports and
# its advice names the read that failed (read_failure_advice). A call outside the symptom's declared grants
# (UndeclaredCall) is a bug, and is raised.


def unreadable_key(key: str) -> str:
    """The Evidence.facts key saying why the facts under `key` could not be read."""
    return f"{key}_error"


def read_failure(exc: Exception) -> str:
    """A failed read as text for the facts; raises an UndeclaredCall again (a bug, not a fact)."""
    if isinstance(exc, UndeclaredCall):
        raise exc
    error = (getattr(exc, "response", None) or {}).get("Error", {})
    if error.get("Code"):  # a botocore ClientError: AWS's error code says what went wrong
        return f"{error['Code']}: {error.get('Message', '')}".rstrip(": ")
    return f"{type(exc).__name__}: {exc}"


def gather_or_error(key: str, gather: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """`gather()`, or, when a read fails, `{unreadable_key(key): why}` (see read_failure)."""
    try:
        return gather()
    except Exception as exc:
        return {unreadable_key(key): read_failure(exc)}


def read_error(evidence: Evidence, key: str) -> str | None:
    """Why the facts under `key` could not be read, or None when they were (or were not asked for)."""
    error = evidence.facts.get(unreadable_key(key))
    return str(error) if error else None


def what_to_check(error: str, actions: Collection[str]) -> str:
    """What to check for a failed read, from its error code (read_failure's text starts with it)."""
    code = error.split(":", 1)[0]
    if "AccessDenied" in code or "Unauthorized" in code:
        return (
            f"check that the remediator's role is allowed {', '.join(actions)} (redeploy the stack if the policy "
            "names consumers it was not deployed with)"
        )
    if "Throttl" in code or "TooManyRequests" in code or "LimitExceeded" in code:
        return "AWS throttled the read; it passes by itself, and the next alarm reads again"
    return "check the names in the stream's policy (consumers, lease tables) against what exists in the account"


def read_failure_advice(evidence: Evidence, key: str, what: str, actions: Collection[str]) -> list[Advice]:
    """One piece of advice naming the read of `what` that failed (none when it did not fail)."""
    error = read_error(evidence, key)
    if error is None:
        return []
    return [
        Advice(
            title=f"Could not read {what}",
            detail=f"Reading {what} ({', '.join(actions)}) failed: {error}. The diagnosis went on without it; "
            f"{what_to_check(error, actions)}.",
        )
    ]


MAPPING_READ_ACTIONS = tuple(action for grant in MAPPING_READ_GRANTS for action in grant.actions)


def gather_lambda_mappings(policy: StreamPolicy, stream: StreamState, aws: ReadPorts) -> dict[str, Any]:
    """A symptom's `gather` for the mapping facts: `return gather_lambda_mappings(policy, stream, aws)`."""
    return {LAMBDA_MAPPINGS: [m.model_dump(mode="json") for m in read_lambda_mappings(policy, stream, aws)]}
