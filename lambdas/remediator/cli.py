"""kinesis-remediator: validate policy files, and show the plan the remediator would carry out now."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path

from botocore.exceptions import BotoCoreError, ClientError

from remediator import reference
from remediator.clients.audit import DynamoAuditLog
from remediator.clients.aws import client
from remediator.clients.kinesis import KinesisStreams
from remediator.clients.metrics import CloudWatchMetrics
from remediator.clients.services import AwsServices
from remediator.core.alarm import DEFAULT_ALARM_PREFIX, AlarmTrigger, alarm_name
from remediator.core.history import ActionHistory
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
    return root


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.command == "validate":
        return validate(args.paths)
    if args.command == "reference":
        print(reference.markdown())
        return EXIT_OK
    return plan(args)


if __name__ == "__main__":
    sys.exit(main())
