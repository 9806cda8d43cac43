"""Contract tests over the registries, and the registry's own mechanics.

Every registered symptom and action keeps the contract that the stack (alarms, role), the CLI, the
e-mails and the remediator rely on, whatever plugins are added later; the registry refuses, at
registration, a plugin that does not.
"""

from __future__ import annotations

import math
import re
import shlex
from collections.abc import Iterator
from dataclasses import replace
from typing import Any, ClassVar

import pytest
from pydantic import BaseModel, Field, ValidationError
from remediator.core.actions.base import Action, ValidationContext
from remediator.core.alarm import DEFAULT_ALARM_PREFIX, alarm_name, identify
from remediator.core.cost import Usage, compare
from remediator.core.deployment import METRICS_NAMESPACE, METRICS_SERVICE_DIMENSION, SERVICE_NAME
from remediator.core.evidence import Evidence, StreamMode
from remediator.core.grants import EVENT_SOURCE_MAPPING, IamGrant, ResourceScope
from remediator.core.guardrails import common_guardrails
from remediator.core.history import ActionHistory
from remediator.core.metrics import STATISTICS, Comparison, Metric, MetricMath, MetricQuery, MissingData
from remediator.core.plan import Diagnosis, GuardrailVerdict, PlannedStep
from remediator.core.planner import make_plan
from remediator.core.policy import ActionPolicy, DetectorPolicy, StreamPolicy, field_name
from remediator.core.ports import DeclaredOnly, ServicePort, WritePorts, iam_action
from remediator.core.registry import REGISTRY, PluginError, Registry
from remediator.core.symptoms.base import AlarmSpec, Symptom
from remediator.events import AlarmStateChangeEvent

from tests.fakes import NOW, alarm_event, evidence, policy, stream_arn

KEBAB = re.compile(r"^[a-z][a-z0-9]*(-[a-z0-9]+)*$")
IAM_ACTION = re.compile(r"^[a-z][a-z0-9-]*:[A-Z][A-Za-z0-9]*$")
# CloudWatch: namespaces and dimension names are 1-255 printable ASCII characters, not starting with ':'.
CLOUDWATCH_NAME = re.compile(r"^[^:\s][\x20-\x7e]{0,254}$")

SYMPTOMS = sorted(REGISTRY.symptoms.items())
ACTIONS = sorted(REGISTRY.actions.items())
SYMPTOM_IDS = [key for key, _ in SYMPTOMS]
ACTION_IDS = [key for key, _ in ACTIONS]

# A stream whose name no plugin could hard-code, with a consumer of each kind so that per-consumer plugins
# have something to alarm on and act upon.
STREAM = "clicks.v2_1"
CONSUMER = "clicks-reader"
EFO_CONSUMER = "clicks-analytics"
KCL_APPLICATION = "clicks_indexer.v2"


def sample_policy(**overrides: Any) -> StreamPolicy:
    return policy(
        STREAM, consumers=[{"function": CONSUMER}, {"efo": EFO_CONSUMER}, {"kcl": KCL_APPLICATION}], **overrides
    )


def policy_strings(p: StreamPolicy) -> set[str]:
    """Every string value in a policy: the names of the stream and of the resources it lists."""
    found: set[str] = set()

    def walk(value: Any) -> None:
        if isinstance(value, str):
            found.add(value)
        elif isinstance(value, dict):
            for inner in value.values():
                walk(inner)
        elif isinstance(value, list | tuple):
            for inner in value:
                walk(inner)

    walk(p.model_dump(mode="json"))
    return found


def fake_arn(*, service: str, resource: str, resource_name: str, arn_format: str = "slash") -> str:
    separator = "/" if arn_format == "slash" else ":"
    return f"arn:aws:{service}:us-east-1:123456789012:{resource}{separator}{resource_name}"


def check_metric(metric: Metric, p: StreamPolicy) -> None:
    assert CLOUDWATCH_NAME.fullmatch(metric.namespace), metric.namespace
    assert metric.name.strip() == metric.name != "", metric
    assert metric.statistic in STATISTICS, metric
    assert metric.period_seconds in (10, 30) or metric.period_seconds % 60 == 0, metric
    for dimension, value in metric.dimensions:
        assert CLOUDWATCH_NAME.fullmatch(dimension), dimension
        # A dimension names the stream or a resource the policy lists, never a hard-coded one; except on the
        # remediator's own metrics (OpenShards), which Powertools publishes under its service dimension.
        own = metric.namespace == METRICS_NAMESPACE and (dimension, value) == (METRICS_SERVICE_DIMENSION, SERVICE_NAME)
        assert own or value in policy_strings(p), (dimension, value)


