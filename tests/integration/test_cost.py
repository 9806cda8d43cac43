"""Cost in every plan, against moto: `plan --json` carries it, the e-mail shows it, the audit row keeps it, and
every plan reads the write load it is priced from in the one GetMetricData call.

Figures by hand (core/pricing.py, us-east-1, UNCONFIRMED): the SATURATED stream writes 1.9 MB/s in 500
records/s (3,800 B records: one 25 KB PUT payload unit each). 2 shards: 1,460 shard-hours x $0.015 = $21.90;
500 x 2,628,000 s = 1,314 M units x $0.014 = $18.40; $40.30 a month. The reshard to 4 adds $21.90: $62.20.
"""

from __future__ import annotations

import io
import json
from contextlib import redirect_stderr, redirect_stdout
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from remediator import cli
from remediator.clients.aws import client
from remediator.clients.kinesis import KinesisStreams
from remediator.clients.metrics import CloudWatchMetrics
from remediator.clients.services import AwsServices
from remediator.core.evidence import Evidence
from remediator.core.metrics import MetricQuery, kinesis_stream_metric
from remediator.core.plan import Diagnosis
from remediator.core.policy import DetectorPolicy, StreamPolicy
from remediator.core.registry import REGISTRY
from remediator.core.symptoms.base import AlarmSpec, Symptom
from remediator.service import gather_evidence

from tests.fakes import REGION, alarm_event
from tests.integration.conftest import AwsEnv
from tests.integration.support import SATURATED, STREAM, WRITE_ALARM, only, plan_of, policy

STEP_COST = "monthly cost $40.30 -> $62.20 (+$21.90)"


