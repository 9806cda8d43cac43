"""Our alarms: naming, and which alarm state changes become a trigger (and why the others do not).

An alarm is named `<prefix><stream>/<symptom>[/<qualifier>]`; stream names cannot contain '/', so the
name maps back to exactly one (stream, symptom) whatever the stream is called.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from remediator.core.alarm import (
    DEFAULT_ALARM_PREFIX,
    AlarmResolved,
    AlarmTrigger,
    alarm_name,
    identify,
    parse_alarm_name,
)
from remediator.core.deployment import ALARM_NAME_MAX_LENGTH
from remediator.core.registry import REGISTRY

from tests.fakes import ACCOUNT, REGION

PREFIX = DEFAULT_ALARM_PREFIX
TIMESTAMP = "2026-11-26T02:59:00.000+0000"
SYMPTOM_IDS = sorted(REGISTRY.symptoms)


def run(alarm: str, **overrides: Any) -> tuple[AlarmTrigger | AlarmResolved | None, str]:
    kwargs: dict[str, Any] = {
        "alarm": alarm,
        "prefix": PREFIX,
        "state": "ALARM",
        "previous_state": "OK",
        "state_timestamp": TIMESTAMP,
        "dimensions": {},
        "account": ACCOUNT,
        "region": REGION,
        "reason": "Threshold Crossed",
    }
    kwargs.update(overrides)
    return identify(**kwargs)


def maps_to(alarm: str, **overrides: Any) -> tuple[str, str]:
    """(stream, symptom) of an alarm that must be a trigger."""
    trigger, why_not = run(alarm, **overrides)
    assert why_not == ""
    assert trigger is not None
    return trigger.stream, trigger.symptom


@pytest.mark.parametrize(
    ("alarm", "stream", "symptom", "dimensions"),
    [
        pytest.param(f"{PREFIX}orders/write-throttling", "orders", "write-throttling", {}, id="simple"),
        pytest.param(
            f"{PREFIX}orders-eu/write-throttling",
            "orders-eu",
            "write-throttling",
            {"StreamName": "orders-eu"},
            id="hyphenated stream, write-throttling",
        ),
        pytest.param(
            f"{PREFIX}orders-eu/iterator-age",
            "orders-eu",
            "iterator-age",
            {"StreamName": "orders-eu"},
            id="hyphenated stream, iterator-age",
        ),
        pytest.param(
            f"{PREFIX}my-iterator-age/write-throttling",
            "my-iterator-age",
            "write-throttling",
            {},
            id="stream name ending in another symptom's id",
        ),
        pytest.param(
            f"{PREFIX}orders-iterator-age/iterator-age",
            "orders-iterator-age",
            "iterator-age",
            {"StreamName": "orders-iterator-age"},
            id="stream name ending in its own symptom's id",
        ),
        pytest.param(
            f"{PREFIX}clicks.v2_1/iterator-age",
            "clicks.v2_1",
            "iterator-age",
            {"streamname": "clicks.v2_1"},
            id="lower-case dimension key (SNS shape)",
        ),
        pytest.param(
            f"{PREFIX}orders/iterator-age",
            "orders",
            "iterator-age",
            {"ShardId": "shardId-000000000000"},
            id="no StreamName dimension",
        ),
        pytest.param(
            f"{PREFIX}orders/iterator-age/orders-reader",
            "orders",
            "iterator-age",
            {"FunctionName": "orders-reader"},
            id="qualified alarm on another resource (a consumer function)",
        ),
    ],
)
def test_our_alarm_into_alarm_is_a_trigger(alarm: str, stream: str, symptom: str, dimensions: dict[str, str]) -> None:
    # Given one of our alarms going from OK into ALARM
    trigger, why_not = run(alarm, dimensions=dimensions)
    # Then it is a trigger for that stream and symptom, carrying the event's details
    assert why_not == ""
    assert trigger == AlarmTrigger(
        alarm_name=alarm,
        stream=stream,
        symptom=symptom,
        state_timestamp=TIMESTAMP,
        account=ACCOUNT,
        region=REGION,
        reason="Threshold Crossed",
        dimensions=tuple(sorted(dimensions.items())),
    )


def test_first_evaluation_without_previous_state_is_a_trigger() -> None:
    assert maps_to(f"{PREFIX}orders/write-throttling", previous_state=None) == ("orders", "write-throttling")


NOT_NAMED = "is not named <prefix><stream>/<symptom>[/<qualifier>]"


@pytest.mark.parametrize(
    ("alarm", "overrides", "reason"),
    [
        pytest.param(
            "someone-else-orders/write-throttling",
            {},
            "alarm 'someone-else-orders/write-throttling' does not start with 'kinesis-remediator-'",
            id="wrong prefix",
        ),
        pytest.param(
            f"{PREFIX}orders/write-throttling",
            {"state": "OK", "previous_state": "INSUFFICIENT_DATA"},
            f"alarm '{PREFIX}orders/write-throttling' went to OK, not ALARM",
            id="state OK, not after ALARM",
        ),
        pytest.param(
            f"{PREFIX}orders/write-throttling",
            {"state": "INSUFFICIENT_DATA"},
            f"alarm '{PREFIX}orders/write-throttling' went to INSUFFICIENT_DATA, not ALARM",
            id="state INSUFFICIENT_DATA",
        ),
        pytest.param(
            f"{PREFIX}orders/write-throttling",
            {"previous_state": "ALARM"},
            f"alarm '{PREFIX}orders/write-throttling' was already in ALARM",
            id="previous state ALARM",
        ),
        pytest.param(
            f"{PREFIX}orders/no-such-symptom",
            {},
            f"alarm '{PREFIX}orders/no-such-symptom' names no known symptom ('no-such-symptom')",
            id="unknown symptom",
        ),
        pytest.param(
            f"{PREFIX}orders/no-such-symptom/orders-reader",
            {},
            f"alarm '{PREFIX}orders/no-such-symptom/orders-reader' names no known symptom ('no-such-symptom')",
            id="unknown symptom with a qualifier",
        ),
        pytest.param(
            f"{PREFIX}orders/write-throttling/orders-reader/extra",
            {},
            f"alarm '{PREFIX}orders/write-throttling/orders-reader/extra' {NOT_NAMED}",
            id="an extra '/' part",
        ),
        pytest.param(
            f"{PREFIX}orders/write-throttling/",
            {},
            f"alarm '{PREFIX}orders/write-throttling/' {NOT_NAMED}",
            id="empty qualifier",
        ),
        pytest.param(
            f"{PREFIX}/write-throttling",
            {},
            f"alarm '{PREFIX}/write-throttling' {NOT_NAMED}",
            id="symptom but no stream",
        ),
        pytest.param(
            f"{PREFIX}orders",
            {},
            f"alarm '{PREFIX}orders' {NOT_NAMED}",
            id="stream but no symptom",
        ),
        pytest.param(
            f"{PREFIX}orders-write-throttling",
            {},
            f"alarm '{PREFIX}orders-write-throttling' {NOT_NAMED}",
            id="the old '-' separated name",
        ),
        pytest.param(
            f"{PREFIX}or ders/write-throttling",
            {},
            f"alarm '{PREFIX}or ders/write-throttling' names no valid stream ('or ders'): "
            "Kinesis allows only [a-zA-Z0-9_.-]",
            id="not a stream name",
        ),
        pytest.param(
            f"{PREFIX}orders/write-throttling",
            {"dimensions": {"StreamName": "payments"}},
            f"alarm '{PREFIX}orders/write-throttling' watches stream 'payments', but its name says 'orders'",
            id="StreamName dimension mismatch",
        ),
        pytest.param(
            f"{PREFIX}orders-eu/write-throttling",
            {"dimensions": {"streamname": "orders"}},
            f"alarm '{PREFIX}orders-eu/write-throttling' watches stream 'orders', but its name says 'orders-eu'",
            id="lower-case dimension mismatch",
        ),
        pytest.param(
            f"{PREFIX}Orders/write-throttling",
            {"dimensions": {"StreamName": "orders"}},
            f"alarm '{PREFIX}Orders/write-throttling' watches stream 'orders', but its name says 'Orders'",
            id="stream names are case-sensitive",
        ),
    ],
)
def test_changes_that_are_not_for_us(alarm: str, overrides: dict[str, Any], reason: str) -> None:
    # Given an alarm state change that is not one of ours going into ALARM
    # When it is identified
    # Then it is ignored, and the reason says why
    assert run(alarm, **overrides) == (None, reason)


def test_custom_prefix() -> None:
    assert maps_to("team-a-orders/iterator-age", prefix="team-a-") == ("orders", "iterator-age")
    assert run(f"{PREFIX}orders/iterator-age", prefix="team-a-") == (
        None,
        f"alarm '{PREFIX}orders/iterator-age' does not start with 'team-a-'",
    )


# alarm_name -> identify, for every registered symptom and every kind of legal stream name ---------
TRICKY_STREAMS = [
    "orders",
    "orders-iterator-age",
    "orders-write-throttling",
    "a.b_c-d",
    "x",
    "s" * 128,
    *(f"orders-{symptom}" for symptom in SYMPTOM_IDS),
    *(f"x.{symptom}" for symptom in SYMPTOM_IDS),
    *SYMPTOM_IDS,
]


@pytest.mark.parametrize("symptom", SYMPTOM_IDS)
@pytest.mark.parametrize("stream", sorted(set(TRICKY_STREAMS)), ids=lambda s: s if len(s) < 40 else f"{len(s)} chars")
def test_alarm_name_round_trip(stream: str, symptom: str) -> None:
    # Given the name our stack gives the alarm
    name = alarm_name(PREFIX, stream, symptom)
    assert name == f"{PREFIX}{stream}/{symptom}"
    # When it fires
    # Then identify recovers exactly that stream and symptom
    assert maps_to(name, dimensions={"StreamName": stream}) == (stream, symptom)


@pytest.mark.parametrize("symptom", SYMPTOM_IDS)
@pytest.mark.parametrize("stream", sorted(set(TRICKY_STREAMS)), ids=lambda s: s if len(s) < 40 else f"{len(s)} chars")
@pytest.mark.parametrize(
    "qualifier",
    ["orders-reader", "orders.reader_v2", "q" * 300],
    ids=["function", "with a slash", "300 chars"],
)
def test_qualified_alarm_name_round_trip(stream: str, symptom: str, qualifier: str) -> None:
    # Given an alarm on another resource than the stream (say, a consumer function), told apart by a qualifier
    name = alarm_name(PREFIX, stream, symptom, qualifier)
    # Then the name stays within CloudWatch's limit and starts with the unqualified name
    assert len(name) <= ALARM_NAME_MAX_LENGTH
    assert name.startswith(f"{PREFIX}{stream}/{symptom}/")
    # And when it fires without a StreamName dimension, the name alone maps it back
    assert maps_to(name, dimensions={"FunctionName": "orders-reader"}) == (stream, symptom)


@given(
    stream=st.from_regex(r"[a-zA-Z0-9_.-]{1,128}", fullmatch=True),
    symptom=st.sampled_from(SYMPTOM_IDS),
    qualifier=st.text(min_size=0, max_size=300).filter(lambda q: "/" not in q),
)
def test_every_legal_stream_name_maps_back(stream: str, symptom: str, qualifier: str) -> None:
    # Given any legal stream name, any registered symptom and any qualifier (or none)
    name = alarm_name(PREFIX, stream, symptom, qualifier)
    # Then the alarm name parses back to exactly that stream and symptom
    assert parse_alarm_name(name, PREFIX) == (stream, symptom)


def test_a_slash_in_the_qualifier_is_refused_so_it_cannot_shift_the_parts() -> None:
    # When a qualifier with the separator is named
    # Then it is refused rather than rewritten (a rewrite could collide with another qualifier)
    with pytest.raises(ValueError, match="must not contain '/'"):
        alarm_name(PREFIX, "orders", "iterator-age", "a/b")


def test_long_qualifiers_become_distinct_digests() -> None:
    # Given two qualifiers too long to fit, differing only at the end
    first = alarm_name(PREFIX, "orders", "iterator-age", "q" * 299 + "1")
    second = alarm_name(PREFIX, "orders", "iterator-age", "q" * 299 + "2")
    # Then each becomes a short digest, and the two alarms keep distinct names
    assert first != second
    assert len(first) == len(f"{PREFIX}orders/iterator-age/") + 12


def test_alarm_name_rejects_unknown_symptom() -> None:
    with pytest.raises(ValueError, match=r"^unknown symptom 'no-such-symptom'$"):
        alarm_name(PREFIX, "orders", "no-such-symptom")


def test_alarm_name_rejects_a_prefix_with_the_separator() -> None:
    with pytest.raises(ValueError, match=r"^alarm prefix 'team/a-' must not contain '/'$"):
        alarm_name("team/a-", "orders", "iterator-age")


def test_alarm_name_rejects_a_name_longer_than_cloudwatch_allows() -> None:
    with pytest.raises(ValueError, match="is longer than CloudWatch's 255 characters"):
        alarm_name("p" * 120, "s" * 128, "iterator-age")


def test_alarm_name_never_returns_a_name_identify_rejects() -> None:
    # Given a prefix long enough that exactly one character is left after '<stream>/<symptom>'
    prefix = "p" * (ALARM_NAME_MAX_LENGTH - 1 - len("s" * 128 + "/iterator-age"))
    # When a qualified alarm is named, alarm_name either refuses or returns a name that maps back
    try:
        name = alarm_name(prefix, "s" * 128, "iterator-age", "orders-reader")
    except ValueError:
        return
    assert parse_alarm_name(name, prefix) == ("s" * 128, "iterator-age")


def test_ok_after_alarm_is_a_resolution_and_the_alarm_trigger_is_unchanged() -> None:
    # Given one of our alarms going from ALARM back to OK, with the event's previous state timestamp
    resolved, why_not = run(
        f"{PREFIX}orders/write-throttling",
        state="OK",
        previous_state="ALARM",
        previous_timestamp="2026-11-26T02:40:00.000+0000",
    )
    # Then it is a resolution (not a trigger): the stream, symptom, and since when it was in ALARM
    assert why_not == ""
    assert resolved == AlarmResolved(
        alarm_name=f"{PREFIX}orders/write-throttling",
        stream="orders",
        symptom="write-throttling",
        state_timestamp=TIMESTAMP,
        alarm_timestamp="2026-11-26T02:40:00.000+0000",
        account=ACCOUNT,
        region=REGION,
    )
    # And a resolution of an alarm that is not ours is still ignored, with the same reason as a trigger's
    assert run("other-orders/write-throttling", state="OK", previous_state="ALARM")[0] is None
    assert run(f"{PREFIX}orders/write-throttling", state="OK", previous_state="ALARM", dimensions={"StreamName": "x"})[
        1
    ] == (f"alarm '{PREFIX}orders/write-throttling' watches stream 'x', but its name says 'orders'")
    # And the ALARM trigger is what it was (attempt 0: the idempotency key's fields are unchanged)
    trigger, _ = run(f"{PREFIX}orders/write-throttling")
    assert isinstance(trigger, AlarmTrigger)
    assert trigger.attempt == 0
    assert trigger.key == f"{PREFIX}orders/write-throttling@{TIMESTAMP}#0"
