"""`kinesis-remediator history` against moto: rows written by the real handler, read back as a table or JSON."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from botocore.stub import Stubber
from remediator import cli
from remediator.clients.audit import DynamoAuditLog

from tests.fakes import alarm_event
from tests.integration.support import SATURATED, STREAM, WRITE_ALARM, policy


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = cli.main(["history", "--stream", STREAM, *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def two_incidents(aws: Any, invoke: Any) -> None:
    """An applied reshard (2 -> 4), then a no-action advice."""
    aws.create_stream(STREAM, 2)
    aws.put_policy(policy(mode="enforce"))
    aws.push_traffic(STREAM, **SATURATED)
    invoke(alarm_event(WRITE_ALARM))
    # The same traffic is no longer "saturated" (from 100 %): throttled below saturation, so advice only.
    aws.put_policy(policy(mode="enforce", capacity={"saturated_at": 1.0}))
    invoke(alarm_event(WRITE_ALARM, timestamp="2026-11-26T03:30:00.000+0000"))


def test_history_prints_the_handlers_rows_newest_first(aws, invoke, capsys):
    # Given the real handler resharded a stream, then advised on a second alarm
    two_incidents(aws, invoke)

    # When the operator asks for its history
    code, out, err = run(capsys, "--audit-table", aws.audit_table)

    # Then both rows are printed as a table, newest first
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0] == f"Audit trail of stream '{STREAM}', newest first (2 row(s), table {aws.audit_table}):"
    header, rule, newest, oldest = lines[2:]
    assert header.split() == [
        "time",
        "(UTC)",
        "symptom",
        "mode",
        "action",
        "before",
        "->",
        "after",
        "outcome",
        "reason",
    ]
    assert set(rule) == {"-", " "}
    assert newest.split()[2:5] == ["write-throttling", "enforce", "-"]
    assert " no-action (e-mailed) " in newest
    # And the applied step shows what it changed, from the plan recorded with it
    assert oldest.split()[2:5] == ["write-throttling", "enforce", "reshard"]
    assert " open shards 2 -> 4 " in oldest
    assert " applied " in oldest
    assert " accepted by AWS: open shards 2 -> 4 (AWS's answer: current shards 2" in oldest


def test_history_json_has_every_row_whole(aws, invoke, capsys):
    # Given the same two incidents
    two_incidents(aws, invoke)

    # When the history is asked for as JSON
    code, out, err = run(capsys, "--audit-table", aws.audit_table, "--json")

    # Then one object lists the rows newest first, with the reason whole and the recorded plan
    assert code == 0, err
    document = json.loads(out)
    assert {k: document[k] for k in ("stream", "audit_table", "since", "order")} == {
        "stream": STREAM,
        "audit_table": aws.audit_table,
        "since": None,
        "order": "newest-first",
    }
    advice, applied = document["entries"]
    assert set(applied) == set(
        [
            "at",
            "symptom",
            "alarm_name",
            "mode",
            "action",
            "parameters",
            "changes",
            "outcome",
            "notified",
            "reason",
            "plan",
        ]
    )
    assert applied["action"] == "reshard"
    assert applied["outcome"] == "applied"
    assert applied["parameters"] == {"current_shards": 2, "desired_shards": 4, "target_shards": 4}
    assert applied["changes"] == [{"setting": "open shards", "before": 2, "after": 4}]
    assert applied["alarm_name"] == WRITE_ALARM
    assert applied["plan"]["actions"][0]["action"] == "reshard"
    assert advice["outcome"] == "no-action"
    assert advice["notified"] is True
    assert advice["action"] is None
    assert advice["changes"] == []
    # And the reason is not shortened (the table's is)
    assert len(advice["reason"]) > cli.REASON_WIDTH
    assert datetime.fromisoformat(advice["at"]) > datetime.fromisoformat(applied["at"])


def test_since_keeps_only_recent_rows(aws, capsys):
    # Given rows of 3 hours ago and of 10 minutes ago
    now = datetime.now(UTC)
    aws.seed_audit(STREAM, now - timedelta(hours=3), "applied", parameters={"current_shards": 1, "target_shards": 2})
    aws.seed_audit(STREAM, now - timedelta(minutes=10), "blocked", parameters={"current_shards": 2, "target_shards": 4})

    # When the history since 1 hour is asked for
    code, out, err = run(capsys, "--audit-table", aws.audit_table, "--since", "1h", "--json")

    # Then only the recent row is listed, and the window is stated
    assert code == 0, err
    document = json.loads(out)
    assert [entry["outcome"] for entry in document["entries"]] == ["blocked"]
    assert now - timedelta(hours=1, minutes=1) < datetime.fromisoformat(document["since"]) < now

    # And with 6h both are, newest first
    _, out, _ = run(capsys, "--audit-table", aws.audit_table, "--since", "6h", "--json")
    assert [entry["outcome"] for entry in json.loads(out)["entries"]] == ["blocked", "applied"]


def test_no_rows_says_so(aws, capsys):
    # Given a stream with no audit rows
    # When its history is asked for
    code, out, _ = run(capsys, "--audit-table", aws.audit_table, "--since", "30m")

    # Then it says there are none, and in which window and table
    assert code == 0
    assert out.startswith(f"No audit rows for stream '{STREAM}' since ")
    assert out.rstrip().endswith(f"UTC in {aws.audit_table}.")


TEMPLATE = {
    "Resources": {"Topic": {"Type": "AWS::SNS::Topic"}},
    "Outputs": {"AuditTableName": {"Value": "audit"}},
}


def test_the_audit_table_is_found_from_the_stack(aws, capsys):
    # Given a deployed stack whose AuditTableName output names the table, and a row in it
    aws.client("cloudformation").create_stack(StackName="KinesisRemediator", TemplateBody=json.dumps(TEMPLATE))
    aws.seed_audit(STREAM, datetime.now(UTC), "applied")

    # When history is run without --audit-table
    code, out, err = run(capsys)

    # Then it read the table the stack names
    assert code == 0, err
    assert "(1 row(s), table audit)" in out


def test_a_missing_stack_is_a_clear_error(aws, capsys):
    # Given no stack of that name
    # When history must find the table from it
    code, out, err = run(capsys, "--stack", "NoSuchStack")

    # Then it fails with exit 3 (AWS) and names the stack it could not read, not the stream
    assert code == cli.EXIT_AWS == 3
    assert out == ""
    assert err.startswith("Cannot read stack 'NoSuchStack' (to find the audit table) from AWS:")


def test_a_stack_without_the_output_asks_for_the_table(aws, capsys):
    # Given a stack with no AuditTableName output
    template = {"Resources": TEMPLATE["Resources"]}
    aws.client("cloudformation").create_stack(StackName="Other", TemplateBody=json.dumps(template))

    # When history must find the table from it
    code, _, err = run(capsys, "--stack", "Other")

    # Then it says which output is missing and what to pass instead (exit 1: an input error, AWS answered)
    assert code == cli.EXIT_INVALID == 1
    assert err.strip() == "Cannot find the audit table: stack 'Other' has no output AuditTableName: pass --audit-table"


def item(at: str, outcome: str) -> dict[str, Any]:
    return {
        "pk": {"S": "STREAM#orders"},
        "sk": {"S": f"{at}#0000"},
        "at": {"S": at},
        "outcome": {"S": outcome},
        "reason": {"S": "r"},
    }


def test_history_reads_every_page_with_a_key_condition_on_time(aws):
    # Given a DynamoDB answer in two pages (moto answers a query in one page whatever its size: Stubber covers it)
    dynamodb = aws.client("dynamodb")
    since = datetime(2026, 11, 26, 1, 0, tzinfo=UTC)
    expected = {
        "TableName": "audit",
        "KeyConditionExpression": "pk = :pk AND sk >= :since",
        "ExpressionAttributeValues": {":pk": {"S": "STREAM#orders"}, ":since": {"S": "2026-11-26T01:00:00+00:00"}},
        "ScanIndexForward": False,
    }
    last_key = {"pk": {"S": "STREAM#orders"}, "sk": {"S": "2026-11-26T02:00:00+00:00#0000"}}
    with Stubber(dynamodb) as stub:
        stub.add_response(
            "query", {"Items": [item("2026-11-26T03:00:00+00:00", "applied")], "LastEvaluatedKey": last_key}, expected
        )
        stub.add_response(
            "query",
            {"Items": [item("2026-11-26T02:00:00+00:00", "blocked")]},
            expected | {"ExclusiveStartKey": last_key},
        )

        # When the history since 01:00 is read
        rows = DynamoAuditLog(dynamodb, "audit").history("orders", since)

    # Then both pages were read, newest first, with the time bound in the key condition
    assert [(row.at.hour, row.outcome) for row in rows] == [(3, "applied"), (2, "blocked")]
