"""Follow-through through the real handler against moto: a remedy of several steps continues while the alarm
stays in ALARM, each step its own audited unit of work; and the "resolved" e-mail when the alarm clears.

moto gap: moto implements EventBridge Scheduler's CreateSchedule/GetSchedule/DeleteSchedule but never fires a
schedule. `fire` stands in for Scheduler: it reads the due schedule's stored Input and invokes the handler with
it, exactly the event AWS would deliver to the target. moto also never puts a resharded stream in UPDATING; the
test that needs it sets the stream's status in moto's backend.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from botocore.exceptions import ClientError
from moto.kinesis.models import kinesis_backends
from remediator.core.follow_through import SETTLE

from tests.fakes import ACCOUNT, REGION, alarm_event
from tests.integration.conftest import SCHEDULE_PREFIX, SCHEDULER_ROLE, FakeContext
from tests.integration.support import STREAM, WRITE_ALARM, decisions, only, parameters_of, plan_of, policy

# 1 shard at 4.5 MB/s: 4.5 / 0.6 -> 8 shards wanted, three doublings away.
NEEDS_EIGHT = {"bytes_per_second": 4_500_000, "records_per_second": 500, "throttled": 50}


def stamp(at: datetime) -> str:
    """A CloudWatch alarm state timestamp, as the alarm event spells it."""
    return at.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "+0000"


@pytest.fixture
def alarm_since(aws: Any) -> str:
    """The write-throttling alarm exists in moto and is in ALARM; returns the state change's timestamp."""
    cloudwatch = aws.client("cloudwatch")
    cloudwatch.put_metric_alarm(
        AlarmName=WRITE_ALARM,
        Namespace="AWS/Kinesis",
        MetricName="WriteProvisionedThroughputExceeded",
        Dimensions=[{"Name": "StreamName", "Value": STREAM}],
        Statistic="Sum",
        Period=60,
        EvaluationPeriods=1,
        Threshold=1,
        ComparisonOperator="GreaterThanThreshold",
    )
    set_alarm(aws, "ALARM")
    return stamp(datetime.now(UTC) - timedelta(minutes=1))


def set_alarm(aws: Any, state: str) -> None:
    aws.client("cloudwatch").set_alarm_state(AlarmName=WRITE_ALARM, StateValue=state, StateReason="set by the test")


def schedules(aws: Any) -> dict[str, dict[str, Any]]:
    """Our schedules in moto, by name, each as GetSchedule returns it."""
    scheduler = aws.client("scheduler")
    names = [s["Name"] for s in scheduler.list_schedules(NamePrefix=SCHEDULE_PREFIX)["Schedules"]]
    return {name: scheduler.get_schedule(Name=name) for name in names}


def fire(aws: Any, invoke: Any) -> dict[str, Any]:
    """Stand-in for EventBridge Scheduler (moto never fires): invoke the handler with the one due schedule's Input."""
    name, schedule = only(list(schedules(aws).items()))
    result: dict[str, Any] = invoke(json.loads(schedule["Target"]["Input"]))
    with pytest.raises(ClientError, match="ResourceNotFoundException"):
        aws.client("scheduler").get_schedule(Name=name)  # consumed by the follow-up
    return result


