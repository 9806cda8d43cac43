"""The demo path, as `make demo` runs it: real CDK CLI, real deploys into the emulator, six incidents.

The demo runs once for this module; the tests read its output and the report it writes (report.json: per
incident, each planned change with the emulator's value of that setting before and after the handler ran).
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
ALARM_PREFIX = "kinesis-remediator-"

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("e2e")]

DemoRun = tuple[subprocess.CompletedProcess[str], Path]


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory: pytest.TempPathFactory) -> DemoRun:
    workdir = tmp_path_factory.mktemp("demo")
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")} | {
        "KINESIS_REMEDIATOR_DEMO_DIR": str(workdir)
    }
    completed = subprocess.run(
        [sys.executable, "-m", "demo"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600, check=False
    )
    return completed, workdir


def incidents(workdir: Path) -> dict[int, dict[str, Any]]:
    """The demo's report.json, by incident number."""
    return {s["number"]: s for s in json.loads((workdir / "report.json").read_text(encoding="utf-8"))}


def changes(step: dict[str, Any]) -> dict[str, tuple[Any, Any, str, str]]:
    """A step's changes by setting: (planned before, planned after, emulator before, emulator after)."""
    return {
        c["setting"]: (c["planned_before"], c["planned_after"], c["emulator_before"], c["emulator_after"])
        for c in step["changes"]
    }


def email(out: str, number: int) -> str:
    """The e-mail the demo printed for incident `number` (subject and body)."""
    return out.split(f"--- E-mail for incident {number}, ")[1].split("\n--- ")[0]


def alarm_rows(out: str) -> dict[str, list[str]]:
    """The 'Deployed alarms' inventory, alarm name -> [metric, threshold, breaching], however it is padded."""
    section = out.split("Deployed alarms:\n")[1].split("\n\n")[0]
    rows = {}
    for line in section.splitlines():
        if line.startswith(ALARM_PREFIX):
            name, *cells = re.split(r"\s{2,}", line.strip())
            rows[name] = cells
    return rows


def test_demo_exits_zero_and_reports_every_step(demo_run: DemoRun) -> None:
    completed, _ = demo_run
    assert completed.returncode == 0, completed.stderr[-3000:] + completed.stdout[-3000:]
    # Thirteen steps: emulator, bootstrap, streams, deploy, incident 1, enforce deploy, incidents 2 to 7, report.
    steps = re.findall(r"^\[(\d+)/(\d+)\] .* \.\.\. done \(\d+\.\d s\)$", completed.stdout, re.MULTILINE)
    assert steps == [(str(n), "13") for n in range(1, 14)]
    assert completed.stderr == ""


def test_demo_deploys_the_stack_alarms(demo_run: DemoRun) -> None:
    completed, workdir = demo_run
    rows = alarm_rows(completed.stdout)
    # Named <prefix><stream>/<symptom>[/<qualifier>], as the stack names them, for both streams of the policy.
    assert rows[f"{ALARM_PREFIX}demo-orders/iterator-age"] == [
        "GetRecords.IteratorAgeMilliseconds Maximum",
        ">= 60000",
        "3 of 5 min",
    ]
    assert rows[f"{ALARM_PREFIX}demo-orders/write-throttling"] == [
        "WriteProvisionedThroughputExceeded Sum",
        ">= 1",
        "2 of 5 min",
    ]
    assert rows[f"{ALARM_PREFIX}demo-orders/lambda-consumer-lag/demo-orders-consumer"] == [
        "IteratorAge Maximum",
        ">= 60000",
        "3 of 5 min",
    ]
    assert rows[f"{ALARM_PREFIX}demo-clicks/read-throttling"] == [
        "ReadProvisionedThroughputExceeded Sum",
        ">= 10",
        "3 of 5 min",
    ]
    # One alarm per KCL application of demo-clicks, on its own MillisBehindLatest.
    for application in ("clicks-sessionizer", "clicks-fraud-scorer"):
        assert rows[f"{ALARM_PREFIX}demo-clicks/kcl-consumer-lag/{application}"][0] == "MillisBehindLatest Maximum"
    # The under-utilised alarm: metric math against the open shards the census publishes, a whole hour low.
    assert rows[f"{ALARM_PREFIX}demo-archive/under-utilised"] == [
        "metric math: MAX([bytes / (300000000 * shards), records / (300000 * shards)])",
        "< 0.3",
        "12 of 12 x 5 min",
    ]
    # Both deploys went through the CDK CLI, and left its logs behind.
    assert "KinesisRemediator" in (workdir / "logs" / "deploy-dry-run.log").read_text()
    assert (workdir / "logs" / "deploy-enforce.log").is_file()


