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
    # Whatever the step recorded (JSON): numbers with a fraction, booleans and None included.
    parameters: dict[str, Any] = {}


class ActionHistory:
    """Applied actions only: dry-runs and blocked steps cost no budget and start no cooldown."""

    def __init__(
        self,
        applied: Iterable[PastAction] = (),
        planned: Iterable[PastAction] = (),
        own_chain: Iterable[PastAction] = (),
    ) -> None:
        self._applied = sorted(applied, key=lambda a: a.at)
        # Allowed steps earlier in the plan being made: they spend budget, but start no cooldown for their
        # siblings (the steps of one plan are one decision).
        self._planned = tuple(planned)
        # A follow-through's own chain: the steps applied for the same alarm state change. They spend budget
        # like any other, but start no cooldown for the chain's later steps (remediator.core.follow_through).
        self._own_chain = frozenset((a.action, a.stream, a.at) for a in own_chain)

    def with_planned(self, step: PastAction) -> ActionHistory:
        return ActionHistory(self._applied, (*self._planned, step), self._own_chain_actions())

    def for_chain(self, own: Iterable[PastAction]) -> ActionHistory:
        """This history, as a follow-through of the chain that applied `own` sees it."""
        return ActionHistory(self._applied, self._planned, own)

    def _own_chain_actions(self) -> list[PastAction]:
        return [a for a in self._applied if (a.action, a.stream, a.at) in self._own_chain]

    def starts_cooldown(self, action: str, stream: str) -> PastAction | None:
        """The newest applied action of this kind that starts a cooldown (any but the follow-through's own chain)."""
        matching = [
            a
            for a in self._applied
            if a.action == action and a.stream == stream and (a.action, a.stream, a.at) not in self._own_chain
        ]
        return matching[-1] if matching else None

    def own_chain(self, action: str, stream: str) -> list[PastAction]:
        """The follow-through's own chain's applied actions of this kind (empty outside a follow-through)."""
        return [a for a in self._own_chain_actions() if a.action == action and a.stream == stream]

    def applied_since(self, action: str, stream: str, since: datetime) -> list[PastAction]:
        return [a for a in self._applied if a.action == action and a.stream == stream and a.at >= since]

    def last_applied(self, action: str, stream: str) -> PastAction | None:
        matching = [a for a in self._applied if a.action == action and a.stream == stream]
        return matching[-1] if matching else None

    def count_in_rolling_day(self, action: str, stream: str, now: datetime) -> int:
        planned = [a for a in self._planned if a.action == action and a.stream == stream]
        return len(self.applied_since(action, stream, now - timedelta(hours=24))) + len(planned)
