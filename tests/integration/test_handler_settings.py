"""Settings are validated at import (cold start): a missing or malformed variable fails it, by name."""

from __future__ import annotations

import importlib

import pytest
from pydantic import ValidationError

REQUIRED = [
    "AWS_REGION",
    "AUDIT_TABLE_NAME",
    "IDEMPOTENCY_TABLE_NAME",
    "NOTIFICATION_TOPIC_ARN",
    "KILL_SWITCH_PARAMETER",
    "POLICY_PARAMETER_PREFIX",
    "ALARM_NAME_PREFIX",
]


def cold_start_error(monkeypatch: pytest.MonkeyPatch, **environment: str | None) -> ValidationError:
    """Reload the handler with the environment changed; restore a working module afterwards."""
    import remediator.handler  # imported here: importing needs the environment the `aws` fixture sets

    importlib.reload(remediator.handler)
    with monkeypatch.context() as patch:
        for name, value in environment.items():
            if value is None:
                patch.delenv(name, raising=False)
            else:
                patch.setenv(name, value)
        with pytest.raises(ValidationError) as caught:
            importlib.reload(remediator.handler)
    importlib.reload(remediator.handler)
    return caught.value


@pytest.mark.parametrize("name", REQUIRED)
@pytest.mark.usefixtures("aws")
def test_a_missing_variable_fails_the_cold_start_naming_it(monkeypatch, name):
    # Given the environment lacks one required variable
    # When the handler module is imported
    error = cold_start_error(monkeypatch, **{name: None})

    # Then a ValidationError names that variable, and only it
    assert [(e["loc"], e["type"]) for e in error.errors()] == [((name,), "missing")]
    assert name in str(error)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("NOTIFICATION_TOPIC_ARN", "notifications"),
        ("KILL_SWITCH_PARAMETER", "kinesis-remediator/kill-switch"),
        ("POLICY_PARAMETER_PREFIX", "policies"),
        ("AUDIT_TABLE_NAME", "a"),
        ("ALARM_NAME_PREFIX", ""),
    ],
)
@pytest.mark.usefixtures("aws")
def test_a_malformed_variable_fails_the_cold_start_naming_it(monkeypatch, name, value):
    # Given a variable that does not have the expected shape
    # When the handler module is imported
    error = cold_start_error(monkeypatch, **{name: value})

    # Then the ValidationError names it
    assert [e["loc"] for e in error.errors()] == [(name,)]


@pytest.mark.usefixtures("aws")
def test_a_cold_start_error_does_not_echo_the_environment(monkeypatch):
    # Given a credential-like variable in the environment (Lambda sets AWS_SESSION_TOKEN and friends)
    # (set last, as the runtime may: pydantic's message shows the head and the tail of the input's repr)
    secret = "FwoGZXIvYXdzEXAMPLE-SESSION-TOKEN-TAIL-0123456789"
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    monkeypatch.setenv("AWS_SESSION_TOKEN", secret)

    # When the cold start fails on a missing variable
    error = cold_start_error(monkeypatch, AUDIT_TABLE_NAME=None)

    # Then neither the message nor the error details carry any part of the credential
    assert secret[-12:] not in str(error)
    assert secret not in repr(error.errors())


def test_the_fixture_environment_is_a_valid_cold_start(aws, handler):
    # Given the environment the stack sets (as the fixtures do)
    # When the handler is imported
    # Then its settings hold those values
    assert handler.settings.audit_table == "audit"
    assert handler.settings.idempotency_table == "idempotency"
    assert handler.settings.topic_arn == aws.topic_arn
    assert handler.settings.kill_switch_parameter == aws.kill_switch
    assert handler.settings.policy_parameter_prefix == aws.policy_prefix
    assert handler.settings.alarm_prefix == "kinesis-remediator-"
    assert handler.settings.region == "us-east-1"
