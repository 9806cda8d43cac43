"""The synthesized template: alarms, the EventBridge rule, the Lambda, notifications, state and encryption."""

from __future__ import annotations

import json

import pytest
from remediator.core import limits
from remediator.core.alarm import DEFAULT_ALARM_PREFIX, alarm_name
from remediator.core.deployment import CENSUS_SOURCE, KILL_SWITCH_OFF, schedule_prefix
from remediator.core.registry import REGISTRY

from stacks.constructs.remediator import HANDLER, policy_digest
from tests.infrastructure.support import (
    Synth,
    alarm_as_built,
    alarm_as_declared,
    alarm_rule,
    alarms_by_name,
    census_rule,
    function,
    get_att,
    newest_python_runtime,
    ref,
    resolve,
)

pytestmark = pytest.mark.xdist_group("infrastructure")

# (stream, symptom) -> MetricName, Statistic, Threshold, EvaluationPeriods, DatapointsToAlarm, as written in the
# test policies (conftest.py). payments' write-throttling detector is disabled: no alarm. read-throttling keeps its
# defaults everywhere; no stream lists an enhanced fan-out consumer, so efo-consumer-lag has no alarm.
READ_THROTTLING_DEFAULTS = ("ReadProvisionedThroughputExceeded", "Sum", 10, 5, 3)
EXPECTED_ALARMS = {
    ("orders", "iterator-age"): ("GetRecords.IteratorAgeMilliseconds", "Maximum", 120000, 10, 4),
    ("orders", "read-throttling"): READ_THROTTLING_DEFAULTS,
    ("orders", "write-throttling"): ("WriteProvisionedThroughputExceeded", "Sum", 5, 3, 2),
    ("orders", "get-latency"): ("GetRecords.Latency", "Average", 1000, 5, 3),
    ("payments", "iterator-age"): ("GetRecords.IteratorAgeMilliseconds", "Maximum", 30000, 4, 4),
    ("payments", "get-latency"): ("GetRecords.Latency", "Average", 1000, 5, 3),
    ("payments", "read-throttling"): READ_THROTTLING_DEFAULTS,
}
EXAMPLE_ALARMS = {
    ("orders", "iterator-age"): ("GetRecords.IteratorAgeMilliseconds", "Maximum", 60000, 5, 3),
    ("orders", "read-throttling"): READ_THROTTLING_DEFAULTS,
    ("orders", "write-throttling"): ("WriteProvisionedThroughputExceeded", "Sum", 1, 5, 2),
    ("orders", "get-latency"): ("GetRecords.Latency", "Average", 1000, 5, 3),
}

ALARM_KEYS = (
    "Namespace",
    "MetricName",
    "Statistic",
    "Dimensions",
    "Period",
    "Threshold",
    "EvaluationPeriods",
    "DatapointsToAlarm",
    "ComparisonOperator",
    "TreatMissingData",
)


# --- CloudWatch alarms ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fixture", "expected"), [("synth", EXPECTED_ALARMS), ("example_synth", EXAMPLE_ALARMS)], ids=["test", "example"]
)
def test_one_alarm_per_stream_and_enabled_detector(
    request: pytest.FixtureRequest, fixture: str, expected: dict[tuple[str, str], tuple]
) -> None:
    # Given the policies (the test directory, or examples/policies/example.yaml)
    synth: Synth = request.getfixturevalue(fixture)
    # When the app is synthesized
    alarms = alarms_by_name(synth)
    # Then there is exactly one alarm per stream and enabled detector of these stream-level symptoms, named
    # <prefix><stream>/<symptom> (other symptoms' alarms: test_alarms_are_the_symptom_registrys_alarm_specs)
    symptoms = {symptom for _, symptom in expected}
    assert sorted(name for name in alarms if name.split("/")[1] in symptoms) == sorted(
        f"kinesis-remediator-{stream}/{symptom}" for stream, symptom in expected
    )
    for (stream, symptom), (metric, statistic, threshold, periods, datapoints) in expected.items():
        properties = alarms[f"kinesis-remediator-{stream}/{symptom}"]
        # ... on the AWS/Kinesis stream metric, with the policy's threshold and evaluation window
        assert {key: properties.get(key) for key in ALARM_KEYS} == {
            "Namespace": "AWS/Kinesis",
            "MetricName": metric,
            "Statistic": statistic,
            "Dimensions": [{"Name": "StreamName", "Value": stream}],
            "Period": 60,
            "Threshold": threshold,
            "EvaluationPeriods": periods,
            "DatapointsToAlarm": datapoints,
            "ComparisonOperator": "GreaterThanOrEqualToThreshold",
            "TreatMissingData": "notBreaching",
        }, (stream, symptom)


