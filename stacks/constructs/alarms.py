"""Per stream and per enabled detector, a CloudWatch alarm built from the symptom registry's AlarmSpec."""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cloudwatch
from constructs import Construct
from remediator.core.alarm import alarm_name
from remediator.core.symptoms import SYMPTOMS
from remediator.policy_files import PolicySet


class StreamAlarms(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, policies: PolicySet, prefix: str) -> None:
        super().__init__(scope, construct_id)
        self.alarms: dict[tuple[str, str], cloudwatch.Alarm] = {}
        for stream, policy in sorted(policies.streams.items()):
            for key, symptom in SYMPTOMS.items():
                if not symptom.detector(policy).enabled:
                    continue
                spec = symptom.alarm_spec(policy)
                metric = cloudwatch.Metric(
                    namespace=spec.namespace,
                    metric_name=spec.metric_name,
                    dimensions_map={"StreamName": stream},
                    statistic=spec.statistic,
                    period=Duration.seconds(spec.period_seconds),
                )
                self.alarms[(stream, key)] = cloudwatch.Alarm(
                    self,
                    f"Stream-{stream}-{key}",  # named, not numbered: adding a stream moves no other
                    alarm_name=alarm_name(prefix, stream, key),
                    alarm_description=spec.description,
                    metric=metric,
                    threshold=spec.threshold,
                    evaluation_periods=spec.evaluation_periods,
                    datapoints_to_alarm=spec.datapoints_to_alarm,
                    comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
                    # No data means no traffic or no consumer reads, not a symptom.
                    treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
                )
