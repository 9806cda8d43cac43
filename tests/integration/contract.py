"""The IAM contract of the integration suite: every AWS call the handler makes is one the stack grants.

Each recorded call is mapped to (IAM action, resource ARN) and checked against one of two sources:

- the stack's own resources (kill switch and policy parameters, audit and idempotency tables, topic), with
  the fixed list of actions that stacks/constructs/remediator.py grants on each (the infrastructure tests
  check the template grants exactly those; nothing is imported from `stacks`, CDK is heavy);
- everything else: the registry-derived permissions, `remediator.core.iam.permissions(...)`, over the
  policies deployed at the time of the call (the stack builds its registry statements from exactly these).

A mutating call on a stream must also be allowed by that stream's own valid policy: a stream with no valid
policy is never changed, even where a grant is account-wide (kinesis:UpdateShardCount). A call that maps
to no resource is reported, so a new service cannot slip by unchecked: map it in `resource_of`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError
from remediator.core.iam import Permission, allows, permissions
from remediator.core.policy import StreamPolicy
from remediator.core.ports import iam_action
from remediator.core.registry import REGISTRY

from tests.fakes import ACCOUNT, REGION

# "Simulate": iam:SimulatePrincipalPolicy evaluates policies and changes nothing (remediator.core.ports reads);
# "Lookup": cloudtrail:LookupEvents reads the event history.
READ_PREFIXES = ("Describe", "List", "Get", "BatchGet", "Query", "Scan", "Simulate", "Lookup")


@dataclass(frozen=True)
class ApiCall:
    service: str
    operation: str
    params: dict[str, Any]

    @property
    def iam_action(self) -> str:
        return iam_action(self.service, self.operation)


def is_read(operation: str) -> bool:
    return operation.startswith(READ_PREFIXES)


def arn(*, service: str, resource: str, resource_name: str, arn_format: str = "slash") -> str:
    """An ArnFormatter for the test account and region, as the stack's Stack.format_arn builds them (IAM is
    global: its ARNs have no region)."""
    separator = ":" if arn_format == "colon" else "/"
    region = "" if service == "iam" else REGION
    return f"arn:aws:{service}:{region}:{ACCOUNT}:{resource}{separator}{resource_name}"


def parameter_arn(name: str) -> str:
    return arn(service="ssm", resource="parameter", resource_name=name.lstrip("/"))


def table_arn(name: str) -> str:
    return arn(service="dynamodb", resource="table", resource_name=name)


def stream_arn(name: str) -> str:
    return arn(service="kinesis", resource="stream", resource_name=name)


class UnmappedCall(LookupError):
    """A call the contract cannot place on a resource: map it before the handler may make it."""


# Calls on no resource: the Service Authorization Reference lists no resource type for them.
ACCOUNT_WIDE = {("kinesis", "DescribeLimits"), ("cloudtrail", "LookupEvents")}


def _kinesis(call: ApiCall) -> str:
    params = call.params
    if (call.service, call.operation) in ACCOUNT_WIDE:
        return "*"
    for key in ("ConsumerARN", "StreamARN", "ResourceARN"):
        if key in params:
            return str(params[key])
    if "StreamName" in params:
        return stream_arn(str(params["StreamName"]))
    raise UnmappedCall("no StreamARN, StreamName or ConsumerARN")


def _cloudtrail(call: ApiCall) -> str:
    if (call.service, call.operation) in ACCOUNT_WIDE:
        return "*"
    raise UnmappedCall("only LookupEvents is mapped")


def alarm_arn(name: str) -> str:
    return arn(service="cloudwatch", resource="alarm", resource_name=name, arn_format="colon")


def schedule_arn(group: str, name: str) -> str:
    return arn(service="scheduler", resource="schedule", resource_name=f"{group}/{name}")


def _cloudwatch(call: ApiCall) -> str:
    if call.operation == "GetMetricData":
        return "*"  # the Service Authorization Reference lists no resource type for it
    if call.operation == "DescribeAlarms":
        names = call.params.get("AlarmNames", [])
        if len(names) != 1 or set(call.params) - {"AlarmNames", "AlarmTypes"}:
            raise UnmappedCall("DescribeAlarms is mapped for exactly one alarm name")
        return alarm_arn(str(names[0]))
    if call.operation == "DescribeAlarmContributors":  # a fleet alarm's contributors (follow-through)
        return alarm_arn(str(call.params["AlarmName"]))
    raise UnmappedCall("only GetMetricData, DescribeAlarms and DescribeAlarmContributors are mapped")


def _scheduler(call: ApiCall) -> str:
    if "Name" not in call.params:
        raise UnmappedCall("no Name")
    return schedule_arn(str(call.params.get("GroupName", "default")), str(call.params["Name"]))


def lambda_arn(resource: str, name: str) -> str:
    return (
        name
        if name.startswith("arn:")
        else arn(service="lambda", resource=resource, resource_name=name, arn_format="colon")
    )


def _lambda(call: ApiCall) -> str:
    params = call.params
    # Get/Update/DeleteEventSourceMapping act on the mapping (UpdateEventSourceMapping's FunctionName would
    # retarget it), so the UUID decides before any FunctionName.
    if call.operation.endswith("EventSourceMapping") and "UUID" in params:
        return lambda_arn("event-source-mapping", str(params["UUID"]))
    if "FunctionName" in params:
        return lambda_arn("function", str(params["FunctionName"]))
    if "UUID" in params:
        return lambda_arn("event-source-mapping", str(params["UUID"]))
    raise UnmappedCall("no FunctionName or UUID")


def mapping_uuid(resource: str) -> str | None:
    """The UUID in an event-source mapping ARN."""
    prefix = lambda_arn("event-source-mapping", "")
    return resource[len(prefix) :] if resource.startswith(prefix) else None


def _one(key: str, to_arn: Callable[[str], str] = str) -> Callable[[ApiCall], str]:
    def resolve(call: ApiCall) -> str:
        if key not in call.params:
            raise UnmappedCall(f"no {key}")
        return to_arn(str(call.params[key]))

    return resolve


def _ssm(call: ApiCall) -> str:
    """A parameter (GetParameter: Name), or the path GetParametersByPath is authorised against (Path): the path
    in the request, not the parameters it returns."""
    if call.operation == "GetParametersByPath":
        return _one("Path", lambda path: parameter_arn(path.rstrip("/")))(call)
    return _one("Name", parameter_arn)(call)


RESOURCE_OF: dict[str, Callable[[ApiCall], str]] = {
    "kinesis": _kinesis,
    "cloudwatch": _cloudwatch,
    "cloudtrail": _cloudtrail,
    "dynamodb": _one("TableName", table_arn),
    "ssm": _ssm,
    "sns": _one("TopicArn"),
    "lambda": _lambda,
    "scheduler": _scheduler,
    # SimulatePrincipalPolicy acts on the principal whose policies it evaluates (a role).
    "iam": _one("PolicySourceArn"),
}


def resource_of(call: ApiCall) -> str:
    """The ARN an IAM statement must name for this call (or '*'); UnmappedCall if the contract cannot tell."""
    resolve = RESOURCE_OF.get(call.service)
    if resolve is None:
        raise UnmappedCall(f"service '{call.service}' has no resource mapping")
    try:
        return resolve(call)
    except UnmappedCall as exc:
        raise UnmappedCall(f"{call.service}:{call.operation}: {exc}") from None


def stream_of(resource: str) -> str | None:
    """The stream a Kinesis stream (or stream consumer) ARN belongs to."""
    prefix = f"arn:aws:kinesis:{REGION}:{ACCOUNT}:stream/"
    return resource[len(prefix) :].split("/")[0] if resource.startswith(prefix) else None


@dataclass(frozen=True)
class StackResources:
    """The stack's own resources, with exactly the actions its role has on each (stacks/constructs/remediator.py)."""

    kill_switch: str
    policy_prefix: str
    audit_table: str
    idempotency_table: str
    topic_arn: str
    # Follow-through: our alarms (read), and our schedules in the default group (created and deleted).
    alarm_prefix: str = ""
    schedule_prefix: str = ""

    @classmethod
    def of(cls, settings: Any) -> StackResources:
        """From the handler's settings: the names the stack passes it in the environment."""
        return cls(
            kill_switch=settings.kill_switch_parameter,
            policy_prefix=settings.policy_parameter_prefix.rstrip("/"),
            audit_table=settings.audit_table,
            idempotency_table=settings.idempotency_table,
            topic_arn=settings.topic_arn,
            alarm_prefix=settings.alarm_prefix,
            schedule_prefix=settings.schedule_prefix or "",
        )

    def prefixed(self) -> dict[str, frozenset[str]]:
        """ARN prefix -> the IAM actions granted on every resource under it (the stack's `...prefix*` grants)."""
        granted: dict[str, frozenset[str]] = {}
        if self.alarm_prefix:
            granted[alarm_arn(self.alarm_prefix)] = frozenset(
                {"cloudwatch:DescribeAlarms", "cloudwatch:DescribeAlarmContributors"}
            )
        if self.schedule_prefix:
            granted[schedule_arn("default", self.schedule_prefix)] = frozenset(
                {"scheduler:CreateSchedule", "scheduler:DeleteSchedule"}
            )
        return granted

    def prefixed_grant(self, resource: str) -> frozenset[str] | None:
        for prefix, actions in self.prefixed().items():
            if resource.startswith(prefix):
                return actions
        return None

    @property
    def bookkeeping(self) -> frozenset[str]:
        """Where the remediator writes its own records: expected in every mode, never a change to a stream."""
        return frozenset({table_arn(self.audit_table), table_arn(self.idempotency_table), self.topic_arn})

    def is_bookkeeping(self, resource: str) -> bool:
        """Its own records, and its own follow-through schedules."""
        schedules = schedule_arn("default", self.schedule_prefix) if self.schedule_prefix else None
        return resource in self.bookkeeping or (schedules is not None and resource.startswith(schedules))

    def policy_parameter(self, resource: str) -> bool:
        return resource.startswith(parameter_arn(self.policy_prefix) + "/")

    def grants(self, deployed_parameters: Iterable[str]) -> dict[str, frozenset[str]]:
        """Resource ARN -> the IAM actions granted on it. Policy parameters: one per deployed stream."""
        granted = {
            parameter_arn(self.kill_switch): frozenset({"ssm:GetParameter"}),
            # The shard census lists the protected streams: GetParametersByPath on exactly the policy prefix.
            parameter_arn(self.policy_prefix): frozenset({"ssm:GetParametersByPath"}),
            table_arn(self.audit_table): frozenset({"dynamodb:PutItem", "dynamodb:Query", "dynamodb:GetItem"}),
            table_arn(self.idempotency_table): frozenset(
                {"dynamodb:PutItem", "dynamodb:GetItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem"}
            ),
            self.topic_arn: frozenset({"sns:Publish"}),
        }
        granted |= {parameter_arn(name): frozenset({"ssm:GetParameter"}) for name in deployed_parameters}
        return granted


