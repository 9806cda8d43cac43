"""Meta-tests over the registries: every action and every symptom keeps the contract the stack relies on."""

from __future__ import annotations

import inspect
import re

import pytest
from remediator.core.actions import REGISTRY, Action, ActionPolicy
from remediator.core.policy import ActionsPolicy, Detector, Detectors
from remediator.core.symptoms import SYMPTOMS, AlarmSpec, Symptom

from tests.fakes import policy

IAM_ACTION = re.compile(r"^[a-z][a-z0-9-]*:[A-Z][A-Za-z0-9]*$")
ACTIONS = sorted(REGISTRY.items())
SYMPTOM_ITEMS = sorted(SYMPTOMS.items())


def test_registries_are_not_empty() -> None:
    assert sorted(REGISTRY) == ["reshard"]
    assert sorted(SYMPTOMS) == ["iterator-age", "write-throttling"]


def test_actions_policy_has_one_block_per_registered_action() -> None:
    assert set(ActionsPolicy.model_fields) == set(REGISTRY)


@pytest.mark.parametrize(("key", "action"), ACTIONS, ids=[k for k, _ in ACTIONS])
def test_action_contract(key: str, action: Action) -> None:
    # Name: non-empty, the registry key, and the field of ActionsPolicy that holds its block
    assert isinstance(action, Action)
    assert action.name == key
    assert action.name.strip() != ""
    assert ActionsPolicy.model_fields[action.name].annotation is action.policy_schema
    # Policy schema: an ActionPolicy, so enabled/cooldown/daily_budget always exist
    assert inspect.isclass(action.policy_schema)
    assert issubclass(action.policy_schema, ActionPolicy)
    assert {"enabled", "cooldown_minutes", "daily_budget"} <= set(action.policy_schema.model_fields)
    # Concrete: nothing left abstract
    assert not inspect.isabstract(type(action))
    for method in ("validate", "apply", "cli_command"):
        assert getattr(getattr(type(action), method), "__isabstractmethod__", False) is False, method


@pytest.mark.parametrize(("key", "action"), ACTIONS, ids=[k for k, _ in ACTIONS])
def test_action_iam_grants(key: str, action: Action) -> None:
    assert len(action.iam_grants) >= 1
    for grant in action.iam_grants:
        assert len(grant.actions) >= 1
        for iam_action in grant.actions:
            assert IAM_ACTION.fullmatch(iam_action), iam_action
        assert grant.scope in ("stream", "account")
        assert grant.why.strip() != ""


def test_reshard_grant_is_update_shard_count() -> None:
    # UpdateShardCount has no resource type in the Service Authorization Reference: account scope, with why.
    (grant,) = REGISTRY["reshard"].iam_grants
    assert (grant.actions, grant.scope) == (("kinesis:UpdateShardCount",), "account")


@pytest.mark.parametrize(("key", "symptom"), SYMPTOM_ITEMS, ids=[k for k, _ in SYMPTOM_ITEMS])
def test_symptom_contract(key: str, symptom: Symptom) -> None:
    assert symptom.key == key
    assert re.fullmatch(r"[a-z]+(-[a-z]+)*", key), key
    assert symptom.title.strip() != ""
    assert symptom.meaning.strip() != ""
    default = policy()
    # Each symptom has its detector block in the policy, and an alarm built from it
    detector = symptom.detector(default)
    assert isinstance(detector, Detector)
    assert detector is getattr(default.detectors, key.replace("-", "_"))
    spec = symptom.alarm_spec(default)
    assert isinstance(spec, AlarmSpec)
    assert (spec.namespace, spec.period_seconds) == ("AWS/Kinesis", 60)
    assert spec.metric_name.strip() != ""
    assert spec.statistic in ("Sum", "Maximum", "Average", "Minimum", "SampleCount")
    assert (spec.evaluation_periods, spec.datapoints_to_alarm) == (
        detector.evaluation_periods,
        detector.datapoints_to_alarm,
    )
    assert spec.description == f"Kinesis Remediator: {symptom.title}. {symptom.meaning}"


def test_every_detector_block_belongs_to_a_symptom() -> None:
    assert {name.replace("_", "-") for name in Detectors.model_fields} == set(SYMPTOMS)
