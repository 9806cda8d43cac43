"""IAM the remediator needs, declared by the plugins; the stack builds the role from these declarations.

Each grant names its IAM actions, a resource scope that resolves to ARNs from a stream's policy, and why.
Account-wide scope ('*') is used only where the Service Authorization Reference lists no resource type
for the IAM action.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from remediator.core.policy import StreamPolicy


class ArnFormatter(Protocol):
    """Builds an ARN in the deployment's partition, region and account (the stack passes Stack.format_arn);
    IAM's ARNs have no region."""

    def __call__(self, *, service: str, resource: str, resource_name: str, arn_format: str = "slash") -> str: ...


Conditions = dict[str, dict[str, list[str]]]  # operator -> condition key -> values


@dataclass(frozen=True)
class ResourceScope:
    """What a grant's resources are, resolved per stream policy: 'stream', 'lambda-function', '*'...

    `conditions` narrows a wildcard resource where IAM offers a key for it (an event-source mapping's
    function, for example); values from several policies are merged.
    """

    name: str
    resolve: Callable[[StreamPolicy, ArnFormatter], tuple[str, ...]] = field(compare=False)
    conditions: Callable[[StreamPolicy, ArnFormatter], Conditions] | None = field(default=None, compare=False)

    @property
    def account_wide(self) -> bool:
        return self.name == "account"


def _streams(policy: StreamPolicy, arn: ArnFormatter) -> tuple[str, ...]:
    return (arn(service="kinesis", resource="stream", resource_name=policy.name),)


def _stream_consumers(policy: StreamPolicy, arn: ArnFormatter) -> tuple[str, ...]:
    # A consumer's ARN ends in its creation time, which changes when it is re-created.
    return (arn(service="kinesis", resource="stream", resource_name=f"{policy.name}/consumer/*"),)


def _function_arns(policy: StreamPolicy, arn: ArnFormatter) -> tuple[str, ...]:
    return tuple(
        arn(service="lambda", resource="function", resource_name=c.function, arn_format="colon")
        for c in policy.lambda_consumers
    )


def _event_source_mappings(policy: StreamPolicy, arn: ArnFormatter) -> tuple[str, ...]:
    # Mapping UUIDs are not known at synth: any mapping, narrowed to the consumer functions by condition.
    if not policy.lambda_consumers:
        return ()
    return (arn(service="lambda", resource="event-source-mapping", resource_name="*", arn_format="colon"),)


def _mapping_functions(policy: StreamPolicy, arn: ArnFormatter) -> Conditions:
    return {"StringEquals": {"lambda:FunctionArn": list(_function_arns(policy, arn))}}


def _lease_tables(policy: StreamPolicy, arn: ArnFormatter) -> tuple[str, ...]:
    return tuple(
        arn(service="dynamodb", resource="table", resource_name=app.lease_table_name) for app in policy.kcl_applications
    )


def _roles(policy: StreamPolicy, arn: ArnFormatter) -> tuple[str, ...]:
    # A consumer function's execution role is only known at run time (GetFunctionConfiguration).
    if not policy.lambda_consumers:
        return ()
    return (arn(service="iam", resource="role", resource_name="*"),)


def dynamodb_tables(names: Callable[[StreamPolicy], Iterable[str]]) -> ResourceScope:
    """Tables named by the policy."""

    def resolve(policy: StreamPolicy, arn: ArnFormatter) -> tuple[str, ...]:
        return tuple(arn(service="dynamodb", resource="table", resource_name=name) for name in names(policy))

    return ResourceScope("dynamodb-table", resolve)


STREAM = ResourceScope("stream", _streams)
STREAM_CONSUMER = ResourceScope("stream-consumer", _stream_consumers)
LAMBDA_FUNCTION = ResourceScope("lambda-function", _function_arns)
EVENT_SOURCE_MAPPING = ResourceScope("event-source-mapping", _event_source_mappings, _mapping_functions)
# CreateEventSourceMapping has no resource type; the condition keeps it to the consumer functions. A policy
# without a Lambda consumer needs none (else '*' would carry an empty condition list).
CONSUMER_FUNCTION_MAPPINGS = ResourceScope(
    "account", lambda policy, arn: ("*",) if policy.lambda_consumers else (), _mapping_functions
)
LEASE_TABLE = ResourceScope("lease-table", _lease_tables)
CONSUMER_ROLES = ResourceScope("iam-role", _roles)
ACCOUNT = ResourceScope("account", lambda policy, arn: ("*",))


@dataclass(frozen=True)
class IamGrant:
    actions: tuple[str, ...]
    scope: ResourceScope
    why: str

    def resources(self, policy: StreamPolicy, arn: ArnFormatter) -> tuple[str, ...]:
        return self.scope.resolve(policy, arn)

    def conditions(self, policy: StreamPolicy, arn: ArnFormatter) -> Conditions:
        return self.scope.conditions(policy, arn) if self.scope.conditions else {}
