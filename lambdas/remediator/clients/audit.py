"""The audit table: one item per decision, keyed by stream and time. It also feeds cooldowns and budgets.

Besides the rows (pk `STREAM#<stream>`, sk `<time>#<random>`), the table holds two kinds of bookkeeping item,
in partitions no row query reads:
- claims (pk `INTENT#<trigger identity>`, sk the step's slot): written with a condition, once per trigger and
  step, before the step's in-flight row; each names its row and carries the row's first version, so a retry
  can finish a row its predecessor never managed to write;
- leases (pk `LEASE#<stream>`, sk `LEASE`): which trigger is acting on a stream, until when.

A member's stream (issue 11.4: another account or region than the hub's) is keyed `<account>/<region>/<stream>`
in place of `<stream>` (rows, leases), by the log `scoped(account, region)` returns; its rows also hold `account`
and `region`. Stream names hold no '/', so a hub-local key never meets a member's. Its claims are keyed by its
trigger's identity, which names the account and region (core.intent.trigger_identity).
"""

from __future__ import annotations

import contextlib
import json
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from remediator.core.history import PastAction
from remediator.core.intent import Intent, Lease
from remediator.core.outcome import COUNTED_AS_APPLIED, AuditEntry, OutcomeStatus, StepOutcome
from remediator.core.plan import PlannedStep
from remediator.core.policy import Mode

AUDIT_RETENTION_DAYS = 90
# A claim matters only while deliveries of its trigger can still arrive (Lambda's and EventBridge's maximum
# event ages are hours); kept a week for people reading the table.
CLAIM_RETENTION_DAYS = 7
LEASE_SK = "LEASE"


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
    # A member's stream (issue 11.4): its account and region; '' for the hub's own.
    account: str = ""
    region: str = ""

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
            account=text("account"),
            region=text("region"),
        )


