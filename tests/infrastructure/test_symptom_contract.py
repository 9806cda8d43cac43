"""Contract tests over the symptom registry: whatever symptoms are registered, the stack builds exactly the alarms
they declare, and every alarm's state change maps back to the (stream, symptom) it was built for.

The fixture policy (written here, not read from policies/) has the stream names that once made alarm names
ambiguous: one ending in a symptom id next to the stream it extends, one with '.' and '_', one named like a
symptom. A toy symptom, registered only around the synth and each test, alarms with metric math and on a single
metric in another namespace, on a dimension other than StreamName, several times per stream: so the contract's
metric-math branch and its qualified names are exercised even while no built-in symptom uses them.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from cfnlint.api import ManualArgs, lint
from moto.events.models import EventPattern
from pydantic import Field
from remediator.core.alarm import DEFAULT_ALARM_PREFIX, alarm_name, identify
from remediator.core.evidence import Evidence
from remediator.core.metrics import Comparison, MetricMath, MetricName, MissingData
from remediator.core.plan import Cause, Diagnosis
from remediator.core.policy import DetectorPolicy, StreamPolicy
from remediator.core.registry import REGISTRY
from remediator.core.symptoms.base import AlarmSpec, Symptom
from remediator.events import AlarmStateChangeEvent

from tests.infrastructure.support import (
    ACCOUNT,
    REGION,
    Synth,
    alarm_as_built,
    alarm_as_declared,
    alarm_rule,
    alarms_by_name,
    synthesize,
    write_policies,
)

pytestmark = pytest.mark.xdist_group("infrastructure")

LAMBDA_ERRORS = MetricName("AWS/Lambda", "Errors", "Sum")
LAMBDA_INVOCATIONS = MetricName("AWS/Lambda", "Invocations", "Sum")
LAMBDA_THROTTLES = MetricName("AWS/Lambda", "Throttles", "Sum")


class ConsumerErrorRateDetector(DetectorPolicy):
    threshold_percent: float = Field(5.0, gt=0, le=100, description="Alarm when this share of invocations fails.")


class ConsumerErrorRate(Symptom[ConsumerErrorRateDetector]):
    """A toy: two alarms per Lambda consumer, on the function's metrics (no StreamName dimension)."""

    id = "consumer-error-rate"
    title = "consumer failing"
    meaning = "A Lambda consumer of the stream fails or is throttled."
    detector_schema = ConsumerErrorRateDetector

    def alarms(self, policy: StreamPolicy, detector: ConsumerErrorRateDetector) -> list[AlarmSpec]:
        specs = []
        for consumer in policy.lambda_consumers:
            error_rate = MetricMath(
                "100 * errors / invocations",
                {
                    "errors": LAMBDA_ERRORS.on(FunctionName=consumer.function),
                    "invocations": LAMBDA_INVOCATIONS.on(FunctionName=consumer.function),
                },
                label="error rate (%)",
            )
            throttles = LAMBDA_THROTTLES.on(FunctionName=consumer.function)
            specs += [
                self.alarm(
                    detector,
                    error_rate,
                    detector.threshold_percent,
                    missing_data=MissingData.IGNORE,
                    qualifier=f"{consumer.function}.error-rate",
                ),
                self.alarm(
                    detector,
                    throttles,
                    0,
                    missing_data=MissingData.MISSING,
                    comparison=Comparison.GREATER_THAN_THRESHOLD,
                    qualifier=f"{consumer.function}.throttles",
                ),
            ]
        return specs

    def diagnose(self, evidence: Evidence, policy: StreamPolicy) -> Diagnosis:
        return Diagnosis(cause=Cause.NOT_REPRODUCED, summary="toy")


# Each symptom (the toy included) is disabled on at least one stream that would otherwise alarm for it.
CONTRACT_YAML = """\
version: 1
streams:
  - name: orders
    actions:
      reshard: {max_shards: 4}
  # Ends in a symptom id, next to 'orders': its alarms must not map to ('orders', 'iterator-age').
  - name: orders-iterator-age
    consumers:
      - function: orders-processor
      - function: orders_audit
      - kcl: orders-indexer
      - {kcl: orders.search_v2, lease_table: orders-search-leases, namespace: Orders/Search}
      - efo: orders-analytics
    detectors:
      iterator_age: {threshold_ms: 90000, evaluation_periods: 6, datapoints_to_alarm: 4}
      consumer_error_rate: {threshold_percent: 2.5, evaluation_periods: 10, datapoints_to_alarm: 5}
      kcl_consumer_lag: {threshold_ms: 120000, operation: ProcessTask}
      lease_table_throttling: {threshold_events: 5}
    actions:
      reshard: {max_shards: 8}
  - name: a.b_c
    consumers:
      - function: abc-reader
      - kcl: abc-app
      - efo: abc.search
    detectors:
      write_throttling: {enabled: false}
      put_errors: {enabled: false}
      consumer_error_rate: {enabled: false}
      get_errors: {enabled: false}
      get_latency: {enabled: false}
      kcl_consumer_lag: {enabled: false}
      lease_table_throttling: {enabled: false}
      efo_consumer_lag: {enabled: false}
      lambda_consumer_lag: {enabled: false}
      lambda_consumer_errors: {enabled: false}
    actions:
      reshard: {max_shards: 4}
  # Named like a symptom.
  - name: write-throttling
    detectors:
      iterator_age: {enabled: false}
      consumer_stalled: {enabled: false}
      read_throttling: {enabled: false}
      under_utilised: {enabled: false}
      write_throttling: {threshold_records: 10, evaluation_periods: 2, datapoints_to_alarm: 2}
    actions:
      reshard: {max_shards: 4}
"""

