"""The remediator's IAM, derived from the registries and the policies; the stack turns it into a role.

Pure: ARNs come from an ArnFormatter (the stack passes Stack.format_arn), so tests can check what a
handler calls against the same list the stack grants.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from remediator.core.evidence import READ_GRANTS
from remediator.core.grants import ArnFormatter, Conditions, IamGrant
from remediator.core.policy import Mode, StreamPolicy
from remediator.core.registry import REGISTRY


@dataclass(frozen=True)
class Permission:
    actions: tuple[str, ...]
    resources: tuple[str, ...]
    scope: str
    why: str
    conditions: Conditions = field(default_factory=dict)

    @property
    def account_wide(self) -> bool:
        return self.resources == ("*",)


def grants_for(policy: StreamPolicy) -> list[IamGrant]:
    """What one stream's policy needs: evidence reads, its enabled symptoms' reads, its enabled actions' reads
    (a dry-run plan runs the actions' checks too), and, in enforce mode, its enabled actions."""
    grants = list(READ_GRANTS)
    for symptom in REGISTRY.symptoms.values():
        if symptom.detector(policy).enabled:
            grants.extend(symptom.read_grants)
    for action in REGISTRY.actions.values():
        if action.block(policy).enabled:
            grants.extend(action.read_grants)
    # Dry-run never changes anything: a policy's write grants come with enforce (a redeploy, which
    # `cdk deploy --require-approval broadening` shows as widening IAM).
    if policy.mode == Mode.ENFORCE:
        for action in REGISTRY.actions.values():
            if action.block(policy).enabled:
                grants.extend(action.grants)
    return grants


def permissions(policies: Iterable[StreamPolicy], arn: ArnFormatter) -> list[Permission]:
    """One permission per declared grant, its resources resolved over every policy that needs it."""
    merged: dict[tuple[tuple[str, ...], str], tuple[IamGrant, list[str], Conditions, list[str]]] = {}
    for policy in policies:
        for grant in grants_for(policy):
            key = (grant.actions, grant.scope.name)
            _, resources, conditions, whys = merged.setdefault(key, (grant, [], {}, []))
            if grant.why not in whys:
                whys.append(grant.why)
            resources.extend(r for r in grant.resources(policy, arn) if r not in resources)
            for operator, keys in grant.conditions(policy, arn).items():
                for name, values in keys.items():
                    known = conditions.setdefault(operator, {}).setdefault(name, [])
                    known.extend(v for v in values if v not in known)
    return [
        Permission(
            actions=grant.actions,
            resources=tuple(resources),
            scope=grant.scope.name,
            why="; ".join(whys),
            conditions=conditions,
        )
        for grant, resources, conditions, whys in merged.values()
        if resources
    ]


def allows(permissions: Iterable[Permission], action: str, resource: str) -> bool:
    """Whether the permissions grant `action` on `resource` (a trailing '*' matches any suffix)."""
    for permission in permissions:
        if action not in permission.actions:
            continue
        for granted in permission.resources:
            if granted == resource or (granted.endswith("*") and resource.startswith(granted[:-1])):
                return True
    return False
