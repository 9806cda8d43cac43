"""The "resolved" e-mail: an alarm went back to OK after the remediator acted on it.

Sent only after an action: an alarm that recovered with nothing applied sends nothing (the issue asks to
report recovery after an action, and a flapping alarm must not flood anyone).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from remediator.core.alarm import AlarmResolved
from remediator.core.outcome import AuditEntry
from remediator.core.registry import REGISTRY
from remediator.core.render import SUBJECT_LIMIT, _clip


def duration(delta: timedelta) -> str:
    """'42 s', '12 min 5 s', '2 h 3 min'."""
    seconds = max(int(delta.total_seconds()), 0)
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    if hours:
        return f"{hours} h {minutes} min"
    if minutes:
        return f"{minutes} min {seconds} s" if seconds else f"{minutes} min"
    return f"{seconds} s"


def step_line(entry: AuditEntry) -> str:
    action = REGISTRY.actions.get(entry.action or "")
    what = action.summary(entry.parameters or {}) if action and entry.parameters else (entry.action or "-")
    return f"{entry.at:%Y-%m-%d %H:%M:%S} UTC  {what}"


def subject(resolved: AlarmResolved, took: timedelta | None) -> str:
    after = f" after {duration(took)}" if took is not None else ""
    return _clip(f"[RESOLVED] {resolved.stream}: {resolved.symptom} back to OK{after}", SUBJECT_LIMIT)


def body(
    resolved: AlarmResolved,
    applied: Sequence[AuditEntry],
    alarm_at: datetime | None,
    ok_at: datetime,
    cancelled: int,
) -> str:
    symptom = REGISTRY.symptoms[resolved.symptom]
    took = ok_at - alarm_at if alarm_at is not None else None
    lines = [
        "Kinesis Remediator: resolved. The alarm is back to OK.",
        "",
        f"Alarm:     {resolved.alarm_name}",
        f"Stream:    {resolved.stream}",
        f"Symptom:   {symptom.title} ({resolved.symptom})",
        f"In ALARM:  {alarm_at:%Y-%m-%d %H:%M:%S} UTC"
        if alarm_at
        else "In ALARM:  (the event does not say since when)",
        f"OK:        {ok_at:%Y-%m-%d %H:%M:%S} UTC",
        f"Recovery:  {duration(took)} from ALARM to OK" if took is not None else "Recovery:  unknown",
        "",
        f"What was done ({len(applied)} step(s) applied while the alarm was in ALARM, from the audit table):",
        *[f"  {number}. {step_line(entry)}" for number, entry in enumerate(applied, start=1)],
    ]
    if cancelled:
        lines += ["", f"Follow-through: {cancelled} pending follow-up(s) cancelled: the alarm no longer needs them."]
    return "\n".join(lines) + "\n"
