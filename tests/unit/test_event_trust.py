"""Event trust: which alarm state changes the remediator may act on, beyond their name's shape.

Only alarms this deployment created (their exact names, derived from the stream's deployed policy and the alarm
prefix, as the stack derives them), carrying the StreamName dimension their metric has, from the function's own
account and region; stream names within Kinesis's rules.
"""

from __future__ import annotations

from typing import Any

import pytest
from remediator.core.alarm import (
    DEFAULT_ALARM_PREFIX,
    AlarmTrigger,
    deployed_alarms,
    identify,
    parse_alarm_name,
    untrusted,
)
from remediator.core.deployment import ALARM_NAME_MAX_LENGTH

from tests.fakes import ACCOUNT, REGION, policy

PREFIX = DEFAULT_ALARM_PREFIX
ORDERS = policy(consumers=[{"function": "orders-processor"}])
NO_WRITE_DETECTOR = policy(detectors={"write_throttling": {"enabled": False}})


def trigger(alarm: str, dimensions: dict[str, str] | None, symptom: str = "write-throttling") -> AlarmTrigger:
    return AlarmTrigger(
        alarm_name=alarm,
        stream="orders",
        symptom=symptom,
        state_timestamp="2026-11-26T02:59:00.000+0000",
        account=ACCOUNT,
        region=REGION,
        dimensions=None if dimensions is None else tuple(sorted(dimensions.items())),
    )


def test_the_deployed_alarms_of_a_policy_are_named_by_symptom_and_qualifier() -> None:
    # Given a stream with a Lambda consumer
    # When its deployed alarms are derived
    names = deployed_alarms(ORDERS, PREFIX)
    # Then they include its stream alarm and its per-consumer alarm, each with its symptom
    assert names[f"{PREFIX}orders/write-throttling"][0] == "write-throttling"
    assert names[f"{PREFIX}orders/lambda-consumer-lag/orders-processor"][0] == "lambda-consumer-lag"
    # And a disabled detector makes none
    assert not [n for n in deployed_alarms(NO_WRITE_DETECTOR, PREFIX) if "/write-throttling" in n]


WRITE = f"{PREFIX}orders/write-throttling"
LAG = f"{PREFIX}orders/lambda-consumer-lag/orders-processor"
NOT_OURS = "is not one this deployment created"
NO_DIMENSION = "arrived without the StreamName dimension its metric has"


@pytest.mark.parametrize(
    ("alarm", "symptom", "dimensions", "deployed", "why"),
    [
        pytest.param(WRITE, "write-throttling", {"StreamName": "orders"}, ORDERS, "", id="ours, with its dimension"),
        pytest.param(WRITE, "write-throttling", {"streamname": "orders"}, ORDERS, "", id="lower-case key"),
        pytest.param(LAG, "lambda-consumer-lag", {"FunctionName": "orders-processor"}, ORDERS, "", id="per-consumer"),
        pytest.param(LAG, "lambda-consumer-lag", {}, ORDERS, "", id="per-consumer, no StreamName to check"),
        pytest.param(WRITE, "write-throttling", None, ORDERS, "", id="not from an event (CLI): no dimensions"),
        pytest.param(WRITE, "write-throttling", {}, ORDERS, NO_DIMENSION, id="composite or expression-only"),
        pytest.param(
            WRITE, "write-throttling", {"FunctionName": "x"}, ORDERS, NO_DIMENSION, id="another resource's metric"
        ),
        pytest.param(
            WRITE, "write-throttling", {"StreamName": "payments"}, ORDERS, "but its metric watches", id="other stream"
        ),
        pytest.param(
            WRITE, "write-throttling", {"StreamName": "orders"}, NO_WRITE_DETECTOR, NOT_OURS, id="detector disabled"
        ),
        pytest.param(
            f"{WRITE}/extra", "write-throttling", {"StreamName": "orders"}, ORDERS, NOT_OURS, id="unmade qualifier"
        ),
        pytest.param(
            f"{PREFIX}orders/lambda-consumer-lag/other-fn",
            "lambda-consumer-lag",
            {},
            ORDERS,
            NOT_OURS,
            id="consumer not in the policy",
        ),
    ],
)
def test_only_alarms_this_deployment_created_are_trusted(
    alarm: str, symptom: str, dimensions: dict[str, str] | None, deployed: Any, why: str
) -> None:
    # Given a trigger for stream 'orders' and the stream's deployed policy
    # When it is checked against the alarms the policy makes
    reason = untrusted(trigger(alarm, dimensions, symptom), deployed, PREFIX)
    # Then only an alarm of ours, with the StreamName its metric has, is trusted
    if why:
        assert why in reason
    else:
        assert reason == ""


def test_another_prefix_makes_other_names() -> None:
    # Given our alarm's name, checked by a deployment with another prefix
    reason = untrusted(trigger(WRITE, {"StreamName": "orders"}), ORDERS, "other-")
    # Then it is not one that deployment made
    assert NOT_OURS in reason


@pytest.mark.parametrize(
    ("stream", "why"),
    [
        pytest.param("a" * 128, None, id="128 characters: the longest Kinesis name"),
        pytest.param("a" * 129, "names a stream of 129 characters; Kinesis stream names have 1 to 128", id="129"),
        pytest.param("a" * 200, "names a stream of 200 characters; Kinesis stream names have 1 to 128", id="200"),
        pytest.param("ord#ers", "names no valid stream ('ord#ers')", id="character Kinesis does not allow"),
    ],
)
def test_stream_names_follow_kinesis_naming_rules(stream: str, why: str | None) -> None:
    # Given an alarm name of our shape whose stream part is `stream`
    alarm = f"{PREFIX}{stream}/write-throttling"
    # When it is parsed
    parsed = parse_alarm_name(alarm, PREFIX)
    # Then only a name Kinesis allows is a stream; a long one is shown shortened in the reason
    if why is None:
        assert parsed == (stream, "write-throttling")
    else:
        assert isinstance(parsed, str)
        assert why in parsed
        assert len(parsed) < 300


def test_an_alarm_name_longer_than_cloudwatch_allows_is_ignored() -> None:
    # Given an event naming an alarm longer than CloudWatch's limit (its stream part within Kinesis's)
    alarm = f"{PREFIX}orders/lambda-consumer-lag/{'q' * 300}"
    # When it is identified
    trigger_, why_not = identify(
        alarm=alarm,
        prefix=PREFIX,
        state="ALARM",
        previous_state="OK",
        state_timestamp="t",
        dimensions={},
        account=ACCOUNT,
        region=REGION,
    )
    # Then it is ignored, saying so, without echoing the whole name
    assert trigger_ is None
    assert f"characters, longer than CloudWatch's {ALARM_NAME_MAX_LENGTH}" in why_not
    assert len(why_not) < 200


def test_identify_keeps_the_dimensions_the_event_carried() -> None:
    trigger_, _ = identify(
        alarm=WRITE,
        prefix=PREFIX,
        state="ALARM",
        previous_state="OK",
        state_timestamp="t",
        dimensions={"StreamName": "orders"},
        account=ACCOUNT,
        region=REGION,
    )
    assert trigger_ is not None
    assert trigger_.dimensions == (("StreamName", "orders"),)
