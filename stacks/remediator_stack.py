"""The Kinesis Remediator core stack: wires the constructs; holds no logic of its own.

The core stack holds what the whole deployment shares (the remediator Lambda, its state, notifications,
self-monitoring, the dashboard); each stream's alarms and policy parameter live in one of the nested stream stacks
(stacks/constructs/stream_stack.py), chosen by a stable hash of the stream (stacks/fleet.py). One `cdk deploy`
deploys them all."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from aws_cdk import CfnOutput, Stack
from constructs import Construct
from remediator.core.deployment import Env, StackOutput
from remediator.policy_files import PolicySet

from stacks.accounts import Hub, Place, place_policies
from stacks.constructs.dashboard import RemediatorDashboard
from stacks.constructs.fleet_alarms import FleetAlarms
from stacks.constructs.hub_bus import HubEventBus
from stacks.constructs.notifications import Notifications
from stacks.constructs.remediator import Remediator
from stacks.constructs.self_monitoring import SelfMonitoring, operator_emails
from stacks.constructs.state import RemediatorState
from stacks.constructs.stream_stack import AllStreamAlarms, StreamStack, buckets, check_sizes
from stacks.fleet import bucket_id

__all__ = ["AllStreamAlarms", "KinesisRemediatorStack", "buckets"]


class KinesisRemediatorStack(Stack):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        policies: PolicySet,
        alarm_prefix: str,
        parameter_root: str,
        layer_dir: Path,
        operators: object = None,
        stream_stacks: bool = True,
        hub: Hub | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        # Many accounts (stacks/accounts.py): the hub's own streams get their alarms and IAM here; every stream's
        # policy goes to SSM and notifications; members' streams get theirs in member stacks (stacks/member_stack.py).
        placement = place_policies(policies, hub.place if hub else None)
        local = placement.local
        self.members: Mapping[Place, Stack] = {}  # the member stacks (stacks.member_stack.add_member_stacks)
        self.state = RemediatorState(self, "State", parameter_root=parameter_root)
        self.notifications = Notifications(self, "Notifications", policies=policies)
        # bucket -> its nested stack (every stream's policy parameter, the hub's own streams' alarms); a bucket
        # without streams has none. Without stream stacks (the first step of the upgrade from a single-stack
        # deployment: README, "Fleet scale"), none at all.
        self.stream_stacks: dict[int, StreamStack] = {
            bucket: StreamStack(
                self,
                bucket_id(bucket),
                bucket=bucket,
                policies=members,
                alarm_policies=PolicySet(
                    streams={k: p for k, p in members.streams.items() if k in local.streams},
                    sources={k: members.sources[k] for k in members.streams if k in local.streams},
                ),
                alarm_prefix=alarm_prefix,
                parameter_root=parameter_root,
            )
            for bucket, members in (buckets(policies) if stream_stacks else {}).items()
        }
        self.alarms = AllStreamAlarms.of(self.stream_stacks.values())
        # Streams with `alarms: fleet`: shared Metrics Insights alarms; StreamAlarms leaves theirs out. The hub's
        # own streams only: a member's stream keeps per-stream alarms in its member stack.
        self.fleet_alarms = FleetAlarms(self, "FleetAlarms", policies=local, prefix=alarm_prefix)
        self.remediator = Remediator(
            self,
            "Remediator",
            policies=policies,
            state=self.state,
            notifications=self.notifications,
            alarm_prefix=alarm_prefix,
            layer_dir=layer_dir,
            local_policies=local,
            role_name=hub.role_name if hub else None,
        )
        self.member_events: HubEventBus | None = None
        if hub is not None:
            # The members' accounts may put events on the hub's bus; the remediator gets the external id.
            others = [account for account in placement.member_accounts if account != hub.account]
            if others:
                self.member_events = HubEventBus(self, "MemberEvents", accounts=others, alarm_prefix=alarm_prefix)
            self.remediator.function.add_environment(Env.MEMBER_EXTERNAL_ID, hub.external_id)
        self.self_monitoring = SelfMonitoring(
            self,
            "SelfMonitoring",
            function=self.remediator.function,
            dead_letter_queue=self.remediator.dead_letter_queue,
            alarm_prefix=alarm_prefix,
            # The `operatorEmails` context value as given (a list or a comma-separated string), else the policies'.
            emails=operator_emails(operators, policies),
        )
        self.dashboard = RemediatorDashboard(
            self,
            "Dashboard",
            policies=local,
            specs=self.alarms.specs,
            function=self.remediator.function,
        )
        for name, value in {
            "RemediatorFunctionName": self.remediator.function.function_name,
            "NotificationTopicArn": self.notifications.topic.topic_arn,
            StackOutput.AUDIT_TABLE: self.state.audit_table.table_name,
            "KillSwitchParameter": self.state.kill_switch.parameter_name,
            "DeadLetterQueueUrl": self.remediator.dead_letter_queue.queue_url,
            "AlarmStateChangeRule": self.remediator.rule.rule_name,
            "OperatorsTopicArn": self.self_monitoring.topic.topic_arn,
            StackOutput.DASHBOARD_NAME: self.dashboard.dashboard.dashboard_name,
            StackOutput.DASHBOARD_URL: self.dashboard.console_url,
        }.items():
            CfnOutput(self, name, value=value)

    def check_sizes(self) -> None:
        """Every stack within MAX_RESOURCES_PER_STACK (stacks/fleet.py); raises StackTooLarge naming the stack."""
        check_sizes(
            self,
            self.stream_stacks.values(),
            what_to_do="the core stack grows with the number of distinct notify.emails addresses (one e-mail "
            "subscription each) and of operator addresses: have teams share a list address",
        )