def test_under_utilised_alarm_divides_5_minute_sums_by_the_census_open_shards(synth: Synth) -> None:
    # Given the orders under-utilised alarm as synthesized
    properties = alarms_by_name(synth)["kinesis-remediator-orders/under-utilised"]
    queries = {query["Id"]: query for query in properties["Metrics"]}
    # Then it reads three metrics, each over 5 minutes: the write load's sums and the census's OpenShards of orders,
    # under the service dimension Powertools publishes it with and the stream's name
    stats = {
        query_id: (
            query["MetricStat"]["Metric"]["Namespace"],
            query["MetricStat"]["Metric"]["MetricName"],
            sorted((d["Name"], d["Value"]) for d in query["MetricStat"]["Metric"]["Dimensions"]),
            query["MetricStat"]["Stat"],
            query["MetricStat"]["Period"],
        )
        for query_id, query in queries.items()
        if "MetricStat" in query
    }
    assert stats == {
        "bytes": ("AWS/Kinesis", "IncomingBytes", [("StreamName", "orders")], "Sum", 300),
        "records": ("AWS/Kinesis", "IncomingRecords", [("StreamName", "orders")], "Sum", 300),
        "shards": (
            "KinesisRemediator",
            "OpenShards",
            [("StreamName", "orders"), ("service", "kinesis-remediator")],
            "Maximum",
            300,
        ),
    }
    # And the one expression it alarms on is the larger share of those shards' capacity, low for 12 of 12 periods,
    # a period without a census datapoint not breaching
    (expression,) = [q for q in queries.values() if "Expression" in q]
    assert expression["Expression"] == "MAX([bytes / (300000000 * shards), records / (300000 * shards)])"
    assert (properties["EvaluationPeriods"], properties["DatapointsToAlarm"]) == (12, 12)
    assert (properties["ComparisonOperator"], properties["TreatMissingData"]) == ("LessThanThreshold", "notBreaching")
    assert len(stats) <= limits.MAX_ALARM_METRICS


def test_disabled_detector_has_no_alarm(synth: Synth) -> None:
    # Given payments disables its write-throttling detector
    assert REGISTRY.symptoms["write-throttling"].detector(synth.policies.streams["payments"]).enabled is False
    # When the app is synthesized
    alarms = alarms_by_name(synth)
    # Then payments has its iterator-age alarm only, and no alarm watches its WriteProvisionedThroughputExceeded
    assert "kinesis-remediator-payments/write-throttling" not in alarms
    assert "kinesis-remediator-payments/iterator-age" in alarms
    assert [
        name
        for name, p in alarms.items()
        if p.get("Dimensions") == [{"Name": "StreamName", "Value": "payments"}]
        and p.get("MetricName") == "WriteProvisionedThroughputExceeded"
    ] == []


@pytest.mark.parametrize("fixture", ["synth", "grown_synth", "example_synth"])
def test_alarms_are_the_symptom_registrys_alarm_specs(request: pytest.FixtureRequest, fixture: str) -> None:
    # Given the loaded policies and the symptom registry
    synth: Synth = request.getfixturevalue(fixture)
    alarms = alarms_by_name(synth)
    expected_names = set()
    for stream, policy in synth.policies.streams.items():
        for key, symptom in REGISTRY.symptoms.items():
            detector = symptom.detector(policy)
            if not detector.enabled:
                continue
            # Then each enabled detector's AlarmSpecs are built as declared
            for spec in symptom.alarms(policy, detector):
                name = alarm_name(DEFAULT_ALARM_PREFIX, stream, key, spec.qualifier)
                expected_names.add(name)
                assert name in alarms, name
                assert alarm_as_built(alarms[name]) == alarm_as_declared(spec), name
    # And there is no other alarm
    assert set(alarms) == expected_names


