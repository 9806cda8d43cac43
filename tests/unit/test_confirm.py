"""Action.confirm: after a change that failed without AWS saying whether it was made (a 5xx, a timeout), each
action re-reads and answers True (made), False (not made) or None (cannot tell). And the clients' translation
of the SDK's errors for mutating calls, and of SSM's errors for the policy and the kill switch."""

from __future__ import annotations

from typing import Any

import pytest
from aws_lambda_powertools.utilities.parameters.exceptions import GetParameterError
from botocore.exceptions import ClientError, ConnectTimeoutError, ReadTimeoutError
from remediator.clients.parameters import error_code
from remediator.clients.services import change_failure
from remediator.core.actions.base import Action
from remediator.core.plan import PlannedStep
from remediator.core.ports import ChangeRefused, ChangeUnanswered, DeclaredOnly, LimitReached
from remediator.core.registry import REGISTRY

from tests.fakes import stream_arn

ARN = stream_arn("orders")


class Answers:
    """Read ports answering each operation with a fixed response (one per operation)."""

    def __init__(self, answers: dict[str, dict[str, Any]]) -> None:
        self.answers, self.calls = answers, []

    def service(self, name: str) -> Any:
        outer = self

        class Port:
            def call(self, operation: str, **parameters: Any) -> dict[str, Any]:
                outer.calls.append(operation)
                return outer.answers[operation]

        return Port()


def step(action: str, **parameters: Any) -> PlannedStep:
    return PlannedStep(
        action=action,
        stream="orders",
        stream_arn=ARN,
        parameters=parameters or dict(REGISTRY.actions[action].sample_parameters),
        reason="test",
        summary="test",
        cli_command="aws test",
    )


def confirm(action: str, answers: dict[str, dict[str, Any]], **parameters: Any) -> bool | None:
    plugin = REGISTRY.actions[action]
    reads = DeclaredOnly(Answers(answers), plugin.iam_actions, plugin.id, read_only=True)
    return plugin.confirm(step(action, **parameters), reads)


@pytest.mark.parametrize(("key", "action"), sorted(REGISTRY.actions.items()))
def test_every_action_can_tell_whether_its_change_was_made(key: str, action: Action[Any]) -> None:
    # Given a registered action: it overrides the base's confirm (which cannot tell, and would leave every
    # uncertain change of the action `uncertain`)
    assert type(action).confirm is not Action.confirm, f"action '{key}' has no confirm()"


def summary(status: str, shards: int, retention: int = 24) -> dict[str, dict[str, Any]]:
    return {
        "DescribeStreamSummary": {
            "StreamDescriptionSummary": {
                "StreamStatus": status,
                "OpenShardCount": shards,
                "RetentionPeriodHours": retention,
            }
        }
    }


@pytest.mark.parametrize(
    ("status", "shards", "made"),
    [
        ("UPDATING", 2, True),  # AWS took it: resharding now
        ("ACTIVE", 4, True),  # done
        ("ACTIVE", 2, False),  # as the step found it
        ("ACTIVE", 3, None),  # someone else's change
        ("CREATING", 2, None),
    ],
)
def test_reshard(status: str, shards: int, made: bool | None) -> None:
    assert confirm("reshard", summary(status, shards)) is made


@pytest.mark.parametrize(("hours", "made"), [(48, True), (72, True), (24, False), (36, None)])
def test_raise_retention(hours: int, made: bool | None) -> None:
    assert confirm("raise-retention", summary("ACTIVE", 2, hours)) is made


def table(status: str, mode: str, write: int) -> dict[str, dict[str, Any]]:
    return {
        "DescribeTable": {
            "Table": {
                "TableStatus": status,
                "BillingModeSummary": {"BillingMode": mode},
                "ProvisionedThroughput": {"ReadCapacityUnits": 10, "WriteCapacityUnits": write},
            }
        }
    }


