"""enhanced-fan-out: RegisterStreamConsumer, and (opt-in) a Lambda consumer's mapping moved onto its own consumer.

Why. Polling consumers (Lambda event-source mappings, KCL applications) share each shard's 5 GetRecords calls
per second and 2 MB/s; with two or more of them, they throttle each other (ReadProvisionedThroughputExceeded). A
consumer registered for enhanced fan-out gets its own 2 MB/s per shard, pushed by SubscribeToShard, and makes no
GetRecords call at all, so every reader moved onto one leaves the shared budget to the others.

One consumer per reader. A registered consumer holds one subscription per shard: a second SubscribeToShard for
the same consumer and shard takes the subscription over. Two functions (or applications) cannot share one
consumer, so each Lambda consumer that moves gets its own, named `<consumer_prefix><function>`.

What a step registers (the shape decides, from the policy and the facts the symptom gathered):
- for each Lambda consumer that opts in (`consumers[].move_to_efo: true`, and `move_lambda_consumers` in this
  action's block), whose mapping reads the stream itself (GetRecords) and is Enabled: its consumer, unless it
  is registered already (a move cut short earlier is resumed, never registered twice);
- `consumer_name`, when the policy names one and it is not registered yet: for a reader you point at it
  yourself (a KCL 2.x application's FanOutConfig, your own SubscribeToShard client). Without it, and without a
  Lambda consumer that opts in, there is nothing to register: a consumer nobody reads through relieves no
  throttling and is billed per consumer-shard hour, so the step is blocked (`work-to-do`) and says how to opt in.

Within AWS's limits, checked before any call and again right before the first one (ListStreamConsumers):
20 consumers per stream (Provisioned and On-demand Standard), 5 in CREATING at once; and the policy's
`max_consumers`, which counts every registered consumer of the stream, ours or not.

Waiting for ACTIVE. RegisterStreamConsumer answers CREATING; a consumer cannot be read (nor mapped) before it
is ACTIVE, and AWS has no waiter for it. `apply` polls DescribeStreamConsumer POLL_SECONDS apart until one
deadline for the whole step (MAX_WAIT_SECONDS, 10 s of the remediator's 300 s, however many functions move), then
moves the functions whose consumer is ACTIVE. A function whose consumer is still CREATING is left on the stream
(nothing is lost) and the result says so; the next read-throttling alarm plans the move again, finds the consumer
registered and only moves (after this action's cooldown). How long CREATING lasts is UNCONFIRMED in aws-facts.

The move, one function at a time, losing no record:
1. GetEventSourceMapping on the old mapping: it must still be Enabled and read the stream itself (never touch a
   disabled mapping: someone stopped it on purpose), and its filters must be readable: AWS returns FilterCriteria
   only to a caller allowed kms:Decrypt on the mapping's KMSKeyArn (FilterCriteriaError otherwise), and a new
   mapping without them would give the function every record, so such a function stays on the stream (the shape
   already leaves it out when the gathered facts show it);
2. ListEventSourceMappings for the function on the consumer: a mapping left by a move cut short is reused (an
   Enabled one), never created twice; one that is not Enabled means someone rolled a move back: both are left;
3. CreateEventSourceMapping on the consumer ARN, with the old mapping's settings (batch size, window,
   parallelization, retries, record age, bisect, on-failure destination, response types, filters, tumbling
   window) and StartingPosition AT_TIMESTAMP (below);
4. UpdateEventSourceMapping Enabled=false on the old one (disabled, not deleted: the move can be rolled back by
   enabling it again and deleting the new one; it would resume from its own checkpoint).
If step 3 fails, the old mapping still reads the stream: nothing was lost or duplicated. If step 4 fails, both
mappings read: nothing is lost but every record is processed twice until the old one is disabled; the failure
names the exact command. No call is retried: a failed RegisterStreamConsumer or CreateEventSourceMapping is
resolved by re-reading (ListStreamConsumers, ListEventSourceMappings), so a consumer or mapping that AWS took in
spite of the error (a timeout, a 5xx) is used, never created twice.

Starting position. Lambda does not report when the old mapping processed its last batch, so the new mapping
starts at AT_TIMESTAMP = the time the evidence was collected, minus the highest
GetRecords.IteratorAgeMilliseconds of the evidence window, minus the window's length (15 min). The iterator
age is the stream's, the maximum over every shard and every polling consumer, so it is never younger than the
moved function's own; the window's length covers a datapoint up to 15 minutes old, and a batch whose oldest
records arrived before the one the metric measured (its newest) and that was not checkpointed yet. Unless one
batch spans more than 15 minutes of arrivals, the start is therefore never after the old mapping's checkpoint:
no record is skipped. Where that reaches back beyond the retention period, the new mapping starts at TRIM_HORIZON
(the oldest record there is). Without an iterator age in the evidence the step is blocked (`move-start-known`).

The new mapping targets the old mapping's FunctionArn, so a mapping on an alias or version stays on it. The
grant's lambda:FunctionArn condition names the unqualified functions; whether IAM matches a qualified ARN against
it is UNCONFIRMED: if it does not, step 3 is denied and nothing is lost.

Duplicates a consumer may see (delivery is at least once, as always with Lambda and Kinesis). During a move:
- every record that arrived between the new mapping's AT_TIMESTAMP start and the old mapping's last
  checkpoint before it was disabled is processed twice, once by each mapping: with the start above, that is
  the records of the stream's highest iterator age plus 15 minutes, less the function's own iterator age
  (about 15 minutes of records for a function that is caught up), plus whatever the old mapping still
  processed between the new mapping's creation and its disabling (seconds, and a batch in flight);
- while both mappings run, the two copies of a record may be processed in either order and concurrently, so
  per-shard ordering holds within each mapping, not across them;
- functions must therefore be idempotent (for example, keyed on the record's sequence number).
If the old mapping is ever re-enabled, it resumes from its own checkpoint and processes again everything the
new mapping has processed since.
"""