# --- EventBridge rule -------------------------------------------------------------------------------------------


def test_the_stack_has_two_rules_the_alarm_changes_and_the_census(synth: Synth) -> None:
    assert set(synth.resources("AWS::Events::Rule")) == {alarm_rule(synth)[0], census_rule(synth)[0]}


def test_census_rule_invokes_the_function_every_5_minutes_with_our_input(synth: Synth) -> None:
    # Given the synthesized stack
    _, rule = census_rule(synth)
    function_id, _ = function(synth)
    # Then the census rule runs on a 5-minute rate, with no event pattern
    assert rule["Properties"]["ScheduleExpression"] == "rate(5 minutes)"
    assert "EventPattern" not in rule["Properties"]
    assert rule["Properties"]["State"] == "ENABLED"
    # And its only target is the function, with our constant input (handler: routed by its source), not retried:
    # a census later than its own period is worth nothing, the next one comes 5 minutes on
    (target,) = rule["Properties"]["Targets"]
    assert resolve(target["Arn"], synth.template) == get_att(function_id)
    assert json.loads(target["Input"]) == {"source": CENSUS_SOURCE}
    assert target["RetryPolicy"] == {"MaximumRetryAttempts": 0, "MaximumEventAgeInSeconds": 300}


def test_rule_matches_our_alarms_going_into_alarm_and_targets_the_function(synth: Synth) -> None:
    # Given the synthesized stack
    _, rule = alarm_rule(synth)
    function_id, _ = function(synth)
    (queue_id,) = synth.resources("AWS::SQS::Queue")
    # Then the rule matches CloudWatch alarm state changes to ALARM (remediate) and to OK (the resolved e-mail) of
    # alarms with our prefix, and those of our fleet alarms' contributors (one stream each)
    assert rule["Properties"]["EventPattern"] == {
        "source": ["aws.cloudwatch"],
        "detail-type": ["CloudWatch Alarm State Change", "CloudWatch Alarm Contributor State Change"],
        "detail": {"alarmName": [{"prefix": DEFAULT_ALARM_PREFIX}], "state": {"value": ["ALARM", "OK"]}},
    }
    assert rule["Properties"]["State"] == "ENABLED"
    # And its only target is the function, with retries and a dead-letter queue
    (target,) = rule["Properties"]["Targets"]
    assert resolve(target["Arn"], synth.template) == get_att(function_id)
    assert target["RetryPolicy"] == {"MaximumRetryAttempts": 4, "MaximumEventAgeInSeconds": 7200}
    assert resolve(target["DeadLetterConfig"], synth.template) == {"Arn": get_att(queue_id)}


def test_every_alarm_name_starts_with_the_rule_prefix(synth: Synth) -> None:
    # Given the rule's alarm-name prefix
    _, rule = alarm_rule(synth)
    ((prefix_filter,),) = [rule["Properties"]["EventPattern"]["detail"]["alarmName"]]
    # Then every alarm of ours reaches the rule
    assert all(name.startswith(prefix_filter["prefix"]) for name in alarms_by_name(synth))


def test_eventbridge_may_invoke_the_function_from_our_two_rules_only(synth: Synth) -> None:
    # Given the synthesized stack
    function_id, _ = function(synth)
    # Then the only invoke permissions are for events.amazonaws.com from our alarm rule and our census rule
    permissions = [
        resolve(p["Properties"], synth.template) for p in synth.resources("AWS::Lambda::Permission").values()
    ]
    assert sorted(permissions, key=lambda p: str(p["SourceArn"])) == sorted(
        (
            {
                "Action": "lambda:InvokeFunction",
                "FunctionName": get_att(function_id),
                "Principal": "events.amazonaws.com",
                "SourceArn": get_att(rule_id),
            }
            for rule_id in (alarm_rule(synth)[0], census_rule(synth)[0])
        ),
        key=lambda p: str(p["SourceArn"]),
    )


