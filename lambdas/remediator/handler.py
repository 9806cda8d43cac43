"""Lambda entry point: parse the event, call the service once per unit of work, return a model.

Four events are ours: an alarm going into ALARM (remediate), an alarm going from ALARM back to OK (resolve:
the "resolved" e-mail, pending follow-ups cancelled), a follow-through schedule firing (core.follow_through:
remediate again, as attempt n of the same alarm state change), and the shard census's schedule (service.census:
publish every protected stream's open shards). A fleet alarm's contributor state change (core.fleet: one stream
of a Metrics Insights alarm) is the first two for that stream, exactly as its own alarm's would be. Events we do
not understand are logged and ignored (returning normally, so AWS does not retry them).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import replace
from functools import cache
from typing import Any

from aws_lambda_powertools.utilities.idempotency import (
    DynamoDBPersistenceLayer,
    IdempotencyConfig,
    idempotent_function,
)
from aws_lambda_powertools.utilities.idempotency.exceptions import IdempotencyAlreadyInProgressError
from aws_lambda_powertools.utilities.parser import parse
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import ValidationError

from remediator.clients.audit import DynamoAuditLog
from remediator.clients.aws import RETRY_CONFIG, client, seconds_after_change, worst_case_seconds
from remediator.clients.follow_through import CloudWatchAlarmStates, EventBridgeScheduler
from remediator.clients.kinesis import KinesisStreams
from remediator.clients.members import MemberSessions
from remediator.clients.metrics import CloudWatchMetrics
from remediator.clients.notifier import SnsNotifier
from remediator.clients.parameters import SsmKillSwitch, SsmPolicySource
from remediator.clients.services import AwsServices
from remediator.core.alarm import AlarmResolved, AlarmTrigger, Origin, event_origin, identify, identify_contributor
from remediator.core.deployment import CENSUS_SOURCE, RemediatorMetric
from remediator.core.fleet import CONTRIBUTOR_DETAIL_TYPE
from remediator.core.follow_through import FOLLOW_UP_SOURCE, FollowUp
from remediator.core.outcome import AuditEntry, Outcome, OutcomeStatus
from remediator.events import AlarmContributorStateChangeEvent, AlarmStateChangeEvent, CensusEvent
from remediator.observability import count, logger, metrics, publish_open_shards, record_outcome, tracer
from remediator.service import Dependencies, FollowThrough, Members, census, follow_up, remediate, resolve
from remediator.settings import Settings

settings = Settings.from_environment(os.environ)

# One alarm state change (name + state timestamp) acts once, however often it is delivered.
idempotency = IdempotencyConfig(
    event_key_jmespath="[alarm_name, state_timestamp]",
    raise_on_no_idempotency_key=True,
    expires_after_seconds=24 * 3600,
)
# One DynamoDB client serves both the idempotency layer and the audit log.
dynamodb = client("dynamodb", region=settings.region)
persistence = DynamoDBPersistenceLayer(table_name=settings.idempotency_table, boto3_client=dynamodb)
# A follow-through is its own unit of work: the alarm state change and the attempt (its own "at most one change").
follow_up_idempotency = IdempotencyConfig(
    event_key_jmespath="[alarm_name, state_timestamp, attempt]",
    raise_on_no_idempotency_key=True,
    expires_after_seconds=24 * 3600,
)
# Its own persistence layer: Powertools configures a layer's key (event_key_jmespath) once, with the first config
# it is used with, so a layer shared with `idempotency` would key every follow-up without its attempt.
follow_up_persistence = DynamoDBPersistenceLayer(table_name=settings.idempotency_table, boto3_client=dynamodb)
# A member's alarm state change (issue 11.4): the same, keyed also by the account and region it comes from (an alarm
# of the same name may change state at the same time in two accounts). Hub-local keys stay as they were.
member_idempotency = IdempotencyConfig(
    event_key_jmespath="[account, region, alarm_name, state_timestamp]",
    raise_on_no_idempotency_key=True,
    expires_after_seconds=24 * 3600,
)
member_persistence = DynamoDBPersistenceLayer(table_name=settings.idempotency_table, boto3_client=dynamodb)
member_follow_up_idempotency = IdempotencyConfig(
    event_key_jmespath="[account, region, alarm_name, state_timestamp, attempt]",
    raise_on_no_idempotency_key=True,
    expires_after_seconds=24 * 3600,
)
member_follow_up_persistence = DynamoDBPersistenceLayer(table_name=settings.idempotency_table, boto3_client=dynamodb)
# The function's own ARN, from the invocation (the follow-through schedules' target): set per invocation.
_invoked: dict[str, str] = {}


def _follow_through() -> FollowThrough | None:
    if settings.follow_up_role_arn is None or settings.schedule_prefix is None:
        logger.warning("Follow-through is off: the Scheduler role or schedule prefix is not configured")
        return None
    return FollowThrough(
        scheduler=EventBridgeScheduler(
            client("scheduler", region=settings.region),
            settings.follow_up_role_arn,
            lambda: _invoked["arn"],
        ),
        alarms=CloudWatchAlarmStates(client("cloudwatch", region=settings.region), settings.alarm_prefix),
        schedule_prefix=settings.schedule_prefix,
    )


def _partition() -> str:
    """The hub's partition (aws, aws-cn, aws-us-gov), from its own ARN: the members' role ARNs are in it."""
    parts = _invoked.get("arn", "").split(":")
    return parts[1] if len(parts) > 1 and parts[1] else "aws"


@cache
def dependencies() -> Dependencies:
    ssm = client("ssm", region=settings.region)
    audit = DynamoAuditLog(dynamodb, settings.audit_table)
    sessions = MemberSessions(client("sts", region=settings.region), settings.member_external_id, _partition)
    return Dependencies(
        streams=KinesisStreams(client("kinesis", region=settings.region)),
        metrics=CloudWatchMetrics(client("cloudwatch", region=settings.region)),
        reads=AwsServices(lambda service: client(service, region=settings.region)),
        writes=AwsServices(lambda service: client(service, region=settings.region, writes=True)),
        audit=audit,
        notifier=SnsNotifier(client("sns", region=settings.region), settings.topic_arn),
        kill_switch=SsmKillSwitch(ssm, settings.kill_switch_parameter),
        policies=SsmPolicySource(ssm, settings.policy_parameter_prefix),
        seconds_after_change=seconds_after_change(),
        alarm_prefix=settings.alarm_prefix,
        follow_through=_follow_through(),
        # The hub's account is set per invocation (_invocation_dependencies), from the invoked function's ARN.
        members=Members(connect=sessions.connect, audit=audit.scoped, hub_account="", hub_region=settings.region),
    )


# Seconds left in the current invocation (from its LambdaContext): a change starts only with time to settle it.
_time_left: ContextVar[Any] = ContextVar("time_left", default=None)


def _invocation_dependencies() -> Dependencies:
    """The cold-start dependencies, with this invocation's clock of time left and the hub's own account."""
    deps = dependencies()
    time_left = _time_left.get()
    if time_left is not None:
        deps = replace(deps, time_left=time_left)
    if deps.members is not None:
        deps = replace(deps, members=replace(deps.members, hub_account=_own_account_of(_invoked.get("arn", ""))))
    return deps


@idempotent_function(data_keyword_argument="trigger", config=idempotency, persistence_store=persistence)
def handle_trigger(trigger: AlarmTrigger) -> dict[str, Any]:
    return _finished(remediate(trigger, _invocation_dependencies()), "Remediation finished")


@idempotent_function(data_keyword_argument="trigger", config=member_idempotency, persistence_store=member_persistence)
def handle_member_trigger(trigger: AlarmTrigger) -> dict[str, Any]:
    return _finished(remediate(trigger, _invocation_dependencies()), "Remediation finished")


@idempotent_function(data_keyword_argument="resolved", config=member_idempotency, persistence_store=member_persistence)
def handle_member_resolution(resolved: AlarmResolved) -> dict[str, Any]:
    return _finished(resolve(resolved, _invocation_dependencies()), "Alarm resolution handled")


def _finished(outcome: Outcome, message: str) -> dict[str, Any]:
    """Count and log an outcome, and return it. After a change nothing may fail the invocation for a metric or a
    log line (a retry would only resume it, but it would also e-mail again)."""
    try:
        record_outcome(outcome)
        logger.info(message, extra={"outcome": outcome.model_dump(exclude={"plan"})})
    except Exception:
        logger.exception("Could not record the outcome's metric")
    return outcome.model_dump(mode="json")


DUPLICATE_IN_PROGRESS = "duplicate delivery in progress"


def _own_account(context: LambdaContext) -> str:
    """The account this function runs in, from its ARN (arn:aws:lambda:<region>:<account>:function:<name>); '' if
    the context has no such ARN. The hub's own account (issue 11.4) is this: no API call, on every invocation."""
    return _own_account_of(str(getattr(context, "invoked_function_arn", "") or ""))


