"""Fleet alarms through the real handler against moto: a contributor (one stream) of a Metrics Insights alarm
changing state is handled exactly as that stream's own alarm: same plan, guardrails, audit rows and e-mail, one
change however often it is delivered, follow-through on the contributor's own state, and the resolution.

moto gaps: moto evaluates no Metrics Insights alarm and has no contributors, so the tests send the "CloudWatch
Alarm Contributor State Change" event CloudWatch would (shaped as AWS's sample in the CloudWatch user guide,
"Alarm events and EventBridge", Multi Time Series Alarm); and moto has no DescribeAlarmContributors, so the
follow-through's CloudWatch client answers it through botocore's Stubber, with the response shape of botocore's
model (the Stubber checks it).
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from botocore.stub import Stubber

from tests.fakes import ACCOUNT, REGION, alarm_event
from tests.integration.support import (
    PREFIX,
    SATURATED,
    STREAM,
    WRITE_ALARM,
    decisions,
    only,
    policy,
)

FLEET_STREAM = "clicks"
NEEDS_EIGHT = {"bytes_per_second": 4_500_000, "records_per_second": 500, "throttled": 50}
CONTRIBUTOR_ID = "6d442278dba546f6"
AT = "2026-11-26T02:59:00.000+0000"


def fleet_policy(name: str = FLEET_STREAM, **kwargs: Any) -> dict[str, Any]:
    return policy(name, **kwargs) | {"alarms": "fleet"}


def fleet_alarm(*raw_policies: dict[str, Any], symptom: str = "write-throttling") -> tuple[str, str]:
    """(name, query) of the fleet alarm the stack makes for `symptom` over these policies."""
    from remediator.core.fleet import fleet_alarms
    from remediator.core.registry import REGISTRY

    policies = {raw["name"]: REGISTRY.parse_stream_policy(raw) for raw in raw_policies}
    found = only([a for a in fleet_alarms(policies, PREFIX) if a.thresholds.symptom == symptom])
    return found.name, found.query


def contributor_event(
    alarm: str,
    stream: str | None,
    *,
    query: str,
    state: str = "ALARM",
    timestamp: str = AT,
    account: str = ACCOUNT,
) -> dict[str, Any]:
    """A "CloudWatch Alarm Contributor State Change" as AWS's sample has it (no previousState)."""
    return {
        "version": "0",
        "id": "6d226bbc-07f0-9a31-3359-1736968f8ded",
        "detail-type": "CloudWatch Alarm Contributor State Change",
        "source": "aws.cloudwatch",
        "account": account,
        "time": "2026-11-26T02:59:10Z",
        "region": REGION,
        "resources": [f"arn:aws:cloudwatch:{REGION}:{account}:alarm:{alarm}"],
        "detail": {
            "alarmName": alarm,
            "alarmContributor": {
                "id": CONTRIBUTOR_ID,
                "attributes": {"StreamName": stream} if stream is not None else {},
            },
            "state": {
                "value": state,
                "reason": "Threshold Crossed: 2 datapoints were greater than or equal to the threshold (1.0).",
                "timestamp": timestamp,
            },
            "configuration": {
                "metrics": [{"id": "streams", "expression": query, "returnData": True, "period": 60}],
                "description": "Kinesis Remediator fleet alarm",
            },
        },
    }


def unit(alarm: str, stream: str = FLEET_STREAM) -> str:
    return f"{alarm}[{stream}]"


TIMES = re.compile(r"\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d(\.\d+)?(\+00:00|Z)?|\b\d\d:\d\d(:\d\d)?\b")


def untimed(value: Any) -> Any:
    """`value` with every clock time blanked (the two invocations run a moment apart)."""
    if isinstance(value, str):
        return TIMES.sub("<time>", value)
    return json.loads(TIMES.sub("<time>", json.dumps(value)))


def as_orders(value: Any, alarm: str) -> Any:
    """A fleet stream's rows and e-mail, spelled as the per-stream stream's would be (to compare the two)."""
    text = json.dumps(value) if not isinstance(value, str) else value
    text = text.replace(unit(alarm), WRITE_ALARM).replace(FLEET_STREAM, STREAM)
    return untimed(json.loads(text) if not isinstance(value, str) else text)


