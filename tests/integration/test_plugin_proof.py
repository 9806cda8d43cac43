"""The proof that a symptom and an action are each one file: a toy pair defined here, and nowhere else.

The toy symptom alarms on AWS/Lambda `Errors` per consumer function (another namespace, a FunctionName
dimension, one alarm per consumer); the toy action reserves concurrency for that function through
Lambda (another AWS service, another IAM resource type). Registered for this module only, they show up
in the synthesized alarms and role, in `validate`, in `plan --json`, in the dry-run e-mail, and in an
enforced change, with no edit to the product.
"""

from __future__ import annotations

import io
import json
import shlex
import zipfile
from collections.abc import Callable, Iterator
from contextlib import redirect_stderr, redirect_stdout
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, ClassVar

import pytest
from pydantic import Field
from remediator import cli
from remediator.core.actions.base import Action, ValidationContext
from remediator.core.evidence import Evidence
from remediator.core.grants import LAMBDA_FUNCTION, IamGrant
from remediator.core.metrics import MetricMath, MetricName, MetricQuery, MissingData
from remediator.core.plan import Diagnosis, Figure, GuardrailVerdict, PlannedStep, Proposal
from remediator.core.policy import ActionPolicy, DetectorPolicy, StreamPolicy
from remediator.core.ports import WritePorts
from remediator.core.registry import REGISTRY
from remediator.core.symptoms.base import AlarmSpec, Symptom

from tests.fakes import ACCOUNT, REGION
from tests.integration.conftest import AwsEnv

# ---- The toy symptom: one file's worth ------------------------------------------------------------------

LAMBDA_ERRORS = MetricName("AWS/Lambda", "Errors", "Sum")
LAMBDA_INVOCATIONS = MetricName("AWS/Lambda", "Invocations", "Sum")


class ToyErrorsDetector(DetectorPolicy):
    threshold_errors: int = Field(5, ge=1, description="Alarm when a consumer's Errors (Sum per minute) reach this.")


class ToyConsumerErrors(Symptom[ToyErrorsDetector]):
    id = "toy-consumer-errors"
    title = "a consumer function fails"
    meaning = "AWS/Lambda Errors of a function that reads the stream are high."
    detector_schema = ToyErrorsDetector

    def alarms(self, policy: StreamPolicy, detector: ToyErrorsDetector) -> list[AlarmSpec]:
        specs = []
        for consumer in policy.lambda_consumers:
            errors = LAMBDA_ERRORS.on(FunctionName=consumer.function)
            calls = LAMBDA_INVOCATIONS.on(FunctionName=consumer.function)
            rate = MetricMath("100 * errors / MAX([calls, 1])", {"errors": errors, "calls": calls}, "error rate %")
            specs += [
                self.alarm(
                    detector,
                    errors,
                    detector.threshold_errors,
                    missing_data=MissingData.NOT_BREACHING,
                    qualifier=consumer.function,
                ),
                self.alarm(detector, rate, 1, missing_data=MissingData.IGNORE, qualifier=f"{consumer.function}-rate"),
            ]
        return specs

    def evidence_queries(self, policy: StreamPolicy) -> tuple[MetricQuery, ...]:
        return tuple(
            MetricQuery(f"errors_{index}", LAMBDA_ERRORS.on(FunctionName=consumer.function))
            for index, consumer in enumerate(policy.lambda_consumers)
        )

    def diagnose(self, evidence: Evidence, policy: StreamPolicy) -> Diagnosis:
        errors = {c.function: evidence.total(f"errors_{i}") for i, c in enumerate(policy.lambda_consumers)}
        figures = tuple(Figure(name=f"errors of {name}", value=value) for name, value in errors.items())
        failing = [name for name, value in errors.items() if value > 0]
        if not failing:
            return Diagnosis(cause="not-reproduced", summary="No consumer errors in the window.", figures=figures)
        return Diagnosis(
            cause="consumer-starved",
            summary=f"{failing[0]} fails under load.",
            figures=figures,
            proposals=(
                Proposal(action="toy-reserve-concurrency", parameters={"function": failing[0]}, reason="starved"),
            ),
        )


# ---- The toy action: one file's worth -------------------------------------------------------------------


class ToyReservePolicy(ActionPolicy):
    reserved_executions: int = Field(50, ge=1, le=1000, description="Concurrency to reserve for the function.")


