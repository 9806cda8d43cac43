"""kinesis-remediator: validate policy files, show the plan the remediator would carry out now, what it did, and what a
policy would have done on a trace of traffic (backtest)."""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import tomllib
from collections.abc import Callable, Sequence
from datetime import UTC, timedelta
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from botocore.exceptions import BotoCoreError, ClientError

from remediator import reference
from remediator.clients.audit import AuditRow, DynamoAuditLog
from remediator.clients.aws import client
from remediator.clients.kinesis import KinesisStreams
from remediator.clients.metrics import CloudWatchMetrics
from remediator.clients.services import AwsServices
from remediator.core.alarm import DEFAULT_ALARM_PREFIX, AlarmTrigger, alarm_name
from remediator.core.deployment import STACK_NAME, StackOutput
from remediator.core.evidence import StreamMode
from remediator.core.history import ActionHistory
from remediator.core.plan import Change
from remediator.core.policy import StreamPolicy
from remediator.core.registry import REGISTRY
from remediator.core.render import cost_table, plan_text, table
from remediator.policy_files import PolicySet, PolicyValidationError, load_policies, policy_paths
from remediator.service import build_plan, utc_now

if TYPE_CHECKING:
    from remediator.rehearsal.backtest import BacktestResult
    from remediator.rehearsal.trace import TraceMinute

# Exit codes. 2 is argparse's own: a usage error (unknown option, missing --stream, bad --since).
EXIT_OK, EXIT_INVALID, EXIT_USAGE, EXIT_AWS = 0, 1, 2, 3

DISTRIBUTION = "kinesis-remediator"
# lambdas/remediator/cli.py -> the checkout's root, when the package runs from one (`pip install -e .`).
PROJECT_ROOT = Path(__file__).resolve().parents[2]

EPILOG = """\
exit codes:
  0  done: the plan was made, the policies are valid, the history was printed
  1  policy or input error: an invalid policy file, a stream in no policy, a stack without the audit table output,
     a trace that does not read
  2  usage error (argparse): an unknown or missing option, a value of the wrong form
  3  AWS error: a call failed (access denied, no such stream or table, no credentials, endpoint unreachable)

With --json, an error is one JSON object on stdout, {"error": "...", "kind": "policy" | "input" | "aws", ...},
and stderr stays empty, so `... --json | jq` reads a plan or an error alike; the exit code tells them apart.
Usage errors (exit 2) stay argparse's text on stderr.
"""


def default_policy_dir() -> Path:
    """The project's policies/ folder: the checkout this CLI runs from, whatever the working directory; `policies`
    under the working directory when the package is installed outside a checkout."""
    if (PROJECT_ROOT / "pyproject.toml").is_file():
        return PROJECT_ROOT / "policies"
    return Path("policies")


def version() -> str:
    """The installed distribution's version; read from the checkout's pyproject.toml when it is not installed."""
    try:
        return metadata.version(DISTRIBUTION)
    except metadata.PackageNotFoundError:
        pyproject = PROJECT_ROOT / "pyproject.toml"
        if pyproject.is_file():
            return str(tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]["version"])
        return "unknown"


class Failure(Exception):
    """An error the CLI reports and exits on: `kind` is policy, input or aws; `fields` go into the JSON form."""

    def __init__(self, message: str, kind: str, code: int, fields: dict[str, Any]) -> None:
        super().__init__(message)
        self.message, self.kind, self.code, self.fields = message, kind, code, fields


def policy_failure(exc: PolicyValidationError) -> Failure:
    errors = [str(error) for error in exc.errors]
    return Failure(f"Invalid policy files ({len(errors)} error(s)):\n{exc}", "policy", EXIT_INVALID, {"errors": errors})


def input_failure(message: str, **fields: Any) -> Failure:
    return Failure(message, "input", EXIT_INVALID, fields)


def aws_failure(what: str, exc: Exception, **fields: Any) -> Failure:
    """`what` names the thing that could not be read (the table, the stack, the stream), not the command's subject."""
    detail = {"aws_error": type(exc).__name__, **fields}
    if isinstance(exc, ClientError):
        detail["aws_error"] = exc.response.get("Error", {}).get("Code") or type(exc).__name__
        detail["operation"] = exc.operation_name
    return Failure(f"Cannot read {what} from AWS: {exc}", "aws", EXIT_AWS, detail)


