"""Powertools parser models for the EventBridge "CloudWatch Alarm State Change" and "CloudWatch Alarm Contributor
State Change" events, and for the census's scheduled input (a constant the stack's rule sends)."""

from __future__ import annotations

from typing import Literal

from aws_lambda_powertools.utilities.parser.models import EventBridgeModel
from pydantic import BaseModel, ConfigDict, Field


class AlarmMetric(BaseModel):
    namespace: str | None = None
    name: str | None = None
    dimensions: dict[str, str] = {}


class AlarmMetricStat(BaseModel):
    metric: AlarmMetric
    period: int | None = None
    stat: str | None = None


class AlarmMetricQuery(BaseModel):
    id: str
    metricStat: AlarmMetricStat | None = None
    expression: str | None = None  # metric math, or a Metrics Insights query (a fleet alarm's)
    returnData: bool | None = None
    period: int | None = None


class AlarmConfiguration(BaseModel):
    description: str | None = None
    metrics: list[AlarmMetricQuery] = []


class AlarmState(BaseModel):
    value: Literal["OK", "ALARM", "INSUFFICIENT_DATA"]
    reason: str = ""
    reasonData: str | None = None
    timestamp: str


class AlarmStateChangeDetail(BaseModel):
    alarmName: str
    state: AlarmState
    previousState: AlarmState | None = None
    configuration: AlarmConfiguration = AlarmConfiguration()

    def dimensions(self) -> dict[str, str]:
        merged: dict[str, str] = {}
        for query in self.configuration.metrics:
            if query.metricStat is not None:
                merged.update(query.metricStat.metric.dimensions)
        return merged


class AlarmStateChangeEvent(EventBridgeModel):
    source: Literal["aws.cloudwatch"]
    detail_type: Literal["CloudWatch Alarm State Change"] = Field(..., alias="detail-type")
    detail: AlarmStateChangeDetail


class AlarmContributor(BaseModel):
    id: str = Field(..., min_length=1, max_length=1024)
    attributes: dict[str, str] = {}


class AlarmContributorStateChangeDetail(BaseModel):
    """A multi-time-series (Metrics Insights) alarm's contributor changed state. Shape from AWS's sample event
    (CloudWatch user guide, "Alarm events and EventBridge", Multi Time Series Alarm): alarmName,
    alarmContributor{id, attributes}, state{value, reason, timestamp}, configuration{metrics[{id, expression,
    period, returnData}], description}; no previousState (kept optional, in case it comes)."""

    alarmName: str
    alarmContributor: AlarmContributor
    state: AlarmState
    previousState: AlarmState | None = None
    configuration: AlarmConfiguration = AlarmConfiguration()

    def expressions(self) -> tuple[str, ...]:
        return tuple(q.expression for q in self.configuration.metrics if q.expression)


class AlarmContributorStateChangeEvent(EventBridgeModel):
    source: Literal["aws.cloudwatch"]
    detail_type: Literal["CloudWatch Alarm Contributor State Change"] = Field(..., alias="detail-type")
    detail: AlarmContributorStateChangeDetail


class CensusEvent(BaseModel):
    """The census rule's constant input, exactly (core.deployment.CENSUS_SOURCE; a unit test keeps the two
    spellings equal): anything else with our census source is not ours."""

    model_config = ConfigDict(extra="forbid")

    source: Literal["kinesis-remediator.census"]
