"""Lambda entry point: parse the alarm event, call the service once per state change, return a model.

Events we do not understand are logged and ignored (returning normally, so AWS does not retry them).
"""

from __future__ import annotations

import os
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
from remediator.clients.aws import client, seconds_after_change
from remediator.clients.kinesis import KinesisStreams
from remediator.clients.metrics import CloudWatchMetrics
from remediator.clients.notifier import SnsNotifier
from remediator.clients.parameters import SsmKillSwitch, SsmPolicySource
from remediator.clients.services import AwsServices
from remediator.core.alarm import AlarmTrigger, foreign_origin, identify
from remediator.core.deployment import RemediatorMetric
from remediator.core.outcome import Outcome, OutcomeStatus
from remediator.events import AlarmStateChangeEvent
from remediator.observability import count, logger, metrics, record_outcome, tracer
from remediator.service import Dependencies, remediate
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


@cache
def dependencies() -> Dependencies:
    ssm = client("ssm", region=settings.region)
    return Dependencies(
        streams=KinesisStreams(client("kinesis", region=settings.region)),
        metrics=CloudWatchMetrics(client("cloudwatch", region=settings.region)),
        reads=AwsServices(lambda service: client(service, region=settings.region)),
        writes=AwsServices(lambda service: client(service, region=settings.region, writes=True)),
        audit=DynamoAuditLog(dynamodb, settings.audit_table),
        notifier=SnsNotifier(client("sns", region=settings.region), settings.topic_arn),
        kill_switch=SsmKillSwitch(ssm, settings.kill_switch_parameter),
        policies=SsmPolicySource(ssm, settings.policy_parameter_prefix),
        seconds_after_change=seconds_after_change(),
        alarm_prefix=settings.alarm_prefix,
    )


# Seconds left in the current invocation (from its LambdaContext): a change starts only with time to settle it.
_time_left: ContextVar[Any] = ContextVar("time_left", default=None)


@idempotent_function(data_keyword_argument="trigger", config=idempotency, persistence_store=persistence)
def handle_trigger(trigger: AlarmTrigger) -> dict[str, Any]:
    deps = dependencies()
    time_left = _time_left.get()
    if time_left is not None:
        deps = replace(deps, time_left=time_left)
    outcome = remediate(trigger, deps)
    try:  # after a change nothing may fail the invocation for a metric or a log line
        record_outcome(outcome)
        logger.info("Remediation finished", extra={"outcome": outcome.model_dump(exclude={"plan"})})
    except Exception:
        logger.exception("Could not record the outcome's metric")
    return outcome.model_dump(mode="json")


DUPLICATE_IN_PROGRESS = "duplicate delivery in progress"


def _own_account(context: LambdaContext) -> str:
    """The account this function runs in, from its ARN (arn:aws:lambda:<region>:<account>:function:<name>); '' if
    the context has no such ARN."""
    parts = str(getattr(context, "invoked_function_arn", "") or "").split(":")
    return parts[4] if len(parts) > 4 else ""


def _ignored(reason: str, stream: str = "-", symptom: str = "-") -> dict[str, Any]:
    return Outcome(status=OutcomeStatus.IGNORED, stream=stream, symptom=symptom, detail=reason).model_dump(mode="json")


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    idempotency.register_lambda_context(context)
    _time_left.set(lambda: context.get_remaining_time_in_millis() / 1000)
    try:
        change = parse(event=event, model=AlarmStateChangeEvent)
    except (ValidationError, ValueError, TypeError) as exc:
        logger.error("Ignoring an event that is not a CloudWatch alarm state change", extra={"error": str(exc)})
        count(RemediatorMetric.UNRECOGNISED_EVENTS)
        return _ignored("not a CloudWatch Alarm State Change event")

    detail = change.detail
    # Event trust: only our own account and region (not audited: the stream it names is not ours).
    foreign = foreign_origin(
        account=change.account, region=change.region, own_account=_own_account(context), own_region=settings.region
    )
    if foreign:
        logger.warning("Ignoring an alarm from elsewhere", extra={"alarm": detail.alarmName[:300], "reason": foreign})
        count(RemediatorMetric.IGNORED_ALARM_CHANGES)
        return _ignored(foreign)

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
    )
    if trigger is None:
        logger.info("Ignoring alarm state change", extra={"alarm": detail.alarmName, "reason": why_not})
        count(RemediatorMetric.IGNORED_ALARM_CHANGES)
        return _ignored(why_not)
    logger.append_keys(stream=trigger.stream, symptom=trigger.symptom, alarm=trigger.alarm_name)
    # Counted before the idempotency check: duplicates show as triggers without a new outcome.
    count(RemediatorMetric.ALARM_TRIGGERS)
    try:
        return handle_trigger(trigger=trigger)
    except IdempotencyAlreadyInProgressError:
        # The same state change delivered again while the first delivery is still being handled: that one acts
        # and answers (if it fails, Lambda retries it); raising here would only put noise in the dead-letter queue.
        logger.info("Duplicate delivery while the first is in progress; not handled twice")
        count(RemediatorMetric.DUPLICATE_DELIVERIES)
        return _ignored(DUPLICATE_IN_PROGRESS, trigger.stream, trigger.symptom)
