"""lambda-consumer-errors: a Lambda consumer fails or is throttled (AWS/Lambda Errors and Throttles, Sum, per
consumer function).

The diagnosis names the cause from what the evidence says, and only that: the mapping's state and last processing
result, the function's timeout against its longest run, its throttles against its reserved concurrency, and its
execution role's permissions on the stream (iam:SimulatePrincipalPolicy for the Kinesis read actions, read in
`gather`). A batch that keeps failing gets failure handling proposed (tune-event-source, goal failure-handling,
which the policy must allow) and the concrete steps as advice either way.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from remediator.core import limits
from remediator.core.consumers import (
    LAMBDA_MAPPINGS,
    MAPPING_READ_ACTIONS,
    MAPPING_READ_GRANTS,
    MappingFacts,
    lambda_mappings,
    read_error,
    read_failure_advice,
    unreadable_consumers,
)
from remediator.core.evidence import Evidence, StreamState
from remediator.core.grants import CONSUMER_ROLES, IamGrant
from remediator.core.metrics import MetricName, MetricQuery, MissingData
from remediator.core.plan import Advice, Cause, Diagnosis, Figure, Proposal
from remediator.core.policy import DetectorPolicy, StreamPolicy
from remediator.core.ports import ReadPorts, UndeclaredCall
from remediator.core.registry import REGISTRY
from remediator.core.symptoms.base import AlarmSpec, Symptom
from remediator.core.symptoms.capacity import insufficient
from remediator.core.symptoms.lag import gather_mappings

LAMBDA_ERRORS = MetricName("AWS/Lambda", "Errors", "Sum")
LAMBDA_THROTTLES = MetricName("AWS/Lambda", "Throttles", "Sum")
LAMBDA_INVOCATIONS = MetricName("AWS/Lambda", "Invocations", "Sum")
LAMBDA_DURATION = MetricName("AWS/Lambda", "Duration", "Maximum")

ROLE_PERMISSIONS = "consumer_role_permissions"
# What a polling mapping's execution role needs on the stream, and what an EFO mapping needs on its consumer
# (AWSLambdaKinesisExecutionRole grants these; aws-facts.md §9).
STREAM_READ_ACTIONS = (
    "kinesis:GetRecords",
    "kinesis:GetShardIterator",
    "kinesis:DescribeStream",
    "kinesis:DescribeStreamSummary",
    "kinesis:ListShards",
)
EFO_READ_ACTIONS = ("kinesis:SubscribeToShard",)
KINESIS_EXECUTION_POLICY = "arn:aws:iam::aws:policy/service-role/AWSLambdaKinesisExecutionRole"
# A run that reaches this share of the timeout counts as timing out (Duration is reported in whole ms).
TIMEOUT_SHARE = 0.95
DISABLED = ("Disabled", "Disabling")


def metric_key(metric: MetricName, index: int) -> str:
    """The evidence key of a metric of the index-th Lambda consumer (function names may hold '-')."""
    return f"lambda_{metric.name.lower()}_{index}"


class RoleCheck(BaseModel):
    """What iam:SimulatePrincipalPolicy said about a consumer function's role on the stream (JSON-able)."""

    model_config = ConfigDict(frozen=True)

    function: str
    role: str
    resource: str
    denied: tuple[str, ...] = ()
    missing_context: tuple[str, ...] = ()
    error: str | None = None


def simulate(aws: ReadPorts, role: str, actions: tuple[str, ...], resource: str) -> list[dict[str, Any]]:
    """Every evaluation result of the role for the actions on the resource (paginated)."""
    iam = aws.service("iam")
    results: list[dict[str, Any]] = []
    marker: str | None = None
    while True:
        page = iam.call(
            "SimulatePrincipalPolicy",
            PolicySourceArn=role,
            ActionNames=list(actions),
            ResourceArns=[resource],
            **({"Marker": marker} if marker else {}),
        )
        results += page.get("EvaluationResults", [])
        marker = page.get("Marker")
        if not page.get("IsTruncated") or not marker:
            return results


