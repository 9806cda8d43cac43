"""`kinesis-remediator backtest`: the JSON's shape, the people's table, the plot, clear errors and exit codes.

No AWS is reached: a trace file needs none, and --from-cloudwatch is tested with a fake trace source in place of
remediator.clients.cloudwatch_trace (H10-TRACE's, tested on its own against CloudWatch)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from botocore.exceptions import ClientError
from remediator import cli
from remediator.rehearsal.trace import TraceMinute, write_trace

T0 = datetime(2026, 11, 1, tzinfo=UTC)


def write_policy(directory: Path, **overrides: Any) -> Path:
    stream = {"name": "orders", "mode": "enforce", "actions": {"reshard": {"max_shards": 8}}, **overrides}
    path = directory / "orders.yaml"
    path.write_text(yaml.safe_dump({"version": 1, "streams": [stream]}), encoding="utf-8")
    return path


def spike_rows(minutes: int = 40) -> list[TraceMinute]:
    return [
        TraceMinute(
            T0 + timedelta(minutes=i), (2.5e6 if 10 <= i < 30 else 0.3e6) * 60, (2_500 if 10 <= i < 30 else 300) * 60
        )
        for i in range(minutes)
    ]


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    capsys.readouterr()
    try:
        code = cli.main(["backtest", *argv])
    except SystemExit as exit_:  # argparse: usage errors
        code = int(exit_.code or 0)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture
def files(tmp_path: Path) -> tuple[Path, Path]:
    trace = tmp_path / "trace.csv"
    write_trace(trace, spike_rows())
    return write_policy(tmp_path), trace


def test_json_shape(capsys: pytest.CaptureFixture[str], files: tuple[Path, Path]) -> None:
    policy, trace = files
    code, out, err = run(capsys, "--policy", str(policy), "--stream", "orders", "--trace", str(trace), "--json")
    assert (code, err) == (cli.EXIT_OK, "")
    document = json.loads(out)
    assert set(document["summary"]) >= {
        "throttled_minutes",
        "lag_minutes",
        "records_lost",
        "shard_hours",
        "cost_usd",
        "scaling_calls",
    }
    # one integer per trace row
    assert len(document["shards_per_minute"]) == 40
    assert all(isinstance(n, int) for n in document["shards_per_minute"])
    assert document["setup"]["shards"] == 1  # the policy's min_shards (1 by default)
    reshard = [a for a in document["actions"] if a["action"] == "reshard" and a["status"] == "applied"]
    assert reshard and reshard[0]["minute"] == 11
    assert {"alarm", "why"} <= set(document["not_simulated"][0])
    assert document["shards_per_minute"][-1] > 1


def test_text_table_actions_and_plot(
    capsys: pytest.CaptureFixture[str], files: tuple[Path, Path], tmp_path: Path
) -> None:
    policy, trace = files
    png = tmp_path / "backtest.png"
    code, out, _ = run(
        capsys,
        "--policy",
        str(policy),
        "--stream",
        "orders",
        "--trace",
        str(trace),
        "--plot",
        str(png),
        "--shards",
        "2",
    )
    assert code == cli.EXIT_OK
    assert "throttled minutes" in out and "scaling calls" in out and "shard-hours" in out
    assert "Alarms not simulated" in out and "get-latency" in out
    assert "Actions (" in out and "reshard" in out
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_bad_trace_is_a_clear_input_error(
    capsys: pytest.CaptureFixture[str], files: tuple[Path, Path], tmp_path: Path
) -> None:
    policy, _ = files
    bad = tmp_path / "bad.csv"
    bad.write_text("timestamp,incoming_bytes,incoming_records\n2026-11-01T00:00:00Z,abc,1\n", encoding="utf-8")
    code, out, err = run(capsys, "--policy", str(policy), "--stream", "orders", "--trace", str(bad), "--json")
    assert code == cli.EXIT_INVALID and err == ""
    error = json.loads(out)
    assert error["kind"] == "input" and "bad.csv:2" in error["error"] and "incoming_bytes" in error["error"]
    code, _, err = run(capsys, "--policy", str(policy), "--stream", "orders", "--trace", str(bad))
    assert code == cli.EXIT_INVALID and "bad.csv:2" in err


def test_stream_in_no_policy_and_bad_setup(capsys: pytest.CaptureFixture[str], files: tuple[Path, Path]) -> None:
    policy, trace = files
    code, out, _ = run(capsys, "--policy", str(policy), "--stream", "payments", "--trace", str(trace), "--json")
    assert code == cli.EXIT_INVALID and "payments" in json.loads(out)["error"]
    code, out, _ = run(
        capsys, "--policy", str(policy), "--stream", "orders", "--trace", str(trace), "--json", "--retention-hours", "2"
    )
    assert code == cli.EXIT_INVALID and "retention_hours" in json.loads(out)["error"]


def test_usage_errors_exit_2(capsys: pytest.CaptureFixture[str], files: tuple[Path, Path]) -> None:
    policy, trace = files
    assert run(capsys, "--policy", str(policy), "--stream", "orders")[0] == cli.EXIT_USAGE  # no trace source
    assert run(capsys, "--policy", str(policy), "--stream", "orders", "--trace", str(trace), "--from-cloudwatch")[
        0
    ] == (cli.EXIT_USAGE)
    assert run(capsys, "--policy", str(policy), "--stream", "orders", "--trace", str(trace), "--shards", "0")[0] == (
        cli.EXIT_USAGE
    )


def test_from_cloudwatch_uses_the_trace_source(
    capsys: pytest.CaptureFixture[str], files: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    policy, _ = files
    asked: list[tuple[str, int]] = []

    def fake(cloudwatch: Any, stream: str, days: int, progress: Any) -> list[TraceMinute]:
        asked.append((stream, days))
        return spike_rows(20)

    monkeypatch.setattr(cli, "fetch_cloudwatch_trace", fake)
    code, out, _ = run(
        capsys, "--policy", str(policy), "--stream", "orders", "--from-cloudwatch", "--days", "3", "--json"
    )
    assert code == cli.EXIT_OK and asked == [("orders", 3)]
    assert len(json.loads(out)["shards_per_minute"]) == 20

    def denied(*_: Any) -> list[TraceMinute]:
        raise ClientError({"Error": {"Code": "AccessDenied", "Message": "no"}}, "GetMetricData")

    monkeypatch.setattr(cli, "fetch_cloudwatch_trace", denied)
    code, out, _ = run(capsys, "--policy", str(policy), "--stream", "orders", "--from-cloudwatch", "--json")
    assert code == cli.EXIT_AWS and json.loads(out)["aws_error"] == "AccessDenied"


@pytest.mark.parametrize(
    ("kind", "code", "exit_code"),
    [
        ("aws", "AccessDeniedException", cli.EXIT_AWS),
        ("no-data", None, cli.EXIT_INVALID),
        ("input", None, cli.EXIT_INVALID),
    ],
)
def test_from_cloudwatch_errors_keep_their_kind(
    capsys: pytest.CaptureFixture[str],
    files: tuple[Path, Path],
    monkeypatch: pytest.MonkeyPatch,
    kind: str,
    code: str | None,
    exit_code: int,
) -> None:
    from remediator.clients.cloudwatch_trace import CloudWatchTraceError

    policy, _ = files

    def failing(*_: Any) -> list[TraceMinute]:
        raise CloudWatchTraceError(f"stream orders: {kind}", kind=kind, aws_error=code)

    monkeypatch.setattr(cli, "fetch_cloudwatch_trace", failing)
    got, out, err = run(capsys, "--policy", str(policy), "--stream", "orders", "--from-cloudwatch", "--json")
    assert (got, err) == (exit_code, "")
    error = json.loads(out)
    assert error["error"] == f"stream orders: {kind}" and error["stream"] == "orders"
    if code:
        assert error["aws_error"] == code


def test_long_traces_show_progress_on_stderr(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    # Given a 12-hour trace (the size from which progress is shown)
    policy = write_policy(tmp_path)
    trace = tmp_path / "long.csv"
    write_trace(trace, [TraceMinute(T0 + timedelta(minutes=i), 60e6 * 0.2, 60 * 200) for i in range(720)])
    code, _, err = run(capsys, "--policy", str(policy), "--stream", "orders", "--trace", str(trace))
    # Then stderr counts the simulated minutes up to the last
    assert code == cli.EXIT_OK
    assert "backtest: 720 of 720 minutes simulated (100%)" in err
    # And with --json stderr stays empty
    code, _, err = run(capsys, "--policy", str(policy), "--stream", "orders", "--trace", str(trace), "--json")
    assert (code, err) == (cli.EXIT_OK, "")
