"""Scale-in: the down-sizing maths, the under-utilised diagnosis, and the reshard's scale-in guardrails (opt-in,
stabilisation window, scale-up reserve), its daily count from CloudTrail and its account shard quota."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber
from remediator.clients.services import AwsServices
from remediator.core.actions.base import ValidationContext
from remediator.core.evidence import Evidence
from remediator.core.guardrails import evaluate
from remediator.core.history import ActionHistory, PastAction
from remediator.core.metrics import Comparison, MetricMath, MissingData
from remediator.core.plan import Cause, PlannedStep, Proposal
from remediator.core.planner import make_plan
from remediator.core.ports import DeclaredOnly
from remediator.core.registry import REGISTRY
from remediator.core.reshard import quarter_step_down, scale_down_target
from remediator.core.symptoms.calm import calm_queries

from tests.fakes import GUARDRAIL_ORDER, NOW, REGION, SCALE_IN_GUARDRAILS, evidence, policy, stream_arn

RESHARD = REGISTRY.actions["reshard"]
UNDER = REGISTRY.symptoms["under-utilised"]
HALF = "AWS allows at most halving per call ({})"


# Down-sizing maths ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("current", "desired", "expected"),
    [
        pytest.param(8, 5, 6, id="8->5 rounds up to the 75% step (6)"),
        pytest.param(8, 6, 6, id="8->6 is the 75% step"),
        pytest.param(8, 4, 4, id="8->4 is the 50% step"),
        pytest.param(8, 3, 4, id="below 50%: the 50% step"),
        pytest.param(10, 6, 8, id="10->6 rounds up to 8 (ceil 7.5)"),
        pytest.param(3, 2, 2, id="3->2 is ceil(50%)"),
        pytest.param(4, 3, 3, id="4->3 is the 75% step"),
        pytest.param(5, 4, 4, id="5->4 (ceil 3.75) still removes a shard"),
        pytest.param(2, 1, 1, id="2->1 is the 50% step"),
        pytest.param(6, 6, 6, id="no change asked"),
    ],
)
def test_quarter_step_down(current: int, desired: int, expected: int) -> None:
    # Given a scale-down; When it is rounded to AWS's faster 25 % steps; Then it never rounds below the desired
    assert quarter_step_down(current, desired) == expected


@pytest.mark.parametrize(
    ("current", "desired", "min_shards", "target", "limited_by"),
    [
        pytest.param(8, 6, 1, 6, (), id="within half: the 75% step"),
        pytest.param(8, 1, 1, 4, (HALF.format(4),), id="far below: halved"),
        pytest.param(7, 1, 1, 4, (HALF.format(4),), id="odd count: half rounds up"),
        pytest.param(4, 1, 3, 3, (HALF.format(2), "policy min_shards is 3"), id="floor above half: the floor"),
        pytest.param(8, 2, 4, 4, (HALF.format(4),), id="half is the floor: named once as AWS's"),
        pytest.param(2, 1, 2, 2, ("policy min_shards is 2",), id="at the floor: no change"),
        pytest.param(3, 1, 5, 3, (HALF.format(2), "policy min_shards is 5"), id="below the floor: never lowered"),
        pytest.param(20_000, 1, 1, 10_000, (HALF.format(10_000),), id="above 10,000: halved to 10,000"),
        pytest.param(5, 4, 1, 4, (), id="one shard fewer"),
    ],
)
def test_scale_down_target(current: int, desired: int, min_shards: int, target: int, limited_by: tuple[str, ...]):
    # Given the current and desired counts and the policy's floor
    # When one scale-down call's target is computed
    result = scale_down_target(current, desired, min_shards)
    # Then it is exactly this, and says what limited it
    assert (result.target, result.limited_by) == (target, limited_by)


def test_scale_down_target_refuses_a_scale_up():
    with pytest.raises(ValueError, match="needs fewer shards than the current 4"):
        scale_down_target(4, 4, 1)


# The under-utilised symptom ------------------------------------------------------------------------------
def quiet(shards: int = 8, bytes_per_second: float = 400_000, **overrides: Any) -> Evidence:
    """A provisioned stream with calm series for two hours: no throttle, consumers caught up."""
    base = evidence(shards=shards, bytes_per_second=bytes_per_second, minutes=120, iterator_age_ms=1_000, **overrides)
    return base.model_copy(update={"window_minutes": 120})


def test_alarm_is_metric_math_of_the_bytes_and_records_shares_against_the_census_shard_count():
    # Given a policy with the default under-utilised detector
    p = policy()
    # When the symptom declares its alarm
    (spec,) = UNDER.alarms(p, UNDER.detector(p))
    # Then it divides 5-minute sums by the capacity of the stream's OpenShards (the census's metric, under the
    # service and StreamName dimensions Powertools publishes it with), below 30 % in 12 of 12 periods (an hour)
    assert isinstance(spec.metric, MetricMath)
    assert spec.metric.expression == "MAX([bytes / (300000000 * shards), records / (300000 * shards)])"
    inputs = spec.metric.inputs
    assert {k: (m.namespace, m.name, m.statistic, m.period_seconds) for k, m in inputs.items()} == {
        "bytes": ("AWS/Kinesis", "IncomingBytes", "Sum", 300),
        "records": ("AWS/Kinesis", "IncomingRecords", "Sum", 300),
        "shards": ("KinesisRemediator", "OpenShards", "Maximum", 300),
    }
    assert inputs["shards"].dimension_map == {"service": "kinesis-remediator", "StreamName": "orders"}
    assert spec.metric.period_seconds == 300
    assert (spec.threshold, spec.comparison) == (0.3, Comparison.LESS_THAN_THRESHOLD)
    assert (spec.evaluation_periods, spec.datapoints_to_alarm) == (12, 12)
    # And a period without a census datapoint (or without writes) does not count towards the alarm
    assert spec.missing_data == MissingData.NOT_BREACHING


def evaluate_alarm_expression(expression: str, **series: float) -> float:
    """CloudWatch's MAX([a, b]) of one period, evaluated in Python (the expression uses nothing else)."""
    return float(eval(expression, {"__builtins__": {}, "MAX": max}, series))


