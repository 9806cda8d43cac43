"""The policy model and the policy-file loader: strict, bounded, and every error names file, stream, field."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError
from remediator.core import limits
from remediator.core.actions.reshard import ReshardPolicy
from remediator.core.policy import Capacity, Mode, StreamPolicy
from remediator.core.registry import REGISTRY
from remediator.core.symptoms.iterator_age import IteratorAgeDetector
from remediator.core.symptoms.write_throttling import WriteThrottlingDetector
from remediator.policy_files import NO_POLICY_FILES, PolicyValidationError, load_policies, policy_paths

MINIMAL_STREAM: dict[str, Any] = {"name": "orders", "actions": {"reshard": {"max_shards": 16}}}

FULL_STREAM: dict[str, Any] = {
    "name": "orders-eu.v2_1",
    "mode": "enforce",
    "notify": {"emails": ["oncall@example.com", "data.team+kinesis@example.co.uk"]},
    "consumers": [{"function": "orders-reader"}, {"function": "audit_writer"}],
    "capacity": {"target_utilisation": 0.5, "saturated_at": 0.75},
    "detectors": {
        "iterator_age": {
            "enabled": False,
            "evaluation_periods": 10,
            "datapoints_to_alarm": 7,
            "threshold_ms": 300_000,
        },
        "write_throttling": {"evaluation_periods": 3, "datapoints_to_alarm": 3, "threshold_records": 50},
    },
    "actions": {
        "reshard": {
            "enabled": True,
            "cooldown_minutes": 60,
            "daily_budget": 8,
            "min_shards": 2,
            "max_shards": 64,
        }
    },
}


def parse(raw: dict[str, Any]) -> StreamPolicy:
    """One stream's policy, validated by the model the registry builds from the registered plugins."""
    return REGISTRY.parse_stream_policy(raw)


def blocks(p: StreamPolicy) -> tuple[IteratorAgeDetector, WriteThrottlingDetector, ReshardPolicy]:
    """The built-in plugins' blocks of a policy, typed as their schemas."""
    return (
        p.block("detectors", "iterator-age", IteratorAgeDetector),
        p.block("detectors", "write-throttling", WriteThrottlingDetector),
        p.block("actions", "reshard", ReshardPolicy),
    )


def document(*streams: dict[str, Any], **top: Any) -> dict[str, Any]:
    return {"version": 1, "streams": [copy.deepcopy(s) for s in streams], **top}


def stream(**changes: Any) -> dict[str, Any]:
    """MINIMAL_STREAM with nested changes: stream(actions={"reshard": {...}}) merges one level down."""
    raw = copy.deepcopy(MINIMAL_STREAM)
    for key, value in changes.items():
        if isinstance(value, dict) and isinstance(raw.get(key), dict):
            for inner, inner_value in value.items():
                if isinstance(inner_value, dict) and isinstance(raw[key].get(inner), dict):
                    raw[key][inner] = {**raw[key][inner], **inner_value}
                else:
                    raw[key][inner] = inner_value
        else:
            raw[key] = value
    return raw


def errors(raw: dict[str, Any]) -> list[tuple[tuple[Any, ...], str, str]]:
    """(location, type, message) of every validation error of a policy document."""
    with pytest.raises(ValidationError) as caught:
        REGISTRY.parse_policy_document(raw)
    return [(e["loc"], e["type"], e["msg"]) for e in caught.value.errors()]


def stream_errors(raw: dict[str, Any]) -> list[tuple[tuple[Any, ...], str, str]]:
    """(location within the stream, type, message) of every validation error of one stream block.

    Stream blocks are validated on their own here: in a document whose only stream is invalid, pydantic
    adds an echo 'streams: too_short' error (the loader drops it; see its tests)."""
    with pytest.raises(ValidationError) as caught:
        parse(raw)
    return [(e["loc"], e["type"], e["msg"]) for e in caught.value.errors()]


