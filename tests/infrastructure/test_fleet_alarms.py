"""Fleet alarms in the synthesized template: a mixed policy (two fleet streams, one per-stream stream) keeps the
per-stream stream's alarms, gives the fleet streams shared Metrics Insights alarms instead of their own for the
symptoms a query can express, passes cfn-lint and cdk-nag, and routes contributor state changes to the function."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cfnlint.api import ManualArgs, lint

from tests.infrastructure.support import Synth, alarm_rule, synthesize, write_policies

pytestmark = pytest.mark.xdist_group("infrastructure")

PREFIX = "kinesis-remediator-"
MIXED_YAML = """\
version: 1
streams:
  - name: orders
    alarms: fleet
    actions: {reshard: {max_shards: 16}}
  - name: clicks
    alarms: fleet
    actions: {reshard: {max_shards: 16}}
  - name: audit-log
    alarms: fleet
    detectors:
      iterator_age: {threshold_ms: 300000}
    actions: {reshard: {max_shards: 16}}
  - name: payments
    actions: {reshard: {max_shards: 16}}
"""
FLEET_SYMPTOMS = {"iterator-age", "get-latency", "read-throttling", "write-throttling"}


@pytest.fixture(scope="module")
def mixed(tmp_path_factory: pytest.TempPathFactory) -> Synth:
    directory = write_policies(tmp_path_factory.mktemp("fleet-policies"), {"streams.yaml": MIXED_YAML})
    return synthesize([Path(directory)], tmp_path_factory.mktemp("cdk.out-fleet"))


def alarms(synth: Synth) -> dict[str, dict]:
    """Alarm name -> properties, for every CloudWatch alarm of ours in the template."""
    found = {}
    for resource in synth.resources("AWS::CloudWatch::Alarm").values():
        name = resource["Properties"]["AlarmName"]
        if isinstance(name, str) and name.startswith(PREFIX):
            found[name] = resource["Properties"]
    return found


def test_per_stream_streams_keep_their_alarms_and_fleet_streams_share(mixed: Synth) -> None:
    # Given a policy with three fleet streams and one per-stream stream
    names = alarms(mixed)
    # Then the per-stream stream has its own alarm for every symptom, fleet ones included
    for symptom in FLEET_SYMPTOMS:
        assert f"{PREFIX}payments/{symptom}" in names
    # And the fleet streams have none of their own for those symptoms, but keep the math alarms no query expresses
    for stream in ("orders", "clicks", "audit-log"):
        own = {n.split("/")[1] for n in names if n.startswith(f"{PREFIX}{stream}/")}
        assert own.isdisjoint(FLEET_SYMPTOMS), own
        assert {"consumer-stalled", "under-utilised", "get-errors"} <= own
    # And the fleet alarms: one per symptom for the shared thresholds, and one more for audit-log's iterator age
    fleet = {n: p for n, p in names.items() if n.startswith(f"{PREFIX}fleet~")}
    by_symptom: dict[str, list[str]] = {}
    for name in fleet:
        by_symptom.setdefault(name.split("/")[1], []).append(name)
    assert {s: len(v) for s, v in by_symptom.items()} == {
        "iterator-age": 2,
        "get-latency": 1,
        "read-throttling": 1,
        "write-throttling": 1,
    }


def test_a_fleet_alarm_is_a_metrics_insights_query_over_its_streams(mixed: Synth) -> None:
    # Given the write-throttling fleet alarm
    fleet = alarms(mixed)
    (name,) = [n for n in fleet if n.startswith(f"{PREFIX}fleet~") and n.endswith("/write-throttling")]
    properties = fleet[name]
    # Then it holds one query and no metric of its own, as CloudFormation documents a Metrics Insights alarm
    assert "MetricName" not in properties and "Namespace" not in properties and "Statistic" not in properties
    (query,) = properties["Metrics"]
    assert query["Period"] == 60 and query["ReturnData"] is True
    assert query["Expression"] == (
        'SELECT SUM("WriteProvisionedThroughputExceeded") FROM SCHEMA("AWS/Kinesis", StreamName) '
        "WHERE StreamName = 'audit-log' OR StreamName = 'clicks' OR StreamName = 'orders' "
        "GROUP BY StreamName ORDER BY SUM() DESC"
    )
    # And the thresholds are the streams' (the per-stream stream's alarm shows what a stream's own would be)
    own = fleet[f"{PREFIX}payments/write-throttling"]
    for key in ("Threshold", "ComparisonOperator", "EvaluationPeriods", "DatapointsToAlarm", "TreatMissingData"):
        assert properties[key] == own[key], key
    assert "payments" not in query["Expression"]


def test_the_rule_routes_contributor_state_changes(mixed: Synth) -> None:
    # Given the rule that feeds the function
    _, rule = alarm_rule(mixed)
    pattern = rule["Properties"]["EventPattern"]
    # Then it matches our alarms' contributor state changes as well as their state changes
    assert pattern["detail-type"] == ["CloudWatch Alarm State Change", "CloudWatch Alarm Contributor State Change"]
    assert pattern["detail"]["alarmName"] == [{"prefix": PREFIX}]


def test_the_function_may_read_contributors_of_our_alarms_only(mixed: Synth) -> None:
    # Given the function's policy statements
    statements = [
        statement
        for policy in mixed.resources("AWS::IAM::Policy").values()
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
    ]
    (statement,) = [s for s in statements if "cloudwatch:DescribeAlarmContributors" in json.dumps(s["Action"])]
    # Then DescribeAlarmContributors is scoped to the deployment's alarms, as DescribeAlarms is
    assert "kinesis-remediator-*" in json.dumps(statement["Resource"])


def test_cfn_lint_accepts_the_fleet_alarms(mixed: Synth) -> None:
    # When cfn-lint checks the template with fleet alarms
    matches = lint(json.dumps(mixed.template), config=ManualArgs(regions=["us-east-1"]))
    # Then it finds no error in them
    errors = [m for m in matches if m.rule.severity == "error"]
    assert errors == [], "\n".join(f"{m.rule.id} {m.path}: {m.message}" for m in errors)


def test_cfn_lint_would_catch_a_broken_fleet_alarm(mixed: Synth) -> None:
    # Given the template with a fleet alarm's query given a metric as well (CloudWatch rejects both at once)
    template = json.loads(json.dumps(mixed.template))
    fleet_id = next(
        logical_id
        for logical_id, r in template["Resources"].items()
        if r["Type"] == "AWS::CloudWatch::Alarm" and "fleet~" in str(r["Properties"].get("AlarmName"))
    )
    template["Resources"][fleet_id]["Properties"]["MetricName"] = "WriteProvisionedThroughputExceeded"
    # When cfn-lint checks it
    matches = lint(json.dumps(template), config=ManualArgs(regions=["us-east-1"]))
    # Then it reports an error at that alarm (so the clean result above is not vacuous)
    assert any(m.rule.severity == "error" and m.path[:2] == ["Resources", fleet_id] for m in matches)