@pytest.mark.parametrize(
    ("bytes_sum", "records_sum", "shards", "utilisation"),
    [
        pytest.param(300_000_000, 0, 1, 1.0, id="1 MB/s on 1 shard: full"),
        pytest.param(300_000_000, 0, 4, 0.25, id="the same on 4 shards: a quarter"),
        pytest.param(0, 300_000, 2, 0.5, id="1,000 records/s on 2 shards: half"),
        pytest.param(30_000_000, 150_000, 5, 0.1, id="records share (0.1) above bytes share (0.02)"),
        pytest.param(120_000_000, 3_000, 8, 0.05, id="bytes share (0.05) above records share"),
    ],
)
def test_alarm_utilisation_divides_by_the_shards_of_the_period(
    bytes_sum: float, records_sum: float, shards: int, utilisation: float
) -> None:
    # Given one 5-minute period's sums and the census's shard count for it
    p = policy()
    (spec,) = UNDER.alarms(p, UNDER.detector(p))
    assert isinstance(spec.metric, MetricMath)
    # When the alarm's expression is evaluated
    value = evaluate_alarm_expression(spec.metric.expression, bytes=bytes_sum, records=records_sum, shards=shards)
    # Then it is the larger share of those shards' capacity
    assert value == pytest.approx(utilisation)


def test_evidence_covers_two_hours_of_load_throttles_and_every_consumers_lag():
    # Given a policy naming an enhanced fan-out consumer and a Lambda consumer
    p = policy(consumers=[{"efo": "orders-efo"}, {"function": "orders-fn"}])
    # Then the symptom reads two hours of the load and of every series the calm window is judged on
    keys = [q.key for q in UNDER.evidence_queries(p)]
    assert UNDER.evidence_window_minutes == 120
    assert keys == [
        "incoming_bytes",
        "incoming_records",
        "write_throttled",
        "read_throttled",
        "iterator_age_ms",
        "calm_efo_lag_0",
        "calm_lambda_lag_0",
    ]
    assert [q.key for q in calm_queries(p)] == keys[2:]


