"""Our alarms: how they are named, and how an alarm state change becomes a trigger (or is ignored, and why)."""

from __future__ import annotations

from collections.abc import Mapping

from pydantic import BaseModel, ConfigDict

from remediator.core.symptoms import SYMPTOMS

DEFAULT_ALARM_PREFIX = "kinesis-remediator-"


def alarm_name(prefix: str, stream: str, symptom: str) -> str:
    if symptom not in SYMPTOMS:
        raise ValueError(f"unknown symptom '{symptom}'")
    return f"{prefix}{stream}-{symptom}"


class AlarmTrigger(BaseModel):
    """An alarm of ours that went into ALARM: the remediator's unit of work (and idempotency key)."""

    model_config = ConfigDict(frozen=True)

    alarm_name: str
    stream: str
    symptom: str
    state_timestamp: str
    account: str
    region: str
    reason: str = ""


def identify(
    *,
    alarm: str,
    prefix: str,
    state: str,
    previous_state: str | None,
    state_timestamp: str,
    dimensions: Mapping[str, str],
    account: str,
    region: str,
    reason: str = "",
) -> tuple[AlarmTrigger | None, str]:
    """Return the trigger, or None and why the change is not for us."""
    if not alarm.startswith(prefix):
        return None, f"alarm '{alarm}' does not start with '{prefix}'"
    if state != "ALARM":
        return None, f"alarm '{alarm}' went to {state}, not ALARM"
    if previous_state == "ALARM":
        return None, f"alarm '{alarm}' was already in ALARM"
    rest = alarm[len(prefix) :]
    for key in SYMPTOMS:
        if rest.endswith(f"-{key}") and len(rest) > len(key) + 1:
            stream = rest[: -(len(key) + 1)]
            break
    else:
        return None, f"alarm '{alarm}' names no known symptom"
    # Dimension keys are matched case-insensitively: SNS-shaped payloads lower-case them.
    dimension = {k.lower(): v for k, v in dimensions.items()}.get("streamname")
    if dimension is not None and dimension != stream:
        return None, f"alarm '{alarm}' watches stream '{dimension}', but its name says '{stream}'"
    return (
        AlarmTrigger(
            alarm_name=alarm,
            stream=stream,
            symptom=key,
            state_timestamp=state_timestamp,
            account=account,
            region=region,
            reason=reason,
        ),
        "",
    )
