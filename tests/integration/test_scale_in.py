"""Scale-in through the real handler against moto: an under-utilised stream is halved in enforce, and every reason to
wait blocks it (opt-in off, a throttle or a lagging consumer in the stabilisation window, AWS's daily scalings
running short for a scale-up).

moto gaps, and how they are covered: moto does not implement CloudTrail's LookupEvents (it raises, so the handler
falls back on its own audit and says so: the default path below); where a test needs CloudTrail's answer, the
handler's CloudTrail client is a real botocore client answered by botocore's Stubber in AWS's documented shape.
moto applies UpdateShardCount at once and enforces none of AWS's limits: the guardrails are what is tested.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from botocore.stub import ANY, Stubber

from tests.fakes import alarm_event
from tests.integration.support import STREAM, alarm, only, parameters_of, plan_of

UNDER_ALARM = alarm(STREAM, "under-utilised")
# 8 shards writing 0.2 MB/s and 100 records/s: 2.5 % of their capacity; one shard would carry it at 33 %.
QUIET = {"bytes_per_second": 200_000, "records_per_second": 100, "minutes": 120}


def scale_in_policy(**reshard: Any) -> dict[str, Any]:
    return {
        "name": STREAM,
        "mode": "enforce",
        "actions": {"reshard": {"max_shards": 16, "scale_in": True} | reshard},
    }


def given_a_quiet_stream(aws: Any, *, iterator_age_ms: float = 1_000, throttled: float = 0, **reshard: Any) -> None:
    aws.create_stream(STREAM, 8)
    aws.put_policy(scale_in_policy(**reshard))
    aws.push_traffic(STREAM, **QUIET, iterator_age_ms=iterator_age_ms, throttled=throttled)


def test_an_under_utilised_stream_is_halved_and_the_saving_is_audited_and_mailed(aws, invoke, api_calls):
    # Given 8 shards at 2.5 % of their capacity for two calm hours, scale-in allowed, in enforce
    given_a_quiet_stream(aws)

    # When the under-utilised alarm fires
    result = invoke(alarm_event(UNDER_ALARM, metric="IncomingBytes"))

    # Then the stream is halved in one call (AWS allows no more), towards the 1 shard the writes need
    assert result["status"] == "applied"
    assert aws.shard_count(STREAM) == 4
    assert api_calls.params("kinesis", "UpdateShardCount") == [
        {"StreamARN": ANY, "TargetShardCount": 4, "ScalingType": "UNIFORM_SCALING"}
    ]
    # And it read CloudTrail's history (which moto cannot answer) and the account's shard quota before deciding
    assert {"LookupEvents", "DescribeLimits"} <= set(api_calls.operations())
    row = only([r for r in aws.audit_rows(STREAM) if r.get("action") == "reshard"])
    assert parameters_of(row) == {"current_shards": 8, "desired_shards": 1, "target_shards": 4}
    guardrails = {g["name"]: g for g in plan_of(row)["actions"][0]["guardrails"]}
    assert guardrails["aws-daily-scalings"]["detail"] == (
        "0 of AWS's 10 scalings used in the last 24 h (the remediator's audit: 0; CloudTrail could not be read "
        "(NotImplementedError: The lookup_events action has not been implemented), so reshards by people or other "
        "tools are not counted)"
    )
    assert guardrails["stabilisation-window"]["passed"] is True
    mail = only(aws.emails())
    assert mail["Subject"].startswith("[APPLIED] orders: reshard 8 -> 4 shards (-2,920 shard-hours a month)")
    assert "8 -> 4 shards saves 2,920 shard-hours a month" in mail["Message"]


def test_scale_in_is_opt_in_the_step_shows_and_the_block_says_how_to_enable(aws, invoke, api_calls):
    # Given the same quiet stream, with the policy's default (scale_in false)
    given_a_quiet_stream(aws, scale_in=False)
    # When the alarm fires
    result = invoke(alarm_event(UNDER_ALARM, metric="IncomingBytes"))
    # Then the scale-in is planned and blocked, with how to enable it, and the stream keeps its shards
    assert result["status"] == "blocked"
    assert only(result["steps"])["detail"] == (
        "scale-in-enabled: removing shards is opt-in: set `scale_in: true` under the stream's `actions.reshard` and "
        "deploy the policy"
    )
    assert api_calls.kinesis_mutations() == []
    assert aws.shard_count(STREAM) == 8


@pytest.mark.parametrize(
    ("disturbance", "reason"),
    [
        pytest.param(
            {"throttled": 2},
            "120 throttled writes (WriteProvisionedThroughputExceeded)",
            id="producers throttled in the window",
        ),
        pytest.param(
            {"iterator_age_ms": 300_000},
            "polling consumers (GetRecords.IteratorAgeMilliseconds) 300 s behind (lagging from 60 s)",
            id="a consumer behind in the window",
        ),
    ],
)
def test_a_scale_in_waits_out_a_window_with_a_throttle_or_a_lagging_consumer(
    aws, invoke, api_calls, disturbance, reason
):
    # Given the quiet stream, but with throttled writes or a consumer behind in the last two hours
    given_a_quiet_stream(aws, **disturbance)
    # When the alarm fires
    result = invoke(alarm_event(UNDER_ALARM, metric="IncomingBytes"))
    # Then nothing is removed, and the block names what broke the calm
    assert result["status"] == "blocked"
    assert only(result["steps"])["detail"] == f"stabilisation-window: not calm for 60 minutes: {reason}"
    assert api_calls.kinesis_mutations() == []
    assert aws.shard_count(STREAM) == 8


def test_a_scale_in_right_after_a_reshard_of_ours_waits(aws, invoke, api_calls):
    # Given a reshard applied 40 minutes ago (its cooldown has passed, the stabilisation window has not)
    given_a_quiet_stream(aws, cooldown_minutes=30)
    at = datetime.now(UTC) - timedelta(minutes=40)
    aws.seed_audit(STREAM, at, "applied", parameters={"current_shards": 4, "target_shards": 8})
    # When the alarm fires
    result = invoke(alarm_event(UNDER_ALARM, metric="IncomingBytes"))
    # Then it waits for the window
    assert result["status"] == "blocked"
    assert only(result["steps"])["detail"] == (
        f"stabilisation-window: not calm for 60 minutes: the remediator resharded at {at:%H:%M} UTC"
    )
    assert aws.shard_count(STREAM) == 8


def cloudtrail_event(at: datetime) -> dict[str, Any]:
    """One accepted UpdateShardCount on the stream, as LookupEvents returns it (AWS API reference)."""
    record = {
        "eventVersion": "1.08",
        "eventTime": at.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "eventSource": "kinesis.amazonaws.com",
        "eventName": "UpdateShardCount",
        "requestParameters": {"streamName": STREAM, "targetShardCount": 8, "scalingType": "UNIFORM_SCALING"},
        "eventType": "AwsApiCall",
    }
    return {
        "EventId": f"e-{at.timestamp()}",
        "EventName": "UpdateShardCount",
        "ReadOnly": "false",
        "EventTime": at,
        "EventSource": "kinesis.amazonaws.com",
        "Username": "ops-script",
        "Resources": [{"ResourceType": "AWS::Kinesis::Stream", "ResourceName": STREAM}],
        "CloudTrailEvent": json.dumps(record),
    }


def test_a_scale_in_keeps_two_daily_scalings_for_scale_up_counting_other_peoples_reshards(
    aws, handler, invoke, api_calls, monkeypatch
):
    # Given the quiet stream, and 8 reshards by a script in the last 24 h that only CloudTrail knows of
    given_a_quiet_stream(aws)
    now = datetime.now(UTC)
    events = [cloudtrail_event(now - timedelta(hours=3 + 2 * i)) for i in range(8)]
    real_client = handler.client
    stubs: list[Stubber] = []

    def client(service: str, **kwargs: Any) -> Any:
        made = real_client(service, **kwargs)
        if service == "cloudtrail":
            stub = Stubber(made)
            stub.add_response(
                "lookup_events",
                {"Events": events},
                {
                    "LookupAttributes": [{"AttributeKey": "EventName", "AttributeValue": "UpdateShardCount"}],
                    "StartTime": ANY,
                    "EndTime": ANY,
                    "MaxResults": 50,
                },
            )
            stub.activate()
            stubs.append(stub)
        return made

    monkeypatch.setattr(handler, "client", client)
    # When the alarm fires
    result = invoke(alarm_event(UNDER_ALARM, metric="IncomingBytes"))
    # Then a ninth scaling would leave one for a scale-up: blocked, with AWS's count and where it came from
    assert result["status"] == "blocked"
    assert only(result["steps"])["detail"] == (
        "scale-up-reserve: after this scale-in 9 of AWS's 10 scalings in 24 h would be used, leaving 1; 2 are kept "
        "for scaling up"
    )
    assert (
        "[pass] aws-daily-scalings: 8 of AWS's 10 scalings used in the last 24 h (the larger of the remediator's "
        "audit (0) and CloudTrail's UpdateShardCount events (8; it may lack the last ~15 min))"
    ) in only(aws.emails())["Message"]
    assert api_calls.kinesis_mutations() == []
    assert aws.shard_count(STREAM) == 8
    only(stubs).assert_no_pending_responses()
