"""The hub's default event bus admits the member accounts: a bus policy statement allowing events:PutEvents from
exactly the accounts the policies name (the members' forwarding rules put our alarms' state changes there, and the
remediator's rule, which does not pin the account, takes them). A member in the hub's own account (another region)
needs no statement: its forwarding role's identity policy suffices within one account.

The remediator still checks each event's account against the stream's policy (a member cannot make the hub act on
another member's streams); this statement only decides who may send at all.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

from aws_cdk import CfnResource, Stack
from constructs import Construct

DEFAULT_BUS = "default"


def statement_id(alarm_prefix: str) -> str:
    """The bus policy statement's id: one per hub deployment (a bus policy is shared by everything in the account and
    region; two hubs with two alarm prefixes keep one statement each)."""
    return f"KinesisRemediatorMembers-{hashlib.sha256(alarm_prefix.encode()).hexdigest()[:8]}"


class HubEventBus(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, accounts: Sequence[str], alarm_prefix: str) -> None:
        super().__init__(scope, construct_id)
        stack = Stack.of(self)
        self.accounts = sorted(set(accounts))
        self.bus_arn = stack.format_arn(service="events", resource="event-bus", resource_name=DEFAULT_BUS)
        self.statement: dict[str, Any] = {
            "Sid": statement_id(alarm_prefix),
            "Effect": "Allow",
            "Principal": {"AWS": [f"arn:{stack.partition}:iam::{account}:root" for account in self.accounts]},
            "Action": "events:PutEvents",
            "Resource": self.bus_arn,
        }
        # A raw resource: events.EventBusPolicy fails to render a PolicyStatement from Python (jsii: circular
        # reference), and CfnEventBusPolicy prints a deprecation warning on every synth (its unused `Principal`).
        self.policy = CfnResource(
            self,
            "MemberAccounts",
            type="AWS::Events::EventBusPolicy",
            properties={
                "EventBusName": DEFAULT_BUS,
                "StatementId": statement_id(alarm_prefix),
                "Statement": self.statement,
            },
        )
