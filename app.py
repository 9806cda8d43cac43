#!/usr/bin/env python3
"""CDK entry point. Context: policyDir (default: policies), alarmPrefix, operatorEmails (the addresses the
remediator's own alarms e-mail: a list or a comma-separated string; default: every address in the policies),
withoutStreamStacks (true: the core and member stacks without any stream's alarms or parameter, the first deploy of
the upgrade from a single-stack deployment; README, "Fleet scale"). When policies name other accounts or regions
(member stacks): memberExternalId (required), hubAccount and hubRegion (default: the account and region of the
credentials `cdk deploy` runs with)."""

import sys

from aws_cdk import App
from remediator.core.deployment import DEFAULT_ALARM_PREFIX
from remediator.policy_files import NoPolicyFiles, PolicyValidationError

from stacks.accounts import EXTERNAL_ID_CONTEXT, HUB_ACCOUNT_CONTEXT, HUB_REGION_CONTEXT, MemberSettingsError
from stacks.app_builder import LayerNotBuilt, build_app, no_policy_message
from stacks.constructs.dashboard import DashboardTooLarge
from stacks.constructs.self_monitoring import OPERATOR_EMAILS_CONTEXT, OperatorEmailsError
from stacks.fleet import StackTooLarge


def main() -> None:
    app = App()
    policy_dir = app.node.try_get_context("policyDir") or "policies"
    try:
        build_app(
            app,
            [policy_dir],
            alarm_prefix=app.node.try_get_context("alarmPrefix") or DEFAULT_ALARM_PREFIX,
            operator_emails=app.node.try_get_context(OPERATOR_EMAILS_CONTEXT),
            without_stream_stacks=str(app.node.try_get_context("withoutStreamStacks")).lower() == "true",
            hub_account=app.node.try_get_context(HUB_ACCOUNT_CONTEXT),
            hub_region=app.node.try_get_context(HUB_REGION_CONTEXT),
            member_external_id=app.node.try_get_context(EXTERNAL_ID_CONTEXT),
        )
    except NoPolicyFiles:
        print(no_policy_message(policy_dir), file=sys.stderr)
        sys.exit(1)
    except PolicyValidationError as exc:
        print(f"Invalid policy ({len(exc.errors)} error(s)):\n{exc}", file=sys.stderr)
        sys.exit(1)
    except (LayerNotBuilt, OperatorEmailsError, DashboardTooLarge, MemberSettingsError, StackTooLarge) as exc:
        print(str(exc), file=sys.stderr)
        sys.exit(1)
    app.synth()


if __name__ == "__main__":
    main()
