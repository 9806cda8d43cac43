"""A member stack: one per (account, region) the policies name besides the hub's own.

It holds the alarms of that member's streams (in nested stream stacks, by the hub's hash and bucket ids:
stacks/fleet.py, stacks/constructs/stream_stack.py), a rule on the member's default event bus forwarding our alarms'
state changes to the hub's default event bus, and, in one stack per member account, the role
`KinesisRemediatorMember` the hub's remediator role may assume with the external id, allowed exactly what the
registries grant for that account's streams. No Lambda, no table, no topic: the hub decides, acts (through the
role) and audits.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aws_cdk import Acknowledgment, ArnFormat, CfnOutput, Environment, Stack, Validations
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from constructs import Construct
from remediator.core.deployment import MEMBER_ROLE_NAME
from remediator.core.grants import ArnFormatter
from remediator.core.iam import Permission, permissions
from remediator.policy_files import PolicySet

from stacks.accounts import Hub, Place, member_stack_name, place_policies
from stacks.constructs.stream_stack import AllStreamAlarms, StreamStack, buckets, check_sizes
from stacks.fleet import bucket_id

EVENTS_SERVICE = "events.amazonaws.com"


def _arn_formatter(stack: Stack, region: str) -> ArnFormatter:
    def arn(*, service: str, resource: str, resource_name: str, arn_format: str = "slash") -> str:
        separator = ArnFormat.COLON_RESOURCE_NAME if arn_format == "colon" else ArnFormat.SLASH_RESOURCE_NAME
        # IAM is global: its ARNs have no region.
        return stack.format_arn(
            service=service,
            resource=resource,
            resource_name=resource_name,
            arn_format=separator,
            region="" if service == "iam" else region,
        )

    return arn


def regional_permissions(stack: Stack, by_region: Mapping[str, PolicySet]) -> list[Permission]:
    """What the registries declare for these policies, with ARNs in this stack's partition and account and in each
    policy's region (one member role serves all of its account's regions)."""
    found: list[Permission] = []
    for region, policies in sorted(by_region.items()):
        found += permissions((p for _, p in sorted(policies.streams.items())), _arn_formatter(stack, region))
    return found


class KinesisRemediatorMemberStack(Stack):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        place: Place,
        policies: PolicySet,
        hub: Hub,
        alarm_pattern: Mapping[str, Any],
        alarm_prefix: str,
        role_policies: Mapping[str, PolicySet] | None = None,
        stream_stacks: bool = True,
        **kwargs: Any,
    ) -> None:
        """`policies`: this member's streams (its alarms). `role_policies`: region -> the streams of this account in
        that region, when this stack holds the account's member role (None: another region's member stack does).
        `alarm_pattern`: the hub rule's event pattern, forwarded as is (the member sends exactly what the hub takes).
        `stream_stacks` False: no alarm at all (the first deploy of the upgrade from alarms in the member stack
        itself: README, "Fleet scale")."""
        super().__init__(scope, construct_id, **kwargs)
        self.place = place
        # bucket -> its nested stack: the alarms of this member's streams in that bucket (the same bucket, by the
        # same hash of the stream's identity, as the hub's stream stack holding its policy parameter). Adding or
        # removing a stream changes its own bucket's nested stack only.
        self.stream_stacks: dict[int, StreamStack] = {
            bucket: StreamStack(
                self,
                bucket_id(bucket),
                bucket=bucket,
                policies=members,
                alarm_prefix=alarm_prefix,
                parameter_root=None,
            )
            for bucket, members in (buckets(policies) if stream_stacks else {}).items()
        }
        # Keyed (stream, symptom, qualifier), as StreamAlarms keys them.
        self.alarms = AllStreamAlarms.of(self.stream_stacks.values())
        # NOTE fleet alarms (H11-FLEET, stacks/constructs/fleet_alarms.py): once merged, a member's streams with
        # `alarms: fleet` need FleetAlarms(self, "FleetAlarms", policies=policies, prefix=alarm_prefix) here, as the
        # hub has for its own (there with the hub's local policies only). Their contributor state changes need nothing
        # more: the forwarding rule below copies the hub rule's pattern, whatever detail-types it lists.

        hub_bus = events.EventBus.from_event_bus_arn(self, "HubEventBus", hub.event_bus_arn(self.partition))
        # EventBridge sends to another account's (or region's) bus with a role of the sending account, allowed
        # events:PutEvents on that bus (CDK's EventBus target adds that statement to it). [EventBridge User Guide,
        # "Sending and receiving events between AWS accounts"; the hub's bus policy admits this account.]
        self.forwarding_role = iam.Role(
            self,
            "ForwardingRole",
            assumed_by=iam.ServicePrincipal(
                EVENTS_SERVICE, conditions={"StringEquals": {"aws:SourceAccount": place.account}}
            ),
            description="Kinesis Remediator member: EventBridge forwards our alarms' state changes to the hub's bus",
        )
        self.rule = events.Rule(
            self,
            "ForwardAlarmStateChanges",
            description="Our alarms' state changes (the hub's rule's pattern), forwarded to the hub's default event "
            "bus, where the remediator's rule takes them",
            event_pattern=events.EventPattern(**{_python_key(k): v for k, v in alarm_pattern.items()}),
        )
        self.rule.add_target(targets.EventBus(hub_bus, role=self.forwarding_role))

        self.role: iam.Role | None = None
        self.permissions: list[Permission] = []
        if role_policies is not None:
            self._member_role(hub, role_policies)

        CfnOutput(self, "ForwardingRule", value=self.rule.rule_name)
        CfnOutput(self, "HubEventBusArn", value=hub_bus.event_bus_arn)
        if self.role is not None:
            CfnOutput(self, "MemberRoleArn", value=self.role.role_arn)

    def check_sizes(self) -> None:
        """This stack and its stream stacks within MAX_RESOURCES_PER_STACK (stacks/fleet.py); raises StackTooLarge."""
        check_sizes(
            self,
            self.stream_stacks.values(),
            what_to_do="a member stack holds a rule, two roles and their policies, and one nested stack per bucket: "
            "this should not happen; report it",
        )

    def _member_role(self, hub: Hub, role_policies: Mapping[str, PolicySet]) -> None:
        # The principal is the hub's account, narrowed by aws:PrincipalArn to the hub's remediator role (a fixed name,
        # stacks.accounts.hub_role_name) and by the external id. Not the role's ARN as principal: IAM turns that into
        # the role's unique id when the policy is saved, refuses it while the role does not exist (a member could not
        # be deployed before its hub), and silently stops trusting a re-created hub role. The condition form has none
        # of these. [IAM User Guide: "AWS JSON policy elements: Principal" (IAM role principals) and "AWS global
        # condition context keys" (aws:PrincipalArn: for an assumed-role session, the role's ARN).]
        self.role = iam.Role(
            self,
            "MemberRole",
            role_name=MEMBER_ROLE_NAME,
            assumed_by=iam.AccountPrincipal(hub.account).with_conditions(
                {
                    "StringEquals": {"sts:ExternalId": hub.external_id},
                    "ArnEquals": {"aws:PrincipalArn": hub.role_arn(self.partition)},
                }
            ),
            description="Kinesis Remediator member: the hub's remediator may change only the streams its policies "
            "name in this account",
        )
        self.permissions = regional_permissions(self, role_policies)
        statements = [
            iam.PolicyStatement(actions=list(p.actions), resources=list(p.resources), conditions=p.conditions or None)
            for p in self.permissions
        ]
        policy = iam.Policy(self, "MemberPermissions", statements=statements)
        policy.attach_to_role(self.role)
        self._acknowledge_wildcards(policy)

    def _acknowledge_wildcards(self, policy: iam.Policy) -> None:
        """cdk-nag IAM5 findings, each with its reason: the registry's wildcard resources (ARNs are literal here: the
        stack's account, region and partition are known) and its account-wide actions."""
        for permission in self.permissions:
            for resource in permission.resources:
                if resource != "*" and "*" in resource:
                    Validations.of(policy).acknowledge(
                        Acknowledgment(
                            id=f"AwsSolutions-IAM5[Resource::{resource}]",
                            reason=f"{', '.join(permission.actions)} on {resource}: {permission.why}",
                        )
                    )
        wide = [p for p in self.permissions if p.account_wide]
        if wide:
            Validations.of(policy).acknowledge(
                Acknowledgment(
                    id="AwsSolutions-IAM5[Resource::*]",
                    reason=f"{', '.join(sorted({a for p in wide for a in p.actions}))} on '*': "
                    + "; ".join(dict.fromkeys(p.why for p in wide)),
                )
            )