@pytest.mark.parametrize(
    ("shards", "bytes_per_second", "cause", "desired"),
    [
        pytest.param(8, 400_000, "shards-under-utilised", 1, id="5% of 8 shards -> 1 (0.4 MB/s at 60%)"),
        pytest.param(8, 1_300_000, "shards-under-utilised", 3, id="16% of 8 -> 3"),
        pytest.param(8, 2_500_000, Cause.NOT_REPRODUCED, None, id="31% of 8 is above the 30% threshold"),
        pytest.param(2, 500_000, "shards-under-utilised", 1, id="25% of 2 -> 1 (0.83 of one shard at 60%)"),
        pytest.param(4, 1_500_000, Cause.NOT_REPRODUCED, None, id="38% of 4 is above the threshold"),
        pytest.param(1, 100_000, "one-shard", None, id="one shard: nothing to remove (a final answer)"),
    ],
)
def test_diagnosis_sizes_the_scale_in_to_the_target_utilisation(shards, bytes_per_second, cause, desired):
    # Given two quiet hours on a provisioned stream
    ev = quiet(shards=shards, bytes_per_second=bytes_per_second)
    # When the under-utilised symptom diagnoses it
    diagnosis = UNDER.diagnose(ev, policy())
    # Then it proposes the shards that carry the peak at 60 %, or nothing
    assert diagnosis.cause == cause
    assert [p.parameters for p in diagnosis.proposals] == ([] if desired is None else [{"desired_shards": desired}])


def test_diagnosis_reason_states_the_shard_hours_saved():
    diagnosis = UNDER.diagnose(quiet(shards=8, bytes_per_second=400_000), policy())
    (proposal,) = diagnosis.proposals
    assert proposal.reason == (
        "writes peaked at 5% of 8 shards in the last 60 minutes (the alarm's window); 1 shard would put that peak at "
        "40% (target 60%), "
        "5,110 shard-hours a month fewer"
    )


def test_on_demand_stream_is_never_scaled_in():
    diagnosis = UNDER.diagnose(quiet(mode="ON_DEMAND"), policy())
    assert diagnosis.cause == Cause.ON_DEMAND
    assert diagnosis.proposals == ()


# The reshard's scale-in guardrails -------------------------------------------------------------------------------
def scale_in_plan(
    ev: Evidence | None = None,
    history: ActionHistory | None = None,
    facts: dict[str, Any] | None = None,
    **reshard: Any,
) -> PlannedStep:
    """The under-utilised plan of a quiet 8-shard stream, scale-in allowed unless `reshard` says otherwise."""
    ev = ev or quiet()
    if facts is not None:
        ev = ev.model_copy(update={"facts": {"reshard": facts}})
    plan = make_plan(
        alarm_name="kinesis-remediator-orders/under-utilised",
        symptom="under-utilised",
        policy=policy(reshard={"scale_in": True} | reshard),
        evidence=ev,
        history=history or ActionHistory(),
        now=NOW,
    )
    (step,) = plan.steps
    return step


def reshards_ago(*minutes: float) -> ActionHistory:
    return ActionHistory(
        PastAction(action="reshard", stream="orders", at=NOW - timedelta(minutes=m), parameters={}) for m in minutes
    )


def cloudtrail(*minutes_ago: float, complete: bool = True) -> dict[str, Any]:
    events = [{"at": (NOW - timedelta(minutes=m)).isoformat(), "target": 4, "by": "alice"} for m in minutes_ago]
    return {"events": events, "pages": 1, "complete": complete}


LIMITS = {"shard_limit": 500, "open_shards": 100}


