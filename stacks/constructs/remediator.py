"""The remediator Lambda, its least-privilege role (built from the action and evidence registries),
the EventBridge rule that feeds it our alarms' state changes, and the dead-letter queue."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from aws_cdk import Acknowledgment, Duration, Stack, Validations
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sqs as sqs
from constructs import Construct
from remediator.core.actions import REGISTRY
from remediator.core.evidence import READ_GRANTS
from remediator.core.grants import IamGrant
from remediator.policy_files import PolicySet

from stacks.constructs.notifications import Notifications
from stacks.constructs.state import RemediatorState

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
]


def policy_digest(policies: PolicySet) -> str:
    canonical = json.dumps(
        {name: policy.model_dump(mode="json") for name, policy in sorted(policies.streams.items())},
        sort_keys=True,
    )
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def registry_grants() -> list[IamGrant]:
    grants = list(READ_GRANTS)
    for action in REGISTRY.values():
        grants.extend(action.iam_grants)
    return grants


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
    ) -> None:
        super().__init__(scope, construct_id)
        stack = Stack.of(self)
        stream_arns = [
            stack.format_arn(service="kinesis", resource="stream", resource_name=name)
            for name in sorted(policies.streams)
        ]

        self.dead_letter_queue = sqs.Queue(
            self,
            "DeadLetterQueue",
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            retention_period=Duration.days(14),
        )

        self.log_group = logs.LogGroup(self, "Logs", retention=logs.RetentionDays.ONE_YEAR)
        self.role = iam.Role(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description="Kinesis Remediator: may change only the streams named in its policies",
        )
        self._grant(stream_arns, state, notifications)

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
            timeout=Duration.seconds(60),
            tracing=lambda_.Tracing.ACTIVE,
            retry_attempts=2,
            max_event_age=Duration.hours(1),
            dead_letter_queue=self.dead_letter_queue,
            description="Kinesis Remediator: diagnoses Kinesis alarms and remediates within policy bounds",
            environment={
                "AUDIT_TABLE_NAME": state.audit_table.table_name,
                "IDEMPOTENCY_TABLE_NAME": state.idempotency_table.table_name,
                "NOTIFICATION_TOPIC_ARN": notifications.topic.topic_arn,
                "KILL_SWITCH_PARAMETER": state.kill_switch.parameter_name,
                "POLICY_PARAMETER_PREFIX": state.policy_prefix,
                "ALARM_NAME_PREFIX": alarm_prefix,
                "POWERTOOLS_SERVICE_NAME": "kinesis-remediator",
                "POWERTOOLS_METRICS_NAMESPACE": "KinesisRemediator",
                "POWERTOOLS_LOG_LEVEL": "INFO",
                # Changes with any policy, so Lambda starts fresh environments instead of serving
                # a cached policy for up to POLICY_CACHE_SECONDS.
                "POLICY_DIGEST": policy_digest(policies),
            },
        )

        self.rule = events.Rule(
            self,
            "AlarmStateChanges",
            description="Our alarms going into ALARM",
            event_pattern=events.EventPattern(
                source=["aws.cloudwatch"],
                detail_type=["CloudWatch Alarm State Change"],
                detail={"alarmName": [{"prefix": alarm_prefix}], "state": {"value": ["ALARM"]}},
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
        self._acknowledge_wildcards()

    def _grant(self, stream_arns: list[str], state: RemediatorState, notifications: Notifications) -> None:
        statements = []
        for grant in registry_grants():
            statements.append(
                iam.PolicyStatement(
                    actions=list(grant.actions),
                    resources=stream_arns if grant.scope == "stream" else ["*"],
                )
            )
        statements += [
            iam.PolicyStatement(
                actions=["logs:CreateLogStream", "logs:PutLogEvents"],
                resources=[self.log_group.log_group_arn],
            ),
            iam.PolicyStatement(
                actions=["ssm:GetParameter"],
                resources=[state.kill_switch.parameter_arn]
                + [p.parameter_arn for p in state.policy_parameters.values()],
            ),
            iam.PolicyStatement(
                actions=["dynamodb:PutItem", "dynamodb:Query"], resources=[state.audit_table.table_arn]
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
            iam.PolicyStatement(actions=["kms:GenerateDataKey", "kms:Decrypt"], resources=[notifications.key.key_arn]),
        ]
        policy = iam.Policy(self, "Permissions", statements=statements)
        policy.attach_to_role(self.role)
        self.permissions = policy

    def _acknowledge_wildcards(self) -> None:
        account_wide = sorted({a for g in registry_grants() if g.scope == "account" for a in g.actions})
        reasons = "; ".join(g.why for g in registry_grants() if g.scope == "account")
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