from __future__ import annotations

import math
import shlex
from dataclasses import replace
from datetime import timedelta
from time import monotonic, sleep
from typing import Annotated, Any, ClassVar

from pydantic import Field

from remediator.core import limits
from remediator.core.actions.base import Action, ValidationContext
from remediator.core.consumers import MappingFacts, lambda_mappings
from remediator.core.cost import Usage
from remediator.core.grants import (
    ACCOUNT,
    CONSUMER_FUNCTION_MAPPINGS,
    EVENT_SOURCE_MAPPING,
    STREAM,
    STREAM_CONSUMER,
    IamGrant,
)
from remediator.core.plan import Change, GuardrailVerdict, PlannedStep, Proposal
from remediator.core.policy import ActionPolicy, ConsumerName, StreamPolicy, text_like
from remediator.core.ports import ReadPorts, ServicePort, WritePorts
from remediator.core.registry import REGISTRY
from remediator.core.stream_consumers import StreamConsumerFacts, read_stream_consumers, stream_consumers

ITERATOR_AGE_KEY = "iterator_age_ms"  # GetRecords.IteratorAgeMilliseconds (Maximum) in the evidence
ACTIVE = "ACTIVE"
DELETING = "DELETING"
AT_TIMESTAMP = "AT_TIMESTAMP"
TRIM_HORIZON = "TRIM_HORIZON"
# Mapping states in which a mapping reads (or is about to): a move onto one of them is complete.
READING_STATES = ("Enabled", "Enabling", "Creating", "Updating")
# Settings of the old mapping the new one keeps (CreateEventSourceMapping's members that apply to Kinesis).
COPIED_SETTINGS = (
    "BatchSize",
    "MaximumBatchingWindowInSeconds",
    "ParallelizationFactor",
    "MaximumRecordAgeInSeconds",
    "BisectBatchOnFunctionError",
    "MaximumRetryAttempts",
    "TumblingWindowInSeconds",
    "FunctionResponseTypes",
    "FilterCriteria",
    "KMSKeyArn",
    "MetricsConfig",
)


ConsumerPrefix = Annotated[
    str, text_like(r"^[a-zA-Z0-9_.-]{0,64}$", "a name prefix of at most 64 letters, digits, '_', '.' or '-'")
]


