"""Scale-in through a night: the under-utilised diagnosis means what its alarm means (same window, periods, threshold
and M of N), and a "not yet" is looked at again while the alarm stays in ALARM (core.follow_through, `look_again`),
within the longer bounds of such a chain; every other end of a chain is as before."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from remediator.core.evidence import Evidence
from remediator.core.follow_through import (
    LOOK_AGAIN_MAX_CHAIN,
    LOOK_AGAIN_MAX_FOLLOW_UPS,
    LOOK_AGAIN_MIN_INTERVAL,
    MAX_CHAIN,
    MAX_FOLLOW_UPS,
    POLL_INTERVAL,
    FollowUp,
    StepFacts,
    bounds,
    decide,
    look_again_interval,
)
from remediator.core.outcome import StepResult
from remediator.core.plan import Cause
from remediator.core.policy import Mode
from remediator.core.registry import REGISTRY
from remediator.core.symptoms.under_utilised import judge

from tests.fakes import ACCOUNT, NOW, REGION, evidence, policy

UNDER = REGISTRY.symptoms["under-utilised"]
RESHARD = REGISTRY.actions["reshard"]
HOUR = timedelta(hours=1)
ORIGIN = NOW - timedelta(minutes=5)
MB = 1_000_000


def at(delta: timedelta) -> datetime:
    """When a follow-up wanted `delta` from NOW is scheduled: whole seconds, one second late rather than early."""
    return (NOW + delta).replace(microsecond=0) + timedelta(seconds=1)


def load(shards: int, *mb_per_s: float, records_per_s: float | None = None) -> Evidence:
    """Two hours of evidence, one value a minute (oldest first), in 1 KB records unless `records_per_s` says."""
    base = evidence(shards=shards, minutes=120, iterator_age_ms=1_000)
    rates = [r * MB for r in mb_per_s]
    series = dict(base.series)
    series["incoming_bytes"] = tuple(r * 60 for r in rates)
    series["incoming_records"] = tuple((records_per_s if records_per_s is not None else r / 1_000) * 60 for r in rates)
    return base.model_copy(update={"series": series, "window_minutes": 120})


# The diagnosis judges what the alarm judges ---------------------------------------------------------------------
@pytest.mark.parametrize(
    ("rates", "detector", "cause", "desired"),
    [
        pytest.param(
            [2.6] * 60 + [1.9] * 60, {}, "shards-under-utilised", 4,
            id="evening: hour before at 37%, alarm's hour at 27% of 7 -> 4 (the defect: was 'no shard to remove')",
        ),
        pytest.param(
            [1.0] * 55 + [2.2] * 5 + [1.0] * 60, {}, "shards-under-utilised", 2,
            id="a busy 5 minutes 65-61 minutes ago is outside the alarm's hour",
        ),
        pytest.param(
            [1.0] * 110 + [2.2] * 5 + [1.0] * 5, {}, Cause.NOT_REPRODUCED, None,
            id="11 of 12 periods below: the alarm's 12 of 12 is not met: not yet",
        ),
        pytest.param(
            [1.0] * 110 + [2.2] * 5 + [1.0] * 5, {"datapoints_to_alarm": 11}, "shards-under-utilised", 4,
            id="11 of 12 is enough for an 11-of-12 alarm; sized from the busy minute (2.2 MB/s at 60%)",
        ),
        pytest.param(
            [1.0] * 100 + [1.0] * 18 + [3.0] * 2, {}, "shards-under-utilised", 5,
            id="a 2-minute burst keeps its period below 30% but the sizing carries it",
        ),
        pytest.param(
            [2.2] * 120, {"threshold_utilisation": 0.35}, "shards-under-utilised", 4,
            id="the detector's own threshold (35%): 31% is under it",
        ),
        pytest.param(
            [2.2] * 120, {}, Cause.NOT_REPRODUCED, None, id="31% of 7 in every period: not under-utilised",
        ),
        pytest.param(
            [1.0] * 120, {"evaluation_periods": 6, "datapoints_to_alarm": 6}, "shards-under-utilised", 2,
            id="a 30-minute alarm: a 30-minute judgement",
        ),
    ],
)  # fmt: skip
def test_the_diagnosis_calls_under_utilised_exactly_what_the_alarm_does(
    rates: list[float], detector: dict[str, float], cause: str, desired: int | None
) -> None:
    # Given two hours of write load on 7 shards, and the under-utilised detector's settings
    p = policy(detectors={"under_utilised": detector}) if detector else policy()
    # When the symptom diagnoses it
    diagnosis = UNDER.diagnose(load(7, *rates), p)
    # Then it proposes a scale-in exactly when the alarm's window, periods, threshold and M of N say under-utilised,
    # sized from that window's busiest minute at 60 %
    assert diagnosis.cause == cause
    assert [x.parameters for x in diagnosis.proposals] == ([] if desired is None else [{"desired_shards": desired}])


def test_the_judgement_cuts_five_minute_periods_from_the_newest_minute_back() -> None:
    # Given 7 shards: 2.8 MB/s for 62 minutes, then 0.7 MB/s for the last 58
    seen = judge(load(7, *([2.8] * 62 + [0.7] * 58)), UNDER.detector(policy()))
    # Then the hour is 12 periods, the oldest of which holds 2 busy minutes of 5 (mean 1.54 MB/s: 22 %)
    assert (seen.minutes, seen.periods, seen.below, seen.needed) == (60, 12, 12, 12)
    assert seen.highest == pytest.approx((2 * 2.8 + 3 * 0.7) / 5 / 7)
    assert seen.peak == pytest.approx(2.8 / 7)
    assert seen.under_utilised


def test_minutes_without_data_are_no_period_below_the_threshold() -> None:
    # Given only the last 30 minutes of writes in the evidence (CloudWatch left the rest out)
    seen = judge(load(7, *([0.5] * 30)), UNDER.detector(policy()))
    # Then 6 periods are judged, and 6 below of the 12 needed is no under-utilisation (missing data is not breaching)
    assert (seen.periods, seen.below) == (6, 6)
    assert not seen.under_utilised
    assert UNDER.diagnose(load(7, *([0.5] * 30)), policy()).cause == Cause.NOT_REPRODUCED


def test_the_records_share_is_judged_as_the_alarm_judges_it() -> None:
    # Given 7 shards at 0.1 MB/s but 2,500 records/s (36 % of 7,000 records/s)
    diagnosis = UNDER.diagnose(load(7, *([0.1] * 120), records_per_s=2_500), policy())
    # Then it is not under-utilised: the records share is above 30 %
    assert diagnosis.cause == Cause.NOT_REPRODUCED
    assert "below 30% in 0 of the 12 5-minute periods" in diagnosis.summary


# Looking again while the alarm stays in ALARM --------------------------------------------------------------------
def blocked(*names: str, cooldown_ends: datetime | None = None) -> StepFacts:
    return StepFacts(
        action="reshard", result=StepResult.BLOCKED, blocked_by=frozenset(names), cooldown_ends=cooldown_ends
    )


APPLIED_REACHED_IN = StepFacts(action="reshard", result=StepResult.APPLIED, wait=timedelta(minutes=61))
APPLIED_MORE_IN = StepFacts(action="reshard", result=StepResult.APPLIED, more_to_do=True, wait=timedelta(minutes=61))


@pytest.mark.parametrize(
    ("steps", "look_again", "expected_at", "reason"),
    [
        pytest.param([], HOUR, at(HOUR), "the diagnosis found nothing to change yet", id="not-yet-looks-again"),
        pytest.param([], None, None, "no step left", id="a-final-answer-or-another-symptom-does-not"),
        pytest.param(
            [blocked("stabilisation-window")], HOUR, at(HOUR), "not yet: blocked only by stabilisation-window",
            id="stabilisation-window-looks-again",
        ),
        pytest.param(
            [blocked("stabilisation-window")], None, None, "no step left", id="stabilisation-ends-without-look-again",
        ),
        pytest.param(
            [blocked("stabilisation-window", "cooldown", cooldown_ends=NOW + 2 * HOUR)], HOUR, at(2 * HOUR),
            "blocked only by cooldown, stabilisation-window", id="and-a-longer-cooldown-waits-for-its-end",
        ),
        pytest.param(
            [blocked("stabilisation-window", "stream-active")], HOUR, at(HOUR), "stabilisation-window",
            id="and-updating-the-later-wins",
        ),
        pytest.param(
            [blocked("stream-active")], HOUR, at(POLL_INTERVAL), "blocked only by stream-active",
            id="updating-alone-polls-as-before",
        ),
        pytest.param(
            [blocked("stabilisation-window", "scale-in-enabled")], HOUR, None, "no step left", id="opt-in-ends-it",
        ),
        pytest.param([blocked("policy-bounds")], HOUR, None, "no step left", id="min-shards-ends-it"),
        pytest.param([blocked("scale-up-reserve")], HOUR, None, "no step left", id="the-reserve-ends-it"),
        pytest.param(
            [blocked("stabilisation-window", "daily-budget")], HOUR, None, "no step left", id="the-budget-ends-it",
        ),
        pytest.param([blocked("aws-daily-scalings")], HOUR, None, "no step left", id="awss-daily-ends-it"),
        pytest.param(
            [StepFacts(action="reshard", result=StepResult.BLOCKED)], HOUR, None, "no step left",
            id="the-kill-switch-ends-it",
        ),
        pytest.param(
            [StepFacts(action="reshard", result=StepResult.FAILED)], HOUR, None, "a step failed", id="failed-ends-it",
        ),
        pytest.param(
            [APPLIED_REACHED_IN], HOUR, at(timedelta(minutes=61)), "reached its target; while the alarm stays",
            id="reached-looks-again-after-its-own-stabilisation-window",
        ),
        pytest.param(
            [APPLIED_REACHED_IN], 2 * HOUR, at(2 * HOUR), "reached its target", id="or-the-alarms-window-if-longer",
        ),
        pytest.param(
            [StepFacts(action="reshard", result=StepResult.APPLIED)], None, None, "no step left",
            id="reached-without-look-again-ends-as-before",
        ),
        pytest.param(
            [APPLIED_MORE_IN], HOUR, at(timedelta(minutes=61)), "applied one step of several",
            id="more-to-do-as-before",
        ),
    ],
)  # fmt: skip
def test_a_not_yet_is_looked_at_again_and_nothing_else_changes(
    steps: list[StepFacts], look_again: timedelta | None, expected_at: datetime | None, reason: str
) -> None:
    # Given the steps of an under-utilised trigger (or none) and the interval it looks again after (None: it does not)
    # When the decision is made for the alarm's own state change
    decision = decide(mode=Mode.ENFORCE, steps=steps, attempt=0, origin=ORIGIN, now=NOW, look_again=look_again)
    # Then a "not yet" that time may change is looked at again; every other end of a chain is as before
    assert decision.at == expected_at
    assert reason in decision.reason


def test_a_dry_run_never_looks_again() -> None:
    # Given a dry-run plan of a scale-in (or none)
    for steps in ([], [StepFacts("reshard", StepResult.DRY_RUN)]):
        decision = decide(mode=Mode.DRY_RUN, steps=steps, attempt=0, origin=ORIGIN, now=NOW, look_again=HOUR)
        # Then nothing is scheduled
        assert decision.at is None
        assert "dry run" in decision.reason


@pytest.mark.parametrize(
    ("attempt", "alarm_age", "scheduled", "why"),
    [
        pytest.param(0, timedelta(minutes=5), True, "", id="first"),
        pytest.param(MAX_FOLLOW_UPS, timedelta(minutes=5), True, "", id="past-the-scale-up-bound"),
        pytest.param(LOOK_AGAIN_MAX_FOLLOW_UPS - 1, timedelta(minutes=5), True, "", id="last-allowed"),
        pytest.param(
            LOOK_AGAIN_MAX_FOLLOW_UPS, timedelta(minutes=5), False,
            f"the {LOOK_AGAIN_MAX_FOLLOW_UPS} follow-ups of this alarm state change are used up", id="used-up",
        ),
        pytest.param(1, MAX_CHAIN + HOUR, True, "", id="a-night-is-longer-than-6-h"),
        pytest.param(1, LOOK_AGAIN_MAX_CHAIN - HOUR - timedelta(seconds=2), True, "", id="just-within-12-h"),
        pytest.param(1, LOOK_AGAIN_MAX_CHAIN - HOUR, False, "follow-through ends 12:00:00 after", id="past-12-h"),
    ],
)  # fmt: skip
def test_looking_again_is_bounded_by_its_own_longer_bounds(
    attempt: int, alarm_age: timedelta, scheduled: bool, why: str
) -> None:
    # Given a "not yet" on the given attempt, an alarm `alarm_age` old, looking again every hour
    decision = decide(mode=Mode.ENFORCE, steps=[], attempt=attempt, origin=NOW - alarm_age, now=NOW, look_again=HOUR)
    # Then LOOK_AGAIN_MAX_FOLLOW_UPS and LOOK_AGAIN_MAX_CHAIN bound it (the night is longer than the 6 h of MAX_CHAIN)
    assert decision.follow_up is scheduled
    assert decision.needed
    assert why in decision.reason


def test_the_bounds_of_a_chain_that_does_not_look_again_are_unchanged() -> None:
    # Given the two kinds of chain
    # Then a scale-up chain keeps its bounds, a chain that looks again has longer ones, and the payload admits both
    assert bounds(None) == (MAX_FOLLOW_UPS, MAX_CHAIN) == (8, timedelta(hours=6))
    assert bounds(HOUR) == (LOOK_AGAIN_MAX_FOLLOW_UPS, LOOK_AGAIN_MAX_CHAIN) == (16, timedelta(hours=12))
    payload = {"alarm_name": "a", "stream": "orders", "symptom": "under-utilised", "state_timestamp": "t"}
    FollowUp(**payload, attempt=LOOK_AGAIN_MAX_FOLLOW_UPS, account=ACCOUNT, region=REGION)
    with pytest.raises(ValueError, match="less than or equal to 16"):
        FollowUp(**payload, attempt=LOOK_AGAIN_MAX_FOLLOW_UPS + 1, account=ACCOUNT, region=REGION)


@pytest.mark.parametrize(
    ("window", "interval"),
    [
        pytest.param(HOUR, HOUR, id="the default alarm: an hour"),
        pytest.param(2 * HOUR, 2 * HOUR, id="a 2-hour alarm"),
        pytest.param(timedelta(minutes=5), LOOK_AGAIN_MIN_INTERVAL, id="a 1-period alarm: at most every 30 min"),
    ],
)
def test_it_looks_again_every_alarm_window_and_never_more_often_than_every_30_minutes(
    window: timedelta, interval: timedelta
) -> None:
    assert look_again_interval(window) == interval


def test_only_the_under_utilised_symptom_looks_again() -> None:
    # Then the symptom of a lasting state looks again; a throttle or a lag is followed through as before
    assert [s.id for s in REGISTRY.symptoms.values() if s.looks_again] == ["under-utilised"]


@pytest.mark.parametrize(
    ("parameters", "wait"),
    [
        pytest.param({"current_shards": 8, "desired_shards": 4, "target_shards": 4}, 61, id="scale-in-reached"),
        pytest.param({"current_shards": 8, "desired_shards": 1, "target_shards": 4}, 61, id="scale-in-halfway"),
        pytest.param({"current_shards": 2, "desired_shards": 4, "target_shards": 4}, None, id="scale-up-reached"),
        pytest.param({"current_shards": 2, "desired_shards": 8, "target_shards": 4}, None, id="scale-up-halfway"),
    ],
)
def test_a_scale_ins_next_look_waits_out_the_window_its_own_step_restarted(
    parameters: dict[str, int], wait: int | None
) -> None:
    # Given an applied reshard, and the default 60-minute stabilisation window
    waited = RESHARD.next_step_after(parameters, RESHARD.block(policy()))
    # Then any scale-in's next step or look waits a minute past the window; a scale-up settles as before
    assert waited == (None if wait is None else timedelta(minutes=wait))