T = TypeVar("T")


def reading(what: str, call: Callable[[], T], **fields: Any) -> T:
    """call(), an AWS failure (botocore's ClientError or BotoCoreError: no credentials, no region, endpoint
    unreachable) becoming a Failure that names `what`."""
    try:
        return call()
    except (ClientError, BotoCoreError) as exc:
        raise aws_failure(what, exc, **fields) from exc


def report(failure: Failure, as_json: bool) -> int:
    if as_json:
        print(json.dumps({"error": failure.message, "kind": failure.kind, **failure.fields}, indent=2, default=str))
    else:
        print(failure.message, file=sys.stderr)
    return failure.code


def _detectors(policy: StreamPolicy) -> str:
    return ", ".join(key for key, symptom in REGISTRY.symptoms.items() if symptom.detector(policy).enabled) or "-"


def _actions(policy: StreamPolicy) -> str:
    shown = []
    for key, action in REGISTRY.actions.items():
        block = action.block(policy)
        if block.enabled:
            bounds = action.bounds(block)
            shown.append(f"{key} ({bounds})" if bounds else key)
    return ", ".join(shown) or "-"


def _describe(policies: PolicySet) -> str:
    rows = [
        [
            policies.sources[name],
            name,
            policy.mode.value,
            _detectors(policy),
            _actions(policy),
            str(len(policy.notify.emails)),
        ]
        for name, policy in sorted(policies.streams.items())
    ]
    return table(["file", "stream", "mode", "detectors", "actions", "e-mails"], rows)


def validate(paths: Sequence[str]) -> int:
    try:
        policies = load_policies(paths)
    except PolicyValidationError as exc:
        for error in exc.errors:
            print(f"ERROR {error}", file=sys.stderr)
        print(f"{len(exc.errors)} error(s); nothing was deployed or changed.", file=sys.stderr)
        return EXIT_INVALID
    files = len(policy_paths(paths))
    print(f"OK: {files} file(s), {len(policies.streams)} stream(s)\n")
    print(_describe(policies))
    for warning in policies.warnings:
        print(f"WARNING {warning}", file=sys.stderr)
    return EXIT_OK


def _stream_policy(path: Path, stream: str, not_listed: Callable[[str], str], **where: str) -> StreamPolicy:
    """The stream's policy from the policy files at `path`; a clear failure when they are invalid or do not list it
    (`not_listed` words the message from the streams they do list)."""
    try:
        policies = load_policies([path])
    except PolicyValidationError as exc:
        raise policy_failure(exc) from exc
    policy = policies.get(stream)
    if policy is None:
        raise input_failure(not_listed(", ".join(sorted(policies.streams)) or "none"), stream=stream, **where)
    return policy


def plan(args: argparse.Namespace) -> int:
    policy = _stream_policy(
        args.policy_dir,
        args.stream,
        lambda listed: (
            f"Stream '{args.stream}' is in no policy under {args.policy_dir}; the remediator only plans "
            f"for listed streams ({listed})."
        ),
        policy_dir=str(args.policy_dir),
    )
    now = utc_now()
    # Lambda and many shells set AWS_REGION, which boto3 alone does not read.
    region, endpoint = args.region or os.environ.get("AWS_REGION"), args.endpoint_url
    trigger = AlarmTrigger(
        alarm_name=alarm_name(args.alarm_prefix, args.stream, args.symptom),
        stream=args.stream,
        symptom=args.symptom,
        state_timestamp=now.isoformat(),
        account="-",
        region=region or "-",
    )
    history = ActionHistory()
    if args.audit_table:
        table_name = args.audit_table
        history = ActionHistory(
            reading(
                f"audit table '{table_name}'",
                lambda: DynamoAuditLog(
                    client("dynamodb", region=region, endpoint_url=endpoint), table_name
                ).applied_actions(args.stream, now - timedelta(hours=24)),
                audit_table=table_name,
            )
        )
    result = reading(
        f"stream '{args.stream}' and its metrics",
        lambda: build_plan(
            trigger,
            policy,
            KinesisStreams(client("kinesis", region=region, endpoint_url=endpoint)),
            CloudWatchMetrics(client("cloudwatch", region=region, endpoint_url=endpoint)),
            AwsServices(lambda service: client(service, region=region, endpoint_url=endpoint)),
            history,
            now,
        ),
        stream=args.stream,
    )
    if args.json:
        print(json.dumps(result.as_report(), indent=2, sort_keys=False))
    else:
        print(plan_text(result))
        if result.cost is not None:
            cost = result.cost
            print(f"Monthly cost, item by item (estimate, {cost.region} list prices of {cost.prices_as_of}):")
            print(cost_table(result) + "\n")
        if not args.audit_table:
            print("Note: no --audit-table given, so cooldowns and daily budgets were checked against no history.")
        print("Read-only: nothing was changed.")
    return EXIT_OK


