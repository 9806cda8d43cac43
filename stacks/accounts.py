"""Many accounts and regions: where each stream lives, which member stacks that asks for, and the names the hub and
its members must agree on.

A stream is identified by (account, region, name). A policy's `account`/`region` left empty mean the hub's own.
Every other (account, region) named in the policies gets a member stack (stacks/member_stack.py): the alarms of its
streams, a rule forwarding their state changes to the hub's default event bus, and (once per account) the role
`KinesisRemediatorMember` the hub's remediator role may assume with the external id.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Final

from remediator.core.deployment import STACK_NAME
from remediator.core.policy import StreamPolicy
from remediator.policy_files import PolicySet

# CDK context values (cdk deploy -c NAME=VALUE), read by app.py.
HUB_ACCOUNT_CONTEXT: Final = "hubAccount"
HUB_REGION_CONTEXT: Final = "hubRegion"
EXTERNAL_ID_CONTEXT: Final = "memberExternalId"

ACCOUNT_ID = re.compile(r"^\d{12}$")
REGION = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d$")
# IAM's sts:ExternalId: 2-1,224 characters of [\w+=,.@:/-] (AssumeRole's ExternalId parameter).
EXTERNAL_ID = re.compile(r"^[\w+=,.@:/-]{2,1224}$")


class MemberSettingsError(ValueError):
    """The policies name member accounts or regions, and the app cannot place the hub or lacks the external id."""


@dataclass(frozen=True, order=True)
class Place:
    """An (account, region) where streams live."""

    account: str
    region: str

    def __str__(self) -> str:
        return f"{self.account}/{self.region}"


@dataclass(frozen=True)
class Hub:
    """Where the hub is deployed, and the external id it passes to sts:AssumeRole."""

    account: str
    region: str
    external_id: str
    alarm_prefix: str

    @property
    def place(self) -> Place:
        return Place(self.account, self.region)

    @property
    def role_name(self) -> str:
        return hub_role_name(self.alarm_prefix, self.region)

    def role_arn(self, partition: str = "aws") -> str:
        return f"arn:{partition}:iam::{self.account}:role/{self.role_name}"

    def event_bus_arn(self, partition: str = "aws") -> str:
        return f"arn:{partition}:events:{self.region}:{self.account}:event-bus/default"


def hub_role_name(alarm_prefix: str, region: str) -> str:
    """The hub remediator role's fixed name once the policies name members: the members' trust policies name it (they
    are deployed to other accounts, where no CloudFormation reference reaches). Per region and alarm prefix, as IAM
    names are account-wide and two hubs (two regions, or two prefixes) may share an account. At most 64 characters."""
    digest = hashlib.sha256(alarm_prefix.encode()).hexdigest()[:8]
    return f"KinesisRemediatorHub-{digest}-{region}"


def member_stack_name(place: Place) -> str:
    return f"{STACK_NAME}Member-{place.account}-{place.region}"


def place_of(policy: StreamPolicy, hub: Place) -> Place:
    """Where a stream lives: its policy's account and region, each defaulting to the hub's."""
    return Place(policy.account or hub.account, policy.region or hub.region)


def names_members(policies: PolicySet) -> bool:
    """Whether any policy names an account or a region (so the app must know where the hub is)."""
    return any(p.account or p.region for p in policies.streams.values())


def subset(policies: PolicySet, keys: list[str]) -> PolicySet:
    return replace(
        policies,
        streams={k: policies.streams[k] for k in keys},
        sources={k: policies.sources[k] for k in keys if k in policies.sources},
    )


@dataclass(frozen=True)
class Placement:
    """The policies split by where their streams live: the hub's own, and each member's."""

    local: PolicySet
    members: Mapping[Place, PolicySet]

    @property
    def member_accounts(self) -> list[str]:
        return sorted({place.account for place in self.members})


def place_policies(policies: PolicySet, hub: Place | None) -> Placement:
    """Split the policies by (account, region). Without a hub place (no member named), every stream is the hub's."""
    if hub is None:
        return Placement(local=policies, members={})
    by_place: dict[Place, list[str]] = {}
    for key, policy in sorted(policies.streams.items()):
        by_place.setdefault(place_of(policy, hub), []).append(key)
    local = subset(policies, by_place.pop(hub, []))
    return Placement(local=local, members={place: subset(policies, keys) for place, keys in sorted(by_place.items())})


def hub_settings(
    policies: PolicySet,
    *,
    account: object = None,
    region: object = None,
    external_id: object = None,
    alarm_prefix: str,
    environ: Mapping[str, str] | None = None,
) -> Hub | None:
    """Where the hub goes, when the policies name members (None when they do not: the single-account app, unchanged).

    The account and region come from the `hubAccount`/`hubRegion` context, else from CDK_DEFAULT_ACCOUNT and
    CDK_DEFAULT_REGION, which the CDK CLI sets from the credentials it deploys with: the account and region the hub
    stack (environment-agnostic) is deployed into. The external id has no default: it comes from `memberExternalId`.
    """
    if not names_members(policies):
        return None
    env = os.environ if environ is None else environ
    account = account or env.get("CDK_DEFAULT_ACCOUNT")
    region = region or env.get("CDK_DEFAULT_REGION")
    problems = []
    if not isinstance(account, str) or not ACCOUNT_ID.match(account):
        problems.append(
            f"the hub's account ({account!r}): pass -c {HUB_ACCOUNT_CONTEXT}=<12 digits>, or deploy with credentials "
            "for the hub account (the CDK CLI then sets CDK_DEFAULT_ACCOUNT)"
        )
    if not isinstance(region, str) or not REGION.match(region):
        problems.append(
            f"the hub's region ({region!r}): pass -c {HUB_REGION_CONTEXT}=<region>, or set AWS_REGION (the CDK CLI "
            "then sets CDK_DEFAULT_REGION)"
        )
    if not isinstance(external_id, str) or not EXTERNAL_ID.match(external_id):
        problems.append(
            f"the external id the hub passes to sts:AssumeRole: pass -c {EXTERNAL_ID_CONTEXT}=<2-1224 characters of "
            "letters, digits and +=,.@:/-> (the same value for every deploy of this app)"
        )
    if not problems:
        # The hub finds its own streams' policies by name only (remediator.service._policy): a policy that writes out
        # the hub's own account and region would protect nothing, and no member stack may target the hub's own bus.
        hub = Place(str(account), str(region))
        for key, policy in sorted(policies.streams.items()):
            if (policy.account or policy.region) and place_of(policy, hub) == hub:
                problems.append(
                    f"{policies.sources.get(key, '?')}: stream '{policy.name}': account/region name the hub's own "
                    f"({hub}): leave them out for the hub's own streams"
                )
    if problems:
        raise MemberSettingsError(
            "The policies name other accounts or regions (member stacks), so the app needs:\n  - "
            + "\n  - ".join(problems)
        )
    assert isinstance(account, str) and isinstance(region, str) and isinstance(external_id, str)
    return Hub(account=account, region=region, external_id=external_id, alarm_prefix=alarm_prefix)
