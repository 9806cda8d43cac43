"""The audit table: one item per decision, keyed by stream and time. It also feeds cooldowns and budgets."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from remediator.core.history import PastAction
from remediator.core.outcome import AuditEntry, OutcomeStatus
from remediator.core.policy import Mode

AUDIT_RETENTION_DAYS = 90


@dataclass(frozen=True)
class AuditRow:
    """One audit item as read back for display. Plain strings, not enums: a row written by a newer remediator
    (an outcome this reader does not know) still shows."""

    at: datetime
    stream: str
    outcome: str
    reason: str
    symptom: str = ""
    alarm_name: str = ""
    mode: str = ""
    action: str = ""
    notified: bool = False
    parameters: dict[str, Any] | None = None
    plan: dict[str, Any] | None = field(default=None, repr=False)

    @classmethod
    def from_item(cls, item: dict[str, dict[str, Any]]) -> AuditRow:
        def text(key: str) -> str:
            return str(item.get(key, {}).get("S", ""))

        def document(key: str) -> dict[str, Any] | None:
            raw = item.get(key, {}).get("S")
            return json.loads(raw) if raw else None

        return cls(
            at=datetime.fromisoformat(text("at")),
            stream=text("stream"),
            outcome=text("outcome"),
            reason=text("reason"),
            symptom=text("symptom"),
            alarm_name=text("alarm_name"),
            mode=text("mode"),
            action=text("action"),
            notified=bool(item.get("notified", {}).get("BOOL", False)),
            parameters=document("parameters"),
            plan=document("plan"),
        )


class DynamoAuditLog:
    def __init__(self, dynamodb: Any, table_name: str) -> None:
        self._dynamodb = dynamodb
        self._table = table_name

    @staticmethod
    def partition(stream: str) -> str:
        return f"STREAM#{stream}"

    def record(self, entry: AuditEntry) -> None:
        at = entry.at
        item: dict[str, dict[str, Any]] = {
            "pk": {"S": self.partition(entry.stream)},
            "sk": {"S": f"{at.isoformat()}#{uuid.uuid4().hex[:8]}"},
            "at": {"S": at.isoformat()},
            "outcome": {"S": entry.outcome.value},
            "reason": {"S": entry.reason or "-"},
            "expires_at": {"N": str(int((at + timedelta(days=AUDIT_RETENTION_DAYS)).timestamp()))},
        }
        for key in ("stream", "alarm_name", "symptom", "mode", "action"):
            value = getattr(entry, key)
            if value:
                item[key] = {"S": str(value)}
        if entry.notified:
            item["notified"] = {"BOOL": True}
        for key in ("parameters", "plan"):
            value = getattr(entry, key)
            if value is not None:
                item[key] = {"S": json.dumps(value, default=str, sort_keys=True)}
        self._dynamodb.put_item(TableName=self._table, Item=item)

    def applied_actions(self, stream: str, since: datetime) -> list[PastAction]:
        paginator = self._dynamodb.get_paginator("query")
        actions = []
        for page in paginator.paginate(
            TableName=self._table,
            KeyConditionExpression="pk = :pk AND sk >= :since",
            FilterExpression="outcome = :applied",
            ExpressionAttributeValues={
                ":pk": {"S": self.partition(stream)},
                ":since": {"S": since.isoformat()},
                ":applied": {"S": OutcomeStatus.APPLIED.value},
            },
        ):
            for item in page["Items"]:
                actions.append(
                    PastAction(
                        action=item["action"]["S"],
                        stream=stream,
                        at=datetime.fromisoformat(item["at"]["S"]),
                        parameters=json.loads(item.get("parameters", {}).get("S", "{}")),
                    )
                )
        return actions

    def last_advice(self, stream: str, symptom: str, since: datetime) -> datetime | None:
        paginator = self._dynamodb.get_paginator("query")
        newest: datetime | None = None
        for page in paginator.paginate(
            TableName=self._table,
            KeyConditionExpression="pk = :pk AND sk >= :since",
            FilterExpression="symptom = :symptom AND notified = :yes",
            ExpressionAttributeValues={
                ":pk": {"S": self.partition(stream)},
                ":since": {"S": since.isoformat()},
                ":symptom": {"S": symptom},
                ":yes": {"BOOL": True},
            },
        ):
            for item in page["Items"]:
                at = datetime.fromisoformat(item["at"]["S"])
                newest = at if newest is None or at > newest else newest
        return newest

    def history(self, stream: str, since: datetime | None = None) -> list[AuditRow]:
        """Every row of the stream since `since` (all the table keeps when None), newest first: a key condition
        on the sort key (it starts with the row's ISO time), every page read."""
        condition, values = "pk = :pk", {":pk": {"S": self.partition(stream)}}
        if since is not None:
            condition += " AND sk >= :since"
            values[":since"] = {"S": since.astimezone(UTC).isoformat()}  # rows are written in UTC
        paginator = self._dynamodb.get_paginator("query")
        rows = []
        for page in paginator.paginate(
            TableName=self._table,
            KeyConditionExpression=condition,
            ExpressionAttributeValues=values,
            ScanIndexForward=False,
        ):
            rows += [AuditRow.from_item(item) for item in page["Items"]]
        return rows

    def entries(self, stream: str, since: datetime) -> list[AuditEntry]:
        paginator = self._dynamodb.get_paginator("query")
        found = []
        known = {status.value for status in OutcomeStatus}
        for page in paginator.paginate(
            TableName=self._table,
            KeyConditionExpression="pk = :pk AND sk >= :since",
            ExpressionAttributeValues={":pk": {"S": self.partition(stream)}, ":since": {"S": since.isoformat()}},
        ):
            for item in page["Items"]:
                if item.get("outcome", {}).get("S") not in known:
                    continue  # a row another version of the remediator wrote
                text = {key: value["S"] for key, value in item.items() if "S" in value}
                found.append(
                    AuditEntry(
                        at=datetime.fromisoformat(text["at"]),
                        stream=stream,
                        alarm_name=text.get("alarm_name", ""),
                        symptom=text.get("symptom", ""),
                        outcome=OutcomeStatus(text["outcome"]),
                        reason=text.get("reason", ""),
                        mode=Mode(text["mode"]) if text.get("mode") in {m.value for m in Mode} else None,
                        action=text.get("action"),
                        parameters=json.loads(text["parameters"]) if "parameters" in text else None,
                    )
                )
        return sorted(found, key=lambda entry: entry.at)

    def recent(self, stream: str, limit: int = 20) -> list[dict[str, str]]:
        """Newest first, flattened for display."""
        response = self._dynamodb.query(
            TableName=self._table,
            KeyConditionExpression="pk = :pk",
            ExpressionAttributeValues={":pk": {"S": self.partition(stream)}},
            ScanIndexForward=False,
            Limit=limit,
        )
        return [{k: next(iter(v.values())) for k, v in item.items()} for item in response["Items"]]
