"""Stand-ins for actions another branch builds, so that proposals for them can be planned here.

TuneEventSourceStandIn takes the id `tune-event-source` until the real action (issue 6, another helper)
merges; drop it then, and the tests that register it run against the real one. It keeps only the
cross-helper contract: a proposal `{"function": NAME, "goal": G}` becomes a step on that function's mapping.
"""

from __future__ import annotations

import shlex
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, ClassVar

from remediator.core.actions.base import Action, ValidationContext
from remediator.core.consumers import lambda_mappings
from remediator.core.grants import EVENT_SOURCE_MAPPING, IamGrant
from remediator.core.plan import GuardrailVerdict, PlannedStep, Proposal
from remediator.core.policy import ActionPolicy
from remediator.core.ports import WritePorts
from remediator.core.registry import REGISTRY


class TuneEventSourceStandInPolicy(ActionPolicy):
    """No bounds of its own: a stand-in."""


class TuneEventSourceStandIn(Action[TuneEventSourceStandInPolicy]):
    id = "tune-event-source"
    title = "stand-in for tune-event-source (tests only)"
    policy_schema = TuneEventSourceStandInPolicy
    grants = (IamGrant(("lambda:UpdateEventSourceMapping",), EVENT_SOURCE_MAPPING, "Stand-in: the consumer mappings."),)
    sample_parameters: ClassVar[dict[str, Any]] = {"function": "f", "goal": "throughput", "uuid": "u"}

    def shape(self, proposal: Proposal, context: ValidationContext) -> Proposal:
        function = proposal.parameters["function"]
        uuid = next((m.uuid for m in lambda_mappings(context.evidence) if m.function == function), None)
        return proposal.model_copy(update={"parameters": {**proposal.parameters, "uuid": uuid}})

    def checks(self, step: PlannedStep, context: ValidationContext) -> list[GuardrailVerdict]:
        return [GuardrailVerdict(name="stand-in", passed=True, detail="a stand-in checks nothing")]

    def apply(self, step: PlannedStep, aws: WritePorts) -> dict[str, Any]:
        return aws.service("lambda").call("UpdateEventSourceMapping", UUID=step.parameters["uuid"], BatchSize=200)

    def cli_command(self, stream_arn: str, parameters: dict[str, Any]) -> str:
        return shlex.join(["aws", "lambda", "update-event-source-mapping", "--uuid", str(parameters["uuid"])])

    def summary(self, parameters: dict[str, Any]) -> str:
        return f"tune {parameters['function']} for {parameters['goal']}"


TUNE_EVENT_SOURCE = "tune-event-source"


@contextmanager
def tune_event_source() -> Iterator[None]:
    """`tune-event-source` is registered inside the block: the real one if merged, else the stand-in."""
    if TUNE_EVENT_SOURCE in REGISTRY.actions:
        yield
        return
    with REGISTRY.registered(TuneEventSourceStandIn):
        yield
