"""raise-retention: IncreaseStreamRetentionPeriod before unread records expire, only ever upward.

A symptom proposes it with the age of the oldest unread record (`{"oldest_record_age_ms": AGE}`); this
action decides how far one call goes:

- it raises only when that record has used `at_share` of the retention period (AWS warns of data loss
  from 50 %);
- each raise at least doubles the retention, and goes further when doubling would still leave the oldest
  unread record above `at_share` of the new period; never above `max_hours` (at most AWS's 8,760 h).
  Doubling, not a fixed step: a stopped consumer's backlog grows by the hour, so each raise buys at least
  as much time as the stream already had, and 24 h reaches 7 days in three calls (48, 96, 168);
- never downward: IncreaseStreamRetentionPeriod refuses it, and a decrease drops the records older than
  the new period almost immediately.

The plan shows what the retention costs per month before and after (core/pricing.py).
"""

from __future__ import annotations

import math
import shlex
from dataclasses import dataclass, replace
from statistics import fmean
from typing import Any, ClassVar

from pydantic import Field

from remediator.core import limits
from remediator.core.actions.base import Action, ValidationContext
from remediator.core.cost import Usage
from remediator.core.evidence import Evidence, StreamMode
from remediator.core.grants import STREAM, IamGrant
from remediator.core.plan import Change, GuardrailVerdict, PlannedStep, Proposal
from remediator.core.policy import ActionPolicy
from remediator.core.ports import ReadPorts, WritePorts
from remediator.core.pricing import EXTENDED_UNTIL_HOURS, monthly_retention_cost, price_note
from remediator.core.registry import REGISTRY

HOUR_MS = 3_600_000


class RaiseRetentionPolicy(ActionPolicy):
    at_share: float = Field(
        0.5,
        gt=0.0,
        lt=1.0,
        description="Raise only once the oldest unread record has used this share of the retention period "
        "(AWS warns of data loss from 0.5); each raise also brings that record back under this share.",
    )
    max_hours: int = Field(
        168,
        ge=limits.MIN_RETENTION_HOURS,
        le=limits.MAX_RETENTION_HOURS,
        description=f"Never raise the retention above this many hours (AWS allows {limits.MIN_RETENTION_HOURS:,} "
        f"to {limits.MAX_RETENTION_HOURS:,}). 168 h (7 days) stays within extended retention; beyond it, "
        "long-term retention is billed per GB stored.",
    )
    cooldown_minutes: int = Field(
        60,
        ge=1,
        le=1440,
        description="Minimum time between two raises of the stream's retention (records stop expiring at the "
        "old period within minutes of a raise).",
    )
    daily_budget: int = Field(
        3,
        ge=0,
        le=100,
        description="Raises per stream per rolling 24 h (doubling, 24 h reaches 168 h in three).",
    )


@dataclass(frozen=True)
class RetentionTarget:
    hours: int
    limited_by: tuple[str, ...] = ()


def age_share(age_ms: float, retention_hours: int) -> float:
    """How far the oldest unread record is towards expiry (1.0: it expires now)."""
    return age_ms / (max(retention_hours, 1) * HOUR_MS)


def retention_target(current_hours: int, age_ms: float, at_share: float, max_hours: int) -> RetentionTarget:
    """The retention one call goes to: at least double, enough to put the oldest unread record back at
    `at_share` of the new period, at most `max_hours` and AWS's maximum."""
    doubled = current_hours * 2
    needed = math.ceil(age_ms / HOUR_MS / at_share)
    wanted = max(doubled, needed, limits.MIN_RETENTION_HOURS)
    limited_by = []
    target = wanted
    if target > max_hours:
        target, limited_by = max_hours, [f"policy max_hours is {max_hours}"]
    if target > limits.MAX_RETENTION_HOURS:
        target = limits.MAX_RETENTION_HOURS
        limited_by.append(f"AWS allows at most {limits.MAX_RETENTION_HOURS:,} h")
    return RetentionTarget(hours=target, limited_by=tuple(limited_by))


def average_incoming_bytes_per_second(evidence: Evidence) -> float | None:
    """The stream's average write rate over the evidence window (None when CloudWatch returned none)."""
    values = evidence.values("incoming_bytes")
    return fmean(values) / evidence.period_seconds if values else None