def check_source(source: Metric | MetricMath, p: StreamPolicy) -> None:
    if isinstance(source, MetricMath):
        assert source.expression.strip() != ""
        assert source.inputs, "a metric-math expression needs its input metrics"
        for name in source.inputs:
            assert re.fullmatch(r"[a-z][A-Za-z0-9_]*", name), name
            assert re.search(rf"\b{re.escape(name)}\b", source.expression), (name, source.expression)
    else:
        assert isinstance(source, Metric)
    for metric in source.metrics if isinstance(source, MetricMath) else (source,):
        check_metric(metric, p)


def cloudwatch_event(name: str, spec: AlarmSpec) -> dict[str, Any]:
    """The EventBridge event CloudWatch sends when the alarm the stack built from `spec` fires."""
    event = alarm_event(name, stream=None)

    def stat(metric: Metric) -> dict[str, Any]:
        return {
            "metric": {"namespace": metric.namespace, "name": metric.name, "dimensions": metric.dimension_map},
            "period": metric.period_seconds,
            "stat": metric.statistic,
        }

    if isinstance(spec.metric, MetricMath):
        queries: list[dict[str, Any]] = [
            {"id": key, "metricStat": stat(metric), "returnData": False} for key, metric in spec.metric.inputs.items()
        ]
        queries.append({"id": "expression", "expression": spec.metric.expression, "returnData": True})
    else:
        queries = [{"id": "m1", "metricStat": stat(spec.metric), "returnData": True}]
    event["detail"]["configuration"]["metrics"] = queries
    return event


# The built-in set -----------------------------------------------------------------------------------
def test_the_builtin_plugins_the_product_relies_on_are_registered() -> None:
    # The demo, the example policy and the README rely on these; more may be registered.
    assert {"iterator-age", "write-throttling"} <= set(REGISTRY.symptoms)
    assert "reshard" in REGISTRY.actions


# Symptoms -------------------------------------------------------------------------------------------
# What registration itself enforces (kebab-case id, a title and a meaning, a DetectorPolicy schema whose
# fields all have defaults and descriptions; for actions an ActionPolicy schema, grants, sample
# parameters) is not restated per plugin here, where it could not fail: the registry mechanics tests
# below show that a plugin breaking any of it is refused.
@pytest.mark.parametrize(("key", "symptom"), SYMPTOMS, ids=SYMPTOM_IDS)
def test_symptom_title_fits_a_subject_line(key: str, symptom: Symptom[Any]) -> None:
    # The title ends every e-mail subject, which SNS wants on one line
    assert "\n" not in symptom.title
    assert "\r" not in symptom.title
    assert symptom.title == symptom.title.strip()


@pytest.mark.parametrize(("key", "symptom"), SYMPTOMS, ids=SYMPTOM_IDS)
def test_detector_block_defaults_are_documented(key: str, symptom: Symptom[Any]) -> None:
    # Given a policy that leaves the symptom's detector block out
    schema = symptom.detector_schema
    detector = symptom.detector(sample_policy())
    # Then the policy model gives it the block under the plugin's key, with exactly the schema's defaults
    assert type(detector) is schema
    assert detector == schema()
    # And every field says what it does in words (the reference and `validate` print these)
    for name, info in schema.model_fields.items():
        assert (info.description or "").strip() != "", f"{schema.__name__}.{name} has a blank description"


@pytest.mark.parametrize(("key", "symptom"), SYMPTOMS, ids=SYMPTOM_IDS)
def test_alarms_are_valid_cloudwatch_alarms(key: str, symptom: Symptom[Any]) -> None:
    # Given a policy with every default and its consumers
    p = sample_policy()
    detector = symptom.detector(p)
    # When the symptom declares its alarms
    specs = symptom.alarms(p, detector)
    # Then there is at least one, each a complete alarm on metrics of this stream's resources
    assert specs, f"{key} declares no alarm for a stream with default settings"
    for spec in specs:
        assert isinstance(spec, AlarmSpec)
        check_source(spec.metric, p)
        assert isinstance(spec.threshold, int | float) and math.isfinite(spec.threshold)
        assert isinstance(spec.comparison, Comparison)
        assert isinstance(spec.missing_data, MissingData)
        assert (spec.evaluation_periods, spec.datapoints_to_alarm) == (
            detector.evaluation_periods,
            detector.datapoints_to_alarm,
        )
        assert spec.description.strip() != ""
    # And no two of them would get the same alarm name
    qualifiers = [spec.qualifier for spec in specs]
    assert len(set(qualifiers)) == len(qualifiers), qualifiers


