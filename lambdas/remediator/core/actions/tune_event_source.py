"""tune-event-source: UpdateEventSourceMapping on a consumer function's mapping for the stream, within AWS's
ranges and the policy's bounds.

A symptom asks for a goal (`{"function": NAME, "goal": G}`); `shape` reads the mapping's facts from the
evidence (core.consumers) and turns the goal into settings before -> after:

- `throughput` (lag on shards that are not saturated): ParallelizationFactor doubled up to the policy's bound,
  and once it is there, BatchSize doubled up to its bound. More concurrent batches per shard come first: they
  add throughput without making any one invocation longer (Lambda keeps the order per partition key);
- `smaller-batches` (read throttling with one polling consumer): BatchSize halved down to the policy's bound;
- `failure-handling` (a batch that keeps failing), only when the policy allows it: BisectBatchOnFunctionError
  on, the policy's on-failure destination when the mapping has none, and MaximumRetryAttempts capped, but only
  where an on-failure destination exists: without one, records past the cap would be dropped.

A Disabled mapping is never changed. A mapping that is Updating (or Creating, Enabling...) is left alone: the
remediator does not sleep in its Lambda waiting for it; a later alarm plans again. `apply` re-reads the mapping
(GetEventSourceMapping) right before the change and refuses if it is no longer Enabled, or no longer has the
settings the plan was made from.
"""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Callable
from typing import Annotated, Any, ClassVar

from pydantic import Field, model_validator

from remediator.core import limits
from remediator.core.actions.base import Action, ValidationContext
from remediator.core.consumers import MappingFacts, lambda_mappings
from remediator.core.cost import Usage
from remediator.core.grants import EVENT_SOURCE_MAPPING, IamGrant
from remediator.core.plan import Change, GuardrailVerdict, PlannedStep, Proposal
from remediator.core.policy import ActionPolicy, text_like
from remediator.core.ports import ReadPorts, WritePorts
from remediator.core.registry import REGISTRY

THROUGHPUT = "throughput"
SMALLER_BATCHES = "smaller-batches"
FAILURE_HANDLING = "failure-handling"
GOALS = (THROUGHPUT, SMALLER_BATCHES, FAILURE_HANDLING)

# Settings by their UpdateEventSourceMapping names; the destination is DestinationConfig.OnFailure.Destination.
BATCH_SIZE = "BatchSize"
PARALLELIZATION = "ParallelizationFactor"
BATCHING_WINDOW = "MaximumBatchingWindowInSeconds"
BISECT = "BisectBatchOnFunctionError"
RETRIES = "MaximumRetryAttempts"
RECORD_AGE = "MaximumRecordAgeInSeconds"
DESTINATION = "OnFailureDestination"

ENABLED = "Enabled"
# Mapping states in which it may not be changed now, but may be later (aws-facts.md §4).
TRANSITIONAL = ("Creating", "Enabling", "Updating", "Disabling", "Deleting")

# On-failure destinations of a Kinesis mapping: an SQS queue, an SNS topic or an S3 bucket (aws-facts.md §4).
DESTINATION_PATTERN = (
    r"^arn:aws[a-z-]*:(sqs|sns):[a-z0-9-]+:\d{12}:[A-Za-z0-9_.-]{1,256}$"
    r"|^arn:aws[a-z-]*:s3:::[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$"
)
DestinationArn = Annotated[
    str,
    text_like(
        DESTINATION_PATTERN,
        "the ARN of an SQS queue, an SNS topic or an S3 bucket, like arn:aws:sqs:eu-west-1:123456789012:failed-batches",
    ),
]


