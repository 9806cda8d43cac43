"""Deployed policies (one SSM parameter per stream) are untrusted: one that does not validate is no policy."""

from __future__ import annotations

import json

import pytest
from botocore.client import BaseClient
from botocore.exceptions import ClientError

from tests.fakes import alarm_event
from tests.integration.support import SATURATED, STREAM, WRITE_ALARM, only, policy

NO_POLICY = (
    "no valid policy for stream 'orders' (none deployed, or it failed validation: see the remediator's logs); "
    "the remediator touches only streams with a valid policy"
)


def enforce(**changes):
    raw = policy(mode="enforce")
    raw.update(changes)
    return raw


@pytest.fixture
def saturated_stream(aws):
    aws.create_stream(STREAM, 2)
    aws.push_traffic(STREAM, **SATURATED)


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param(enforce(allow_everything=True), id="unknown-key"),
        pytest.param(enforce(mode="yolo"), id="unknown-mode"),
        pytest.param(enforce(actions={"reshard": {}}), id="no-max-shards"),
        pytest.param(enforce(actions={"reshard": {"max_shards": 20_000}}), id="above-aws-max"),
        pytest.param(enforce(actions={"reshard": {"max_shards": 2, "min_shards": 4}}), id="min-above-max"),
        pytest.param(enforce(actions={"reshard": {"max_shards": 16, "daily_budget": 10}}), id="budget-eats-reserve"),
        pytest.param(enforce(name="*"), id="wildcard-name"),
        pytest.param(enforce(actions={"reshard": {"max_shards": "16"}}), id="max-shards-as-text"),
        pytest.param(enforce(name=12345), id="name-as-a-number"),
        pytest.param(enforce(actions={}), id="no-actions"),
        pytest.param(
            enforce(actions={"reshard": {"max_shards": 16, "saturated_at": 0.5}}), id="capacity-key-in-its-old-place"
        ),
        pytest.param(["orders"], id="json-list"),
        pytest.param("orders", id="json-string"),
    ],
)
@pytest.mark.usefixtures("saturated_stream")
def test_a_policy_that_does_not_validate_is_treated_as_no_policy(aws, invoke, api_calls, raw):
    # Given the stream's policy parameter holds JSON that is not a valid enforce policy
    aws.put_raw_policy(STREAM, json.dumps(raw))

    # When the alarm fires
    result = invoke(alarm_event(WRITE_ALARM))

    # Then the stream is ignored as if unlisted: no Kinesis call at all, and an audit row says why
    assert result["status"] == "ignored"
    assert result["detail"] == NO_POLICY
    assert api_calls.operations("kinesis") == []
    assert aws.shard_count(STREAM) == 2
    assert only(aws.audit_rows(STREAM))["outcome"] == "ignored"
    assert aws.emails() == []


@pytest.mark.usefixtures("saturated_stream")
def test_a_policy_parameter_that_is_not_json_is_treated_as_no_policy(aws, invoke, api_calls):
    # Given the stream's policy parameter holds YAML rather than JSON
    aws.put_raw_policy(STREAM, "name: orders\nmode: enforce\n")

    # When the alarm fires
    result = invoke(alarm_event(WRITE_ALARM))

    # Then the stream is ignored and audited, nothing is changed
    assert result["status"] == "ignored"
    assert result["detail"] == NO_POLICY
    assert api_calls.kinesis_mutations() == []
    assert only(aws.audit_rows(STREAM))["outcome"] == "ignored"


@pytest.mark.usefixtures("saturated_stream")
def test_a_policy_stored_under_another_streams_name_is_treated_as_no_policy(aws, invoke, api_calls):
    # Given the parameter for 'orders' holds a valid policy for 'payments'
    aws.put_raw_policy(STREAM, json.dumps(policy(name="payments", mode="enforce")))

    # When the alarm for 'orders' fires
    result = invoke(alarm_event(WRITE_ALARM))

    # Then 'orders' is ignored and audited, and nothing is changed
    assert result["status"] == "ignored"
    assert api_calls.kinesis_mutations() == []
    assert only(aws.audit_rows(STREAM))["outcome"] == "ignored"


@pytest.mark.usefixtures("saturated_stream")
def test_a_policy_without_a_mode_is_dry_run(aws, invoke, api_calls):
    # Given a valid policy that does not say enforce
    aws.put_raw_policy(STREAM, json.dumps({"name": STREAM, "actions": {"reshard": {"max_shards": 8}}}))

    # When the alarm fires
    result = invoke(alarm_event(WRITE_ALARM))

    # Then new policies start in dry-run: zero mutating calls
    assert result["status"] == "dry-run"
    assert api_calls.kinesis_mutations() == []
    assert aws.shard_count(STREAM) == 2


@pytest.mark.usefixtures("saturated_stream")
def test_a_policy_parameter_the_role_may_not_read_is_treated_as_no_policy(aws, invoke, api_calls, monkeypatch):
    # Given no policy is deployed for the stream, so the stack grants no read of its parameter, and AWS
    # answers the read with AccessDenied (as it would in an account; moto does not enforce IAM)
    name = f"{aws.policy_prefix}/{STREAM}"
    recorded = BaseClient._make_api_call

    def deny(self, operation, params):
        if operation == "GetParameter" and params.get("Name") == name:
            api_calls.note("ssm", operation, params)
            error = {
                "Code": "AccessDeniedException",
                "Message": f"not authorized to perform: ssm:GetParameter on {name}",
            }
            raise ClientError({"Error": error}, operation)
        return recorded(self, operation, params)

    monkeypatch.setattr(BaseClient, "_make_api_call", deny)

    # When the alarm fires
    result = invoke(alarm_event(WRITE_ALARM))

    # Then the stream is ignored as one with no policy, and audited; nothing about it is read or changed
    assert result["status"] == "ignored"
    assert result["detail"] == NO_POLICY
    assert api_calls.params("ssm", "GetParameter") == [{"Name": name, "WithDecryption": False}]
    assert api_calls.services() <= {"ssm", "dynamodb"}
    assert only(aws.audit_rows(STREAM))["outcome"] == "ignored"
    assert aws.emails() == []
