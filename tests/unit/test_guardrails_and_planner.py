"""Planner and guardrails: (alarm, policy, evidence, history) -> plan, with every guardrail's verdict."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any, ClassVar

import pytest
from pydantic import Field
from remediator.core.actions.base import Action, ValidationContext
from remediator.core.alarm import DEFAULT_ALARM_PREFIX, alarm_name
from remediator.core.evidence import Evidence
from remediator.core.grants import STREAM, IamGrant
from remediator.core.guardrails import evaluate
from remediator.core.history import ActionHistory, PastAction
from remediator.core.metrics import MissingData
from remediator.core.plan import Cause, Diagnosis, GuardrailVerdict, Plan, PlannedStep, Proposal
from remediator.core.planner import make_plan
from remediator.core.policy import ActionPolicy, DetectorPolicy, Mode, StreamPolicy
from remediator.core.registry import REGISTRY
from remediator.core.symptoms.base import AlarmSpec, Symptom
from remediator.core.symptoms.write_throttling import WRITE_THROTTLED

from tests.fakes import GUARDRAIL_ORDER, NOW, SCALE_IN_GUARDRAILS, evidence, policy, stream_arn

ALARM = alarm_name(DEFAULT_ALARM_PREFIX, "orders", "write-throttling")
ARN = stream_arn("orders")
RESHARD = REGISTRY.actions["reshard"]
CLI_2_TO_4 = (
    "aws kinesis update-shard-count --stream-arn arn:aws:kinesis:us-east-1:123456789012:stream/orders "
    "--target-shard-count 4 --scaling-type UNIFORM_SCALING"
)


def saturated(**overrides: Any) -> Evidence:
    """2 shards at 95% peak: the write-throttling diagnosis proposes a reshard 2 -> 4."""
    return evidence(**{"shards": 2, "bytes_per_second": 1_900_000, "throttled_per_minute": 10, **overrides})


def plan_for(
    p: StreamPolicy | None = None,
    ev: Evidence | None = None,
    history: ActionHistory | None = None,
    now: datetime = NOW,
    symptom: str = "write-throttling",
) -> Plan:
    return make_plan(
        alarm_name=ALARM,
        symptom=symptom,
        policy=p or policy(),
        evidence=ev or saturated(),
        history=history or ActionHistory(),
        now=now,
    )


def verdicts(plan: Plan) -> dict[str, GuardrailVerdict]:
    (step,) = plan.steps
    return {v.name: v for v in step.guardrails}


def reshards_ago(*minutes_ago: float, stream: str = "orders", action: str = "reshard") -> ActionHistory:
    return ActionHistory(
        PastAction(action=action, stream=stream, at=NOW - timedelta(minutes=m), parameters={"target_shards": 2})
        for m in minutes_ago
    )


# The happy path ------------------------------------------------------------------------------------
def test_saturated_stream_with_clean_history_gets_one_allowed_action() -> None:
    # Given a saturated 2-shard stream, a default policy and no history
    plan = plan_for()
    # Then one reshard 2 -> 4 passes every guardrail, in a fixed order, each with its detail
    assert plan.diagnosis.cause == Cause.SATURATED
    assert [s.action for s in plan.actions] == ["reshard"]
    assert plan.blocked == []
    (step,) = plan.steps
    assert step.allowed is True
    assert step.stream == "orders"
    assert step.stream_arn == ARN
    assert step.parameters == {"current_shards": 2, "desired_shards": 4, "target_shards": 4}
    assert step.summary == "reshard 2 -> 4 shards"
    assert step.cli_command == CLI_2_TO_4
    assert [(v.name, v.passed, v.detail) for v in step.guardrails] == [
        ("policy-enabled", True, "enabled in the policy"),
        ("stream-active", True, "stream status is ACTIVE"),
        ("cooldown", True, "no earlier action"),
        ("daily-budget", True, "0 of 4 reshard actions used in the last 24 h"),
        ("provisioned-mode", True, "stream is PROVISIONED"),
        ("aws-step-limit", True, "2 -> 4; allowed range 1–4 (one call: half to double)"),
        ("aws-max-shards", True, "4 of at most 10,000 shards per stream"),
        ("policy-bounds", True, "4 within [1, 16]"),
        (
            "aws-daily-scalings",
            True,
            "0 of AWS's 10 scalings used in the last 24 h (the remediator's audit: 0; CloudTrail was not read)",
        ),
        (
            "account-shard-quota",
            True,
            "DescribeLimits was not read; AWS refuses a reshard that would pass the account's shard quota itself, "
            "so the step goes ahead unchecked here",
        ),
    ]
    assert step.blocking_reasons == []


def test_plan_carries_the_alarm_the_mode_and_the_time() -> None:
    plan = plan_for(policy(mode="enforce"))
    assert (plan.stream, plan.symptom, plan.mode, plan.alarm_name, plan.created_at) == (
        "orders",
        "write-throttling",
        Mode.ENFORCE,
        "kinesis-remediator-orders/write-throttling",
        NOW,
    )
    assert plan_for().mode is Mode.DRY_RUN


def test_advice_only_diagnosis_has_no_steps() -> None:
    plan = plan_for(ev=evidence(shards=4, bytes_per_second=400_000, throttled_per_minute=3))
    assert plan.diagnosis.cause == "hot-shard-or-bursts"
    assert (plan.steps, plan.actions, plan.blocked) == ((), [], [])


# Cooldown ------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("cooldown", "minutes_ago", "passed", "detail"),
    [
        pytest.param(
            30,
            1,
            False,
            "last reshard at 2026-11-26 02:59 UTC; cooldown 30 min ends 03:29 UTC",
            id="1 min ago",
        ),
        pytest.param(
            30,
            29,
            False,
            "last reshard at 2026-11-26 02:31 UTC; cooldown 30 min ends 03:01 UTC",
            id="29 min ago",
        ),
        pytest.param(
            30,
            30,
            True,
            "last reshard at 2026-11-26 02:30 UTC; cooldown 30 min has passed",
            id="exactly 30 min",
        ),
        pytest.param(30, 45, True, "last reshard at 2026-11-26 02:15 UTC; cooldown 30 min has passed", id="45 min ago"),
        pytest.param(
            60,
            45,
            False,
            "last reshard at 2026-11-26 02:15 UTC; cooldown 60 min ends 03:15 UTC",
            id="60-min policy",
        ),
    ],
)
def test_cooldown(cooldown: int, minutes_ago: int, passed: bool, detail: str) -> None:
    # Given a reshard applied `minutes_ago` and a policy cooldown
    plan = plan_for(policy(reshard={"cooldown_minutes": cooldown}), history=reshards_ago(minutes_ago))
    # Then the cooldown guardrail blocks within the window and passes from its end on
    assert verdicts(plan)["cooldown"] == GuardrailVerdict(name="cooldown", passed=passed, detail=detail)
    assert len(plan.actions) == (1 if passed else 0)
    assert len(plan.blocked) == (0 if passed else 1)


def test_cooldown_uses_the_latest_of_several_actions() -> None:
    plan = plan_for(history=reshards_ago(200, 10, 100))
    assert verdicts(plan)["cooldown"].detail == ("last reshard at 2026-11-26 02:50 UTC; cooldown 30 min ends 03:20 UTC")


@pytest.mark.parametrize(
    "history",
    [
        pytest.param(reshards_ago(1, stream="payments"), id="other stream"),
        pytest.param(reshards_ago(1, action="retention"), id="other action"),
    ],
)
def test_cooldown_and_budget_ignore_other_streams_and_actions(history: ActionHistory) -> None:
    v = verdicts(plan_for(history=history))
    assert (v["cooldown"].passed, v["cooldown"].detail) == (True, "no earlier action")
    assert (v["daily-budget"].passed, v["aws-daily-scalings"].passed) == (True, True)


# Daily budget and AWS's 10 per 24 h ----------------------------------------------------------------
@pytest.mark.parametrize(
    ("budget", "minutes_ago", "passed", "detail"),
    [
        pytest.param(4, (60, 120, 180), True, "3 of 4 reshard actions used in the last 24 h", id="3 of 4"),
        pytest.param(4, (60, 120, 180, 240), False, "4 of 4 reshard actions used in the last 24 h", id="4 of 4"),
        pytest.param(
            4,
            (60, 120, 180, 24 * 60 + 1),
            True,
            "3 of 4 reshard actions used in the last 24 h",
            id="one aged out",
        ),
        pytest.param(
            2,
            (60, 23 * 60 + 59),
            False,
            "2 of 2 reshard actions used in the last 24 h",
            id="23:59 ago still counts",
        ),
        pytest.param(0, (), False, "0 of 0 reshard actions used in the last 24 h", id="budget 0 never acts"),
    ],
)
def test_daily_budget(budget: int, minutes_ago: tuple[int, ...], passed: bool, detail: str) -> None:
    plan = plan_for(policy(reshard={"daily_budget": budget}), history=reshards_ago(*minutes_ago))
    assert verdicts(plan)["daily-budget"] == GuardrailVerdict(name="daily-budget", passed=passed, detail=detail)


@pytest.mark.parametrize(
    ("count", "passed"),
    [pytest.param(9, True, id="9 used"), pytest.param(10, False, id="10 used")],
)
def test_aws_ten_scalings_per_rolling_day(count: int, passed: bool) -> None:
    # Given `count` reshards applied in the last 24 h (more than a policy budget could allow, e.g. from an
    # earlier policy version)
    history = reshards_ago(*(60 + 60 * i for i in range(count)))
    # When a reshard is planned
    plan = plan_for(policy(reshard={"daily_budget": 8}), history=history)
    # Then AWS's own limit is checked independently of the policy's budget
    assert verdicts(plan)["aws-daily-scalings"] == GuardrailVerdict(
        name="aws-daily-scalings",
        passed=passed,
        detail=f"{count} of AWS's 10 scalings used in the last 24 h (the remediator's audit: {count}; "
        "CloudTrail was not read)",
    )
    assert verdicts(plan)["daily-budget"].passed is False
    assert plan.actions == []


# Stream state, mode, policy ------------------------------------------------------------------------
@pytest.mark.parametrize("status", ["UPDATING", "CREATING", "DELETING"])
def test_stream_not_active_blocks(status: str) -> None:
    plan = plan_for(ev=saturated(status=status))
    assert plan.actions == []
    (blocked,) = plan.blocked
    assert blocked.blocking_reasons == [f"stream-active: stream status is {status}"]


def test_on_demand_stream_gets_no_step_from_the_planner() -> None:
    plan = plan_for(ev=saturated(mode="ON_DEMAND"))
    assert plan.diagnosis.cause == Cause.ON_DEMAND
    assert plan.steps == ()


def test_provisioned_mode_guardrail_blocks_a_reshard_of_an_on_demand_stream() -> None:
    # Given a reshard step for a stream that is (by now) on-demand: the planner never proposes one, so
    # the step is built by hand to check the action's own guardrail
    ev = saturated(mode="ON_DEMAND")
    step = step_for(target=4)
    # When the guardrails evaluate it
    checked = evaluate(step, context(ev))
    # Then the provisioned-mode verdict stops it
    assert checked.allowed is False
    assert checked.blocking_reasons == ["provisioned-mode: stream is ON_DEMAND; on-demand streams are never resharded"]


def test_disabled_action_is_proposed_but_blocked() -> None:
    plan = plan_for(policy(reshard={"enabled": False}))
    assert plan.actions == []
    (blocked,) = plan.blocked
    assert blocked.blocking_reasons == ["policy-enabled: actions.reshard.enabled is false"]


def test_already_at_max_shards_is_blocked_by_policy_bounds() -> None:
    # Given a saturated stream already at the policy's maximum
    plan = plan_for(policy(reshard={"max_shards": 16}), ev=saturated(shards=16, bytes_per_second=15_000_000))
    # Then the step goes nowhere and policy-bounds says why
    (blocked,) = plan.blocked
    assert blocked.parameters["target_shards"] == 16
    assert blocked.blocking_reasons == ["policy-bounds: already at 16 shards, the most the bounds allow"]


def test_several_guardrails_fail_together_and_all_are_reported() -> None:
    plan = plan_for(
        policy(reshard={"enabled": False}),
        ev=saturated(status="UPDATING"),
        history=reshards_ago(5, 10, 15, 20),
    )
    (blocked,) = plan.blocked
    assert blocked.blocking_reasons == [
        "policy-enabled: actions.reshard.enabled is false",
        "stream-active: stream status is UPDATING",
        "cooldown: last reshard at 2026-11-26 02:55 UTC; cooldown 30 min ends 03:25 UTC",
        "daily-budget: 4 of 4 reshard actions used in the last 24 h",
    ]


def test_scale_up_towards_min_shards_is_allowed() -> None:
    # Given a saturated 2-shard stream whose policy floor is 8 (e.g. the floor was raised after creation)
    plan = plan_for(policy(reshard={"min_shards": 8}))
    # Then the step 2 -> 4 goes in the right direction and within one call's reach: it is allowed
    assert [s.parameters["target_shards"] for s in plan.actions] == [4]


# Action-specific limits on hand-built steps --------------------------------------------------------
def step_for(target: int, current: int = 2) -> PlannedStep:
    parameters = {"current_shards": current, "desired_shards": target, "target_shards": target}
    return PlannedStep(
        action="reshard",
        stream="orders",
        stream_arn=ARN,
        parameters=parameters,
        reason="test",
        summary=RESHARD.summary(parameters),
        cli_command=RESHARD.cli_command(ARN, parameters),
    )


def context(ev: Evidence, p: StreamPolicy | None = None, history: ActionHistory | None = None) -> ValidationContext:
    return ValidationContext(policy=p or policy(), evidence=ev, history=history or ActionHistory(), now=NOW)


@pytest.mark.parametrize(
    ("shards", "target", "max_shards", "reasons"),
    [
        pytest.param(2, 5, 16, ["aws-step-limit: 2 -> 5; allowed range 1–4 (one call: half to double)"], id="above 2x"),
        pytest.param(
            10,
            4,
            16,
            [
                "aws-step-limit: 10 -> 4; allowed range 5–20 (one call: half to double)",
                # A scale-in is checked on more: it is opt-in, and the saturated evidence is anything but calm.
                "scale-in-enabled: removing shards is opt-in: set `scale_in: true` under the stream's "
                "`actions.reshard` and deploy the policy",
                "stabilisation-window: not calm for 60 minutes: the evidence covers 15 minutes, fewer than the "
                "60-minute window; 150 throttled writes "
                "(WriteProvisionedThroughputExceeded); the evidence has no series for polling consumers "
                "(GetRecords.IteratorAgeMilliseconds): the calm cannot be shown",
            ],
            id="below half",
        ),
        pytest.param(
            4,
            20,
            16,
            [
                "aws-step-limit: 4 -> 20; allowed range 2–8 (one call: half to double)",
                "policy-bounds: 20 is above max_shards 16",
            ],
            id="above 2x and max_shards",
        ),
        pytest.param(
            6_000,
            10_001,
            10_000,
            [
                "aws-max-shards: 10001 of at most 10,000 shards per stream",
                "policy-bounds: 10001 is above max_shards 10000",
            ],
            id="above 10,000",
        ),
    ],
)
def test_action_limits(shards: int, target: int, max_shards: int, reasons: list[str]) -> None:
    checked = evaluate(
        step_for(target, shards),
        context(saturated(shards=shards), policy(reshard={"max_shards": max_shards})),
    )
    assert checked.blocking_reasons == reasons
    assert [v.name for v in checked.guardrails] == GUARDRAIL_ORDER + (SCALE_IN_GUARDRAILS if target < shards else [])


# Report and CLI ------------------------------------------------------------------------------------
def test_as_report_shape() -> None:
    # Given one allowed plan and one blocked plan
    allowed = plan_for().as_report()
    blocked = plan_for(policy(reshard={"enabled": False})).as_report()
    # Then the report is plain JSON with these keys
    for report in (allowed, blocked):
        assert json.loads(json.dumps(report)) == report
        assert list(report) == [
            "stream",
            "symptom",
            "mode",
            "alarm_name",
            "created_at",
            "diagnosis",
            "actions",
            "blocked",
            "advice",
            "cost",
        ]
        assert (report["stream"], report["symptom"], report["mode"]) == (
            "orders",
            "write-throttling",
            "dry-run",
        )
        assert report["created_at"] == "2026-11-26T03:00:00+00:00"
        assert report["diagnosis"]["cause"] == "shards-saturated"
        assert list(report["diagnosis"]) == ["cause", "summary", "figures"]
        assert report["diagnosis"]["figures"][0] == {"name": "open shards", "value": 2.0, "unit": ""}
        assert report["advice"] == []
    (action,) = allowed["actions"]
    assert allowed["blocked"] == []
    assert list(action) == [
        "action",
        "summary",
        "parameters",
        "changes",
        "reason",
        "cli_command",
        "guardrails",
        "cost",
    ]
    assert action["changes"] == [{"setting": "open shards", "before": 2, "after": 4}]
    assert action["action"] == "reshard"
    assert action["summary"] == "reshard 2 -> 4 shards"
    assert action["parameters"] == {"current_shards": 2, "desired_shards": 4, "target_shards": 4}
    assert action["cli_command"] == CLI_2_TO_4
    assert [g["name"] for g in action["guardrails"]] == GUARDRAIL_ORDER
    assert action["guardrails"][0] == {
        "name": "policy-enabled",
        "passed": True,
        "detail": "enabled in the policy",
    }
    assert blocked["actions"] == []
    # A blocked step shows what it would cost; the plan's after leaves it out (tests/unit/test_cost.py)
    assert blocked["blocked"][0].pop("cost")["monthly_after_usd"] == allowed["actions"][0]["cost"]["monthly_after_usd"]
    assert blocked["cost"]["monthly_after_usd"] == blocked["cost"]["monthly_before_usd"]
    assert blocked["blocked"] == [
        {
            "action": "reshard",
            "summary": "reshard 2 -> 4 shards",
            "parameters": {"current_shards": 2, "desired_shards": 4, "target_shards": 4},
            "changes": [{"setting": "open shards", "before": 2, "after": 4}],
            "cli_command": CLI_2_TO_4,
            "reasons": ["policy-enabled: actions.reshard.enabled is false"],
        }
    ]


def test_as_report_lists_advice() -> None:
    report = plan_for(ev=evidence(shards=4, bytes_per_second=400_000, throttled_per_minute=3)).as_report()
    assert [a["title"] for a in report["advice"]] == [
        "Find out: enable shard-level metrics",
        "Spread the partition keys",
        "Batch and back off",
    ]
    assert list(report["advice"][0]) == ["title", "detail", "cli_command"]


def test_cli_command_text() -> None:
    arn = "arn:aws:kinesis:eu-west-1:210987654321:stream/clicks.v2"
    assert RESHARD.cli_command(arn, {"target_shards": 12}) == (
        "aws kinesis update-shard-count --stream-arn arn:aws:kinesis:eu-west-1:210987654321:stream/clicks.v2 "
        "--target-shard-count 12 --scaling-type UNIFORM_SCALING"
    )


def test_mismatched_evidence_and_policy_raise() -> None:
    with pytest.raises(ValueError, match=r"^evidence is for stream 'payments', policy for 'orders'$"):
        plan_for(policy("orders"), ev=saturated(name="payments"))


class ProposesTheUnknown(Symptom[DetectorPolicy]):
    id = "toy-proposes-the-unknown"
    title = "asks for an action nobody registered"
    meaning = "A symptom whose diagnosis names an action that does not exist."
    detector_schema = DetectorPolicy

    def alarms(self, policy: StreamPolicy, detector: DetectorPolicy) -> list[AlarmSpec]:
        return [self.alarm(detector, WRITE_THROTTLED.on(StreamName=policy.name), 1, missing_data=MissingData.IGNORE)]

    def diagnose(self, evidence: Evidence, policy: StreamPolicy) -> Diagnosis:
        return Diagnosis(
            cause="toy", summary="toy", proposals=(Proposal(action="teleport", parameters={}, reason="toy"),)
        )


def test_a_proposal_of_an_unregistered_action_is_an_error_not_a_silent_skip() -> None:
    # Given a symptom whose diagnosis proposes an action that is not registered
    # When it is planned
    # Then the planner refuses, naming the symptom and the action
    unknown = r"^symptom 'toy-proposes-the-unknown' proposed 'teleport', which is not a registered action$"
    with REGISTRY.registered(ProposesTheUnknown), pytest.raises(LookupError, match=unknown):
        plan_for(symptom="toy-proposes-the-unknown")


def test_iterator_age_plan() -> None:
    plan = plan_for(ev=saturated(iterator_age_ms=120_000), symptom="iterator-age")
    assert plan.symptom == "iterator-age"
    assert [s.parameters["target_shards"] for s in plan.actions] == [4]


# History -------------------------------------------------------------------------------------------
def test_history_is_ordered_by_time_whatever_the_input_order() -> None:
    history = reshards_ago(10, 300, 60)
    last = history.last_applied("reshard", "orders")
    assert last is not None
    assert last.at == NOW - timedelta(minutes=10)
    assert history.last_applied("reshard", "payments") is None
    assert history.count_in_rolling_day("reshard", "orders", NOW) == 3
    assert [a.at for a in history.applied_since("reshard", "orders", NOW - timedelta(minutes=60))] == [
        NOW - timedelta(minutes=60),
        NOW - timedelta(minutes=10),
    ]


def test_steps_of_one_plan_spend_the_daily_budget_in_turn() -> None:
    # Given an action with one application left in its daily budget, and a symptom proposing it twice

    class TwiceBudget(ActionPolicy):
        daily_budget: int = Field(1, ge=0, le=10, description="One a day.")

    class Twice(Action[TwiceBudget]):
        id = "twice"
        title = "twice"
        policy_schema = TwiceBudget
        grants = (IamGrant(("kinesis:AddTagsToStream",), STREAM, "toy"),)
        sample_parameters: ClassVar[dict[str, Any]] = {"n": 1}

        def checks(self, step: PlannedStep, context: ValidationContext) -> list[GuardrailVerdict]:
            return []

        def apply(self, step: PlannedStep, aws: Any) -> dict[str, Any]:
            return {}

        def cli_command(self, stream_arn: str, parameters: dict[str, Any]) -> str:
            return "aws kinesis add-tags-to-stream"

        def summary(self, parameters: dict[str, Any]) -> str:
            return f"step {parameters['n']}"

    class ProposesTwice(Symptom[DetectorPolicy]):
        id = "proposes-twice"
        title = "proposes twice"
        meaning = "A toy."
        detector_schema = DetectorPolicy

        def alarms(self, policy: Any, detector: DetectorPolicy) -> list[Any]:
            return []

        def diagnose(self, evidence: Any, policy: Any) -> Diagnosis:
            steps = tuple(Proposal(action="twice", parameters={"n": n}, reason="toy") for n in (1, 2))
            return Diagnosis(cause="toy", summary="toy", proposals=steps)

    with REGISTRY.registered(ProposesTwice, Twice):
        # When the plan is made
        plan = make_plan(
            alarm_name="a",
            symptom="proposes-twice",
            policy=policy(),
            evidence=evidence(),
            history=ActionHistory(),
            now=NOW,
        )
    # Then the first step spends the budget and the second is blocked by it, not by a cooldown
    first, second = plan.steps
    assert first.allowed
    assert not second.allowed
    assert second.blocking_reasons == ["daily-budget: 1 of 1 twice actions used in the last 24 h"]
