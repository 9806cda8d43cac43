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


SERVICE_NAME: Final = "kinesis-remediator"
METRICS_NAMESPACE: Final = "KinesisRemediator"


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
