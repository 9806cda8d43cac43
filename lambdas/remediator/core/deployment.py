"""Names and values the CDK stack and the remediator must agree on.

Kept in core, with no runtime imports, so that `cdk synth` never loads Powertools or boto3 clients.
"""

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

# The remediator function's timeout (the stack sets it). It must leave room for the worst case of what follows
# a change (clients.aws.seconds_after_change: tests/infrastructure/test_timeouts.py checks it).
FUNCTION_TIMEOUT_SECONDS: Final = 300
# A stream's lease outlives the invocation that took it by this much at most, then expires on its own.
LEASE_MARGIN_SECONDS: Final = 60

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