# --- Lambda -----------------------------------------------------------------------------------------------------


def test_function_runs_on_the_newest_python_runtime_on_arm64(synth: Synth) -> None:
    # Given the newest PYTHON_3_x runtime this aws-cdk-lib offers
    newest = newest_python_runtime()
    # When the function is synthesized
    _, fn = function(synth)
    # Then it uses that runtime, on Graviton, with the remediator's handler, tracing and one layer
    properties = fn["Properties"]
    assert properties["Runtime"] == newest.name
    assert properties["Architectures"] == ["arm64"]
    assert properties["Handler"] == HANDLER == "remediator.handler.lambda_handler"
    assert properties["TracingConfig"] == {"Mode": "Active"}
    (layer_id,) = synth.resources("AWS::Lambda::LayerVersion")
    assert properties["Layers"] == [{"Ref": layer_id}]


def test_layer_is_built_for_the_functions_runtime_and_architecture(synth: Synth) -> None:
    # Given the function
    _, fn = function(synth)
    # Then the layer declares exactly the function's runtime and architecture
    _, layer = synth.only("AWS::Lambda::LayerVersion")
    assert layer["Properties"]["CompatibleRuntimes"] == [fn["Properties"]["Runtime"]]
    assert layer["Properties"]["CompatibleArchitectures"] == fn["Properties"]["Architectures"]


def test_function_environment(synth: Synth) -> None:
    # Given the synthesized stack
    _, fn = function(synth)
    topic_id = synth.logical_id("Notifications/Topic")
    audit_id = synth.logical_id("State/AuditTable")
    idempotency_id = synth.logical_id("State/IdempotencyTable")
    # When its environment is resolved
    environment = resolve(fn["Properties"]["Environment"]["Variables"], synth.template)
    # Then it holds exactly these settings: names and ARNs, no secrets
    assert environment == {
        "AUDIT_TABLE_NAME": ref(audit_id),
        "IDEMPOTENCY_TABLE_NAME": ref(idempotency_id),
        "NOTIFICATION_TOPIC_ARN": ref(topic_id),
        "KILL_SWITCH_PARAMETER": "/kinesis-remediator/kill-switch",
        "POLICY_PARAMETER_PREFIX": "/kinesis-remediator/policies",
        "ALARM_NAME_PREFIX": DEFAULT_ALARM_PREFIX,
        "POWERTOOLS_SERVICE_NAME": "kinesis-remediator",
        "POWERTOOLS_METRICS_NAMESPACE": "KinesisRemediator",
        "POWERTOOLS_LOG_LEVEL": "INFO",
        "POLICY_DIGEST": policy_digest(synth.policies),
        "FOLLOW_UP_SCHEDULER_ROLE_ARN": get_att(synth.logical_id("Remediator/FollowUpSchedulerRole")),
        "FOLLOW_UP_SCHEDULE_PREFIX": schedule_prefix(DEFAULT_ALARM_PREFIX),
    }
    assert len(environment["POLICY_DIGEST"]) == 16


def test_policy_digest_changes_with_the_policies(synth: Synth, grown_synth: Synth) -> None:
    # Given two apps whose policy sets differ by one stream
    def digest(s: Synth) -> str:
        return function(s)[1]["Properties"]["Environment"]["Variables"]["POLICY_DIGEST"]

    # Then their functions' POLICY_DIGEST differ, so Lambda drops environments caching the old policies
    assert digest(synth) != digest(grown_synth)


