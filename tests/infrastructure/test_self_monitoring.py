"""The remediator watches itself (stacks/constructs/self_monitoring.py): four alarms, e-mailed to the operators
through their own encrypted topic, never seen by the remediator; and every filtered e-mail subscription spells out
its FilterPolicyScope."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from aws_cdk import App
from aws_cdk.assertions import Template
from moto.events.models import EventPattern
from remediator.core.alarm import DEFAULT_ALARM_PREFIX, identify
from remediator.core.deployment import FAILED_OUTCOME_METRIC, METRICS_NAMESPACE, SERVICE_NAME, RemediatorMetric
from remediator.events import AlarmStateChangeEvent
from remediator.policy_files import load_policies

from stacks.app_builder import build_app
from stacks.constructs.self_monitoring import OPERATOR_EMAILS_CONTEXT, OperatorEmailsError, operator_emails
from tests.fakes import ACCOUNT, REGION, alarm_event
from tests.infrastructure.support import (
    EXAMPLE_POLICY,
    Synth,
    alarm_rule,
    alarms_by_name,
    cli_context,
    function,
    get_att,
    health_alarms,
    ref,
    resolve,
    run_app,
)

pytestmark = pytest.mark.xdist_group("infrastructure")

HEALTH = "KinesisRemediator-health/"


def operators_topic(synth: Synth) -> str:
    return synth.logical_id("SelfMonitoring/Topic")


def test_every_alarm_is_a_streams_or_the_remediators_own(synth: Synth) -> None:
    # Given every alarm in the template
    names = {a["Properties"]["AlarmName"] for a in synth.resources("AWS::CloudWatch::Alarm").values()}
    # Then each is either one the symptoms declare for a stream, or one of the remediator's five
    assert names == set(alarms_by_name(synth)) | set(health_alarms(synth))
    assert sorted(health_alarms(synth)) == [
        f"{HEALTH}{what}" for what in ("census", "dead-letter-queue", "duration", "errors", "failed-outcomes")
    ]


def test_the_health_alarms_watch_what_the_remediator_emits(synth: Synth) -> None:
    # Given the remediator's own alarms, its function and its dead-letter queue
    alarms = resolve(health_alarms(synth), synth.template)
    function_id, fn = function(synth)
    queue_id = synth.logical_id("Remediator/DeadLetterQueue")
    timeout_ms = fn["Properties"]["Timeout"] * 1000

    def watched(name: str) -> tuple[Any, ...]:
        a = alarms[f"{HEALTH}{name}"]
        return (a["Namespace"], a["MetricName"], a["Statistic"], a["Dimensions"], a["ComparisonOperator"])

    # Then the dead-letter queue alarms on its first visible message
    assert watched("dead-letter-queue") == (
        "AWS/SQS",
        "ApproximateNumberOfMessagesVisible",
        "Maximum",
        [{"Name": "QueueName", "Value": get_att(queue_id, "QueueName")}],
        "GreaterThanOrEqualToThreshold",
    )
    assert alarms[f"{HEALTH}dead-letter-queue"]["Threshold"] == 1
    # And the function's errors on the first one, its longest invocation at 80 % of its timeout
    function_dimension = [{"Name": "FunctionName", "Value": ref(function_id)}]
    assert watched("errors") == ("AWS/Lambda", "Errors", "Sum", function_dimension, "GreaterThanOrEqualToThreshold")
    assert alarms[f"{HEALTH}errors"]["Threshold"] == 1
    assert watched("duration") == (
        "AWS/Lambda",
        "Duration",
        "Maximum",
        function_dimension,
        "GreaterThanOrEqualToThreshold",
    )
    assert alarms[f"{HEALTH}duration"]["Threshold"] == 0.8 * timeout_ms
    # And failed outcomes read the handler's metric with the one dimension Powertools writes (the integration
    # test test_handler_self_metrics.py checks the emitted side)
    assert watched("failed-outcomes") == (
        METRICS_NAMESPACE,
        FAILED_OUTCOME_METRIC,
        "Sum",
        [{"Name": "service", "Value": SERVICE_NAME}],
        "GreaterThanOrEqualToThreshold",
    )
    # And the census alarm reads the streams the census missed, three 5-minute periods in a row, and takes no
    # census at all (no data) as a problem too
    census = alarms[f"{HEALTH}census"]
    assert watched("census") == (
        METRICS_NAMESPACE,
        RemediatorMetric.CENSUS_STREAMS_MISSED,
        "Minimum",
        [{"Name": "service", "Value": SERVICE_NAME}],
        "GreaterThanOrEqualToThreshold",
    )
    assert (census["Period"], census["EvaluationPeriods"], census["DatapointsToAlarm"]) == (300, 3, 3)
    assert census["TreatMissingData"] == "breaching"
    # And the others treat no data as fine; all notify the operators' topic
    for name, properties in alarms.items():
        if name != f"{HEALTH}census":
            assert properties["TreatMissingData"] == "notBreaching"
        assert properties["AlarmActions"] == [ref(operators_topic(synth))]


def test_the_remediator_never_acts_on_its_own_alarms(synth: Synth) -> None:
    # Given the rule that feeds the remediator
    _, rule = alarm_rule(synth)
    pattern = EventPattern.load(json.dumps(rule["Properties"]["EventPattern"]))
    for name in health_alarms(synth):
        # When one of the remediator's own alarms goes into ALARM
        event = alarm_event(name, stream=None)
        # Then the rule does not send it to the remediator
        assert not pattern.matches_event(event), name  # type: ignore[arg-type]
        # And, delivered anyway, the handler's parsing does not make it a trigger
        detail = AlarmStateChangeEvent.model_validate(event).detail
        trigger, why_not = identify(
            alarm=detail.alarmName,
            prefix=DEFAULT_ALARM_PREFIX,
            state="ALARM",
            previous_state="OK",
            state_timestamp=detail.state.timestamp,
            dimensions=detail.dimensions(),
            account=ACCOUNT,
            region=REGION,
        )
        assert trigger is None
        assert "does not start with" in why_not
    # While a stream alarm's state change does reach it (so this test can fail)
    assert pattern.matches_event(alarm_event(next(iter(alarms_by_name(synth)))))  # type: ignore[arg-type]


def test_an_alarm_prefix_that_would_catch_the_health_alarms_is_refused(tmp_path: Path) -> None:
    # Given an alarm prefix that the health alarms' names start with
    app = App(outdir=str(tmp_path), context=cli_context())
    # When the app is built
    # Then it fails, naming the clash
    with pytest.raises(ValueError, match="would match the alarm prefix 'KinesisRemediator-'"):
        build_app(app, [EXAMPLE_POLICY], alarm_prefix="KinesisRemediator-")


def test_the_operators_topic_is_encrypted_and_cloudwatch_may_publish_to_it(synth: Synth) -> None:
    # Given the operators' topic and its key
    topic_id = operators_topic(synth)
    key_id = synth.logical_id("SelfMonitoring/TopicKey")
    topic = resolve(synth.template["Resources"][topic_id]["Properties"], synth.template)
    key = resolve(synth.template["Resources"][key_id]["Properties"], synth.template)
    # Then the topic is encrypted with its own rotating key, which CloudWatch may use (else alarm notifications
    # to an encrypted topic are dropped)
    assert topic["KmsMasterKeyId"] == get_att(key_id)
    assert key["EnableKeyRotation"] is True
    (cloudwatch_use,) = [
        s for s in key["KeyPolicy"]["Statement"] if s.get("Principal") == {"Service": "cloudwatch.amazonaws.com"}
    ]
    assert cloudwatch_use["Effect"] == "Allow"
    assert sorted(cloudwatch_use["Action"]) == ["kms:Decrypt", "kms:GenerateDataKey*"]
    # And its policy lets CloudWatch publish for the health alarms of this account only, and requires TLS
    (policy,) = [
        p["Properties"]["PolicyDocument"]["Statement"]
        for p in resolve(synth.resources("AWS::SNS::TopicPolicy"), synth.template).values()
        if p["Properties"]["Topics"] == [ref(topic_id)]
    ]
    deny, allow = sorted(policy, key=lambda s: s["Effect"] == "Allow")
    assert deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    assert allow["Principal"] == {"Service": "cloudwatch.amazonaws.com"}
    assert allow["Action"] == "sns:Publish"
    assert allow["Condition"] == {
        "StringEquals": {"aws:SourceAccount": ACCOUNT},
        "ArnLike": {"aws:SourceArn": f"arn:aws:cloudwatch:{REGION}:{ACCOUNT}:alarm:{HEALTH}*"},
    }


@pytest.mark.parametrize(
    ("fixture", "expected"),
    [
        ("synth", ["oncall@example.com", "orders-team@example.com"]),
        ("example_synth", ["sre-oncall@example.com"]),
    ],
    ids=["test", "example"],
)
def test_by_default_every_policy_address_hears_the_remediators_alarms_unfiltered(
    request: pytest.FixtureRequest, fixture: str, expected: list[str]
) -> None:
    # Given a stack built without the operatorEmails context
    synth: Synth = request.getfixturevalue(fixture)
    topic = ref(operators_topic(synth))
    # Then each address in the policies subscribes to the operators' topic, with no filter (an alarm
    # notification has no `stream` attribute to filter on)
    subscriptions = [
        s["Properties"]
        for s in resolve(synth.resources("AWS::SNS::Subscription"), synth.template).values()
        if s["Properties"]["TopicArn"] == topic
    ]
    assert sorted(s["Endpoint"] for s in subscriptions) == expected
    for subscription in subscriptions:
        assert subscription == {"Endpoint": subscription["Endpoint"], "Protocol": "email", "TopicArn": topic}


@pytest.mark.parametrize("fixture", ["synth", "grown_synth", "example_synth"])
def test_every_filtered_subscription_spells_out_its_filter_policy_scope(
    request: pytest.FixtureRequest, fixture: str
) -> None:
    # Given every SNS subscription of the stack
    synth: Synth = request.getfixturevalue(fixture)
    subscriptions = [s["Properties"] for s in synth.resources("AWS::SNS::Subscription").values()]
    filtered = [s for s in subscriptions if "FilterPolicy" in s]
    assert filtered
    # Then each one with a filter names the scope the notifier's `recipients` attribute lives in, so CloudFormation can
    # later change or drop the filter (aws-cdk#24804)
    assert all(s["FilterPolicyScope"] == "MessageAttributes" for s in filtered)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param(None, ["sre-oncall@example.com"], id="unset: the policies' addresses"),
        pytest.param("", ["sre-oncall@example.com"], id="empty: the policies' addresses"),
        pytest.param("Ops@Example.com, sre@example.org", ["ops@example.com", "sre@example.org"], id="comma string"),
        pytest.param(["ops@example.com", "ops@example.com"], ["ops@example.com"], id="list, duplicates"),
    ],
)
def test_operator_emails_come_from_the_context_or_the_policies(value: object, expected: list[str]) -> None:
    assert operator_emails(value, load_policies([EXAMPLE_POLICY])) == expected


@pytest.mark.parametrize("value", ["not-an-address", ["ok@example.com", "two@x.com,three@y.com"], 42, {"a": 1}])
def test_operator_emails_that_are_not_addresses_are_refused(value: object) -> None:
    with pytest.raises(OperatorEmailsError, match=OPERATOR_EMAILS_CONTEXT):
        operator_emails(value, load_policies([EXAMPLE_POLICY]))


def test_the_operator_emails_context_replaces_the_default(tmp_path: Path) -> None:
    # Given the app with the operatorEmails context set
    app = App(outdir=str(tmp_path), context=cli_context() | {OPERATOR_EMAILS_CONTEXT: ["ops@example.com"]})
    stack = build_app(app, [EXAMPLE_POLICY], operator_emails=app.node.try_get_context(OPERATOR_EMAILS_CONTEXT))
    template = Template.from_stack(stack).to_json()
    # Then only that address hears the remediator's alarms
    topics = [i for i, r in template["Resources"].items() if r["Type"] == "AWS::SNS::Topic"]
    (operators,) = [i for i in topics if i.startswith("SelfMonitoring")]
    endpoints = [
        r["Properties"]["Endpoint"]
        for r in template["Resources"].values()
        if r["Type"] == "AWS::SNS::Subscription" and r["Properties"]["TopicArn"] == {"Ref": operators}
    ]
    assert endpoints == ["ops@example.com"]


def test_app_py_reports_a_bad_operator_emails_context(policy_dir: Path, tmp_path: Path) -> None:
    # When app.py runs on the test policies with an operatorEmails context that is not an address
    result = run_app(cli_context() | {"policyDir": str(policy_dir), OPERATOR_EMAILS_CONTEXT: "nobody"}, tmp_path)
    # Then it exits with the reason, naming the context key
    assert result.returncode == 1
    assert "operatorEmails" in result.stderr
    assert "nobody" in result.stderr
