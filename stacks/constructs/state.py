"""Where the remediator keeps its memory and its settings: audit and idempotency tables and the kill switch (in the
core stack), and one SSM parameter per protected stream holding its validated policy (PolicyParameters, in the
stream's own nested stack: stacks/fleet.py)."""

from __future__ import annotations

import json

from aws_cdk import RemovalPolicy
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_ssm as ssm
from constructs import Construct
from remediator.core.deployment import KILL_SWITCH_OFF
from remediator.policy_files import PolicySet

SSM_STANDARD_LIMIT = 4096


def policy_prefix(parameter_root: str) -> str:
    """The SSM path under which each stream's policy parameter lives (remediator.clients.policy_source reads it)."""
    return f"{parameter_root.rstrip('/')}/policies"


class RemediatorState(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, parameter_root: str) -> None:
        super().__init__(scope, construct_id)
        self.parameter_root = parameter_root.rstrip("/")
        self.policy_prefix = policy_prefix(parameter_root)

        self.audit_table = dynamodb.Table(
            self,
            "AuditTable",
            partition_key=dynamodb.Attribute(name="pk", type=dynamodb.AttributeType.STRING),
            sort_key=dynamodb.Attribute(name="sk", type=dynamodb.AttributeType.STRING),
            billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True
            ),
            time_to_live_attribute="expires_at",
            encryption=dynamodb.TableEncryption.AWS_MANAGED,
            removal_policy=RemovalPolicy.RETAIN,  # the audit trail outlives the stack
        )
        self.idempotency_table = dynamodb.Table(
            self,
            "IdempotencyTable",
            partition_key=dynamodb.Attribute(name="id", type=dynamodb.AttributeType.STRING),
            billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True
            ),
            time_to_live_attribute="expiration",  # Powertools idempotency's expiry attribute
            encryption=dynamodb.TableEncryption.AWS_MANAGED,
            removal_policy=RemovalPolicy.DESTROY,
        )
        self.kill_switch = ssm.StringParameter(
            self,
            "KillSwitch",
            parameter_name=f"{self.parameter_root}/kill-switch",
            string_value=KILL_SWITCH_OFF,
            description="Kinesis Remediator kill switch: any value other than 'off' stops every change.",
        )


class PolicyParameters(Construct):
    """One SSM parameter per stream, named by the stream: adding a stream moves no other."""

    def __init__(self, scope: Construct, construct_id: str, *, policies: PolicySet, parameter_root: str) -> None:
        super().__init__(scope, construct_id)
        prefix = policy_prefix(parameter_root)
        # L1, as StringParameter renders it: one jsii call per parameter (1,000 streams: README, "Fleet scale").
        self.parameters: dict[str, ssm.CfnParameter] = {}
        for name, policy in sorted(policies.streams.items()):
            value = json.dumps(policy.model_dump(mode="json"), separators=(",", ":"), sort_keys=True)
            if len(value) > SSM_STANDARD_LIMIT:
                raise ValueError(f"{policies.sources[name]}: stream '{name}': policy too large for SSM")
            self.parameters[name] = ssm.CfnParameter(
                self,
                f"Policy-{name}",
                type="String",
                name=f"{prefix}/{name}",
                value=value,
                description=f"Kinesis Remediator policy for stream {name} (from {policies.sources[name]})",
            )