def _python_key(key: str) -> str:
    """An event pattern's top-level field as events.EventPattern names it: detail-type -> detail_type."""
    return key.replace("-", "_")


def add_member_stacks(
    app: Construct,
    hub_stack: Stack,
    policies: PolicySet,
    hub: Hub | None,
    *,
    alarm_prefix: str,
    rule: events.Rule,
    stream_stacks: bool = True,
) -> dict[Place, KinesisRemediatorMemberStack]:
    """One member stack per (account, region) the policies name besides the hub's, each deployed with its own env
    (`cdk deploy --all` deploys the hub first: each member depends on it). The member role of an account lives in
    the stack of its first region (alphabetically) and covers all of the account's member regions. Each is checked
    against MAX_RESOURCES_PER_STACK (StackTooLarge). `stream_stacks` False: members without alarms (README, "Fleet
    scale", upgrading)."""
    if hub is None:
        return {}
    members = place_policies(policies, hub.place).members
    by_account: dict[str, dict[str, PolicySet]] = {}
    for place, subset_ in members.items():
        by_account.setdefault(place.account, {})[place.region] = subset_
    pattern = hub_stack.resolve(rule.node.default_child.event_pattern)  # type: ignore[union-attr]
    stacks: dict[Place, KinesisRemediatorMemberStack] = {}
    for place, subset_ in members.items():
        regions = by_account[place.account]
        stack = KinesisRemediatorMemberStack(
            app,
            member_stack_name(place),
            place=place,
            policies=subset_,
            hub=hub,
            alarm_pattern=pattern,
            alarm_prefix=alarm_prefix,
            role_policies=regions if place.region == min(regions) else None,
            stream_stacks=stream_stacks,
            env=Environment(account=place.account, region=place.region),
            description=f"Kinesis Remediator member {place}: alarms, forwarding to the hub, the hub's role",
        )
        stack.add_stack_dependency(hub_stack, "the hub's event bus admits the member before it forwards")
        stack.check_sizes()
        stacks[place] = stack
    return stacks