# --- history ------------------------------------------------------------------------------------------------

DURATION_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
DURATION_PART = re.compile(r"(\d+)([smhdw])")
REASON_WIDTH = 72  # the table's reason column; --json has it whole


def parse_duration(text: str) -> timedelta:
    """`30m`, `6h`, `7d`, `1h30m` (units s, m, h, d, w) -> timedelta; argparse names the option on error."""
    spelled = text.strip().lower()
    if not spelled or DURATION_PART.sub("", spelled):
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a duration: use a number and a unit (s, m, h, d, w), e.g. 30m, 6h, 7d or 1h30m"
        )
    duration = timedelta()
    for amount, unit in DURATION_PART.findall(spelled):
        duration += timedelta(**{DURATION_UNITS[unit]: int(amount)})
    if duration <= timedelta():
        raise argparse.ArgumentTypeError(f"{text!r} is not a duration: it must be longer than 0")
    return duration


def row_changes(row: AuditRow) -> list[Change]:
    """What the row's step changes, from the plan recorded with it: the step of the same action among the
    plan's actions or blocked steps."""
    if not row.action or not row.plan:
        return []
    steps = [step for section in ("actions", "blocked") for step in row.plan.get(section) or []]
    same = [step for step in steps if step.get("action") == row.action]
    # Two steps of one action in a plan: the parameters tell them apart.
    step = next((s for s in same if s.get("parameters") == row.parameters), same[0] if same else None)
    # Only the three fields a change always had: a newer remediator may record more.
    return [
        Change(setting=str(change.get("setting", "?")), before=change.get("before"), after=change.get("after"))
        for change in (step or {}).get("changes") or []
    ]


def before_after(row: AuditRow) -> str:
    """`open shards 2 -> 4`; the parameters when no change was recorded (an older row); `-` for no step."""
    changes = row_changes(row)
    if changes:
        return "; ".join(change.render() for change in changes)
    if row.parameters:
        return ", ".join(f"{key}={value}" for key, value in sorted(row.parameters.items()))
    return "-"


def shorten(text: str, width: int = REASON_WIDTH) -> str:
    """One line, at most `width` characters, cut at a word with `...` when longer."""
    line = " ".join(text.split())
    if len(line) <= width:
        return line
    cut = line[: width - 3].rsplit(" ", 1)[0] if " " in line[: width - 3] else line[: width - 3]
    return cut.rstrip(" ,;:") + "..."


HISTORY_HEADERS = ["time (UTC)", "symptom", "mode", "action", "before -> after", "outcome", "reason"]


def history_cells(row: AuditRow) -> list[str]:
    return [
        row.at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S"),
        row.symptom or "-",
        row.mode or "-",
        row.action or "-",
        before_after(row),
        row.outcome + (" (e-mailed)" if row.notified else ""),
        shorten(row.reason),
    ]


def history_entry(row: AuditRow) -> dict[str, Any]:
    return {
        "at": row.at.astimezone(UTC).isoformat(),
        "symptom": row.symptom or None,
        "alarm_name": row.alarm_name or None,
        "mode": row.mode or None,
        "action": row.action or None,
        "parameters": row.parameters,
        "changes": [change.model_dump(mode="json") for change in row_changes(row)],
        "outcome": row.outcome,
        "notified": row.notified,
        "reason": row.reason,
        "plan": row.plan,
    }