STABLE_ROW_FIELDS = ("outcome", "mode", "action", "symptom", "reason", "plan", "parameters", "alarm_name", "stream")


@pytest.mark.parametrize("mode", ["dry-run", "enforce"])
def test_a_contributor_in_alarm_is_handled_as_the_streams_own_alarm(aws, invoke, api_calls, mode):
    # Given two saturated 2-shard streams under the same policy, one with per-stream alarms, one on a fleet alarm
    for name in (STREAM, FLEET_STREAM):
        aws.create_stream(name, 2)
        aws.push_traffic(name, **SATURATED)
    aws.put_policy(policy(STREAM, mode=mode))
    aws.put_policy(fleet_policy(mode=mode))
    alarm, query = fleet_alarm(fleet_policy(mode=mode))

    # When the per-stream stream's alarm fires, and the fleet alarm's contributor for the other stream does
    own = invoke(alarm_event(WRITE_ALARM, timestamp=AT))
    shared = invoke(contributor_event(alarm, FLEET_STREAM, query=query))

    # Then both get the same outcome, plan and steps (the fleet one under its unit name)
    assert own["status"] == ("applied" if mode == "enforce" else "dry-run")
    assert as_orders(shared, alarm) == untimed(own)
    # And the same audit rows
    rows = {name: sorted(aws.audit_rows(name), key=lambda r: r["sk"]) for name in (STREAM, FLEET_STREAM)}
    assert [r["outcome"] for r in rows[FLEET_STREAM]] == [r["outcome"] for r in rows[STREAM]]
    for mine, theirs in zip(rows[FLEET_STREAM], rows[STREAM], strict=True):
        assert as_orders({k: mine.get(k) for k in STABLE_ROW_FIELDS}, alarm) == untimed(
            {k: theirs.get(k) for k in STABLE_ROW_FIELDS}
        )
    assert rows[FLEET_STREAM][0]["alarm_name"] == unit(alarm)
    # And the same e-mail
    emails = aws.emails()
    assert len(emails) == 2
    by_stream = {FLEET_STREAM if FLEET_STREAM in e["Message"] else STREAM: e for e in emails}
    assert as_orders(by_stream[FLEET_STREAM]["Subject"], alarm) == untimed(by_stream[STREAM]["Subject"])
    assert as_orders(by_stream[FLEET_STREAM]["Message"], alarm) == untimed(by_stream[STREAM]["Message"])
    # And in enforce, each stream was resharded once (2 -> 4); in dry-run neither was touched
    expected = 4 if mode == "enforce" else 2
    assert (aws.shard_count(STREAM), aws.shard_count(FLEET_STREAM)) == (expected, expected)


def test_a_contributor_delivered_twice_changes_the_stream_once(aws, invoke, api_calls):
    # Given a saturated fleet stream in enforce mode
    aws.create_stream(FLEET_STREAM, 2)
    aws.push_traffic(FLEET_STREAM, **SATURATED)
    aws.put_policy(fleet_policy(mode="enforce"))
    alarm, query = fleet_alarm(fleet_policy(mode="enforce"))
    event = contributor_event(alarm, FLEET_STREAM, query=query)
    again = contributor_event(alarm, FLEET_STREAM, query=query)
    again["id"] = "00000000-0000-0000-0000-000000000000"

    # When the same contributor state change arrives twice
    first = invoke(event)
    second = invoke(again)

    # Then it acts once: one reshard, one audit row, one e-mail
    assert first["status"] == "applied"
    assert second == first
    assert api_calls.kinesis_mutations() == ["UpdateShardCount"]
    assert only(aws.audit_rows(FLEET_STREAM))["outcome"] == "applied"
    assert only(aws.emails())["Subject"].startswith("[APPLIED] ")


