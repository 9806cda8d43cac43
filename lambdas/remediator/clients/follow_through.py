"""Follow-through's AWS side: one-time EventBridge Scheduler schedules, and our alarms' current state.

Schedules live in the default schedule group, named with the deployment's prefix (the remediator's IAM allows
scheduler:CreateSchedule and DeleteSchedule on `schedule/default/<prefix>*` only, and iam:PassRole on the one
Scheduler role, which may only invoke this function). moto implements Create/Get/DeleteSchedule but never fires
a schedule: the tests and the demo fire a due one by invoking the handler with its Input.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import ClientError

from remediator.core.fleet import STREAM_DIMENSION, FleetUnit, parse_unit_name
from remediator.core.follow_through import FollowUp
from remediator.core.ports import AlarmState

GROUP = "default"
# Scheduler retries a failed invocation; a follow-up older than an hour is stale (the next plan would differ).
RETRY_POLICY = {"MaximumRetryAttempts": 3, "MaximumEventAgeInSeconds": 3600}


def function_arn(invoked: str) -> str:
    """The function's unqualified ARN (an alias or version qualifier dropped): what the Scheduler role may invoke."""
    return ":".join(invoked.split(":")[:7])


class EventBridgeScheduler:
    def __init__(self, scheduler: Any, role_arn: str, target_arn: Callable[[], str]) -> None:
        self._scheduler = scheduler
        self._role_arn = role_arn
        self._target_arn = target_arn

    def create(self, name: str, at: datetime, follow_up: FollowUp) -> None:
        try:
            self._scheduler.create_schedule(
                Name=name,
                GroupName=GROUP,
                Description=f"Kinesis Remediator follow-through {follow_up.attempt} of {follow_up.alarm_name}",
                ScheduleExpression=f"at({at.astimezone(UTC):%Y-%m-%dT%H:%M:%S})",
                ScheduleExpressionTimezone="UTC",
                FlexibleTimeWindow={"Mode": "OFF"},
                ActionAfterCompletion="DELETE",
                State="ENABLED",
                Target={
                    "Arn": function_arn(self._target_arn()),
                    "RoleArn": self._role_arn,
                    "Input": follow_up.model_dump_json(exclude=None if follow_up.member else {"member"}),
                    "RetryPolicy": RETRY_POLICY,
                },
                ClientToken=name,
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "ConflictException":
                raise
            # Already there: a retried invocation of the same unit of work created it.

    def delete(self, name: str) -> bool:
        try:
            self._scheduler.delete_schedule(Name=name, GroupName=GROUP)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "ResourceNotFoundException":
                return False
            raise
        return True


class CloudWatchAlarmStates:
    """Our alarms' current state; for a fleet alarm's unit (`<fleet alarm>[<stream>]`), that stream's contributor's
    state: ALARM while DescribeAlarmContributors lists it (the API lists the contributors in ALARM), else OK."""

    def __init__(self, cloudwatch: Any, prefix: str = "") -> None:
        self._cloudwatch = cloudwatch
        self._prefix = prefix

    def state(self, alarm_name: str) -> AlarmState | None:
        unit = parse_unit_name(alarm_name, self._prefix)
        if isinstance(unit, FleetUnit):
            return self._contributor(unit.fleet.alarm, unit.stream)
        response = self._cloudwatch.describe_alarms(AlarmNames=[alarm_name], AlarmTypes=["MetricAlarm"])
        alarms = response.get("MetricAlarms", [])
        if not alarms:
            return None
        alarm = alarms[0]
        # StateTransitionedTimestamp: when StateValue last changed (StateUpdatedTimestamp also moves when only the
        # reason does). moto leaves it out; then the staleness check (service.follow_up) cannot be made.
        return AlarmState(value=str(alarm["StateValue"]), transitioned_at=alarm.get("StateTransitionedTimestamp"))

    def _contributor(self, alarm_name: str, stream: str) -> AlarmState | None:
        """moto gap: moto has no DescribeAlarmContributors (tests stub it with botocore's Stubber)."""
        token: str | None = None
        while True:
            request: dict[str, Any] = {"AlarmName": alarm_name} | ({"NextToken": token} if token else {})
            try:
                response = self._cloudwatch.describe_alarm_contributors(**request)
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") == "ResourceNotFoundException":
                    return None
                raise
            for contributor in response.get("AlarmContributors", []):
                attributes = {k.lower(): v for k, v in (contributor.get("ContributorAttributes") or {}).items()}
                if attributes.get(STREAM_DIMENSION.lower()) == stream:
                    return AlarmState(value="ALARM", transitioned_at=contributor.get("StateTransitionedTimestamp"))
            token = response.get("NextToken")
            if not token:
                return AlarmState(value="OK")