# Valid documents -----------------------------------------------------------------------------------
def test_minimal_document_gets_safe_defaults() -> None:
    # Given a stream with only a name and a reshard maximum
    doc = REGISTRY.parse_policy_document(document(MINIMAL_STREAM))
    # Then it is valid, starts in dry-run, and every default is the documented one
    (only,) = doc.streams
    assert only.name == "orders"
    assert only.mode is Mode.DRY_RUN
    assert only.mode.value == "dry-run"
    assert only.notify.emails == ()
    assert only.consumers == ()
    assert (only.capacity.target_utilisation, only.capacity.saturated_at) == (0.6, 0.8)
    ia, wt, r = blocks(only)
    assert (ia.enabled, ia.evaluation_periods, ia.datapoints_to_alarm, ia.threshold_ms) == (
        True,
        5,
        3,
        60_000,
    )
    assert (wt.enabled, wt.evaluation_periods, wt.datapoints_to_alarm, wt.threshold_records) == (
        True,
        5,
        2,
        1,
    )
    assert (r.enabled, r.cooldown_minutes, r.daily_budget) == (True, 30, 4)
    assert (r.min_shards, r.max_shards) == (1, 16)


def test_full_document_keeps_every_value() -> None:
    doc = REGISTRY.parse_policy_document(document(FULL_STREAM, MINIMAL_STREAM))
    full, minimal = doc.streams
    assert full.name == "orders-eu.v2_1"
    assert full.mode is Mode.ENFORCE
    assert full.notify.emails == ("oncall@example.com", "data.team+kinesis@example.co.uk")
    assert [c.function for c in full.consumers] == ["orders-reader", "audit_writer"]
    assert (full.capacity.target_utilisation, full.capacity.saturated_at) == (0.5, 0.75)
    ia, wt, r = blocks(full)
    assert (ia.enabled, ia.evaluation_periods, ia.datapoints_to_alarm, ia.threshold_ms) == (
        False,
        10,
        7,
        300_000,
    )
    assert (wt.evaluation_periods, wt.datapoints_to_alarm, wt.threshold_records) == (3, 3, 50)
    assert (r.cooldown_minutes, r.daily_budget, r.min_shards, r.max_shards) == (60, 8, 2, 64)
    assert minimal.mode is Mode.DRY_RUN


def test_policy_model_is_frozen() -> None:
    p = parse(MINIMAL_STREAM)
    with pytest.raises(ValidationError, match="frozen"):
        p.mode = Mode.ENFORCE  # type: ignore[misc]


# Strictness ----------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("raw", "loc"),
    [
        pytest.param(stream(owner="me"), ("owner",), id="stream level"),
        pytest.param(
            stream(actions={"reshard": {"max_shard": 4}}),
            ("actions", "reshard", "max_shard"),
            id="actions.reshard (typo)",
        ),
        pytest.param(
            stream(actions={"no_such_action": {"enabled": True}}),
            ("actions", "no_such_action"),
            id="unregistered action",
        ),
        pytest.param(
            stream(detectors={"iterator_age": {"threshold": 5}}),
            ("detectors", "iterator_age", "threshold"),
            id="detectors.iterator_age",
        ),
        pytest.param(
            stream(detectors={"no_such_symptom": {"enabled": False}}),
            ("detectors", "no_such_symptom"),
            id="unregistered symptom",
        ),
        pytest.param(
            stream(notify={"emails": [], "sms": ["+100"]}),
            ("notify", "sms"),
            id="notify",
        ),
        pytest.param(
            stream(consumers=[{"function": "f", "batch": 10}]),
            ("consumers", 0, "function", "batch"),  # pydantic names the consumer's kind; files drop it
            id="consumers[0]",
        ),
    ],
)
def test_unknown_keys_in_a_stream_are_rejected(raw: dict[str, Any], loc: tuple[Any, ...]) -> None:
    assert stream_errors(raw) == [(loc, "extra_forbidden", "Extra inputs are not permitted")]


def test_unknown_top_level_key_is_rejected() -> None:
    assert errors(document(MINIMAL_STREAM, owner="me")) == [
        (("owner",), "extra_forbidden", "Extra inputs are not permitted")
    ]


@pytest.mark.parametrize(
    "name",
    [
        pytest.param("*", id="wildcard"),
        pytest.param("orders*", id="trailing wildcard"),
        pytest.param("", id="empty"),
        pytest.param(" orders", id="leading space"),
        pytest.param("orders/eu", id="slash"),
        pytest.param("a" * 129, id="129 chars"),
    ],
)
def test_invalid_stream_names_are_rejected(name: str) -> None:
    assert stream_errors(stream(name=name)) == [
        (
            ("name",),
            "value_error",
            f"Value error, '{name}' is not a Kinesis stream name: use 1-128 letters, digits, '_', '.' or '-' "
            "(one stream per entry; wildcards are not allowed)",
        )
    ]