@pytest.mark.parametrize(("key", "symptom"), SYMPTOMS, ids=SYMPTOM_IDS)
def test_alarm_periods_come_from_the_detector(key: str, symptom: Symptom[Any]) -> None:
    # Given a policy that sets the detector's periods away from their defaults
    p = sample_policy(detectors={field_name(key): {"evaluation_periods": 17, "datapoints_to_alarm": 11}})
    # Then every alarm of the symptom uses them
    specs = symptom.alarms(p, symptom.detector(p))
    assert specs
    assert {(s.evaluation_periods, s.datapoints_to_alarm) for s in specs} == {(17, 11)}


@pytest.mark.parametrize(("key", "symptom"), SYMPTOMS, ids=SYMPTOM_IDS)
def test_each_alarm_event_maps_back_to_its_stream_and_symptom(key: str, symptom: Symptom[Any]) -> None:
    p = sample_policy()
    for spec in symptom.alarms(p, symptom.detector(p)):
        # Given the event CloudWatch sends when the alarm the stack builds from this spec fires
        name = alarm_name(DEFAULT_ALARM_PREFIX, STREAM, key, spec.qualifier)
        change = AlarmStateChangeEvent.model_validate(cloudwatch_event(name, spec))
        # When the handler identifies it (same parser, same dimensions)
        trigger, why_not = identify(
            alarm=change.detail.alarmName,
            prefix=DEFAULT_ALARM_PREFIX,
            state=change.detail.state.value,
            previous_state=change.detail.previousState.value if change.detail.previousState else None,
            state_timestamp=change.detail.state.timestamp,
            dimensions=change.detail.dimensions(),
            account=change.account,
            region=change.region,
        )
        # Then it is a trigger for exactly this stream and symptom
        assert why_not == ""
        assert trigger is not None
        assert (trigger.stream, trigger.symptom) == (STREAM, key)


@pytest.mark.parametrize(("key", "symptom"), SYMPTOMS, ids=SYMPTOM_IDS)
def test_evidence_queries_are_valid_and_uniquely_keyed(key: str, symptom: Symptom[Any]) -> None:
    # Given the evidence a symptom asks for
    p = sample_policy()
    queries = symptom.evidence_queries(p)
    # Then each is a valid metric of this stream's resources, under a key no other query uses
    assert queries
    keys = [q.key for q in queries]
    assert len(set(keys)) == len(keys), keys
    for query in queries:
        assert isinstance(query, MetricQuery)
        check_source(query.source, p)


def declared_evidence(symptom: Symptom[Any], p: StreamPolicy, per_minute: float) -> Evidence:
    """Evidence holding exactly the series the symptom declared, every datapoint `per_minute`."""
    base = evidence(name=p.name, shards=2)
    series = {q.key: (per_minute,) * base.window_minutes for q in symptom.evidence_queries(p)}
    return base.model_copy(update={"series": series})


@pytest.mark.parametrize("per_minute", [0.0, 1e8], ids=["idle", "heavy"])
@pytest.mark.parametrize(("key", "symptom"), SYMPTOMS, ids=SYMPTOM_IDS)
def test_diagnosis_from_declared_evidence_can_be_planned(key: str, symptom: Symptom[Any], per_minute: float) -> None:
    # Given evidence with exactly the series the symptom declared
    p = sample_policy()
    ev = declared_evidence(symptom, p, per_minute)
    # When it is diagnosed and planned
    diagnosis = symptom.diagnose(ev, p)
    plan = make_plan(alarm_name="a", symptom=key, policy=p, evidence=ev, history=ActionHistory(), now=NOW)
    # Then the diagnosis is complete and every proposal became a step of a registered action
    assert isinstance(diagnosis, Diagnosis)
    assert KEBAB.fullmatch(diagnosis.cause)
    assert diagnosis.summary.strip() != ""
    assert [s.action for s in plan.steps] == [proposal.action for proposal in diagnosis.proposals]
    assert all(s.action in REGISTRY.actions for s in plan.steps)