def in_order(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Audit rows oldest first; a trigger's follow-up row after its step's row (recorded after it)."""
    return sorted(rows, key=lambda r: (r["at"], r["outcome"] == "follow-up-scheduled"))


def applied_steps(aws: Any) -> list[tuple[int, int, int]]:
    rows = in_order(aws.audit_rows(STREAM))
    return [
        (p["current_shards"], p["target_shards"], p["desired_shards"])
        for p in (parameters_of(r) for r in rows if r["outcome"] == "applied")
    ]


def resolved_event(since: str, ok_at: datetime) -> dict[str, Any]:
    event = alarm_event(WRITE_ALARM, state="OK", previous="ALARM", timestamp=stamp(ok_at))
    event["detail"]["previousState"]["timestamp"] = since
    return event


def test_a_one_to_eight_need_reaches_eight_in_three_audited_steps(aws, invoke, api_calls, alarm_since):
    # Given a 1-shard stream whose load needs 8 shards, under an enforce policy, and its alarm in ALARM
    aws.create_stream(STREAM, 1)
    aws.put_policy(policy(mode="enforce"))
    aws.push_traffic(STREAM, **NEEDS_EIGHT)

    # When the alarm's state change arrives
    first = invoke(alarm_event(WRITE_ALARM, timestamp=alarm_since))

    # Then one call's reach is applied (1 -> 2), and a one-time follow-up schedule is created for it
    assert first["status"] == "applied"
    assert aws.shard_count(STREAM) == 2
    name, schedule = only(list(schedules(aws).items()))
    assert name.startswith(SCHEDULE_PREFIX) and name.endswith("-1")
    assert schedule["ScheduleExpression"].startswith("at(")
    assert schedule["FlexibleTimeWindow"] == {"Mode": "OFF"}
    assert schedule["ActionAfterCompletion"] == "DELETE"
    assert schedule["Target"]["Arn"] == FakeContext.invoked_function_arn
    assert schedule["Target"]["RoleArn"] == SCHEDULER_ROLE
    assert json.loads(schedule["Target"]["Input"]) == {
        "source": "kinesis-remediator.follow-through",
        "version": 1,
        "alarm_name": WRITE_ALARM,
        "stream": STREAM,
        "symptom": "write-throttling",
        "state_timestamp": alarm_since,
        "attempt": 1,
        "account": ACCOUNT,
        "region": REGION,
    }
    due = datetime.strptime(schedule["ScheduleExpression"], "at(%Y-%m-%dT%H:%M:%S)").replace(tzinfo=UTC)
    assert timedelta(minutes=1) < due - datetime.now(UTC) <= timedelta(minutes=3)

    # When the schedule fires with the stream ACTIVE again and the alarm still in ALARM, twice
    set_alarm(aws, "ALARM")
    second = fire(aws, invoke)
    set_alarm(aws, "ALARM")
    third = fire(aws, invoke)

    # Then the stream reached 8 in three steps (1 -> 2 -> 4 -> 8), each one UpdateShardCount, each audited
    assert (second["status"], third["status"]) == ("applied", "applied")
    assert [p["TargetShardCount"] for p in api_calls.params("kinesis", "UpdateShardCount")] == [2, 4, 8]
    assert aws.shard_count(STREAM) == 8
    assert applied_steps(aws) == [(1, 2, 8), (2, 4, 8), (4, 8, 8)]
    # And each follow-up checked the alarm first (exactly our alarm), and each schedule was created once and consumed
    assert (
        api_calls.params("cloudwatch", "DescribeAlarms")
        == [{"AlarmNames": [WRITE_ALARM], "AlarmTypes": ["MetricAlarm"]}] * 2
    )
    assert [p["Name"][-2:] for p in api_calls.params("scheduler", "CreateSchedule")] == ["-1", "-2", "-3"]
    assert [p["Name"][-2:] for p in api_calls.params("scheduler", "DeleteSchedule")] == ["-1", "-2"]
    # And the last step reached what was needed: only a recheck is scheduled, once the change can show in the alarm
    # (SETTLE + 4 minutes: the write-throttling alarm needs 4 clean minutes of 5 to go OK), reading the minutes after
    rows = in_order(aws.audit_rows(STREAM))
    assert [r["outcome"] for r in rows] == [
        "applied",
        "follow-up-scheduled",
        "applied",
        "follow-up-scheduled",
        "applied",
        "follow-up-scheduled",
    ]
    recheck = parameters_of(rows[-1])
    assert "reshard reached its target" in rows[-1]["reason"]
    due, since = datetime.fromisoformat(recheck["at"]), datetime.fromisoformat(recheck["evidence_since"])
    assert timedelta(minutes=4) < due - since <= timedelta(minutes=4, seconds=1)
    assert timedelta(minutes=1) < since - datetime.now(UTC) <= SETTLE  # the settle time after the step
    # And when it fires with the alarm back to OK, it ends quietly: no plan, no call, nothing more scheduled
    set_alarm(aws, "OK")
    last = fire(aws, invoke)
    assert last["status"] == "ignored" and "the alarm is OK" in last["detail"]
    assert len(api_calls.params("kinesis", "UpdateShardCount")) == 3
    assert schedules(aws) == {}
    # And the follow-ups were not held by the cooldown their own chain started; every other guardrail was checked
    cooldown = next(g for g in plan_of(rows[2])["actions"][0]["guardrails"] if g["name"] == "cooldown")
    assert cooldown["passed"]
    assert "follow-through: the 1 reshard step(s) this alarm state change applied" in cooldown["detail"]
    budget = next(g for g in plan_of(rows[4])["actions"][0]["guardrails"] if g["name"] == "daily-budget")
    assert budget["detail"] == "2 of 4 reshard actions used in the last 24 h"
    # And each e-mail of a step with more to do says when the plan is made again
    bodies = [e["Message"] for e in aws.emails()]
    assert sum("Follow-through: reshard applied one step of several." in body for body in bodies) == 2


def test_a_follow_up_delivered_twice_makes_one_change(aws, invoke, api_calls, alarm_since):
    # Given the first step of a 1 -> 8 remedy, and its follow-up's event
    aws.create_stream(STREAM, 1)
    aws.put_policy(policy(mode="enforce"))
    aws.push_traffic(STREAM, **NEEDS_EIGHT)
    invoke(alarm_event(WRITE_ALARM, timestamp=alarm_since))
    event = json.loads(only(list(schedules(aws).values()))["Target"]["Input"])

    # When the follow-up is delivered twice (Scheduler and Lambda retry: at-least-once)
    once = invoke(event)
    twice = invoke(event)

    # Then the second delivery returns the first one's outcome and makes no change (its own idempotency key)
    assert once == twice
    assert [p["TargetShardCount"] for p in api_calls.params("kinesis", "UpdateShardCount")] == [2, 4]


def test_the_chain_stops_when_the_alarm_is_ok_by_the_time_the_follow_up_fires(aws, invoke, api_calls, alarm_since):
    # Given the first step of a 1 -> 8 remedy, with its follow-up scheduled
    aws.create_stream(STREAM, 1)
    aws.put_policy(policy(mode="enforce"))
    aws.push_traffic(STREAM, **NEEDS_EIGHT)
    invoke(alarm_event(WRITE_ALARM, timestamp=alarm_since))

    # When the alarm is OK (its OK event not yet handled) and the follow-up fires
    set_alarm(aws, "OK")
    result = fire(aws, invoke)

    # Then no second change is made, nothing more is scheduled, and the audit says why
    assert result["status"] == "ignored"
    assert result["detail"] == "follow-through 1 stopped: the alarm is OK"
    assert [p["TargetShardCount"] for p in api_calls.params("kinesis", "UpdateShardCount")] == [2]
    assert schedules(aws) == {}
    last = max(aws.audit_rows(STREAM), key=lambda r: r["sk"])
    assert (last["outcome"], last["reason"]) == ("ignored", "follow-through 1 stopped: the alarm is OK")


def test_the_chain_stops_when_the_follow_ups_are_used_up(aws, invoke, api_calls, alarm_since):
    # Given a 1-shard stream that needs 8, with its alarm in ALARM
    aws.create_stream(STREAM, 1)
    aws.put_policy(policy(mode="enforce"))
    aws.push_traffic(STREAM, **NEEDS_EIGHT)
    from remediator.core.follow_through import MAX_FOLLOW_UPS, FollowUp

    # When the last follow-up the bound allows fires (built as its schedule's Input would be)
    last = FollowUp(
        alarm_name=WRITE_ALARM,
        stream=STREAM,
        symptom="write-throttling",
        state_timestamp=alarm_since,
        attempt=MAX_FOLLOW_UPS,
        account=ACCOUNT,
        region=REGION,
    )
    result = invoke(last.model_dump())

    # Then it still takes its step (every guardrail passed), but schedules no further follow-up, and says so
    assert result["status"] == "applied"
    assert api_calls.params("scheduler", "CreateSchedule") == []
    assert schedules(aws) == {}
    assert [r["outcome"] for r in aws.audit_rows(STREAM)] == ["applied"]
    body = only(aws.emails())["Message"]
    assert f"but the {MAX_FOLLOW_UPS} follow-ups of this alarm state change are used up" in body


def test_the_chain_stops_when_a_guardrail_time_does_not_lift_blocks(aws, invoke, api_calls, alarm_since):
    # Given a 1 -> 8 remedy under a policy that allows one reshard a day
    aws.create_stream(STREAM, 1)
    aws.put_policy(policy(mode="enforce", daily_budget=1))
    aws.push_traffic(STREAM, **NEEDS_EIGHT)
    invoke(alarm_event(WRITE_ALARM, timestamp=alarm_since))

    # When the follow-up fires with the alarm still in ALARM
    set_alarm(aws, "ALARM")
    result = fire(aws, invoke)

    # Then the daily budget blocks the next step, and no further follow-up is scheduled
    assert result["status"] == "blocked"
    assert result["steps"][0]["detail"] == "daily-budget: 1 of 1 reshard actions used in the last 24 h"
    assert [p["TargetShardCount"] for p in api_calls.params("kinesis", "UpdateShardCount")] == [2]
    assert schedules(aws) == {}
    assert [r["outcome"] for r in decisions(in_order(aws.audit_rows(STREAM)))] == [
        "applied",
        "blocked",
    ]


def test_a_stream_still_updating_is_polled_then_the_step_is_taken(aws, invoke, api_calls, alarm_since):
    # Given the first step of a 1 -> 8 remedy, and the stream still UPDATING when the follow-up fires
    aws.create_stream(STREAM, 1)
    aws.put_policy(policy(mode="enforce"))
    aws.push_traffic(STREAM, **NEEDS_EIGHT)
    invoke(alarm_event(WRITE_ALARM, timestamp=alarm_since))
    stream = kinesis_backends[ACCOUNT][REGION].streams[STREAM]
    stream.status = "UPDATING"  # moto never reports UPDATING by itself

    # When the follow-up fires
    polled = fire(aws, invoke)

    # Then the step is blocked by stream-active only, and a poll is scheduled (the next attempt)
    assert polled["status"] == "blocked"
    assert polled["steps"][0]["detail"] == "stream-active: stream status is UPDATING"
    poll = only(list(schedules(aws)))
    assert poll.endswith("-2")

    # When the stream is ACTIVE again and the poll fires
    stream.status = "ACTIVE"
    taken = fire(aws, invoke)

    # Then the step is taken
    assert taken["status"] == "applied"
    assert [p["TargetShardCount"] for p in api_calls.params("kinesis", "UpdateShardCount")] == [2, 4]


def test_back_to_ok_cancels_the_pending_follow_up_and_emails_what_was_done(aws, invoke, api_calls, alarm_since):
    # Given two steps of a 1 -> 8 remedy applied, the second follow-up pending
    aws.create_stream(STREAM, 1)
    aws.put_policy(policy(mode="enforce"))
    aws.push_traffic(STREAM, **NEEDS_EIGHT)
    invoke(alarm_event(WRITE_ALARM, timestamp=alarm_since))
    set_alarm(aws, "ALARM")
    fire(aws, invoke)
    pending = only(list(schedules(aws)))
    aws.emails()  # the two step e-mails, read and left aside
    aws.client("sqs").purge_queue(QueueUrl=aws.mailbox_url)

    # When the alarm goes back to OK, 12 min 30 s after it went to ALARM
    set_alarm(aws, "OK")
    ok_at = datetime.strptime(alarm_since, "%Y-%m-%dT%H:%M:%S.%f%z") + timedelta(minutes=12, seconds=30)
    result = invoke(resolved_event(alarm_since, ok_at))

    # Then the pending follow-up is deleted, nothing is changed, and the outcome is audited as resolved
    assert result["status"] == "resolved"
    assert schedules(aws) == {}
    assert [p["Name"] for p in api_calls.params("scheduler", "DeleteSchedule")][-1] == pending
    assert [p["TargetShardCount"] for p in api_calls.params("kinesis", "UpdateShardCount")] == [2, 4]
    row = max(aws.audit_rows(STREAM), key=lambda r: r["sk"])
    assert row["outcome"] == "resolved"
    assert parameters_of(row)["recovery_seconds"] == 750
    assert parameters_of(row)["applied"] == 2
    # And the stream's recipients get a short e-mail: what was done, and how long recovery took
    email = only(aws.emails())
    assert email["Subject"] == "[RESOLVED] orders: write-throttling back to OK after 12 min 30 s"
    lines = email["Message"].splitlines()
    assert lines[0] == "Kinesis Remediator: resolved. The alarm is back to OK."
    assert "Recovery:  12 min 30 s from ALARM to OK" in lines
    assert "What was done (2 step(s) applied while the alarm was in ALARM, from the audit table):" in lines
    steps = [line for line in lines if line.startswith("  1. ") or line.startswith("  2. ")]
    assert [line.split("UTC  ")[1] for line in steps] == ["reshard 1 -> 2 shards", "reshard 2 -> 4 shards"]
    assert "Follow-through: 1 pending follow-up(s) cancelled: the alarm no longer needs them." in lines


def test_back_to_ok_without_an_action_sends_nothing(aws, invoke, api_calls, alarm_since):
    # Given a dry-run stream whose alarm fired (a plan e-mailed, nothing applied)
    aws.create_stream(STREAM, 1)
    aws.put_policy(policy())
    aws.push_traffic(STREAM, **NEEDS_EIGHT)
    invoke(alarm_event(WRITE_ALARM, timestamp=alarm_since))
    assert schedules(aws) == {}  # a dry run has nothing to follow through
    aws.client("sqs").purge_queue(QueueUrl=aws.mailbox_url)

    # When the alarm goes back to OK
    result = invoke(resolved_event(alarm_since, datetime.now(UTC)))

    # Then no e-mail is sent and nothing is audited for it
    assert result["status"] == "ignored"
    assert result["detail"] == "alarm back to OK with nothing applied since it went to ALARM: no e-mail"
    assert aws.emails() == []
    assert [r["outcome"] for r in aws.audit_rows(STREAM)] == ["dry-run"]


@pytest.mark.parametrize(
    "change",
    [
        pytest.param({"attempt": 0}, id="attempt-0"),
        pytest.param({"unexpected": "field"}, id="extra-field"),
        pytest.param({"alarm_name": None}, id="no-alarm"),
    ],
)
def test_a_follow_up_payload_that_does_not_parse_is_ignored(aws, invoke, api_calls, alarm_since, change):
    # Given a stream that would be resharded
    aws.create_stream(STREAM, 1)
    aws.put_policy(policy(mode="enforce"))
    aws.push_traffic(STREAM, **NEEDS_EIGHT)
    event = {
        "source": "kinesis-remediator.follow-through",
        "version": 1,
        "alarm_name": WRITE_ALARM,
        "stream": STREAM,
        "symptom": "write-throttling",
        "state_timestamp": alarm_since,
        "attempt": 1,
        "account": ACCOUNT,
        "region": REGION,
    } | change

    # When the handler receives it
    result = invoke(event)

    # Then it is ignored (logged), and nothing is called
    assert result["status"] == "ignored"
    assert result["detail"] == "not a valid follow-through event"
    assert api_calls.kinesis_mutations() == []


def test_a_follow_up_naming_another_stream_than_its_alarm_is_ignored(aws, invoke, api_calls, alarm_since):
    # Given a stream that would be resharded, and a follow-up whose stream disagrees with its alarm's name
    aws.create_stream("payments", 1)
    aws.put_policy(policy(name="payments", mode="enforce"))
    aws.push_traffic("payments", **NEEDS_EIGHT)
    event = {
        "source": "kinesis-remediator.follow-through",
        "alarm_name": WRITE_ALARM,
        "stream": "payments",
        "symptom": "write-throttling",
        "state_timestamp": alarm_since,
        "attempt": 1,
        "account": ACCOUNT,
        "region": REGION,
    }

    # When the handler receives it
    result = invoke(event)

    # Then it is ignored and touches nothing
    assert result["status"] == "ignored"
    assert api_calls.kinesis_mutations() == []
    assert api_calls.params("cloudwatch", "DescribeAlarms") == []