def test_failed_invocations_go_to_the_dead_letter_queue_after_retries(synth: Synth) -> None:
    # Given the synthesized stack
    function_id, fn = function(synth)
    (queue_id,) = synth.resources("AWS::SQS::Queue")
    # Then the function's own dead-letter queue is the queue, and async invocations retry twice within an hour
    assert resolve(fn["Properties"]["DeadLetterConfig"], synth.template) == {"TargetArn": get_att(queue_id)}
    _, invoke_config = synth.only("AWS::Lambda::EventInvokeConfig")
    assert resolve(invoke_config["Properties"], synth.template) == {
        "FunctionName": ref(function_id),
        "Qualifier": "$LATEST",
        "MaximumRetryAttempts": 2,
        "MaximumEventAgeInSeconds": 3600,
    }


# --- Notifications ----------------------------------------------------------------------------------------------


def test_topic_is_encrypted_with_the_rotating_key_and_requires_tls(synth: Synth) -> None:
    # Given the synthesized stack's notifications topic
    topic_id = synth.logical_id("Notifications/Topic")
    key_id = synth.logical_id("Notifications/TopicKey")
    topic = synth.template["Resources"][topic_id]
    key = synth.template["Resources"][key_id]
    # Then the topic is encrypted with the customer managed key, which rotates
    assert topic["Properties"]["KmsMasterKeyId"] == {"Fn::GetAtt": [key_id, "Arn"]}
    assert key["Properties"]["EnableKeyRotation"] is True
    # And the topic policy denies publishing without TLS
    (topic_policy,) = [
        p for p in synth.resources("AWS::SNS::TopicPolicy").values() if p["Properties"]["Topics"] == [{"Ref": topic_id}]
    ]
    (statement,) = topic_policy["Properties"]["PolicyDocument"]["Statement"]
    assert {k: v for k, v in statement.items() if k != "Sid"} == {
        "Action": "sns:Publish",
        "Condition": {"Bool": {"aws:SecureTransport": "false"}},
        "Effect": "Deny",
        "Principal": "*",
        "Resource": {"Ref": topic_id},
    }


@pytest.mark.parametrize(
    ("fixture", "expected"),
    [
        ("synth", ["oncall@example.com", "orders-team@example.com"]),
        ("example_synth", ["sre-oncall@example.com"]),
    ],
    ids=["test", "example"],
)
def test_one_email_subscription_per_address_filtered_to_itself(
    request: pytest.FixtureRequest, fixture: str, expected: list[str]
) -> None:
    # Given policies where an address may appear under several streams
    synth: Synth = request.getfixturevalue(fixture)
    topic_id = synth.logical_id("Notifications/Topic")
    # When the app is synthesized
    subscriptions = [
        s["Properties"]
        for s in synth.resources("AWS::SNS::Subscription").values()
        if s["Properties"]["TopicArn"] == {"Ref": topic_id}
    ]
    # Then each distinct address has one e-mail subscription whose filter accepts the messages naming it among their
    # recipients: one value, however many streams the address watches (SNS allows 150 per filter policy)
    assert sorted(s["Endpoint"] for s in subscriptions) == expected
    for subscription in subscriptions:
        assert subscription == {
            "Endpoint": subscription["Endpoint"],
            "Protocol": "email",
            "TopicArn": {"Ref": topic_id},
            "FilterPolicy": {"recipients": [subscription["Endpoint"]]},
            # Spelled out, so a later deploy that changes or drops the filter does not fail in CloudFormation;
            # message attributes are where the notifier puts `recipients`.
            "FilterPolicyScope": "MessageAttributes",
        }