class ToyReserveConcurrency(Action[ToyReservePolicy]):
    id = "toy-reserve-concurrency"
    title = "reserve concurrency"
    policy_schema = ToyReservePolicy
    grants = (
        IamGrant(
            actions=("lambda:PutFunctionConcurrency",),
            scope=LAMBDA_FUNCTION,
            why="Reserve concurrency for the stream's consumer functions.",
        ),
    )
    sample_parameters: ClassVar[dict[str, Any]] = {"function": "orders-processor", "reserved_executions": 50}

    def shape(self, proposal: Proposal, context: ValidationContext) -> Proposal:
        reserved = self.block(context.policy).reserved_executions
        return proposal.model_copy(update={"parameters": {**proposal.parameters, "reserved_executions": reserved}})

    def checks(self, step: PlannedStep, context: ValidationContext) -> list[GuardrailVerdict]:
        consumers = {c.function for c in context.policy.lambda_consumers}
        ours = step.parameters["function"] in consumers
        return [GuardrailVerdict(name="policy-consumer", passed=ours, detail=f"consumers: {sorted(consumers)}")]

    def apply(self, step: PlannedStep, aws: WritePorts) -> dict[str, Any]:
        return aws.service("lambda").call(
            "PutFunctionConcurrency",
            FunctionName=step.parameters["function"],
            ReservedConcurrentExecutions=step.parameters["reserved_executions"],
        )

    def cli_command(self, stream_arn: str, parameters: dict[str, Any]) -> str:
        return shlex.join(
            [
                "aws", "lambda", "put-function-concurrency",
                "--function-name", parameters["function"],
                "--reserved-concurrent-executions", str(parameters["reserved_executions"]),
            ]
        )  # fmt: skip

    def summary(self, parameters: dict[str, Any]) -> str:
        return f"reserve {parameters['reserved_executions']} executions for {parameters['function']}"


# ---- The proof ------------------------------------------------------------------------------------------

STREAM, FUNCTION = "orders", "orders-processor"
POLICY_YAML = f"""\
version: 1
streams:
  - name: {STREAM}
    mode: {{mode}}
    consumers:
      - function: {FUNCTION}
    detectors:
      toy_consumer_errors: {{{{threshold_errors: {{threshold}}}}}}
    actions:
      reshard: {{{{max_shards: 8}}}}
      toy_reserve_concurrency: {{{{reserved_executions: {{reserved}}}}}}
"""


def policy_yaml(mode: str = "dry-run", threshold: int = 3, reserved: int = 20) -> str:
    return POLICY_YAML.format(mode=mode, threshold=threshold, reserved=reserved)


@pytest.fixture(scope="module", autouse=True)
def toy_plugins() -> Iterator[None]:
    with REGISTRY.registered(ToyConsumerErrors, ToyReserveConcurrency):
        yield


def write_policy(directory: Path, text: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "orders.yaml").write_text(text, encoding="utf-8")
    return directory


