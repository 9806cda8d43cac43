"""Dry-run (the default mode): the plan is e-mailed and audited, and nothing in AWS changes."""

from __future__ import annotations

import pytest

from tests.fakes import GUARDRAIL_ORDER, alarm_event
from tests.integration.support import (
    ARN,
    ESTIMATE,
    SATURATED,
    STREAM,
    WRITE_ALARM,
    alarm,
    only,
    parameters_of,
    plan_of,
    policy,
    update_command,
)


def test_saturated_stream_in_dry_run_is_planned_emailed_and_audited_but_not_changed(aws, invoke, api_calls):
    # Given a 2-shard stream at 95 % of its write capacity, under a policy with no mode (so dry-run)
    aws.create_stream(STREAM, 2)
    aws.put_policy(policy())
    aws.push_traffic(STREAM, **SATURATED)

    # When its write-throttling alarm fires
    result = invoke(alarm_event(WRITE_ALARM))

    # Then the result is a dry-run of a 2 -> 4 reshard
    assert result["status"] == "dry-run"
    assert result["stream"] == STREAM
    assert result["symptom"] == "write-throttling"
    assert result["steps"] == [
        {
            "action": "reshard",
            "outcome": "dry-run",
            "detail": "peak write utilisation 95%; "
            + ESTIMATE.format(n=500, mb="1.90", rec=501)
            + "; 4 shards would put that estimated peak at 48% of capacity (target 60%)",
        }
    ]
    assert result["plan"]["mode"] == "dry-run"
    assert result["plan"]["diagnosis"]["cause"] == "shards-saturated"
    # And nothing changed: no mutating Kinesis call was made, and the stream still has 2 shards
    assert api_calls.kinesis_mutations() == []
    assert "UpdateShardCount" not in api_calls.operations()
    # (the stream's state, and the account's shard quota for the reshard's check)
    assert set(api_calls.operations("kinesis")) == {"DescribeStreamSummary", "DescribeLimits"}
    assert aws.shard_count(STREAM) == 2
    # And every call was a read, the audit/idempotency bookkeeping, or the e-mail
    assert {(c.service, c.operation) for c in api_calls.calls} <= {
        ("kinesis", "DescribeStreamSummary"),
        ("kinesis", "DescribeLimits"),
        ("cloudtrail", "LookupEvents"),
        ("cloudwatch", "GetMetricData"),
        ("ssm", "GetParameter"),
        ("dynamodb", "Query"),
        ("dynamodb", "PutItem"),
        ("dynamodb", "UpdateItem"),
        ("sns", "Publish"),
    }
    assert {c.params["TableName"] for c in api_calls.calls if c.service == "dynamodb"} == {
        "audit",
        "idempotency",
    }
    assert only(api_calls.params("sns", "Publish"))["TopicArn"] == aws.topic_arn
    # And CloudWatch was asked for exactly the series the write-throttling symptom declares
    queries = only(api_calls.params("cloudwatch", "GetMetricData"))["MetricDataQueries"]
    assert [q["Id"] for q in queries] == ["incoming_bytes", "incoming_records", "write_throttled"]
    assert {d["Value"] for q in queries for d in q["MetricStat"]["Metric"]["Dimensions"]} == {STREAM}


def test_dry_run_email_carries_alarm_figures_exact_command_and_guardrails(aws, invoke):
    # Given a saturated stream in dry-run
    aws.create_stream(STREAM, 2)
    aws.put_policy(policy())
    aws.push_traffic(STREAM, **SATURATED)

    # When the alarm fires
    invoke(alarm_event(WRITE_ALARM))

    # Then exactly one e-mail goes out, tagged with the stream for the subscription filters
    email = only(aws.emails())
    assert email["Subject"] == "[DRY-RUN] orders: reshard 2 -> 4 shards (producers throttled)"
    assert email["MessageAttributes"]["stream"] == {"Type": "String", "Value": STREAM}
    body = email["Message"]
    lines = body.splitlines()
    # And its body says nothing was changed, names the alarm, and shows the evidence
    assert lines[0] == "Kinesis Remediator, DRY RUN: nothing was changed. This is what enforce mode would do."
    assert f"Alarm:     {WRITE_ALARM}" in lines
    assert "Stream:    orders (mode: dry-run)" in lines
    assert "  The shards are saturated: writes peaked at 95% of the stream's capacity (saturated from 80%)." in lines
    for figure in (
        "  open shards                2",
        "  peak write utilisation     95 %",
        "  average write utilisation  95 %",
        "  peak incoming bytes        1,900,000 B/s",
        "  peak incoming records      500 records/s",
        "  throttled writes           500 records",
    ):
        assert figure in lines
    # And only those: the symptom reads no iterator age, so the e-mail shows none
    assert not [line for line in lines if "iterator age" in line]
    # And the exact CLI command a person could run
    assert f"     Command: {update_command(4)}" in lines
    assert "  1. reshard 2 -> 4 shards [allowed]" in lines
    # And one line per guardrail, all passing
    guardrail_lines = [line.strip() for line in lines if line.strip().startswith(("[pass]", "[STOP]"))]
    assert [line.split(" ", 1)[1].split(":", 1)[0] for line in guardrail_lines] == GUARDRAIL_ORDER
    assert all(line.startswith("[pass]") for line in guardrail_lines)
    assert "       [pass] aws-step-limit: 2 -> 4; allowed range 1–4 (one call: half to double)" in lines
    assert "       [pass] daily-budget: 0 of 4 reshard actions used in the last 24 h" in lines
    assert lines[-1] == (
        "To let the remediator act on this stream, set `mode: enforce` for it in its policy file and redeploy."
    )