def test_a_calm_quiet_stream_is_halved_and_the_step_says_what_it_saves():
    # Given 8 quiet shards that need 1, scale-in allowed, and CloudTrail and the quota read
    step = scale_in_plan(facts={"cloudtrail": cloudtrail(), "limits": LIMITS})
    # Then this call halves the stream (AWS's limit), and every guardrail passes
    assert step.parameters == {"current_shards": 8, "desired_shards": 1, "target_shards": 4}
    assert step.summary == "reshard 8 -> 4 shards (-2,920 shard-hours a month)"
    assert step.reason.endswith(
        "; this call goes to 4 because AWS allows at most halving per call (4); 8 -> 4 shards saves 2,920 "
        "shard-hours a month"
    )
    assert [v.name for v in step.guardrails][4:] == GUARDRAIL_ORDER[4:] + SCALE_IN_GUARDRAILS
    assert step.blocking_reasons == []
    details = {v.name: v.detail for v in step.guardrails}
    assert details["stabilisation-window"] == (
        "60 minutes with no reshard, no throttled write or read and no consumer behind"
    )
    assert details["scale-up-reserve"] == (
        "after this scale-in 1 of AWS's 10 scalings in 24 h would be used, leaving 9; 2 are kept for scaling up"
    )
    assert details["account-shard-quota"] == (
        "the account's open shards go 100 -> 96 of its quota of 500; a scale-in only lowers it (splits and merges "
        "may briefly add short-lived shards)"
    )


def test_scale_in_is_opt_in_and_the_block_says_how_to_enable_it():
    # Given the default policy (scale_in false)
    step = scale_in_plan(scale_in=False)
    # Then the step is planned, and blocked with how to enable it
    assert step.parameters["target_shards"] == 4
    assert step.blocking_reasons == [
        "scale-in-enabled: removing shards is opt-in: set `scale_in: true` under the stream's `actions.reshard` "
        "and deploy the policy"
    ]


@pytest.mark.parametrize(
    ("overrides", "history", "trail", "reason"),
    [
        pytest.param(
            {"throttled_per_minute": 3},
            None,
            None,
            "180 throttled writes (WriteProvisionedThroughputExceeded)",
            id="throttled writes in the window",
        ),
        pytest.param(
            {"series": {"iterator_age_ms": (1_000.0,) * 100 + (90_000.0,) * 20}},
            None,
            None,
            "polling consumers (GetRecords.IteratorAgeMilliseconds) 90 s behind (lagging from 60 s)",
            id="a consumer behind",
        ),
        pytest.param({}, reshards_ago(45), None, "the remediator resharded at 02:15 UTC", id="our reshard"),
        pytest.param(
            {},
            None,
            cloudtrail(20),
            "CloudTrail shows 1 UpdateShardCount call(s) on the stream since 02:00 UTC",
            id="someone else's reshard",
        ),
    ],
)
def test_stabilisation_window_waits_for_calm(overrides, history, trail, reason):
    # Given something that disturbed the last 60 minutes
    overrides = dict(overrides)
    series = overrides.pop("series", {})
    ev = quiet(**overrides)
    ev = ev.model_copy(update={"series": ev.series | series})
    facts = {"cloudtrail": trail or cloudtrail(), "limits": LIMITS}
    # When the scale-in is planned
    step = scale_in_plan(ev, history=history, facts=facts, cooldown_minutes=30)
    # Then it waits, naming what broke the calm
    assert step.blocking_reasons == [f"stabilisation-window: not calm for 60 minutes: {reason}"]


def test_a_read_throttle_an_hour_and_a_half_ago_is_outside_a_60_minute_window():
    # Given reads throttled only in the first half hour of the two-hour evidence
    ev = quiet()
    ev = ev.model_copy(update={"series": ev.series | {"read_throttled": (5.0,) * 30 + (0.0,) * 90}})
    # Then a 60-minute window is calm, a 120-minute one is not
    assert scale_in_plan(ev, facts={"limits": LIMITS}).allowed
    step = scale_in_plan(ev, facts={"limits": LIMITS}, stabilisation_minutes=120)
    assert "150 throttled reads (ReadProvisionedThroughputExceeded)" in step.blocking_reasons[0]


@pytest.mark.parametrize(
    ("own", "external", "passed", "used"),
    [
        pytest.param(7, 0, True, 8, id="7 of ours: one more leaves 2"),
        pytest.param(0, 8, False, 9, id="8 by others in CloudTrail: one more would leave 1"),
        pytest.param(6, 7, True, 8, id="ours appear in CloudTrail too: the larger count, not the sum"),
    ],
)
def test_a_scale_in_keeps_two_of_awss_ten_daily_scalings_for_scaling_up(own, external, passed, used):
    # Given reshards in the last 24 h (ours in the audit, anyone's in CloudTrail), none within the last 2 hours
    history = reshards_ago(*(200 + 100 * i for i in range(own)))
    trail = cloudtrail(*(200 + 100 * i for i in range(external)))
    # When a scale-in is planned (with the largest policy budget)
    step = scale_in_plan(history=history, facts={"cloudtrail": trail, "limits": LIMITS}, daily_budget=8)
    # Then the reserve guardrail counts as AWS does
    reserve = next(v for v in step.guardrails if v.name == "scale-up-reserve")
    assert reserve.passed is passed
    assert reserve.detail.startswith(f"after this scale-in {used} of AWS's 10 scalings in 24 h would be used")


