"""Stand-ins for plugins that another branch of issue 6 builds, so that the paths which propose them can be
tested before they are merged. Each is registered only while a test needs it, and only when the real plugin
is not registered: once the real one is merged, the stand-in is never used (and can be deleted).

Used by (drop the stand-in from these once `tune-event-source` is merged):
- tests/unit/test_read_throttling.py::test_one_lambda_consumer_is_planned_as_a_tune_step
- tests/integration/test_read_throttling.py::test_one_lambda_consumer_gets_smaller_batches_and_backoff_advice
"""

from __future__ import annotations

import shlex
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, ClassVar

from remediator.core.actions.base import Action, ValidationContext
from remediator.core.grants import EVENT_SOURCE_MAPPING, IamGrant
from remediator.core.plan import GuardrailVerdict, PlannedStep
from remediator.core.policy import ActionPolicy
from remediator.core.ports import WritePorts
from remediator.core.registry import REGISTRY

TUNE_EVENT_SOURCE = "tune-event-source"


class TuneEventSourceStandInPolicy(ActionPolicy):
    """No bounds: the stand-in never changes anything."""


class TuneEventSourceStandIn(Action[TuneEventSourceStandInPolicy]):
    """Accepts `{"function": NAME, "goal": G}` as the cross-helper contract spells it, and does nothing."""

    id = TUNE_EVENT_SOURCE
    title = "stand-in for tune-event-source (built on another branch)"
    policy_schema = TuneEventSourceStandInPolicy
    grants = (IamGrant(("lambda:UpdateEventSourceMapping",), EVENT_SOURCE_MAPPING, "stand-in: never called"),)
    sample_parameters: ClassVar[dict[str, Any]] = {"function": "orders-processor", "goal": "smaller-batches"}

    def checks(self, step: PlannedStep, context: ValidationContext) -> list[GuardrailVerdict]:
        return []

    def apply(self, step: PlannedStep, aws: WritePorts) -> dict[str, Any]:
        raise NotImplementedError("the tune-event-source stand-in never applies")

    def cli_command(self, stream_arn: str, parameters: dict[str, Any]) -> str:
        return shlex.join(["aws", "lambda", "list-event-source-mappings", "--function-name", parameters["function"]])

    def summary(self, parameters: dict[str, Any]) -> str:
        return f"tune {parameters['function']} ({parameters['goal']})"


@contextmanager
def tune_event_source() -> Iterator[None]:
    """`tune-event-source` is registered inside the block: the real one if merged, else the stand-in."""
    if TUNE_EVENT_SOURCE in REGISTRY.actions:
        yield
        return
    with REGISTRY.registered(TuneEventSourceStandIn):
        yield