def test_demo_dry_run_changes_nothing_and_enforce_reshards(demo_run: DemoRun) -> None:
    completed, workdir = demo_run
    report = incidents(workdir)
    assert [(report[n]["alarm"], report[n]["mode"], report[n]["status"]) for n in (1, 2)] == [
        (f"{ALARM_PREFIX}demo-orders/iterator-age", "dry-run", "dry-run"),
        (f"{ALARM_PREFIX}demo-orders/write-throttling", "enforce", "applied"),
    ]
    # Planned 2 -> 4 both times; the emulator's stream kept 2 shards in dry-run and has 4 after enforce.
    assert changes(report[1]["steps"][0])["open shards"] == (2, 4, "2", "2")
    assert changes(report[2]["steps"][0])["open shards"] == (2, 4, "2", "4")
    rows = re.findall(
        r"^(\d\. [a-zA-Z0-9 ,%]+?)\s{2,}(demo-\w+)\s+(\S+)\s+(reshard)\s+(open shards 2 -> 4)\s+(\S+)\s+(.+)$",
        completed.stdout,
        re.MULTILINE,
    )
    rows = [row for row in rows if row[1] == "demo-orders"]  # incident 6 reshards demo-payments 2 -> 4 too
    assert rows == [
        ("1. consumer falling behind", "demo-orders", "dry-run", "reshard", "open shards 2 -> 4", "dry-run", "2 -> 2"),
        ("2. producers throttled", "demo-orders", "enforce", "reshard", "open shards 2 -> 4", "applied", "2 -> 4"),
    ]


def test_demo_tunes_the_lagging_lambda_consumer(demo_run: DemoRun) -> None:
    # Given the demo ran; When incident 3's lambda-consumer-lag alarm went off on demo-orders, in enforce
    completed, workdir = demo_run
    incident = incidents(workdir)[3]
    # Then the mapping's ParallelizationFactor went from 1 to 2 in the emulator
    assert incident["alarm"] == f"{ALARM_PREFIX}demo-orders/lambda-consumer-lag/demo-orders-consumer"
    assert (incident["mode"], incident["status"]) == ("enforce", "applied")
    # The shards are not saturated after the reshard: the mapping is tuned, the stream is not resharded again.
    [step] = incident["steps"]
    assert (step["action"], step["outcome"]) == ("tune-event-source", "applied")
    assert changes(step) == {"demo-orders-consumer ParallelizationFactor": (1, 2, "1", "2")}
    assert incident["after"]["open shards"] == incident["before"]["open shards"] == "4"
    mail = email(completed.stdout, 3)
    assert "Subject: [APPLIED] demo-orders: tune demo-orders-consumer: ParallelizationFactor 1 -> 2" in mail
    assert "although writes peaked at only 48% of the shards' capacity: resharding would not help" in mail
    assert re.search(r"Command: aws lambda update-event-source-mapping --uuid \S+ --parallelization-factor 2\n", mail)


def test_demo_plans_enhanced_fan_out_in_dry_run_and_registers_nothing(demo_run: DemoRun) -> None:
    # Given the demo ran; When incident 4's read-throttling alarm went off on demo-clicks, still in dry-run
    completed, workdir = demo_run
    incident = incidents(workdir)[4]
    # Then the e-mail plans enhanced fan-out, and the emulator has no new consumer nor moved mapping
    assert incident["alarm"] == f"{ALARM_PREFIX}demo-clicks/read-throttling"
    assert (incident["stream"], incident["mode"], incident["status"]) == ("demo-clicks", "dry-run", "dry-run")
    [step] = incident["steps"]
    assert (step["action"], step["outcome"]) == ("enhanced-fan-out", "dry-run")
    planned = changes(step)
    # Planned: one consumer registered for the opted-in function, and its mapping moved onto it ...
    assert planned["registered consumers"] == (0, 1, "0", "0")
    assert planned["consumer efo-demo-clicks-consumer"] == ("none", "registered", "none", "none")
    [old_mapping] = [setting for setting in planned if setting.startswith("mapping ")]
    assert planned[old_mapping] == ("Enabled", "Disabled", "Enabled", "Enabled")
    # ... and nothing of it happened in the emulator: no consumer, the function still reads the stream.
    assert incident["after"]["registered consumers"] == "0"
    assert incident["after"]["demo-clicks-consumer reads"].startswith("the stream (GetRecords, mapping ")
    mail = email(completed.stdout, 4)
    assert "Kinesis Remediator, DRY RUN: nothing was changed." in mail
    assert (
        "3 polling consumers (Lambda function demo-clicks-consumer, KCL application clicks-sessionizer, "
        "KCL application clicks-fraud-scorer)"
    ) in mail
    assert (
        "aws kinesis register-stream-consumer --stream-arn arn:aws:kinesis:us-east-1:123456789012:stream/demo-clicks "
        "--consumer-name efo-demo-clicks-consumer"
    ) in mail
    assert "--starting-position AT_TIMESTAMP" in mail
    assert "[pass] move-start-known: new mappings start at " in mail