def test_non_string_stream_name_is_rejected() -> None:
    assert stream_errors(stream(name=["orders", "payments"])) == [
        (("name",), "string_type", "Input should be a valid string")
    ]


@pytest.mark.parametrize("name", ["a", "orders-eu.v2_1", "a" * 128], ids=["one char", "all classes", "128"])
def test_valid_stream_names_are_accepted(name: str) -> None:
    assert REGISTRY.parse_policy_document(document(stream(name=name))).streams[0].name == name


def test_empty_stream_list_is_rejected() -> None:
    # An empty list never means "all streams"
    assert errors(document()) == [
        (("streams",), "too_short", "Tuple should have at least 1 item after validation, not 0")
    ]


def test_missing_stream_list_is_rejected() -> None:
    assert errors({"version": 1}) == [(("streams",), "missing", "Field required")]


def test_unknown_version_is_rejected() -> None:
    assert errors({"version": 2, "streams": [MINIMAL_STREAM]}) == [(("version",), "literal_error", "Input should be 1")]


def test_duplicate_stream_in_one_document_is_rejected() -> None:
    assert errors(document(MINIMAL_STREAM, stream(mode="enforce"))) == [
        ((), "value_error", "Value error, stream 'orders' is listed twice")
    ]


@pytest.mark.parametrize(
    ("raw", "loc"),
    [
        pytest.param(
            {"name": "orders", "actions": {"reshard": {"min_shards": 2}}},
            ("actions", "reshard", "max_shards"),
        ),
        pytest.param({"name": "orders"}, ("actions",)),
        pytest.param({"name": "orders", "actions": {}}, ("actions", "reshard")),
    ],
    ids=["max_shards", "actions block", "reshard block"],
)
def test_reshard_bounds_are_required(raw: dict[str, Any], loc: tuple[Any, ...]) -> None:
    assert stream_errors(raw) == [(loc, "missing", "Field required")]


RESHARD = ("actions", "reshard")


@pytest.mark.parametrize(
    ("reshard", "loc", "kind", "message"),
    [
        pytest.param(
            {"min_shards": 5, "max_shards": 4},
            RESHARD,
            "value_error",
            "Value error, min_shards (5) is above max_shards (4)",
            id="min above max",
        ),
        pytest.param(
            {"daily_budget": 9},
            (*RESHARD, "daily_budget"),
            "less_than_equal",
            "Input should be less than or equal to 8",
            id="daily_budget 9 above AWS 10 minus reserve 2",
        ),
        pytest.param(
            {"daily_budget": -1},
            (*RESHARD, "daily_budget"),
            "greater_than_equal",
            "Input should be greater than or equal to 0",
            id="negative daily_budget",
        ),
        pytest.param(
            {"max_shards": 10_001},
            (*RESHARD, "max_shards"),
            "less_than_equal",
            "Input should be less than or equal to 10000",
            id="max_shards above AWS cap",
        ),
        pytest.param(
            {"min_shards": 0},
            (*RESHARD, "min_shards"),
            "greater_than_equal",
            "Input should be greater than or equal to 1",
            id="min_shards 0",
        ),
        pytest.param(
            {"cooldown_minutes": 0},
            (*RESHARD, "cooldown_minutes"),
            "greater_than_equal",
            "Input should be greater than or equal to 1",
            id="cooldown 0",
        ),
    ],
)
def test_reshard_policy_bounds(reshard: dict[str, Any], loc: tuple[Any, ...], kind: str, message: str) -> None:
    assert stream_errors(stream(actions={"reshard": reshard})) == [(loc, kind, message)]


