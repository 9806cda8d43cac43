"""kinesis-remediator: validate policy files, show the plan the remediator would carry out now, and what it did."""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from collections.abc import Sequence
from datetime import UTC, timedelta
from pathlib import Path
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from remediator import reference
from remediator.clients.audit import AuditRow, DynamoAuditLog
from remediator.clients.aws import client
from remediator.clients.kinesis import KinesisStreams
from remediator.clients.metrics import CloudWatchMetrics
from remediator.clients.services import AwsServices
from remediator.core.alarm import DEFAULT_ALARM_PREFIX, AlarmTrigger, alarm_name
from remediator.core.deployment import STACK_NAME, StackOutput
from remediator.core.history import ActionHistory
from remediator.core.plan import Change
from remediator.core.policy import StreamPolicy
from remediator.core.registry import REGISTRY
from remediator.core.render import cost_table, plan_text, table
from remediator.policy_files import PolicySet, PolicyValidationError, load_policies, policy_paths
from remediator.service import build_plan, utc_now

EXIT_OK, EXIT_INVALID, EXIT_ERROR = 0, 1, 2


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


def plan(args: argparse.Namespace) -> int:
    try:
        policies = load_policies([args.policy_dir])
    except PolicyValidationError as exc:
        print(f"Invalid policy files:\n{exc}", file=sys.stderr)
        return EXIT_INVALID
    policy = policies.get(args.stream)
    if policy is None:
        print(
            f"Stream '{args.stream}' is in no policy under {args.policy_dir}; the remediator only plans for "
            f"listed streams ({', '.join(sorted(policies.streams)) or 'none'}).",
            file=sys.stderr,
        )
        return EXIT_INVALID
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
    try:
        history = ActionHistory()
        if args.audit_table:
            audit = DynamoAuditLog(client("dynamodb", region=region, endpoint_url=endpoint), args.audit_table)
            history = ActionHistory(audit.applied_actions(args.stream, now - timedelta(hours=24)))
        result = build_plan(
            trigger,
            policy,
            KinesisStreams(client("kinesis", region=region, endpoint_url=endpoint)),
            CloudWatchMetrics(client("cloudwatch", region=region, endpoint_url=endpoint)),
            AwsServices(lambda service: client(service, region=region, endpoint_url=endpoint)),
            history,
            now,
        )
    except (ClientError, BotoCoreError) as exc:
        print(f"Cannot read stream '{args.stream}' from AWS: {exc}", file=sys.stderr)
        return EXIT_ERROR
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
    response = client("cloudformation", region=region, endpoint_url=endpoint).describe_stacks(StackName=stack)
    outputs = {o["OutputKey"]: o["OutputValue"] for o in response["Stacks"][0].get("Outputs", [])}
    if StackOutput.AUDIT_TABLE not in outputs:
        raise LookupError(f"stack '{stack}' has no output {StackOutput.AUDIT_TABLE}: pass --audit-table")
    return outputs[StackOutput.AUDIT_TABLE]


def history(args: argparse.Namespace) -> int:
    region, endpoint = args.region or os.environ.get("AWS_REGION"), args.endpoint_url
    since = utc_now() - args.since if args.since else None
    try:
        table_name = args.audit_table or find_audit_table(args.stack, region, endpoint)
        audit = DynamoAuditLog(client("dynamodb", region=region, endpoint_url=endpoint), table_name)
        rows = audit.history(args.stream, since)
    except LookupError as exc:
        print(f"Cannot find the audit table: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except (ClientError, BotoCoreError) as exc:
        print(f"Cannot read the audit trail of stream '{args.stream}' from AWS: {exc}", file=sys.stderr)
        return EXIT_ERROR
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


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="kinesis-remediator", description=__doc__)
    commands = root.add_subparsers(dest="command", required=True)

    commands.add_parser("reference", help="print the policy reference and the plugin catalogue (Markdown)")

    check = commands.add_parser("validate", help="validate policy files (default: policies/)")
    check.add_argument("paths", nargs="*", default=["policies"], help="policy files or directories")

    show = commands.add_parser("plan", help="print the plan the remediator would carry out now (read-only)")
    show.add_argument("--stream", required=True)
    show.add_argument("--symptom", required=True, choices=sorted(REGISTRY.symptoms))
    show.add_argument("--policy-dir", default="policies", type=Path)
    show.add_argument("--endpoint-url", help="e.g. http://127.0.0.1:5000 for a local emulator")
    show.add_argument("--region", help="AWS region (default: AWS_REGION, then your AWS configuration)")
    show.add_argument("--audit-table", help="the deployed audit table, to check cooldowns and budgets")
    show.add_argument("--alarm-prefix", default=DEFAULT_ALARM_PREFIX)
    show.add_argument("--json", action="store_true", help="print one JSON object")

    trail = commands.add_parser("history", help="print a stream's audit trail, newest first (read-only)")
    trail.add_argument("--stream", required=True)
    trail.add_argument(
        "--since", type=parse_duration, metavar="DURATION", help="only rows this recent: 30m, 6h, 7d (default: all)"
    )
    trail.add_argument("--json", action="store_true", help="print one JSON object, reasons and plans whole")
    trail.add_argument("--audit-table", help=f"the audit table (default: the stack's {StackOutput.AUDIT_TABLE} output)")
    trail.add_argument("--stack", default=STACK_NAME, help="the deployed stack, to find the audit table")
    trail.add_argument("--endpoint-url", help="e.g. http://127.0.0.1:5000 for a local emulator")
    trail.add_argument("--region", help="AWS region (default: AWS_REGION, then your AWS configuration)")
    return root


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.command == "validate":
        return validate(args.paths)
    if args.command == "reference":
        print(reference.markdown())
        return EXIT_OK
    if args.command == "history":
        return history(args)
    return plan(args)


if __name__ == "__main__":
    sys.exit(main())