def find_audit_table(stack: str, region: str | None, endpoint: str | None) -> str:
    """The audit table the stack's `AuditTableName` output names."""
    response = reading(
        f"stack '{stack}' (to find the audit table)",
        lambda: client("cloudformation", region=region, endpoint_url=endpoint).describe_stacks(StackName=stack),
        stack=stack,
    )
    outputs = {o["OutputKey"]: o["OutputValue"] for o in response["Stacks"][0].get("Outputs", [])}
    if StackOutput.AUDIT_TABLE not in outputs:
        raise input_failure(
            f"Cannot find the audit table: stack '{stack}' has no output {StackOutput.AUDIT_TABLE}: pass --audit-table",
            stack=stack,
        )
    return outputs[StackOutput.AUDIT_TABLE]


def history(args: argparse.Namespace) -> int:
    region, endpoint = args.region or os.environ.get("AWS_REGION"), args.endpoint_url
    since = utc_now() - args.since if args.since else None
    table_name = args.audit_table or find_audit_table(args.stack, region, endpoint)
    rows = reading(
        f"audit table '{table_name}' (the audit trail of stream '{args.stream}')",
        lambda: DynamoAuditLog(client("dynamodb", region=region, endpoint_url=endpoint), table_name).history(
            args.stream, since
        ),
        audit_table=table_name,
        stream=args.stream,
    )
    if args.json:
        document = {
            "stream": args.stream,
            "audit_table": table_name,
            "since": since.isoformat() if since else None,
            "order": "newest-first",
            "entries": [history_entry(row) for row in rows],
        }
        print(json.dumps(document, indent=2, default=str))
        return EXIT_OK
    window = f" since {since:%Y-%m-%d %H:%M} UTC" if since else ""
    if not rows:
        print(f"No audit rows for stream '{args.stream}'{window} in {table_name}.")
        return EXIT_OK
    print(f"Audit trail of stream '{args.stream}'{window}, newest first ({len(rows)} row(s), table {table_name}):\n")
    print(table(HISTORY_HEADERS, [history_cells(row) for row in rows]))
    return EXIT_OK


# --- backtest -----------------------------------------------------------------------------------------------

# Traces of at least this many minutes show their progress on stderr (text output only).
PROGRESS_FROM_MINUTES = 720
PROGRESS_STEPS = 10


def fetch_cloudwatch_trace(
    cloudwatch: Any, stream: str, days: int, progress: Callable[[str], None] | None
) -> list[TraceMinute]:
    """The stream's last `days` days from CloudWatch (remediator.clients.cloudwatch_trace)."""
    from remediator.clients.cloudwatch_trace import trace_from_cloudwatch

    return trace_from_cloudwatch(cloudwatch, stream, days, utc_now(), progress=progress)


def _backtest_trace(args: argparse.Namespace) -> list[TraceMinute]:
    from remediator.rehearsal.trace import TraceError, read_trace

    if args.trace is not None:
        try:
            rows = read_trace(args.trace)
        except TraceError as exc:
            raise input_failure(str(exc), trace=str(args.trace)) from exc
        if not rows:
            raise input_failure(f"{args.trace}: the trace has no rows", trace=str(args.trace))
        return rows
    region, endpoint = args.region or os.environ.get("AWS_REGION"), args.endpoint_url

    def say(message: str) -> None:
        if not args.json:
            print(message, file=sys.stderr)

    from remediator.clients.cloudwatch_trace import CloudWatchTraceError

    try:
        rows = reading(
            f"the CloudWatch metrics of stream '{args.stream}'",
            lambda: fetch_cloudwatch_trace(
                client("cloudwatch", region=region, endpoint_url=endpoint), args.stream, args.days, say
            ),
            stream=args.stream,
        )
    except CloudWatchTraceError as exc:
        if exc.kind == "aws":
            raise Failure(str(exc), "aws", EXIT_AWS, {"stream": args.stream, "aws_error": exc.aws_error}) from exc
        raise input_failure(str(exc), stream=args.stream) from exc
    if not rows:
        raise input_failure(
            f"CloudWatch has no IncomingBytes or IncomingRecords for stream '{args.stream}' in the last {args.days} "
            "day(s): nothing to replay",
            stream=args.stream,
        )
    return rows


