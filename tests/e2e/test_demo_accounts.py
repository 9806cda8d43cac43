"""`make demo-accounts`: a hub and one member as two accounts of the emulator, deployed with one `cdk deploy --all`,
an incident in the member remedied through the member role, and two refused senders.

The demo runs once for this module; the tests read its output and report.json.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
HUB, MEMBER, STRANGER = "123456789012", "111122223333", "444455556666"

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("e2e")]

DemoRun = tuple[subprocess.CompletedProcess[str], Path]


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory: pytest.TempPathFactory) -> DemoRun:
    workdir = tmp_path_factory.mktemp("demo-accounts")
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")} | {
        "KINESIS_REMEDIATOR_DEMO_DIR": str(workdir)
    }
    completed = subprocess.run(
        [sys.executable, "-m", "demo.accounts"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    return completed, workdir


def report(workdir: Path) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((workdir / "report.json").read_text(encoding="utf-8"))
    return loaded


def test_demo_exits_zero_and_reports_every_step(demo_run: DemoRun) -> None:
    completed, _ = demo_run
    assert completed.returncode == 0, completed.stderr[-3000:] + completed.stdout[-3000:]
    steps = re.findall(r"^\[(\d+)/(\d+)\] .* \.\.\. done \(\d+\.\d s\)$", completed.stdout, re.MULTILINE)
    assert steps == [(str(n), "8") for n in range(1, 9)]
    assert completed.stderr == ""


def test_one_deploy_puts_the_hub_and_the_member_in_their_accounts(demo_run: DemoRun) -> None:
    completed, workdir = demo_run
    log = (workdir / "logs" / "deploy.log").read_text(encoding="utf-8")
    # Then `cdk deploy --all` created the hub's stack in A and the member's in B (through B's bootstrap roles)
    assert f"arn:aws:cloudformation:us-east-1:{HUB}:stack/KinesisRemediator/" in log
    assert f"arn:aws:cloudformation:us-east-1:{MEMBER}:stack/KinesisRemediatorMember-{MEMBER}-us-east-1/" in log
    # and each account holds its own stream's alarms
    hub_alarms = completed.stdout.split(f"Hub alarms ({HUB}):\n")[1].split("\n\n")[0]
    member_alarms = completed.stdout.split(f"Member alarms ({MEMBER}):\n")[1].split("\n\n")[0]
    assert "hub-clicks/write-throttling" in hub_alarms and "member-orders" not in hub_alarms
    assert "member-orders/write-throttling" in member_alarms and "hub-clicks" not in member_alarms


def test_the_member_role_trusts_the_hubs_role_with_the_external_id(demo_run: DemoRun) -> None:
    _, workdir = demo_run
    trust = {row[0]: row for row in report(workdir)["trust"]}
    assert trust["aws:PrincipalArn"][2] == "the hub's remediator role"
    assert trust["sts:ExternalId"] == [
        "sts:ExternalId",
        "kinesis-remediator-demo",
        "the hub function's MEMBER_EXTERNAL_ID",
    ]


def test_the_members_incident_is_remedied_in_the_member_account(demo_run: DemoRun) -> None:
    _, workdir = demo_run
    case = report(workdir)["cases"][0]
    # Given the member's stream throttled in B / Then the event went B's rule -> the hub's bus -> the hub's rule
    checks = dict(case["relay"])
    assert checks["a rule there matches and targets the hub's bus"].startswith("yes (the member stack's rule")
    assert checks[f"hub's bus policy admits {MEMBER}"].startswith("yes")
    assert checks[f"hub's rule matches (account {MEMBER})"] == "yes"
    # and the hub's remediator resharded B's stream, 2 -> 4 (read back from B)
    assert case["delivered"] and case["status"] == "applied"
    assert [tuple(step[:2]) for step in case["steps"]] == [("reshard", "applied")]
    assert case["shards"] == ["2", "4"]
    # and the e-mail names the account
    assert MEMBER in case["email_body"] or MEMBER in case["email_subject"]


def test_a_member_cannot_make_the_hub_act_on_the_hubs_stream(demo_run: DemoRun) -> None:
    _, workdir = demo_run
    case = report(workdir)["cases"][1]
    # Given B forwards an alarm named after the hub's own stream / Then the hub takes the event and refuses it
    assert case["delivered"] and case["status"] == "ignored"
    assert case["steps"] == [] and case["shards"] == ["2", "2"]


def test_an_account_in_no_policy_cannot_reach_the_hub(demo_run: DemoRun) -> None:
    _, workdir = demo_run
    case = report(workdir)["cases"][2]
    # Given an account in no policy, with its own forwarding rule / Then the hub's bus policy does not admit it
    assert case["sender"] == STRANGER
    assert dict(case["relay"])[f"hub's bus policy admits {STRANGER}"].startswith("no")
    assert not case["delivered"] and case["shards"] == ["4", "4"]


def test_the_audit_names_the_account_and_region(demo_run: DemoRun) -> None:
    _, workdir = demo_run
    rows = report(workdir)["audit"]
    applied = [row for row in rows if row[3] == "member-orders" and row[5] == "applied"]
    assert applied and applied[0][1:3] == [MEMBER, "us-east-1"]