def test_a_heavy_load_makes_a_builtin_symptom_propose_an_action() -> None:
    # Keeps the test above from passing only because no symptom ever proposes anything.
    symptom = REGISTRY.symptoms["write-throttling"]
    p = sample_policy()
    assert [s.action for s in symptom.diagnose(declared_evidence(symptom, p, 1e8), p).proposals] == ["reshard"]


# Actions --------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("key", "action"), ACTIONS, ids=ACTION_IDS)
def test_action_block_is_documented(key: str, action: Action[Any]) -> None:
    # Given a stream policy with the action's block
    block = action.block(sample_policy())
    # Then the block is typed as the action's schema, and every field says what it does in words
    schema = action.policy_schema
    assert type(block) is schema
    for name, info in schema.model_fields.items():
        assert (info.description or "").strip() != "", f"{schema.__name__}.{name} has a blank description"


@pytest.mark.parametrize(("key", "action"), ACTIONS, ids=ACTION_IDS)
def test_action_grants(key: str, action: Action[Any]) -> None:
    for grant in action.grants:
        # Each grant names IAM actions as `service:Operation`, on a resource scope, and says why
        assert isinstance(grant, IamGrant)
        assert grant.actions
        for name in grant.actions:
            assert IAM_ACTION.fullmatch(name), name
        assert isinstance(grant.scope, ResourceScope)
        assert grant.why.strip() != "", grant
        if grant.scope.account_wide:
            # '*' only where AWS leaves no choice, and the grant says so
            assert "Service Authorization Reference" in grant.why, grant
        # And the scope resolves to resources for a stream with a consumer
        resources = grant.resources(sample_policy(), fake_arn)
        assert resources, grant
        assert all(r == "*" or r.startswith("arn:aws:") for r in resources), resources


def test_reshard_is_granted_update_shard_count_account_wide() -> None:
    # The Service Authorization Reference lists no resource type for kinesis:UpdateShardCount: a grant
    # scoped to stream ARNs may be denied in a real account.
    grant, confirm = REGISTRY.actions["reshard"].grants
    assert (grant.actions, grant.scope.account_wide) == (("kinesis:UpdateShardCount",), True)
    # And the re-read that settles an uncertain reshard is a read of the stream itself
    assert (confirm.actions, confirm.scope.account_wide) == (("kinesis:DescribeStreamSummary",), False)


@pytest.mark.parametrize(("key", "action"), ACTIONS, ids=ACTION_IDS)
def test_summary_is_one_line(key: str, action: Action[Any]) -> None:
    # Given a representative step's parameters
    summary = action.summary(dict(action.sample_parameters))
    # Then the summary e-mails and CLI tables print is one non-empty line
    assert summary.strip() == summary != ""
    assert "\n" not in summary and "\r" not in summary


@pytest.mark.parametrize(("key", "action"), ACTIONS, ids=ACTION_IDS)
def test_cli_command_is_shell_quoted_aws_cli(key: str, action: Action[Any]) -> None:
    # Given a representative step on a real stream ARN
    arn = "arn:aws:kinesis:us-east-1:123456789012:stream/orders"
    command = action.cli_command(arn, dict(action.sample_parameters))
    # Then it is an AWS CLI command that survives a shell round trip unchanged
    assert command.startswith("aws ")
    assert shlex.join(shlex.split(command)) == command
    assert "\n" not in command


HOSTILE = "orders; rm -rf ~ 'x' $(id)"
SHELL_SYNTAX = (";", "rm -rf", "$(id)")


@pytest.mark.parametrize(("key", "action"), ACTIONS, ids=ACTION_IDS)
def test_cli_command_quotes_values_that_need_it(key: str, action: Action[Any]) -> None:
    # Stream names cannot hold a space or ';', but the command must not rely on that: given an ARN and
    # every string parameter carrying shell syntax
    plain_arn = "arn:aws:kinesis:us-east-1:123456789012:stream/orders"
    arn = f"arn:aws:kinesis:us-east-1:123456789012:stream/{HOSTILE}"
    parameters = {k: (HOSTILE if isinstance(v, str) else v) for k, v in action.sample_parameters.items()}
    # When the command is built
    command = action.cli_command(arn, parameters)
    words = shlex.split(command)
    # Then it still round-trips, and no shell syntax leaks out of the one word that carries it
    assert shlex.join(words) == command
    for word in words:
        if any(fragment in word for fragment in SHELL_SYNTAX):
            assert HOSTILE in word, word
    # And where the command names the stream, the ARN is one word, exactly as given
    if plain_arn in shlex.split(action.cli_command(plain_arn, dict(action.sample_parameters))):
        assert arn in words