# capacity: the stream-level block symptoms read (moved here from actions.reshard) -----------------
@pytest.mark.parametrize(
    ("capacity", "loc", "kind", "message"),
    [
        pytest.param(
            {"target_utilisation": 0.8},
            ("capacity",),
            "value_error",
            "Value error, target_utilisation (0.8) must be below saturated_at (0.8), "
            "or a reshard would leave the stream saturated",
            id="target equals the default saturated_at",
        ),
        pytest.param(
            {"target_utilisation": 0.7, "saturated_at": 0.5},
            ("capacity",),
            "value_error",
            "Value error, target_utilisation (0.7) must be below saturated_at (0.5), "
            "or a reshard would leave the stream saturated",
            id="target above saturated_at",
        ),
        pytest.param(
            {"saturated_at": 1.1},
            ("capacity", "saturated_at"),
            "less_than_equal",
            "Input should be less than or equal to 1",
            id="saturated_at above 100%",
        ),
        pytest.param(
            {"target_utilisation": 0.05},
            ("capacity", "target_utilisation"),
            "greater_than",
            "Input should be greater than 0.05",
            id="target_utilisation at 5%",
        ),
        pytest.param(
            {"target_utilisation": 0.95, "saturated_at": 1.0},
            ("capacity", "target_utilisation"),
            "less_than_equal",
            "Input should be less than or equal to 0.9",
            id="target_utilisation above 90%",
        ),
        pytest.param(
            {"headroom": 0.1},
            ("capacity", "headroom"),
            "extra_forbidden",
            "Extra inputs are not permitted",
            id="unknown key",
        ),
    ],
)
def test_capacity_bounds(capacity: dict[str, Any], loc: tuple[Any, ...], kind: str, message: str) -> None:
    # Given a stream whose capacity block breaks one of its own bounds
    # When the stream's policy is validated
    # Then exactly that error is reported, on the capacity block
    assert stream_errors(stream(capacity=capacity)) == [(loc, kind, message)]


def test_capacity_just_below_saturation_is_accepted() -> None:
    capacity = parse(stream(capacity={"target_utilisation": 0.69, "saturated_at": 0.7})).capacity
    assert capacity == Capacity(target_utilisation=0.69, saturated_at=0.7)


@pytest.mark.parametrize("key", ["saturated_at", "target_utilisation"])
def test_moved_capacity_key_in_the_reshard_block_is_rejected(key: str) -> None:
    # Given a policy written before the move, with a capacity setting in the reshard block
    # When the stream's policy is validated
    # Then the key is not silently accepted (nor silently ignored)
    assert stream_errors(stream(actions={"reshard": {key: 0.7}})) == [
        (("actions", "reshard", key), "extra_forbidden", "Extra inputs are not permitted")
    ]


def assert_moved(error: str, path: Path, key: str, line: int) -> None:
    """The error names the file and line, the stream and the old key, and says where the key lives now."""
    where, _, message = error.partition(f"actions.reshard.{key}: ")
    assert where == f"{path}:{line}: stream 'orders': "
    assert "moved" in message
    assert f"`capacity.{key}`" in message


@pytest.mark.parametrize("key", ["saturated_at", "target_utilisation"])
def test_load_policies_names_the_new_place_of_a_moved_key(tmp_path: Path, key: str) -> None:
    # Given a policy file that still sets a capacity key under actions.reshard
    path = write(
        tmp_path,
        "orders.yaml",
        f"version: 1\nstreams:\n  - {{name: orders, actions: {{reshard: {{max_shards: 4, {key}: 0.7}}}}}}\n",
    )
    # When it is loaded
    # Then the one error names the old key and tells where it lives now
    (error,) = load_errors(path)
    assert_moved(error, path, key, 3)


def test_load_policies_reports_both_moved_keys_at_once(tmp_path: Path) -> None:
    # Given a file written before the move, with both capacity keys in the reshard block
    path = write(
        tmp_path,
        "orders.yaml",
        "version: 1\nstreams:\n  - name: orders\n    actions:\n      reshard:\n        max_shards: 4\n"
        "        saturated_at: 0.75\n        target_utilisation: 0.5\n",
    )
    # Then each key gets its own hint, in the file's order
    first, second = load_errors(path)
    assert_moved(first, path, "saturated_at", 7)
    assert_moved(second, path, "target_utilisation", 8)


def test_load_policies_says_the_removed_under_utilised_shards_key_went_and_why(tmp_path: Path) -> None:
    # Given a policy file written when the under-utilised alarm divided by a constant `shards`
    path = write(
        tmp_path,
        "orders.yaml",
        "version: 1\nstreams:\n  - name: orders\n    detectors:\n      under_utilised: {shards: 4}\n"
        "    actions:\n      reshard: {max_shards: 4}\n",
    )
    # When it is loaded
    (error,) = load_errors(path)
    # Then the one error names the file, the stream and the key, and says it was removed for the census
    where, _, message = error.partition("detectors.under_utilised.shards: ")
    assert where == f"{path}:5: stream 'orders': "
    assert message.startswith("this setting was removed")
    assert "census" in message