SYMPTOM_IDS = sorted([*REGISTRY.symptoms, ConsumerErrorRate.id])


@pytest.fixture(scope="module")
def contract_synth(tmp_path_factory: pytest.TempPathFactory) -> Synth:
    """The app built from the contract policy, with the toy symptom registered while it synthesizes."""
    policy_dir = write_policies(tmp_path_factory.mktemp("contract-policies"), {"contract.yaml": CONTRACT_YAML})
    with REGISTRY.registered(ConsumerErrorRate):
        return synthesize([policy_dir], tmp_path_factory.mktemp("cdk.out-contract"))


@pytest.fixture
def toy_registered() -> Iterator[None]:
    """The toy symptom, registered for one test only (the other tests see the built-in registry)."""
    with REGISTRY.registered(ConsumerErrorRate):
        yield


def declared_alarms(synth: Synth, enabled: bool) -> dict[str, tuple[str, str, AlarmSpec]]:
    """Alarm name -> (stream, symptom, spec) for every alarm the registered symptoms declare for the policy's
    streams whose detector is enabled (or, with enabled=False, would declare if it were not disabled)."""
    found: dict[str, tuple[str, str, AlarmSpec]] = {}
    for stream, policy in synth.policies.streams.items():
        for symptom_id, symptom in REGISTRY.symptoms.items():
            detector = symptom.detector(policy)
            if detector.enabled != enabled:
                continue
            for spec in symptom.alarms(policy, detector):
                found[alarm_name(DEFAULT_ALARM_PREFIX, stream, symptom_id, spec.qualifier)] = (stream, symptom_id, spec)
    return found


def state_change_event(properties: dict[str, Any]) -> dict[str, Any]:
    """The EventBridge event CloudWatch sends when this synthesized alarm goes from OK to ALARM."""

    def metric_stat(metric: dict[str, Any], period: int, stat: str) -> dict[str, Any]:
        return {
            "metric": {
                "namespace": metric["Namespace"],
                "name": metric["MetricName"],
                "dimensions": {d["Name"]: d["Value"] for d in metric.get("Dimensions", [])},
            },
            "period": period,
            "stat": stat,
        }

    if "Metrics" in properties:
        queries = [
            {"id": q["Id"], "expression": q["Expression"], "label": q.get("Label", ""), "returnData": True}
            if "Expression" in q
            else {
                "id": q["Id"],
                "metricStat": metric_stat(
                    q["MetricStat"]["Metric"], q["MetricStat"]["Period"], q["MetricStat"]["Stat"]
                ),
                "returnData": q.get("ReturnData", True),
            }
            for q in properties["Metrics"]
        ]
    else:
        queries = [
            {
                "id": "a1b2c3d4-0000-0000-0000-000000000000",
                "metricStat": metric_stat(properties, properties["Period"], properties["Statistic"]),
                "returnData": True,
            }
        ]
    name = properties["AlarmName"]
    return {
        "version": "0",
        "id": "c4c1c1c9-6542-e61b-6ef0-8c4d36933a92",
        "detail-type": "CloudWatch Alarm State Change",
        "source": "aws.cloudwatch",
        "account": ACCOUNT,
        "time": "2026-01-01T12:00:00Z",
        "region": REGION,
        "resources": [f"arn:aws:cloudwatch:{REGION}:{ACCOUNT}:alarm:{name}"],
        "detail": {
            "alarmName": name,
            "state": {"value": "ALARM", "reason": "Threshold Crossed", "timestamp": "2026-01-01T12:00:00.000+0000"},
            "previousState": {"value": "OK", "reason": "", "timestamp": "2026-01-01T11:00:00.000+0000"},
            "configuration": {"description": properties.get("AlarmDescription", ""), "metrics": queries},
        },
    }


# --- The fixture is what the tests need ---------------------------------------------------------------------------