def run_cli(*args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        code = cli.main(list(args))
    return code, out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def template(toy_plugins: None, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    from tests.infrastructure.support import synthesize

    # Enforce: a dry-run policy's role has no write grants.
    policies = write_policy(tmp_path_factory.mktemp("toy-policies"), policy_yaml(mode="enforce"))
    # Every stack's resources: the core's role, and the stream stack's alarms (stacks/fleet.py).
    return synthesize([policies], tmp_path_factory.mktemp("toy-cdk.out")).all_resources()


def resources(template: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    return [r["Properties"] for r in template["Resources"].values() if r["Type"] == kind]


def toy_alarm(template: dict[str, Any], qualifier: str = FUNCTION) -> dict[str, Any]:
    name = f"kinesis-remediator-{STREAM}/toy-consumer-errors/{qualifier}"
    (alarm,) = [a for a in resources(template, "AWS::CloudWatch::Alarm") if a["AlarmName"] == name]
    return alarm


def test_toy_symptom_alarm_is_synthesized_as_declared(template: dict[str, Any]) -> None:
    # Given the app synthesized from a policy that sets the toy detector's threshold to 3
    # When the toy symptom's alarm is looked up
    alarm = toy_alarm(template)
    # Then it watches AWS/Lambda Errors of the consumer function, with the policy's threshold
    assert alarm["AlarmName"] == f"kinesis-remediator-{STREAM}/toy-consumer-errors/{FUNCTION}"
    assert (alarm["Namespace"], alarm["MetricName"], alarm["Statistic"]) == ("AWS/Lambda", "Errors", "Sum")
    assert alarm["Dimensions"] == [{"Name": "FunctionName", "Value": FUNCTION}]
    assert (alarm["Threshold"], alarm["TreatMissingData"]) == (3, "notBreaching")
    # And its second alarm is metric math over two AWS/Lambda metrics of the same function
    rate = toy_alarm(template, f"{FUNCTION}-rate")
    queries = {q["Id"]: q for q in rate["Metrics"]}
    assert queries["expr_1"]["Expression"] == "100 * errors / MAX([calls, 1])"
    assert {name: queries[name]["MetricStat"]["Metric"]["MetricName"] for name in ("errors", "calls")} == {
        "errors": "Errors",
        "calls": "Invocations",
    }
    assert queries["errors"]["MetricStat"]["Metric"]["Dimensions"] == [{"Name": "FunctionName", "Value": FUNCTION}]
    assert (rate["Threshold"], rate["TreatMissingData"]) == (1, "ignore")
    # And the built-in symptoms' alarms are still there
    names = {a["AlarmName"] for a in resources(template, "AWS::CloudWatch::Alarm")}
    assert {f"kinesis-remediator-{STREAM}/iterator-age", f"kinesis-remediator-{STREAM}/write-throttling"} <= names


def test_toy_action_is_granted_on_the_consumer_function_only(template: dict[str, Any]) -> None:
    # Given the remediator's role policy in the synthesized template
    statements = [s for p in resources(template, "AWS::IAM::Policy") for s in p["PolicyDocument"]["Statement"]]
    # When the statement for the toy action's IAM action is found
    (statement,) = [s for s in statements if "lambda:PutFunctionConcurrency" in json.dumps(s["Action"])]
    # Then it names the consumer function's ARN and nothing wider
    resource = json.dumps(statement["Resource"])
    assert f"function:{FUNCTION}" in resource
    assert '"*"' not in resource


def test_validate_accepts_and_rejects_the_toy_blocks(tmp_path: Path) -> None:
    # Given a valid policy with both toy blocks
    good = write_policy(tmp_path / "good", policy_yaml())
    # When it is validated
    code, out, _ = run_cli("validate", str(good))
    # Then it passes, and the table lists the toy detector and action
    assert code == 0
    assert "toy-consumer-errors" in out
    assert "toy-reserve-concurrency" in out
    # Given the same policy with both toy fields out of their ranges
    bad = write_policy(tmp_path / "bad", policy_yaml(threshold=0, reserved=5000))
    # When it is validated
    code, _, err = run_cli("validate", str(bad))
    # Then each bad field is named with its file and stream
    assert code == 1
    assert "stream 'orders': detectors.toy_consumer_errors.threshold_errors" in err
    assert "stream 'orders': actions.toy_reserve_concurrency.reserved_executions" in err


def test_reference_documents_the_toy_blocks_and_alarm() -> None:
    # When the reference is printed while the toy pair is registered
    code, out, _ = run_cli("reference")
    # Then it lists their policy fields, the toy alarm and the toy action's grant
    assert code == 0
    assert "`detectors.toy_consumer_errors.threshold_errors`" in out
    assert "`actions.toy_reserve_concurrency.reserved_executions`" in out
    assert "`kinesis-remediator-orders/toy-consumer-errors/orders-processor`" in out
    assert "`lambda:PutFunctionConcurrency`" in out


def seed(aws: AwsEnv, mode: str = "dry-run") -> None:
    aws.create_stream(STREAM, 2)
    aws.put_policy(REGISTRY.parse_stream_policy(_policy_dict(mode)).model_dump(mode="json"))
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    aws.client("cloudwatch").put_metric_data(
        Namespace="AWS/Lambda",
        MetricData=[
            {
                "MetricName": "Errors",
                "Dimensions": [{"Name": "FunctionName", "Value": FUNCTION}],
                "Timestamp": now - timedelta(minutes=minute),
                "Value": 7.0,
            }
            for minute in range(1, 6)
        ],
    )


def _policy_dict(mode: str) -> dict[str, Any]:
    import yaml

    document: dict[str, Any] = yaml.safe_load(policy_yaml(mode=mode))
    stream: dict[str, Any] = document["streams"][0]
    return stream


def test_plan_json_proposes_the_toy_action(aws: AwsEnv, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a stream whose consumer function reports errors, and the toy policy on disk
    seed(aws)
    policies = write_policy(tmp_path, policy_yaml())
    monkeypatch.setenv("AWS_REGION", REGION)
    # When `plan --json` is asked about the toy symptom
    code, out, err = run_cli(
        "plan", "--stream", STREAM, "--symptom", "toy-consumer-errors", "--policy-dir", str(policies), "--json"
    )
    # Then the toy action is proposed with its parameters, summary and CLI command
    assert code == 0, err
    report = json.loads(out)
    (step,) = report["actions"]
    assert step["action"] == "toy-reserve-concurrency"
    assert step["parameters"] == {"function": FUNCTION, "reserved_executions": 20}
    assert step["summary"] == f"reserve 20 executions for {FUNCTION}"
    assert step["cli_command"] == (
        f"aws lambda put-function-concurrency --function-name {FUNCTION} --reserved-concurrent-executions 20"
    )
    assert report["diagnosis"]["cause"] == "consumer-starved"


def alarm_event_from(alarm: dict[str, Any]) -> dict[str, Any]:
    """The EventBridge event CloudWatch sends when the synthesized alarm goes into ALARM."""
    name = alarm["AlarmName"]
    dimensions = {d["Name"]: d["Value"] for d in alarm["Dimensions"]}
    return {
        "version": "0",
        "id": "7bf73129-1428-4cd3-a780-95db273d1602",
        "detail-type": "CloudWatch Alarm State Change",
        "source": "aws.cloudwatch",
        "account": ACCOUNT,
        "time": "2026-11-26T02:59:10Z",
        "region": REGION,
        "resources": [f"arn:aws:cloudwatch:{REGION}:{ACCOUNT}:alarm:{name}"],
        "detail": {
            "alarmName": name,
            "state": {"value": "ALARM", "reason": "Threshold Crossed", "timestamp": "2026-11-26T02:59:00.000+0000"},
            "previousState": {"value": "OK", "reason": "", "timestamp": "2026-11-26T02:00:00.000+0000"},
            "configuration": {
                "metrics": [
                    {
                        "id": "m1",
                        "metricStat": {
                            "metric": {
                                "namespace": alarm["Namespace"],
                                "name": alarm["MetricName"],
                                "dimensions": dimensions,
                            },
                            "period": alarm["Period"],
                            "stat": alarm["Statistic"],
                        },
                        "returnData": True,
                    }
                ]
            },
        },
    }


def test_dry_run_email_shows_the_toy_plan(
    aws: AwsEnv, invoke: Callable[[Any], dict[str, Any]], template: dict[str, Any]
) -> None:
    # Given the stream under the toy policy in dry-run, its consumer failing
    seed(aws)
    # When the synthesized toy alarm fires
    result = invoke(alarm_event_from(toy_alarm(template)))
    # Then the remediator rehearses the toy action and mails its summary, command and guardrails
    assert (result["status"], result["symptom"]) == ("dry-run", "toy-consumer-errors")
    (email,) = aws.emails()
    body = email["Message"]
    assert f"1. reserve 20 executions for {FUNCTION} [allowed]" in body
    assert f"aws lambda put-function-concurrency --function-name {FUNCTION}" in body
    assert "[pass] policy-consumer" in body
    assert f"reserve 20 executions for {FUNCTION}" in email["Subject"]


def test_enforce_applies_the_toy_action_through_the_lambda_write_port(
    aws: AwsEnv, invoke: Callable[[Any], dict[str, Any]], template: dict[str, Any]
) -> None:
    # Given the consumer function exists, and the toy policy is in enforce mode
    seed(aws, mode="enforce")
    iam = aws.client("iam")
    role = iam.create_role(RoleName="consumer", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    package = io.BytesIO()
    with zipfile.ZipFile(package, "w") as archive:
        archive.writestr("handler.py", "def handler(event, context):\n    return None\n")
    aws.client("lambda").create_function(
        FunctionName=FUNCTION,
        Runtime="python3.12",
        Role=role,
        Handler="handler.handler",
        Code={"ZipFile": package.getvalue()},
    )
    # When the toy alarm fires
    result = invoke(alarm_event_from(toy_alarm(template)))
    # Then the toy action is applied, and Lambda holds the reserved concurrency
    assert result["status"] == "applied", result
    concurrency = aws.client("lambda").get_function_concurrency(FunctionName=FUNCTION)
    assert concurrency["ReservedConcurrentExecutions"] == 20