def test_two_contributors_changing_at_the_same_time_are_two_units_of_work(aws, invoke, api_calls):
    # Given two saturated fleet streams on the same fleet alarm
    for name in (STREAM, FLEET_STREAM):
        aws.create_stream(name, 2)
        aws.push_traffic(name, **SATURATED)
        aws.put_policy(fleet_policy(name, mode="enforce"))
    alarm, query = fleet_alarm(fleet_policy(STREAM, mode="enforce"), fleet_policy(mode="enforce"))

    # When both contributors go to ALARM in the same evaluation (same state timestamp)
    results = [invoke(contributor_event(alarm, name, query=query)) for name in (STREAM, FLEET_STREAM)]

    # Then each stream is remedied: the idempotency key is the contributor's stream and the state change's time
    assert [r["status"] for r in results] == ["applied", "applied"]
    updated = [p["StreamARN"].rsplit("/", 1)[1] for p in api_calls.params("kinesis", "UpdateShardCount")]
    assert updated == [STREAM, FLEET_STREAM]
    assert (aws.shard_count(STREAM), aws.shard_count(FLEET_STREAM)) == (4, 4)


def test_a_contributor_back_to_ok_resolves_and_cancels_its_follow_ups(aws, invoke, api_calls):
    # Given a fleet stream that needs 8 shards from 1, after its contributor's first step (a follow-up scheduled)
    aws.create_stream(FLEET_STREAM, 1)
    aws.push_traffic(FLEET_STREAM, **NEEDS_EIGHT)
    aws.put_policy(fleet_policy(mode="enforce"))
    alarm, query = fleet_alarm(fleet_policy(mode="enforce"))
    alarm_at = datetime.now(UTC) - timedelta(minutes=1)
    invoke(contributor_event(alarm, FLEET_STREAM, query=query, timestamp=stamp(alarm_at)))
    assert len(api_calls.params("scheduler", "CreateSchedule")) == 1

    # When the contributor goes back to OK (no previousState: a contributor is only ALARM or OK)
    result = invoke(contributor_event(alarm, FLEET_STREAM, query=query, state="OK", timestamp=stamp(datetime.now(UTC))))

    # Then the stream's resolution is handled: the pending follow-up cancelled, audited, and e-mailed
    assert result["status"] == "resolved"
    assert "1 pending follow-up(s) cancelled" in result["detail"]
    assert len(api_calls.params("scheduler", "DeleteSchedule")) == 1
    outcomes = [r["outcome"] for r in sorted(aws.audit_rows(FLEET_STREAM), key=lambda r: r["sk"])]
    assert outcomes == ["applied", "follow-up-scheduled", "resolved"]
    assert any(e["Subject"].startswith("[RESOLVED]") for e in aws.emails())


def stamp(at: datetime) -> str:
    return at.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "+0000"


def stub_contributors(handler: Any, alarm: str, in_alarm: list[tuple[str, datetime]]) -> Stubber:
    """The follow-through's CloudWatch client answers DescribeAlarmContributors (moto has none), in two pages."""
    client = handler.dependencies().follow_through.alarms._cloudwatch
    stubber = Stubber(client)
    pages = [in_alarm[:1], in_alarm[1:]] if len(in_alarm) > 1 else [in_alarm]
    for index, page in enumerate(pages):
        response: dict[str, Any] = {
            "AlarmContributors": [
                {
                    "ContributorId": f"c{position}",
                    "ContributorAttributes": {"StreamName": stream},
                    "StateReason": "Threshold Crossed",
                    "StateTransitionedTimestamp": since,
                }
                for position, (stream, since) in enumerate(page)
            ]
        }
        expected: dict[str, Any] = {"AlarmName": alarm}
        if index:
            expected["NextToken"] = "page-2"
        if index < len(pages) - 1:
            response["NextToken"] = "page-2"
        stubber.add_response("describe_alarm_contributors", response, expected)
    stubber.activate()
    return stubber