class DynamoAuditLog:
    def __init__(self, dynamodb: Any, table_name: str, scope: tuple[str, str] | None = None) -> None:
        self._dynamodb = dynamodb
        self._table = table_name
        self._scope = scope

    def scoped(self, account: str, region: str) -> DynamoAuditLog:
        """The same table, for the streams of a member account and region: every key names them."""
        return DynamoAuditLog(self._dynamodb, self._table, (account, region))

    def key(self, stream: str) -> str:
        """The stream's key in the table: its name (the hub's own), or `<account>/<region>/<name>`."""
        return stream if self._scope is None else f"{self._scope[0]}/{self._scope[1]}/{stream}"

    def partition(self, stream: str) -> str:
        return f"STREAM#{self.key(stream)}"

    @staticmethod
    def row_key(at: datetime) -> str:
        return f"{at.isoformat()}#{uuid.uuid4().hex[:8]}"

    def record(self, entry: AuditEntry) -> None:
        self._dynamodb.put_item(TableName=self._table, Item=self._item(entry, self.row_key(entry.at)))

    def _item(self, entry: AuditEntry, sk: str) -> dict[str, dict[str, Any]]:
        at = entry.at
        item: dict[str, dict[str, Any]] = {
            "pk": {"S": self.partition(entry.stream)},
            "sk": {"S": sk},
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
        account, region = self._scope or (entry.account, entry.region)
        if account and region:
            item["account"], item["region"] = {"S": account}, {"S": region}
        for key in ("parameters", "plan"):
            value = getattr(entry, key)
            if value is not None:
                item[key] = {"S": json.dumps(value, default=str, sort_keys=True)}
        return item

    def applied_actions(self, stream: str, since: datetime) -> list[PastAction]:
        paginator = self._dynamodb.get_paginator("query")
        actions = []
        for page in paginator.paginate(
            TableName=self._table,
            KeyConditionExpression="pk = :pk AND sk >= :since",
            FilterExpression="outcome IN (" + ", ".join(f":o{i}" for i in range(len(COUNTED_AS_APPLIED))) + ")",
            ExpressionAttributeValues={
                ":pk": {"S": self.partition(stream)},
                ":since": {"S": since.isoformat()},
                **{f":o{i}": {"S": status.value} for i, status in enumerate(COUNTED_AS_APPLIED)},
            },
            ConsistentRead=True,
        ):
            for item in page["Items"]:
                if "action" not in item:
                    continue
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
                        account=text.get("account"),
                        region=text.get("region"),
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

    # --- write-ahead -------------------------------------------------------------------------------------

    @staticmethod
    def _claim_key(trigger: str, slot: str) -> dict[str, dict[str, str]]:
        return {"pk": {"S": f"INTENT#{trigger}"}, "sk": {"S": slot}}

    def begin(self, intent: Intent) -> Intent:
        entry = intent.entry
        if entry is None:
            raise ValueError("an intent begins with its in-flight audit row")
        sk = self.row_key(entry.at)
        claim = {
            **self._claim_key(intent.trigger, intent.slot),
            "stream": {"S": entry.stream},
            "row_sk": {"S": sk},
            # Computed fields (allowed, costs), at any depth, are outputs: PlannedStep refuses them as inputs.
            "step": {"S": intent.step.model_dump_json(exclude_computed_fields=True)},
            "entry": {"S": entry.model_dump_json()},
            "expires_at": {"N": str(int((entry.at + timedelta(days=CLAIM_RETENTION_DAYS)).timestamp()))},
        }
        try:
            self._dynamodb.put_item(TableName=self._table, Item=claim, ConditionExpression="attribute_not_exists(pk)")
        except self._dynamodb.exceptions.ConditionalCheckFailedException:
            found = self._dynamodb.get_item(
                TableName=self._table, Key=self._claim_key(intent.trigger, intent.slot), ConsistentRead=True
            ).get("Item")
            if found is None:  # cannot happen: claims are never deleted before their TTL
                raise
            return self._intent_of(intent.trigger, found)
        self._dynamodb.put_item(TableName=self._table, Item=self._item(entry, sk))
        return intent.model_copy(update={"row": {"sk": sk, "written": True}, "claimed": True})

    def finish(self, intent: Intent, result: StepOutcome) -> None:
        if intent.entry is None:
            raise ValueError("an intent is finished from its in-flight audit row")
        final = intent.entry.model_copy(
            update={"outcome": OutcomeStatus(result.outcome.value), "reason": result.detail}
        )
        # A whole-item put, not an update: it also writes a row that a dead delivery claimed but never wrote.
        self._dynamodb.put_item(TableName=self._table, Item=self._item(final, str(intent.row["sk"])))

    def intents(self, trigger: str) -> list[Intent]:
        claims = self._dynamodb.query(
            TableName=self._table,
            KeyConditionExpression="pk = :pk",
            ExpressionAttributeValues={":pk": {"S": f"INTENT#{trigger}"}},
            ConsistentRead=True,
        )["Items"]
        return [self._intent_of(trigger, claim) for claim in claims]

    def _intent_of(self, trigger: str, claim: dict[str, Any]) -> Intent:
        """The claim with its row as it is now (the row's own version when written, else the claim's copy of
        its first version: in-flight)."""
        sk = claim["row_sk"]["S"]
        row = self._dynamodb.get_item(
            TableName=self._table,
            Key={"pk": {"S": self.partition(claim["stream"]["S"])}, "sk": {"S": sk}},
            ConsistentRead=True,
        ).get("Item")
        first = AuditEntry.model_validate_json(claim["entry"]["S"])
        entry = first if row is None else self._entry_of(row, first)
        return Intent(
            trigger=trigger,
            slot=claim["sk"]["S"],
            step=PlannedStep.model_validate_json(claim["step"]["S"]),
            entry=entry,
            row={"sk": sk, "written": row is not None},
        )

    @staticmethod
    def _entry_of(row: dict[str, Any], first: AuditEntry) -> AuditEntry:
        return first.model_copy(update={"outcome": OutcomeStatus(row["outcome"]["S"]), "reason": row["reason"]["S"]})

    # --- the per-stream lease ---------------------------------------------------------------------------

    def _lease_key(self, stream: str) -> dict[str, dict[str, str]]:
        return {"pk": {"S": f"LEASE#{self.key(stream)}"}, "sk": {"S": LEASE_SK}}

    def _lease_item(self, lease: Lease) -> dict[str, dict[str, str]]:
        return {
            **self._lease_key(lease.stream),
            "holder": {"S": lease.holder},
            "alarm_name": {"S": lease.alarm_name},
            "symptom": {"S": lease.symptom},
            "until": {"N": str(lease.until.timestamp())},
            "until_text": {"S": lease.until.isoformat()},
            # DynamoDB's TTL deletes late (within days): the condition reads `until`, never relies on TTL.
            "expires_at": {
                "N": str(int((max(lease.until, datetime.now(lease.until.tzinfo)) + timedelta(days=1)).timestamp()))
            },
        }

    def acquire_lease(self, lease: Lease, now: datetime) -> Lease | None:
        item = self._lease_item(lease)
        for _ in range(2):  # a lease released between our write and our read: try once more
            try:
                self._dynamodb.put_item(
                    TableName=self._table,
                    Item=item,
                    ConditionExpression="attribute_not_exists(pk) OR #until < :now OR holder = :holder",
                    ExpressionAttributeNames={"#until": "until"},
                    ExpressionAttributeValues={
                        ":now": {"N": str(now.timestamp())},
                        ":holder": {"S": lease.holder},
                    },
                )
                return None
            except self._dynamodb.exceptions.ConditionalCheckFailedException:
                held = self._dynamodb.get_item(
                    TableName=self._table, Key=self._lease_key(lease.stream), ConsistentRead=True
                ).get("Item")
            if held is not None:
                return Lease(
                    stream=lease.stream,
                    holder=held["holder"]["S"],
                    alarm_name=held["alarm_name"]["S"],
                    symptom=held["symptom"]["S"],
                    until=datetime.fromisoformat(held["until_text"]["S"]),
                )
        raise RuntimeError(f"the lease of stream '{lease.stream}' changed hands twice while being taken")

    def release_lease(self, lease: Lease) -> None:
        """Overwritten as expired (no DeleteItem: the role cannot erase anything in the audit table)."""
        released = lease.model_copy(update={"until": datetime.fromtimestamp(0, tz=lease.until.tzinfo)})
        # ConditionalCheckFailed: it expired and another trigger took it since; it is theirs now.
        with contextlib.suppress(self._dynamodb.exceptions.ConditionalCheckFailedException):
            self._dynamodb.put_item(
                TableName=self._table,
                Item=self._lease_item(released),
                ConditionExpression="holder = :holder",
                ExpressionAttributeValues={":holder": {"S": lease.holder}},
            )
