"""The demo's emulator deploys our alarms as CloudFormation declares them: names with '/', single-metric alarms and
metric-math alarms (`Metrics` instead of MetricName), and the demo's state-change event of each maps back to its
stream and symptom."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from aws_cdk import App, BootstraplessSynthesizer, Stack
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk.assertions import Template
from remediator.core.alarm import DEFAULT_ALARM_PREFIX, alarm_name, identify
from remediator.core.metrics import Comparison, MetricMath, MetricName, MissingData
from remediator.events import AlarmStateChangeEvent

from demo.emulator import Emulator
from demo.run import alarm_inventory, state_change_event
from stacks.constructs.alarms import alarm_metric

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("e2e")]

STREAM = "clicks.v2_orders-iterator-age"
SINGLE = alarm_name(DEFAULT_ALARM_PREFIX, STREAM, "iterator-age")
MATH = alarm_name(DEFAULT_ALARM_PREFIX, STREAM, "write-throttling", "clicks-consumer.error-rate")
ITERATOR_AGE = MetricName("AWS/Kinesis", "GetRecords.IteratorAgeMilliseconds", "Maximum").on(StreamName=STREAM)
ERROR_RATE = MetricMath(
    "100 * errors / invocations",
    {
        "errors": MetricName("AWS/Lambda", "Errors", "Sum").on(FunctionName="clicks-consumer"),
        "invocations": MetricName("AWS/Lambda", "Invocations", "Sum").on(FunctionName="clicks-consumer"),
    },
    label="error rate (%)",
)


def template() -> dict[str, Any]:
    """A stack holding two alarms built as the remediator's stack builds them (stacks.constructs.alarms)."""
    app = App(analytics_reporting=False)
    stack = Stack(app, "Alarms", synthesizer=BootstraplessSynthesizer())
    for construct_id, name, metric, comparison, missing in (
        ("Single", SINGLE, ITERATOR_AGE, Comparison.GREATER_THAN_OR_EQUAL_TO_THRESHOLD, MissingData.NOT_BREACHING),
        ("Math", MATH, ERROR_RATE, Comparison.GREATER_THAN_THRESHOLD, MissingData.IGNORE),
    ):
        cloudwatch.CfnAlarm(
            stack,
            construct_id,
            alarm_name=name,
            threshold=5,
            evaluation_periods=5,
            datapoints_to_alarm=3,
            comparison_operator=comparison.value,
            treat_missing_data=missing.value,
            **alarm_metric(metric),  # type: ignore[arg-type]
        )
    return dict(Template.from_stack(stack).to_json())


@pytest.fixture(scope="module")
def deployed() -> Iterator[tuple[Any, Any, dict[str, dict[str, Any]]]]:
    """The emulator with the two-alarm stack created through CloudFormation: (cloudformation, cloudwatch, alarms in
    the template by name)."""
    body = template()
    declared = {
        r["Properties"]["AlarmName"]: r["Properties"]
        for r in body["Resources"].values()
        if r["Type"] == "AWS::CloudWatch::Alarm"
    }
    with Emulator() as emulator:

        def client(service: str) -> Any:
            return boto3.client(  # type: ignore[call-overload]
                service,
                region_name="us-east-1",
                endpoint_url=emulator.endpoint,
                aws_access_key_id="testing",
                aws_secret_access_key="testing",
            )

        cloudformation = client("cloudformation")
        cloudformation.create_stack(StackName="Alarms", TemplateBody=json.dumps(body))
        yield cloudformation, client("cloudwatch"), declared


def described(cloudwatch_client: Any, name: str) -> dict[str, Any]:
    (alarm,) = cloudwatch_client.describe_alarms(AlarmNames=[name])["MetricAlarms"]
    return dict(alarm)


def test_stack_is_created(deployed: tuple[Any, Any, dict[str, dict[str, Any]]]) -> None:
    # Given the two-alarm stack sent to the emulator's CloudFormation
    cloudformation, _, declared = deployed
    # Then it was created, with both alarms
    assert sorted(declared) == sorted([SINGLE, MATH])
    (stack,) = cloudformation.describe_stacks(StackName="Alarms")["Stacks"]
    assert stack["StackStatus"] == "CREATE_COMPLETE"


