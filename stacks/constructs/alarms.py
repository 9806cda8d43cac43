"""Per stream and per enabled detector, the CloudWatch alarms its symptom declares (any namespace,
any dimensions, single-metric or metric math), exactly as declared.

Built as CfnAlarm (L1) with the properties the L2 Alarm renders: one jsii call per alarm instead of five or more
(metrics, durations, the alarm), which is most of the synth time at 1,000 streams (README, "Fleet scale")."""

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


def _dimensions(metric: Metric) -> list[cloudwatch.CfnAlarm.DimensionProperty] | None:
    return [cloudwatch.CfnAlarm.DimensionProperty(name=k, value=v) for k, v in metric.dimension_map.items()] or None


def alarm_metric(source: Metric | MetricMath) -> dict[str, object]:
    """The CfnAlarm properties that say what the alarm watches, as CDK's L2 Alarm renders them: a single metric's
    namespace, name, dimensions, statistic and period; or the expression (id expr_1, returned) and its inputs (by
    their names, not returned), each with its own period."""
    if isinstance(source, Metric):
        return {
            "namespace": source.namespace,
            "metric_name": source.name,
            "dimensions": _dimensions(source),
            "statistic": source.statistic,
            "period": source.period_seconds,
        }
    queries = [
        cloudwatch.CfnAlarm.MetricDataQueryProperty(
            id="expr_1", expression=source.expression, label=source.label or None, return_data=True
        )
    ]
    for name, metric in source.inputs.items():
        queries.append(
            cloudwatch.CfnAlarm.MetricDataQueryProperty(
                id=name,
                metric_stat=cloudwatch.CfnAlarm.MetricStatProperty(
                    metric=cloudwatch.CfnAlarm.MetricProperty(
                        namespace=metric.namespace, metric_name=metric.name, dimensions=_dimensions(metric)
                    ),
                    period=metric.period_seconds,
                    stat=metric.statistic,
                ),
                return_data=False,
            )
        )
    return {"metrics": queries}


class StreamAlarms(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, policies: PolicySet, prefix: str) -> None:
        super().__init__(scope, construct_id)
        # (stream, symptom, qualifier) -> alarm
        self.alarms: dict[tuple[str, str, str], cloudwatch.CfnAlarm] = {}
        self.specs: dict[tuple[str, str, str], AlarmSpec] = {}
        for stream, policy in sorted(policies.streams.items()):
            # The same derivation the remediator checks an alarm's name against (core.alarm.untrusted).
            for name, (key, spec) in deployed_alarms(policy, prefix).items():
                # Named, not numbered: adding a stream or a consumer moves no other alarm. ':' appears in
                # no stream name, symptom id or qualifier, so two alarms never share an id.
                construct_id_ = ":".join(part for part in ("Stream", stream, key, spec.qualifier) if part)
                self.alarms[(stream, key, spec.qualifier)] = cloudwatch.CfnAlarm(
                    self,
                    construct_id_,
                    alarm_name=name,
                    alarm_description=spec.description,
                    threshold=spec.threshold,
                    evaluation_periods=spec.evaluation_periods,
                    datapoints_to_alarm=spec.datapoints_to_alarm,
                    comparison_operator=spec.comparison.value,
                    treat_missing_data=spec.missing_data.value,
                    **alarm_metric(spec.metric),  # type: ignore[arg-type]
                )
                self.specs[(stream, key, spec.qualifier)] = spec