@dataclass(frozen=True)
class Deployment:
    """What was deployed when the handler ran: the policy parameters, and the valid policy of each stream."""

    parameters: frozenset[str]
    policies: Mapping[str, StreamPolicy]

    @classmethod
    def read(cls, ssm: Any, prefix: str) -> Deployment:
        """The parameters under the policy prefix; each validated as the handler would (SsmPolicySource)."""
        prefix = prefix.rstrip("/")
        parameters: dict[str, str] = {}
        for page in ssm.get_paginator("get_parameters_by_path").paginate(Path=prefix, Recursive=True):
            parameters |= {p["Name"]: p["Value"] for p in page["Parameters"]}
        policies = {}
        for name, value in parameters.items():
            stream = name[len(prefix) + 1 :]
            try:
                policy = REGISTRY.parse_stream_policy(json.loads(value))
            except (ValueError, ValidationError):
                continue  # does not validate: the handler treats the stream as having no policy
            if policy.name == stream:
                policies[stream] = policy
        return cls(parameters=frozenset(parameters), policies=policies)


def function_condition_problem(
    granted: Iterable[Permission], action: str, resource: str, function_arn: str
) -> str | None:
    """Why no permission allowing `action` on a mapping also allows it for the mapping's function, or None.

    A grant on event-source mappings is narrowed by the lambda:FunctionArn condition (the mapping's function)."""
    for permission in granted:
        if not allows([permission], action, resource):
            continue
        functions = permission.conditions.get("StringEquals", {}).get("lambda:FunctionArn")
        if functions is None or function_arn in functions:
            return None
    return f"the mapping's function {function_arn} is not in the grant's lambda:FunctionArn condition"