def _own_account_of(arn: str) -> str:
    parts = arn.split(":")
    return parts[4] if len(parts) > 4 else ""


@idempotent_function(
    data_keyword_argument="event", config=follow_up_idempotency, persistence_store=follow_up_persistence
)
def handle_follow_up(event: FollowUp) -> dict[str, Any]:
    return _finished(follow_up(event, settings.alarm_prefix, _invocation_dependencies()), "Follow-through finished")


@idempotent_function(
    data_keyword_argument="event", config=member_follow_up_idempotency, persistence_store=member_follow_up_persistence
)
def handle_member_follow_up(event: FollowUp) -> dict[str, Any]:
    return _finished(follow_up(event, settings.alarm_prefix, _invocation_dependencies()), "Follow-through finished")


@idempotent_function(data_keyword_argument="resolved", config=idempotency, persistence_store=persistence)
def handle_resolution(resolved: AlarmResolved) -> dict[str, Any]:
    return _finished(resolve(resolved, dependencies()), "Alarm resolution handled")


def _ignored(reason: str, stream: str = "-", symptom: str = "-") -> dict[str, Any]:
    return Outcome(status=OutcomeStatus.IGNORED, stream=stream, symptom=symptom, detail=reason).model_dump(mode="json")


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    idempotency.register_lambda_context(context)
    _time_left.set(lambda: context.get_remaining_time_in_millis() / 1000)
    follow_up_idempotency.register_lambda_context(context)
    member_idempotency.register_lambda_context(context)
    member_follow_up_idempotency.register_lambda_context(context)
    _invoked["arn"] = str(getattr(context, "invoked_function_arn", "") or "")
    if isinstance(event, dict) and event.get("source") == FOLLOW_UP_SOURCE:
        return _follow_up(event)
    if isinstance(event, dict) and event.get("source") == CENSUS_SOURCE:
        return _census(event)
    if isinstance(event, dict) and event.get("detail-type") == CONTRIBUTOR_DETAIL_TYPE:
        return _contributor(event, context)
    try:
        change = parse(event=event, model=AlarmStateChangeEvent)
    except (ValidationError, ValueError, TypeError) as exc:
        logger.error("Ignoring an event that is not a CloudWatch alarm state change", extra={"error": str(exc)})
        count(RemediatorMetric.UNRECOGNISED_EVENTS)
        return _ignored("not a CloudWatch Alarm State Change event")

    detail = change.detail
    # Event trust (issue 11.4): the hub's own account and region, or a member's whose envelope and alarm ARN agree;
    # whether a policy names the stream there is the service's check. An event that names no well-formed account
    # is only logged (no stream of ours to audit it under).
    origin = _origin(change, context)
    if origin.problem and not origin.audited:
        logger.warning(
            "Ignoring an alarm from elsewhere", extra={"alarm": detail.alarmName[:300], "reason": origin.problem}
        )
        count(RemediatorMetric.IGNORED_ALARM_CHANGES)
        return _ignored(origin.problem)

    trigger, why_not = identify(
        alarm=detail.alarmName,
        prefix=settings.alarm_prefix,
        state=detail.state.value,
        previous_state=detail.previousState.value if detail.previousState else None,
        state_timestamp=detail.state.timestamp,
        dimensions=detail.dimensions(),
        account=change.account,
        region=change.region,
        reason=detail.state.reason,
        previous_timestamp=detail.previousState.timestamp if detail.previousState else None,
    )
    if trigger is None:
        logger.info("Ignoring alarm state change", extra={"alarm": detail.alarmName, "reason": why_not})
        count(RemediatorMetric.IGNORED_ALARM_CHANGES)
        return _ignored(why_not)
    if origin.member:
        trigger = trigger.model_copy(update={"member": True})
        logger.append_keys(account=trigger.account, region=trigger.region)
    logger.append_keys(stream=trigger.stream, symptom=trigger.symptom, alarm=trigger.alarm_name)
    if origin.problem:  # one of our alarms' names, from a well-formed account and region: audited there
        return _distrusted(trigger, origin.problem)
    if isinstance(trigger, AlarmResolved):
        count(RemediatorMetric.ALARM_RESOLUTIONS)
        if trigger.member:
            return handle_member_resolution(resolved=trigger)
        return handle_resolution(resolved=trigger)
    # Counted before the idempotency check: duplicates show as triggers without a new outcome.
    count(RemediatorMetric.ALARM_TRIGGERS)
    if trigger.member:
        member_trigger = trigger
        return _once(lambda: handle_member_trigger(trigger=member_trigger), trigger.stream, trigger.symptom)
    return _once(lambda: handle_trigger(trigger=trigger), trigger.stream, trigger.symptom)


