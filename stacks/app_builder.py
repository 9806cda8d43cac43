"""Builds the CDK app from the policy files. Shared by app.py and the infrastructure tests."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from aws_cdk import App, Validations
from cdk_nag import AwsSolutionsChecks
from remediator.core.deployment import DEFAULT_ALARM_PREFIX, STACK_NAME
from remediator.policy_files import EXAMPLE_POLICY, load_policies

from stacks.accounts import hub_settings
from stacks.member_stack import add_member_stacks
from stacks.remediator_stack import KinesisRemediatorStack

PROJECT_ROOT = Path(__file__).resolve().parents[1]
LAYER_DIR = PROJECT_ROOT / "build" / "layer"
PARAMETER_ROOT = "/kinesis-remediator"


class LayerNotBuilt(RuntimeError):
    pass


def no_policy_message(policy_dir: str | Path) -> str:
    """What `cdk synth` / `make deploy` say when the policy folder holds no policy: nothing would be protected,
    so nothing is deployed, and the user is told where policies go and how to start from the example."""
    return (
        f"No policy to deploy: {policy_dir} has no policy file (*.yaml or *.yml), so the remediator would watch "
        "no stream. Nothing was synthesized.\n"
        f"To start: cp {EXAMPLE_POLICY} {Path(policy_dir) / 'my-streams.yaml'}, put your own stream names and "
        "e-mail addresses in it, then run `make validate`.\n"
        "(Another folder: cdk synth -c policyDir=PATH, or make synth POLICY_DIR=PATH.)"
    )


def build_app(
    app: App,
    policy_paths: Sequence[str | Path],
    *,
    alarm_prefix: str = DEFAULT_ALARM_PREFIX,
    layer_dir: Path = LAYER_DIR,
    operator_emails: object = None,
    without_stream_stacks: bool = False,
    hub_account: object = None,
    hub_region: object = None,
    member_external_id: object = None,
) -> KinesisRemediatorStack:
    """Validate the policies (raising PolicyValidationError) and add the stack with cdk-nag applied.
    `without_stream_stacks`: the core stack alone, no stream's alarms or parameter (the first deploy of the upgrade
    from a single-stack deployment, which removes them from the core before the stream stacks create them again
    under the same names)."""
    policies = load_policies(policy_paths)
    if not (layer_dir / "python").is_dir():
        raise LayerNotBuilt(f"Lambda layer not built at {layer_dir}: run `make layer` first")
    # Members (stacks/accounts.py): None unless a policy names another account or region.
    hub = hub_settings(
        policies, account=hub_account, region=hub_region, external_id=member_external_id, alarm_prefix=alarm_prefix
    )
    stack = KinesisRemediatorStack(
        app,
        STACK_NAME,
        policies=policies,
        alarm_prefix=alarm_prefix,
        parameter_root=PARAMETER_ROOT,
        layer_dir=layer_dir,
        operators=operator_emails,
        stream_stacks=not without_stream_stacks,
        description="Kinesis Remediator: remediator Lambda, audit and notifications (the streams' alarms and "
        "policies are in its nested stacks)",
        hub=hub,
    )
    stack.members = add_member_stacks(
        app,
        stack,
        policies,
        hub,
        alarm_prefix=alarm_prefix,
        rule=stack.remediator.rule,
        stream_stacks=not without_stream_stacks,  # members' alarms are in their own stream stacks
    )
    stack.check_sizes()
    Validations.of(app).add_plugins(AwsSolutionsChecks(app, verbose=True))
    return stack