# --- State: tables, parameters, dead-letter queue ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("construct", "keys", "ttl", "deletion"),
    [
        ("State/AuditTable", [("pk", "HASH"), ("sk", "RANGE")], "expires_at", "Retain"),
        ("State/IdempotencyTable", [("id", "HASH")], "expiration", "Delete"),
    ],
    ids=["audit", "idempotency"],
)
def test_tables(synth: Synth, construct: str, keys: list[tuple[str, str]], ttl: str, deletion: str) -> None:
    # Given the synthesized table
    table = synth.template["Resources"][synth.logical_id(construct)]
    properties = table["Properties"]
    # Then it is on-demand, recoverable, encrypted, expires items by its TTL attribute and has these keys
    assert properties["BillingMode"] == "PAY_PER_REQUEST"
    assert properties["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    assert properties["SSESpecification"] == {"SSEEnabled": True}
    assert properties["TimeToLiveSpecification"] == {"AttributeName": ttl, "Enabled": True}
    assert [(k["AttributeName"], k["KeyType"]) for k in properties["KeySchema"]] == keys
    assert properties["AttributeDefinitions"] == [{"AttributeName": name, "AttributeType": "S"} for name, _ in keys]
    assert table["DeletionPolicy"] == deletion


def test_kill_switch_parameter_starts_off(synth: Synth) -> None:
    # Given the synthesized stack
    kill_switch = synth.template["Resources"][synth.logical_id("State/KillSwitch")]
    # Then the kill switch exists, as a plain String reading the value the remediator takes for "off"
    # (remediation allowed; remediator.clients.parameters compares with the same constant)
    assert {k: kill_switch["Properties"][k] for k in ("Name", "Type", "Value")} == {
        "Name": "/kinesis-remediator/kill-switch",
        "Type": "String",
        "Value": KILL_SWITCH_OFF,
    }


@pytest.mark.parametrize("fixture", ["synth", "example_synth"])
def test_one_policy_parameter_per_stream_holding_the_validated_policy(
    request: pytest.FixtureRequest, fixture: str
) -> None:
    # Given the loaded policies
    synth: Synth = request.getfixturevalue(fixture)
    kill_switch_id = synth.logical_id("State/KillSwitch")
    # When the app is synthesized
    parameters = {
        p["Properties"]["Name"]: p["Properties"]
        for logical_id, p in synth.resources("AWS::SSM::Parameter").items()
        if logical_id != kill_switch_id
    }
    # Then each stream has one parameter under the policy prefix ...
    assert sorted(parameters) == sorted(f"/kinesis-remediator/policies/{name}" for name in synth.policies.streams)
    for name, policy in synth.policies.streams.items():
        parameter = parameters[f"/kinesis-remediator/policies/{name}"]
        assert parameter["Type"] == "String"
        # ... whose value is JSON the Lambda's model (built from the registry) accepts, equal to the policy
        # loaded from YAML
        deployed = REGISTRY.parse_stream_policy(json.loads(parameter["Value"]))
        # (Compared by value: the registry builds a new model class whenever its plugins change, as tests that
        # register a toy plugin make them, and pydantic models of different classes are never equal.)
        assert deployed.model_dump() == policy.model_dump()
        assert deployed.name == name


def test_dead_letter_queue_is_encrypted_and_requires_tls(synth: Synth) -> None:
    # Given the synthesized stack
    queue_id, queue = synth.only("AWS::SQS::Queue")
    # Then the queue is encrypted at rest and keeps failed events for 14 days
    assert queue["Properties"] == {"SqsManagedSseEnabled": True, "MessageRetentionPeriod": 14 * 24 * 3600}
    # And its policy denies every request without TLS
    _, queue_policy = synth.only("AWS::SQS::QueuePolicy")
    assert queue_policy["Properties"]["Queues"] == [{"Ref": queue_id}]
    deny = [s for s in queue_policy["Properties"]["PolicyDocument"]["Statement"] if s["Effect"] == "Deny"]
    assert deny == [
        {
            "Action": "sqs:*",
            "Condition": {"Bool": {"aws:SecureTransport": "false"}},
            "Effect": "Deny",
            "Principal": {"AWS": "*"},
            "Resource": {"Fn::GetAtt": [queue_id, "Arn"]},
        }
    ]


def test_log_group_has_a_retention(synth: Synth) -> None:
    # Given the function's log group
    _, fn = function(synth)
    log_group_id = fn["Properties"]["LoggingConfig"]["LogGroup"]["Ref"]
    # Then logs are kept for a year, not forever
    assert synth.template["Resources"][log_group_id]["Properties"]["RetentionInDays"] == 365
