"""Names and values the CDK stack and the remediator must agree on.

Kept in core, with no runtime imports, so that `cdk synth` never loads Powertools or boto3 clients.
"""

import hashlib
from typing import Final

DEFAULT_ALARM_PREFIX: Final = "kinesis-remediator-"
# Separates the stream, the symptom and an optional qualifier in an alarm name. Stream names
# cannot contain it, so an alarm name maps back to exactly one (stream, symptom).
ALARM_NAME_SEPARATOR: Final = "/"
ALARM_NAME_MAX_LENGTH: Final = 255  # CloudWatch's limit

# The kill switch is off only while its parameter reads this; any other value stops every change.
KILL_SWITCH_OFF: Final = "off"
# How long the Lambda keeps a stream's policy from SSM before reading it again.
POLICY_CACHE_SECONDS: Final = 300

# Follow-through schedules (EventBridge Scheduler, default group): named `<prefix><digest>-<attempt>`.
SCHEDULE_GROUP: Final = "default"
SCHEDULER_SERVICE: Final = "scheduler.amazonaws.com"


def schedule_prefix(alarm_prefix: str) -> str:
    """A deployment's follow-through schedule name prefix, and what its IAM is scoped to. Derived from the alarm
    prefix, which already tells deployments apart (each one's EventBridge rule filters on it)."""
    return f"kr-ft-{hashlib.sha256(alarm_prefix.encode()).hexdigest()[:8]}-"


# The remediator function's timeout (the stack sets it). It must leave room for the worst case of what follows
# a change (clients.aws.seconds_after_change: tests/infrastructure/test_timeouts.py checks it).
FUNCTION_TIMEOUT_SECONDS: Final = 300
# The shard census (service.census): a scheduled EventBridge rule invokes the function with this constant input
# every CENSUS_RATE_MINUTES; the census publishes each protected stream's OpenShards, which the under-utilised
# alarm divides the write load by (its period is the census's rate, so each period holds one census).
CENSUS_SOURCE: Final = "kinesis-remediator.census"
CENSUS_RATE_MINUTES: Final = 5
# A stream's lease outlives the invocation that took it by this much at most, then expires on its own.
LEASE_MARGIN_SECONDS: Final = 60


# Many accounts and regions (issue 11.4): each member stack creates this role; the hub's remediator assumes it
# (sts:AssumeRole with the deployment's external id) to act on that member's streams.
MEMBER_ROLE_NAME: Final = "KinesisRemediatorMember"


def member_role_arn(account: str, partition: str = "aws") -> str:
    """The role a member stack creates in `account` (IAM is global: one per account, whatever the region)."""
    return f"arn:{partition}:iam::{account}:role/{MEMBER_ROLE_NAME}"


SERVICE_NAME: Final = "kinesis-remediator"
STACK_NAME: Final = "KinesisRemediator"  # the CloudFormation stack `cdk deploy` creates
METRICS_NAMESPACE: Final = "KinesisRemediator"


class StackOutput:
    """The stack's CloudFormation outputs that the CLI and the demo look up by name."""

    AUDIT_TABLE: Final = "AuditTableName"
    DASHBOARD_NAME: Final = "DashboardName"
    DASHBOARD_URL: Final = "DashboardUrl"


class Env:
    """The remediator's environment variables (set by the stack, read by remediator.settings)."""

    AUDIT_TABLE: Final = "AUDIT_TABLE_NAME"
    IDEMPOTENCY_TABLE: Final = "IDEMPOTENCY_TABLE_NAME"
    TOPIC_ARN: Final = "NOTIFICATION_TOPIC_ARN"
    KILL_SWITCH: Final = "KILL_SWITCH_PARAMETER"
    POLICY_PREFIX: Final = "POLICY_PARAMETER_PREFIX"
    ALARM_PREFIX: Final = "ALARM_NAME_PREFIX"
    POLICY_DIGEST: Final = "POLICY_DIGEST"
    FOLLOW_UP_ROLE: Final = "FOLLOW_UP_SCHEDULER_ROLE_ARN"
    SCHEDULE_PREFIX: Final = "FOLLOW_UP_SCHEDULE_PREFIX"
    # The external id the hub passes to sts:AssumeRole on a member's role (CDK context `memberExternalId`).
    MEMBER_EXTERNAL_ID: Final = "MEMBER_EXTERNAL_ID"