@pytest.mark.usefixtures("toy_registered")
def test_fixture_enables_and_disables_every_symptom_on_some_stream(contract_synth: Synth) -> None:
    # Given the contract policy and the registered symptoms (built-ins and the toy)
    assert sorted(REGISTRY.symptoms) == SYMPTOM_IDS
    # Then each symptom alarms on some stream and is disabled on another that it would otherwise alarm on,
    # so that no test below passes vacuously
    enabled = {symptom for _, symptom, _ in declared_alarms(contract_synth, enabled=True).values()}
    disabled = {symptom for _, symptom, _ in declared_alarms(contract_synth, enabled=False).values()}
    assert enabled == disabled == set(SYMPTOM_IDS)
    # And the toy declares metric math and several qualified alarms per stream
    toy = [
        spec
        for _, symptom, spec in declared_alarms(contract_synth, enabled=True).values()
        if symptom == "consumer-error-rate"
    ]
    assert len(toy) == 4
    assert any(isinstance(spec.metric, MetricMath) for spec in toy)


# --- Alarms are built exactly as declared -------------------------------------------------------------------------


@pytest.mark.usefixtures("toy_registered")
@pytest.mark.parametrize("symptom", SYMPTOM_IDS)
def test_every_declared_alarm_is_synthesized_as_declared(contract_synth: Synth, symptom: str) -> None:
    # Given the alarms the symptom declares for the streams whose detector is enabled
    declared = {
        name: (stream, spec)
        for name, (stream, owner, spec) in declared_alarms(contract_synth, enabled=True).items()
        if owner == symptom
    }
    assert declared
    # When the app is synthesized
    alarms = alarms_by_name(contract_synth)
    for name, (stream, spec) in declared.items():
        # Then there is an alarm named <prefix><stream>/<symptom>[/<qualifier>] ...
        assert name == f"{DEFAULT_ALARM_PREFIX}{stream}/{symptom}" + (f"/{spec.qualifier}" if spec.qualifier else "")
        assert name in alarms, f"{name} not in {sorted(alarms)}"
        # ... on the declared namespace, metric, statistic, dimensions (or metric-math queries), with the declared
        # threshold, comparison, evaluation periods, datapoints and missing-data treatment
        assert alarm_as_built(alarms[name]) == alarm_as_declared(spec), name


@pytest.mark.usefixtures("toy_registered")
def test_there_is_no_alarm_beyond_the_declared_ones(contract_synth: Synth) -> None:
    # Given every alarm the registered symptoms declare for the contract policy
    declared = declared_alarms(contract_synth, enabled=True)
    # Then the template holds exactly those alarms
    assert sorted(alarms_by_name(contract_synth)) == sorted(declared)


@pytest.mark.usefixtures("toy_registered")
@pytest.mark.parametrize("symptom", SYMPTOM_IDS)
def test_a_disabled_detector_yields_no_alarm_for_its_stream(contract_synth: Synth, symptom: str) -> None:
    # Given the alarms the symptom would declare on the streams where the policy disables it
    would_be = {
        name: (stream, spec)
        for name, (stream, owner, spec) in declared_alarms(contract_synth, enabled=False).items()
        if owner == symptom
    }
    assert would_be
    alarms = alarms_by_name(contract_synth)
    built = [alarm_as_built(properties)["metric"] for properties in alarms.values()]
    for name, (stream, spec) in would_be.items():
        # Then no alarm has that name, and no alarm of another name watches the same metric
        assert name not in alarms, (stream, symptom)
        assert alarm_as_declared(spec)["metric"] not in built, (stream, symptom)


# --- Every alarm's state change maps back to its stream and symptom ---------------------------------------------


@pytest.mark.usefixtures("toy_registered")
@pytest.mark.parametrize("symptom", SYMPTOM_IDS)
def test_a_state_change_of_each_alarm_maps_back_to_its_stream_and_symptom(contract_synth: Synth, symptom: str) -> None:
    # Given each synthesized alarm the symptom declared, and the rule that feeds the remediator
    declared = declared_alarms(contract_synth, enabled=True)
    alarms = {name: p for name, p in alarms_by_name(contract_synth).items() if declared[name][1] == symptom}
    assert alarms
    _, rule = alarm_rule(contract_synth)
    pattern = EventPattern.load(json.dumps(rule["Properties"]["EventPattern"]))
    for name, properties in alarms.items():
        # When CloudWatch sends the alarm's state change (its name and its metrics' dimensions)
        event = state_change_event(properties)
        # Then the rule matches it
        assert pattern.matches_event(event), name  # type: ignore[arg-type]
        # And, parsed as the handler parses it, it identifies exactly the stream and symptom the alarm was built for
        detail = AlarmStateChangeEvent.model_validate(event).detail
        trigger, why_not = identify(
            alarm=detail.alarmName,
            prefix=DEFAULT_ALARM_PREFIX,
            state=detail.state.value,
            previous_state=detail.previousState.value if detail.previousState else None,
            state_timestamp=detail.state.timestamp,
            dimensions=detail.dimensions(),
            account=ACCOUNT,
            region=REGION,
        )
        assert trigger is not None, why_not
        assert (trigger.stream, trigger.symptom) == declared[name][:2], name


