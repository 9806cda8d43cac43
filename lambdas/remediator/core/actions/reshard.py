"""reshard: UpdateShardCount with UNIFORM_SCALING, up or down, within AWS's per-call and per-day limits and the
account's shard quota.

AWS counts every scaling of a stream towards its 10 per rolling 24 h, whoever made it; the remediator's audit
knows only its own. `gather` therefore reads CloudTrail's event history (LookupEvents, UpdateShardCount, last
24 h: no set-up needed, it is on in every account) and the account's shard quota (DescribeLimits), and the
checks use the larger of the two counts. A read that fails is a fact: the check says what it could not read
and falls back (see `_daily_scalings`, `_shard_quota`).
"""

from __future__ import annotations

import json
import shlex
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any, ClassVar

from pydantic import Field, model_validator

from remediator.core import limits
from remediator.core.actions.base import Action, ValidationContext
from remediator.core.consumers import read_failure
from remediator.core.cost import Usage
from remediator.core.evidence import StreamMode, StreamState
from remediator.core.grants import ACCOUNT, STREAM, IamGrant
from remediator.core.plan import OPEN_SHARDS_SETTING, Change, GuardrailVerdict, PlannedStep, Proposal
from remediator.core.policy import ActionPolicy, StreamPolicy
from remediator.core.ports import ReadPorts, WritePorts
from remediator.core.registry import REGISTRY
from remediator.core.reshard import (
    min_scale_down,
    peak_share,
    scale_down_target,
    scale_up_target,
    shard_hours_per_month,
)
from remediator.core.symptoms.calm import CALM_EVIDENCE_MINUTES, disturbances

# Facts under Evidence.facts["reshard"].
CLOUDTRAIL = "cloudtrail"  # {"events": [{"at": ISO time, "target": n | None, "by": who}], "pages": n, "complete": bool}
LIMITS = "limits"  # {"shard_limit": n, "open_shards": n}
# LookupEvents answers at most 50 events a page, at 2 requests per second per account and Region: 10 pages are
# 500 UpdateShardCount calls of the account in 24 h, read in about 5 s. Beyond that the count is a lower bound
# (the newest events come first), and the check says so.
MAX_CLOUDTRAIL_PAGES = 10
# CloudTrail's event history shows an event some minutes after the call (AWS: typically within 15 minutes;
# UNCONFIRMED, not in aws-facts.md). The remediator's own audit covers its own calls at once; another tool's
# call in the last minutes may be missed, and the check says so.
CLOUDTRAIL_DELAY_MINUTES = 15


class ReshardPolicy(ActionPolicy):
    min_shards: int = Field(1, ge=1, le=limits.MAX_SHARDS_PER_STREAM, description="Never go below this.")
    max_shards: int = Field(
        ..., ge=1, le=limits.MAX_SHARDS_PER_STREAM, description="Never go above this (required: no default)."
    )
    daily_budget: int = Field(
        4,
        ge=0,
        le=limits.MAX_POLICY_DAILY_BUDGET,
        description=f"Reshards per rolling 24 h; AWS allows {limits.MAX_SCALINGS_PER_24H}, "
        f"and {limits.RESHARD_RESERVE} stay in reserve for people.",
    )
    scale_in: bool = Field(
        False,
        description="Opt-in: let the remediator remove shards when the under-utilised symptom asks for it. "
        "false (the default): the scale-in is planned and e-mailed, and blocked.",
    )
    stabilisation_minutes: int = Field(
        60,
        ge=15,
        le=CALM_EVIDENCE_MINUTES,
        description="A scale-in waits until this many minutes passed with no reshard (by anyone), no throttled "
        "write or read and no consumer behind.",
    )
    scale_in_max_lag_ms: int = Field(
        60_000,
        ge=1_000,
        le=limits.MAX_RETENTION_HOURS * 3_600_000,
        description="In that window, a consumer counts as behind once its iterator age (or MillisBehindLatest) "
        "reaches this.",
    )

    @model_validator(mode="after")
    def _bounds_are_consistent(self) -> ReshardPolicy:
        if self.min_shards > self.max_shards:
            raise ValueError(f"min_shards ({self.min_shards}) is above max_shards ({self.max_shards})")
        return self


