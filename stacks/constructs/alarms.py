"""Per stream and per enabled detector, the CloudWatch alarms its symptom declares (any namespace,
any dimensions, single-metric or metric math), exactly as declared."""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cloudwatch
from constructs import Construct
from remediator.core.alarm import deployed_alarms
from remediator.core.metrics import Metric, MetricMath
from remediator.core.symptoms.base import AlarmSpec
from remediator.policy_files import PolicySet


def cdk_metric(source: Metric | MetricMath) -> cloudwatch.IMetric:
    if isinstance(source, MetricMath):
        return cloudwatch.MathExpression(
            expression=source.expression,
            using_metrics={name: cdk_metric(metric) for name, metric in source.inputs.items()},
            label=source.label or None,
            period=Duration.seconds(source.period_seconds),
        )
    return cloudwatch.Metric(
        namespace=source.namespace,
        metric_name=source.name,
        dimensions_map=source.dimension_map,
        statistic=source.statistic,
        period=Duration.seconds(source.period_seconds),
    )


class StreamAlarms(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, policies: PolicySet, prefix: str) -> None:
        super().__init__(scope, construct_id)
        # (stream, symptom, qualifier) -> alarm
        self.alarms: dict[tuple[str, str, str], cloudwatch.Alarm] = {}
        self.specs: dict[tuple[str, str, str], AlarmSpec] = {}
        for stream, policy in sorted(policies.streams.items()):
            # The same derivation the remediator checks an alarm's name against (core.alarm.untrusted).
            for name, (key, spec) in deployed_alarms(policy, prefix).items():
                # Named, not numbered: adding a stream or a consumer moves no other alarm. ':' appears in
                # no stream name, symptom id or qualifier, so two alarms never share an id.
                construct_id_ = ":".join(part for part in ("Stream", stream, key, spec.qualifier) if part)
                self.alarms[(stream, key, spec.qualifier)] = cloudwatch.Alarm(
                    self,
                    construct_id_,
                    alarm_name=name,
                    alarm_description=spec.description,
                    metric=cdk_metric(spec.metric),
                    threshold=spec.threshold,
                    evaluation_periods=spec.evaluation_periods,
                    datapoints_to_alarm=spec.datapoints_to_alarm,
                    comparison_operator=cloudwatch.ComparisonOperator[spec.comparison.name],
                    treat_missing_data=cloudwatch.TreatMissingData[spec.missing_data.name],
                )
                self.specs[(stream, key, spec.qualifier)] = spec