@pytest.mark.parametrize(
    ("strategy", "status", "mode", "write", "made"),
    [
        ("raise-write-capacity", "UPDATING", "PROVISIONED", 20, True),
        ("raise-write-capacity", "ACTIVE", "PROVISIONED", 10, False),
        ("raise-write-capacity", "UPDATING", "PROVISIONED", 10, None),  # an update under way, not surely ours
        ("raise-write-capacity", "ACTIVE", "PAY_PER_REQUEST", 0, None),
        ("on-demand", "UPDATING", "PAY_PER_REQUEST", 0, True),
        ("on-demand", "ACTIVE", "PROVISIONED", 10, False),
        ("on-demand", "UPDATING", "PROVISIONED", 10, None),
    ],
)
def test_lease_table_capacity(strategy: str, status: str, mode: str, write: int, made: bool | None) -> None:
    parameters = REGISTRY.actions["lease-table-capacity"].sample_parameters | {"strategy": strategy}
    assert confirm("lease-table-capacity", table(status, mode, write), **parameters) is made


@pytest.mark.parametrize(("factor", "made"), [(2, True), (1, False), (3, None)])
def test_tune_event_source(factor: int, made: bool | None) -> None:
    mapping = {"GetEventSourceMapping": {"State": "Enabled", "ParallelizationFactor": factor, "BatchSize": 100}}
    assert confirm("tune-event-source", mapping) is made


@pytest.mark.parametrize(
    ("listed", "register", "move", "made"),
    [
        (["analytics-efo"], "analytics-efo", "", True),
        ([], "analytics-efo", "", False),
        (["a"], "a,b", "", None),  # part of the way
        (["a"], "a", "orders-processor", None),  # a move too: apply settles its own moves
    ],
)
def test_enhanced_fan_out(listed: list[str], register: str, move: str, made: bool | None) -> None:
    consumers = [
        {"ConsumerName": n, "ConsumerARN": f"{ARN}/consumer/{n}:1", "ConsumerStatus": "ACTIVE"} for n in listed
    ]
    parameters = REGISTRY.actions["enhanced-fan-out"].sample_parameters | {"register": register, "move": move}
    assert confirm("enhanced-fan-out", {"ListStreamConsumers": {"Consumers": consumers}}, **parameters) is made


def client_error(code: str, status: int | None) -> ClientError:
    response: dict[str, Any] = {"Error": {"Code": code, "Message": "m"}}
    if status is not None:
        response["ResponseMetadata"] = {"HTTPStatusCode": status}
    return ClientError(response, "UpdateShardCount")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("error", "kind"),
    [
        (client_error("LimitExceededException", 400), LimitReached),
        (client_error("LimitExceededException", None), LimitReached),
        (client_error("ResourceInUseException", 400), ChangeRefused),
        (client_error("ThrottlingException", 400), ChangeRefused),  # refused: AWS did not make it
        (client_error("InternalFailure", 500), ChangeUnanswered),
        (client_error("ServiceUnavailable", 503), ChangeUnanswered),
        (client_error("Unknown", None), ChangeUnanswered),  # no status: AWS may have taken it
        (ReadTimeoutError(endpoint_url="https://kinesis"), ChangeUnanswered),
        (ConnectTimeoutError(endpoint_url="https://kinesis"), ChangeUnanswered),
    ],
)
def test_a_failed_mutating_call_says_what_it_tells_about_the_change(error: Exception, kind: type) -> None:
    failure = change_failure("UpdateShardCount", error)
    assert type(failure) is kind
    assert failure is not None and failure.operation == "UpdateShardCount"


def test_an_error_that_is_not_awss_answer_is_left_alone() -> None:
    assert change_failure("UpdateShardCount", ValueError("bad parameter")) is None


def powertools_error(cause: Exception) -> GetParameterError:
    """What Powertools raises: GetParameterError(str(exc)) inside the SDK error's except block."""
    try:
        try:
            raise cause
        except Exception as exc:
            raise GetParameterError(str(exc))  # noqa: B904 - as Powertools does
    except GetParameterError as wrapped:
        return wrapped


@pytest.mark.parametrize(
    ("cause", "code"),
    [
        (client_error("ParameterNotFound", 400), "ParameterNotFound"),
        (client_error("ThrottlingException", 400), "ThrottlingException"),
        (ReadTimeoutError(endpoint_url="https://ssm"), None),
    ],
)
def test_the_sdks_error_code_is_found_behind_powertools_wrapper(cause: Exception, code: str | None) -> None:
    assert error_code(powertools_error(cause)) == code