def test_daily_budget_ceiling_is_accepted() -> None:
    raw = stream(actions={"reshard": {"daily_budget": limits.MAX_POLICY_DAILY_BUDGET}})
    assert parse(raw).block("actions", "reshard", ReshardPolicy).daily_budget == 8


@pytest.mark.parametrize(
    ("detectors", "loc", "message"),
    [
        pytest.param(
            {"iterator_age": {"evaluation_periods": 2}},
            ("detectors", "iterator_age"),
            "Value error, datapoints_to_alarm (3) exceeds evaluation_periods (2)",
            id="iterator_age: default 3 datapoints over 2 periods",
        ),
        pytest.param(
            {"write_throttling": {"evaluation_periods": 3, "datapoints_to_alarm": 4}},
            ("detectors", "write_throttling"),
            "Value error, datapoints_to_alarm (4) exceeds evaluation_periods (3)",
            id="write_throttling: 4 over 3",
        ),
    ],
)
def test_datapoints_cannot_exceed_evaluation_periods(
    detectors: dict[str, Any], loc: tuple[Any, ...], message: str
) -> None:
    assert stream_errors(stream(detectors=detectors)) == [(loc, "value_error", message)]


def test_datapoints_equal_to_evaluation_periods_is_accepted() -> None:
    raw = stream(detectors={"write_throttling": {"evaluation_periods": 1, "datapoints_to_alarm": 1}})
    wt = parse(raw).block("detectors", "write-throttling", WriteThrottlingDetector)
    assert (wt.evaluation_periods, wt.datapoints_to_alarm) == (1, 1)


@pytest.mark.parametrize(
    "email",
    [
        pytest.param("oncall", id="no at"),
        pytest.param("oncall@example", id="no dot in domain"),
        pytest.param("on call@example.com", id="space"),
        pytest.param("a@b@example.com", id="two ats"),
        pytest.param("", id="empty"),
    ],
)
def test_bad_email_is_rejected(email: str) -> None:
    # Then the message says what an e-mail address looks like, not the pattern that checks it
    assert stream_errors(stream(notify={"emails": [email]})) == [
        (
            ("notify", "emails", 0),
            "value_error",
            f"Value error, must be an e-mail address like name@example.com, got '{email}'",
        )
    ]


def test_bad_consumer_function_name_is_rejected() -> None:
    # Then the message says what a function name is, not the pattern that checks it
    assert stream_errors(stream(consumers=[{"function": "bad fn"}])) == [
        (
            ("consumers", 0, "function", "function"),
            "value_error",
            "Value error, must be a Lambda function's name: 1-64 letters, digits, '-' or '_', got 'bad fn'",
        )
    ]


# policy_files.load_policies ------------------------------------------------------------------------
VALID_YAML = """\
version: 1
streams:
  - name: {name}
    actions:
      reshard:
        max_shards: 8
"""


def write(directory: Path, name: str, text: str) -> Path:
    path = directory / name
    path.write_text(text, encoding="utf-8")
    return path


def load_errors(*paths: str | Path) -> list[str]:
    with pytest.raises(PolicyValidationError) as caught:
        load_policies(paths)
    # The exception's message is every error, one per line, in the same order.
    assert str(caught.value) == "\n".join(str(e) for e in caught.value.errors)
    return [str(e) for e in caught.value.errors]


def test_load_valid_files(tmp_path: Path) -> None:
    a = write(tmp_path, "a.yaml", VALID_YAML.format(name="orders"))
    b = write(tmp_path, "b.yml", VALID_YAML.format(name="payments"))
    policies = load_policies([a, b])
    assert sorted(policies.streams) == ["orders", "payments"]
    assert dict(policies.sources) == {"orders": str(a), "payments": str(b)}
    orders = policies.get("orders")
    assert orders is not None
    assert orders.block("actions", "reshard", ReshardPolicy).max_shards == 8
    assert policies.get("unknown") is None


# A second, valid stream keeps each file to the one error under test.
VALID_SECOND = "  - name: payments\n    actions: {reshard: {max_shards: 4}}\n"