def test_a_follow_up_checks_the_contributor_and_continues_while_it_is_in_alarm(aws, invoke, api_calls, handler):
    # Given a fleet stream that needs 8 shards from 1, after its contributor's first step
    aws.create_stream(FLEET_STREAM, 1)
    aws.push_traffic(FLEET_STREAM, **NEEDS_EIGHT)
    aws.put_policy(fleet_policy(mode="enforce"))
    alarm, query = fleet_alarm(fleet_policy(mode="enforce"))
    alarm_at = datetime.now(UTC) - timedelta(minutes=1)
    invoke(contributor_event(alarm, FLEET_STREAM, query=query, timestamp=stamp(alarm_at)))
    follow_up = json.loads(only(api_calls.params("scheduler", "CreateSchedule"))["Target"]["Input"])
    assert follow_up["alarm_name"] == unit(alarm)

    # When the follow-up fires while CloudWatch lists the contributor in ALARM since then (on its second page)
    stubber = stub_contributors(handler, alarm, [("other", alarm_at), (FLEET_STREAM, alarm_at)])
    result = invoke(follow_up)

    # Then it asked for exactly that alarm's contributors, and took the next step (2 -> 4)
    stubber.assert_no_pending_responses()
    assert result["status"] == "applied"
    assert [p["TargetShardCount"] for p in api_calls.params("kinesis", "UpdateShardCount")] == [2, 4]
    assert api_calls.params("cloudwatch", "DescribeAlarms") == []


def test_a_follow_up_stops_when_the_contributor_is_no_longer_in_alarm(aws, invoke, api_calls, handler):
    # Given the first step of a fleet stream's remedy, its follow-up scheduled
    aws.create_stream(FLEET_STREAM, 1)
    aws.push_traffic(FLEET_STREAM, **NEEDS_EIGHT)
    aws.put_policy(fleet_policy(mode="enforce"))
    alarm, query = fleet_alarm(fleet_policy(mode="enforce"))
    alarm_at = datetime.now(UTC) - timedelta(minutes=1)
    invoke(contributor_event(alarm, FLEET_STREAM, query=query, timestamp=stamp(alarm_at)))
    follow_up = json.loads(only(api_calls.params("scheduler", "CreateSchedule"))["Target"]["Input"])

    # When it fires while only another stream of the same fleet alarm is in ALARM
    stub_contributors(handler, alarm, [("other", alarm_at)])
    result = invoke(follow_up)

    # Then no second change is made (the whole alarm is still in ALARM, but this stream is not), and it is audited
    assert result["status"] == "ignored"
    assert result["detail"] == "follow-through 1 stopped: the alarm is OK"
    assert [p["TargetShardCount"] for p in api_calls.params("kinesis", "UpdateShardCount")] == [2]
    assert decisions(sorted(aws.audit_rows(FLEET_STREAM), key=lambda r: r["sk"]))[-1]["outcome"] == "ignored"


# --- bad cases ---------------------------------------------------------------------------------------------------


def test_a_contributor_whose_stream_has_no_policy_is_ignored_and_audited(aws, invoke, api_calls):
    # Given a fleet alarm over two streams, one of which has no deployed policy (removed since)
    aws.create_stream(FLEET_STREAM, 2)
    aws.put_policy(fleet_policy())
    alarm, query = fleet_alarm(fleet_policy(), fleet_policy("ghost"))

    # When the contributor for the stream without a policy goes to ALARM
    result = invoke(contributor_event(alarm, "ghost", query=query))

    # Then nothing is read or changed for it, and the audit (under that stream) says why
    assert result["status"] == "ignored"
    assert "no valid policy for stream 'ghost'" in result["detail"]
    assert only(aws.audit_rows("ghost"))["outcome"] == "ignored"
    assert api_calls.kinesis_mutations() == [] and aws.emails() == []