@REGISTRY.action
class RaiseRetention(Action[RaiseRetentionPolicy]):
    id = "raise-retention"
    title = "IncreaseStreamRetentionPeriod before unread records expire (only upward)"
    policy_schema = RaiseRetentionPolicy
    grants = (
        IamGrant(
            actions=("kinesis:IncreaseStreamRetentionPeriod",),
            scope=STREAM,
            why="Raise the retention of the streams in the policies (the Service Authorization Reference lists "
            "the stream resource type). DecreaseStreamRetentionPeriod is never granted.",
        ),
        IamGrant(
            actions=("kinesis:DescribeStreamSummary",),
            scope=STREAM,
            why="Re-read the retention after an IncreaseStreamRetentionPeriod that failed without saying whether "
            "AWS took it (a 5xx, a timeout).",
        ),
    )
    sample_parameters: ClassVar[dict[str, Any]] = {
        "oldest_record_age_ms": 14 * HOUR_MS,
        "current_hours": 24,
        "target_hours": 48,
        "monthly_cost_usd_before": 0.0,
        "monthly_cost_usd_after": 29.2,
    }

    def shape(self, proposal: Proposal, context: ValidationContext) -> Proposal:
        block = self.block(context.policy)
        evidence = context.evidence
        stream = evidence.stream
        age_ms = float(proposal.parameters["oldest_record_age_ms"])
        current = stream.retention_hours
        target = retention_target(current, age_ms, block.at_share, block.max_hours)
        bytes_per_second = average_incoming_bytes_per_second(evidence)

        def cost(hours: int) -> float:
            return monthly_retention_cost(
                hours,
                shards=stream.open_shards,
                average_bytes_per_second=bytes_per_second or 0.0,
                on_demand=stream.mode == StreamMode.ON_DEMAND,
            )

        before, after = round(cost(current), 2), round(cost(target.hours), 2)
        reason = proposal.reason
        if target.limited_by:
            reason += f"; this call goes to {target.hours} h because " + " and ".join(target.limited_by)
        basis = (
            f"{(bytes_per_second or 0.0) / 1e6:,.2f} MB/s written on average"
            if stream.mode == StreamMode.ON_DEMAND
            else f"{stream.open_shards} shards"
        )
        reason += (
            f"; retention {current} -> {target.hours} h costs about ${before:,.2f} -> ${after:,.2f} a month "
            f"on {basis} ({price_note()})"
        )
        billed_per_gb = target.hours > EXTENDED_UNTIL_HOURS or stream.mode == StreamMode.ON_DEMAND
        if bytes_per_second is None and billed_per_gb:
            reason += "; CloudWatch returned no IncomingBytes, so the per-GB part of the cost is left out"
        return proposal.model_copy(
            update={
                "parameters": {
                    "oldest_record_age_ms": int(age_ms),
                    "current_hours": current,
                    "target_hours": target.hours,
                    "monthly_cost_usd_before": before,
                    "monthly_cost_usd_after": after,
                },
                "reason": reason,
            }
        )

    def checks(self, step: PlannedStep, context: ValidationContext) -> list[GuardrailVerdict]:
        block = self.block(context.policy)
        current = context.evidence.stream.retention_hours
        target = int(step.parameters["target_hours"])
        share = age_share(float(step.parameters["oldest_record_age_ms"]), current)
        low, high = limits.MIN_RETENTION_HOURS, limits.MAX_RETENTION_HOURS
        return [
            GuardrailVerdict(
                name="aws-retention-range",
                passed=low <= target <= high,
                detail=f"{target:,} h; AWS allows {low:,} to {high:,} h",
            ),
            GuardrailVerdict(
                name="increase-only",
                passed=target > current,
                detail=f"{current:,} -> {target:,} h"
                + (
                    ""
                    if target > current
                    else "; the retention is only ever raised (a decrease drops the records older than the new "
                    "period almost immediately, and IncreaseStreamRetentionPeriod needs a longer period)"
                ),
            ),
            GuardrailVerdict(
                name="policy-max-hours",
                passed=target <= block.max_hours,
                detail=f"{target:,} h of at most {block.max_hours:,} h"
                if target <= block.max_hours
                else f"{target:,} h is above max_hours {block.max_hours:,}",
            ),
            GuardrailVerdict(
                name="policy-share",
                passed=share >= block.at_share,
                detail=f"the oldest unread record is {share:.0%} of the way to expiry; the policy raises from "
                f"{block.at_share:.0%}",
            ),
        ]

    def apply(self, step: PlannedStep, aws: WritePorts) -> dict[str, Any]:
        target = int(step.parameters["target_hours"])
        aws.service("kinesis").call(
            "IncreaseStreamRetentionPeriod", StreamARN=step.stream_arn, RetentionPeriodHours=target
        )
        # The response has no body: AWS accepted the new period.
        return {"retention_hours": target}

    def confirm(self, step: PlannedStep, aws: ReadPorts) -> bool | None:
        """The retention at (or above) the target: made; still where the step started: not made."""
        summary = aws.service("kinesis").call("DescribeStreamSummary", StreamARN=step.stream_arn)
        hours = summary.get("StreamDescriptionSummary", {}).get("RetentionPeriodHours")
        if hours is None:
            return None
        if int(hours) >= int(step.parameters["target_hours"]):
            return True
        if int(hours) == int(step.parameters["current_hours"]):
            return False
        return None

    def cli_command(self, stream_arn: str, parameters: dict[str, Any]) -> str:
        return shlex.join(
            [
                "aws", "kinesis", "increase-stream-retention-period",
                "--stream-arn", stream_arn,
                "--retention-period-hours", str(int(parameters["target_hours"])),
            ]
        )  # fmt: skip

    def summary(self, parameters: dict[str, Any]) -> str:
        extra = float(parameters["monthly_cost_usd_after"]) - float(parameters["monthly_cost_usd_before"])
        return (
            f"raise retention {parameters['current_hours']} -> {parameters['target_hours']} h "
            f"({'+' if extra >= 0 else '-'}${abs(extra):,.2f}/month)"
        )

    def changes(self, parameters: dict[str, Any]) -> list[Change]:
        return [Change(setting="retention hours", before=parameters["current_hours"], after=parameters["target_hours"])]

    def usage_after(self, usage: Usage, parameters: dict[str, Any]) -> Usage:
        return replace(usage, retention_hours=int(parameters["target_hours"]))

    def bounds(self, block: RaiseRetentionPolicy) -> str:
        return f"from {block.at_share:.0%} of retention, up to {block.max_hours:,} h"
