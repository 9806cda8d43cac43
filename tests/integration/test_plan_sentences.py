"""Sentences `plan` prints for a person, against moto: each is true of the plan it describes (issue 9, item 3)."""

from __future__ import annotations

import io
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path
from typing import Any

import pytest
import yaml
from remediator import cli

from tests.fakes import REGION
from tests.integration.conftest import ApiRecorder, AwsEnv
from tests.integration.support import ESTIMATE, SATURATED, STREAM, policy, update_command


def plan_out(tmp_path: Path, raw: dict[str, Any], api_calls: ApiRecorder | None = None) -> list[str]:
    (tmp_path / "orders.yaml").write_text(yaml.safe_dump({"version": 1, "streams": [raw]}), encoding="utf-8")
    out, err = io.StringIO(), io.StringIO()
    args = ["plan", "--stream", STREAM, "--symptom", "write-throttling", "--policy-dir", str(tmp_path)]
    with redirect_stdout(out), redirect_stderr(err):
        if api_calls is None:
            code = cli.main(args)
        else:
            with api_calls.recording():
                code = cli.main(args)
    assert code == 0, err.getvalue()
    return out.getvalue().splitlines()


@pytest.fixture(autouse=True)
def _region(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_REGION", REGION)


def test_plan_shows_the_kill_switch_it_does_not_read(aws: AwsEnv, tmp_path: Path, api_calls: ApiRecorder) -> None:
    # Given a saturated 2-shard stream under an enforce policy
    aws.create_stream(STREAM, 2)
    aws.push_traffic(STREAM, **SATURATED)
    # When `plan` prints its plan
    lines = plan_out(tmp_path, policy(mode="enforce"), api_calls)
    # Then the allowed step's guardrails end with the kill switch, said to be read by the service, not by plan
    assert "  1. reshard 2 -> 4 shards [allowed]" in lines
    assert f"     Command: {update_command(4)}" in lines
    guardrails = [line for line in lines if line.startswith("       [")]
    assert (
        guardrails[-1] == "       [ -- ] kill-switch: not read by plan; the service reads it right before each change"
    )
    # And plan indeed read nothing from SSM (it stays read-only and needs no access to the switch)
    assert "ssm" not in api_calls.services()
    # And the reason states the share 4 shards give the 1.9 MB/s peak (48 %), not the 60 % target
    why = (
        "     Why:     peak write utilisation 95%; "
        + ESTIMATE.format(n=500, mb="1.90", rec=501)
        + "; 4 shards would put that estimated peak at 48% of capacity (target 60%)"
    )
    assert why in lines


def test_plan_offers_no_command_for_a_step_that_changes_nothing(aws: AwsEnv, tmp_path: Path) -> None:
    # Given a saturated 1-shard stream whose policy allows at most 1 shard
    aws.create_stream(STREAM, 1)
    aws.push_traffic(STREAM, **SATURATED)
    # When `plan` prints its plan
    lines = plan_out(tmp_path, policy(max_shards=1))
    # Then the blocked reshard 1 -> 1 is shown with why there is no command, and no update-shard-count to run
    assert "  1. reshard 1 -> 1 shards [BLOCKED]" in lines
    assert "     Command: none: this step changes nothing (open shards stays 1)" in lines
    assert not any("update-shard-count" in line for line in lines)


def test_plan_without_write_data_shows_n_a_not_zero(aws: AwsEnv, tmp_path: Path) -> None:
    # Given a stream CloudWatch has no IncomingBytes or IncomingRecords for
    aws.create_stream(STREAM, 2)
    # When `plan` prints its diagnosis
    lines = plan_out(tmp_path, policy())
    # Then the write figures it could not compute read n/a, not 0 %
    assert any(line.startswith("  CloudWatch returned no IncomingBytes or IncomingRecords") for line in lines)
    figures = {line.split("  ")[1].strip(): line.rsplit("  ", 1)[-1].strip() for line in lines if "utilisation" in line}
    assert figures["peak write utilisation"] == "n/a"
    assert figures["average write utilisation"] == "n/a"