def test_demo_raises_retention_at_60_percent_and_waits_out_the_tuning_cooldown(demo_run: DemoRun) -> None:
    # Given the demo ran; When incident 5's iterator age reached 60 % of demo-orders' 24 h retention, in enforce
    completed, workdir = demo_run
    incident = incidents(workdir)[5]
    # Then the retention went from 24 to 48 h in the emulator
    assert incident["alarm"] == f"{ALARM_PREFIX}demo-orders/iterator-age"
    assert (incident["mode"], incident["status"]) == ("enforce", "applied")
    steps = {step["action"]: step for step in incident["steps"]}
    assert steps["raise-retention"]["outcome"] == "applied"
    assert changes(steps["raise-retention"]) == {"retention hours": (24, 48, "24", "48")}
    # The lag's own fix is planned too, and held back by the cooldown of incident 3's tuning.
    assert steps["tune-event-source"]["outcome"] == "blocked"
    assert changes(steps["tune-event-source"]) == {"demo-orders-consumer ParallelizationFactor": (2, 4, "2", "2")}
    mail = email(completed.stdout, 5)
    assert "Subject: [APPLIED] demo-orders: raise retention 24 -> 48 h" in mail
    assert re.search(r"iterator age / retention\s+60\.00 %\n", mail)
    assert "[STOP] cooldown: last tune-event-source at " in mail


def test_demo_prints_the_dry_run_email(demo_run: DemoRun) -> None:
    completed, _ = demo_run
    out = completed.stdout
    assert "Subject: [DRY-RUN] demo-orders: reshard 2 -> 4 shards (consumers falling behind)" in out
    # The deployed alarm's name, as the handler read it from the event.
    assert "Alarm:     kinesis-remediator-demo-orders/iterator-age\n" in out
    assert "Kinesis Remediator, DRY RUN: nothing was changed." in out
    assert (
        "aws kinesis update-shard-count --stream-arn arn:aws:kinesis:us-east-1:123456789012:stream/demo-orders "
        "--target-shard-count 4 --scaling-type UNIFORM_SCALING"
    ) in out
    assert "[pass] aws-step-limit: 2 -> 4; allowed range 1–4 (one call: half to double)" in out
    assert "Subject: [APPLIED] demo-orders: reshard 2 -> 4 shards (producers throttled)" in out
    assert "Alarm:     kinesis-remediator-demo-orders/write-throttling\n" in out
    # One e-mail per incident, and for incident 6 one per follow-up and the resolved one.
    assert len(re.findall(r"^Subject: ", out, re.MULTILINE)) == 9


def test_demo_prints_the_audit_rows(demo_run: DemoRun) -> None:
    completed, _ = demo_run
    audit = completed.stdout.split("--- Audit table")[1].split("What this demo shows")[0]
    assert re.search(r"demo-orders\s+iterator-age\s+dry-run\s+reshard\s+open shards 2 -> 4\s+dry-run", audit)
    assert re.search(r"demo-orders\s+write-throttling\s+enforce\s+reshard\s+open shards 2 -> 4\s+applied", audit)
    assert re.search(
        r"demo-orders\s+lambda-consumer-lag\s+enforce\s+tune-event-source\s+"
        r"demo-orders-consumer ParallelizationFactor 1 -> 2\s+applied",
        audit,
    )
    assert re.search(
        r"demo-clicks\s+read-throttling\s+dry-run\s+enhanced-fan-out\s+registered consumers 0 -> 1\s+dry-run", audit
    )
    assert re.search(
        r"demo-orders\s+iterator-age\s+enforce\s+raise-retention\s+retention hours 24 -> 48\s+applied", audit
    )
    assert re.search(
        r"demo-orders\s+iterator-age\s+enforce\s+tune-event-source\s+"
        r"demo-orders-consumer ParallelizationFactor 2 -> 4\s+blocked",
        audit,
    )


def test_demo_says_what_the_emulator_cannot_do(demo_run: DemoRun) -> None:
    completed, _ = demo_run
    assert "CloudWatch does not evaluate alarms here" in completed.stdout
    assert "EventBridge does not invoke Lambda" in completed.stdout


def test_demo_leaves_no_emulator_running(demo_run: DemoRun) -> None:
    completed, _ = demo_run
    port = int(re.search(r"on http://127\.0\.0\.1:(\d+)", completed.stdout).group(1))  # type: ignore[union-attr]
    with socket.socket() as probe:
        assert probe.connect_ex(("127.0.0.1", port)) != 0