def _progress(args: argparse.Namespace, total: int) -> Callable[[int, int], None] | None:
    if args.json or total < PROGRESS_FROM_MINUTES:
        return None
    step = max(total // PROGRESS_STEPS, 1)

    def show(done: int, of: int) -> None:
        if done % step == 0 or done == of:
            print(f"backtest: {done:,} of {of:,} minutes simulated ({done / of:.0%})", file=sys.stderr)

    return show


def _backtest_text(result: BacktestResult) -> str:
    sim = result.simulation
    minutes = sim.minutes
    summary = result.summary()
    setup = sim.setup
    out = [
        f"Backtest of stream '{result.policy}': {len(minutes):,} minutes from {minutes[0].timestamp:%Y-%m-%d %H:%M} "
        f"to {minutes[-1].timestamp:%Y-%m-%d %H:%M} UTC; {setup.shards} shard(s) at the start, {setup.mode}, "
        f"{setup.polling_consumers} polling and {setup.efo_consumers} enhanced fan-out consumer(s), a reshard takes "
        f"{setup.reshard_minutes} min.",
        "",
        table(
            ["figure", "value"],
            [
                ["throttled minutes", f"{summary['throttled_minutes']:,} ({summary['throttled_records']:,} records)"],
                [
                    f"minutes with iterator age >= {result.lag_threshold_ms / 1000:g} s",
                    f"{summary['lag_minutes']:,} (max {summary['max_iterator_age_ms'] / 1000:,.0f} s)",
                ],
                ["records lost (past retention)", f"{summary['records_lost']:,}"],
                ["shard-hours", f"{summary['shard_hours']:,.2f}"],
                ["cost (USD, list prices)", f"{summary['cost_usd']:,.2f}"],
                ["scaling calls (accepted)", str(summary["scaling_calls"])],
                [
                    "shards (first -> last, max)",
                    f"{minutes[0].shards} -> {minutes[-1].shards}, max {max(sim.shards_per_minute)}",
                ],
            ],
        ),
        "",
    ]
    if result.actions:
        rows = [
            [
                str(a.index),
                f"{minutes[a.index].timestamp:%Y-%m-%d %H:%M}" if a.index < len(minutes) else "-",
                a.symptom or "-",
                a.action,
                ", ".join(f"{k}={v}" for k, v in sorted(a.parameters.items())) or "-",
                a.status,
                shorten(a.reason, 60),
            ]
            for a in result.actions
        ]
        out += [
            f"Actions ({len(result.actions)}):",
            table(["minute", "time (UTC)", "symptom", "action", "parameters", "status", "reason"], rows),
            "",
        ]
    else:
        out += ["Actions: none.", ""]
    errors = [d for d in result.deliveries if d.status == "error"]
    for error in errors:
        out.append(f"ERROR at minute {error.index} ({error.kind} of {error.alarm}): {error.detail}")
    if result.not_simulated:
        out.append("Alarms not simulated (the model does not produce their metrics; never guessed):")
        out += [f"  {name}: {result.not_simulated_why.get(name, '')}" for name in result.not_simulated]
        out.append("")
    out.append(
        "A simulation: nothing in AWS was changed. Costs use core/pricing.py's us-east-1 list prices (UNCONFIRMED)."
    )
    return "\n".join(out)


def backtest_command(args: argparse.Namespace) -> int:
    from remediator.rehearsal.backtest import backtest
    from remediator.rehearsal.simulator import StreamSetup

    policy = _stream_policy(
        args.policy,
        args.stream,
        lambda listed: f"Stream '{args.stream}' is in no policy in {args.policy} ({listed}).",
        policy=str(args.policy),
    )
    trace = _backtest_trace(args)
    shards = args.shards
    if shards is None:
        shards = int(REGISTRY.actions["reshard"].block(policy).min_shards)
    try:
        setup = StreamSetup(
            shards=shards,
            mode=StreamMode.ON_DEMAND if args.mode == "on-demand" else StreamMode.PROVISIONED,
            retention_hours=args.retention_hours,
            consumer_records_per_s=args.consumer_records_per_s,
            polling_consumers=args.polling_consumers,
            efo_consumers=args.efo_consumers,
            reshard_minutes=args.reshard_minutes,
        )
    except ValueError as exc:
        raise input_failure(str(exc)) from exc
    result = backtest(policy, trace, setup, progress=_progress(args, len(trace)))
    if args.plot is not None:
        from remediator.rehearsal.plot import backtest_plot

        backtest_plot(args.plot, result)
    if args.json:
        document = result.to_json()
        if args.plot is not None:
            document["plot"] = str(args.plot)
        print(json.dumps(document, indent=2, default=str))
        return EXIT_OK
    print(_backtest_text(result))
    if args.plot is not None:
        print(f"Plot: {args.plot}")
    return EXIT_OK


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be 1 or more")
    return value


def non_negative_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if value < 0 or value != value:
        raise argparse.ArgumentTypeError(f"{text!r} must be 0 or more")
    return value


def add_backtest(command: Callable[[str, str], argparse.ArgumentParser]) -> None:
    rehearse = command(
        "backtest",
        "replay a trace of a stream's traffic against a model of the stream, with the policy's alarms and the "
        "remediator's own decisions, and print what would have happened (a simulation: changes nothing)",
    )
    rehearse.add_argument("--policy", required=True, type=Path, help="the policy file (or folder) naming the stream")
    rehearse.add_argument("--stream", required=True, help="the stream, as named in the policy")
    source = rehearse.add_mutually_exclusive_group(required=True)
    source.add_argument(
        "--trace",
        type=Path,
        metavar="CSV",
        help="the trace: timestamp,incoming_bytes,incoming_records[,consumer_records_per_s], one row per minute "
        "(default: none; this or --from-cloudwatch is required)",
    )
    source.add_argument(
        "--from-cloudwatch",
        action="store_true",
        help="build the trace from the stream's CloudWatch metrics (IncomingBytes, IncomingRecords) of the last --days",
    )
    rehearse.add_argument(
        "--days", type=positive_int, default=7, help="with --from-cloudwatch: days to replay, 1 to 15"
    )
    rehearse.add_argument("--json", action="store_true", help=JSON_HELP.format(", with shards_per_minute"))
    rehearse.add_argument(
        "--plot", type=Path, metavar="PNG", help="also draw load, capacity, iterator age and actions (default: no plot)"
    )
    rehearse.add_argument(
        "--shards",
        type=positive_int,
        help="open shards at the trace's first minute (default: the policy's actions.reshard.min_shards)",
    )
    rehearse.add_argument("--mode", choices=["provisioned", "on-demand"], default="provisioned", help="capacity mode")
    rehearse.add_argument("--retention-hours", type=positive_int, default=24, help="retention period at the start")
    rehearse.add_argument(
        "--consumer-records-per-s",
        type=non_negative_float,
        help="records a second each consumer processes, where the trace has no consumer_records_per_s (default: "
        "as many as the stream lets it read)",
    )
    rehearse.add_argument("--polling-consumers", type=int, default=1, help="consumers reading with GetRecords")
    rehearse.add_argument("--efo-consumers", type=int, default=0, help="enhanced fan-out consumers (billed only)")
    rehearse.add_argument(
        "--reshard-minutes",
        type=positive_int,
        default=5,
        help="minutes a reshard or a mode switch keeps the stream UPDATING (AWS: 'a few minutes')",
    )
    rehearse.add_argument("--endpoint-url", help=ENDPOINT_HELP)
    rehearse.add_argument("--region", help=REGION_HELP)


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Every option's help ends with its default: the value argparse holds, `off` for a flag; an option whose
    default is not a plain value (None) says it in its own help."""

    def _get_help_string(self, action: argparse.Action) -> str:
        help_text = action.help or ""
        if "default" in help_text or action.default is argparse.SUPPRESS or not action.option_strings:
            return help_text
        if action.required:
            return f"{help_text} (required)"
        if action.default is False:
            return f"{help_text} (default: off)"
        if action.default is not None:
            return f"{help_text} (default: %(default)s)"
        return help_text


REGION_HELP = "AWS region (default: AWS_REGION, then your AWS configuration)"
ENDPOINT_HELP = "send every AWS call to this endpoint, e.g. http://127.0.0.1:5000 for a local emulator (default: AWS)"
JSON_HELP = "print one JSON object{}; an error is a JSON object too, on stdout (see below)"


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(
        prog="kinesis-remediator", description=__doc__, epilog=EPILOG, formatter_class=HelpFormatter
    )
    root.add_argument("--version", action="version", version=f"%(prog)s {version()}")
    commands = root.add_subparsers(dest="command", required=True, metavar="COMMAND")
    policies = default_policy_dir()

    def command(name: str, help_text: str) -> argparse.ArgumentParser:
        return commands.add_parser(
            name, help=help_text, description=help_text, epilog=EPILOG, formatter_class=HelpFormatter
        )

    command("reference", "print the policy reference and the plugin catalogue (Markdown)")

    check = command("validate", "validate policy files")
    check.add_argument(
        "paths",
        nargs="*",
        default=[str(policies)],
        help=f"policy files or directories (default: the project's policies folder, {policies})",
    )

    show = command("plan", "print the plan the remediator would carry out now (read-only)")
    show.add_argument("--stream", required=True, help="the stream, as named in a policy")
    show.add_argument(
        "--symptom",
        required=True,
        choices=sorted(REGISTRY.symptoms),
        metavar="SYMPTOM",
        help="the alarm's symptom: %(choices)s",
    )
    show.add_argument(
        "--policy-dir",
        default=policies,
        type=Path,
        help="the folder of policy files (default: the project's policies folder, %(default)s, whatever the "
        "working directory)",
    )
    show.add_argument("--endpoint-url", help=ENDPOINT_HELP)
    show.add_argument("--region", help=REGION_HELP)
    show.add_argument(
        "--audit-table",
        help="the deployed audit table (the stack's AuditTableName output), to check cooldowns and budgets against "
        "its history (default: none, so they are checked against no history)",
    )
    show.add_argument(
        "--alarm-prefix",
        default=DEFAULT_ALARM_PREFIX,
        help="the deployment's alarm-name prefix, the cdk context alarmPrefix (default: %(default)s)",
    )
    show.add_argument("--json", action="store_true", help=JSON_HELP.format(""))

    trail = command("history", "print a stream's audit trail, newest first (read-only)")
    trail.add_argument(
        "--stream",
        required=True,
        help="the stream, as named in a policy; one in another account or region: <account>/<region>/<name>",
    )
    trail.add_argument(
        "--since",
        type=parse_duration,
        metavar="DURATION",
        help="only rows this recent: 30m, 6h, 7d, 1h30m (default: all the table keeps, 90 days)",
    )
    trail.add_argument("--json", action="store_true", help=JSON_HELP.format(", reasons and plans whole"))
    trail.add_argument("--audit-table", help=f"the audit table (default: the stack's {StackOutput.AUDIT_TABLE} output)")
    trail.add_argument("--stack", default=STACK_NAME, help="the deployed stack, to find the audit table")
    trail.add_argument("--endpoint-url", help=ENDPOINT_HELP)
    trail.add_argument("--region", help=REGION_HELP)
    add_backtest(command)
    return root


def main(argv: Sequence[str] | None = None) -> int:
    """Exit code: EXIT_OK, EXIT_INVALID (policy or input), EXIT_AWS; argparse exits EXIT_USAGE itself."""
    args = parser().parse_args(argv)
    as_json = bool(getattr(args, "json", False))
    try:
        if args.command == "validate":
            return validate(args.paths)
        if args.command == "reference":
            print(reference.markdown())
            return EXIT_OK
        if args.command == "history":
            return history(args)
        if args.command == "backtest":
            return backtest_command(args)
        return plan(args)
    except Failure as failure:
        return report(failure, as_json)
    except OSError as exc:
        # A policy folder or file that cannot be read.
        return report(input_failure(f"Cannot read {exc.filename or 'a file'}: {exc.strerror or exc}"), as_json)


if __name__ == "__main__":
    sys.exit(main())
