"""The remediator Lambda, its least-privilege role (built from the action and evidence registries),
the EventBridge rule that feeds it our alarms' state changes, the scheduled rule of its shard census
(remediator.service.census), the dead-letter queue, and the EventBridge Scheduler role its follow-through
schedules invoke it with (remediator.core.follow_through)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace
from pathlib import Path

from aws_cdk import Acknowledgment, ArnFormat, Duration, Stack, Validations
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sqs as sqs
from constructs import Construct
from remediator.core.deployment import (
    CENSUS_RATE_MINUTES,
    CENSUS_SOURCE,
    FUNCTION_TIMEOUT_SECONDS,
    METRICS_NAMESPACE,
    SCHEDULE_GROUP,
    SCHEDULER_SERVICE,
    SERVICE_NAME,
    Env,
    member_role_arn,
    schedule_prefix,
)
from remediator.core.fleet import CONTRIBUTOR_DETAIL_TYPE
from remediator.core.iam import Permission, permissions
from remediator.policy_files import PolicySet

from stacks.constructs.notifications import Notifications
from stacks.constructs.state import RemediatorState
from stacks.fleet import compact, policy_size

# The newest Python runtime aws-cdk-lib offers, on Graviton (cheaper, and our layer is built for it).
RUNTIME = lambda_.Runtime.PYTHON_3_14
ARCHITECTURE = lambda_.Architecture.ARM_64
HANDLER = "remediator.handler.lambda_handler"
CODE_ROOT = Path(__file__).resolve().parents[2] / "lambdas"
# What the Lambda does not need: the CLI, the YAML policy loader and caches.
CODE_EXCLUDES = [
    "requirements.txt",
    "**/__pycache__",
    "**/*.pyc",
    "remediator/cli.py",
    "remediator/policy_files.py",
    "remediator/reference.py",
    # The rehearsal tools (the CLI's backtest, and the trace it reads from CloudWatch).
    "remediator/rehearsal",
    "remediator/clients/cloudwatch_trace.py",
]


def policy_digest(policies: PolicySet) -> str:
    canonical = json.dumps(
        {name: policy.model_dump(mode="json") for name, policy in sorted(policies.streams.items())},
        sort_keys=True,
    )
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


# The registry's statements may take this many characters of the role's policies (IAM counts the aggregate of a
# role's inline policies: at most 10,240 characters without white space, IAM and STS quotas, "Role policy size").
# The rest is for the fixed statements below (about 2,000 with real ARNs) and the policy CDK adds (X-Ray, the
# dead-letter queue): tests/infrastructure/test_fleet_scale.py checks the sum at 1,000 streams.
REGISTRY_POLICY_BUDGET = 7_000
# How long an ARN can get: the longest partition and region names (aws-us-gov, ap-southeast-7), a 12-digit account.
_LONGEST = {"partition": "aws-us-gov", "region": "ap-southeast-7", "account": "123456789012"}
# The resource lists tried, longest first, until the statements fit: None keeps every ARN.
_LIST_LENGTHS: tuple[int | None, ...] = (None, 256, 192, 128, 96, 64, 48, 32, 24, 16, 12, 8, 6, 4, 3, 2, 1)


def _longest_arn(*, service: str, resource: str, resource_name: str, arn_format: str = "slash") -> str:
    separator = ":" if arn_format == "colon" else "/"
    region = "" if service == "iam" else _LONGEST["region"]
    return f"arn:{_LONGEST['partition']}:{service}:{region}:{_LONGEST['account']}:{resource}{separator}{resource_name}"


def fitted(found: list[Permission], at_most: int | None) -> list[Permission]:
    """The permissions with each resource list (and each condition's values) compacted to at most `at_most` prefix
    patterns (stacks/fleet.compact); a condition whose values became patterns compares with StringLike."""
    if at_most is None:
        return found
    result = []
    for permission in found:
        conditions: dict[str, dict[str, list[str]]] = {}
        for operator, keys in permission.conditions.items():
            for key, values in keys.items():
                patterns = compact(values, at_most)
                like = operator == "StringEquals" and any("*" in v for v in patterns) and patterns != sorted(values)
                conditions.setdefault("StringLike" if like else operator, {})[key] = patterns
        resources = tuple(compact(permission.resources, at_most)) if permission.resources != ("*",) else ("*",)
        result.append(replace(permission, resources=resources, conditions=conditions))
    return result


def _statements_json(found: list[Permission]) -> list[dict[str, object]]:
    """The statements as the role will hold them: CDK's minimizePolicies (cdk.json) merges statements with the same
    resources and conditions into one with all their actions."""
    merged: dict[str, dict[str, object]] = {}
    for permission in found:
        key = json.dumps([permission.resources, permission.conditions], sort_keys=True)
        statement = merged.setdefault(key, {"Effect": "Allow", "Action": [], "Resource": list(permission.resources)})
        actions = statement["Action"]
        assert isinstance(actions, list)
        actions.extend(a for a in permission.actions if a not in actions)
        if permission.conditions:
            statement["Condition"] = permission.conditions
    return list(merged.values())


def list_length(policies: PolicySet) -> int | None:
    """The longest resource lists whose statements fit REGISTRY_POLICY_BUDGET (None: every ARN, as declared). The
    trade-off of a shorter list: a pattern such as arn:...:stream/orders-* also matches streams with no policy. The
    remediator acts only on a stream whose policy parameter it reads (and only within that policy), so IAM is then
    the second line of defence, not the first."""
    declared = permissions((policy for _, policy in sorted(policies.streams.items())), _longest_arn)
    for at_most in _LIST_LENGTHS:
        if policy_size(_statements_json(fitted(declared, at_most))) <= REGISTRY_POLICY_BUDGET:
            return at_most
    return 1


def registry_permissions(stack: Stack, policies: PolicySet) -> list[Permission]:
    """What the registries declare for these policies, with ARNs in this stack's partition, region, account, fitted
    to the role's policy size (list_length)."""

    # What Stack.format_arn writes, without a jsii call per ARN (thousands at 1,000 streams).
    partition, stack_region, account = stack.partition, stack.region, stack.account

    def arn(*, service: str, resource: str, resource_name: str, arn_format: str = "slash") -> str:
        separator = ":" if arn_format == "colon" else "/"
        # IAM is global: its ARNs have no region.
        region = "" if service == "iam" else stack_region
        return f"arn:{partition}:{service}:{region}:{account}:{resource}{separator}{resource_name}"

    declared = permissions((policy for _, policy in sorted(policies.streams.items())), arn)
    return fitted(declared, list_length(policies))


def _nag_arn(service_resource: str) -> str:
    service, rest = service_resource.split(":", 1)
    return f"AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:{service}:<AWS::Region>:<AWS::AccountId>:{rest}]"


def nag_resource(*, service: str, resource: str, resource_name: str, arn_format: str = "slash") -> str:
    """An ARN as cdk-nag spells it in a finding id (pseudo parameters in angle brackets)."""
    separator = ":" if arn_format == "colon" else "/"
    region = "" if service == "iam" else "<AWS::Region>"
    return f"arn:<AWS::Partition>:{service}:{region}:<AWS::AccountId>:{resource}{separator}{resource_name}"


def wildcard_findings(policies: PolicySet) -> dict[str, str]:
    """cdk-nag finding id -> reason, for every registry resource that ends in a wildcard (not '*' alone)."""
    found: dict[str, str] = {}
    declared = permissions((policy for _, policy in sorted(policies.streams.items())), nag_resource)
    for permission in fitted(declared, list_length(policies)):
        for resource in permission.resources:
            if resource != "*" and "*" in resource:
                reason = f"{', '.join(permission.actions)} on {resource}: {permission.why}"
                found[f"AwsSolutions-IAM5[Resource::{resource}]"] = reason
    return found


def member_role_arns(policies: PolicySet, stack: Stack) -> list[str]:
    """The member roles (core.deployment.member_role_arn) the hub assumes: one per account in which a policy places
    a stream outside the hub's own account and region (the hub's account too, for a stream in another region)."""
    accounts: set[str] = set()
    for policy in policies.streams.values():
        if policy.account is None and policy.region is None:
            continue  # the hub's own stream
        account, region = policy.account or stack.account, policy.region or stack.region
        if account == stack.account and region == stack.region:
            continue  # the hub's own account and region, written out
        accounts.add(account)
    return [member_role_arn(account, stack.partition) for account in sorted(accounts)]


class Remediator(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        policies: PolicySet,
        state: RemediatorState,
        notifications: Notifications,
        alarm_prefix: str,
        layer_dir: Path,
        local_policies: PolicySet | None = None,
        role_name: str | None = None,
    ) -> None:
        """`local_policies`: the streams in the hub's own account and region, whose IAM this role holds (default: all;
        members' streams are reached through their member role). `role_name`: fixed when members trust the role."""
        super().__init__(scope, construct_id)
        local = policies if local_policies is None else local_policies
        self.registry_permissions = registry_permissions(Stack.of(self), local)

        self.dead_letter_queue = sqs.Queue(
            self,
            "DeadLetterQueue",
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            retention_period=Duration.days(14),
        )

        self.log_group = logs.LogGroup(self, "Logs", retention=logs.RetentionDays.ONE_YEAR)
        # Follow-through: one-time schedules (created at run time in the default group; CloudFormation
        # templates cannot hold them, and moto's CloudFormation has no AWS::Scheduler::* at all) invoke the
        # function through this role, which may do nothing else.
        stack = Stack.of(self)
        self.alarm_prefix = alarm_prefix
        self.schedule_prefix = schedule_prefix(alarm_prefix)
        self.scheduler_role = iam.Role(
            self,
            "FollowUpSchedulerRole",
            assumed_by=iam.ServicePrincipal(
                SCHEDULER_SERVICE, conditions={"StringEquals": {"aws:SourceAccount": stack.account}}
            ),
            description="Kinesis Remediator follow-through: EventBridge Scheduler may only invoke the remediator",
        )
        self.role = iam.Role(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description="Kinesis Remediator: may change only the streams named in its policies",
            role_name=role_name,
        )
        self._policy_path = state.policy_prefix.lstrip("/")
        self._grant(state, notifications)
        self._policies = local

        self.layer = lambda_.LayerVersion(
            self,
            "Dependencies",
            code=lambda_.Code.from_asset(str(layer_dir)),
            compatible_runtimes=[RUNTIME],
            compatible_architectures=[ARCHITECTURE],
            description="Kinesis Remediator runtime dependencies (lambdas/requirements.txt)",
        )
        self.function = lambda_.Function(
            self,
            "Function",
            runtime=RUNTIME,
            architecture=ARCHITECTURE,
            handler=HANDLER,
            code=lambda_.Code.from_asset(str(CODE_ROOT), exclude=CODE_EXCLUDES),
            layers=[self.layer],
            role=self.role,
            log_group=self.log_group,
            memory_size=256,
            # Room for the worst case of what follows a change (clients.aws.seconds_after_change).
            timeout=Duration.seconds(FUNCTION_TIMEOUT_SECONDS),
            tracing=lambda_.Tracing.ACTIVE,
            retry_attempts=2,
            max_event_age=Duration.hours(1),
            dead_letter_queue=self.dead_letter_queue,
            description="Kinesis Remediator: diagnoses Kinesis alarms and remediates within policy bounds",
            environment={
                Env.AUDIT_TABLE: state.audit_table.table_name,
                Env.IDEMPOTENCY_TABLE: state.idempotency_table.table_name,
                Env.TOPIC_ARN: notifications.topic.topic_arn,
                Env.KILL_SWITCH: state.kill_switch.parameter_name,
                Env.POLICY_PREFIX: state.policy_prefix,
                Env.ALARM_PREFIX: alarm_prefix,
                "POWERTOOLS_SERVICE_NAME": SERVICE_NAME,
                "POWERTOOLS_METRICS_NAMESPACE": METRICS_NAMESPACE,
                "POWERTOOLS_LOG_LEVEL": "INFO",
                # Changes with any policy, so Lambda starts fresh environments instead of serving
                # a cached policy for up to POLICY_CACHE_SECONDS.
                Env.POLICY_DIGEST: policy_digest(policies),
                Env.FOLLOW_UP_ROLE: self.scheduler_role.role_arn,
                Env.SCHEDULE_PREFIX: self.schedule_prefix,
            },
        )
        self.scheduler_role.add_to_policy(
            iam.PolicyStatement(actions=["lambda:InvokeFunction"], resources=[self.function.function_arn])
        )
        # Many accounts (issue 11.4): the hub may assume exactly the member roles of the accounts its policies name.
        member_roles = member_role_arns(policies, stack)
        if member_roles:
            self.role.add_to_policy(iam.PolicyStatement(actions=["sts:AssumeRole"], resources=member_roles))

        self.rule = events.Rule(
            self,
            "AlarmStateChanges",
            description="Our alarms (and our fleet alarms' contributors) going into ALARM, and back to OK",
            event_pattern=events.EventPattern(
                source=["aws.cloudwatch"],
                detail_type=["CloudWatch Alarm State Change", CONTRIBUTOR_DETAIL_TYPE],
                detail={"alarmName": [{"prefix": alarm_prefix}], "state": {"value": ["ALARM", "OK"]}},
            ),
        )
        self.rule.add_target(
            targets.LambdaFunction(
                self.function,
                dead_letter_queue=self.dead_letter_queue,
                retry_attempts=4,
                max_event_age=Duration.hours(2),
            )
        )
        self.census_rule = events.Rule(
            self,
            "ShardCensus",
            description="Shard census: every protected stream's open shards, published as OpenShards for the "
            "under-utilised alarm (CloudWatch publishes no shard count)",
            schedule=events.Schedule.rate(Duration.minutes(CENSUS_RATE_MINUTES)),
        )
        self.census_rule.add_target(
            targets.LambdaFunction(
                self.function,
                event=events.RuleTargetInput.from_object({"source": CENSUS_SOURCE}),
                dead_letter_queue=self.dead_letter_queue,
                # A late census is worth nothing: the next one comes in CENSUS_RATE_MINUTES.
                retry_attempts=0,
                max_event_age=Duration.minutes(CENSUS_RATE_MINUTES),
            )
        )
        self._acknowledge_wildcards()

    def _grant(self, state: RemediatorState, notifications: Notifications) -> None:
        statements = [
            iam.PolicyStatement(actions=list(p.actions), resources=list(p.resources), conditions=p.conditions or None)
            for p in self.registry_permissions
        ]
        statements += [
            iam.PolicyStatement(
                actions=["logs:CreateLogStream", "logs:PutLogEvents"],
                resources=[self.log_group.log_group_arn],
            ),
            # The policies by path, not one ARN each: the list would outgrow the role's policy size at a few
            # hundred streams, and the parameters live in the stream stacks. It reads no more than
            # GetParametersByPath on the same path already returns.
            iam.PolicyStatement(
                actions=["ssm:GetParameter"],
                resources=[state.kill_switch.parameter_arn, f"{self._policy_path_arn(state)}/*"],
            ),
            # The shard census lists the protected streams (SsmPolicySource.names). GetParametersByPath is
            # authorised against the path in the request, not the parameters it returns: exactly the prefix.
            iam.PolicyStatement(actions=["ssm:GetParametersByPath"], resources=[self._policy_path_arn(state)]),
            # Rows, write-ahead claims and the per-stream lease, each written with PutItem (claims and leases
            # with a condition) and read back with Query or GetItem: remediator.clients.audit. No DeleteItem:
            # a lease is given back by overwriting it as expired, and nothing erases the audit.
            iam.PolicyStatement(
                actions=["dynamodb:PutItem", "dynamodb:Query", "dynamodb:GetItem"],
                resources=[state.audit_table.table_arn],
            ),
            iam.PolicyStatement(
                actions=[
                    "dynamodb:PutItem",
                    "dynamodb:GetItem",
                    "dynamodb:UpdateItem",
                    "dynamodb:DeleteItem",
                ],
                resources=[state.idempotency_table.table_arn],
            ),
            iam.PolicyStatement(actions=["sns:Publish"], resources=[notifications.topic.topic_arn]),
            # Follow-through (remediator.core.follow_through): our alarms' state, our schedules, the Scheduler role.
            # A fleet alarm's contributor (remediator.core.fleet): DescribeAlarmContributors lists those in ALARM.
            # UNCONFIRMED (aws-facts.md is silent): that it is authorised on the alarm's ARN, as DescribeAlarms is.
            iam.PolicyStatement(
                actions=["cloudwatch:DescribeAlarms", "cloudwatch:DescribeAlarmContributors"],
                resources=[self._alarms_arn()],
            ),
            iam.PolicyStatement(
                actions=["scheduler:CreateSchedule", "scheduler:DeleteSchedule"], resources=[self._schedules_arn()]
            ),
            iam.PolicyStatement(
                actions=["iam:PassRole"],
                resources=[self.scheduler_role.role_arn],
                conditions={"StringEquals": {"iam:PassedToService": SCHEDULER_SERVICE}},
            ),
            iam.PolicyStatement(actions=["kms:GenerateDataKey", "kms:Decrypt"], resources=[notifications.key.key_arn]),
        ]
        policy = iam.Policy(self, "Permissions", statements=statements)
        policy.attach_to_role(self.role)
        self.permissions = policy

    @staticmethod
    def _policy_path_arn(state: RemediatorState) -> str:
        # arn:...:ssm:REGION:ACCOUNT:parameter/<path without its leading slash>
        return Stack.of(state).format_arn(
            service="ssm",
            resource="parameter",
            resource_name=state.policy_prefix.lstrip("/"),
            arn_format=ArnFormat.SLASH_RESOURCE_NAME,
        )

    def _alarms_arn(self) -> str:
        return Stack.of(self).format_arn(
            service="cloudwatch",
            resource="alarm",
            resource_name=f"{self.alarm_prefix}*",
            arn_format=ArnFormat.COLON_RESOURCE_NAME,
        )

    def _schedules_arn(self) -> str:
        # UNCONFIRMED (aws-facts.md is silent on Scheduler): the Service Authorization Reference lists the
        # `schedule` resource type, arn:...:scheduler:REGION:ACCOUNT:schedule/GROUP/NAME, for Create/DeleteSchedule.
        return Stack.of(self).format_arn(
            service="scheduler",
            resource="schedule",
            resource_name=f"{SCHEDULE_GROUP}/{self.schedule_prefix}*",
        )

    def _acknowledge_wildcards(self) -> None:
        prefixed = {
            _nag_arn(f"cloudwatch:alarm:{self.alarm_prefix}*"): "cloudwatch:DescribeAlarms and "
            "DescribeAlarmContributors on the deployment's alarms (their names start with its alarm prefix): a "
            "follow-through checks its alarm (or its fleet alarm's contributor) is still in ALARM",
            _nag_arn(f"scheduler:schedule/{SCHEDULE_GROUP}/{self.schedule_prefix}*"): "scheduler:CreateSchedule "
            "and DeleteSchedule on the deployment's follow-through schedules, named at run time under its prefix",
            _nag_arn(f"ssm:parameter/{self._policy_path}/*"): "ssm:GetParameter on the streams' policy parameters, "
            "by their path: no more than GetParametersByPath on that path already returns, and it fits the role "
            "at any number of streams",
        }
        for finding, reason in prefixed.items():
            Validations.of(self.permissions).acknowledge(Acknowledgment(id=finding, reason=reason))
        for finding, reason in wildcard_findings(self._policies).items():
            Validations.of(self.permissions).acknowledge(Acknowledgment(id=finding, reason=reason))
        wide = [p for p in self.registry_permissions if p.account_wide]
        account_wide = sorted({a for p in wide for a in p.actions})
        reasons = "; ".join(dict.fromkeys(p.why for p in wide))
        Validations.of(self.permissions).acknowledge(
            Acknowledgment(
                id="AwsSolutions-IAM5[Resource::*]",
                reason=f"{', '.join(account_wide)} on '*': {reasons}",
            )
        )
        Validations.of(self.role).acknowledge(
            Acknowledgment(
                id="AwsSolutions-IAM5[Resource::*]",
                reason="X-Ray PutTraceSegments/PutTelemetryRecords (added by CDK for active tracing) "
                "have no resource types.",
            )
        )
