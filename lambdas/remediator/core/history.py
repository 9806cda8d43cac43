"""What the remediator has done before, as read back from the audit table: feeds cooldowns and budgets."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict


class PastAction(BaseModel):
    model_config = ConfigDict(frozen=True)

    action: str
    stream: str
    at: datetime
    # As the action recorded them (JSON): nested settings, booleans and nulls included.
    parameters: dict[str, Any] = {}


class ActionHistory:
    """Applied actions only: dry-runs and blocked steps cost no budget and start no cooldown."""

    def __init__(self, applied: Iterable[PastAction] = ()) -> None:
        self._applied = sorted(applied, key=lambda a: a.at)

    def applied_since(self, action: str, stream: str, since: datetime) -> list[PastAction]:
        return [a for a in self._applied if a.action == action and a.stream == stream and a.at >= since]

    def last_applied(self, action: str, stream: str) -> PastAction | None:
        matching = [a for a in self._applied if a.action == action and a.stream == stream]
        return matching[-1] if matching else None

    def count_in_rolling_day(self, action: str, stream: str, now: datetime) -> int:
        return len(self.applied_since(action, stream, now - timedelta(hours=24)))
