"""The remediator watches itself: alarms on its dead-letter queue, its errors, its duration near the timeout and its
failed outcomes, e-mailed to the operators through their own encrypted topic.

Why a topic of their own: every subscription on the notifications topic filters on the `recipients` message
attribute (stacks/constructs/notifications.py), and a CloudWatch alarm notification carries no message attribute,
so it would reach nobody there. The operators' subscriptions here are unfiltered.

These alarms are not named with the alarm prefix the EventBridge rule matches: the remediator never receives
their state changes (and, were one to arrive, it is not an alarm its policies make, so it would be ignored).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from aws_cdk import ArnFormat, Duration, Stack
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cloudwatch_actions
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from aws_cdk import aws_sqs as sqs
from constructs import Construct
from remediator.core.deployment import (
    CENSUS_RATE_MINUTES,
    FAILED_OUTCOME_METRIC,
    METRICS_NAMESPACE,
    METRICS_SERVICE_DIMENSION,
    SERVICE_NAME,
    RemediatorMetric,
)
from remediator.policy_files import PolicySet

# The cdk context key that lists the operators' addresses (JSON list, or comma-separated).
OPERATOR_EMAILS_CONTEXT = "operatorEmails"
# Alarm when the longest invocation in a period reaches this share of the function's timeout.
DURATION_ALARM_SHARE = 0.8
PERIOD = Duration.minutes(5)
# Census periods in a row that must miss (or lack) a count before the census alarm fires: 15 minutes.
CENSUS_PERIODS = 3
EMAIL = re.compile(r"^[^@\s,]+@[^@\s,]+\.[^@\s,]+$")


class OperatorEmailsError(ValueError):
    pass


def operator_emails(context_value: object, policies: PolicySet) -> list[str]:
    """The operators' addresses: the `operatorEmails` context value (a list, or a comma-separated string), or, when
    it is not set, every address in the policies' `notify.emails`. Lower-cased, sorted, without duplicates."""
    if context_value is None or context_value == "":
        found = {address for policy in policies.streams.values() for address in policy.notify.emails}
    else:
        if isinstance(context_value, str):
            raw = [part.strip() for part in context_value.split(",")]
        elif isinstance(context_value, list) and all(isinstance(item, str) for item in context_value):
            raw = [item.strip() for item in context_value]
        else:
            raise OperatorEmailsError(
                f"cdk context '{OPERATOR_EMAILS_CONTEXT}' must be a list of e-mail addresses or a comma-separated "
                f"string, not {type(context_value).__name__}"
            )
        bad = [address for address in raw if not EMAIL.fullmatch(address)]
        if bad:
            raise OperatorEmailsError(f"cdk context '{OPERATOR_EMAILS_CONTEXT}': not e-mail addresses: {bad}")
        found = set(raw)
    return sorted({address.lower() for address in found})