def test_single_metric_alarm_is_deployed_as_declared(deployed: tuple[Any, Any, dict[str, dict[str, Any]]]) -> None:
    # Given the single-metric alarm, named <prefix><stream>/<symptom>
    _, cloudwatch_client, declared = deployed
    assert "MetricName" in declared[SINGLE] and "Metrics" not in declared[SINGLE]
    # When the emulator's CloudWatch describes it by its name
    alarm = described(cloudwatch_client, SINGLE)
    # Then it watches the declared metric, with the declared settings
    properties = declared[SINGLE]
    assert {k: alarm.get(k) for k in properties if k != "Threshold"} == {
        k: v for k, v in properties.items() if k != "Threshold"
    }
    assert alarm["Threshold"] == float(properties["Threshold"])
    assert alarm["Metrics"] == []


def test_metric_math_alarm_is_deployed_with_its_queries(deployed: tuple[Any, Any, dict[str, dict[str, Any]]]) -> None:
    # Given the metric-math alarm, named <prefix><stream>/<symptom>/<qualifier>
    _, cloudwatch_client, declared = deployed
    assert "Metrics" in declared[MATH] and "MetricName" not in declared[MATH]
    # When the emulator's CloudWatch describes it by its name
    alarm = described(cloudwatch_client, MATH)
    # Then it holds the template's Metrics (the expression and its inputs) and no single metric
    assert alarm["Metrics"] == declared[MATH]["Metrics"]
    assert "MetricName" not in alarm
    assert {
        k: alarm[k] for k in ("ComparisonOperator", "EvaluationPeriods", "DatapointsToAlarm", "TreatMissingData")
    } == {
        k: declared[MATH][k]
        for k in ("ComparisonOperator", "EvaluationPeriods", "DatapointsToAlarm", "TreatMissingData")
    }


@pytest.mark.parametrize(
    ("name", "symptom"), [(SINGLE, "iterator-age"), (MATH, "write-throttling")], ids=["single-metric", "metric-math"]
)
def test_the_demos_state_change_event_maps_back_to_stream_and_symptom(
    deployed: tuple[Any, Any, dict[str, dict[str, Any]]], name: str, symptom: str
) -> None:
    # Given a deployed alarm set to ALARM, as the demo does
    _, cloudwatch_client, _ = deployed
    cloudwatch_client.set_alarm_state(AlarmName=name, StateValue="ALARM", StateReason="test")
    # When the demo builds the EventBridge event for it and the handler's model parses it
    event = state_change_event(described(cloudwatch_client, name), "test")
    detail = AlarmStateChangeEvent.model_validate(event).detail
    trigger, why_not = identify(
        alarm=detail.alarmName,
        prefix=DEFAULT_ALARM_PREFIX,
        state=detail.state.value,
        previous_state=detail.previousState.value if detail.previousState else None,
        state_timestamp=detail.state.timestamp,
        dimensions=detail.dimensions(),
        account=event["account"],
        region=event["region"],
    )
    # Then it names the alarm's stream and symptom, whatever the alarm watches
    assert trigger is not None, why_not
    assert (trigger.stream, trigger.symptom) == (STREAM, symptom)


def test_the_demos_inventory_lists_both_alarms(deployed: tuple[Any, Any, dict[str, dict[str, Any]]]) -> None:
    # Given both deployed alarms, as DescribeAlarms returns them
    _, cloudwatch_client, _ = deployed
    alarms = cloudwatch_client.describe_alarms(AlarmNamePrefix=DEFAULT_ALARM_PREFIX)["MetricAlarms"]
    # When the demo lists them
    lines = alarm_inventory(alarms).splitlines()
    # Then each shows what it watches and how it compares, whether it is a single metric or metric math
    rows = sorted(re.split(r"\s{2,}", line.strip()) for line in lines[2:])
    assert rows == sorted(
        [
            [SINGLE, "GetRecords.IteratorAgeMilliseconds Maximum", ">= 5", "3 of 5 min"],
            [MATH, "metric math: 100 * errors / invocations", "> 5", "3 of 5 min"],
        ]
    )


def test_deleting_the_stack_deletes_both_alarms(deployed: tuple[Any, Any, dict[str, dict[str, Any]]]) -> None:
    # Given the deployed stack (this test runs last in the module: it removes what the others read)
    cloudformation, cloudwatch_client, _ = deployed
    # When it is deleted
    cloudformation.delete_stack(StackName="Alarms")
    # Then neither alarm is left, '/' in their names notwithstanding
    assert cloudwatch_client.describe_alarms(AlarmNames=[SINGLE, MATH])["MetricAlarms"] == []
