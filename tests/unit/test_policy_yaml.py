"""Strict policy YAML: what YAML allows beyond plain data is refused, values keep their YAML type, and every
error names file:line, stream and field in words; the deployed JSON still round-trips through the Lambda's parse."""

from __future__ import annotations

import io
import json
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import pytest
import yaml
from pydantic import ValidationError
from remediator import cli
from remediator.core.policy import Mode
from remediator.core.registry import REGISTRY
from remediator.policy_files import PolicyValidationError, load_policies

ROOT = Path(__file__).resolve().parents[2]

# A valid stream after the one under test keeps each document to the errors the row is about.
TAIL = "  - name: payments\n    notify: {emails: [pay@example.com]}\n    actions: {reshard: {max_shards: 4}}\n"


def write(tmp_path: Path, text: str, name: str = "p.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def load_errors(path: Path) -> list[str]:
    with pytest.raises(PolicyValidationError) as caught:
        load_policies([path])
    return [str(e) for e in caught.value.errors]


ALIAS = (
    "anchors and aliases are not allowed in a policy ({}): write each stream's settings in full, "
    "so that what a stream does is read in its own block"
)
TAG = (
    "YAML tags are not allowed in a policy ({}): write plain values (text, numbers, true/false); "
    "nothing in a policy is built from a tag"
)

BAD_DOCUMENTS = [
    pytest.param(
        "version: 1\nstreams:\n  - name: orders\n    actions:\n      reshard:\n        max_shards: 4\n"
        "        max_shards: 64\n",
        [
            "{path}:7: stream 'orders': actions.reshard.max_shards: given twice in one block (first on line 6): "
            "keep one; a repeated key is never read as 'the last one wins'"
        ],
        id="duplicate key in a plugin block",
    ),
    pytest.param(
        "version: 1\nversion: 1\nstreams:\n" + TAIL,
        [
            "{path}:2: version: given twice in one block (first on line 1): keep one; a repeated key is never "
            "read as 'the last one wins'"
        ],
        id="duplicate top-level key",
    ),
    pytest.param(
        "version: 1\nstreams:\n  - name: orders\n    x: !!python/object/apply:os.system ['true']\n"
        "    actions: {reshard: {max_shards: 4}}\n",
        ["{path}:4: stream 'orders': x: " + TAG.format("!!python/object/apply:os.system")],
        id="python tag",
    ),
    pytest.param(
        "version: 1\nstreams:\n  - name: !Ref StreamName\n    actions: {reshard: {max_shards: 4}}\n",
        ["{path}:3: stream 'StreamName': name: " + TAG.format("!Ref")],
        id="custom tag",
    ),
    pytest.param(
        "version: 1\nstreams:\n  - name: !!str 12345\n    actions: {reshard: {max_shards: 4}}\n",
        ["{path}:3: stream '12345': name: " + TAG.format("!!str")],
        id="even a standard tag",
    ),
    pytest.param(
        "version: 1\nshared: &loud\n  mode: enforce\nstreams:\n  - name: orders\n    <<: *loud\n"
        "    actions: {reshard: {max_shards: 4}}\n",
        [
            "{path}:2: shared: " + ALIAS.format("anchor &loud"),
            "{path}:6: stream 'orders': <<: merge keys (<<) are not allowed in a policy: write the stream's "
            "settings in full, so that no block is changed from elsewhere in the file",
            "{path}:6: stream 'orders': <<: " + ALIAS.format("alias *loud"),
        ],
        id="merge key into a stream's block",
    ),
    pytest.param(
        "version: 1\nstreams:\n  - name: orders\n    actions: &big {reshard: {max_shards: 64}}\n"
        "  - name: payments\n    actions: *big\n",
        [
            "{path}:4: stream 'orders': actions: " + ALIAS.format("anchor &big"),
            "{path}:6: stream 'payments': actions: " + ALIAS.format("alias *big"),
        ],
        id="plain alias copying a block",
    ),
    pytest.param(
        'version: 1\nstreams:\n  - name: orders\n    actions: {reshard: {max_shards: "16"}}\n' + TAIL,
        [
            "{path}:4: stream 'orders': actions.reshard.max_shards: must be a whole number, got \"16\" "
            "(quoted, so YAML reads it as text): write it without quotes"
        ],
        id="quoted number",
    ),
    pytest.param(
        "version: 1\nstreams:\n  - name: orders\n    actions: {reshard: {max_shards: sixteen}}\n" + TAIL,
        ["{path}:4: stream 'orders': actions.reshard.max_shards: must be a whole number, got \"sixteen\""],
        id="a word where a number is expected",
    ),
    pytest.param(
        "version: 1\nstreams:\n  - name: yes\n    actions: {reshard: {max_shards: 4}}\n" + TAIL,
        [
            "{path}:3: stream 'yes': name: must be text, got yes, which YAML reads as true: "
            "put it in quotes ('yes') if it is a name"
        ],
        id="YAML 1.1 boolean as a name",
    ),
    pytest.param(
        "version: 1\nstreams:\n  - name: 12345\n    actions: {reshard: {max_shards: 4}}\n" + TAIL,
        [
            "{path}:3: stream '12345': name: must be text, got 12345, which YAML reads as a number: "
            "put it in quotes ('12345') if it is a name"
        ],
        id="number as a name",
    ),
    pytest.param(
        'version: 1\nstreams:\n  - name: orders\n    actions: {reshard: {max_shards: 4, enabled: "true"}}\n' + TAIL,
        [
            "{path}:4: stream 'orders': actions.reshard.enabled: must be true or false, got \"true\" "
            "(quoted, so YAML reads it as text): write it without quotes"
        ],
        id="quoted boolean",
    ),
    pytest.param(
        "version: 1\nstreams:\n  - name: orders\n    capacity:\n      target_utilisation: '0.5'\n"
        "    actions: {reshard: {max_shards: 4}}\n" + TAIL,
        [
            "{path}:5: stream 'orders': capacity.target_utilisation: must be a number, got \"0.5\" "
            "(quoted, so YAML reads it as text): write it without quotes"
        ],
        id="quoted fraction",
    ),
    pytest.param(
        "version: 1\nstreams:\n  - name: 2024-01-01\n    actions: {reshard: {max_shards: 4}}\n",
        ["{path}:3: stream '2024-01-01': name: 2024-01-01 is read as a date: no setting is a date"],
        id="date",
    ),
    pytest.param(
        "version: 1\nstreams:\n  - name: orders\n    notify:\n      emails:\n        - oncall\n"
        "    actions: {reshard: {max_shards: 4}}\n" + TAIL,
        ["{path}:6: stream 'orders': notify.emails.0: must be an e-mail address like name@example.com, got 'oncall'"],
        id="e-mail in words",
    ),
    pytest.param(
        "version: 1\nstreams:\n  - name: orders\n    actions:\n      reshard: {max_shards: 4, max_shard: 8}\n" + TAIL,
        ["{path}:5: stream 'orders': actions.reshard.max_shard: unknown key 'max_shard': did you mean max_shards?"],
        id="near miss in a plugin block",
    ),
    pytest.param(
        "version: 1\nstreams:\n  - name: orders\n    detectors:\n      iterator_age: {threshold_m: 1000}\n"
        "    actions: {reshard: {max_shards: 4}}\n" + TAIL,
        [
            "{path}:5: stream 'orders': detectors.iterator_age.threshold_m: unknown key 'threshold_m': "
            "did you mean threshold_ms?"
        ],
        id="near miss in a detector block",
    ),
    pytest.param(
        "version: 1\nstreams:\n  - name: orders\n    actions: {reshards: {max_shards: 4}}\n" + TAIL,
        [
            "{path}:4: stream 'orders': actions.reshard: required: this key has no default, write it",
            "{path}:4: stream 'orders': actions.reshards: unknown key 'reshards': did you mean reshard?",
        ],
        id="near miss of a plugin's block name",
    ),
    pytest.param(
        "version: 1\nstreams:\n  - name: orders\n    consumers:\n      - {kcl: app, lease_tabel: t1}\n"
        "    actions: {reshard: {max_shards: 4}}\n" + TAIL,
        ["{path}:5: stream 'orders': consumers.0.lease_tabel: unknown key 'lease_tabel': did you mean lease_table?"],
        id="near miss in a consumer",
    ),
    pytest.param(
        "version: 1\nstreams:\n  - name: orders\n    mood: enforce\n    actions: {reshard: {max_shards: 4}}\n" + TAIL,
        ["{path}:4: stream 'orders': mood: unknown key 'mood': did you mean mode?"],
        id="near miss of a stream key",
    ),
    pytest.param(
        "version: 1\nstreams:\n  - name: orders\n    notify: oncall@example.com\n"
        "    actions: {reshard: {max_shards: 4}}\n" + TAIL,
        [
            "{path}:4: stream 'orders': notify: must be a block of settings (`key: value` lines, indented below it), "
            'got "oncall@example.com"'
        ],
        id="text where a block is expected",
    ),
    pytest.param(
        "version: 1\nstreams:\n  - name: orders\n    notify: {emails: a@example.com}\n"
        "    actions: {reshard: {max_shards: 4}}\n" + TAIL,
        ["{path}:4: stream 'orders': notify.emails: must be a list (`- item` lines, or [a, b]), got \"a@example.com\""],
        id="text where a list is expected",
    ),
    pytest.param(
        "version: 1\nstreams:\n  - name: orders\n    capacity: {target_utilisation: }\n"
        "    actions: {reshard: {max_shards: 4}}\n" + TAIL,
        ["{path}:4: stream 'orders': capacity.target_utilisation: must be a number, got nothing"],
        id="empty value",
    ),
    pytest.param(
        "version: yes\nstreams:\n" + TAIL,
        ["{path}:1: version: must be 1 (a number), got true"],
        id="YAML 1.1 boolean as the version",
    ),
    pytest.param(
        "version: 1\nstreams: []\n",
        [
            "{path}:2: streams: no stream to protect (an empty list never means every stream): list each stream "
            "under `streams:` as `- name: <stream>` with its `actions: {{reshard: {{max_shards: <most shards it "
            "may have>}}}}`"
        ],
        id="empty stream list",
    ),
]


@pytest.mark.parametrize(("text", "expected"), BAD_DOCUMENTS)
def test_bad_yaml_is_refused_with_file_line_stream_and_field(tmp_path: Path, text: str, expected: list[str]) -> None:
    # Given a policy file with one kind of mistake
    path = write(tmp_path, text)
    # When it is loaded
    # Then every error is reported, each as file:line: stream: field: message in words
    assert load_errors(path) == [line.format(path=path) for line in expected]


def test_mode_given_twice_never_turns_on_enforce(tmp_path: Path) -> None:
    # Given a stream whose block says dry-run and, further down, enforce
    path = write(
        tmp_path,
        "version: 1\nstreams:\n  - name: orders\n    mode: dry-run\n    notify: {emails: [a@example.com]}\n"
        "    actions: {reshard: {max_shards: 4}}\n    mode: enforce\n",
    )
    # When it is loaded
    # Then nothing is loaded (neither value wins), and the error points at the second `mode` and the first
    assert load_errors(path) == [
        f"{path}:7: stream 'orders': mode: given twice in one block (first on line 4): keep one; a repeated key "
        "is never read as 'the last one wins'"
    ]


def test_the_same_stream_with_mode_once_is_enforce(tmp_path: Path) -> None:
    # Given the same stream with `mode: enforce` written once (the refusal above is about the repetition)
    path = write(
        tmp_path,
        "version: 1\nstreams:\n  - name: orders\n    notify: {emails: [a@example.com]}\n"
        "    actions: {reshard: {max_shards: 4}}\n    mode: enforce\n",
    )
    # Then it loads, in enforce, with no warning
    policies = load_policies([path])
    assert policies.streams["orders"].mode is Mode.ENFORCE
    assert policies.warnings == ()


def test_safe_loader_alone_refuses_python_tags() -> None:
    # Given a python tag; PyYAML's SafeLoader (what the loader builds on) already refuses to construct it
    with pytest.raises(yaml.constructor.ConstructorError, match="could not determine a constructor"):
        yaml.safe_load("x: !!python/object/apply:os.system ['true']")


def test_a_python_tag_is_never_constructed(tmp_path: Path) -> None:
    # Given a policy whose python tag would create a file if it were ever constructed
    marker = tmp_path / "constructed"
    path = write(
        tmp_path,
        f"version: 1\nstreams:\n  - name: orders\n    actions: {{reshard: {{max_shards: 4}}}}\n"
        f"    notify: !!python/object/apply:pathlib.Path.touch [!!python/object/apply:pathlib.Path ['{marker}']]\n",
    )
    # When it is loaded
    errors = load_errors(path)
    # Then it is refused at its line, and nothing was built: the file does not exist
    assert errors[0].startswith(f"{path}:5: stream 'orders': notify: YAML tags are not allowed")
    assert not marker.exists()


# The stack's own JSON -> the Lambda's parse ------------------------------------------------------------------
def policy_files() -> list[Path]:
    """Every policy YAML in the project (the example, test fixtures), wherever the fixtures live."""
    skip = {"node_modules", ".venv", "build", "cdk.out", ".git", ".demo"}
    return sorted(
        p
        for suffix in ("*.yaml", "*.yml")
        for p in ROOT.rglob(suffix)
        if not skip & set(p.relative_to(ROOT).parts) and "\nstreams:" in p.read_text(encoding="utf-8")
    )


def test_there_are_policy_fixtures_to_round_trip() -> None:
    assert policy_files(), "no policy YAML found under the project: the round trip below would prove nothing"


def assert_round_trip(path: Path) -> None:
    """Load strictly from YAML, write as the stack does, parse back as the Lambda does: the same policy."""
    try:
        policies = load_policies([path])
    except PolicyValidationError as exc:
        pytest.skip(f"an invalid fixture, on purpose or not (its own tests say which): {exc}")
    for name, policy in policies.streams.items():
        # When the stack writes it as SSM does (stacks/constructs/state.py) and the Lambda parses it back strictly
        deployed = json.dumps(policy.model_dump(mode="json"), separators=(",", ":"), sort_keys=True)
        parsed = REGISTRY.parse_stream_policy_json(json.dumps(json.loads(deployed)))
        # Then it is the same policy: enums, whole numbers, fractions and lists all pass in strict JSON
        assert parsed == policy, name


@pytest.mark.parametrize("path", policy_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_the_lambda_parses_the_stacks_own_json_strictly(path: Path) -> None:
    assert_round_trip(path)


@pytest.mark.parametrize("mode", ["dry-run", "enforce"])
def test_the_demo_policy_round_trips(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mode: str) -> None:
    # Given the policy the demo writes for itself (it keeps its own, in demo/run.py)
    from demo import run

    monkeypatch.setattr(run, "WORK", tmp_path)
    run.Demo.write_policy(object.__new__(run.Demo), mode)
    # Then it loads strictly and round-trips through the Lambda's strict parse
    assert_round_trip(tmp_path / "policies" / "demo.yaml")
    assert mode in {p.mode.value for p in load_policies([tmp_path / "policies"]).streams.values()}


def test_strict_json_still_refuses_wrong_types() -> None:
    # Given deployed JSON where a whole number was written as text (never what the stack writes)
    raw = {"name": "orders", "actions": {"reshard": {"max_shards": "16"}}}
    # Then the Lambda's strict parse refuses it, where a lax parse would have converted it
    with pytest.raises(ValidationError) as caught:
        REGISTRY.parse_stream_policy_json(json.dumps(raw))
    assert [(e["loc"], e["type"]) for e in caught.value.errors()] == [
        (("actions", "reshard", "max_shards"), "int_type")
    ]
    assert REGISTRY.parse_stream_policy(raw).name == "orders"


# Warnings ------------------------------------------------------------------------------------------------------
NO_EMAIL = "version: 1\nstreams:\n  - name: orders\n    actions: {reshard: {max_shards: 4}}\n" + TAIL
NO_EMAIL_WARNING = (
    "{path}:3: stream 'orders': notify.emails: no e-mail address: this stream's plans and reports reach nobody; "
    "add `notify: {{emails: [you@example.com]}}`"
)


def test_a_stream_that_reaches_nobody_is_a_warning_not_an_error(tmp_path: Path) -> None:
    # Given a valid file whose first stream has no e-mail address (the second has one)
    path = write(tmp_path, NO_EMAIL)
    # When it is loaded
    policies = load_policies([path])
    # Then both streams load, and there is one warning, for the stream that reaches nobody
    assert sorted(policies.streams) == ["orders", "payments"]
    assert [str(w) for w in policies.warnings] == [NO_EMAIL_WARNING.format(path=path)]


def test_validate_prints_the_warning_after_the_table(tmp_path: Path) -> None:
    # Given the same file
    path = write(tmp_path, NO_EMAIL)
    # When `validate` is run on it
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        code = cli.main(["validate", str(path)])
    # Then it succeeds, prints its table, and the warning on stderr
    assert code == 0
    assert "orders" in out.getvalue() and "payments" in out.getvalue()
    assert err.getvalue().splitlines() == ["WARNING " + NO_EMAIL_WARNING.format(path=path)]