@pytest.mark.parametrize(
    ("stream_yaml", "expected"),
    [
        pytest.param(
            "  - name: orders\n    actions: {reshard: {min_shards: 2}}\n",
            "4: stream 'orders': actions.reshard.max_shards: required: this key has no default, write it",
            id="missing max_shards",
        ),
        pytest.param(
            "  - name: orders\n    actions: {reshard: {max_shards: 4, min_shards: 0}}\n",
            "4: stream 'orders': actions.reshard.min_shards: Input should be greater than or equal to 1 (got 0)",
            id="range error shows the input",
        ),
        pytest.param(
            "  - name: orders\n    actions: {reshard: {max_shards: 4, min_shards: 5}}\n",
            "4: stream 'orders': actions.reshard: min_shards (5) is above max_shards (4)",
            id="cross-field error without 'Value error,' prefix",
        ),
        pytest.param(
            "  - name: orders\n    actions: {reshard: {max_shards: 4, daily_budget: 9}}\n",
            "4: stream 'orders': actions.reshard.daily_budget: Input should be less than or equal to 8 (got 9)",
            id="daily budget above 8",
        ),
        pytest.param(
            "  - name: orders\n    mode: yolo\n    actions: {reshard: {max_shards: 4}}\n",
            "4: stream 'orders': mode: Input should be 'dry-run' or 'enforce' (got 'yolo')",
            id="unknown mode",
        ),
        pytest.param(
            "  - name: orders\n    detectors: {write_throttling: {thresold: 3}}\n"
            "    actions: {reshard: {max_shards: 4}}\n",
            "4: stream 'orders': detectors.write_throttling.thresold: unknown key 'thresold': "
            "did you mean threshold_records?",
            id="unknown nested key",
        ),
        pytest.param(
            "  - name: '*'\n    actions: {reshard: {max_shards: 4}}\n",
            "3: stream '*': name: '*' is not a Kinesis stream name: use 1-128 letters, digits, '_', '.' or '-' "
            "(one stream per entry; wildcards are not allowed)",
            id="wildcard name",
        ),
        pytest.param(
            "  - name: ''\n    actions: {reshard: {max_shards: 4}}\n",
            "3: stream '#1': name: '' is not a Kinesis stream name: use 1-128 letters, digits, '_', '.' or '-' "
            "(one stream per entry; wildcards are not allowed)",
            id="empty name -> index label",
        ),
        pytest.param(
            "  - actions: {reshard: {max_shards: 4}}\n",
            "3: stream '#1': name: required: this key has no default, write it",
            id="no name -> index label",
        ),
        pytest.param(
            "  - name: orders\n    consumers: [{kcl: app, lease_table: 'a b'}]\n"
            "    actions: {reshard: {max_shards: 4}}\n",
            "4: stream 'orders': consumers.0.lease_table: must be a DynamoDB table name: 3-255 letters, digits, "
            "'_', '.' or '-', got 'a b'",
            id="consumer field, without pydantic's kind tag",
        ),
        pytest.param(
            "  - name: orders\n    consumers: [{efo: a, function: b}]\n    actions: {reshard: {max_shards: 4}}\n",
            "4: stream 'orders': consumers.0: a consumer names exactly one kind: `function` (a Lambda function), "
            "`efo` (an enhanced fan-out consumer) or `kcl` (a KCL application)",
            id="consumer of two kinds",
        ),
    ],
)
def test_load_error_names_file_stream_and_field(tmp_path: Path, stream_yaml: str, expected: str) -> None:
    path = write(tmp_path, "orders.yaml", "version: 1\nstreams:\n" + stream_yaml + VALID_SECOND)
    assert load_errors(path) == [f"{path}:{expected}"]


def test_stream_without_name_is_labelled_by_its_position(tmp_path: Path) -> None:
    # Given a file whose second stream has no name
    path = write(
        tmp_path,
        "p.yaml",
        "version: 1\nstreams:\n"
        "  - {name: orders, actions: {reshard: {max_shards: 4}}}\n"
        "  - {actions: {reshard: {max_shards: 0}}}\n",
    )
    # Then its errors are labelled '#2' (1-based)
    assert load_errors(path) == [
        f"{path}:4: stream '#2': name: required: this key has no default, write it",
        f"{path}:4: stream '#2': actions.reshard.max_shards: Input should be greater than or equal to 1 (got 0)",
    ]


