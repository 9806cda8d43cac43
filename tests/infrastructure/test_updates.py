"""Changing the policy set must update the deployed stack in place: existing streams keep their resources.

CloudFormation identifies resources by logical id. If an existing stream's alarm or policy parameter gets a new
logical id, an update creates it again under the same physical name and then deletes the old one: an SSM
parameter create fails (the name exists), and an alarm is overwritten by PutMetricAlarm, then deleted by the
clean-up of the old logical id, leaving the stream unwatched.
"""

from __future__ import annotations

import pytest

from tests.infrastructure.support import Synth

pytestmark = pytest.mark.xdist_group("infrastructure")

PER_STREAM = [("AWS::CloudWatch::Alarm", "AlarmName"), ("AWS::SSM::Parameter", "Name")]


def logical_ids_by_name(synth: Synth, resource_type: str, name_property: str) -> dict[str, str]:
    return {r["Properties"][name_property]: lid for lid, r in synth.resources(resource_type).items()}


def test_shared_resources_keep_their_logical_ids_when_a_stream_is_added(synth: Synth, grown_synth: Synth) -> None:
    # Given the app before and after a stream was added
    shared = [
        "AWS::DynamoDB::Table",
        "AWS::SNS::Topic",
        "AWS::KMS::Key",
        "AWS::SQS::Queue",
        "AWS::IAM::Role",
        "AWS::Lambda::Function",
        "AWS::Lambda::LayerVersion",
        "AWS::Events::Rule",
    ]
    # Then the resources that are not per stream keep their logical ids
    for resource_type in shared:
        assert sorted(synth.resources(resource_type)) == sorted(grown_synth.resources(resource_type)), resource_type
    # And the existing e-mail subscriptions too (their construct ids are the addresses)
    assert set(synth.resources("AWS::SNS::Subscription")) <= set(grown_synth.resources("AWS::SNS::Subscription"))


@pytest.mark.parametrize(("resource_type", "name_property"), PER_STREAM, ids=["alarms", "parameters"])
def test_existing_streams_keep_their_logical_ids_when_a_stream_is_added(
    synth: Synth, grown_synth: Synth, resource_type: str, name_property: str
) -> None:
    # Given the app before and after clickstream (which sorts before orders and payments) was added
    before = logical_ids_by_name(synth, resource_type, name_property)
    after = logical_ids_by_name(grown_synth, resource_type, name_property)
    assert set(before) < set(after)
    # Then every alarm / parameter that existed keeps its logical id, so CloudFormation leaves it in place
    assert {name: after[name] for name in before} == before