def test_the_daily_count_is_the_larger_of_the_audit_and_cloudtrail_and_says_cloudtrail_may_lag():
    # Given 2 reshards of ours and 5 in CloudTrail (ours among them), one 25 h ago (outside the day)
    step = scale_in_plan(history=reshards_ago(300, 400), facts={"cloudtrail": cloudtrail(300, 400, 500, 600, 1500)})
    verdict = next(v for v in step.guardrails if v.name == "aws-daily-scalings")
    assert verdict.detail == (
        "4 of AWS's 10 scalings used in the last 24 h (the larger of the remediator's audit (2) and CloudTrail's "
        "UpdateShardCount events (4; it may lack the last ~15 min))"
    )


def test_an_unreadable_cloudtrail_falls_back_on_the_audit_and_says_so():
    facts = {"cloudtrail_error": "AccessDeniedException: not authorized", "limits": LIMITS}
    step = scale_in_plan(history=reshards_ago(300), facts=facts)
    verdict = next(v for v in step.guardrails if v.name == "aws-daily-scalings")
    assert verdict.passed
    assert verdict.detail == (
        "1 of AWS's 10 scalings used in the last 24 h (the remediator's audit: 1; CloudTrail could not be read "
        "(AccessDeniedException: not authorized), so reshards by people or other tools are not counted)"
    )


def test_an_incomplete_cloudtrail_read_is_a_lower_bound():
    step = scale_in_plan(facts={"cloudtrail": cloudtrail(300, complete=False), "limits": LIMITS})
    verdict = next(v for v in step.guardrails if v.name == "aws-daily-scalings")
    assert "(1, at least: more than it reads at once; it may lack the last ~15 min)" in verdict.detail


# The account's shard quota (both directions) ---------------------------------------------------------------------
def scale_up_step(current: int, target: int, facts: dict[str, Any]) -> PlannedStep:
    ev = evidence(shards=current).model_copy(update={"facts": {"reshard": facts}})
    parameters = {"current_shards": current, "desired_shards": target, "target_shards": target}
    step = PlannedStep(
        action="reshard",
        stream="orders",
        stream_arn=stream_arn("orders"),
        parameters=parameters,
        reason="test",
        summary=RESHARD.summary(parameters),
        cli_command=RESHARD.cli_command(stream_arn("orders"), parameters),
    )
    context = ValidationContext(
        policy=policy(reshard={"max_shards": 64}), evidence=ev, history=ActionHistory(), now=NOW
    )
    return evaluate(step, context)


@pytest.mark.parametrize(
    ("limits", "passed", "detail"),
    [
        pytest.param(
            {"shard_limit": 500, "open_shards": 496},
            True,
            "the account's open shards go 496 -> 500 of its quota of 500; within it",
            id="exactly at the quota",
        ),
        pytest.param(
            {"shard_limit": 500, "open_shards": 497},
            False,
            "the account's open shards go 497 -> 501 of its quota of 500; over it: ask AWS for a higher shard "
            "quota (Service Quotas)",
            id="one over",
        ),
        pytest.param(
            {"shard_limit": 500, "open_shards": 0},
            True,
            "the account's open shards go 4 -> 8 of its quota of 500; within it",
            id="an open count below the stream's own (moto) counts the stream's",
        ),
    ],
)
def test_a_reshard_that_would_pass_the_accounts_shard_quota_is_blocked_with_the_numbers(limits, passed, detail):
    step = scale_up_step(4, 8, {"limits": limits})
    verdict = next(v for v in step.guardrails if v.name == "account-shard-quota")
    assert verdict.passed is passed
    assert verdict.detail == detail + " (splits and merges may briefly add short-lived shards)"