def test_single_invalid_stream_reports_only_its_own_error(tmp_path: Path) -> None:
    # Given a file whose only stream is invalid
    # Then only that stream's error is reported, not pydantic's echo "streams: Tuple should have at
    # least 1 item after validation, not 0" (the items that failed do not count towards min_length)
    path = write(tmp_path, "orders.yaml", "version: 1\nstreams:\n  - {name: orders, actions: {reshard: {}}}\n")
    assert load_errors(path) == [
        f"{path}:3: stream 'orders': actions.reshard.max_shards: required: this key has no default, write it"
    ]


def test_all_errors_across_files_are_reported_at_once(tmp_path: Path) -> None:
    # Given three broken files (and one good one) in one call
    a = write(
        tmp_path,
        "a.yaml",
        "version: 1\nstreams:\n  - {name: orders, capacity: {saturated_at: 2}, actions: {reshard: {max_shards: 4}}}\n"
        + VALID_SECOND,
    )
    good = write(tmp_path, "good.yaml", VALID_YAML.format(name="clicks"))
    b = write(
        tmp_path,
        "b.yaml",
        "version: 1\nstreams:\n  - {name: pay, actions: {reshard: {max_shards: 4}}}\nx: 1\n",
    )
    missing = tmp_path / "missing.yaml"
    # When they are loaded together
    # Then every error of every file is reported, in order, file by file
    assert load_errors(a, good, b, missing) == [
        f"{a}:3: stream 'orders': capacity.saturated_at: Input should be less than or equal to 1 (got 2)",
        f"{b}:4: x: unknown key 'x': the keys here are streams, version",
        f"{missing}: no such policy file",
    ]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param(
            "version: 1\nstreams:\n  - name: orders\n   actions: x\n",
            "not valid YAML at line 4, column 4: expected <block end>, but found '<block mapping start>'",
            id="bad indentation on line 4",
        ),
        pytest.param(
            "version: 1\n\tstreams: []\n",
            "not valid YAML at line 2, column 1: found character '\\t' that cannot start any token",
            id="tab on line 2",
        ),
    ],
)
def test_yaml_syntax_error_reports_line(tmp_path: Path, text: str, expected: str) -> None:
    path = write(tmp_path, "broken.yaml", text)
    assert load_errors(path) == [f"{path}: {expected}"]


@pytest.mark.parametrize(
    "text",
    [pytest.param("", id="empty file"), pytest.param("- 1\n", id="list"), pytest.param("7\n", id="scalar")],
)
def test_document_that_is_not_a_mapping(tmp_path: Path, text: str) -> None:
    path = write(tmp_path, "odd.yaml", text)
    assert load_errors(path) == [f"{path}: expected a mapping with 'version' and 'streams'"]


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.yaml"
    assert load_errors(path) == [f"{path}: no such policy file"]


def test_directory_expands_to_yaml_and_yml_files(tmp_path: Path) -> None:
    # Given a directory with policies (.yaml, .yml) and other things
    b = write(tmp_path, "b.yml", VALID_YAML.format(name="payments"))
    a = write(tmp_path, "a.yaml", VALID_YAML.format(name="orders"))
    write(tmp_path, "notes.txt", "not a policy")
    write(tmp_path, "README.md", "# policies")
    (tmp_path / "sub.yaml").mkdir()  # a directory named like a policy is not a file
    # When the directory is expanded and loaded
    # Then only the policy files are read, sorted by name
    assert policy_paths([tmp_path]) == [a, b]
    policies = load_policies([tmp_path])
    assert dict(policies.sources) == {"orders": str(a), "payments": str(b)}


def test_empty_directory_has_no_policies(tmp_path: Path) -> None:
    assert load_errors(tmp_path) == [f"{tmp_path}: {NO_POLICY_FILES}"]


def test_no_paths_at_all() -> None:
    assert load_errors() == [f"(none): {NO_POLICY_FILES}"]


def test_duplicate_stream_across_files_names_both(tmp_path: Path) -> None:
    first = write(tmp_path, "a.yaml", VALID_YAML.format(name="orders"))
    second = write(tmp_path, "b.yaml", VALID_YAML.format(name="orders"))
    assert load_errors(first, second) == [f"{second}: stream 'orders': name: also defined in {first}"]


def test_duplicate_stream_in_one_file(tmp_path: Path) -> None:
    path = write(tmp_path, "a.yaml", VALID_YAML.format(name="orders") + VALID_SECOND.replace("payments", "orders"))
    assert load_errors(path) == [f"{path}: stream 'orders' is listed twice"]
