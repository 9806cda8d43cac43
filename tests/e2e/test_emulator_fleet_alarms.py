"""The demo's emulator deploys fleet alarms as CloudFormation declares them (stacks.constructs.fleet_alarms): a
Metrics Insights query in `Metrics`, no metric of its own, named `<prefix>fleet~<group>.<n>/<symptom>`.

The emulator (moto) stores the query but never evaluates it, nor has contributors: the contributor path is tested
through the handler in tests/integration/test_fleet_contributors.py."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from aws_cdk import App, BootstraplessSynthesizer, Stack
from aws_cdk.assertions import Template
from remediator.core.deployment import DEFAULT_ALARM_PREFIX
from remediator.core.fleet import parse_fleet_name, query_streams
from remediator.policy_files import load_policies

from demo.emulator import Emulator
from stacks.constructs.fleet_alarms import FleetAlarms

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("e2e")]

POLICY = """\
version: 1
streams:
  - name: orders
    alarms: fleet
    notify: {emails: [oncall@example.com]}
    actions: {reshard: {max_shards: 8}}
  - name: clicks.v2
    alarms: fleet
    notify: {emails: [oncall@example.com]}
    actions: {reshard: {max_shards: 8}}
"""


@pytest.fixture(scope="module")
def deployed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Any, dict[str, dict[str, Any]]]]:
    """The emulator with a stack of the two streams' fleet alarms, created through CloudFormation."""
    path = Path(tmp_path_factory.mktemp("fleet")) / "streams.yaml"
    path.write_text(POLICY, encoding="utf-8")
    app = App(analytics_reporting=False)
    stack = Stack(app, "FleetAlarms", synthesizer=BootstraplessSynthesizer())
    FleetAlarms(stack, "Fleet", policies=load_policies([path]), prefix=DEFAULT_ALARM_PREFIX)
    body = dict(Template.from_stack(stack).to_json())
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

        client("cloudformation").create_stack(StackName="FleetAlarms", TemplateBody=json.dumps(body))
        yield client("cloudwatch"), declared


def test_fleet_alarms_are_deployed_with_their_queries(deployed: tuple[Any, dict[str, dict[str, Any]]]) -> None:
    # Given the fleet alarms of two fleet streams with default thresholds (one per shareable symptom)
    cloudwatch, declared = deployed
    assert sorted(parse_fleet_name(name, DEFAULT_ALARM_PREFIX).symptom for name in declared) == [  # type: ignore[union-attr]
        "get-latency",
        "iterator-age",
        "read-throttling",
        "write-throttling",
    ]
    for name, properties in declared.items():
        # When the emulator's CloudWatch describes each by its name
        (alarm,) = cloudwatch.describe_alarms(AlarmNames=[name])["MetricAlarms"]
        # Then it holds the declared query over both streams, and no metric of its own
        assert alarm["Metrics"] == properties["Metrics"]
        assert query_streams(alarm["Metrics"][0]["Expression"]) == {"orders", "clicks.v2"}
        assert "MetricName" not in alarm
        assert alarm["EvaluationPeriods"] == properties["EvaluationPeriods"]