def uncovered(
    calls: Iterable[ApiCall],
    deployment: Deployment,
    stack: StackResources,
    mapping_functions: Mapping[str, str] | None = None,
) -> list[str]:
    """Every call the stack's IAM would not allow, one line each (empty: all covered).

    `mapping_functions` (mapping UUID -> its function's ARN, where known) lets the check also apply the
    lambda:FunctionArn condition that narrows the grants on event-source mappings."""
    own = stack.grants(deployment.parameters)
    granted = permissions(deployment.policies.values(), arn)
    problems = []
    for call in calls:
        action = call.iam_action
        try:
            resource = resource_of(call)
        except UnmappedCall as exc:
            problems.append(f"{action}: unmapped call ({exc}); map it in tests/integration/contract.py")
            continue
        where = f"{action} on {resource}"
        if resource in own:
            if action not in own[resource]:
                problems.append(f"{where}: the stack grants only {sorted(own[resource])} on it")
        elif (prefixed := stack.prefixed_grant(resource)) is not None:
            if action not in prefixed:
                problems.append(f"{where}: the stack grants only {sorted(prefixed)} under its prefix")
        elif stack.policy_parameter(resource):
            # A stream with no deployed policy: the role may not read its parameter, AWS answers
            # AccessDenied, and SsmPolicySource reads that as "no policy" (test_handler_policies shows it).
            if action != "ssm:GetParameter":
                problems.append(f"{where}: not a deployed policy parameter, and not a read")
        elif not allows(granted, action, resource):
            problems.append(f"{where}: not granted by the deployed policies' permissions")
        else:
            uuid = mapping_uuid(resource)
            function = (mapping_functions or {}).get(uuid) if uuid else None
            problem = function_condition_problem(granted, action, resource, function) if function else None
            if problem:
                problems.append(f"{where}: {problem}")
        stream = stream_of(resource)
        if stream is not None and not is_read(call.operation):
            policy = deployment.policies.get(stream)
            if policy is None:
                problems.append(f"{where}: a mutating call for stream '{stream}', which has no valid policy")
            elif not allows(permissions([policy], arn), action, resource):
                problems.append(f"{where}: a mutating call that the policy of stream '{stream}' does not grant")
    return problems


def mutations(calls: Iterable[ApiCall], stack: StackResources) -> list[ApiCall]:
    """Calls that change something other than the remediator's own records (audit, idempotency, e-mail)."""
    changes = []
    for call in calls:
        if is_read(call.operation):
            continue
        try:
            bookkeeping = stack.is_bookkeeping(resource_of(call))
        except UnmappedCall:
            bookkeeping = False
        if not bookkeeping:
            changes.append(call)
    return changes