def _names_stream(event: dict[str, Any], stream: StreamState) -> bool:
    """Whether a LookupEvents event is about this stream: its resources, or the request's stream name or ARN
    (UNCONFIRMED which of them Kinesis fills in; any of them is enough)."""
    names = {stream.name, stream.arn}
    if any(r.get("ResourceName") in names for r in event.get("Resources") or []):
        return True
    try:
        detail = json.loads(event.get("CloudTrailEvent") or "{}")
    except ValueError:
        return False
    request = detail.get("requestParameters") or {}
    return bool({request.get("streamName"), request.get("streamARN")} & names)


def _scaling(event: dict[str, Any]) -> dict[str, Any] | None:
    """One UpdateShardCount call AWS accepted, as the facts keep it; None for a call AWS refused (errorCode)."""
    try:
        detail = json.loads(event.get("CloudTrailEvent") or "{}")
    except ValueError:
        detail = {}
    if detail.get("errorCode"):
        return None
    at = event.get("EventTime")
    target = (detail.get("requestParameters") or {}).get("targetShardCount")
    return {
        "at": at.isoformat() if isinstance(at, datetime) else str(at),
        "target": int(target) if isinstance(target, int | str) and str(target).isdigit() else None,
        "by": event.get("Username") or "-",
    }


def read_cloudtrail(stream: StreamState, aws: ReadPorts, now: datetime) -> dict[str, Any]:
    """The stream's accepted UpdateShardCount calls of the last 24 h in CloudTrail's event history."""
    cloudtrail = aws.service("cloudtrail")
    request: dict[str, Any] = {
        "LookupAttributes": [{"AttributeKey": "EventName", "AttributeValue": "UpdateShardCount"}],
        "StartTime": now - timedelta(hours=24),
        "EndTime": now,
        "MaxResults": 50,
    }
    events: list[dict[str, Any]] = []
    pages, complete = 0, False
    while pages < MAX_CLOUDTRAIL_PAGES:
        page = cloudtrail.call("LookupEvents", **request)
        pages += 1
        for event in page.get("Events") or []:
            scaling = _scaling(event) if _names_stream(event, stream) else None
            if scaling is not None:
                events.append(scaling)
        token = page.get("NextToken")
        if not token:
            complete = True
            break
        request["NextToken"] = token
    return {"events": events, "pages": pages, "complete": complete}


def read_limits(aws: ReadPorts) -> dict[str, Any]:
    limits_ = aws.service("kinesis").call("DescribeLimits")
    return {"shard_limit": int(limits_["ShardLimit"]), "open_shards": int(limits_["OpenShardCount"])}


def _error_key(key: str) -> str:
    return f"{key}_error"


