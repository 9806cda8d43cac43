"""Builds the CDK app from the policy files. Shared by app.py and the infrastructure tests."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from aws_cdk import App, CliCredentialsStackSynthesizer, DefaultStackSynthesizer, IStackSynthesizer, Validations
from cdk_nag import AwsSolutionsChecks

from remediator.core.alarm import DEFAULT_ALARM_PREFIX
from remediator.policy_files import load_policies
from stacks.remediator_stack import KinesisRemediatorStack

PROJECT_ROOT = Path(__file__).resolve().parents[1]
LAYER_DIR = PROJECT_ROOT / "build" / "layer"
STACK_NAME = "KinesisRemediator"
PARAMETER_ROOT = "/kinesis-remediator"
# Used by `make demo`: the emulator has no bootstrap roles, so the CLI's own credentials deploy,
# and assets go to a bucket the demo creates first.
LOCAL_ASSETS_BUCKET = "kinesis-remediator-local-assets"


class LayerNotBuilt(RuntimeError):
    pass


def synthesizer(local: bool) -> IStackSynthesizer:
    if local:
        return CliCredentialsStackSynthesizer(
            file_assets_bucket_name=LOCAL_ASSETS_BUCKET, bucket_prefix="assets/"
        )
    return DefaultStackSynthesizer()


def build_app(
    app: App,
    policy_paths: Sequence[str | Path],
    *,
    alarm_prefix: str = DEFAULT_ALARM_PREFIX,
    layer_dir: Path = LAYER_DIR,
    local: bool = False,
) -> KinesisRemediatorStack:
    """Validate the policies (raising PolicyValidationError) and add the stack with cdk-nag applied."""
    policies = load_policies(policy_paths)
    if not (layer_dir / "python").is_dir():
        raise LayerNotBuilt(f"Lambda layer not built at {layer_dir}: run `make layer` first")
    stack = KinesisRemediatorStack(
        app,
        STACK_NAME,
        policies=policies,
        alarm_prefix=alarm_prefix,
        parameter_root=PARAMETER_ROOT,
        layer_dir=layer_dir,
        synthesizer=synthesizer(local),
        description="Kinesis Remediator: alarms, remediator Lambda, audit and notifications",
    )
    Validations.of(app).add_plugins(AwsSolutionsChecks(app, verbose=True))
    return stack