class SelfMonitoring(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        function: lambda_.Function,
        dead_letter_queue: sqs.IQueue,
        alarm_prefix: str,
        emails: Sequence[str],
    ) -> None:
        super().__init__(scope, construct_id)
        stack = Stack.of(self)
        self.name_prefix = f"{stack.stack_name}-health/"
        if self.name_prefix.startswith(alarm_prefix) or alarm_prefix.startswith(self.name_prefix):
            raise ValueError(
                f"the self-monitoring alarms ('{self.name_prefix}...') would match the alarm prefix "
                f"'{alarm_prefix}' that feeds the remediator: choose another alarmPrefix or stack name"
            )
        alarm_arns = stack.format_arn(
            service="cloudwatch",
            resource="alarm",
            resource_name=f"{self.name_prefix}*",
            arn_format=ArnFormat.COLON_RESOURCE_NAME,
        )

        self.key = kms.Key(self, "TopicKey", enable_key_rotation=True, description="Kinesis Remediator operators topic")
        # CloudWatch must use the key to publish to the encrypted topic, or the notifications are dropped silently
        # (SNS guide, "compatibility between event sources from AWS services and encrypted topics"). The key serves
        # this topic only. No aws:Source* condition here: whether CloudWatch's KMS requests carry them is
        # UNCONFIRMED, and a condition they do not meet would drop every notification without an error.
        self.key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="CloudWatchAlarmsPublishToTheOperatorsTopic",
                principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
                actions=["kms:Decrypt", "kms:GenerateDataKey*"],
                resources=["*"],
            )
        )
        self.topic = sns.Topic(
            self, "Topic", display_name="Kinesis Remediator operators", master_key=self.key, enforce_ssl=True
        )
        # enforce_ssl gives the topic a resource policy, which replaces SNS's default one: CloudWatch (a service
        # principal) needs its own allow, limited to these alarms in this account.
        self.topic.add_to_resource_policy(
            iam.PolicyStatement(
                sid="CloudWatchAlarmsPublish",
                principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
                actions=["sns:Publish"],
                resources=[self.topic.topic_arn],
                conditions={
                    "StringEquals": {"aws:SourceAccount": stack.account},
                    "ArnLike": {"aws:SourceArn": alarm_arns},
                },
            )
        )
        for address in emails:
            # Unfiltered: alarm notifications carry no message attribute to filter on.
            self.topic.add_subscription(subscriptions.EmailSubscription(address))

        timeout = function.timeout or Duration.seconds(3)  # Lambda's default timeout
        service = {METRICS_SERVICE_DIMENSION: SERVICE_NAME}
        self.alarms: dict[str, cloudwatch.Alarm] = {}
        self._alarm(
            "dead-letter-queue",
            "Kinesis Remediator: an alarm event could not be handled after its retries and waits in the "
            "dead-letter queue.",
            dead_letter_queue.metric_approximate_number_of_messages_visible(period=PERIOD, statistic="Maximum"),
            1,
        )
        self._alarm(
            "errors",
            "Kinesis Remediator: the function raised (a failed read, a timeout, a bug); Lambda retries it.",
            function.metric_errors(period=PERIOD, statistic="Sum"),
            1,
        )
        self._alarm(
            "duration",
            f"Kinesis Remediator: an invocation took {DURATION_ALARM_SHARE:.0%} or more of the function's "
            f"{timeout.to_seconds():.0f} s timeout.",
            function.metric_duration(period=PERIOD, statistic="Maximum"),
            DURATION_ALARM_SHARE * timeout.to_milliseconds(),
        )
        self._alarm(
            "failed-outcomes",
            "Kinesis Remediator: a remediation failed, hit an AWS limit, or sent a change whose fate it could not "
            "read back; the e-mail and the audit row say which.",
            cloudwatch.Metric(
                namespace=METRICS_NAMESPACE,
                metric_name=FAILED_OUTCOME_METRIC,
                dimensions_map=service,
                statistic="Sum",
                period=PERIOD,
            ),
            1,
        )
        # The census (every CENSUS_RATE_MINUTES) feeds the under-utilised alarms their shard counts: streams it
        # missed, or no census at all, leave those alarms without data (they then never fire: the safe side,
        # but a silent one).
        self._alarm(
            "census",
            "Kinesis Remediator: the shard census missed streams, or did not run, for 15 minutes; the "
            "under-utilised alarms have no shard count meanwhile.",
            cloudwatch.Metric(
                namespace=METRICS_NAMESPACE,
                metric_name=RemediatorMetric.CENSUS_STREAMS_MISSED,
                dimensions_map=service,
                statistic="Minimum",
                period=Duration.minutes(CENSUS_RATE_MINUTES),
            ),
            1,
            periods=CENSUS_PERIODS,
            missing=cloudwatch.TreatMissingData.BREACHING,
        )

    def _alarm(
        self,
        what: str,
        description: str,
        metric: cloudwatch.IMetric,
        threshold: float,
        *,
        periods: int = 1,
        missing: cloudwatch.TreatMissingData = cloudwatch.TreatMissingData.NOT_BREACHING,
    ) -> None:
        alarm = cloudwatch.Alarm(
            self,
            what,
            alarm_name=f"{self.name_prefix}{what}",
            alarm_description=description,
            metric=metric,
            threshold=threshold,
            evaluation_periods=periods,
            datapoints_to_alarm=periods,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            treat_missing_data=missing,
        )
        alarm.add_alarm_action(cloudwatch_actions.SnsAction(self.topic))
        self.alarms[what] = alarm