@pytest.mark.usefixtures("toy_registered")
def test_stream_names_that_contain_a_symptom_id_map_to_the_right_stream(contract_synth: Synth) -> None:
    # Given the alarms of 'orders' and 'orders-iterator-age', and of the stream called 'write-throttling'
    alarms = alarms_by_name(contract_synth)
    owners = {}
    for name, properties in alarms.items():
        detail = AlarmStateChangeEvent.model_validate(state_change_event(properties)).detail
        trigger, _ = identify(
            alarm=name,
            prefix=DEFAULT_ALARM_PREFIX,
            state="ALARM",
            previous_state="OK",
            state_timestamp=detail.state.timestamp,
            dimensions=detail.dimensions(),
            account=ACCOUNT,
            region=REGION,
        )
        assert trigger is not None, name
        owners[name] = (trigger.stream, trigger.symptom)
    # Then each maps to its own stream, never to a shorter stream that its name starts with
    assert owners[f"{DEFAULT_ALARM_PREFIX}orders-iterator-age/iterator-age"] == ("orders-iterator-age", "iterator-age")
    assert owners[f"{DEFAULT_ALARM_PREFIX}orders/iterator-age"] == ("orders", "iterator-age")
    assert owners[f"{DEFAULT_ALARM_PREFIX}write-throttling/write-throttling"] == (
        "write-throttling",
        "write-throttling",
    )
    assert owners[f"{DEFAULT_ALARM_PREFIX}a.b_c/iterator-age"] == ("a.b_c", "iterator-age")


# --- The template stays valid CloudFormation ---------------------------------------------------------------------


def test_contract_template_passes_cfn_lint(contract_synth: Synth) -> None:
    # Given the template with '/' in alarm names and metric-math alarms
    assert any("Metrics" in p for p in alarms_by_name(contract_synth).values())
    # When cfn-lint checks it
    matches = lint(json.dumps(contract_synth.template), config=ManualArgs(regions=[REGION]))
    # Then it reports no error, and no warning on an alarm
    errors = [f"{m.rule.id} {'/'.join(map(str, m.path))}: {m.message}" for m in matches if m.rule.severity == "error"]
    alarm_ids = set(contract_synth.resources("AWS::CloudWatch::Alarm"))
    on_alarms = [m.rule.id for m in matches if len(m.path) > 1 and m.path[1] in alarm_ids]
    assert errors == []
    assert on_alarms == []


class ConsumerToy(Symptom[DetectorPolicy]):
    """A toy qualified by the bare function name, the shape that once made two construct ids collide."""

    id = "consumer-toy"
    title = "consumer toy"
    meaning = "A toy alarm per Lambda consumer."
    detector_schema = DetectorPolicy

    def alarms(self, policy: StreamPolicy, detector: DetectorPolicy) -> list[AlarmSpec]:
        return [
            self.alarm(
                detector,
                LAMBDA_ERRORS.on(FunctionName=c.function),
                1,
                missing_data=MissingData.NOT_BREACHING,
                qualifier=c.function,
            )
            for c in policy.consumers
        ]

    def diagnose(self, evidence: Evidence, policy: StreamPolicy) -> Diagnosis:
        return Diagnosis(cause=Cause.NOT_REPRODUCED, summary="toy")


def test_alarms_whose_parts_join_to_the_same_text_still_synthesize(tmp_path: Any) -> None:
    # Given stream 'orders' with consumer 'fn-write-throttling' (alarm parts orders, consumer-toy,
    # fn-write-throttling) next to stream 'orders-consumer-toy-fn' (parts orders-consumer-toy-fn, write-throttling):
    # joined with '-', both read 'orders-consumer-toy-fn-write-throttling'
    policies = write_policies(
        tmp_path / "policies",
        {
            "p.yaml": """\
version: 1
streams:
  - name: orders
    consumers: [{function: fn-write-throttling}]
    actions: {reshard: {max_shards: 4}}
  - name: orders-consumer-toy-fn
    actions: {reshard: {max_shards: 4}}
"""
        },
    )
    # When the app is synthesized with the toy registered
    with REGISTRY.registered(ConsumerToy):
        synth = synthesize([policies], tmp_path / "cdk.out")
    # Then both alarms exist, each under its own name
    names = set(alarms_by_name(synth))
    assert f"{DEFAULT_ALARM_PREFIX}orders/consumer-toy/fn-write-throttling" in names
    assert f"{DEFAULT_ALARM_PREFIX}orders-consumer-toy-fn/write-throttling" in names