def check_role(aws: ReadPorts, mapping: MappingFacts, stream: StreamState) -> list[RoleCheck]:
    """The role's decisions for the Kinesis reads its mapping makes: on the stream, and on the EFO consumer."""
    role = str(mapping.function_role_arn)
    targets: list[tuple[tuple[str, ...], str]] = [(STREAM_READ_ACTIONS, stream.arn)]
    if mapping.on_efo and mapping.source_arn:
        targets.append((EFO_READ_ACTIONS, mapping.source_arn))
    checks = []
    for actions, resource in targets:
        try:
            results = simulate(aws, role, actions, resource)
        except UndeclaredCall:
            raise
        except Exception as exc:  # the role may be in another account, or the call denied: say so, go on
            checks.append(
                RoleCheck(function=mapping.function, role=role, resource=resource, error=f"{type(exc).__name__}: {exc}")
            )
            continue
        denied = [r for r in results if r.get("EvalDecision") != "allowed"]
        checks.append(
            RoleCheck(
                function=mapping.function,
                role=role,
                resource=resource,
                denied=tuple(str(r.get("EvalActionName")) for r in denied),
                missing_context=tuple(sorted({str(key) for r in denied for key in r.get("MissingContextValues", [])})),
            )
        )
    return checks


def role_checks(evidence: Evidence) -> list[RoleCheck]:
    return [RoleCheck.model_validate(item) for item in evidence.facts.get(ROLE_PERMISSIONS, [])]


def role_name(role_arn: str) -> str:
    """arn:aws:iam::123456789012:role/service-role/name -> name."""
    return role_arn.rsplit("/", 1)[-1]


@dataclass(frozen=True)
class Finding:
    """One cause the evidence shows for one function, in a sentence, with what to do about it."""

    cause: str | None  # None: advice only, no cause of its own
    text: str = ""
    advice: tuple[Advice, ...] = ()
    function_side: bool = field(default=False)  # the function itself fails: failure handling may unblock the shard


# The order in which causes explain the failures: the first one found names the diagnosis.
PRECEDENCE = (
    "mapping-missing",
    "mapping-disabled",
    "consumer-role-denied",
    "function-timeout",
    "reserved-concurrency",
    "account-concurrency",
    "mapping-problem",
    "function-errors",
    "function-throttled",
)


@dataclass(frozen=True)
class FunctionEvidence:
    function: str
    errors: float
    throttles: float
    invocations: float
    error_minutes: int
    max_duration_ms: float | None
    has_data: bool

    @property
    def failing(self) -> bool:
        return self.errors + self.throttles > 0


class LambdaConsumerErrorsDetector(DetectorPolicy):
    threshold_errors: int = Field(
        1, ge=1, description=f"Alarm when a consumer function's {LAMBDA_ERRORS.name} (Sum per minute) reach this."
    )
    threshold_throttles: int = Field(
        1,
        ge=1,
        description=f"Alarm when a consumer function's {LAMBDA_THROTTLES.name} (Sum per minute) reach this.",
    )


