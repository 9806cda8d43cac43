"""Follow-through's pure decision: is a follow-up of the same alarm state change needed, and when."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from remediator.core.alarm import AlarmResolved
from remediator.core.follow_through import (
    MAX_CHAIN,
    MAX_FOLLOW_UPS,
    MIN_LEAD,
    POLL_INTERVAL,
    SETTLE,
    Decision,
    StepFacts,
    decide,
    evidence_since,
    parse_timestamp,
    recheck_wait,
    schedule_name,
    step_facts,
)
from remediator.core.history import ActionHistory, PastAction
from remediator.core.outcome import AuditEntry, OutcomeStatus, StepOutcome, StepResult
from remediator.core.planner import make_plan
from remediator.core.policy import Mode
from remediator.core.registry import REGISTRY
from remediator.core.resolution import body, duration, subject

from tests.fakes import ACCOUNT, NOW, REGION, evidence, policy

ORIGIN = NOW - timedelta(minutes=5)
APPLIED_MORE = StepFacts(action="reshard", result=StepResult.APPLIED, more_to_do=True)
APPLIED_DONE = StepFacts(action="reshard", result=StepResult.APPLIED)


def blocked(*names: str, cooldown_ends: datetime | None = None) -> StepFacts:
    return StepFacts(
        action="reshard", result=StepResult.BLOCKED, blocked_by=frozenset(names), cooldown_ends=cooldown_ends
    )


def at(delta: timedelta) -> datetime:
    """When a follow-up wanted `delta` from NOW is scheduled: whole seconds, one second late rather than early."""
    return (NOW + delta).replace(microsecond=0) + timedelta(seconds=1)


@pytest.mark.parametrize(
    ("steps", "expected_at", "reason"),
    [
        pytest.param([APPLIED_MORE], at(SETTLE), "reshard applied one step of several", id="applied-more-to-do"),
        pytest.param([APPLIED_DONE], None, "no step left anything", id="applied-reached-desired"),
        pytest.param(
            [blocked("stream-active")], at(POLL_INTERVAL), "blocked only by stream-active", id="updating-polls"
        ),
        pytest.param(
            [blocked("cooldown", cooldown_ends=NOW + timedelta(minutes=20))],
            at(timedelta(minutes=20)),
            "blocked only by cooldown",
            id="cooldown-waits-for-its-end",
        ),
        pytest.param(
            [blocked("cooldown", "stream-active", cooldown_ends=NOW + timedelta(seconds=10))],
            at(POLL_INTERVAL),
            "blocked only by cooldown, stream-active",
            id="cooldown-ending-soon-and-updating",
        ),
        pytest.param(
            [blocked("cooldown", cooldown_ends=NOW + timedelta(seconds=5))],
            at(MIN_LEAD),
            "blocked only by cooldown",
            id="never-closer-than-the-lead",
        ),
        pytest.param([blocked("daily-budget")], None, "no step left anything", id="budget-is-not-transient"),
        pytest.param(
            [blocked("cooldown", "daily-budget", cooldown_ends=NOW)], None, "no step left", id="transient-plus-not"
        ),
        pytest.param([blocked("policy-bounds")], None, "no step left", id="bounds"),
        pytest.param([blocked("aws-daily-scalings")], None, "no step left", id="aws-daily-scalings"),
        pytest.param([blocked("policy-enabled")], None, "no step left", id="disabled-action"),
        pytest.param(
            [StepFacts(action="reshard", result=StepResult.BLOCKED)], None, "no step left", id="kill-switch-blocked"
        ),
        pytest.param(
            [StepFacts(action="reshard", result=StepResult.FAILED)], None, "a step failed", id="failed-never-retried"
        ),
        pytest.param(
            [APPLIED_MORE, StepFacts(action="x", result=StepResult.FAILED)], None, "a step failed", id="any-failure"
        ),
        pytest.param(
            [blocked("stream-active"), APPLIED_MORE],
            at(SETTLE),
            "reshard applied one step of several",
            id="the-earliest-wins",
        ),
        pytest.param([], None, "no step left", id="no-steps"),
    ],
)
def test_when_a_follow_up_is_needed(steps: list[StepFacts], expected_at: datetime | None, reason: str) -> None:
    # Given the steps an enforce trigger just carried out
    # When the decision is made for the alarm's own state change
    decision = decide(mode=Mode.ENFORCE, steps=steps, attempt=0, origin=ORIGIN, now=NOW)
    # Then a follow-up is scheduled exactly when time may lift what stopped the remedy
    assert decision.at == expected_at
    assert decision.attempt == 1
    assert reason in decision.reason
    assert decision.follow_up is (expected_at is not None)


def test_a_dry_run_is_never_followed_through() -> None:
    # Given a dry-run plan whose step would have had more to do
    decision = decide(
        mode=Mode.DRY_RUN, steps=[StepFacts("reshard", StepResult.DRY_RUN)], attempt=0, origin=ORIGIN, now=NOW
    )
    # Then nothing is scheduled
    assert decision == Decision(None, 1, "dry run: nothing changed, so there is nothing to follow through")


@pytest.mark.parametrize(
    ("attempt", "scheduled"),
    [(0, True), (MAX_FOLLOW_UPS - 1, True), (MAX_FOLLOW_UPS, False), (MAX_FOLLOW_UPS + 3, False)],
)
def test_follow_ups_are_bounded_per_alarm_state_change(attempt: int, scheduled: bool) -> None:
    # Given a step with more to do, on the given attempt
    decision = decide(mode=Mode.ENFORCE, steps=[APPLIED_MORE], attempt=attempt, origin=ORIGIN, now=NOW)
    # Then a follow-up is scheduled only while the bound allows one, and the decision says more was needed
    assert decision.follow_up is scheduled
    assert decision.needed
    assert decision.attempt == attempt + 1
    if not scheduled:
        assert decision.reason.endswith(f"the {MAX_FOLLOW_UPS} follow-ups of this alarm state change are used up")


@pytest.mark.parametrize(
    ("alarm_age", "scheduled"),
    [
        (timedelta(minutes=5), True),
        (MAX_CHAIN - SETTLE - timedelta(seconds=2), True),
        (MAX_CHAIN - SETTLE, False),
        (MAX_CHAIN + timedelta(hours=1), False),
    ],
)
def test_follow_through_ends_a_bounded_time_after_the_alarm(alarm_age: timedelta, scheduled: bool) -> None:
    # Given an alarm that went to ALARM `alarm_age` ago, and a step with more to do
    decision = decide(mode=Mode.ENFORCE, steps=[APPLIED_MORE], attempt=1, origin=NOW - alarm_age, now=NOW)
    # Then no follow-up is scheduled later than MAX_CHAIN after the alarm
    assert decision.follow_up is scheduled
    if not scheduled:
        assert "follow-through ends" in decision.reason


@pytest.mark.parametrize(
    ("desired", "target", "bounds", "more"),
    [
        pytest.param(8, 2, {}, True, id="short-of-desired"),
        pytest.param(4, 4, {}, False, id="reached"),
        pytest.param(20, 16, {"max_shards": 16}, False, id="stopped-at-max-shards"),
        pytest.param(20, 8, {"max_shards": 16}, True, id="below-max-shards"),
        pytest.param(1, 4, {"min_shards": 1}, True, id="scale-in-halfway"),
        pytest.param(1, 4, {"min_shards": 4}, False, id="scale-in-stopped-at-min-shards"),
    ],
)
def test_an_applied_reshard_has_more_to_do_until_desired_or_a_policy_bound(
    desired: int, target: int, bounds: dict[str, int], more: bool
) -> None:
    # Given an applied reshard's parameters and the policy's bounds
    action = REGISTRY.actions["reshard"]
    block = action.block(policy(reshard=bounds))
    parameters = {"current_shards": 2, "desired_shards": desired, "target_shards": target}
    # Then it has more to do exactly when the next call could go further within the bounds
    assert action.more_to_do(parameters, block) is more


@pytest.mark.parametrize(
    ("desired", "target", "stabilisation", "wait"),
    [
        pytest.param(8, 4, 60, None, id="scale-up-settles"),
        pytest.param(1, 4, 60, timedelta(minutes=61), id="scale-in-waits-out-its-window"),
        pytest.param(1, 4, 15, timedelta(minutes=16), id="scale-in-shorter-window"),
    ],
)
def test_a_scale_in_follow_up_waits_out_the_stabilisation_window_its_own_step_restarted(
    desired: int, target: int, stabilisation: int, wait: timedelta | None
) -> None:
    # Given an applied reshard with more to do, and the policy's stabilisation window
    action = REGISTRY.actions["reshard"]
    block = action.block(policy(reshard={"stabilisation_minutes": stabilisation}))
    parameters = {"current_shards": 2 * target, "desired_shards": desired, "target_shards": target}
    # When follow-through asks how long the next step waits
    waited = action.next_step_after(parameters, block)
    # Then a scale-up settles for the default time, and a scale-in waits a minute past its window (sooner, the
    # stabilisation-window guardrail would only block it for our own reshard)
    assert waited == wait
    # And the decision schedules the follow-up that far out
    facts = StepFacts(action="reshard", result=StepResult.APPLIED, more_to_do=True, wait=waited)
    decision = decide(mode=Mode.ENFORCE, steps=[facts], attempt=0, origin=ORIGIN, now=NOW)
    assert decision.at == at(wait if wait is not None else SETTLE)


def test_step_facts_read_the_plan_the_outcomes_and_the_cooldown_end() -> None:
    # Given a reshard blocked by the cooldown of a reshard applied 10 minutes ago (30 min cooldown)
    stream_policy = policy(mode="enforce")
    history = ActionHistory([PastAction(action="reshard", stream="orders", at=NOW - timedelta(minutes=10))])
    plan = make_plan(
        alarm_name="a",
        symptom="write-throttling",
        policy=stream_policy,
        evidence=evidence(shards=2, bytes_per_second=6_000_000, throttled_per_minute=50),
        history=history,
        now=NOW,
    )
    outcome = StepOutcome(action="reshard", outcome=StepResult.BLOCKED, detail="cooldown")
    # When its facts are read
    (facts,) = step_facts(plan, [outcome], stream_policy, history)
    # Then they name the cooldown, and when it ends
    assert facts.blocked_by == frozenset({"cooldown"})
    assert facts.cooldown_ends == NOW + timedelta(minutes=20)
    assert not facts.more_to_do


def test_a_follow_up_is_not_held_by_its_own_chains_cooldown_but_is_by_anothers() -> None:
    # Given a reshard this alarm state change applied 3 minutes ago, and one another trigger applied 5 minutes ago
    own = PastAction(action="reshard", stream="orders", at=NOW - timedelta(minutes=3))
    other = PastAction(action="reshard", stream="orders", at=NOW - timedelta(minutes=5))
    stream_policy = policy(mode="enforce")
    needs_more = evidence(shards=4, bytes_per_second=6_000_000, throttled_per_minute=50)

    def cooldown(history: ActionHistory) -> tuple[bool, str]:
        plan = make_plan(
            alarm_name="a",
            symptom="write-throttling",
            policy=stream_policy,
            evidence=needs_more,
            history=history,
            now=NOW,
        )
        verdict = next(v for v in plan.steps[0].guardrails if v.name == "cooldown")
        return verdict.passed, verdict.detail

    # When the follow-up plans with only its own chain's step behind it
    passed, detail = cooldown(ActionHistory([own]).for_chain([own]))
    # Then the cooldown passes, and says why
    assert passed
    assert detail == (
        f"no earlier action (follow-through: the 1 reshard step(s) this alarm state change applied, the last at "
        f"{own.at:%H:%M} UTC, start no cooldown for its own next step)"
    )
    # And the same step outside a follow-through (no chain) is held by it
    assert not cooldown(ActionHistory([own]))[0]
    # And another trigger's step still holds the follow-up
    passed, detail = cooldown(ActionHistory([other, own]).for_chain([own]))
    assert not passed
    assert detail.startswith(f"last reshard at {other.at:%Y-%m-%d %H:%M} UTC; cooldown 30 min ends")
    # And the chain's own steps still spend the daily budget
    budget = ActionHistory([own]).for_chain([own]).count_in_rolling_day("reshard", "orders", NOW)
    assert budget == 1


def test_schedule_names_fit_scheduler_and_tell_attempts_and_state_changes_apart() -> None:
    # Given a deployment's prefix and a long alarm name
    alarm = "kinesis-remediator-" + "s" * 128 + "/write-throttling"
    names = {
        schedule_name("kr-ft-0123abcd-", alarm, ts, attempt)
        for ts in ("2026-11-26T02:59:00.000+0000", "2026-11-26T03:59:00.000+0000")
        for attempt in range(1, MAX_FOLLOW_UPS + 1)
    }
    # Then every name is distinct, within Scheduler's 64 characters of [0-9a-zA-Z-_.], under the prefix
    assert len(names) == 2 * MAX_FOLLOW_UPS
    assert all(len(n) <= 64 and n.startswith("kr-ft-0123abcd-") for n in names)
    assert all(c.isalnum() or c in "-_." for n in names for c in n)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-11-26T02:59:00.000+0000", datetime(2026, 11, 26, 2, 59, tzinfo=UTC)),
        ("2026-11-26T02:59:00+0000", datetime(2026, 11, 26, 2, 59, tzinfo=UTC)),
        ("2026-11-26T02:59:00.250+00:00", datetime(2026, 11, 26, 2, 59, 0, 250_000, tzinfo=UTC)),
    ],
)
def test_alarm_timestamps_parse(text: str, expected: datetime) -> None:
    assert parse_timestamp(text) == expected


def test_a_timestamp_without_a_zone_is_refused() -> None:
    with pytest.raises(ValueError, match="has no time zone"):
        parse_timestamp("2026-11-26T02:59:00")


@pytest.mark.parametrize(
    ("seconds", "text"), [(42, "42 s"), (60, "1 min"), (750, "12 min 30 s"), (7380, "2 h 3 min"), (-5, "0 s")]
)
def test_durations_read_as_people_say_them(seconds: int, text: str) -> None:
    assert duration(timedelta(seconds=seconds)) == text


def test_the_resolved_email_says_what_was_done_and_how_long_recovery_took() -> None:
    # Given an alarm that went back to OK 1 h 5 min after two reshards
    resolved = AlarmResolved(
        alarm_name="kinesis-remediator-orders/write-throttling",
        stream="orders",
        symptom="write-throttling",
        state_timestamp="2026-11-26T04:04:00.000+0000",
        alarm_timestamp="2026-11-26T02:59:00.000+0000",
        account=ACCOUNT,
        region=REGION,
    )
    applied = [
        AuditEntry(
            at=NOW + timedelta(minutes=minutes),
            stream="orders",
            alarm_name=resolved.alarm_name,
            symptom="write-throttling",
            outcome=OutcomeStatus.APPLIED,
            reason="accepted",
            action="reshard",
            parameters={"current_shards": before, "desired_shards": 8, "target_shards": before * 2},
        )
        for minutes, before in ((0, 2), (3, 4))
    ]
    alarm_at, ok_at = parse_timestamp(resolved.alarm_timestamp or ""), parse_timestamp(resolved.state_timestamp)
    # When the e-mail is written
    text = body(resolved, applied, alarm_at, ok_at, cancelled=0)
    # Then its subject and body say what was done and how long recovery took
    assert subject(resolved, ok_at - alarm_at) == "[RESOLVED] orders: write-throttling back to OK after 1 h 5 min"
    assert text.splitlines() == [
        "Kinesis Remediator: resolved. The alarm is back to OK.",
        "",
        "Alarm:     kinesis-remediator-orders/write-throttling",
        "Stream:    orders",
        f"Symptom:   {REGISTRY.symptoms['write-throttling'].title} (write-throttling)",
        "In ALARM:  2026-11-26 02:59:00 UTC",
        "OK:        2026-11-26 04:04:00 UTC",
        "Recovery:  1 h 5 min from ALARM to OK",
        "",
        "What was done (2 step(s) applied while the alarm was in ALARM, from the audit table):",
        "  1. 2026-11-26 03:00:00 UTC  reshard 2 -> 4 shards",
        "  2. 2026-11-26 03:03:00 UTC  reshard 4 -> 8 shards",
    ]


# Recheck: a reshard that reached its target, while the alarm stays in ALARM -------------------------------------
APPLIED_REACHED = StepFacts(action="reshard", result=StepResult.APPLIED, recheck=True)
ALARM_WINDOW = timedelta(minutes=4)


@pytest.mark.parametrize(
    ("steps", "recheck_after", "expected_at", "since", "reason"),
    [
        pytest.param(
            [APPLIED_REACHED],
            ALARM_WINDOW,
            at(SETTLE + ALARM_WINDOW),
            NOW + SETTLE,
            "reshard reached its target; should the alarm still be in ALARM",
            id="reached: look again once the change shows, on the minutes after it",
        ),
        pytest.param(
            [APPLIED_REACHED], None, None, None, "no step left anything", id="the alarm is not known: no recheck"
        ),
        pytest.param([APPLIED_DONE], ALARM_WINDOW, None, None, "no step left anything", id="action asks no recheck"),
        pytest.param(
            [StepFacts(action="reshard", result=StepResult.APPLIED, more_to_do=True, recheck=True)],
            ALARM_WINDOW,
            at(SETTLE),
            None,
            "applied one step of several",
            id="more to do comes first: the usual window",
        ),
        pytest.param(
            [APPLIED_REACHED, blocked("stream-active")],
            ALARM_WINDOW,
            at(POLL_INTERVAL),
            None,
            "blocked only by stream-active",
            id="the earliest wins",
        ),
        pytest.param(
            [StepFacts(action="reshard", result=StepResult.BLOCKED, recheck=True)],
            ALARM_WINDOW,
            None,
            None,
            "no step left",
            id="only an applied step is rechecked",
        ),
    ],
)
def test_a_step_that_reached_its_target_is_rechecked_once_the_alarm_can_show_it(
    steps: list[StepFacts],
    recheck_after: timedelta | None,
    expected_at: datetime | None,
    since: datetime | None,
    reason: str,
) -> None:
    # Given the steps just carried out and the alarm's time to show a change
    # When the decision is made
    decision = decide(mode=Mode.ENFORCE, steps=steps, attempt=0, origin=ORIGIN, now=NOW, recheck_after=recheck_after)
    # Then a recheck is scheduled after the settle time and the alarm's window, reading the minutes after the settle
    assert decision.at == expected_at
    assert decision.evidence_since == since
    assert reason in decision.reason


@pytest.mark.parametrize(
    ("attempt", "alarm_age", "scheduled", "why"),
    [
        (0, timedelta(minutes=5), True, ""),
        (MAX_FOLLOW_UPS - 1, timedelta(minutes=5), True, ""),
        (MAX_FOLLOW_UPS, timedelta(minutes=5), False, "follow-ups of this alarm state change are used up"),
        (1, MAX_CHAIN - SETTLE - ALARM_WINDOW, False, "follow-through ends"),
        (1, MAX_CHAIN - SETTLE - ALARM_WINDOW - timedelta(seconds=2), True, ""),
    ],
)
def test_rechecks_are_within_the_bounds(attempt: int, alarm_age: timedelta, scheduled: bool, why: str) -> None:
    # Given a reshard that reached its target on the given attempt, an alarm `alarm_age` old
    decision = decide(
        mode=Mode.ENFORCE,
        steps=[APPLIED_REACHED],
        attempt=attempt,
        origin=NOW - alarm_age,
        now=NOW,
        recheck_after=ALARM_WINDOW,
    )
    # Then MAX_FOLLOW_UPS and MAX_CHAIN bound rechecks as they bound every follow-up
    assert decision.follow_up is scheduled
    assert decision.needed
    assert why in decision.reason


@pytest.mark.parametrize(
    ("period", "evaluation_periods", "datapoints", "wait"),
    [
        pytest.param(60, 5, 2, timedelta(minutes=4), id="write-throttling default: 4 clean minutes to go OK"),
        pytest.param(60, 5, 3, timedelta(minutes=3), id="3 of 5: 3 minutes either way"),
        pytest.param(60, 5, 5, timedelta(minutes=5), id="5 of 5: the datapoints it judges on"),
        pytest.param(300, 3, 1, timedelta(minutes=15), id="5-minute periods, 1 of 3"),
    ],
)
def test_recheck_waits_as_long_as_the_alarm_needs_to_show_the_change(
    period: int, evaluation_periods: int, datapoints: int, wait: timedelta
) -> None:
    assert recheck_wait(period, evaluation_periods, datapoints) == wait


@pytest.mark.parametrize(
    ("current", "target", "max_shards", "recheck"),
    [
        pytest.param(2, 4, 16, True, id="scale-up below the ceiling"),
        pytest.param(8, 16, 16, False, id="stopped at max_shards: a next call would be refused"),
        pytest.param(4, 2, 16, False, id="scale-in"),
    ],
)
def test_a_reshard_up_asks_for_a_recheck_below_the_ceiling(
    current: int, target: int, max_shards: int, recheck: bool
) -> None:
    action = REGISTRY.actions["reshard"]
    block = action.block(policy(reshard={"max_shards": max_shards}))
    parameters = {"current_shards": current, "desired_shards": target, "target_shards": target}
    assert action.recheck(parameters, block) is recheck


def test_evidence_since_is_the_latest_recheck_of_the_chain() -> None:
    # Given a chain's scheduled follow-ups: a plain one, two rechecks
    rows = [
        {"schedule": "a", "attempt": 1},
        {"schedule": "b", "attempt": 2, "evidence_since": (NOW - timedelta(minutes=20)).isoformat()},
        {"schedule": "c", "attempt": 3},
        {"schedule": "d", "attempt": 4, "evidence_since": (NOW - timedelta(minutes=5)).isoformat()},
    ]
    # Then follow-ups read from the latest recheck's start; without any, the usual window (None)
    assert evidence_since(rows) == NOW - timedelta(minutes=5)
    assert evidence_since(rows[:1]) is None


@pytest.mark.parametrize(
    ("steps", "rechecking", "expected_at", "reason"),
    [
        pytest.param(
            [],
            NOW - timedelta(minutes=5),
            at(ALARM_WINDOW),
            "the recheck found nothing to change yet",
            id="a recheck with no step looks again after the alarm's time",
        ),
        pytest.param([], None, None, "no step left", id="not a recheck: a plan with no step ends the chain"),
        pytest.param(
            [blocked("policy-bounds")],
            NOW - timedelta(minutes=5),
            None,
            "no step left",
            id="a recheck blocked by what time does not lift ends the chain",
        ),
    ],
)
def test_a_recheck_that_finds_nothing_yet_looks_again_while_the_alarm_stays(
    steps: list[StepFacts], rechecking: datetime | None, expected_at: datetime | None, reason: str
) -> None:
    # Given a follow-up that read the minutes since `rechecking` and the steps its plan had
    decision = decide(
        mode=Mode.ENFORCE,
        steps=steps,
        attempt=2,
        origin=ORIGIN,
        now=NOW,
        recheck_after=ALARM_WINDOW,
        rechecking=rechecking,
    )
    # Then it looks again after the alarm's time, reading from the same start, or the chain ends
    assert decision.at == expected_at
    assert reason in decision.reason
    assert decision.evidence_since == (rechecking if expected_at else None)


@pytest.mark.parametrize(
    ("symptom", "wait"),
    [
        pytest.param("write-throttling", timedelta(minutes=4), id="throttling clears once the shards take the load"),
        pytest.param("iterator-age", None, id="iterator age lags the change while the backlog drains: no recheck"),
    ],
)
def test_only_an_alarm_that_shows_the_change_at_once_is_rechecked(symptom: str, wait: timedelta | None) -> None:
    # Given a trigger of one of the stream's alarms (default detectors)
    from remediator.core.alarm import DEFAULT_ALARM_PREFIX, AlarmTrigger
    from remediator.service import _recheck_after

    trigger = AlarmTrigger(
        alarm_name=f"kinesis-remediator-orders/{symptom}",
        stream="orders",
        symptom=symptom,
        state_timestamp="2026-11-26T02:59:00.000+0000",
        account=ACCOUNT,
        region=REGION,
        reason="test",
    )
    # Then the recheck waits the alarm's own time to clear, or there is none
    assert _recheck_after(trigger, policy(), DEFAULT_ALARM_PREFIX) == wait