def test_an_unreadable_quota_lets_the_step_go_and_says_aws_enforces_it():
    step = scale_up_step(4, 8, {"limits_error": "ThrottlingException: Rate exceeded"})
    verdict = next(v for v in step.guardrails if v.name == "account-shard-quota")
    assert verdict.passed
    assert verdict.detail == (
        "DescribeLimits could not be read (ThrottlingException: Rate exceeded); AWS refuses a reshard that would "
        "pass the account's shard quota itself, so the step goes ahead unchecked here"
    )


# The reshard's gather: CloudTrail and DescribeLimits, answered as AWS documents them -----------------------------
# moto implements DescribeLimits but not CloudTrail's LookupEvents: both are answered here by botocore's Stubber,
# in the shapes of AWS's API reference (LookupEvents: Events[] with EventTime, Username, Resources[] and
# CloudTrailEvent, the JSON record as a string, newest first; NextToken while more remain).
def trail_event(minutes_ago: float, stream: str = "orders", *, error: str | None = None, by_arn: bool = False):
    request: dict[str, Any] = {"targetShardCount": 8, "scalingType": "UNIFORM_SCALING"}
    request |= {"streamARN": stream_arn(stream)} if by_arn else {"streamName": stream}
    record: dict[str, Any] = {
        "eventVersion": "1.08",
        "eventTime": (NOW - timedelta(minutes=minutes_ago)).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "eventSource": "kinesis.amazonaws.com",
        "eventName": "UpdateShardCount",
        "awsRegion": REGION,
        "requestParameters": request,
        "readOnly": False,
        "eventType": "AwsApiCall",
        "managementEvent": True,
        "eventCategory": "Management",
    }
    if error:
        record |= {"errorCode": error, "errorMessage": "Rate exceeded"}
    return {
        "EventId": f"e-{minutes_ago}",
        "EventName": "UpdateShardCount",
        "ReadOnly": "false",
        "EventTime": NOW - timedelta(minutes=minutes_ago),
        "EventSource": "kinesis.amazonaws.com",
        "Username": "alice",
        "Resources": [] if by_arn else [{"ResourceType": "AWS::Kinesis::Stream", "ResourceName": stream}],
        "CloudTrailEvent": json.dumps(record),
    }


def stubbed(service: str) -> tuple[Any, Stubber]:
    client = boto3.client(service, region_name=REGION, aws_access_key_id="testing", aws_secret_access_key="testing")
    return client, Stubber(client)


def lookup_params(token: str | None = None) -> dict[str, Any]:
    params: dict[str, Any] = {
        "LookupAttributes": [{"AttributeKey": "EventName", "AttributeValue": "UpdateShardCount"}],
        "StartTime": NOW - timedelta(hours=24),
        "EndTime": NOW,
        "MaxResults": 50,
    }
    return params | ({"NextToken": token} if token else {})


def gather_with(cloudtrail_stub: Stubber, kinesis_stub: Stubber, clients: dict[str, Any]) -> dict[str, Any]:
    ports = DeclaredOnly(AwsServices(lambda name: clients[name]), RESHARD.read_iam_actions, "reshard", read_only=True)
    with cloudtrail_stub, kinesis_stub:
        facts = RESHARD.gather(policy(), evidence(shards=4).stream, ports, now=NOW)
        cloudtrail_stub.assert_no_pending_responses()
        kinesis_stub.assert_no_pending_responses()
    return facts