class EnhancedFanOutPolicy(ActionPolicy):
    consumer_prefix: ConsumerPrefix = Field(
        "efo-",
        description="A Lambda consumer that moves reads through its own consumer, named this prefix followed by "
        "the function's name (a consumer holds one subscription per shard, so two readers cannot share one).",
    )
    consumer_name: ConsumerName | None = Field(
        None,
        description="Also register a consumer of this name, for a reader you point at it yourself (a KCL 2.x "
        "application's FanOutConfig, your own SubscribeToShard client). Empty: register consumers only for the "
        "Lambda consumers that move.",
    )
    move_lambda_consumers: bool = Field(
        True,
        description="Move the mapping of each Lambda consumer whose entry says `move_to_efo: true` onto its own "
        "consumer (a new mapping starting where the old one stands, then the old one disabled). false: never "
        "move a mapping, whatever the consumers say. A consumer without `move_to_efo: true` is never moved.",
    )
    max_consumers: int = Field(
        5,
        ge=1,
        le=limits.MAX_EFO_CONSUMERS_PER_STREAM,
        description="Never let the stream have more registered consumers than this, counting every consumer "
        f"registered on it, ours or not (AWS allows {limits.MAX_EFO_CONSUMERS_PER_STREAM}). Each one is billed "
        "per consumer-shard hour.",
    )
    cooldown_minutes: int = Field(
        60, ge=1, le=1440, description="Minimum time between two applied enhanced-fan-out steps on the stream."
    )
    daily_budget: int = Field(
        2, ge=0, le=limits.MAX_EFO_CONSUMERS_PER_STREAM, description="Applied steps per stream per rolling 24 h."
    )


def names(value: Any) -> list[str]:
    """A comma-separated list parameter (consumer and function names hold no comma) as a list."""
    return [part for part in str(value or "").split(",") if part]


def _joined(items: list[str]) -> str:
    return ",".join(items)


class MoveIncomplete(RuntimeError):
    """A step that stopped part-way: says what was done, what was not, and what reads the stream now."""


def _moving_functions(policy: StreamPolicy, block: EnhancedFanOutPolicy) -> list[str]:
    if not block.move_lambda_consumers:
        return []
    return [c.function for c in policy.lambda_consumers if c.move_to_efo]


def _stays(fact: MappingFacts | None, stream_arn: str) -> str | None:
    """Why an opted-in function's mapping is not moved, or None when it can be."""
    if fact is None:
        return "its mapping was not read"
    if not fact.found:
        return "it has no mapping on this stream"
    if fact.on_efo:
        return "it reads through a consumer already"
    if fact.source_arn != stream_arn:
        return f"its mapping reads {fact.source_arn}"
    if fact.state != "Enabled":
        return f"its mapping is {fact.state} (a mapping that is not Enabled is never changed)"
    return unreadable_filters(fact.filter_criteria_error, fact.kms_key_arn, fact.has_filter_criteria)


def unreadable_filters(error: Any, kms_key_arn: Any, has_filters: bool) -> str | None:
    """Why a mapping's filters cannot be copied, or None. AWS returns FilterCriteria only to a caller allowed
    kms:Decrypt on the mapping's KMSKeyArn (FilterCriteriaError otherwise): a new mapping created without them
    would give the function every record."""
    if error:
        return (
            f"its mapping's filter criteria could not be read ({error}): a new mapping without them would give "
            "the function every record"
        )
    if kms_key_arn and not has_filters:
        return (
            f"its mapping's filter criteria are encrypted with {kms_key_arn} and were not returned (no kms:Decrypt): "
            "a new mapping without them would give the function every record"
        )
    return None


class _Deadline:
    """One bound on the waiting of a whole step (monotonic clock), whatever the number of consumers waited for."""

    def __init__(self, seconds: float) -> None:
        self.end = monotonic() + seconds
        self.budget = seconds  # also bounds the time slept, should the clock not move (a test's fake sleep)

    def allows(self, seconds: float) -> bool:
        return seconds <= min(self.end - monotonic(), self.budget)

    def sleep(self, seconds: float) -> None:
        self.budget -= seconds
        sleep(seconds)