class RemediatorMetric:
    """The remediator's own metrics (Powertools Metrics, namespace METRICS_NAMESPACE, dimension `service` =
    SERVICE_NAME). The handler emits them; the dashboard and alarms read them: each name is spelled here only."""

    # Per invocation
    ALARM_TRIGGERS: Final = "AlarmTriggers"  # one of our alarms went into ALARM (counted before idempotency)
    IGNORED_ALARM_CHANGES: Final = "IgnoredAlarmChanges"
    UNRECOGNISED_EVENTS: Final = "UnrecognisedEvents"
    # A second delivery of a state change while the first is still being handled (answered quietly, not retried).
    DUPLICATE_DELIVERIES: Final = "DuplicateDeliveriesInProgress"
    ALARM_RESOLUTIONS: Final = "AlarmResolutions"  # one of our alarms went from ALARM back to OK
    FOLLOW_THROUGHS: Final = "FollowThroughs"  # a follow-through schedule fired
    # Per shard census: protected streams it left without an OpenShards (unreadable, or no time left); 0 normally.
    CENSUS_STREAMS_MISSED: Final = "CensusStreamsMissed"
    # Per outcome (a trigger that got past idempotency)
    PLANS_MADE: Final = "PlansMade"  # a plan was made (also when it holds no step)
    ACTIONS_APPLIED: Final = "ActionsApplied"  # steps AWS accepted
    STEPS_REHEARSED: Final = "StepsRehearsed"  # steps a dry-run policy only described
    STEPS_BLOCKED: Final = "StepsBlocked"  # steps a guardrail or the kill switch stopped
    STEPS_FAILED: Final = "StepsFailed"  # steps whose call failed
    STEPS_LIMIT_REACHED: Final = "StepsLimitReached"  # steps AWS refused for one of its limits
    STEPS_UNCERTAIN: Final = "StepsUncertain"  # steps whose change may or may not have been made
    # Outcomes an operator must look at: failed, limit-reached or uncertain (the self-monitoring alarm reads it).
    OUTCOMES_NEEDING_ATTENTION: Final = "OutcomesNeedingAttention"
    ADVICE_SENT: Final = "AdviceSent"  # no-action outcomes whose advice e-mail went out
    OUTCOME_PREFIX: Final = "Outcome_"  # + OutcomeStatus value: Outcome_applied, Outcome_failed, ...
    # Per stream (dimension STREAM_DIMENSION): the open shards the remediator last saw, or set with a reshard.
    # CloudWatch has no shard-count metric, so the dashboard divides the write load by this one.
    OPEN_SHARDS: Final = "OpenShards"

    SERVICE_DIMENSION: Final = "service"  # Powertools adds it to every metric, with SERVICE_NAME
    STREAM_DIMENSION: Final = "StreamName"

    @staticmethod
    def outcome(status: str) -> str:
        """The per-status counter: `Outcome_failed` counts failed outcomes."""
        return f"{RemediatorMetric.OUTCOME_PREFIX}{status}"


# Powertools Metrics adds one dimension to every metric it emits: `service`, set to SERVICE_NAME. An alarm on our
# metrics must name exactly that dimension, or it watches a series nothing is written to.
METRICS_SERVICE_DIMENSION: Final = RemediatorMetric.SERVICE_DIMENSION
# The self-monitoring alarm on failed outcomes reads this one: failed, limit-reached and uncertain outcomes.
OUTCOME_METRIC_PREFIX: Final = RemediatorMetric.OUTCOME_PREFIX
FAILED_OUTCOME_METRIC: Final = RemediatorMetric.OUTCOMES_NEEDING_ATTENTION
DUPLICATE_DELIVERY_METRIC: Final = RemediatorMetric.DUPLICATE_DELIVERIES
