"""enhanced-fan-out: a mapping whose filters the remediator cannot read (KMS) is never moved, and one deadline bounds
the waiting for ACTIVE over the whole step, whatever the number of functions moved."""

from __future__ import annotations

from typing import Any

import pytest
from remediator.core.actions import enhanced_fan_out

from tests.unit.test_enhanced_fan_out import (
    ARN,
    CONSUMER_ARN,
    MOVE,
    OLD,
    ScriptedAws,
    apply,
    efo_evidence,
    efo_policy,
    mapping_fact,
    shaped,
    sleeps,  # noqa: F401  (the fixture)
)

KEY = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
FILTER_ERROR = {"ErrorCode": "AccessDeniedException", "Message": "not authorized to perform kms:Decrypt"}


@pytest.mark.parametrize(
    "old",
    [
        pytest.param(OLD | {"KMSKeyArn": KEY, "FilterCriteriaError": FILTER_ERROR}, id="FilterCriteriaError"),
        pytest.param(OLD | {"KMSKeyArn": KEY}, id="KMSKeyArn without FilterCriteria"),
    ],
)
@pytest.mark.usefixtures("sleeps")
def test_a_mapping_whose_filters_cannot_be_read_is_not_moved(old: dict[str, Any]) -> None:
    # Given an ACTIVE consumer, and an old mapping whose filters AWS did not return (no kms:Decrypt on its key)
    active = {"ConsumerName": "efo-processor", "ConsumerARN": CONSUMER_ARN, "ConsumerStatus": "ACTIVE"}
    aws = ScriptedAws({"ListStreamConsumers": {"Consumers": [active]}, "GetEventSourceMapping": old})
    # When the move is applied
    result = apply(aws)
    # Then no mapping is created nor disabled: the function stays on the stream, and the result says why
    assert aws.operations() == ["ListStreamConsumers", "GetEventSourceMapping"]
    assert result["moved"] == {}
    (why,) = result["left_alone"]
    assert why.startswith("processor: its mapping's filter criteria") and "every record" in why
    assert "old-1 keeps reading the stream" in why


@pytest.mark.usefixtures("sleeps")
def test_a_mapping_with_readable_filters_moves_with_them() -> None:
    # Given an old mapping with encrypted filters the remediator could decrypt
    filters = {"Filters": [{"Pattern": '{"data": {"kind": ["order"]}}'}]}
    active = {"ConsumerName": "efo-processor", "ConsumerARN": CONSUMER_ARN, "ConsumerStatus": "ACTIVE"}
    aws = ScriptedAws(
        {
            "ListStreamConsumers": {"Consumers": [active]},
            "GetEventSourceMapping": OLD | {"KMSKeyArn": KEY, "FilterCriteria": filters},
            "ListEventSourceMappings": {"EventSourceMappings": []},
            "CreateEventSourceMapping": {"UUID": "new-1"},
        }
    )
    # When the move is applied, Then the new mapping keeps the filters and the key
    assert apply(aws)["moved"] == {"processor": "old-1 -> new-1"}
    created = dict(aws.calls)["CreateEventSourceMapping"]
    assert (created["FilterCriteria"], created["KMSKeyArn"]) == (filters, KEY)


@pytest.mark.parametrize(
    ("fields", "named"),
    [
        pytest.param({"filter_criteria_error": "AccessDeniedException: no kms:Decrypt"}, "could not be read"),
        pytest.param({"kms_key_arn": KEY}, f"encrypted with {KEY}"),
    ],
)
def test_the_shape_leaves_a_function_with_unreadable_filters_on_the_stream(fields: dict[str, Any], named: str) -> None:
    # Given the gathered facts show the opted-in function's filters could not be read
    ev = efo_evidence(registered=[], mappings=[mapping_fact("processor") | fields])
    # When the step is shaped
    step = shaped(efo_policy(processor=True), ev)
    # Then nothing is registered nor moved for it, and the reason says why
    assert (step.parameters["register"], step.parameters["move"]) == ("", "")
    assert f"processor stays: its mapping's filter criteria {'' if 'could' in named else 'are '}{named}" in step.reason


def test_the_mapping_facts_carry_what_the_filters_need() -> None:
    # Given ListEventSourceMappings answering FilterCriteriaError (the caller lacks kms:Decrypt)
    from remediator.core.consumers import LAMBDA_MAPPINGS, MappingFacts
    from remediator.core.registry import REGISTRY

    from tests.fakes import NOW, evidence, policy

    class Ports:
        def service(self, name: str) -> Any:
            class Port:
                def call(self, operation: str, **params: Any) -> dict[str, Any]:
                    if operation == "ListEventSourceMappings":
                        mapping = {"UUID": "u", "State": "Enabled", "EventSourceArn": ARN, "KMSKeyArn": KEY}
                        return {"EventSourceMappings": [mapping | {"FilterCriteriaError": FILTER_ERROR}]}
                    return {}

            return Port()

    symptom = REGISTRY.symptoms["read-throttling"]
    facts = symptom.gather(policy(consumers=[{"function": "processor"}]), evidence().stream, Ports(), NOW)
    # Then the facts keep the key and the error
    (fact,) = [MappingFacts.model_validate(m) for m in facts[LAMBDA_MAPPINGS]]
    assert (fact.kms_key_arn, fact.has_filter_criteria) == (KEY, False)
    assert fact.filter_criteria_error == "AccessDeniedException: not authorized to perform kms:Decrypt"


