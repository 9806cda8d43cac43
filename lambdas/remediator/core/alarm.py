"""Our alarms: how they are named, and how an alarm state change becomes a trigger (or is ignored, and why).

An alarm is named `<prefix><stream>/<symptom>[/<qualifier>]`. Stream names cannot contain '/', so the
name maps back to exactly one stream and one registered symptom, whatever the stream is called and
whatever resource the alarm watches (a consumer function, a lease table): no lookup table to drift.

A fleet alarm (core.fleet) watches many streams and changes state per stream (a contributor): its contributor
state change becomes the same trigger, named `<fleet alarm>[<stream>]`, the stream taken from the contributor's
StreamName attribute.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict, Field

from remediator.core import fleet
from remediator.core.deployment import ALARM_NAME_MAX_LENGTH, ALARM_NAME_SEPARATOR, DEFAULT_ALARM_PREFIX
from remediator.core.policy import ACCOUNT_ID_PATTERN, FLEET, REGION_NAME_PATTERN, STREAM_NAME_PATTERN, StreamPolicy
from remediator.core.registry import REGISTRY

if TYPE_CHECKING:
    from remediator.core.symptoms.base import AlarmSpec

__all__ = [
    "DEFAULT_ALARM_PREFIX",
    "AlarmResolved",
    "AlarmTrigger",
    "Origin",
    "alarm_name",
    "deployed_alarms",
    "event_origin",
    "identify",
    "identify_contributor",
    "parse_trigger_name",
    "untrusted",
]

SEP = ALARM_NAME_SEPARATOR


QUALIFIER_DIGEST_LENGTH = 12


def _qualifier(text: str, room: int) -> str:
    """The qualifier as given, or a short digest of it when the whole name would be too long."""
    if SEP in text:
        raise ValueError(f"alarm qualifier '{text}' must not contain '{SEP}'")
    if len(text) <= room:
        return text
    if room < QUALIFIER_DIGEST_LENGTH:
        raise ValueError(
            f"no room for the alarm qualifier '{text}' within CloudWatch's {ALARM_NAME_MAX_LENGTH} characters"
        )
    return hashlib.sha256(text.encode()).hexdigest()[:QUALIFIER_DIGEST_LENGTH]


def alarm_name(prefix: str, stream: str, symptom: str, qualifier: str = "") -> str:
    if symptom not in REGISTRY.symptoms:
        raise ValueError(f"unknown symptom '{symptom}'")
    if SEP in prefix:
        raise ValueError(f"alarm prefix '{prefix}' must not contain '{SEP}'")
    name = f"{prefix}{stream}{SEP}{symptom}"
    if qualifier:
        name += SEP + _qualifier(qualifier, ALARM_NAME_MAX_LENGTH - len(name) - 1)
    if len(name) > ALARM_NAME_MAX_LENGTH:
        raise ValueError(f"alarm name '{name}' is longer than CloudWatch's {ALARM_NAME_MAX_LENGTH} characters")
    return name


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
    # The metric dimensions the alarm's state change carried (keys as sent). None when the trigger was not made
    # from an event (the CLI's `plan`): then `untrusted` has no dimensions to check.
    dimensions: tuple[tuple[str, str], ...] | None = None
    # 0: the alarm's own state change. n >= 1: the n-th follow-through of that same state change
    # (remediator.core.follow_through), its own unit of work: idempotency and audit keys include it.
    attempt: int = Field(0, ge=0)
    # From a member (issue 11.4): `account`/`region` are not the hub's own, so the stream is looked up, audited and
    # reached there (an assumed role), and its keys (idempotency, write-ahead, lease, audit) name them.
    member: bool = False

    @property
    def key(self) -> str:
        """One unit of work: the alarm state change, and which follow-through of it ("#0" for the change itself)."""
        return f"{self.alarm_name}@{self.state_timestamp}#{self.attempt}"


class AlarmResolved(BaseModel):
    """An alarm of ours that went from ALARM back to OK: the "resolved" e-mail, and pending follow-ups cancelled."""

    model_config = ConfigDict(frozen=True)

    alarm_name: str
    stream: str
    symptom: str
    state_timestamp: str  # when it went to OK
    alarm_timestamp: str | None  # when it had gone to ALARM (the event's previousState), if the event says
    account: str
    region: str
    member: bool = False  # as AlarmTrigger.member


STREAM_DIMENSION = "StreamName"
STREAM_NAME_MAX_LENGTH = 128  # Kinesis's limit, as in STREAM_NAME_PATTERN
SHOWN_CHARACTERS = 64


def _shown(text: str, limit: int) -> str:
    """Text for a reason or a log line: as given, or its start and length when it is longer than `limit`."""
    return text if len(text) <= limit else f"{text[:SHOWN_CHARACTERS]}... ({len(text)} characters)"


def parse_alarm_name(alarm: str, prefix: str) -> tuple[str, str] | str:
    """(stream, symptom), or why the name is not one of ours."""
    if not alarm.startswith(prefix):
        return f"alarm '{_shown(alarm, ALARM_NAME_MAX_LENGTH)}' does not start with '{prefix}'"
    if len(alarm) > ALARM_NAME_MAX_LENGTH:
        return (
            f"alarm '{_shown(alarm, ALARM_NAME_MAX_LENGTH)}' is {len(alarm)} characters, longer than CloudWatch's "
            f"{ALARM_NAME_MAX_LENGTH}"
        )
    parts = alarm[len(prefix) :].split(SEP)
    if len(parts) not in (2, 3) or not all(parts):
        return f"alarm '{alarm}' is not named <prefix><stream>{SEP}<symptom>[{SEP}<qualifier>]"
    stream, symptom = parts[0], parts[1]
    # Checked before the name is used as a key anywhere (the audit table's partition key, an SSM parameter name).
    if len(stream) > STREAM_NAME_MAX_LENGTH:
        return (
            f"alarm '{_shown(alarm, STREAM_NAME_MAX_LENGTH)}' names a stream of {len(stream)} characters; "
            f"Kinesis stream names have 1 to {STREAM_NAME_MAX_LENGTH}"
        )
    if not STREAM_NAME_PATTERN.fullmatch(stream):
        return f"alarm '{alarm}' names no valid stream ('{stream}'): Kinesis allows only [a-zA-Z0-9_.-]"
    if symptom not in REGISTRY.symptoms:
        return f"alarm '{alarm}' names no known symptom ('{symptom}')"
    return stream, symptom


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
    previous_timestamp: str | None = None,
) -> tuple[AlarmTrigger | AlarmResolved | None, str]:
    """Return the trigger (into ALARM), the resolution (ALARM -> OK), or None and why the change is not for us."""
    if not alarm.startswith(prefix):
        return None, f"alarm '{_shown(alarm, ALARM_NAME_MAX_LENGTH)}' does not start with '{prefix}'"
    if fleet.is_fleet_name(alarm, prefix):
        return None, (
            f"fleet alarm '{_shown(alarm, ALARM_NAME_MAX_LENGTH)}' changed state as a whole; the remediator acts on "
            "its contributors' (each stream's) state changes"
        )
    if state == "OK" and previous_state == "ALARM":
        resolved = _ours(alarm, prefix, dimensions)
        if isinstance(resolved, str):
            return None, resolved
        return (
            AlarmResolved(
                alarm_name=alarm,
                stream=resolved[0],
                symptom=resolved[1],
                state_timestamp=state_timestamp,
                alarm_timestamp=previous_timestamp,
                account=account,
                region=region,
            ),
            "",
        )
    if state != "ALARM":
        return None, f"alarm '{alarm}' went to {state}, not ALARM"
    if previous_state == "ALARM":
        return None, f"alarm '{alarm}' was already in ALARM"
    parsed = _ours(alarm, prefix, dimensions)
    if isinstance(parsed, str):
        return None, parsed
    stream, symptom = parsed
    return (
        AlarmTrigger(
            alarm_name=alarm,
            stream=stream,
            symptom=symptom,
            state_timestamp=state_timestamp,
            account=account,
            region=region,
            reason=reason,
            dimensions=tuple(sorted(dimensions.items())),
        ),
        "",
    )


@dataclass(frozen=True)
class Origin:
    """Where an alarm event comes from, as far as the hub trusts it (issue 11.4).

    `member`: from an account or region other than the hub's own (the stream is looked up and reached there).
    `problem`: why the event is not acted on at all ('' when it may go on to the policy check). `audited`: the
    problem is recorded in the audit log (under the account and region the event names, which are well formed);
    otherwise it is only logged, as an event that names nothing of ours."""

    member: bool
    problem: str = ""
    audited: bool = False


ALARM_ARN = "arn:<partition>:cloudwatch:<region>:<account>:alarm:<name>"


def _alarm_arn(arn: str) -> tuple[str, str, str] | None:
    """(account, region, alarm name) of a CloudWatch alarm ARN, or None when it is not one. Alarm names may hold
    ':', so the name is everything after the sixth."""
    parts = arn.split(":", 6)
    if len(parts) != 7 or parts[0] != "arn" or parts[2] != "cloudwatch" or parts[5] != "alarm":
        return None
    return parts[4], parts[3], parts[6]


def event_origin(
    *, account: str, region: str, alarm: str, resources: Sequence[str], hub_account: str, hub_region: str
) -> Origin:
    """Who sent an alarm event: the hub's own account and region, a member, or no one to act for (and why).

    EventBridge sets the envelope's `account` and `region` to where the event happened, also when a member's rule
    forwards it to the hub's bus, and `aws.cloudwatch` events cannot be put by anyone else. The alarm's ARN (the
    event's one resource) must say the same account, region and alarm name: an event whose envelope and ARN
    disagree is not trusted. Whether a policy names the stream in that account and region is checked after."""
    if not hub_account:
        return Origin(
            False, f"this function's account is unknown, so an event from account '{account}' cannot be trusted"
        )
    if not ACCOUNT_ID_PATTERN.fullmatch(account) or not REGION_NAME_PATTERN.fullmatch(region):
        return Origin(
            False, f"event from account '{account[:64]}', region '{region[:64]}': not an AWS account id and region"
        )
    member = (account, region) != (hub_account, hub_region)
    arns = list(resources)
    if not arns and not member:
        return Origin(False)  # the hub's own event, as before members existed
    parsed = _alarm_arn(arns[0]) if len(arns) == 1 else None
    if parsed is None:
        return Origin(member, f"the event names {len(arns)} resource(s), not one alarm ARN ({ALARM_ARN})", audited=True)
    arn_account, arn_region, arn_alarm = parsed
    for what, envelope, arn in (("account", account, arn_account), ("region", region, arn_region)):
        if envelope != arn:
            return Origin(
                member,
                f"the event comes from {what} '{envelope}' but its alarm's ARN names {what} '{arn[:64]}': an event "
                "whose envelope and alarm disagree is not acted on",
                audited=True,
            )
    if arn_alarm != alarm:
        return Origin(
            member,
            f"the event's alarm ARN names alarm '{_shown(arn_alarm, 80)}', not '{_shown(alarm, 80)}'",
            audited=True,
        )
    return Origin(member)


def deployed_alarms(policy: StreamPolicy, prefix: str) -> dict[str, tuple[str, AlarmSpec]]:
    """Alarm name -> (symptom id, spec), for every alarm the stack builds for this stream's policy.

    The one derivation the stack (stacks/constructs/alarms.py) and the remediator's trust check share: an alarm
    name not in it was not made by this deployment (a disabled detector, or an alarm made elsewhere that
    bears our prefix, such as a composite or expression-only alarm).
    """
    alarms: dict[str, tuple[str, AlarmSpec]] = {}
    for key, symptom in REGISTRY.symptoms.items():
        detector = symptom.detector(policy)
        if not detector.enabled:
            continue
        for spec in symptom.alarms(policy, detector):
            if fleet.covered(policy, key, spec):
                continue  # a fleet alarm carries it (core.fleet): the stream has no alarm of its own for it
            alarms[alarm_name(prefix, policy.name, key, spec.qualifier)] = (key, spec)
    return alarms


def _untrusted_unit(trigger: AlarmTrigger, unit: fleet.FleetUnit, policy: StreamPolicy, prefix: str) -> str:
    """Why a fleet alarm's contributor trigger is not to be acted on for this policy, or ''."""
    if unit.stream != policy.name or trigger.stream != policy.name:
        return f"'{trigger.alarm_name}' names stream '{unit.stream}', not '{policy.name}'"
    if policy.alarms != FLEET:
        return (
            f"fleet alarm '{unit.fleet.alarm}' reported stream '{policy.name}', whose deployed policy keeps "
            "per-stream alarms (alarms: per-stream): this deployment made no fleet alarm for it"
        )
    thresholds = [t for (symptom, _), t in fleet.fleet_thresholds(policy).items() if symptom == trigger.symptom]
    made = {fleet.fleet_alarm_name(prefix, t, unit.fleet.index) for t in thresholds}
    if unit.fleet.alarm not in made:
        return (
            f"fleet alarm '{unit.fleet.alarm}' is not one this deployment made for stream '{policy.name}': its "
            f"deployed policy's {trigger.symptom} thresholds make another group (or the alarm was made elsewhere "
            "with our prefix)"
        )
    arrived = {value for key, value in trigger.dimensions or () if key.lower() == STREAM_DIMENSION.lower()}
    if trigger.dimensions is not None and arrived != {policy.name}:
        return f"'{trigger.alarm_name}' arrived with {STREAM_DIMENSION} {sorted(arrived)}, not ['{policy.name}']"
    return ""


def untrusted(trigger: AlarmTrigger, policy: StreamPolicy, prefix: str) -> str:
    """Why a trigger for a stream with this (deployed) policy is not to be acted on, or ''.

    Acts only on alarms this deployment created: the alarm's name must be exactly one that the policy and the
    prefix make, and an alarm whose metric has a StreamName dimension must arrive with it.
    """
    unit = fleet.parse_unit_name(trigger.alarm_name, prefix)
    if isinstance(unit, fleet.FleetUnit):
        return _untrusted_unit(trigger, unit, policy, prefix)
    deployed = deployed_alarms(policy, prefix)
    found = deployed.get(trigger.alarm_name)
    if found is None:
        return (
            f"alarm '{trigger.alarm_name}' is not one this deployment created: stream '{policy.name}''s deployed "
            f"policy makes {len(deployed)} alarm(s), and not this one (its detector disabled, or an alarm made "
            "elsewhere that bears our prefix)"
        )
    _, spec = found
    wanted = {m.dimension_map[STREAM_DIMENSION] for m in spec.metrics if STREAM_DIMENSION in m.dimension_map}
    if not wanted or trigger.dimensions is None:
        return ""
    arrived = {value for key, value in trigger.dimensions if key.lower() == STREAM_DIMENSION.lower()}
    if not arrived:
        return (
            f"alarm '{trigger.alarm_name}' arrived without the {STREAM_DIMENSION} dimension its metric has "
            "(a composite or expression-only alarm with our name?)"
        )
    if arrived != wanted:
        return (
            f"alarm '{trigger.alarm_name}' arrived with {STREAM_DIMENSION} {sorted(arrived)}, but its metric "
            f"watches {sorted(wanted)}"
        )
    return ""


def _ours(alarm: str, prefix: str, dimensions: Mapping[str, str]) -> tuple[str, str] | str:
    """(stream, symptom) of one of our alarms, or why it is not one."""
    parsed = parse_alarm_name(alarm, prefix)
    if isinstance(parsed, str):
        return parsed
    stream, _ = parsed
    # Dimension keys are matched case-insensitively: SNS-shaped payloads lower-case them. Alarms on
    # another resource (a function, a table) have no StreamName dimension; the name alone decides.
    dimension = {k.lower(): v for k, v in dimensions.items()}.get("streamname")
    if dimension is not None and dimension != stream:
        return f"alarm '{alarm}' watches stream '{dimension}', but its name says '{stream}'"
    return parsed


def parse_trigger_name(name: str, prefix: str) -> tuple[str, str] | str:
    """(stream, symptom) of a trigger's alarm name, a stream's own alarm or a fleet alarm's unit
    (`<fleet alarm>[<stream>]`), or why it is neither (a follow-up checks its event with it)."""
    unit = fleet.parse_unit_name(name, prefix)
    if isinstance(unit, fleet.FleetUnit):
        return unit.stream, unit.fleet.symptom
    return parse_alarm_name(name, prefix)


def identify_contributor(
    *,
    alarm: str,
    prefix: str,
    contributor_id: str,
    attributes: Mapping[str, str],
    state: str,
    previous_state: str | None,
    state_timestamp: str,
    account: str,
    region: str,
    reason: str = "",
    expressions: tuple[str, ...] = (),
) -> tuple[AlarmTrigger | AlarmResolved | None, str]:
    """A fleet alarm's contributor state change: the trigger (into ALARM) or the resolution (back to OK) of the
    stream named by its StreamName attribute, or None and why it is not for us.

    The event carries no previousState (AWS's sample; a contributor is only ever ALARM or OK, CloudWatch's guide),
    so a contributor going to OK had been in ALARM; when a previousState does come, it is checked as for an alarm.
    `expressions` are the alarm's queries as the event carries them: the stream must be one they select.
    """
    shown = _shown(alarm, ALARM_NAME_MAX_LENGTH)
    parsed = fleet.parse_fleet_name(alarm, prefix)
    if isinstance(parsed, str):
        return None, f"contributor state change of '{shown}': {parsed}"
    found = {k.lower(): v for k, v in attributes.items()}.get(STREAM_DIMENSION.lower())
    if found is None:
        return None, f"contributor '{contributor_id}' of fleet alarm '{alarm}' has no {STREAM_DIMENSION} attribute"
    if len(found) > STREAM_NAME_MAX_LENGTH or not STREAM_NAME_PATTERN.fullmatch(found):
        return None, f"contributor '{contributor_id}' of '{alarm}' names no valid stream ('{_shown(found, 128)}')"
    selected = frozenset().union(*(fleet.query_streams(e) for e in expressions)) if expressions else None
    if selected is not None and found not in selected:
        return None, f"fleet alarm '{alarm}' reported stream '{found}', which its query does not select"
    unit = fleet.unit_name(alarm, found)
    if state == "OK" and previous_state in (None, "ALARM"):
        return (
            AlarmResolved(
                alarm_name=unit,
                stream=found,
                symptom=parsed.symptom,
                state_timestamp=state_timestamp,
                alarm_timestamp=None,
                account=account,
                region=region,
            ),
            "",
        )
    if state != "ALARM":
        return None, f"contributor '{found}' of '{alarm}' went to {state}, not ALARM"
    if previous_state == "ALARM":
        return None, f"contributor '{found}' of '{alarm}' was already in ALARM"
    return (
        AlarmTrigger(
            alarm_name=unit,
            stream=found,
            symptom=parsed.symptom,
            state_timestamp=state_timestamp,
            account=account,
            region=region,
            reason=(f"{reason} " if reason else "") + f"(fleet alarm contributor {contributor_id})",
            dimensions=((STREAM_DIMENSION, found),),
        ),
        "",
    )