def _origin(change: AlarmStateChangeEvent | AlarmContributorStateChangeEvent, context: LambdaContext) -> Origin:
    """Where an alarm's event comes from: the hub's own account and region, or a member's whose envelope and alarm
    ARN agree (issue 11.4); whether a policy names the stream there is the service's check."""
    return event_origin(
        account=change.account,
        region=change.region,
        alarm=change.detail.alarmName,
        resources=change.resources,
        hub_account=_own_account(context),
        hub_region=settings.region,
    )


def _contributor(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """A fleet alarm's contributor (one stream) changed state: handled exactly as that stream's own alarm would be,
    as its own unit of work (`<fleet alarm>[<stream>]` and the state change's time)."""
    try:
        change = parse(event=event, model=AlarmContributorStateChangeEvent)
    except (ValidationError, ValueError, TypeError) as exc:
        logger.error("Ignoring a contributor state change that does not parse", extra={"error": str(exc)})
        count(RemediatorMetric.UNRECOGNISED_EVENTS)
        return _ignored("not a valid CloudWatch Alarm Contributor State Change event")
    detail = change.detail
    # Event trust as for an alarm's state change (issue 11.4's envelope and alarm ARN checks). Fleet alarms are made
    # in the hub's own account and region only (core.fleet.fleet_capable_policy): a member's is not ours.
    origin = _origin(change, context)
    problem = origin.problem or (
        f"a contributor state change from account '{change.account}', region '{change.region}': fleet alarms are "
        "made in the hub's own account and region only"
        if origin.member
        else ""
    )
    if problem:
        logger.warning("Ignoring an alarm from elsewhere", extra={"alarm": detail.alarmName[:300], "reason": problem})
        count(RemediatorMetric.IGNORED_ALARM_CHANGES)
        return _ignored(problem)
    trigger, why_not = identify_contributor(
        alarm=detail.alarmName,
        prefix=settings.alarm_prefix,
        contributor_id=detail.alarmContributor.id,
        attributes=detail.alarmContributor.attributes,
        state=detail.state.value,
        previous_state=detail.previousState.value if detail.previousState else None,
        state_timestamp=detail.state.timestamp,
        account=change.account,
        region=change.region,
        reason=detail.state.reason,
        expressions=detail.expressions(),
    )
    if isinstance(trigger, AlarmResolved):
        logger.append_keys(stream=trigger.stream, symptom=trigger.symptom, alarm=trigger.alarm_name)
        count(RemediatorMetric.ALARM_RESOLUTIONS)
        return _once(lambda: handle_resolution(resolved=trigger), trigger.stream, trigger.symptom)
    if trigger is None:
        logger.info(
            "Ignoring contributor state change",
            extra={"alarm": detail.alarmName[:300], "contributor": detail.alarmContributor.id, "reason": why_not},
        )
        count(RemediatorMetric.IGNORED_ALARM_CHANGES)
        return _ignored(why_not)
    logger.append_keys(stream=trigger.stream, symptom=trigger.symptom, alarm=trigger.alarm_name)
    count(RemediatorMetric.ALARM_TRIGGERS)
    return _once(lambda: handle_trigger(trigger=trigger), trigger.stream, trigger.symptom)


def _distrusted(trigger: AlarmTrigger | AlarmResolved, reason: str) -> dict[str, Any]:
    """An event whose envelope and alarm ARN disagree: logged, counted and audited (under the account and region
    the envelope names), never acted on."""
    logger.warning("Ignoring an alarm event that is not trusted", extra={"reason": reason})
    count(RemediatorMetric.IGNORED_ALARM_CHANGES)
    deps = dependencies()
    audit = deps.members.audit(trigger.account, trigger.region) if trigger.member and deps.members else deps.audit
    audit.record(
        AuditEntry(
            at=deps.clock(),
            stream=trigger.stream,
            alarm_name=trigger.alarm_name,
            symptom=trigger.symptom,
            outcome=OutcomeStatus.IGNORED,
            reason=reason,
        )
    )
    return _ignored(reason, trigger.stream, trigger.symptom)


def _once(handle: Callable[[], dict[str, Any]], stream: str, symptom: str) -> dict[str, Any]:
    """Run an idempotent unit of work; a second delivery while the first is still being handled answers quietly.

    That first delivery acts and answers (if it fails, Lambda or Scheduler retries it); raising here would only put
    noise in the dead-letter queue."""
    try:
        return handle()
    except IdempotencyAlreadyInProgressError:
        logger.info("Duplicate delivery while the first is in progress; not handled twice")
        count(RemediatorMetric.DUPLICATE_DELIVERIES)
        return _ignored(DUPLICATE_IN_PROGRESS, stream, symptom)


def _follow_up(event: dict[str, Any]) -> dict[str, Any]:
    """Our own follow-through payload (the Input of a schedule we created), or ignored when it does not parse."""
    try:
        follow = parse(event=event, model=FollowUp)
    except (ValidationError, ValueError, TypeError) as exc:
        logger.error("Ignoring a follow-through event that does not parse", extra={"error": str(exc)})
        count(RemediatorMetric.UNRECOGNISED_EVENTS)
        return _ignored("not a valid follow-through event")
    logger.append_keys(stream=follow.stream, symptom=follow.symptom, alarm=follow.alarm_name, attempt=follow.attempt)
    count(RemediatorMetric.FOLLOW_THROUGHS)
    if follow.member:
        logger.append_keys(account=follow.account, region=follow.region)
        return _once(lambda: handle_member_follow_up(event=follow), follow.stream, follow.symptom)
    return _once(lambda: handle_follow_up(event=follow), follow.stream, follow.symptom)


def _census(event: dict[str, Any]) -> dict[str, Any]:
    """The census rule's input: publish every protected stream's open shards (no audit, no e-mail, no change),
    or ignored when the input is not exactly ours."""
    try:
        parse(event=event, model=CensusEvent)
    except (ValidationError, ValueError, TypeError) as exc:
        logger.error("Ignoring a census event that does not parse", extra={"error": str(exc)})
        count(RemediatorMetric.UNRECOGNISED_EVENTS)
        return _ignored("not a valid census event")
    # No read starts without the time to finish it (its worst case, retries included) and flush the metrics.
    taken = census(_invocation_dependencies(), publish_open_shards, reserve_seconds=worst_case_seconds(RETRY_CONFIG))
    for stream, error in taken.unreadable.items():
        logger.warning("Census: cannot read the stream; no OpenShards for it", extra={"stream": stream, "error": error})
    if taken.unreached:
        logger.error(
            "Census: out of time; streams left without OpenShards",
            extra={"count": len(taken.unreached), "streams": list(taken.unreached[:50])},
        )
    count(RemediatorMetric.CENSUS_STREAMS_MISSED, len(taken.unreadable) + len(taken.unreached))
    logger.info(
        "Census published",
        extra={"published": len(taken.open_shards), "unreadable": len(taken.unreadable)},
    )
    return {
        "status": "census",
        "open_shards": taken.open_shards,
        "unreadable": sorted(taken.unreadable),
        "unreached": list(taken.unreached),
    }