def run_cli(*args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        code = cli.main(list(args))
    return code, out.getvalue(), err.getvalue()


def policy_dir(tmp_path: Path, raw: dict[str, Any]) -> Path:
    (tmp_path / "orders.yaml").write_text(yaml.safe_dump({"version": 1, "streams": [raw]}), encoding="utf-8")
    return tmp_path


def test_plan_json_has_the_cost_before_and_after_and_each_step_its_own(
    aws: AwsEnv, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a saturated 2-shard stream in moto, and its policy on disk
    aws.create_stream(STREAM, 2)
    aws.push_traffic(STREAM, **SATURATED)
    policies = policy_dir(tmp_path, policy())
    monkeypatch.setenv("AWS_REGION", REGION)
    # When `plan --json` is asked about write throttling
    code, out, err = run_cli(
        "plan", "--stream", STREAM, "--symptom", "write-throttling", "--policy-dir", str(policies), "--json"
    )
    # Then the plan's cost is the stream's monthly cost now and after the reshard, itemised, with its prices
    assert code == 0, err
    report = json.loads(out)
    cost = report["cost"]
    assert (cost["monthly_before_usd"], cost["monthly_after_usd"], cost["monthly_change_usd"]) == (40.30, 62.20, 21.90)
    assert (cost["region"], cost["prices_as_of"], cost["prices_confirmed"]) == ("us-east-1", "2026-11-26", False)
    lines = {line["item"]: (line["before_usd"], line["after_usd"]) for line in cost["lines"]}
    assert lines["shard-hours"] == (21.90, 43.80)
    assert lines["PUT payload units"] == (18.40, 18.40)
    # And the reshard step carries its own cost: the lines it changes
    (step,) = report["actions"]
    assert (step["cost"]["monthly_before_usd"], step["cost"]["monthly_after_usd"]) == (40.30, 62.20)
    assert [line["item"] for line in step["cost"]["lines"]] == ["shard-hours"]


def test_the_plan_table_shows_the_cost(aws: AwsEnv, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Given the same stream
    aws.create_stream(STREAM, 2)
    aws.push_traffic(STREAM, **SATURATED)
    policies = policy_dir(tmp_path, policy())
    monkeypatch.setenv("AWS_REGION", REGION)
    # When `plan` prints for a person
    code, out, err = run_cli("plan", "--stream", STREAM, "--symptom", "write-throttling", "--policy-dir", str(policies))
    # Then the step and the plan show their monthly cost, and the items are tabled
    assert code == 0, err
    assert f"     Cost:    {STEP_COST}" in out.splitlines()
    assert "Monthly cost, item by item (estimate, us-east-1 list prices of 2026-11-26):" in out
    total = next(line for line in out.splitlines() if line.startswith("total "))
    assert total.split()[-2:] == ["$40.30", "$62.20"]


def test_the_dry_run_email_and_the_audit_row_carry_the_cost(aws: AwsEnv, invoke: Any) -> None:
    # Given a saturated stream in dry-run
    aws.create_stream(STREAM, 2)
    aws.put_policy(policy())
    aws.push_traffic(STREAM, **SATURATED)
    # When its write-throttling alarm fires
    result = invoke(alarm_event(WRITE_ALARM))
    # Then the e-mail shows the step's cost and the plan's, in one line each
    lines = only(aws.emails())["Message"].splitlines()
    assert f"     Cost:    {STEP_COST}" in lines
    assert f"  {STEP_COST} once the allowed steps are done" in lines
    # And the outcome and the audit row keep the plan's cost
    assert result["plan"]["cost"]["monthly_after_usd"] == 62.20
    row = only(aws.audit_rows(STREAM))
    assert plan_of(row)["cost"]["monthly_before_usd"] == 40.30


def test_an_on_demand_stream_is_priced_per_stream_hour_and_gb(aws: AwsEnv, invoke: Any) -> None:
    # Given a throttled on-demand stream (never resharded: advice only) writing 1.9 MB/s in 500 records/s
    aws.create_stream(STREAM, 0, on_demand=True)
    aws.put_policy(policy())
    aws.push_traffic(STREAM, **SATURATED)
    # When its alarm fires
    result = invoke(alarm_event(WRITE_ALARM))
    # Then its cost is 730 stream-hours ($29.20) and the GB ingested: 3,800 B records billed as 4 KB, so
    # 500 x 4,096 B/s x 2,628,000 s = 5,012.5 GB x $0.08 = $401.00; no step changes it
    cost = result["plan"]["cost"]
    lines = {line["item"]: line["before_usd"] for line in cost["lines"]}
    assert (lines["stream-hours"], lines["data ingested"]) == (29.20, 401.0)
    assert cost["monthly_before_usd"] == cost["monthly_after_usd"] == 430.20
    assert "  monthly cost $430.20 (no allowed step changes it)" in only(aws.emails())["Message"].splitlines()


# A symptom that declares no write load still gets its plan priced, from the same one GetMetricData call.
THROTTLES = kinesis_stream_metric("WriteProvisionedThroughputExceeded", "Sum")


class ThrottlesOnly(Symptom[DetectorPolicy]):
    id = "toy-throttles-only"
    title = "toy: throttles only"
    meaning = "A symptom that reads one metric and not the write load."
    detector_schema = DetectorPolicy

    def alarms(self, policy: StreamPolicy, detector: DetectorPolicy) -> list[AlarmSpec]:
        return []

    def evidence_queries(self, policy: StreamPolicy) -> tuple[MetricQuery, ...]:
        return (MetricQuery("throttles", THROTTLES.on(StreamName=policy.name)),)

    def diagnose(self, evidence: Evidence, policy: StreamPolicy) -> Diagnosis:
        return Diagnosis(cause="not-reproduced", summary="toy")


def test_the_write_load_is_read_for_the_cost_in_the_same_call(aws: AwsEnv, api_calls: Any) -> None:
    # Given a stream with traffic, and a symptom that declares only its throttles
    aws.create_stream(STREAM, 2)
    aws.push_traffic(STREAM, **SATURATED)
    with REGISTRY.registered(ThrottlesOnly):
        p = REGISTRY.parse_stream_policy(policy())
        # When the service gathers the evidence
        with api_calls.recording():
            ev = gather_evidence(
                KinesisStreams(client("kinesis", region=REGION)),
                CloudWatchMetrics(client("cloudwatch", region=REGION)),
                AwsServices(lambda service: client(service, region=REGION)),
                ThrottlesOnly.id,
                p,
                datetime.now(UTC),
            )
    # Then one GetMetricData call read its series and, after them, the write load the cost is priced from
    queries = only(api_calls.params("cloudwatch", "GetMetricData"))["MetricDataQueries"]
    assert [q["Id"] for q in queries] == ["throttles", "incoming_bytes", "incoming_records"]
    assert ev.values("incoming_bytes") and set(ev.values("incoming_records")) == {500 * 60}