def test_dry_run_writes_one_audit_row_with_the_parameters(aws, invoke):
    # Given a saturated stream in an explicitly dry-run policy
    aws.create_stream(STREAM, 2)
    aws.put_policy(policy(mode="dry-run"))
    aws.push_traffic(STREAM, **SATURATED)

    # When the alarm fires
    invoke(alarm_event(WRITE_ALARM))

    # Then one audit row records the dry-run with the planned parameters and the whole plan
    row = only(aws.audit_rows(STREAM))
    assert row["outcome"] == "dry-run"
    assert row["mode"] == "dry-run"
    assert row["action"] == "reshard"
    assert row["alarm_name"] == WRITE_ALARM
    assert row["symptom"] == "write-throttling"
    assert (
        row["reason"]
        == "peak write utilisation 95%; "
        + ESTIMATE.format(n=500, mb="1.90", rec=501)
        + "; 4 shards would put that estimated peak at 48% of capacity (target 60%)"
    )
    assert parameters_of(row) == {"current_shards": 2, "desired_shards": 4, "target_shards": 4}
    plan = plan_of(row)
    assert plan["actions"][0]["cli_command"] == update_command(4)
    assert plan["blocked"] == []


def test_dry_run_step_blocked_by_a_guardrail_is_reported_as_blocked(aws, invoke, api_calls):
    # Given a saturated stream already at its policy's max_shards
    aws.create_stream(STREAM, 2)
    aws.put_policy(policy(max_shards=2))
    aws.push_traffic(STREAM, **SATURATED)

    # When the alarm fires
    result = invoke(alarm_event(WRITE_ALARM))

    # Then the dry-run reports the step as blocked, and still changes nothing
    assert result["status"] == "blocked"
    assert result["steps"][0]["outcome"] == "blocked"
    assert result["steps"][0]["detail"] == "policy-bounds: already at 2 shards, the most the bounds allow"
    assert only(aws.audit_rows(STREAM))["outcome"] == "blocked"
    email = only(aws.emails())
    assert email["Subject"] == "[DRY-RUN] orders: reshard 2 -> 2 shards (producers throttled)"
    assert "  1. reshard 2 -> 2 shards [BLOCKED]" in email["Message"].splitlines()
    assert api_calls.kinesis_mutations() == []
    assert aws.shard_count(STREAM) == 2


def test_dry_run_ignores_the_kill_switch_and_still_mails_the_plan(aws, invoke, api_calls):
    # Given the kill switch is engaged and the stream is in dry-run
    aws.create_stream(STREAM, 2)
    aws.put_policy(policy())
    aws.push_traffic(STREAM, **SATURATED)
    aws.set_kill_switch("on")

    # When the alarm fires
    result = invoke(alarm_event(WRITE_ALARM))

    # Then the plan is still e-mailed (dry-run makes no call the kill switch could stop)
    assert result["status"] == "dry-run"
    assert only(aws.emails())["Subject"].startswith("[DRY-RUN] ")
    assert api_calls.kinesis_mutations() == []


@pytest.mark.parametrize(
    "name",
    [
        pytest.param("click-stream-eu", id="hyphens"),
        pytest.param("orders-iterator-age", id="ends-in-a-symptom-id"),
        pytest.param("orders.eu_1", id="dot-and-underscore"),
    ],
)
def test_stream_name_with_hyphens_is_read_from_the_alarm_name(aws, invoke, name):
    # Given a stream whose name contains hyphens (or '.', '_'), even one that ends in another symptom's id
    aws.create_stream(name, 2)
    aws.put_policy(policy(name=name))
    aws.push_traffic(name, **SATURATED)

    # When its write-throttling alarm fires
    result = invoke(alarm_event(alarm(name, "write-throttling"), stream=name))

    # Then the whole name is the stream, and the symptom is the one the alarm is for
    assert result["status"] == "dry-run"
    assert result["stream"] == name
    assert result["symptom"] == "write-throttling"
    assert result["plan"]["actions"][0]["cli_command"] == update_command(
        4, ARN.replace("stream/orders", f"stream/{name}")
    )


def test_an_alarm_with_a_qualifier_the_policy_does_not_make_is_ignored(aws, invoke):
    # Given a saturated stream in dry-run, and an alarm named like its write-throttling alarm with a qualifier
    # and watching another resource (no StreamName dimension), which the stack never makes for this policy
    # (per-consumer alarms map back by their name: see test_lambda_consumers.py)
    aws.create_stream(STREAM, 2)
    aws.put_policy(policy())
    aws.push_traffic(STREAM, **SATURATED)

    # When that alarm fires
    result = invoke(alarm_event(f"{WRITE_ALARM}/orders-processor", stream=None))

    # Then its name maps back to the stream and symptom, but it is not one this deployment made: ignored
    assert (result["status"], result["stream"], result["symptom"]) == ("ignored", STREAM, "write-throttling")
    assert "is not one this deployment created" in result["detail"]
    assert result["plan"] is None
