"""The policy model, shared by the CDK app (alarms, IAM) and the remediator (decisions).

Strict on purpose: unknown keys are rejected, ranges are checked, and nothing means "all streams".
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints, model_validator

from remediator.core import limits
from remediator.core.actions import REGISTRY, ReshardPolicy


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Mode(StrEnum):
    DRY_RUN = "dry-run"
    ENFORCE = "enforce"


_STREAM_NAME = re.compile(r"^[a-zA-Z0-9_.-]{1,128}$")


def _stream_name(value: str) -> str:
    # A wildcard or an empty name must never widen the remediator's reach to "all streams".
    if not _STREAM_NAME.fullmatch(value):
        raise ValueError(
            f"'{value}' is not a Kinesis stream name: use 1-128 letters, digits, '_', '.' or '-' "
            "(one stream per entry; wildcards are not allowed)"
        )
    return value


StreamName = Annotated[str, AfterValidator(_stream_name)]
FunctionName = Annotated[str, StringConstraints(pattern=r"^[a-zA-Z0-9-_]{1,64}$")]
EmailAddress = Annotated[str, StringConstraints(pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$", max_length=254)]


class Notify(Strict):
    emails: tuple[EmailAddress, ...] = Field(
        (), description="Who receives the dry-run plans and the reports of applied actions."
    )


class Consumer(Strict):
    function: FunctionName = Field(..., description="Name of a Lambda function that reads the stream.")


class Detector(Strict):
    enabled: bool = True
    evaluation_periods: int = Field(5, ge=1, le=60, description="Minutes the alarm looks back over.")
    datapoints_to_alarm: int = Field(3, ge=1, le=60, description="Breaching minutes needed to alarm.")

    @model_validator(mode="after")
    def _datapoints_fit(self) -> Detector:
        if self.datapoints_to_alarm > self.evaluation_periods:
            raise ValueError(
                f"datapoints_to_alarm ({self.datapoints_to_alarm}) exceeds evaluation_periods "
                f"({self.evaluation_periods})"
            )
        return self


class IteratorAgeDetector(Detector):
    threshold_ms: int = Field(
        60_000,
        ge=1_000,
        le=limits.MAX_RETENTION_HOURS * 3_600_000,
        description="Alarm when GetRecords.IteratorAgeMilliseconds (Maximum) reaches this.",
    )


class WriteThrottlingDetector(Detector):
    threshold_records: int = Field(
        1, ge=1, description="Alarm when WriteProvisionedThroughputExceeded (Sum per minute) reaches this."
    )
    datapoints_to_alarm: int = Field(2, ge=1, le=60)


class Detectors(Strict):
    iterator_age: IteratorAgeDetector = IteratorAgeDetector()
    write_throttling: WriteThrottlingDetector = WriteThrottlingDetector()


class ActionsPolicy(Strict):
    """One block per registered action (a meta-test keeps this in step with the registry)."""

    reshard: ReshardPolicy


class StreamPolicy(Strict):
    name: StreamName
    mode: Mode = Field(Mode.DRY_RUN, description="dry-run (the default) emails the plan; enforce acts.")
    notify: Notify = Notify()
    consumers: tuple[Consumer, ...] = ()
    detectors: Detectors = Detectors()
    actions: ActionsPolicy


class PolicyDocument(Strict):
    version: Literal[1]
    streams: tuple[StreamPolicy, ...] = Field(..., min_length=1)

    @model_validator(mode="after")
    def _stream_names_unique(self) -> PolicyDocument:
        seen: set[str] = set()
        for stream in self.streams:
            if stream.name in seen:
                raise ValueError(f"stream '{stream.name}' is listed twice")
            seen.add(stream.name)
        return self


assert set(ActionsPolicy.model_fields) == set(REGISTRY), "ActionsPolicy and the action registry disagree"