def test_demo_draws_utilisation_before_and_after(demo_run: DemoRun) -> None:
    completed, workdir = demo_run
    picture = workdir / "utilisation.png"
    assert f"--- Write utilisation before and after the reshard: {picture}" in completed.stdout
    assert picture.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_demo_scales_in_an_under_utilised_stream_and_says_what_it_saves(demo_run: DemoRun) -> None:
    # Given the demo ran; When incident 7's under-utilised alarm went off on demo-archive, in enforce, after two
    # calm hours at 4 % of its 4 shards
    completed, workdir = demo_run
    incident = incidents(workdir)[7]
    # Then the emulator's stream went from 4 to 2 shards: halved, as far as one call may go
    assert incident["alarm"] == f"{ALARM_PREFIX}demo-archive/under-utilised"
    assert (incident["stream"], incident["mode"], incident["status"]) == ("demo-archive", "enforce", "applied")
    [step] = incident["steps"]
    assert (step["action"], step["outcome"]) == ("reshard", "applied")
    assert changes(step) == {"open shards": (4, 2, "4", "2")}
    mail = email(completed.stdout, 7)
    assert "Subject: [APPLIED] demo-archive: reshard 4 -> 2 shards (-1,460 shard-hours a month)" in mail
    assert "this call goes to 2 because AWS allows at most halving per call (2)" in mail
    assert "[pass] stabilisation-window: 60 minutes with no reshard, no throttled write or read and no consumer" in mail
    assert "[pass] scale-up-reserve: after this scale-in 1 of AWS's 10 scalings in 24 h would be used" in mail
    # The emulator cannot answer CloudTrail: the daily count falls back on the audit, and the e-mail says so
    assert "CloudTrail could not be read (UnsupportedOperationException: the emulator (moto) does not implement" in mail
    audit = completed.stdout.split("--- Audit table")[1]
    assert re.search(r"demo-archive\s+under-utilised\s+enforce\s+reshard\s+open shards 4 -> 2\s+applied", audit)


def test_demo_checks_the_dashboard_and_says_where_it_is(demo_run: DemoRun) -> None:
    # Given the demo deployed the stack into the emulator
    completed, _ = demo_run
    # When its output is read
    out = completed.stdout
    # Then it read the dashboard back with GetDashboard (a row per stream), right after the first deploy and again
    # at the end, with the console address it would have in AWS
    line = (
        "Dashboard: KinesisRemediator-us-east-1 (30 widgets: the fleet's top streams, a row for each of "
        "demo-archive, demo-clicks, demo-orders, demo-payments, then the remediator's own metrics), checked "
        "with GetDashboard."
    )
    assert out.count(line) == 2
    url = (
        "In AWS, open it at https://us-east-1.console.aws.amazon.com/cloudwatch/home?region=us-east-1"
        "#dashboards/dashboard/KinesisRemediator-us-east-1"
    )
    assert out.count(url) == 2
    assert out.index(line) < out.index("Incident 1:")


def test_demo_follows_through_until_the_alarm_clears(demo_run: DemoRun) -> None:
    # Given the demo ran; When incident 6's demo-payments needed 8 shards from 2 (AWS: at most 2x per call)
    completed, workdir = demo_run
    incident = incidents(workdir)[6]
    # Then the alarm's own change took 2 -> 4 in the emulator
    assert (incident["alarm"], incident["mode"], incident["status"]) == (
        f"{ALARM_PREFIX}demo-payments/write-throttling",
        "enforce",
        "applied",
    )
    assert changes(incident["steps"][0])["open shards"] == (2, 4, "2", "4")
    # And one follow-through schedule was created; the demo's driver fired its Input (attempt 1 of the same change)
    (schedule,) = incident["schedules"]
    assert schedule["expression"].startswith("at(")
    assert json.loads(schedule["input"])["attempt"] == 1
    (follow_up,) = incident["follow_ups"]
    assert follow_up["status"] == "applied"
    assert changes(follow_up["steps"][0])["open shards"] == (4, 8, "4", "8")
    out = completed.stdout
    assert "the demo's Scheduler driver fired" in out
    assert "the emulator never fires schedules" in out
    # And when the alarm went back to OK, the payments team got the resolved e-mail: what was done, and how long
    assert incident["resolved_subject"].startswith("[RESOLVED] demo-payments: write-throttling back to OK after ")
    body = incident["resolved_body"]
    assert re.search(r"  1\. \S+ \S+ UTC  reshard 2 -> 4 shards", body)
    assert re.search(r"  2\. \S+ \S+ UTC  reshard 4 -> 8 shards", body)
    assert "Recovery:  " in body
    # And the demo says what it simulated
    assert "EventBridge Scheduler schedules in the emulator" in out
