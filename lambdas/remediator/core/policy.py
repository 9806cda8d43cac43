"""The policy model's fixed parts, shared by the CDK app (alarms, IAM) and the remediator (decisions).

The `detectors` and `actions` blocks are not spelled here: the registry (remediator.core.registry)
builds them from the registered symptoms and actions, so a plugin's block exists exactly when the
plugin does. Strict on purpose: unknown keys are rejected, ranges are checked, and nothing means
"all streams".
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Annotated, Any, Final, Literal, TypeVar

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    StringConstraints,
    Tag,
    field_validator,
    model_validator,
)


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Mode(StrEnum):
    DRY_RUN = "dry-run"
    ENFORCE = "enforce"


STREAM_NAME_PATTERN = re.compile(r"^[a-zA-Z0-9_.-]{1,128}$")


def _stream_name(value: str) -> str:
    # A wildcard or an empty name must never widen the remediator's reach to "all streams".
    if not STREAM_NAME_PATTERN.fullmatch(value):
        raise ValueError(
            f"'{value}' is not a Kinesis stream name: use 1-128 letters, digits, '_', '.' or '-' "
            "(one stream per entry; wildcards are not allowed)"
        )
    return value


StreamName = Annotated[str, AfterValidator(_stream_name)]


def text_like(pattern: str, what: str) -> AfterValidator:
    """Check text against `pattern`; the error says in words what it must be (not the pattern):
    `Annotated[str, text_like(r"^...$", "a table name: ...")]`."""
    compiled = re.compile(pattern)

    def check(value: str) -> str:
        if not compiled.search(value):
            raise ValueError(f"must be {what}, got '{value}'")
        return value

    return AfterValidator(check)


# Where a stream lives, when not in the hub's own account and region (issue 11.4: one hub, many members).
ACCOUNT_ID_PATTERN = re.compile(r"^[0-9]{12}$")
# aws regions (us-east-1, eu-central-2, ap-southeast-4), GovCloud (us-gov-west-1), China (cn-north-1), ISO.
REGION_NAME_PATTERN = re.compile(r"^[a-z]{2}(-[a-z]+)+-[0-9]{1,2}$")
AccountId = Annotated[
    str, text_like(ACCOUNT_ID_PATTERN.pattern, "an AWS account id: 12 digits (in quotes in YAML, like '123456789012')")
]
RegionName = Annotated[str, text_like(REGION_NAME_PATTERN.pattern, "an AWS region name like 'eu-west-1'")]
# Stands for the hub's own account or region in a stream key, where the policy leaves it out.
HUB_SCOPE = "-"


def stream_key(name: str, account: str | None = None, region: str | None = None) -> str:
    """A policy's key, as written: the stream's name for a hub-local stream (account and region left out, so
    its SSM parameter keeps its name), else `<account>/<region>/<name>` with '-' for a part left out (the hub's).
    Stream names, account ids and region names contain no '/', so a key names exactly one policy."""
    if account is None and region is None:
        return name
    return f"{account or HUB_SCOPE}/{region or HUB_SCOPE}/{name}"


def lookup_scopes(account: str, region: str, hub_account: str, hub_region: str) -> list[tuple[str | None, str | None]]:
    """How a policy may write `account`/`region` (both known, as an event names them), the shortest first: the
    hub's own account or region may be left out (as usual) or written out; another's must be written out. A
    policy written for another account never matches."""
    accounts: list[str | None] = [None, account] if account == hub_account else [account]
    regions: list[str | None] = [None, region] if region == hub_region else [region]
    return [(a, r) for a in accounts for r in regions]


def lookup_keys(name: str, account: str, region: str, hub_account: str, hub_region: str) -> list[str]:
    """The keys (stream_key) a policy for stream `name` in `account`/`region` may be written under, in the order
    of lookup_scopes. For a stream in the hub's own account and region the first is its name."""
    return [stream_key(name, a, r) for a, r in lookup_scopes(account, region, hub_account, hub_region)]


FunctionName = Annotated[
    str, text_like(r"^[a-zA-Z0-9-_]{1,64}$", "a Lambda function's name: 1-64 letters, digits, '-' or '_'")
]
# RegisterStreamConsumer's ConsumerName; a KCL application name is also its lease table's name.
ConsumerName = Annotated[str, text_like(r"^[a-zA-Z0-9_.-]{1,128}$", "a name of 1-128 letters, digits, '_', '.' or '-'")]
TableName = Annotated[
    str, text_like(r"^[a-zA-Z0-9_.-]{3,255}$", "a DynamoDB table name: 3-255 letters, digits, '_', '.' or '-'")
]
MetricNamespace = Annotated[
    str,
    text_like(
        r"^[^:\s][^:]{0,254}$", "a CloudWatch namespace: 1-255 characters without ':', not starting with a space"
    ),
]
EMAIL_PATTERN = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def _email(value: str) -> str:
    # Said in words, not as the pattern: the reader is whoever edits the policy.
    if not EMAIL_PATTERN.fullmatch(value):
        raise ValueError(f"must be an e-mail address like name@example.com, got '{value}'")
    return value


EmailAddress = Annotated[str, StringConstraints(max_length=254), AfterValidator(_email)]


class Notify(Strict):
    emails: tuple[EmailAddress, ...] = Field(
        (), description="Who receives the dry-run plans and the reports of applied actions."
    )
    advice_interval_minutes: int = Field(
        60,
        ge=0,
        le=1440,
        description="At most one advice e-mail (a plan with no action) per stream and symptom within this time; "
        "a flapping alarm floods no one. 0 sends every one.",
    )


class LambdaConsumer(Strict):
    """A Lambda function reading the stream through an event-source mapping (found by the remediator)."""

    function: FunctionName = Field(..., description="Name of a Lambda function that reads the stream.")

    @property
    def name(self) -> str:
        return self.function

    move_to_efo: bool = Field(
        False,
        description="Opt-in: when the remediator registers an enhanced fan-out consumer for this function, move "
        "its mapping onto it (a new mapping starting where the old one stands, then the old one disabled).",
    )


class EfoConsumer(Strict):
    """An enhanced fan-out consumer registered on the stream."""

    efo: ConsumerName = Field(..., description="Name of an enhanced fan-out consumer of the stream.")

    @property
    def name(self) -> str:
        return self.efo


class KclApplication(Strict):
    """A KCL application reading the stream; its lease table and CloudWatch namespace default to its name."""

    kcl: ConsumerName = Field(..., description="Name of a KCL application that reads the stream.")
    lease_table: TableName | None = Field(None, description="Its DynamoDB lease table (default: the application name).")
    namespace: MetricNamespace | None = Field(
        None, description="Its CloudWatch metrics namespace (default: the application name)."
    )

    @model_validator(mode="after")
    def _lease_table_is_a_table_name(self) -> KclApplication:
        if self.lease_table is None and len(self.kcl) < 3:
            raise ValueError(
                f"'{self.kcl}' is also the lease table's name, and DynamoDB table names have 3 to 255 characters: "
                "give `lease_table`"
            )
        return self

    @property
    def name(self) -> str:
        return self.kcl

    @property
    def lease_table_name(self) -> str:
        return self.lease_table or self.kcl

    @property
    def metrics_namespace(self) -> str:
        return self.namespace or self.kcl


CONSUMER_KINDS = ("function", "efo", "kcl")


def _consumer_kind(value: Any) -> str | None:
    keys = value.keys() if isinstance(value, dict) else type(value).model_fields
    kinds = [kind for kind in CONSUMER_KINDS if kind in keys]
    return kinds[0] if len(kinds) == 1 else None


Consumer = Annotated[
    Annotated[LambdaConsumer, Tag("function")]
    | Annotated[EfoConsumer, Tag("efo")]
    | Annotated[KclApplication, Tag("kcl")],
    Discriminator(
        _consumer_kind,
        custom_error_type="consumer_kind",
        custom_error_message="a consumer names exactly one kind: `function` (a Lambda function), `efo` (an enhanced "
        "fan-out consumer) or `kcl` (a KCL application)",
    ),
]


class Capacity(Strict):
    """How the stream's write capacity is judged. Symptoms read this; no action owns it."""

    target_utilisation: float = Field(
        0.6, gt=0.05, le=0.9, description="Write utilisation a reshard up aims for at the observed peak."
    )
    saturated_at: float = Field(
        0.8, gt=0.1, le=1.0, description="Peak write utilisation from which the shards count as saturated."
    )

    @model_validator(mode="after")
    def _target_below_saturation(self) -> Capacity:
        if self.target_utilisation >= self.saturated_at:
            raise ValueError(
                f"target_utilisation ({self.target_utilisation}) must be below saturated_at "
                f"({self.saturated_at}), or a reshard would leave the stream saturated"
            )
        return self


class DetectorPolicy(Strict):
    """Fields every symptom's detector block has. A symptom's own block adds its thresholds."""

    enabled: bool = Field(True, description="Create this symptom's alarms for the stream.")
    evaluation_periods: int = Field(5, ge=1, le=60, description="Minutes the alarm looks back over.")
    datapoints_to_alarm: int = Field(3, ge=1, le=60, description="Breaching minutes needed to alarm.")

    @model_validator(mode="after")
    def _datapoints_fit(self) -> DetectorPolicy:
        if self.datapoints_to_alarm > self.evaluation_periods:
            raise ValueError(
                f"datapoints_to_alarm ({self.datapoints_to_alarm}) exceeds evaluation_periods "
                f"({self.evaluation_periods})"
            )
        return self


class ActionPolicy(Strict):
    """Fields every action's policy block has: whether it may run, how often, and how soon again."""

    enabled: bool = Field(True, description="Let the remediator propose this action at all.")
    cooldown_minutes: int = Field(
        30, ge=1, le=1440, description="Minimum time between two applied actions of this kind on the stream."
    )
    daily_budget: int = Field(4, ge=0, le=100, description="Applied actions of this kind per stream per rolling 24 h.")


BlockT = TypeVar("BlockT", bound=BaseModel)


def field_name(plugin_id: str) -> str:
    """The policy key of a plugin: its id with '_' for '-' (`iterator-age` -> `iterator_age`)."""
    return plugin_id.replace("-", "_")


# How a stream's alarms are built (core.fleet): one per stream and symptom, or shared Metrics Insights alarms.
AlarmStyle = Literal["per-stream", "fleet"]
PER_STREAM: Final = "per-stream"
FLEET: Final = "fleet"


class StreamPolicy(Strict):
    """One stream's policy. The registry subclasses it with the `detectors` and `actions` blocks."""

    name: StreamName = Field(
        ..., description="The stream, by name: 1-128 of a-z A-Z 0-9 _ . - (no wildcards, one stream per entry)."
    )
    account: AccountId | None = Field(
        None,
        description="The AWS account the stream is in, when not the hub's (12 digits, quoted): the remediator acts "
        "there through the member stack's role. Left out: the hub's own account.",
    )
    region: RegionName | None = Field(
        None, description="The AWS region the stream is in, when not the hub's. Left out: the hub's region."
    )
    mode: Mode = Field(Mode.DRY_RUN, description="dry-run (the default) emails the plan; enforce acts.")
    notify: Notify = Notify()
    consumers: tuple[Consumer, ...] = Field(
        (), description="Who reads the stream, one entry each: `function: NAME`, `efo: NAME` or `kcl: NAME`."
    )
    capacity: Capacity = Capacity()
    alarms: AlarmStyle = Field(
        "per-stream",
        description="per-stream (the default): one CloudWatch alarm per symptom for this stream. fleet: the "
        "stream's Kinesis metric alarms are shared Metrics Insights alarms, one per group of streams with the same "
        "thresholds, alarming per stream (README: Fleet alarms); alarms no query can express stay per-stream "
        "(`validate` lists them).",
    )
    detectors: Strict = Strict()
    actions: Strict = Strict()

    @property
    def key(self) -> str:
        """The policy's key (core.policy.stream_key): its name for a hub-local stream."""
        return stream_key(self.name, self.account, self.region)

    def where(self) -> str:
        """The stream as people read it: `'orders'`, or `'orders' in account 123456789012, region eu-west-1`."""
        if self.account is None and self.region is None:
            return f"'{self.name}'"
        account, region = self.account or "(the hub's)", self.region or "(the hub's)"
        return f"'{self.name}' in account {account}, region {region}"

    @property
    def lambda_consumers(self) -> tuple[LambdaConsumer, ...]:
        return tuple(c for c in self.consumers if isinstance(c, LambdaConsumer))

    @property
    def efo_consumers(self) -> tuple[EfoConsumer, ...]:
        return tuple(c for c in self.consumers if isinstance(c, EfoConsumer))

    @property
    def kcl_applications(self) -> tuple[KclApplication, ...]:
        return tuple(c for c in self.consumers if isinstance(c, KclApplication))

    @property
    def polling_consumers(self) -> int:
        """Consumers that share each shard's 5 GetRecords calls and 2 MB/s (Lambda mappings and KCL)."""
        return len(self.lambda_consumers) + len(self.kcl_applications)

    def block(self, section: Literal["detectors", "actions"], plugin_id: str, schema: type[BlockT]) -> BlockT:
        """A plugin's block of this policy, typed as the plugin's schema."""
        value = getattr(getattr(self, section), field_name(plugin_id), None)
        if not isinstance(value, schema):
            raise LookupError(f"stream '{self.name}': the policy has no {section}.{field_name(plugin_id)} block")
        return value


class PolicyDocumentBase(Strict):
    """A policy file. The registry subclasses it with `streams` typed as its StreamPolicy model."""

    version: Literal[1]
    streams: tuple[StreamPolicy, ...] = Field(..., min_length=1)

    @field_validator("version", mode="before")
    @classmethod
    def _version_is_a_number(cls, value: Any) -> Any:
        # YAML reads `version: yes` as true, and true == 1 in Python: say so rather than accept it.
        if isinstance(value, bool):
            raise ValueError(f"must be 1 (a number), got {str(value).lower()}")
        return value

    @model_validator(mode="after")
    def _stream_names_unique(self) -> PolicyDocumentBase:
        # A stream is (account, region, name): the same name may be listed once per account and region.
        seen: set[str] = set()
        for stream in self.streams:
            if stream.key in seen:
                raise ValueError(f"stream {stream.where()} is listed twice")
            seen.add(stream.key)
        return self


# Keys that moved, so that `validate` can say where they live now instead of "not permitted".
MOVED_KEYS: dict[tuple[str, ...], str] = {
    ("actions", "reshard", "target_utilisation"): "capacity.target_utilisation",
    ("actions", "reshard", "saturated_at"): "capacity.saturated_at",
}


# Keys that were removed, so that `validate` can say why instead of "not permitted".
REMOVED_KEYS: dict[tuple[str, ...], str] = {
    ("detectors", "under_utilised", "shards"): "this setting was removed: the under-utilised alarm now divides by "
    "the stream's open shards, which the remediator's shard census publishes every few minutes (OpenShards); "
    "delete the key",
}


def moved_key_hint(location: tuple[Any, ...]) -> str | None:
    """Where a key that is no longer accepted at `location` (relative to a stream) lives now, or why it went."""
    key = tuple(str(part) for part in location)
    if key in REMOVED_KEYS:
        return REMOVED_KEYS[key]
    new = MOVED_KEYS.get(key)
    if new is None:
        return None
    return (
        f"this setting has moved: write it as `{new}` in the stream's policy (it describes the stream, not an action)"
    )
