"""The demo path, as `make demo` runs it: real CDK CLI, real deploys into the emulator, two incidents."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("e2e")]


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[subprocess.CompletedProcess[str], Path]:
    workdir = tmp_path_factory.mktemp("demo")
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")} | {
        "KINESIS_REMEDIATOR_DEMO_DIR": str(workdir)
    }
    completed = subprocess.run(
        [sys.executable, "-m", "demo"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600, check=False
    )
    return completed, workdir


def test_demo_exits_zero_and_reports_every_step(demo_run: tuple[subprocess.CompletedProcess[str], Path]) -> None:
    completed, _ = demo_run
    assert completed.returncode == 0, completed.stderr[-3000:] + completed.stdout[-3000:]
    for step in range(1, 9):
        assert re.search(rf"^\[{step}/8\] .* \.\.\. done \(\d+\.\d s\)$", completed.stdout, re.MULTILINE), step
    assert completed.stderr == ""


def test_demo_deploys_the_stack_alarms(demo_run: tuple[subprocess.CompletedProcess[str], Path]) -> None:
    completed, workdir = demo_run
    # Named <prefix><stream>/<symptom>, as the stack names them.
    assert "kinesis-remediator-demo-orders/iterator-age      GetRecords.IteratorAgeMilliseconds Maximum" in (
        completed.stdout
    )
    assert "kinesis-remediator-demo-orders/write-throttling  WriteProvisionedThroughputExceeded Sum" in completed.stdout
    # Both deploys went through the CDK CLI, and left its logs behind.
    assert "KinesisRemediator" in (workdir / "logs" / "deploy-dry-run.log").read_text()
    assert (workdir / "logs" / "deploy-enforce.log").is_file()


def test_demo_dry_run_changes_nothing_and_enforce_reshards(
    demo_run: tuple[subprocess.CompletedProcess[str], Path],
) -> None:
    completed, _ = demo_run
    rows = re.findall(
        r"^(consumer falling behind|producers throttled)\s+(\S+)\s+(\d+)\s+(\d+)\s+(\S+)\s+(\S+)$",
        completed.stdout,
        re.MULTILINE,
    )
    assert rows == [
        ("consumer falling behind", "dry-run", "2", "2", "dry-run", "yes"),
        ("producers throttled", "enforce", "2", "4", "applied", "yes"),
    ]


def test_demo_prints_the_dry_run_email(demo_run: tuple[subprocess.CompletedProcess[str], Path]) -> None:
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
    assert "[pass] aws-step-limit: 2 -> 4; one call may go from 1 to 4" in out
    assert "Subject: [APPLIED] demo-orders: reshard 2 -> 4 shards (producers throttled)" in out
    assert "Alarm:     kinesis-remediator-demo-orders/write-throttling\n" in out


def test_demo_prints_the_audit_rows(demo_run: tuple[subprocess.CompletedProcess[str], Path]) -> None:
    completed, _ = demo_run
    audit = completed.stdout.split("--- Audit table")[1].split("What this demo shows")[0]
    assert re.search(r"iterator-age\s+dry-run\s+reshard\s+2 -> 4\s+dry-run", audit)
    assert re.search(r"write-throttling\s+enforce\s+reshard\s+2 -> 4\s+applied", audit)


def test_demo_says_what_the_emulator_cannot_do(demo_run: tuple[subprocess.CompletedProcess[str], Path]) -> None:
    completed, _ = demo_run
    assert "CloudWatch does not evaluate alarms here" in completed.stdout
    assert "EventBridge does not invoke Lambda" in completed.stdout


def test_demo_leaves_no_emulator_running(demo_run: tuple[subprocess.CompletedProcess[str], Path]) -> None:
    completed, _ = demo_run
    port = int(re.search(r"on http://127\.0\.0\.1:(\d+)", completed.stdout).group(1))  # type: ignore[union-attr]
    with socket.socket() as probe:
        assert probe.connect_ex(("127.0.0.1", port)) != 0


def test_demo_draws_utilisation_before_and_after(demo_run: tuple[subprocess.CompletedProcess[str], Path]) -> None:
    completed, workdir = demo_run
    picture = workdir / "utilisation.png"
    assert f"--- Write utilisation before and after the reshard: {picture}" in completed.stdout
    assert picture.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