def test_a_contributor_whose_stream_keeps_per_stream_alarms_is_ignored_and_audited(aws, invoke, api_calls):
    # Given a stream whose deployed policy keeps per-stream alarms, and a fleet alarm that (wrongly) reports it
    aws.create_stream(STREAM, 2)
    aws.push_traffic(STREAM, **SATURATED)
    aws.put_policy(policy(STREAM, mode="enforce"))
    alarm, query = fleet_alarm(fleet_policy(STREAM, mode="enforce"))

    # When its contributor state change arrives
    result = invoke(contributor_event(alarm, STREAM, query=query))

    # Then it is not acted on, and the audit row names the reason
    assert result["status"] == "ignored"
    assert "keeps per-stream alarms" in result["detail"]
    assert "keeps per-stream alarms" in only(aws.audit_rows(STREAM))["reason"]
    assert api_calls.kinesis_mutations() == []


def test_a_fleet_alarm_of_other_thresholds_is_not_trusted(aws, invoke, api_calls):
    # Given a fleet stream whose deployed policy has a write-throttling threshold of 5 records
    aws.create_stream(FLEET_STREAM, 2)
    aws.push_traffic(FLEET_STREAM, **SATURATED)
    deployed = fleet_policy(mode="enforce") | {"detectors": {"write_throttling": {"threshold_records": 5}}}
    aws.put_policy(deployed)
    # And an alarm named as our fleet alarm for the default thresholds (a group this deployment does not make)
    alarm, query = fleet_alarm(fleet_policy(mode="enforce"))

    # When its contributor goes to ALARM
    result = invoke(contributor_event(alarm, FLEET_STREAM, query=query))

    # Then nothing is done, and the audit says it is not one of our fleet alarms for this stream
    assert result["status"] == "ignored"
    assert "is not one this deployment made" in result["detail"]
    assert api_calls.kinesis_mutations() == []


@pytest.mark.parametrize(
    ("case", "change", "reason"),
    [
        ("no StreamName attribute", {"stream": None}, "has no StreamName attribute"),
        ("a stream the query does not select", {"stream": "orders"}, "which its query does not select"),
        ("another account", {"account": "999999999999"}, "fleet alarms are made in the hub's own account and region"),
        ("not a fleet alarm's name", {"alarm": f"{PREFIX}{FLEET_STREAM}/write-throttling"}, "does not start with"),
    ],
)
def test_bad_contributor_events_are_ignored_without_reading_the_stream(aws, invoke, api_calls, case, change, reason):
    # Given a fleet stream
    aws.create_stream(FLEET_STREAM, 2)
    aws.put_policy(fleet_policy(mode="enforce"))
    alarm, query = fleet_alarm(fleet_policy(mode="enforce"))
    event = contributor_event(
        change.get("alarm", alarm),
        change.get("stream", FLEET_STREAM),
        query=query,
        account=change.get("account", ACCOUNT),
    )

    # When the bad contributor state change arrives
    result = invoke(event)

    # Then it is ignored, the stream is not read or changed, and no one is e-mailed
    assert result["status"] == "ignored", case
    assert reason in result["detail"], case
    assert api_calls.operations("kinesis") == []
    assert aws.emails() == []


def test_a_malformed_contributor_event_is_ignored(aws, invoke):
    # Given a contributor state change without its contributor
    alarm, query = fleet_alarm(fleet_policy())
    event = contributor_event(alarm, FLEET_STREAM, query=query)
    del event["detail"]["alarmContributor"]

    # When it arrives
    result = invoke(event)

    # Then it is ignored as unparseable
    assert (result["status"], result["detail"]) == (
        "ignored",
        "not a valid CloudWatch Alarm Contributor State Change event",
    )


def test_the_fleet_alarms_own_state_change_is_ignored(aws, invoke, api_calls):
    # Given a fleet stream
    aws.create_stream(FLEET_STREAM, 2)
    aws.put_policy(fleet_policy(mode="enforce"))
    alarm, _ = fleet_alarm(fleet_policy(mode="enforce"))

    # When the fleet alarm as a whole goes to ALARM ("1 out of 1 time series evaluated to ALARM")
    result = invoke(alarm_event(alarm, stream=None))

    # Then it is ignored: the contributors' own state changes are what the remediator acts on
    assert result["status"] == "ignored"
    assert "its contributors' (each stream's) state changes" in result["detail"]
    assert api_calls.operations("kinesis") == []
