"""Issue 11.4: a stream is (account, region, name). Policy fields, keys, and where a policy may be looked up."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError
from remediator.core.policy import lookup_keys, stream_key
from remediator.core.registry import REGISTRY
from remediator.policy_files import PolicyValidationError, load_policies

HUB, HUB_REGION = "111111111111", "us-east-1"
MEMBER = "222222222222"


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(text)
    return path


STREAM = "  - name: orders\n    actions: {reshard: {max_shards: 8}}\n"


@pytest.mark.parametrize(
    ("account", "region", "key"),
    [
        (None, None, "orders"),  # hub-local: its key (SSM parameter, audit) is its name, as before
        (MEMBER, None, f"{MEMBER}/-/orders"),
        (None, "eu-west-1", "-/eu-west-1/orders"),
        (MEMBER, "eu-west-1", f"{MEMBER}/eu-west-1/orders"),
    ],
)
def test_a_policy_key_names_account_and_region_only_when_given(
    account: str | None, region: str | None, key: str
) -> None:
    # Given a policy with (or without) an account and a region
    raw = {"name": "orders", "account": account, "region": region, "actions": {"reshard": {"max_shards": 8}}}
    # When it is parsed, Then its key is the name alone for the hub's own stream, else account/region/name
    assert REGISTRY.parse_stream_policy(raw).key == key == stream_key("orders", account, region)


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("account", "12345678901", "12 digits"),
        ("account", "1234567890123", "12 digits"),
        ("account", "12345678901a", "12 digits"),
        ("account", "*", "12 digits"),
        ("region", "eu_west_1", "region name"),
        ("region", "EU-WEST-1", "region name"),
        ("region", "eu-west", "region name"),
        ("region", "*", "region name"),
        ("region", "eu-west-1/x", "region name"),
    ],
)
def test_account_and_region_must_have_their_form(field: str, value: str, message: str) -> None:
    # Given a malformed account or region, When parsed, Then the error says what it must be
    with pytest.raises(ValidationError, match=message):
        REGISTRY.parse_stream_policy({"name": "orders", field: value, "actions": {"reshard": {"max_shards": 8}}})


@pytest.mark.parametrize("region", ["us-east-1", "eu-central-2", "ap-southeast-4", "us-gov-west-1", "cn-north-1"])
def test_real_region_names_are_accepted(region: str) -> None:
    raw = {"name": "s", "region": region, "actions": {"reshard": {"max_shards": 8}}}
    assert REGISTRY.parse_stream_policy(raw).region == region


def test_an_unquoted_account_is_refused_with_a_hint(tmp_path: Path) -> None:
    # Given an account written as a YAML number
    path = write(tmp_path, "p.yaml", "version: 1\nstreams:\n  - name: orders\n    account: 222222222222\n")
    # When loaded, Then the error names the file, stream and field, and says to quote it
    with pytest.raises(PolicyValidationError) as raised:
        load_policies([path])
    text = str(raised.value)
    assert "p.yaml" in text and "orders" in text and "account" in text and "quotes" in text


def test_the_same_name_in_two_accounts_is_two_streams(tmp_path: Path) -> None:
    # Given 'orders' in the hub's account and in a member's, in two files
    write(tmp_path, "hub.yaml", "version: 1\nstreams:\n" + STREAM)
    write(tmp_path, "member.yaml", f"version: 1\nstreams:\n{STREAM}    account: '{MEMBER}'\n")
    # When loaded, Then both are there, each found by (account, region, name)
    policies = load_policies([tmp_path])
    assert sorted(policies.streams) == [f"{MEMBER}/-/orders", "orders"]
    hub, member = policies.get("orders"), policies.get("orders", MEMBER)
    assert hub is not None and hub.account is None
    assert member is not None and member.account == MEMBER
    assert policies.get("orders", MEMBER, "eu-west-1") is None


def test_the_same_stream_twice_in_two_files_names_both(tmp_path: Path) -> None:
    # Given the same (account, region, name) in two files
    write(tmp_path, "a.yaml", f"version: 1\nstreams:\n{STREAM}    account: '{MEMBER}'\n")
    write(tmp_path, "b.yaml", f"version: 1\nstreams:\n{STREAM}    account: '{MEMBER}'\n")
    # When loaded, Then the error names both files and the account
    with pytest.raises(PolicyValidationError) as raised:
        load_policies([tmp_path])
    text = str(raised.value)
    assert "b.yaml" in text and "a.yaml" in text and MEMBER in text


def test_the_same_stream_twice_in_one_file_is_refused() -> None:
    with pytest.raises(ValidationError, match=f"'orders' in account {MEMBER}, region .* is listed twice"):
        REGISTRY.parse_policy_document(
            {
                "version": 1,
                "streams": [{"name": "orders", "account": MEMBER, "actions": {"reshard": {"max_shards": 8}}}] * 2,
            }
        )


@pytest.mark.parametrize(
    ("account", "region", "keys"),
    [
        # The hub's own stream: its name first (one lookup, as before members existed)
        (HUB, HUB_REGION, ["orders", f"-/{HUB_REGION}/orders", f"{HUB}/-/orders", f"{HUB}/{HUB_REGION}/orders"]),
        # A member in the hub's region: written with or without the region
        (MEMBER, HUB_REGION, [f"{MEMBER}/-/orders", f"{MEMBER}/{HUB_REGION}/orders"]),
        # The hub's account in another region
        (HUB, "eu-west-1", ["-/eu-west-1/orders", f"{HUB}/eu-west-1/orders"]),
        # A member in another region: only one way to write it
        (MEMBER, "eu-west-1", [f"{MEMBER}/eu-west-1/orders"]),
    ],
)
def test_lookup_keys_never_reach_another_accounts_policy(account: str, region: str, keys: list[str]) -> None:
    # Given an event's account and region, When the keys to look up are listed, Then they are exactly these
    assert lookup_keys("orders", account, region, HUB, HUB_REGION) == keys