# --- one deadline for the whole step ----------------------------------------------------------------------------


class Clock:
    """A fake monotonic clock: sleeping advances it, and so does each AWS call (`per_call` seconds)."""

    def __init__(self, per_call: float) -> None:
        self.now, self.per_call, self.slept = 1000.0, per_call, 0.0

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds
        self.slept += seconds


FUNCTIONS = ["f1", "f2", "f3", "f4", "f5"]


def five_moves() -> dict[str, Any]:
    return MOVE | {
        "register": ",".join(f"efo-{f}" for f in FUNCTIONS),
        "move": ",".join(FUNCTIONS),
        "from_mappings": ",".join(f"old-{f}" for f in FUNCTIONS),
        "consumers_before": 0,
        "consumers_after": 5,
    }


@pytest.mark.parametrize("per_call", [0.0, 0.5], ids=["instant calls", "slow calls"])
def test_waiting_for_active_is_bounded_for_the_whole_step(monkeypatch: pytest.MonkeyPatch, per_call: float) -> None:
    # Given five functions to move whose consumers stay CREATING, and a clock that calls may advance
    clock = Clock(per_call)
    monkeypatch.setattr(enhanced_fan_out, "sleep", clock.sleep)
    monkeypatch.setattr(enhanced_fan_out, "monotonic", clock.monotonic)

    def register(params: dict[str, Any]) -> dict[str, Any]:
        clock.now += per_call
        name = params["ConsumerName"]
        return {
            "Consumer": {"ConsumerName": name, "ConsumerARN": f"{ARN}/consumer/{name}:1", "ConsumerStatus": "CREATING"}
        }

    def describe(params: dict[str, Any]) -> dict[str, Any]:
        clock.now += per_call
        return {"ConsumerDescription": {"ConsumerARN": params["ConsumerARN"], "ConsumerStatus": "CREATING"}}

    aws = ScriptedAws(
        {
            "ListStreamConsumers": {"Consumers": []},
            "RegisterStreamConsumer": register,
            "DescribeStreamConsumer": describe,
        }
    )
    start = clock.now
    # When the step is applied
    result = apply(aws, five_moves())
    # Then the whole step waited at most MAX_WAIT_SECONDS (10 s), not 10 s per function
    waited = clock.now - start - per_call * 5  # the five registrations are not waiting
    assert enhanced_fan_out.EnhancedFanOut.MAX_WAIT_SECONDS == 10.0
    assert clock.slept <= 10.0 and waited <= 10.0 + per_call, (clock.slept, waited)
    # And every function stays on the stream, none of its mappings touched
    assert result["waiting_for_active"] == FUNCTIONS
    assert result["moved"] == {}
    assert not {"GetEventSourceMapping", "CreateEventSourceMapping"} & set(aws.operations())


# --- the limits re-checked right before the first change -------------------------------------------------------


def consumer(name: str, status: str = "ACTIVE") -> dict[str, str]:
    return {"ConsumerName": name, "ConsumerARN": f"{ARN}/consumer/{name}:1", "ConsumerStatus": status}


@pytest.mark.parametrize(
    ("registered_now", "max_consumers", "message"),
    [
        pytest.param(
            [consumer(f"c{i}") for i in range(5)],
            5,
            "nothing changed: the stream has 5 consumers now, and 1 more would exceed the policy's max_consumers 5",
            id="max_consumers reached since the plan",
        ),
        pytest.param(
            [consumer(f"c{i}", "CREATING") for i in range(5)],
            10,
            "nothing changed: 5 consumers are CREATING now, and 1 more would exceed AWS's 5 at once",
            id="5 in CREATING since the plan",
        ),
    ],
)
@pytest.mark.usefixtures("sleeps")
def test_the_policy_cap_and_the_creating_limit_are_checked_again_before_registering(
    registered_now: list[dict[str, str]], max_consumers: int, message: str
) -> None:
    # Given a step planned under the policy's max_consumers, and a stream whose consumers changed since
    aws = ScriptedAws({"ListStreamConsumers": {"Consumers": registered_now}})
    # When applied, Then nothing is registered nor moved, and the failure says which limit
    with pytest.raises(enhanced_fan_out.MoveIncomplete, match=message):
        apply(aws, MOVE | {"max_consumers": max_consumers})
    assert aws.operations() == ["ListStreamConsumers"]


def test_the_shape_carries_the_policy_cap_for_apply() -> None:
    # Given a policy with max_consumers 3 and a function to move
    ev = efo_evidence(registered=[], mappings=[mapping_fact("processor")])
    # When the step is shaped, Then it carries the cap apply re-checks
    step = shaped(efo_policy({"max_consumers": 3}, processor=True), ev)
    assert (step.parameters["register"], step.parameters["max_consumers"]) == ("efo-processor", 3)