def test_gather_counts_this_streams_accepted_update_shard_count_calls_over_every_page():
    # Given two pages of UpdateShardCount events: ours by name and by ARN, another stream's, and a refused call
    trail, trail_stub = stubbed("cloudtrail")
    kinesis, kinesis_stub = stubbed("kinesis")
    first = {"Events": [trail_event(10), trail_event(20, "payments")], "NextToken": "page-2"}
    second = {"Events": [trail_event(30, by_arn=True), trail_event(40, error="LimitExceededException")]}
    trail_stub.add_response("lookup_events", first, lookup_params())
    trail_stub.add_response("lookup_events", second, lookup_params("page-2"))
    limits = {"ShardLimit": 500, "OpenShardCount": 120, "OnDemandStreamCount": 0, "OnDemandStreamCountLimit": 50}
    kinesis_stub.add_response("describe_limits", limits, {})
    # When the reshard gathers its facts
    facts = gather_with(trail_stub, kinesis_stub, {"cloudtrail": trail, "kinesis": kinesis})
    # Then it keeps the two accepted calls on 'orders', with when and by whom, and the account's quota
    assert facts == {
        "cloudtrail": {
            "events": [
                {"at": (NOW - timedelta(minutes=10)).isoformat(), "target": 8, "by": "alice"},
                {"at": (NOW - timedelta(minutes=30)).isoformat(), "target": 8, "by": "alice"},
            ],
            "pages": 2,
            "complete": True,
        },
        "limits": {"shard_limit": 500, "open_shards": 120},
    }


def test_gather_turns_failed_reads_into_facts():
    # Given CloudTrail denies the read and DescribeLimits is throttled
    trail, trail_stub = stubbed("cloudtrail")
    kinesis, kinesis_stub = stubbed("kinesis")
    trail_stub.add_client_error("lookup_events", "AccessDeniedException", "not authorized", 400, lookup_params())
    kinesis_stub.add_client_error("describe_limits", "LimitExceededException", "Rate exceeded", 400, {})
    # When the reshard gathers its facts
    facts = gather_with(trail_stub, kinesis_stub, {"cloudtrail": trail, "kinesis": kinesis})
    # Then each failure is a fact the checks name
    assert facts == {
        "cloudtrail_error": "AccessDeniedException: not authorized",
        "limits_error": "LimitExceededException: Rate exceeded",
    }


def test_gather_may_only_read_what_the_reshard_declares():
    # Given a read view limited to the reshard's read grants
    ports = DeclaredOnly(AwsServices(lambda name: None), RESHARD.read_iam_actions, "reshard", read_only=True)
    # Then a mutating call through it is refused before AWS is reached
    with pytest.raises(PermissionError, match="may only read"):
        ports.service("kinesis").call("UpdateShardCount", StreamName="orders")
    assert RESHARD.read_iam_actions == {"cloudtrail:LookupEvents", "kinesis:DescribeLimits"}


def test_a_scale_up_of_a_stream_above_its_ceiling_is_never_proposed_but_a_scale_in_towards_it_is_allowed():
    # Given 20 shards, a ceiling of 16, and little traffic
    step = scale_in_plan(quiet(shards=20, bytes_per_second=1_000_000), facts={"limits": LIMITS}, max_shards=16)
    # Then it comes down towards the ceiling
    assert step.parameters["target_shards"] == 10
    assert next(v for v in step.guardrails if v.name == "policy-bounds").detail == "10 within [1, 16]"


def test_action_gather_defaults_to_nothing():
    # Given an action that declares no reads
    action = REGISTRY.actions["raise-retention"]
    assert action.read_grants == ()
    assert action.gather(policy(), evidence().stream, DeclaredOnly(AwsServices(lambda n: None), frozenset(), "x")) == {}


def test_proposal_shape_keeps_the_contract_fields():
    # current, desired and target: what follow-through reads to see whether more is to do
    context = ValidationContext(policy=policy(), evidence=quiet(shards=8), history=ActionHistory(), now=NOW)
    shaped = RESHARD.shape(Proposal(action="reshard", parameters={"desired_shards": 1}, reason="r"), context)
    assert shaped.parameters == {"current_shards": 8, "desired_shards": 1, "target_shards": 4}


def test_the_email_names_the_window_the_symptom_read():
    # Given an under-utilised plan (two hours of evidence)
    from remediator.core import render

    plan = make_plan(
        alarm_name="kinesis-remediator-orders/under-utilised",
        symptom="under-utilised",
        policy=policy(reshard={"scale_in": True}),
        evidence=quiet(),
        history=ActionHistory(),
        now=NOW,
    )
    # Then its e-mail says the evidence covers two hours, not the default 15 minutes
    assert "Evidence (CloudWatch, last 120 minutes)" in render.body(plan, "dry-run").splitlines()