@REGISTRY.action
class Reshard(Action[ReshardPolicy]):
    id = "reshard"
    title = "UpdateShardCount (uniform scaling) towards the shards the observed peak needs"
    policy_schema = ReshardPolicy
    grants = (
        IamGrant(
            actions=("kinesis:UpdateShardCount",),
            scope=ACCOUNT,
            why="The Service Authorization Reference lists no resource type for kinesis:UpdateShardCount, "
            "so a statement scoped to stream ARNs may be denied in a real account. The remediator refuses "
            "any stream that is not in a policy before it calls AWS.",
        ),
        IamGrant(
            actions=("kinesis:DescribeStreamSummary",),
            scope=STREAM,
            why="Re-read the stream after an UpdateShardCount that failed without saying whether AWS took it "
            "(a 5xx, a timeout): UPDATING or at the target means it did.",
        ),
    )
    read_grants = (
        IamGrant(
            actions=("cloudtrail:LookupEvents",),
            scope=ACCOUNT,
            why="AWS's 10 scalings per stream per 24 h count reshards made by anyone: CloudTrail's event history "
            "(UpdateShardCount, last 24 h) shows the ones the audit does not. The Service Authorization Reference "
            "lists no resource type for cloudtrail:LookupEvents.",
        ),
        IamGrant(
            actions=("kinesis:DescribeLimits",),
            scope=ACCOUNT,
            why="The account's shard quota and open shards, so a reshard that would pass the quota is blocked "
            "with the numbers. The Service Authorization Reference lists no resource type for "
            "kinesis:DescribeLimits.",
        ),
    )
    sample_parameters: ClassVar[dict[str, Any]] = {"current_shards": 2, "desired_shards": 4, "target_shards": 4}

    def gather(
        self, policy: StreamPolicy, stream: StreamState, aws: ReadPorts, *, now: datetime | None = None
    ) -> dict[str, Any]:
        facts: dict[str, Any] = {}
        if now is None:
            facts[_error_key(CLOUDTRAIL)] = "no time given for the 24 h to look back over"
        else:
            try:
                facts[CLOUDTRAIL] = read_cloudtrail(stream, aws, now)
            except Exception as exc:  # a failed read is a fact (read_failure re-raises an undeclared call)
                facts[_error_key(CLOUDTRAIL)] = read_failure(exc)
        try:
            facts[LIMITS] = read_limits(aws)
        except Exception as exc:
            facts[_error_key(LIMITS)] = read_failure(exc)
        return facts

    def shape(self, proposal: Proposal, context: ValidationContext) -> Proposal:
        bounds = self.block(context.policy)
        current = context.evidence.stream.open_shards
        desired = int(proposal.parameters["desired_shards"])
        if desired < current:
            step = scale_down_target(current, desired, bounds.min_shards)
        else:
            step = scale_up_target(current, desired, bounds.min_shards, bounds.max_shards)
        reason = proposal.reason
        if step.limited_by:
            reason += f"; this call goes to {step.target} because " + " and ".join(step.limited_by)
        if step.target != desired and step.target > current:
            # The count this call goes to is not the one the reason named (one call's reach, a bound, the 25 %
            # rounding): say the share it gives.
            load = context.evidence.sizing_load()  # the load the diagnosis sized from (capacity.reshard_up)
            share = peak_share(load.bytes_per_second, load.records_per_second, step.target)
            peak = "estimated offered" if load.estimated else "observed"
            reason += f"; {step.target} shards put the {peak} write peak at {share:.0%} of capacity"
        if step.target < current:
            saved = shard_hours_per_month(current - step.target)
            reason += f"; {current} -> {step.target} shards saves {saved:,} shard-hours a month"
        return proposal.model_copy(
            update={
                "parameters": {"current_shards": current, "desired_shards": desired, "target_shards": step.target},
                "reason": reason,
            }
        )

    def checks(self, step: PlannedStep, context: ValidationContext) -> list[GuardrailVerdict]:
        policy = self.block(context.policy)
        stream = context.evidence.stream
        current = stream.open_shards
        target = int(step.parameters["target_shards"])
        provisioned = stream.mode == StreamMode.PROVISIONED
        verdicts = [
            GuardrailVerdict(
                name="provisioned-mode",
                passed=provisioned,
                detail=f"stream is {stream.mode}" + ("" if provisioned else "; on-demand streams are never resharded"),
            ),
            GuardrailVerdict(
                name="aws-step-limit",
                passed=min_scale_down(current) <= target <= current * limits.MAX_SCALE_UP_FACTOR,
                detail=f"{current} -> {target}; allowed range {min_scale_down(current)}–"
                f"{current * limits.MAX_SCALE_UP_FACTOR} (one call: half to double)",
            ),
            GuardrailVerdict(
                name="aws-max-shards",
                passed=target <= limits.MAX_SHARDS_PER_STREAM,
                detail=f"{target} of at most {limits.MAX_SHARDS_PER_STREAM:,} shards per stream",
            ),
            self._policy_bounds(current, target, policy),
        ]
        used, counted = self._daily_scalings(context)
        verdicts.append(
            GuardrailVerdict(
                name="aws-daily-scalings",
                passed=used < limits.MAX_SCALINGS_PER_24H,
                detail=f"{used} of AWS's {limits.MAX_SCALINGS_PER_24H} scalings used in the last 24 h ({counted})",
            )
        )
        verdicts.append(self._shard_quota(current, target, context))
        if target < current:
            verdicts += self._scale_in_checks(policy, used, context)
        return verdicts

    def _daily_scalings(self, context: ValidationContext) -> tuple[int, str]:
        """The stream's scalings in the rolling 24 h as AWS counts them, and how they were counted: the larger of
        the remediator's own applied reshards and CloudTrail's UpdateShardCount events (which include ours), plus
        the steps planned before this one."""
        name, now = context.evidence.stream.name, context.now
        own = len(context.history.applied_since(self.id, name, now - timedelta(hours=24)))
        planned = context.history.count_in_rolling_day(self.id, name, now) - own
        facts = self.facts(context)
        trail = facts.get(CLOUDTRAIL)
        if not isinstance(trail, dict):
            error = facts.get(_error_key(CLOUDTRAIL))
            how = f"the remediator's audit: {own}; " + (
                f"CloudTrail could not be read ({error}), so reshards by people or other tools are not counted"
                if error
                else "CloudTrail was not read"
            )
            return own + planned, how + (f"; {planned} planned before this step" if planned else "")
        in_day = [e for e in trail.get("events", []) if _within(e.get("at"), now - timedelta(hours=24), now)]
        external = len(in_day)
        how = f"the larger of the remediator's audit ({own}) and CloudTrail's UpdateShardCount events ({external}"
        how += ", at least: more than it reads at once" if not trail.get("complete", True) else ""
        how += f"; it may lack the last ~{CLOUDTRAIL_DELAY_MINUTES} min)"
        return max(own, external) + planned, how + (f"; {planned} planned before this step" if planned else "")

    def _shard_quota(self, current: int, target: int, context: ValidationContext) -> GuardrailVerdict:
        name = "account-shard-quota"
        facts = self.facts(context)
        quota = facts.get(LIMITS)
        if not isinstance(quota, dict):
            error = facts.get(_error_key(LIMITS))
            unread = f"DescribeLimits could not be read ({error})" if error else "DescribeLimits was not read"
            # Decided to let the step go: AWS enforces the quota itself and refuses a call that would pass it
            # (LimitExceededException, audited as failed), so sending cannot overshoot, while blocking a scale-up
            # on a failed read would leave a throttled stream throttled. A scale-in lowers the count anyway.
            return GuardrailVerdict(
                name=name,
                passed=True,
                detail=f"{unread}; AWS refuses a reshard that would pass the account's shard quota itself, so the "
                "step goes ahead unchecked here",
            )
        # The account's open shards include this stream's (moto answers 0: never count fewer than the stream has).
        open_shards = max(int(quota["open_shards"]), current)
        after = open_shards - current + target
        limit = int(quota["shard_limit"])
        if target <= current:
            passed, verdict = True, "a scale-in only lowers it"
        else:
            passed = after <= limit
            verdict = "within it" if passed else "over it: ask AWS for a higher shard quota (Service Quotas)"
        return GuardrailVerdict(
            name=name,
            passed=passed,
            detail=f"the account's open shards go {open_shards:,} -> {after:,} of its quota of {limit:,}; {verdict} "
            "(splits and merges may briefly add short-lived shards)",
        )

    def _scale_in_checks(self, policy: ReshardPolicy, used: int, context: ValidationContext) -> list[GuardrailVerdict]:
        enabled = GuardrailVerdict(
            name="scale-in-enabled",
            passed=policy.scale_in,
            detail="the policy allows removing shards (actions.reshard.scale_in)"
            if policy.scale_in
            else "removing shards is opt-in: set `scale_in: true` under the stream's `actions.reshard` and deploy "
            "the policy",
        )
        left = limits.MAX_SCALINGS_PER_24H - (used + 1)
        reserve = GuardrailVerdict(
            name="scale-up-reserve",
            passed=left >= limits.SCALE_UP_RESERVE,
            detail=f"after this scale-in {used + 1} of AWS's {limits.MAX_SCALINGS_PER_24H} scalings in 24 h would be "
            f"used, leaving {max(left, 0)}; {limits.SCALE_UP_RESERVE} are kept for scaling up",
        )
        return [enabled, self._stabilisation(policy, context), reserve]

    def _stabilisation(self, policy: ReshardPolicy, context: ValidationContext) -> GuardrailVerdict:
        minutes = policy.stabilisation_minutes
        since = context.now - timedelta(minutes=minutes)
        stream = context.evidence.stream.name
        found = []
        last = context.history.last_applied(self.id, stream)
        if last is not None and last.at >= since:
            found.append(f"the remediator resharded at {last.at:%H:%M} UTC")
        trail = self.facts(context).get(CLOUDTRAIL)
        recent = [e for e in (trail or {}).get("events", []) if _within(e.get("at"), since, context.now)]
        if recent:
            found.append(
                f"CloudTrail shows {len(recent)} UpdateShardCount call(s) on the stream since {since:%H:%M} UTC"
            )
        found += disturbances(context.evidence, context.policy, minutes, policy.scale_in_max_lag_ms)
        if found:
            return GuardrailVerdict(
                name="stabilisation-window",
                passed=False,
                detail=f"not calm for {minutes} minutes: " + "; ".join(found),
            )
        return GuardrailVerdict(
            name="stabilisation-window",
            passed=True,
            detail=f"{minutes} minutes with no reshard, no throttled write or read and no consumer behind",
        )

    @staticmethod
    def _policy_bounds(current: int, target: int, policy: ReshardPolicy) -> GuardrailVerdict:
        name = "policy-bounds"
        if target == current:
            edge = "fewest" if current <= policy.min_shards else "most"
            return GuardrailVerdict(
                name=name, passed=False, detail=f"already at {current} shards, the {edge} the bounds allow"
            )
        if target > policy.max_shards and not target < current:
            return GuardrailVerdict(name=name, passed=False, detail=f"{target} is above max_shards {policy.max_shards}")
        if target > policy.max_shards:
            # A stream above its ceiling may come down towards it, one call's reach at a time.
            return GuardrailVerdict(
                name=name, passed=True, detail=f"{target} moves towards the ceiling of {policy.max_shards}"
            )
        if target < policy.min_shards and not current < target:
            return GuardrailVerdict(name=name, passed=False, detail=f"{target} is below min_shards {policy.min_shards}")
        if target < policy.min_shards:
            # A stream below its floor may climb towards it, one call's reach at a time.
            return GuardrailVerdict(
                name=name, passed=True, detail=f"{target} moves towards the floor of {policy.min_shards}"
            )
        return GuardrailVerdict(
            name=name, passed=True, detail=f"{target} within [{policy.min_shards}, {policy.max_shards}]"
        )

    def apply(self, step: PlannedStep, aws: WritePorts) -> dict[str, Any]:
        response = aws.service("kinesis").call(
            "UpdateShardCount",
            StreamARN=step.stream_arn,
            TargetShardCount=int(step.parameters["target_shards"]),
            ScalingType="UNIFORM_SCALING",
        )
        return {"current_shards": response.get("CurrentShardCount"), "target_shards": response.get("TargetShardCount")}

    def confirm(self, step: PlannedStep, aws: ReadPorts) -> bool | None:
        """UPDATING (a reshard under way: UpdateShardCount makes the stream UPDATING as it accepts the call) or
        ACTIVE at the target: made. ACTIVE at the count the step started from: not made. Otherwise (another
        count, another status) someone else is changing the stream: cannot tell."""
        summary = aws.service("kinesis").call("DescribeStreamSummary", StreamARN=step.stream_arn)
        stream = summary.get("StreamDescriptionSummary", {})
        status, shards = stream.get("StreamStatus"), stream.get("OpenShardCount")
        if status == "UPDATING" or (status == "ACTIVE" and shards == int(step.parameters["target_shards"])):
            return True
        if status == "ACTIVE" and shards == int(step.parameters["current_shards"]):
            return False
        return None

    def cli_command(self, stream_arn: str, parameters: dict[str, Any]) -> str:
        return shlex.join(
            [
                "aws", "kinesis", "update-shard-count",
                "--stream-arn", stream_arn,
                "--target-shard-count", str(int(parameters["target_shards"])),
                "--scaling-type", "UNIFORM_SCALING",
            ]
        )  # fmt: skip

    def summary(self, parameters: dict[str, Any]) -> str:
        current, target = int(parameters["current_shards"]), int(parameters["target_shards"])
        text = f"reshard {current} -> {target} shards"
        if target < current:
            text += f" (-{shard_hours_per_month(current - target):,} shard-hours a month)"
        return text

    def changes(self, parameters: dict[str, Any]) -> list[Change]:
        return [
            Change(setting=OPEN_SHARDS_SETTING, before=parameters["current_shards"], after=parameters["target_shards"])
        ]

    def usage_after(self, usage: Usage, parameters: dict[str, Any]) -> Usage:
        # Up or down: the stream is billed for the shards this call goes to (target, not desired).
        return replace(usage, shards=int(parameters["target_shards"]))

    def more_to_do(self, parameters: dict[str, Any], block: ReshardPolicy) -> bool:
        # The cross-helper contract: an applied reshard short of what the diagnosis asked (one call's reach), unless
        # it stopped at the policy's bound (a next call would be refused by policy-bounds).
        target, desired = int(parameters["target_shards"]), int(parameters["desired_shards"])
        if desired > target:
            return target < block.max_shards
        if desired < target:
            return target > block.min_shards
        return False

    def recheck(self, parameters: dict[str, Any], block: ReshardPolicy) -> bool:
        # A scale-up sized from the evidence (an estimate while writes are throttled) may fall short: look again,
        # unless it stopped at the policy's ceiling (a next call would be refused by policy-bounds).
        current, target = int(parameters["current_shards"]), int(parameters["target_shards"])
        return current < target < block.max_shards

    def next_step_after(self, parameters: dict[str, Any], block: ReshardPolicy) -> timedelta | None:
        # A scale-in's next step (or its next look, core.follow_through) must find a calm stabilisation window after
        # this one (stabilisation-window counts our own reshard): planning again sooner would only be blocked. A
        # minute past it, to be clear of it. A scale-in: the diagnosis asked for fewer shards than the stream had.
        desired = int(parameters["desired_shards"])
        if desired < int(parameters["target_shards"]) or desired < int(parameters.get("current_shards", desired)):
            return timedelta(minutes=block.stabilisation_minutes + 1)
        return None

    def bounds(self, block: ReshardPolicy) -> str:
        return f"{block.min_shards}..{block.max_shards} shards"


def _within(at: Any, start: datetime, end: datetime) -> bool:
    """Whether an ISO time from the facts lies in [start, end]; an unreadable one counts (errs towards waiting)."""
    try:
        moment = datetime.fromisoformat(str(at))
    except ValueError:
        return True
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=start.tzinfo)
    return start <= moment <= end
