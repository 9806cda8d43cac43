"""The fleet alarms (remediator.core.fleet): for the streams whose policy says `alarms: fleet`, one CloudWatch
Metrics Insights alarm per group of streams with the same thresholds, alarming per stream.

Each is an AWS::CloudWatch::Alarm with `Metrics` holding one query (Id, Expression, Period, ReturnData) and no
metric name, namespace or statistic: the form CloudFormation and PutMetricAlarm document for an alarm on a
Metrics Insights query. No alarm actions: EventBridge receives every alarm's (and contributor's) state changes.
"""

from __future__ import annotations

from aws_cdk import aws_cloudwatch as cloudwatch
from constructs import Construct
from remediator.core.fleet import QUERY_ID, FleetAlarm, fleet_alarms
from remediator.policy_files import PolicySet


class FleetAlarms(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, policies: PolicySet, prefix: str) -> None:
        super().__init__(scope, construct_id)
        self.fleet: list[FleetAlarm] = fleet_alarms(policies.streams, prefix)
        self.alarms: dict[str, cloudwatch.CfnAlarm] = {}
        for alarm in self.fleet:
            thresholds = alarm.thresholds
            # Named after the alarm (group digest and number), not numbered in order: a group added or removed
            # moves no other alarm.
            construct_id_ = alarm.name[len(prefix) :].replace("/", ":")
            self.alarms[alarm.name] = cloudwatch.CfnAlarm(
                self,
                construct_id_,
                alarm_name=alarm.name,
                alarm_description=alarm.description,
                metrics=[
                    cloudwatch.CfnAlarm.MetricDataQueryProperty(
                        id=QUERY_ID,
                        expression=alarm.query,
                        period=thresholds.period_seconds,
                        return_data=True,
                    )
                ],
                threshold=thresholds.threshold,
                comparison_operator=thresholds.comparison.value,
                evaluation_periods=thresholds.evaluation_periods,
                datapoints_to_alarm=thresholds.datapoints_to_alarm,
                treat_missing_data=thresholds.missing_data.value,
            )