class TuneEventSourcePolicy(ActionPolicy):
    min_batch_size: int = Field(
        10,
        ge=limits.MIN_ESM_BATCH_SIZE,
        le=limits.MAX_ESM_BATCH_SIZE,
        description="Goal smaller-batches never lowers BatchSize below this.",
    )
    max_batch_size: int = Field(
        1_000,
        ge=limits.MIN_ESM_BATCH_SIZE,
        le=limits.MAX_ESM_BATCH_SIZE,
        description="Goal throughput never raises BatchSize above this (a whole batch goes to one invocation, "
        "which must finish within the function's timeout and Lambda's 6 MB payload).",
    )
    max_parallelization_factor: int = Field(
        4,
        ge=limits.MIN_PARALLELIZATION_FACTOR,
        le=limits.MAX_PARALLELIZATION_FACTOR,
        description="Goal throughput never raises ParallelizationFactor above this. The mapping runs up to open "
        "shards x this many invocations at once, which count against the account's concurrency.",
    )
    allow_failure_handling: bool = Field(
        False,
        description="Opt-in: for a batch that keeps failing, turn on BisectBatchOnFunctionError, set the "
        "on-failure destination and cap MaximumRetryAttempts, so one bad record no longer blocks its shard.",
    )
    on_failure_destination: DestinationArn | None = Field(
        None,
        description="SQS queue, SNS topic or S3 bucket ARN that goal failure-handling sets as the mapping's "
        "on-failure destination when it has none. The function's execution role must be allowed to send to it.",
    )
    max_retry_attempts: int = Field(
        2,
        ge=0,
        le=limits.MAX_RETRY_ATTEMPTS,
        description="Goal failure-handling caps MaximumRetryAttempts at this, and only when the mapping has an "
        "on-failure destination (or gets this policy's): without one, records past the cap would be lost.",
    )

    @model_validator(mode="after")
    def _batch_bounds_are_consistent(self) -> TuneEventSourcePolicy:
        if self.min_batch_size > self.max_batch_size:
            raise ValueError(f"min_batch_size ({self.min_batch_size}) is above max_batch_size ({self.max_batch_size})")
        return self


# --- The maths: current settings -> the settings a goal changes -----------------------------------------------


def current_settings(mapping: MappingFacts) -> dict[str, Any]:
    """The mapping's settings, with AWS's defaults where the API left one out (aws-facts.md §4)."""
    return normalised(
        {
            BATCH_SIZE: mapping.batch_size,
            PARALLELIZATION: mapping.parallelization_factor,
            BATCHING_WINDOW: mapping.batching_window_seconds,
            BISECT: mapping.bisect_batch_on_error,
            RETRIES: mapping.maximum_retry_attempts,
            RECORD_AGE: mapping.maximum_record_age_seconds,
            DESTINATION: mapping.on_failure_destination,
        }
    )


def settings_of_response(mapping: dict[str, Any]) -> dict[str, Any]:
    """The same settings from a GetEventSourceMapping / UpdateEventSourceMapping response."""
    on_failure = (mapping.get("DestinationConfig") or {}).get("OnFailure") or {}
    return normalised(
        {
            **{key: mapping.get(key) for key in (BATCH_SIZE, PARALLELIZATION, BATCHING_WINDOW, RETRIES, RECORD_AGE)},
            BISECT: mapping.get(BISECT),
            DESTINATION: on_failure.get("Destination"),
        }
    )


def normalised(settings: dict[str, Any]) -> dict[str, Any]:
    defaults: dict[str, Any] = {
        BATCH_SIZE: limits.ESM_DEFAULT_BATCH_SIZE,
        PARALLELIZATION: limits.MIN_PARALLELIZATION_FACTOR,
        BATCHING_WINDOW: 0,
        BISECT: False,
        RETRIES: limits.MIN_RETRY_ATTEMPTS,
        RECORD_AGE: limits.RECORD_AGE_UNLIMITED,
        DESTINATION: None,
    }
    return {key: defaults[key] if settings.get(key) is None else settings[key] for key in defaults}


def more_throughput(current: dict[str, Any], policy: TuneEventSourcePolicy) -> dict[str, Any]:
    """ParallelizationFactor x2 up to the bound; once there, BatchSize x2 up to its bound; else nothing."""
    factor, batch = int(current[PARALLELIZATION]), int(current[BATCH_SIZE])
    if factor < policy.max_parallelization_factor:
        return {PARALLELIZATION: min(factor * 2, policy.max_parallelization_factor)}
    if batch < policy.max_batch_size:
        return {BATCH_SIZE: min(batch * 2, policy.max_batch_size)}
    return {}