@REGISTRY.action
class EnhancedFanOut(Action[EnhancedFanOutPolicy]):
    id = "enhanced-fan-out"
    title = "RegisterStreamConsumer (enhanced fan-out), and move opted-in Lambda consumers onto their own consumer"
    policy_schema = EnhancedFanOutPolicy
    grants = (
        IamGrant(
            actions=("kinesis:ListStreamConsumers", "kinesis:RegisterStreamConsumer"),
            scope=STREAM,
            why="Count the stream's consumers right before registering one (AWS allows 20), and register it.",
        ),
        IamGrant(
            actions=("kinesis:DescribeStreamConsumer",),
            scope=STREAM_CONSUMER,
            why="The stream's consumers that the action registers: polled (a bounded number of times) until ACTIVE "
            "before a function is mapped onto one.",
        ),
        IamGrant(
            actions=("lambda:GetEventSourceMapping", "lambda:UpdateEventSourceMapping"),
            scope=EVENT_SOURCE_MAPPING,
            why="Re-read the old mapping of a Lambda consumer that opts in to the move (consumers[].move_to_efo) "
            "and disable it once the new one exists. Grants are static per action: they are present for every "
            "Lambda consumer of the policy, and used only for those that opt in.",
        ),
        IamGrant(
            actions=("lambda:CreateEventSourceMapping",),
            scope=CONSUMER_FUNCTION_MAPPINGS,
            why="The Service Authorization Reference lists no resource type for lambda:CreateEventSourceMapping; "
            "the lambda:FunctionArn condition keeps it to the policy's consumer functions. Used only to map a "
            "function that opts in to the move onto its new consumer.",
        ),
        IamGrant(
            actions=("lambda:ListEventSourceMappings",),
            scope=ACCOUNT,
            why="The Service Authorization Reference lists no resource type for lambda:ListEventSourceMappings; "
            "read right before a mapping is created, so that a move cut short is resumed, never doubled.",
        ),
    )
    sample_parameters: ClassVar[dict[str, Any]] = {
        "consumers_before": 2,
        "consumers_after": 3,
        "register": "analytics-efo",
        "move": "",
    }

    # At most MAX_WAIT_SECONDS of waiting for CREATING -> ACTIVE in one step, however many consumers it waits for
    # (the Lambda's timeout is 300 s), polling POLL_SECONDS apart.
    MAX_WAIT_SECONDS: ClassVar[float] = 10.0
    POLL_SECONDS: ClassVar[float] = 2.0

    # --- shape ------------------------------------------------------------------------------------------

    def shape(self, proposal: Proposal, context: ValidationContext) -> Proposal:
        block = self.block(context.policy)
        evidence = context.evidence
        stream_arn = evidence.stream.arn
        registered = stream_consumers(evidence)
        known = {c.name: c for c in registered or []}
        facts = {m.function: m for m in lambda_mappings(evidence)}

        notes: list[str] = []
        moves: list[tuple[str, str]] = []
        for function in _moving_functions(context.policy, block):
            why_not = _stays(facts.get(function), stream_arn)
            if why_not:
                notes.append(f"{function} stays: {why_not}")
            else:
                moves.append((function, str(facts[function].uuid)))
        wanted = [f"{block.consumer_prefix}{function}" for function, _ in moves]
        if block.consumer_name:
            wanted.append(block.consumer_name)
        # Registered already (a move cut short, or an earlier step): never registered twice.
        register = [name for name in dict.fromkeys(wanted) if name not in known]

        parameters: dict[str, Any] = {"register": _joined(register), "move": _joined([f for f, _ in moves])}
        if register:  # apply re-checks it against the consumers registered right before it registers
            parameters["max_consumers"] = block.max_consumers
        if registered is not None:
            parameters["consumers_before"] = len(registered)
            parameters["consumers_after"] = len(registered) + len(register)
        if moves:
            parameters["consumer_prefix"] = block.consumer_prefix
            parameters["from_mappings"] = _joined([uuid for _, uuid in moves])
            parameters |= self._starting_position(context)

        reason = proposal.reason
        if notes:
            reason += "; " + "; ".join(notes)
        if not register and not moves:
            reason += (
                "; nothing to register: opt a Lambda consumer in with `move_to_efo: true`, or name a consumer "
                "for your own reader in actions.enhanced_fan_out.consumer_name"
            )
        return proposal.model_copy(update={"parameters": parameters, "reason": reason})

    @staticmethod
    def _starting_position(context: ValidationContext) -> dict[str, Any]:
        """Where the new mappings start: never after the old mappings' checkpoints (see the module's docstring)."""
        evidence = context.evidence
        age_ms = evidence.maximum(ITERATOR_AGE_KEY)
        if age_ms is None:
            return {}
        lookback = math.ceil(age_ms / 1000) + evidence.window_minutes * 60
        if lookback >= evidence.stream.retention_hours * 3600:
            return {"starting_position": TRIM_HORIZON, "lookback_seconds": lookback}
        # Whole seconds, rounded down: earlier is safe (a few more duplicates), later could skip records.
        start = (evidence.collected_at - timedelta(seconds=lookback)).replace(microsecond=0)
        return {
            "starting_position": AT_TIMESTAMP,
            "starting_timestamp": start.isoformat(),
            "lookback_seconds": lookback,
        }

    # --- checks -----------------------------------------------------------------------------------------

    def checks(self, step: PlannedStep, context: ValidationContext) -> list[GuardrailVerdict]:
        block = self.block(context.policy)
        p = step.parameters
        register, moves = names(p.get("register")), names(p.get("move"))
        registered = stream_consumers(context.evidence)
        after = p.get("consumers_after")
        unknown = "the stream's registered consumers were not read (its symptom gathered no ListStreamConsumers)"
        verdicts = [
            GuardrailVerdict(
                name="work-to-do",
                passed=bool(register or moves),
                detail=f"register {_joined(register) or 'none'}; move {_joined(moves) or 'none'}"
                if register or moves
                else "no consumer to register and no Lambda consumer to move (see the reason)",
            ),
            GuardrailVerdict(
                name="aws-max-consumers",
                passed=after is not None and int(after) <= limits.MAX_EFO_CONSUMERS_PER_STREAM,
                detail=unknown
                if after is None
                else f"{p.get('consumers_before')} + {len(register)} = {after} of at most "
                f"{limits.MAX_EFO_CONSUMERS_PER_STREAM} consumers per stream",
            ),
            GuardrailVerdict(
                name="policy-max-consumers",
                passed=after is not None and int(after) <= block.max_consumers,
                detail=unknown if after is None else f"{after} of at most max_consumers {block.max_consumers}",
            ),
        ]
        creating = [c.name for c in registered or [] if c.status == "CREATING"]
        verdicts.append(
            GuardrailVerdict(
                name="aws-consumers-creating",
                passed=len(creating) + len(register) <= limits.MAX_EFO_CONSUMERS_CREATING,
                detail=f"{len(creating)} in CREATING + {len(register)} new, of at most "
                f"{limits.MAX_EFO_CONSUMERS_CREATING} at once",
            )
        )
        prefix = str(p.get("consumer_prefix", ""))
        needed = {*register, *(f"{prefix}{f}" for f in moves)}
        deleting = sorted(c.name for c in registered or [] if c.name in needed and c.status == DELETING)
        verdicts.append(
            GuardrailVerdict(
                name="consumers-usable",
                passed=not deleting,
                detail=f"consumer {', '.join(deleting)} is DELETING: wait until it is gone"
                if deleting
                else "no consumer this step needs is being deleted",
            )
        )
        if moves:
            known = "starting_position" in p
            verdicts.append(
                GuardrailVerdict(
                    name="move-start-known",
                    passed=known,
                    detail=f"new mappings start at {p.get('starting_timestamp', p.get('starting_position'))} "
                    f"({p.get('lookback_seconds')} s back)"
                    if known
                    else "no GetRecords.IteratorAgeMilliseconds in the evidence: where the old mappings stand is "
                    "unknown, so no new mapping could start without skipping records",
                )
            )
        return verdicts

    # --- apply ------------------------------------------------------------------------------------------

    def apply(self, step: PlannedStep, aws: WritePorts) -> dict[str, Any]:
        p = step.parameters
        kinesis = aws.service("kinesis")
        # Re-read right before the first change: the limits hold for the stream as it is now.
        consumers = {c.name: c for c in read_stream_consumers(step.stream_arn, kinesis)}
        register = [name for name in names(p.get("register")) if name not in consumers]
        self._recheck(p, consumers, register)
        done: list[str] = []
        for name in register:
            try:
                response = kinesis.call("RegisterStreamConsumer", StreamARN=step.stream_arn, ConsumerName=name)
            except Exception as exc:
                # Never retried: re-read. A call that failed after AWS took it (a timeout, a 5xx, or the SDK's own
                # retry answered ResourceInUseException) left the consumer registered, and that is what we wanted.
                found = {c.name: c for c in read_stream_consumers(step.stream_arn, kinesis)}.get(name)
                if found is None:
                    raise MoveIncomplete(self._so_far(done) + f"registering {name} failed: {exc}") from exc
                consumers[name] = found
                done.append(f"registered {name} (found registered after: {exc})")
                continue
            described = response.get("Consumer", {})
            consumers[name] = StreamConsumerFacts(
                name=name, arn=str(described.get("ConsumerARN", "")), status=str(described.get("ConsumerStatus", ""))
            )
            done.append(f"registered {name}")

        moved: dict[str, str] = {}
        waiting: list[str] = []
        left: list[str] = []
        if names(p.get("move")):
            lam = aws.service("lambda")
            prefix = str(p.get("consumer_prefix", ""))
            deadline = _Deadline(self.MAX_WAIT_SECONDS)
            for function, old in zip(names(p.get("move")), names(p.get("from_mappings")), strict=True):
                known = consumers.get(f"{prefix}{function}")
                consumer = self._until_active(kinesis, known, deadline) if known else None
                if consumer is None or consumer.status != ACTIVE:
                    waiting.append(function)
                    continue
                was_moved, outcome = self._move(lam, step, function, old, consumer, done)
                if was_moved:
                    moved[function] = outcome
                    done.append(f"moved {function} ({outcome})")
                else:
                    left.append(f"{function}: {outcome}")
        return {
            "registered": register,
            "moved": moved,
            "waiting_for_active": waiting,
            "left_alone": left,
        }

    def confirm(self, step: PlannedStep, aws: ReadPorts) -> bool | None:
        """Registering only: every consumer the step registers is listed: made; none is: not made. A step that
        also moves functions (several changes, each settled by `apply` itself where it can) or that got part of
        the way: cannot tell from here."""
        p = step.parameters
        wanted = set(names(p.get("register")))
        if names(p.get("move")) or not wanted:
            return None
        listed = {c.name for c in read_stream_consumers(step.stream_arn, aws.service("kinesis"))}
        if wanted <= listed:
            return True
        return False if not wanted & listed else None

    @staticmethod
    def _recheck(p: dict[str, Any], consumers: dict[str, StreamConsumerFacts], register: list[str]) -> None:
        """AWS's 20 consumers and 5 in CREATING, and the policy's max_consumers (carried by the step), against the
        stream's consumers as they are now: raises before any change when the step no longer fits."""
        if not register:
            return
        total = len(consumers) + len(register)
        now = f"nothing changed: the stream has {len(consumers)} consumers now, and {len(register)} more would exceed"
        if total > limits.MAX_EFO_CONSUMERS_PER_STREAM:
            raise MoveIncomplete(f"{now} AWS's {limits.MAX_EFO_CONSUMERS_PER_STREAM}")
        cap = p.get("max_consumers")
        if cap is not None and total > int(cap):
            raise MoveIncomplete(f"{now} the policy's max_consumers {cap}")
        creating = sum(1 for c in consumers.values() if c.status == "CREATING")
        if creating + len(register) > limits.MAX_EFO_CONSUMERS_CREATING:
            raise MoveIncomplete(
                f"nothing changed: {creating} consumers are CREATING now, and {len(register)} more would exceed "
                f"AWS's {limits.MAX_EFO_CONSUMERS_CREATING} at once"
            )

    @staticmethod
    def _so_far(done: list[str]) -> str:
        return "; ".join(done) + "; then " if done else "nothing changed: "

    def _until_active(
        self, kinesis: ServicePort, consumer: StreamConsumerFacts, deadline: _Deadline
    ) -> StreamConsumerFacts:
        """Poll DescribeStreamConsumer until ACTIVE, until the step's deadline (no waiter exists)."""
        while consumer.status != ACTIVE and consumer.arn and deadline.allows(self.POLL_SECONDS):
            deadline.sleep(self.POLL_SECONDS)
            described = kinesis.call("DescribeStreamConsumer", ConsumerARN=consumer.arn).get("ConsumerDescription", {})
            consumer = consumer.model_copy(update={"status": str(described.get("ConsumerStatus", consumer.status))})
        return consumer

    def _move(
        self,
        lam: ServicePort,
        step: PlannedStep,
        function: str,
        old_uuid: str,
        consumer: StreamConsumerFacts,
        done: list[str],
    ) -> tuple[bool, str]:
        """One function onto its consumer: (True, '<old> -> <new>') when moved, (False, why) when left alone."""
        p = step.parameters
        old = lam.call("GetEventSourceMapping", UUID=old_uuid)
        if old.get("State") != "Enabled" or old.get("EventSourceArn") != step.stream_arn:
            return False, f"mapping {old_uuid} is {old.get('State')} on {old.get('EventSourceArn')} now"
        filters = unreadable_filters(
            old.get("FilterCriteriaError"), old.get("KMSKeyArn"), bool(old.get("FilterCriteria"))
        )
        if filters:
            return False, f"{filters}; mapping {old_uuid} keeps reading the stream"
        target = str(old.get("FunctionArn") or function)
        present = self._mappings_on(lam, target, consumer)
        if present:
            state = present[0].get("State")
            if state not in READING_STATES:
                return False, (
                    f"its mapping {present[0].get('UUID')} on {consumer.name} is {state} (a move rolled back?); "
                    f"mapping {old_uuid} keeps reading the stream"
                )
            new_uuid = str(present[0].get("UUID"))
        else:
            settings = {key: old[key] for key in COPIED_SETTINGS if old.get(key) is not None}
            failure = (old.get("DestinationConfig") or {}).get("OnFailure") or {}
            if failure.get("Destination"):
                settings["DestinationConfig"] = {"OnFailure": {"Destination": failure["Destination"]}}
            start: dict[str, Any] = {"StartingPosition": p["starting_position"]}
            if p["starting_position"] == AT_TIMESTAMP:
                start["StartingPositionTimestamp"] = p["starting_timestamp"]
            try:
                created = lam.call(
                    "CreateEventSourceMapping",
                    FunctionName=target,
                    EventSourceArn=consumer.arn,
                    Enabled=True,
                    **start,
                    **settings,
                )
            except Exception as exc:
                # Never retried: re-read. None was there a moment ago, so a mapping there now is this call's.
                appeared = self._mappings_on(lam, target, consumer)
                if not appeared:
                    raise MoveIncomplete(
                        self._so_far(done) + f"mapping {function} onto {consumer.name} failed: {exc}; mapping "
                        f"{old_uuid} still reads the stream (nothing lost)"
                    ) from exc
                created = appeared[0]
            new_uuid = str(created.get("UUID"))
        try:
            lam.call("UpdateEventSourceMapping", UUID=old_uuid, Enabled=False)
        except Exception as exc:
            raise MoveIncomplete(
                self._so_far(done) + f"created mapping {new_uuid} for {function} on {consumer.name}, but disabling "
                f"mapping {old_uuid} failed: {exc}; both read, so every record is processed twice until you run: "
                + shlex.join(["aws", "lambda", "update-event-source-mapping", "--uuid", old_uuid, "--no-enabled"])
            ) from exc
        return True, f"{old_uuid} -> {new_uuid}"

    @staticmethod
    def _mappings_on(lam: ServicePort, function: str, consumer: StreamConsumerFacts) -> list[dict[str, Any]]:
        """The function's mappings on the consumer (one page: a function has at most one per source)."""
        response = lam.call("ListEventSourceMappings", FunctionName=function, EventSourceArn=consumer.arn)
        return list(response.get("EventSourceMappings", []))

    # --- how people read it -----------------------------------------------------------------------------

    def cli_command(self, stream_arn: str, parameters: dict[str, Any]) -> str:
        """One command per call, joined with '&&' when the step moves a function (every value shell-quoted).
        The consumer's ARN is only known once it is registered: the command reads it back."""
        commands = [
            shlex.join(
                ["aws", "kinesis", "register-stream-consumer", "--stream-arn", stream_arn, "--consumer-name", name]
            )
            for name in names(parameters.get("register"))
        ]
        prefix = str(parameters.get("consumer_prefix", ""))
        moves = zip(names(parameters.get("move")), names(parameters.get("from_mappings")), strict=False)
        for function, old in moves:
            consumer_arn = shlex.join(
                [
                    "aws", "kinesis", "describe-stream-consumer",
                    "--stream-arn", stream_arn,
                    "--consumer-name", f"{prefix}{function}",
                    "--query", "ConsumerDescription.ConsumerARN",
                    "--output", "text",
                ]
            )  # fmt: skip
            start = ["--starting-position", str(parameters.get("starting_position", AT_TIMESTAMP))]
            if "starting_timestamp" in parameters:
                start += ["--starting-position-timestamp", str(parameters["starting_timestamp"])]
            create = shlex.join(["aws", "lambda", "create-event-source-mapping", "--function-name", function])
            commands.append(f'{create} --event-source-arn "$({consumer_arn})" {shlex.join(start)}')
            commands.append(shlex.join(["aws", "lambda", "update-event-source-mapping", "--uuid", old, "--no-enabled"]))
        if not commands:
            return shlex.join(["aws", "kinesis", "list-stream-consumers", "--stream-arn", stream_arn])
        return " && ".join(commands)

    def summary(self, parameters: dict[str, Any]) -> str:
        register, moves = names(parameters.get("register")), names(parameters.get("move"))
        parts = []
        if register:
            parts.append(
                f"register {len(register)} EFO consumer{'s' if len(register) != 1 else ''} ({', '.join(register)})"
            )
        if moves:
            parts.append(f"move {', '.join(moves)} onto {'their' if len(moves) > 1 else 'its'} own consumer")
        if not parts:
            return "enhanced fan-out: nothing to register"
        text = "enhanced fan-out: " + " and ".join(parts)
        if "consumers_after" in parameters:
            text += f"; consumers {parameters['consumers_before']} -> {parameters['consumers_after']}"
        return text

    def changes(self, parameters: dict[str, Any]) -> list[Change]:
        found: list[Change] = []
        if "consumers_after" in parameters:
            found.append(
                Change(
                    setting="registered consumers",
                    before=parameters["consumers_before"],
                    after=parameters["consumers_after"],
                )
            )
        found += [
            Change(setting=f"consumer {name}", before="none", after="registered")
            for name in names(parameters.get("register"))
        ]
        prefix = str(parameters.get("consumer_prefix", ""))
        start = str(parameters.get("starting_timestamp", parameters.get("starting_position", "")))
        for function, old in zip(names(parameters.get("move")), names(parameters.get("from_mappings")), strict=False):
            found.append(
                Change(
                    setting=f"{function} reads",
                    before=f"the stream (GetRecords, mapping {old})",
                    after=f"consumer {prefix}{function} (a new mapping from {start})",
                )
            )
            found.append(Change(setting=f"mapping {old}", before="Enabled", after="Disabled"))
        return found

    def usage_after(self, usage: Usage, parameters: dict[str, Any]) -> Usage:
        # Each consumer registered is billed per consumer-shard-hour (provisioned) and per GB it reads; each
        # Lambda consumer moved onto its own stops polling (on-demand bills GetRecords reads per GB). Unknown
        # consumers count as none before: the step's own consumers are still counted.
        registered = len(names(parameters.get("register")))
        moved = len(names(parameters.get("move")))
        return replace(
            usage,
            efo_consumers=(usage.efo_consumers or 0) + registered,
            polling_readers=max(usage.polling_readers - moved, 0),
        )

    def bounds(self, block: EnhancedFanOutPolicy) -> str:
        return f"at most {block.max_consumers} consumers" + ("" if block.move_lambda_consumers else ", no moves")