@REGISTRY.symptom
class LambdaConsumerErrors(Symptom[LambdaConsumerErrorsDetector]):
    id = "lambda-consumer-errors"
    title = "Lambda consumer failing"
    meaning = (
        f"A consumer function reports {LAMBDA_ERRORS.name} or {LAMBDA_THROTTLES.name}: a failed batch is retried and "
        "blocks its shard until it succeeds or its records expire, so the consumer falls behind or loses records."
    )
    detector_schema = LambdaConsumerErrorsDetector
    read_grants = (
        *MAPPING_READ_GRANTS,
        IamGrant(
            actions=("iam:SimulatePrincipalPolicy",),
            scope=CONSUMER_ROLES,
            why="Whether a consumer function's execution role may read the stream (GetRecords, GetShardIterator, "
            "DescribeStream, DescribeStreamSummary, ListShards, SubscribeToShard on EFO). The role is only known "
            "at run time (GetFunctionConfiguration), so any role; the simulation changes nothing.",
        ),
    )

    def alarms(self, policy: StreamPolicy, detector: LambdaConsumerErrorsDetector) -> list[AlarmSpec]:
        # Errors and Throttles are reported only when the function is invoked or throttled: no datapoint means
        # nothing failed in that minute (a consumer that stops altogether is consumer-stalled's to detect).
        specs = []
        for consumer in policy.lambda_consumers:
            specs += [
                self.alarm(
                    detector,
                    LAMBDA_ERRORS.on(FunctionName=consumer.function),
                    detector.threshold_errors,
                    missing_data=MissingData.NOT_BREACHING,
                    qualifier=f"{consumer.function}.errors",
                ),
                self.alarm(
                    detector,
                    LAMBDA_THROTTLES.on(FunctionName=consumer.function),
                    detector.threshold_throttles,
                    missing_data=MissingData.NOT_BREACHING,
                    qualifier=f"{consumer.function}.throttles",
                ),
            ]
        return specs

    def evidence_queries(self, policy: StreamPolicy) -> tuple[MetricQuery, ...]:
        own = tuple(
            MetricQuery(metric_key(metric, index), metric.on(FunctionName=consumer.function))
            for index, consumer in enumerate(policy.lambda_consumers)
            for metric in (LAMBDA_ERRORS, LAMBDA_THROTTLES, LAMBDA_INVOCATIONS, LAMBDA_DURATION)
        )
        return (*super().evidence_queries(policy), *own)

    def gather(self, policy: StreamPolicy, stream: StreamState, aws: ReadPorts, now: datetime) -> dict[str, Any]:
        # A denied or throttled read of the mappings becomes a fact (the diagnosis names it); no role to check then.
        facts = gather_mappings(policy, stream, aws)
        mappings = [MappingFacts.model_validate(item) for item in facts.get(LAMBDA_MAPPINGS, [])]
        facts[ROLE_PERMISSIONS] = [
            check.model_dump(mode="json")
            for mapping in mappings
            if mapping.function_role_arn
            for check in check_role(aws, mapping, stream)
        ]
        return facts

    # --- diagnosis ----------------------------------------------------------------------------------------

    @staticmethod
    def _function_evidence(evidence: Evidence, index: int, function: str) -> FunctionEvidence:
        errors = evidence.values(metric_key(LAMBDA_ERRORS, index))
        throttles = evidence.values(metric_key(LAMBDA_THROTTLES, index))
        invocations = evidence.values(metric_key(LAMBDA_INVOCATIONS, index))
        duration = evidence.maximum(metric_key(LAMBDA_DURATION, index))
        return FunctionEvidence(
            function=function,
            errors=sum(errors),
            throttles=sum(throttles),
            invocations=sum(invocations),
            error_minutes=sum(1 for value in errors if value > 0),
            max_duration_ms=duration,
            has_data=bool(errors or throttles or invocations or duration is not None),
        )

    def diagnose(self, evidence: Evidence, policy: StreamPolicy) -> Diagnosis:
        detector = self.detector(policy)
        seen = [
            self._function_evidence(evidence, index, consumer.function)
            for index, consumer in enumerate(policy.lambda_consumers)
        ]
        mappings = {m.function: m for m in lambda_mappings(evidence)}
        figures = self._figures(seen, mappings)
        if not policy.lambda_consumers:
            return Diagnosis(
                cause=Cause.NOT_REPRODUCED,
                summary="The stream's policy lists no Lambda consumer; nothing to diagnose.",
                figures=tuple(figures),
            )
        if not any(f.has_data for f in seen):
            early = insufficient(
                evidence,
                figures,
                missing=f"{LAMBDA_ERRORS.name}, {LAMBDA_THROTTLES.name} or Invocations of the consumer functions",
            )
            assert early is not None
            return early
        failing = sorted((f for f in seen if f.failing), key=lambda f: -(f.errors + f.throttles))
        if not failing:
            return Diagnosis(
                cause=Cause.NOT_REPRODUCED,
                summary=f"No consumer function reported {LAMBDA_ERRORS.name} or {LAMBDA_THROTTLES.name} in the last "
                f"{evidence.window_minutes} minutes; nothing to change.",
                figures=tuple(figures),
            )
        checks = role_checks(evidence)
        findings: list[Finding] = []
        proposals: list[Proposal] = []
        unread = read_error(evidence, LAMBDA_MAPPINGS)
        for f in failing:
            mapping = mappings.get(f.function)
            if unread:
                findings.append(self._metrics_only(f, evidence.window_minutes))
                continue
            found = self._findings(f, mapping, [c for c in checks if c.function == f.function], evidence)
            findings += found
            keeps_failing = f.error_minutes >= detector.datapoints_to_alarm or bool(
                mapping and (mapping.last_processing_result or "").startswith("PROBLEM")
            )
            if mapping and keeps_failing and any(x.function_side for x in found):
                proposal, steps = self._failure_handling(f, mapping, evidence)
                proposals += [proposal] if proposal else []
                findings.append(Finding(cause=None, advice=steps))
        named = [x for x in findings if x.cause]
        cause = min((str(x.cause) for x in named), key=PRECEDENCE.index) if named else "function-errors"
        return Diagnosis(
            cause=cause,
            summary=" ".join(x.text for x in named),
            figures=tuple(figures),
            proposals=tuple(proposals),
            advice=(
                *read_failure_advice(
                    evidence,
                    LAMBDA_MAPPINGS,
                    "the consumer functions' event-source mappings and configuration",
                    MAPPING_READ_ACTIONS,
                ),
                *(a for x in findings for a in x.advice),
                *unreadable_consumers(evidence, named={f.function for f in failing}),
            ),
        )

    @staticmethod
    def _metrics_only(f: FunctionEvidence, window: int) -> Finding:
        """What the metrics alone say of a failing function whose mapping and configuration could not be read."""
        if f.errors > 0:
            return Finding(
                cause="function-errors",
                text=f"{f.function} failed {f.errors:,.0f} times in {f.error_minutes} of the last {window} minutes "
                "(its mapping, timeout, concurrency and role could not be read, so they were not checked).",
                advice=(
                    Advice(
                        title=f"Read {f.function}'s errors",
                        detail="Find the exception in the function's logs.",
                        cli_command=shlex.join(["aws", "logs", "tail", f"/aws/lambda/{f.function}", "--since", "15m"]),
                    ),
                ),
            )
        return Finding(
            cause="function-throttled",
            text=f"{f.function} was throttled {f.throttles:,.0f} times (its reserved concurrency could not be read, "
            "so whether it or the account's concurrency ran out is unknown).",
        )

    @staticmethod
    def _figures(seen: list[FunctionEvidence], mappings: dict[str, MappingFacts]) -> list[Figure]:
        figures = []
        for f in seen:
            figures += [
                Figure(name=f"{f.function} errors", value=f.errors),
                Figure(name=f"{f.function} throttles", value=f.throttles),
                Figure(name=f"{f.function} invocations", value=f.invocations),
            ]
            if f.max_duration_ms is not None:
                figures.append(Figure(name=f"{f.function} longest run", value=f.max_duration_ms / 1000, unit="s"))
            mapping = mappings.get(f.function)
            if mapping and mapping.function_timeout_seconds is not None:
                figures.append(Figure(name=f"{f.function} timeout", value=mapping.function_timeout_seconds, unit="s"))
            if mapping and mapping.reserved_concurrency is not None:
                figures.append(Figure(name=f"{f.function} reserved concurrency", value=mapping.reserved_concurrency))
        return figures

    def _findings(
        self, f: FunctionEvidence, mapping: MappingFacts | None, checks: list[RoleCheck], evidence: Evidence
    ) -> list[Finding]:
        """Each cause the evidence shows for this function, and only those."""
        function, stream, window = f.function, evidence.stream, evidence.window_minutes
        if mapping is None or not mapping.found:
            return [
                Finding(
                    cause="mapping-missing",
                    text=f"{function} could not be read ({mapping.read_error}): check its name in the policy."
                    if mapping is not None and mapping.read_error
                    else f"{function} has no event-source mapping on stream {stream.name}: its failures come from "
                    "another event source, or its mapping was deleted.",
                    advice=(
                        Advice(
                            title=f"Find {function}'s mappings",
                            detail="List the function's event-source mappings and check the policy's consumers.",
                            cli_command=shlex.join(
                                ["aws", "lambda", "list-event-source-mappings", "--function-name", function]
                            ),
                        ),
                    ),
                )
            ]
        found: list[Finding] = []
        if mapping.state in DISABLED:
            found.append(
                Finding(
                    cause="mapping-disabled",
                    text=f"Mapping {mapping.uuid} of {function} is {mapping.state}"
                    + (
                        f" (last processing result: {mapping.last_processing_result})"
                        if mapping.last_processing_result
                        else ""
                    )
                    + ": records wait in the stream.",
                    advice=(
                        Advice(
                            title=f"Enable {function}'s mapping once the cause is fixed",
                            detail="The remediator never re-enables a mapping; enable it when the function can "
                            "process the records again.",
                            cli_command=shlex.join(
                                [
                                    "aws",
                                    "lambda",
                                    "update-event-source-mapping",
                                    "--uuid",
                                    str(mapping.uuid),
                                    "--enabled",
                                ]
                            ),
                        ),
                    ),
                )
            )
        for check in checks:
            found += self._role_finding(function, check)
        timeout = mapping.function_timeout_seconds
        if (
            f.errors > 0
            and timeout
            and f.max_duration_ms is not None
            and f.max_duration_ms >= TIMEOUT_SHARE * timeout * 1000
        ):
            longer = min(timeout * 2, limits.MAX_FUNCTION_TIMEOUT_SECONDS)
            found.append(
                Finding(
                    cause="function-timeout",
                    text=f"{function} ran for up to {f.max_duration_ms / 1000:,.1f} s of its {timeout} s timeout: its "
                    f"batches time out ({f.errors:,.0f} errors).",
                    advice=(
                        Advice(
                            title=f"Give {function} time to finish a batch",
                            detail=f"Raise its timeout (at most {limits.MAX_FUNCTION_TIMEOUT_SECONDS} s), or lower "
                            f"the mapping's BatchSize (now {mapping.batch_size}) so one batch fits in the time.",
                            cli_command=shlex.join(
                                [
                                    "aws",
                                    "lambda",
                                    "update-function-configuration",
                                    "--function-name",
                                    function,
                                    "--timeout",
                                    str(longer),
                                ]
                            ),
                        ),
                    ),
                    function_side=True,
                )
            )
        if f.throttles > 0:
            found.append(self._throttle_finding(f, mapping, stream))
        result = mapping.last_processing_result or ""
        if result.startswith("PROBLEM") and mapping.state not in DISABLED:
            found.append(
                Finding(
                    cause="mapping-problem",
                    text=f"Mapping {mapping.uuid} of {function} reports its last processing result as '{result}'.",
                    function_side="function" in result.lower(),
                )
            )
        explained = {x.cause for x in found} & {"consumer-role-denied", "function-timeout", "mapping-disabled"}
        if f.errors > 0 and not explained:
            found.append(
                Finding(
                    cause="function-errors",
                    text=f"{function} failed {f.errors:,.0f} times in {f.error_minutes} of the last {window} minutes, "
                    "its runs ending before the timeout: its own code raises on some records.",
                    advice=(
                        Advice(
                            title=f"Read {function}'s errors",
                            detail="Find the exception in the function's logs; report batch item failures "
                            "(ReportBatchItemFailures) so one bad record does not fail its whole batch.",
                            cli_command=shlex.join(
                                ["aws", "logs", "tail", f"/aws/lambda/{function}", "--since", "15m"]
                            ),
                        ),
                    ),
                    function_side=True,
                )
            )
        return found

    @staticmethod
    def _role_finding(function: str, check: RoleCheck) -> list[Finding]:
        if check.error:
            return [
                Finding(
                    cause=None,
                    advice=(
                        Advice(
                            title=f"Check {function}'s role by hand",
                            detail=f"The remediator could not simulate role {check.role} ({check.error}).",
                        ),
                    ),
                )
            ]
        if not check.denied:
            return []
        denied = ", ".join(check.denied)
        caveat = (
            f" (the simulation lacked the context keys {', '.join(check.missing_context)} that the role's conditions "
            "use: confirm by hand)"
            if check.missing_context
            else ""
        )
        return [
            Finding(
                cause="consumer-role-denied",
                text=f"{function}'s execution role {role_name(check.role)} is denied {denied} on {check.resource}"
                f"{caveat}: the mapping cannot read the stream.",
                advice=(
                    Advice(
                        title=f"Let {role_name(check.role)} read the stream",
                        detail=f"Allow {denied} on {check.resource} in the role's policy, or attach AWS's managed "
                        "AWSLambdaKinesisExecutionRole policy (it allows them on every stream).",
                        cli_command=shlex.join(
                            [
                                "aws",
                                "iam",
                                "attach-role-policy",
                                "--role-name",
                                role_name(check.role),
                                "--policy-arn",
                                KINESIS_EXECUTION_POLICY,
                            ]
                        ),
                    ),
                ),
            )
        ]

    @staticmethod
    def _throttle_finding(f: FunctionEvidence, mapping: MappingFacts, stream: StreamState) -> Finding:
        factor = mapping.parallelization_factor or 1
        needed = stream.open_shards * factor
        reserved = mapping.reserved_concurrency
        concurrency_command = shlex.join(
            [
                "aws",
                "lambda",
                "put-function-concurrency",
                "--function-name",
                f.function,
                "--reserved-concurrent-executions",
                str(max(needed, reserved or 0)),
            ]
        )
        if reserved is None:
            return Finding(
                cause="account-concurrency",
                text=f"{f.function} was throttled {f.throttles:,.0f} times with no reserved concurrency: the account's "
                "unreserved concurrency ran out (other functions used it).",
                advice=(
                    Advice(
                        title=f"Reserve concurrency for {f.function}",
                        detail=f"Its mapping runs up to {stream.open_shards} shards x {factor} = {needed} batches at "
                        "once; reserve that many, or ask AWS for a higher concurrency quota.",
                        cli_command=concurrency_command,
                    ),
                ),
            )
        if reserved < needed:
            return Finding(
                cause="reserved-concurrency",
                text=f"{f.function} was throttled {f.throttles:,.0f} times: its reserved concurrency is {reserved}, "
                f"below the {stream.open_shards} shards x {factor} = {needed} batches its mapping runs at once.",
                advice=(
                    Advice(
                        title=f"Raise {f.function}'s reserved concurrency",
                        detail=f"Reserve at least {needed} concurrent executions, one per batch its mapping runs.",
                        cli_command=concurrency_command,
                    ),
                ),
            )
        return Finding(
            cause="reserved-concurrency",
            text=f"{f.function} was throttled {f.throttles:,.0f} times although its reserved concurrency ({reserved}) "
            f"covers the {needed} batches its mapping runs at once: other callers share it.",
            advice=(
                Advice(
                    title=f"Raise {f.function}'s reserved concurrency",
                    detail="Other invocations use the function's reserved concurrency: raise it, or move the other "
                    "callers to a function of their own.",
                    cli_command=shlex.join(
                        [
                            "aws",
                            "lambda",
                            "put-function-concurrency",
                            "--function-name",
                            f.function,
                            "--reserved-concurrent-executions",
                            str(reserved * 2),
                        ]
                    ),
                ),
            ),
        )

    @staticmethod
    def _failure_handling(
        f: FunctionEvidence, mapping: MappingFacts, evidence: Evidence
    ) -> tuple[Proposal | None, tuple[Advice, ...]]:
        """A batch that keeps failing: propose failure handling where it is not in place, and say how by hand."""
        retries = mapping.maximum_retry_attempts
        in_place = bool(mapping.bisect_batch_on_error) and retries is not None and retries >= 0
        steps = (
            Advice(
                title=f"Stop one bad batch from blocking {f.function}'s shards",
                detail="Split failing batches, cap the retries and send what still fails to an on-failure "
                "destination (SQS, SNS or S3) instead of retrying it until it expires. Capping retries without a "
                "destination drops those records.",
                cli_command=shlex.join(
                    [
                        "aws",
                        "lambda",
                        "update-event-source-mapping",
                        "--uuid",
                        str(mapping.uuid),
                        "--bisect-batch-on-function-error",
                        "--maximum-retry-attempts",
                        "2",
                        "--destination-config",
                        '{"OnFailure":{"Destination":"<queue-or-topic-arn>"}}',
                    ]
                ),
            ),
        )
        if in_place or mapping.state in DISABLED:
            return None, ()
        proposal = Proposal(
            action="tune-event-source",
            parameters={"function": f.function, "goal": "failure-handling"},
            reason=f"{f.function} failed in {f.error_minutes} of the last {evidence.window_minutes} minutes: the same "
            "batch keeps failing and holds its shard back",
        )
        return proposal, steps