def smaller_batches(current: dict[str, Any], policy: TuneEventSourcePolicy) -> dict[str, Any]:
    """BatchSize halved, never below the bound; else nothing."""
    batch = int(current[BATCH_SIZE])
    if batch > policy.min_batch_size:
        return {BATCH_SIZE: max(batch // 2, policy.min_batch_size)}
    return {}


def failure_handling(current: dict[str, Any], policy: TuneEventSourcePolicy) -> dict[str, Any]:
    """Bisect on; the policy's destination where the mapping has none (a destination someone set is kept);
    retries capped only where failed records have a destination to go to."""
    after: dict[str, Any] = {}
    if not current[BISECT]:
        after[BISECT] = True
    destination = current[DESTINATION]
    if destination is None and policy.on_failure_destination:
        destination = after[DESTINATION] = policy.on_failure_destination
    retries = int(current[RETRIES])
    if destination and (retries == limits.MIN_RETRY_ATTEMPTS or retries > policy.max_retry_attempts):
        after[RETRIES] = policy.max_retry_attempts
    return after


TUNERS: dict[str, Callable[[dict[str, Any], TuneEventSourcePolicy], dict[str, Any]]] = {
    THROUGHPUT: more_throughput,
    SMALLER_BATCHES: smaller_batches,
    FAILURE_HANDLING: failure_handling,
}


def _within(low: int, high: int) -> Callable[[Any], bool]:
    return lambda value: isinstance(value, int) and not isinstance(value, bool) and low <= value <= high


def _record_age(value: Any) -> bool:
    return value == limits.RECORD_AGE_UNLIMITED or _within(
        limits.MIN_RECORD_AGE_SECONDS, limits.MAX_RECORD_AGE_SECONDS
    )(value)


# AWS's ranges for UpdateEventSourceMapping on a Kinesis source (aws-facts.md §4). AWS's model also says a
# BatchSize above 10 needs a batching window of at least 1 s, but AWS's own Kinesis example contradicts it
# (UNCONFIRMED for Kinesis): not enforced here, and no goal changes the window.
AWS_RANGES: dict[str, tuple[Callable[[Any], bool], str]] = {
    BATCH_SIZE: (_within(limits.MIN_ESM_BATCH_SIZE, limits.MAX_ESM_BATCH_SIZE), "1..10,000"),
    PARALLELIZATION: (_within(limits.MIN_PARALLELIZATION_FACTOR, limits.MAX_PARALLELIZATION_FACTOR), "1..10"),
    BATCHING_WINDOW: (_within(0, limits.MAX_BATCHING_WINDOW_SECONDS), "0..300 s"),
    RETRIES: (_within(limits.MIN_RETRY_ATTEMPTS, limits.MAX_RETRY_ATTEMPTS), "-1..10,000"),
    RECORD_AGE: (_record_age, "-1 or 60..604,800 s"),
    BISECT: (lambda value: isinstance(value, bool), "true or false"),
    DESTINATION: (
        lambda value: isinstance(value, str) and bool(re.match(DESTINATION_PATTERN, value)),
        "an SQS, SNS or S3 ARN",
    ),
}


def aws_range_problems(after: dict[str, Any]) -> list[str]:
    problems = []
    for key, value in after.items():
        check = AWS_RANGES.get(key)
        if check is None:
            problems.append(f"{key} is not a setting this action may change")
        elif not check[0](value):
            problems.append(f"{key} {value} is outside AWS's range ({check[1]})")
    return problems


def policy_bound_problems(before: dict[str, Any], after: dict[str, Any], policy: TuneEventSourcePolicy) -> list[str]:
    problems = []
    batch = after.get(BATCH_SIZE)
    if batch is not None:
        if batch > before.get(BATCH_SIZE, batch) and batch > policy.max_batch_size:
            problems.append(f"BatchSize {batch} is above max_batch_size {policy.max_batch_size}")
        if batch < before.get(BATCH_SIZE, batch) and batch < policy.min_batch_size:
            problems.append(f"BatchSize {batch} is below min_batch_size {policy.min_batch_size}")
    factor = after.get(PARALLELIZATION)
    if (
        factor is not None
        and factor > before.get(PARALLELIZATION, factor)
        and factor > policy.max_parallelization_factor
    ):
        problems.append(
            f"ParallelizationFactor {factor} is above max_parallelization_factor {policy.max_parallelization_factor}"
        )
    retries = after.get(RETRIES)
    if retries is not None and not 0 <= retries <= policy.max_retry_attempts:
        problems.append(f"MaximumRetryAttempts {retries} is not within the cap 0..{policy.max_retry_attempts}")
    destination = after.get(DESTINATION)
    if destination is not None and destination != policy.on_failure_destination:
        problems.append(f"on-failure destination {destination} is not the policy's on_failure_destination")
    return problems


def describe(settings: dict[str, Any]) -> str:
    return ", ".join(f"{key} {value}" for key, value in settings.items())


def request_of(after: dict[str, Any]) -> dict[str, Any]:
    """The UpdateEventSourceMapping members for the changed settings."""
    request = {key: value for key, value in after.items() if key != DESTINATION}
    if DESTINATION in after:
        request["DestinationConfig"] = {"OnFailure": {"Destination": after[DESTINATION]}}
    return request


CLI_OPTIONS = {
    BATCH_SIZE: "--batch-size",
    PARALLELIZATION: "--parallelization-factor",
    BATCHING_WINDOW: "--maximum-batching-window-in-seconds",
    RETRIES: "--maximum-retry-attempts",
    RECORD_AGE: "--maximum-record-age-in-seconds",
}


def cli_words(after: dict[str, Any]) -> list[str]:
    words: list[str] = []
    for key, value in after.items():
        if key == BISECT:
            words.append("--bisect-batch-on-function-error" if value else "--no-bisect-batch-on-function-error")
        elif key == DESTINATION:
            words += ["--destination-config", json.dumps({"OnFailure": {"Destination": value}}, separators=(",", ":"))]
        elif key in CLI_OPTIONS:
            words += [CLI_OPTIONS[key], str(value)]
    return words


def function_of(function_arn: str) -> str:
    """The function name in a function ARN (arn:aws:lambda:region:account:function:NAME[:qualifier])."""
    parts = function_arn.split(":")
    return parts[6] if len(parts) > 6 else ""


class MappingNotReady(RuntimeError):
    """The mapping is not Enabled when the change is about to be made: nothing is changed."""


class MappingChanged(RuntimeError):
    """The mapping no longer has the settings the plan was made from: nothing is changed."""


@REGISTRY.action
class TuneEventSource(Action[TuneEventSourcePolicy]):
    id = "tune-event-source"
    title = "UpdateEventSourceMapping: a consumer function's batch size, parallelization or failure handling"
    policy_schema = TuneEventSourcePolicy
    grants = (
        IamGrant(
            actions=("lambda:GetEventSourceMapping", "lambda:UpdateEventSourceMapping"),
            scope=EVENT_SOURCE_MAPPING,
            why="Re-read a consumer function's mapping right before changing it, then change its batch size, "
            "parallelization factor or failure handling. Mapping UUIDs are not known at deploy time: any mapping, "
            "narrowed by the lambda:FunctionArn condition to the consumer functions the policies name.",
        ),
    )
    sample_parameters: ClassVar[dict[str, Any]] = {
        "function": "orders-processor",
        "goal": THROUGHPUT,
        "uuid": "14e0db71-5d35-4eb5-b481-8945cf9d10c2",
        "state": ENABLED,
        "before": {PARALLELIZATION: 1},
        "after": {PARALLELIZATION: 2},
    }

    # --- plan ---------------------------------------------------------------------------------------------

    def shape(self, proposal: Proposal, context: ValidationContext) -> Proposal:
        policy = self.block(context.policy)
        function = str(proposal.parameters.get("function", ""))
        goal = str(proposal.parameters.get("goal", ""))
        mapping = next((m for m in lambda_mappings(context.evidence) if m.function == function), None)
        parameters: dict[str, Any] = {
            "function": function,
            "goal": goal,
            "uuid": mapping.uuid if mapping else None,
            "state": mapping.state if mapping else None,
            "before": {},
            "after": {},
        }
        reason = proposal.reason
        if mapping is None or not mapping.found or goal not in TUNERS:
            return proposal.model_copy(update={"parameters": parameters})
        current = current_settings(mapping)
        after = TUNERS[goal](current, policy)
        parameters["before"] = {key: current[key] for key in after}
        parameters["after"] = after
        if goal == FAILURE_HANDLING and current[DESTINATION] is None and not policy.on_failure_destination:
            reason += (
                "; MaximumRetryAttempts is left as it is: the mapping has no on-failure destination and the policy "
                "names none, so capped retries would drop the failing records"
            )
        if goal == THROUGHPUT and PARALLELIZATION in after:
            reason += "; more concurrent batches per shard first (the order per partition key is kept)"
        return proposal.model_copy(update={"parameters": parameters, "reason": reason})

    def checks(self, step: PlannedStep, context: ValidationContext) -> list[GuardrailVerdict]:
        policy = self.block(context.policy)
        parameters = step.parameters
        function, goal = parameters["function"], parameters["goal"]
        before, after = dict(parameters["before"]), dict(parameters["after"])
        verdicts = [
            GuardrailVerdict(
                name="known-goal",
                passed=goal in TUNERS,
                detail=f"goal {goal}" if goal in TUNERS else f"goal '{goal}' is not one of {', '.join(GOALS)}",
            ),
            self._found(parameters, step.stream),
            self._enabled(parameters),
        ]
        aws = aws_range_problems(after)
        verdicts.append(
            GuardrailVerdict(
                name="aws-ranges",
                passed=not aws,
                detail="; ".join(aws) or (f"{describe(after)} within AWS's ranges" if after else "no setting to check"),
            )
        )
        bounds = policy_bound_problems(before, after, policy)
        verdicts.append(
            GuardrailVerdict(
                name="policy-bounds",
                passed=not bounds,
                detail="; ".join(bounds) or f"within the policy's bounds ({self.bounds(policy)})",
            )
        )
        if goal == FAILURE_HANDLING:
            verdicts.append(
                GuardrailVerdict(
                    name="failure-handling-allowed",
                    passed=policy.allow_failure_handling,
                    detail="the policy allows changing failure handling"
                    if policy.allow_failure_handling
                    else f"actions.{self.id.replace('-', '_')}.allow_failure_handling is false: failure handling "
                    "decides which records may be skipped, so only a person may turn it on",
                )
            )
        if PARALLELIZATION in after:
            verdicts.append(self._concurrency(function, int(after[PARALLELIZATION]), context))
        verdicts.append(
            GuardrailVerdict(
                name="changes-something",
                passed=bool(after) and after != before,
                detail="; ".join(f"{k} {before.get(k)} -> {v}" for k, v in after.items())
                if after
                else self._why_nothing(goal, policy),
            )
        )
        return verdicts

    @staticmethod
    def _found(parameters: dict[str, Any], stream: str) -> GuardrailVerdict:
        uuid, function = parameters.get("uuid"), parameters["function"]
        return GuardrailVerdict(
            name="mapping-found",
            passed=bool(uuid),
            detail=f"mapping {uuid} of {function}"
            if uuid
            else f"{function} has no event-source mapping on stream {stream} (or is not a consumer in the policy)",
        )

    @staticmethod
    def _enabled(parameters: dict[str, Any]) -> GuardrailVerdict:
        state = parameters.get("state")
        if state == ENABLED:
            detail = "mapping is Enabled"
        elif state in ("Disabled", "Disabling"):
            detail = f"mapping is {state}: a disabled mapping is never changed (someone stopped it on purpose)"
        elif state in TRANSITIONAL:
            # No waiter exists for mappings, and the remediator does not sleep in its Lambda.
            detail = f"mapping is {state}; the next alarm retries"
        else:
            detail = f"mapping state is {state or 'unknown'}, not Enabled"
        return GuardrailVerdict(name="mapping-enabled", passed=state == ENABLED, detail=detail)

    @staticmethod
    def _concurrency(function: str, factor: int, context: ValidationContext) -> GuardrailVerdict:
        mapping = next((m for m in lambda_mappings(context.evidence) if m.function == function), None)
        reserved = mapping.reserved_concurrency if mapping else None
        shards = context.evidence.stream.open_shards
        needed = shards * factor
        if reserved is None:
            return GuardrailVerdict(
                name="concurrency-headroom",
                passed=True,
                detail=f"{shards} shards x {factor} = up to {needed} concurrent invocations; {function} has no "
                "reserved concurrency (it draws on the account's unreserved pool)",
            )
        return GuardrailVerdict(
            name="concurrency-headroom",
            passed=reserved >= needed,
            detail=f"{shards} shards x {factor} = {needed} concurrent invocations; {function}'s reserved "
            f"concurrency is {reserved}"
            + ("" if reserved >= needed else ": the extra batches would only be throttled; raise it first"),
        )

    @staticmethod
    def _why_nothing(goal: str, policy: TuneEventSourcePolicy) -> str:
        if goal == THROUGHPUT:
            return (
                f"already at the policy's bounds (ParallelizationFactor {policy.max_parallelization_factor}, "
                f"BatchSize {policy.max_batch_size}); nothing left to raise"
            )
        if goal == SMALLER_BATCHES:
            return f"BatchSize is already at min_batch_size {policy.min_batch_size} or below"
        if goal == FAILURE_HANDLING:
            return "failure handling is already in place (bisect on, retries capped where a destination exists)"
        return "nothing to change"

    # --- act ----------------------------------------------------------------------------------------------

    def apply(self, step: PlannedStep, aws: WritePorts) -> dict[str, Any]:
        parameters = step.parameters
        uuid, function = str(parameters["uuid"]), str(parameters["function"])
        before, after = dict(parameters["before"]), dict(parameters["after"])
        service = aws.service("lambda")
        # Re-read right before the call: the plan's facts are seconds old, and a person may have acted since.
        mapping = service.call("GetEventSourceMapping", UUID=uuid)
        state = mapping.get("State")
        if state != ENABLED:
            raise MappingNotReady(
                f"mapping {uuid} of {function} is {state}, not Enabled; no change made"
                + ("; the next alarm retries" if state in TRANSITIONAL else "")
            )
        owner = function_of(str(mapping.get("FunctionArn", "")))
        now = settings_of_response(mapping)
        drift = [f"{key} is {now[key]}, planned from {value}" for key, value in before.items() if now[key] != value]
        if owner != function:
            drift.insert(0, f"it belongs to function '{owner}', not '{function}'")
        if drift:
            raise MappingChanged(f"mapping {uuid} changed since the plan ({'; '.join(drift)}); no change made")
        response = service.call("UpdateEventSourceMapping", UUID=uuid, **request_of(after))
        applied = settings_of_response(response)
        return {"uuid": uuid, "state": response.get("State"), **{key: applied[key] for key in after}}

    def confirm(self, step: PlannedStep, aws: ReadPorts) -> bool | None:
        """The mapping with every planned setting: made; with every setting as planned from: not made."""
        after, before = dict(step.parameters.get("after") or {}), dict(step.parameters.get("before") or {})
        mapping = aws.service("lambda").call("GetEventSourceMapping", UUID=str(step.parameters["uuid"]))
        now = settings_of_response(mapping)
        if all(now.get(key) == value for key, value in after.items()):
            return True
        if all(now.get(key) == before.get(key) for key in after):
            return False
        return None

    def cli_command(self, stream_arn: str, parameters: dict[str, Any]) -> str:
        uuid = parameters.get("uuid")
        if not uuid:
            # No mapping to change: the command that finds it.
            return shlex.join(
                [
                    "aws", "lambda", "list-event-source-mappings",
                    "--function-name", str(parameters.get("function", "")),
                    "--event-source-arn", stream_arn,
                ]
            )  # fmt: skip
        words = ["aws", "lambda", "update-event-source-mapping", "--uuid", str(uuid)]
        return shlex.join(words + cli_words(dict(parameters.get("after") or {})))

    def summary(self, parameters: dict[str, Any]) -> str:
        what = f"tune {parameters['function']}"
        after, before = dict(parameters.get("after") or {}), dict(parameters.get("before") or {})
        if not parameters.get("uuid"):
            return f"{what} ({parameters['goal']}): no mapping on the stream"
        if not after:
            return f"{what} ({parameters['goal']}): nothing to change"
        return f"{what}: " + ", ".join(f"{key} {before.get(key)} -> {value}" for key, value in after.items())

    def changes(self, parameters: dict[str, Any]) -> list[Change]:
        before = dict(parameters.get("before") or {})
        return [
            Change(setting=f"{parameters['function']} {key}", before=before.get(key), after=value)
            for key, value in dict(parameters.get("after") or {}).items()
        ]

    def usage_after(self, usage: Usage, parameters: dict[str, Any]) -> Usage:
        # A mapping's batch size, parallelisation and failure handling change what Lambda runs, not what the
        # stream is billed for: the same records are read (the Lambda invocations' cost is not estimated).
        return usage

    def bounds(self, block: TuneEventSourcePolicy) -> str:
        failure = "failure handling allowed" if block.allow_failure_handling else "failure handling off"
        return (
            f"batch {block.min_batch_size:,}..{block.max_batch_size:,}, "
            f"parallelization <= {block.max_parallelization_factor}, {failure}"
        )