# AWS's answers to the reads an action makes right before its change (in AWS's documented shapes), showing the
# resource as the action's sample step planned it; every other call is answered with an empty response.
READ_RESPONSES: dict[tuple[str, str], dict[str, Any]] = {
    # tune-event-source re-reads the mapping: it must still be Enabled, on the planned function and settings.
    ("lambda", "GetEventSourceMapping"): {
        "UUID": "14e0db71-5d35-4eb5-b481-8945cf9d10c2",
        "State": "Enabled",
        "FunctionArn": "arn:aws:lambda:us-east-1:123456789012:function:orders-processor",
        "EventSourceArn": stream_arn(STREAM),
        "BatchSize": 100,
        "ParallelizationFactor": 1,
        "MaximumBatchingWindowInSeconds": 0,
        "MaximumRetryAttempts": -1,
        "MaximumRecordAgeInSeconds": -1,
        "BisectBatchOnFunctionError": False,
        "DestinationConfig": {"OnFailure": {}},
    },
}


class RecordingPorts:
    """WritePorts that record (service, operation) and answer with READ_RESPONSES, or else an empty response."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, dict[str, Any]]] = []

    def service(self, name: str) -> ServicePort:
        ports = self

        class Port:
            def call(self, operation: str, **parameters: Any) -> dict[str, Any]:
                ports.calls.append((name, operation, parameters))
                return dict(READ_RESPONSES.get((name, operation), {}))

        return Port()


def sample_step(action: Action[Any]) -> PlannedStep:
    parameters = dict(action.sample_parameters)
    return PlannedStep(
        action=action.id,
        stream=STREAM,
        stream_arn=stream_arn(STREAM),
        parameters=parameters,
        reason="contract test",
        summary=action.summary(parameters),
        cli_command=action.cli_command(stream_arn(STREAM), parameters),
    )


@pytest.mark.parametrize(("key", "action"), ACTIONS, ids=ACTION_IDS)
def test_apply_calls_only_what_the_action_declared(key: str, action: Action[Any]) -> None:
    # Given the write ports an action is handed: only its declared IAM actions get through
    ports = RecordingPorts()
    declared: WritePorts = DeclaredOnly(ports, action.iam_actions, action.id)
    # When it applies a representative step
    action.apply(sample_step(action), declared)
    # Then it made at least one call, each one covered by its grants (an undeclared call would raise)
    assert ports.calls
    assert {iam_action(service, operation) for service, operation, _ in ports.calls} <= action.iam_actions


@pytest.mark.parametrize(("key", "action"), ACTIONS, ids=ACTION_IDS)
def test_checks_are_named_verdicts_of_their_own(key: str, action: Action[Any]) -> None:
    # Given a representative step on a provisioned stream
    p = sample_policy()
    context = ValidationContext(policy=p, evidence=evidence(name=STREAM), history=ActionHistory(), now=NOW)
    step = sample_step(action)
    # When the action's own guardrails check it
    verdicts = action.checks(step, context)
    # Then each is a named verdict with a detail, and none shadows a common guardrail
    assert all(isinstance(v, GuardrailVerdict) for v in verdicts)
    names = [v.name for v in verdicts]
    assert len(set(names)) == len(names), names
    assert all(KEBAB.fullmatch(n) for n in names), names
    assert all(v.detail.strip() for v in verdicts)
    assert not set(names) & {v.name for v in common_guardrails(step, context)}


# What each action's representative step changes in what the stream is billed for (core/cost.py), from
# SAMPLE_USAGE. Every registered action has its row: a new action declares its usage_after here.
SAMPLE_USAGE = Usage(
    mode=StreamMode.PROVISIONED,
    shards=2,
    retention_hours=24,
    bytes_per_second=1_000_000,
    records_per_second=1_000,
    efo_consumers=2,
    polling_readers=2,
)
USAGE_AFTER: dict[str, dict[str, Any]] = {
    "reshard": {"shards": 4},  # 2 -> 4 shards
    "raise-retention": {"retention_hours": 48},  # 24 -> 48 h
    "enhanced-fan-out": {"efo_consumers": 3},  # registers one consumer, moves no mapping
    "tune-event-source": {},  # a mapping's settings: the stream's bill is the same
    "lease-table-capacity": {},  # DynamoDB, not Kinesis (the table's own cost is not estimated)
}


def test_every_registered_action_has_its_usage_row() -> None:
    assert set(USAGE_AFTER) == set(REGISTRY.actions)


@pytest.mark.parametrize(("key", "action"), ACTIONS, ids=ACTION_IDS)
def test_usage_after_changes_what_the_step_changes_and_nothing_else(key: str, action: Action[Any]) -> None:
    assert key in USAGE_AFTER, f"action '{key}': declare what its step changes in USAGE_AFTER (see core/cost.py)"
    # Given the stream's billed usage and the action's representative step
    parameters = dict(action.sample_parameters)
    # When the step is applied to the usage
    after = action.usage_after(SAMPLE_USAGE, parameters)
    # Then exactly the declared fields change, the step's parameters are left as they were, and the cost
    # model prices both sides
    assert after == replace(SAMPLE_USAGE, **USAGE_AFTER[key])
    assert parameters == action.sample_parameters
    cost = compare(SAMPLE_USAGE, after, only_changed=True)
    assert (cost.monthly_after_usd != cost.monthly_before_usd) == bool(cost.lines) == bool(USAGE_AFTER[key])


# Registry mechanics, with toy plugins ----------------------------------------------------------------
class ToyDetector(DetectorPolicy):
    lag_records: int = Field(1_000, ge=1, description="Alarm when the application's lag reaches this.")


class ToyLag(Symptom[ToyDetector]):
    id = "toy-lag"
    title = "toy application lags"
    meaning = "A toy application's own metric says it lags."
    detector_schema = ToyDetector

    def alarms(self, policy: StreamPolicy, detector: ToyDetector) -> list[AlarmSpec]:
        metric = Metric("ToyApp", "Lag", "Maximum", (("Application", policy.name),))
        return [self.alarm(detector, metric, detector.lag_records, missing_data=MissingData.NOT_BREACHING)]

    def diagnose(self, evidence: Evidence, policy: StreamPolicy) -> Diagnosis:
        return Diagnosis(cause="toy-lag", summary="The toy application lags.")


class ToyTunePolicy(ActionPolicy):
    batch_size: int = Field(100, ge=1, le=10_000, description="Records per batch.")


class ToyTune(Action[ToyTunePolicy]):
    id = "toy-tune"
    title = "tune the toy mapping"
    policy_schema = ToyTunePolicy
    grants = (IamGrant(("lambda:UpdateEventSourceMapping",), EVENT_SOURCE_MAPPING, "Change the batch size."),)
    sample_parameters: ClassVar[dict[str, Any]] = {"uuid": "1234", "batch_size": 200}

    def checks(self, step: PlannedStep, context: ValidationContext) -> list[GuardrailVerdict]:
        return []

    def apply(self, step: PlannedStep, aws: WritePorts) -> dict[str, Any]:
        return aws.service("lambda").call("UpdateEventSourceMapping", UUID=step.parameters["uuid"])

    def cli_command(self, stream_arn: str, parameters: dict[str, Any]) -> str:
        return shlex.join(["aws", "lambda", "update-event-source-mapping", "--uuid", str(parameters["uuid"])])

    def summary(self, parameters: dict[str, Any]) -> str:
        return f"batch size {parameters['batch_size']}"


def test_the_default_usage_after_leaves_the_usage_unchanged() -> None:
    # ToyTune does not override usage_after: its steps change nothing the stream is billed for
    assert ToyTune().usage_after(SAMPLE_USAGE, dict(ToyTune.sample_parameters)) is SAMPLE_USAGE


TOY_RAW: dict[str, Any] = {
    "name": "orders",
    "detectors": {"toy_lag": {"lag_records": 5_000}},
    "actions": {"reshard": {"max_shards": 16}, "toy_tune": {"batch_size": 500}},
}


def block_fields(section: str) -> set[str]:
    model: type[BaseModel] = REGISTRY.stream_policy_model().model_fields[section].annotation  # type: ignore[assignment]
    return set(model.model_fields)


def extra_keys(raw: dict[str, Any]) -> list[tuple[Any, ...]]:
    with pytest.raises(ValidationError) as caught:
        REGISTRY.parse_stream_policy(raw)
    return [e["loc"] for e in caught.value.errors() if e["type"] == "extra_forbidden"]


def test_registered_adds_the_plugins_and_their_blocks_then_removes_them() -> None:
    # Given the built-in registry: no toy plugins, and a policy naming their blocks is rejected
    builtin = (set(REGISTRY.symptoms), set(REGISTRY.actions))
    assert extra_keys(TOY_RAW) == [("detectors", "toy_lag"), ("actions", "toy_tune")]
    # When the toys are registered for a block
    with REGISTRY.registered(ToyLag, ToyTune):
        # Then they are looked up like the built-ins, and the policy model has their blocks
        assert isinstance(REGISTRY.symptoms["toy-lag"], ToyLag)
        assert isinstance(REGISTRY.actions["toy-tune"], ToyTune)
        assert "toy_lag" in block_fields("detectors")
        assert "toy_tune" in block_fields("actions")
        p = REGISTRY.parse_stream_policy(TOY_RAW)
        assert p.block("detectors", "toy-lag", ToyDetector).lag_records == 5_000
        assert p.block("actions", "toy-tune", ToyTunePolicy).batch_size == 500
        # And the toys' own bounds are enforced
        with pytest.raises(ValidationError, match=r"actions\.toy_tune\.batch_size"):
            REGISTRY.parse_stream_policy({**TOY_RAW, "actions": {**TOY_RAW["actions"], "toy_tune": {"batch_size": 0}}})
        # And a policy that leaves the toys out gets their documented defaults
        defaults = REGISTRY.parse_stream_policy({"name": "orders", "actions": {"reshard": {"max_shards": 16}}})
        assert defaults.block("detectors", "toy-lag", ToyDetector) == ToyDetector()
    # Then afterwards they and their blocks are gone, and the built-ins are untouched
    assert (set(REGISTRY.symptoms), set(REGISTRY.actions)) == builtin
    assert "toy_lag" not in block_fields("detectors")
    assert "toy_tune" not in block_fields("actions")
    assert extra_keys(TOY_RAW) == [("detectors", "toy_lag"), ("actions", "toy_tune")]


def test_registered_removes_the_plugins_when_the_block_raises() -> None:
    builtin = (set(REGISTRY.symptoms), set(REGISTRY.actions))
    with pytest.raises(RuntimeError, match="boom"), REGISTRY.registered(ToyLag, ToyTune):
        raise RuntimeError("boom")
    assert (set(REGISTRY.symptoms), set(REGISTRY.actions)) == builtin


def symptom_like(name: str, **attributes: Any) -> type[Symptom[Any]]:
    """ToyLag with some declarations changed."""
    return type(name, (ToyLag,), attributes)


def action_like(name: str, **attributes: Any) -> type[Action[Any]]:
    return type(name, (ToyTune,), attributes)


class RequiredFieldDetector(DetectorPolicy):
    lag_records: int = Field(..., description="No default.")


class UndocumentedDetector(DetectorPolicy):
    lag_records: int = 1_000


class UndocumentedActionPolicy(ActionPolicy):
    batch_size: int = 100


class NotADetector(BaseModel):
    lag_records: int = Field(1, description="A plain model, not a DetectorPolicy.")


class NoDiagnosis(Symptom[ToyDetector]):
    id = "toy-no-diagnosis"
    title = "half a symptom"
    meaning = "It never says what is wrong."
    detector_schema = ToyDetector

    def alarms(self, policy: StreamPolicy, detector: ToyDetector) -> list[AlarmSpec]:
        return []


class OtherIteratorAge(ToyLag):
    id = "iterator-age"


class NotAPlugin:
    id = "toy-nothing"


def plugin_errors() -> Iterator[Any]:
    for bad_id in ("", "IteratorAge", "iterator_age", "iterator age", "-lag", "lag-", "toy--lag", "9lag"):
        yield pytest.param(symptom_like("BadId", id=bad_id), "must be kebab-case", id=f"symptom id {bad_id!r}")
    yield pytest.param(symptom_like("NoId", id=None), "must be kebab-case", id="symptom without id")
    yield pytest.param(NoDiagnosis, r"leaves \['diagnose'\] abstract", id="abstract method left")
    yield pytest.param(
        symptom_like("Required", detector_schema=RequiredFieldDetector),
        "every field of RequiredFieldDetector needs a documented default",
        id="detector field without default",
    )
    yield pytest.param(
        symptom_like("Undocumented", detector_schema=UndocumentedDetector),
        r"UndocumentedDetector fields without a description: \['lag_records'\]",
        id="detector field without description",
    )
    yield pytest.param(
        symptom_like("PlainModel", detector_schema=NotADetector),
        "detector_schema must be a DetectorPolicy subclass",
        id="detector schema not a DetectorPolicy",
    )
    yield pytest.param(symptom_like("NoTitle", title=" "), "missing title", id="symptom without title")
    yield pytest.param(symptom_like("NoMeaning", meaning=""), "missing meaning", id="symptom without meaning")
    yield pytest.param(
        OtherIteratorAge,
        "id 'iterator-age' is already taken by remediator.core.symptoms.iterator_age.IteratorAge",
        id="duplicate symptom id",
    )
    yield pytest.param(action_like("BadAction", id="Toy_Tune"), "must be kebab-case", id="action id")
    yield pytest.param(action_like("NoActionTitle", title=""), "missing title", id="action without title")
    yield pytest.param(action_like("NoGrants", grants=()), "missing grants", id="action without grants")
    yield pytest.param(
        action_like("NoSample", sample_parameters=None), "missing sample_parameters", id="action without sample"
    )
    yield pytest.param(
        action_like("NoSchema", policy_schema=ToyDetector),
        "policy_schema must be an ActionPolicy subclass",
        id="action schema not an ActionPolicy",
    )
    yield pytest.param(
        action_like("UndocumentedAction", policy_schema=UndocumentedActionPolicy),
        r"UndocumentedActionPolicy fields without a description: \['batch_size'\]",
        id="action field without description",
    )
    yield pytest.param(
        action_like("OtherReshard", id="reshard"),
        "id 'reshard' is already taken by remediator.core.actions.reshard.Reshard",
        id="duplicate action id",
    )
    yield pytest.param(NotAPlugin, "is not a Symptom", id="neither a symptom nor an action")


@pytest.mark.parametrize(("plugin", "message"), list(plugin_errors()))
def test_a_plugin_that_breaks_the_contract_is_refused(plugin: type, message: str) -> None:
    # Given the built-in registry
    builtin = (dict(REGISTRY.symptoms), dict(REGISTRY.actions))
    # When a plugin that breaks the contract registers
    # Then it is refused at once, with what is wrong
    with pytest.raises(PluginError, match=message), REGISTRY.registered(plugin):
        pass
    # And the registry (and its policy model) is as before
    assert (dict(REGISTRY.symptoms), dict(REGISTRY.actions)) == builtin
    assert block_fields("detectors") == {field_name(k) for k in builtin[0]}


def test_the_decorators_refuse_a_broken_plugin_at_import_time() -> None:
    # The one-line registration (`@REGISTRY.symptom`) checks the same contract as registered()
    registry = Registry(builtin_packages=())
    with pytest.raises(PluginError, match="missing grants"):
        registry.action(action_like("NoGrants", grants=()))
    assert registry.action(ToyTune) is ToyTune
    assert list(registry.actions) == ["toy-tune"]


def test_a_class_of_the_same_name_cannot_take_over_a_registered_id() -> None:
    registry = Registry(builtin_packages=())
    registry.symptom(ToyLag)
    impostor = symptom_like("ToyLag", title="impostor")
    with pytest.raises(PluginError, match="already taken"):
        registry.symptom(impostor)


def test_registered_refuses_an_already_registered_plugin_and_leaves_it_in_place() -> None:
    # Given a registered symptom
    registry = Registry(builtin_packages=())
    registry.symptom(ToyLag)
    # When a block tries to register it again
    with pytest.raises(PluginError, match="already taken"), registry.registered(ToyLag):
        pass
    # Then it is refused, and the plugin is still registered afterwards
    assert "toy-lag" in registry.symptoms


def test_metric_math_refuses_inputs_with_another_period() -> None:
    # Given an input metric with a 5-minute period
    slow = Metric("AWS/Lambda", "Errors", "Sum", (("FunctionName", "f"),), period_seconds=300)
    # When it is used in a 1-minute expression
    # Then the declaration is refused: CloudWatch would silently apply the expression's period
    with pytest.raises(ValueError, match=r"inputs \['errors'\] have another period"):
        MetricMath("errors * 2", {"errors": slow})
