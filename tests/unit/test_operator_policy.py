"""The retraining policy, one test per branch: sustain, reset, running, manual, cooldown,
back-off after failures, labels, schedule, priority, and the determinism of trigger ids."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from textops.operator.policy import (
    MAX_FAILURE_BACKOFF,
    MIN_FAILURE_BACKOFF,
    Episodes,
    Observation,
    State,
    decide,
    episodes_of,
    retry_after,
    track,
    trigger_id,
)
from textops.operator.spec import ModelDeploymentSpec, Status, parse

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)  # a Thursday
CREATED = NOW - timedelta(days=30)
RES = "uid-1234"


def _spec(**overrides: Any) -> ModelDeploymentSpec:
    body = {"model": {"name": "m", "alias": "champion"}, **overrides}
    return parse(ModelDeploymentSpec, body, "spec")


SPEC = _spec()
MON = SPEC.monitoring
LIMIT = MON.feature_drift.threshold  # the default threshold, whatever it is


def _state(**kw: Any) -> State:
    base = State(now=NOW, created_at=CREATED, new_labels=500)
    return replace(base, **kw)


def _drifting(minutes: int) -> Episodes:
    return Episodes(feature_drift_since=NOW - timedelta(minutes=minutes))


# ------------------------------------------------------------------ track


def test_track_starts_keeps_and_ends_an_episode() -> None:
    bad = Observation(feature_drift=LIMIT + 0.3, prediction_drift=LIMIT - 0.1)
    first = track(MON, bad, Episodes(), NOW)
    assert first.feature_drift_since == NOW and first.prediction_drift_since is None
    later = track(MON, bad, first, NOW + timedelta(minutes=5))
    assert later.feature_drift_since == NOW  # kept, not moved
    healed = track(MON, Observation(feature_drift=LIMIT - 0.1), later, NOW + timedelta(minutes=6))
    assert healed.feature_drift_since is None


def test_track_threshold_is_strictly_above() -> None:
    at = track(MON, Observation(feature_drift=LIMIT), Episodes(), NOW)
    assert at.feature_drift_since is None


def test_track_missing_data_ends_the_episode() -> None:
    """Like a Prometheus alert: no data is not "still bad"."""
    ongoing = _drifting(30)
    assert track(MON, Observation(), ongoing, NOW).feature_drift_since is None


def test_track_quality_needs_min_samples() -> None:
    few = Observation(quality=0.5, quality_samples=MON.quality.min_samples - 1)
    assert track(MON, few, Episodes(), NOW).quality_below_since is None
    enough = Observation(quality=0.5, quality_samples=MON.quality.min_samples)
    assert track(MON, enough, Episodes(), NOW).quality_below_since == NOW
    fine = Observation(quality=0.95, quality_samples=10_000)
    assert track(MON, fine, Episodes(), NOW).quality_below_since is None


# ------------------------------------------------------------------ decide


def test_nothing_fired() -> None:
    decision = decide(RES, SPEC, _state())
    assert not decision.retrain and decision.reason == "no trigger fired"


def test_drift_not_sustained_long_enough() -> None:
    decision = decide(RES, SPEC, _state(episodes=_drifting(9)))
    assert not decision.retrain


def test_drift_sustained_retrains() -> None:
    decision = decide(RES, SPEC, _state(episodes=_drifting(10)))
    assert decision.retrain and decision.trigger is not None
    assert decision.trigger.kind == "drift"
    assert f"feature drift above {LIMIT}" in decision.reason
    assert decision.schedule_time is None and decision.manual_request is None


def test_prediction_drift_also_counts() -> None:
    episodes = Episodes(prediction_drift_since=NOW - timedelta(hours=1))
    decision = decide(RES, SPEC, _state(episodes=episodes))
    assert decision.retrain and "prediction drift" in decision.reason


def test_drift_trigger_disabled() -> None:
    spec = _spec(retraining={"triggers": {"onDrift": False}})
    assert not decide(RES, spec, _state(episodes=_drifting(60))).retrain


def test_quality_drop_sustained_retrains() -> None:
    episodes = Episodes(quality_below_since=NOW - timedelta(minutes=15))
    decision = decide(RES, SPEC, _state(episodes=episodes))
    assert decision.retrain and decision.trigger and decision.trigger.kind == "quality"
    assert "accuracy below 0.8" in decision.reason
    spec = _spec(retraining={"triggers": {"onQualityDrop": False}})
    assert not decide(RES, spec, _state(episodes=episodes)).retrain


def test_running_blocks_everything_even_manual() -> None:
    decision = decide(RES, SPEC, _state(episodes=_drifting(60), running=True, manual_request="1"))
    assert not decision.retrain and "already running" in decision.reason


def test_cooldown_blocks_automatic_triggers() -> None:
    started = NOW - timedelta(hours=2)
    decision = decide(RES, SPEC, _state(episodes=_drifting(60), last_started_at=started))
    assert not decision.retrain
    assert "cooldown until 2026-11-26T16:00:00Z" in decision.reason
    after = decide(
        RES, SPEC, _state(episodes=_drifting(60), last_started_at=NOW - timedelta(hours=6))
    )
    assert after.retrain


def test_failures_double_the_wait_up_to_a_cap() -> None:
    six = timedelta(hours=6)
    assert [retry_after(six, n) for n in range(4)] == [six, six, 2 * six, 4 * six]
    assert retry_after(six, 50) == MAX_FAILURE_BACKOFF  # capped, no overflow
    assert retry_after(timedelta(days=30), 5) == timedelta(days=30)  # never below the cooldown
    # a zero cooldown still spaces out retries once a retraining failed
    assert retry_after(timedelta(0), 0) == timedelta(0)
    assert retry_after(timedelta(0), 1) == MIN_FAILURE_BACKOFF
    assert retry_after(timedelta(0), 3) == 4 * MIN_FAILURE_BACKOFF


def test_consecutive_failures_back_off_automatic_triggers_only() -> None:
    started = NOW - timedelta(hours=7)  # past the 6h cooldown, within twice it
    ok = decide(RES, SPEC, _state(episodes=_drifting(600), last_started_at=started, failures=1))
    assert ok.retrain
    state = _state(episodes=_drifting(600), last_started_at=started, failures=2)
    blocked = decide(RES, SPEC, state)
    assert not blocked.retrain
    assert "backing off after 2 failed retrainings until 2026-11-26T17:00:00Z" in blocked.reason
    assert decide(RES, SPEC, replace(state, now=NOW + timedelta(hours=5))).retrain
    assert decide(RES, SPEC, replace(state, manual_request="again")).retrain  # a person asked


def test_too_few_new_labels_blocks_automatic_triggers() -> None:
    decision = decide(RES, SPEC, _state(episodes=_drifting(60), new_labels=99))
    assert not decision.retrain and "only 99 new labels (retraining needs 100)" in decision.reason
    spec = _spec(retraining={"minNewLabels": 0})
    assert decide(RES, spec, _state(episodes=_drifting(60), new_labels=0)).retrain


def test_manual_request_skips_cooldown_and_labels() -> None:
    state = _state(manual_request="7", last_started_at=NOW - timedelta(minutes=1), new_labels=0)
    decision = decide(RES, SPEC, state)
    assert decision.retrain and decision.trigger and decision.trigger.kind == "manual"
    assert decision.manual_request == "7"


def test_manual_request_already_handled_is_ignored() -> None:
    decision = decide(RES, SPEC, _state(manual_request="7", last_manual_request="7"))
    assert not decision.retrain and decision.reason == "no trigger fired"


def test_manual_trigger_disabled_says_so() -> None:
    spec = _spec(retraining={"triggers": {"manual": False}})
    decision = decide(RES, spec, _state(manual_request="7"))
    assert not decision.retrain and "retraining.triggers.manual is false" in decision.reason


def test_schedule_fires_once_per_tick() -> None:
    spec = _spec(retraining={"triggers": {"schedule": "0 3 * * *"}})
    tick = datetime(2026, 11, 26, 3, 0, tzinfo=UTC)
    decision = decide(RES, spec, _state(last_schedule_time=tick - timedelta(days=1)))
    assert decision.retrain and decision.trigger and decision.trigger.kind == "schedule"
    assert decision.schedule_time == tick
    again = decide(RES, spec, _state(last_schedule_time=tick))
    assert not again.retrain


def test_schedule_does_not_fire_for_ticks_before_creation() -> None:
    spec = _spec(retraining={"triggers": {"schedule": "0 3 * * *"}})
    created = datetime(2026, 11, 26, 4, 0, tzinfo=UTC)
    assert not decide(RES, spec, _state(created_at=created)).retrain


def test_schedule_respects_cooldown_and_stays_pending() -> None:
    spec = _spec(retraining={"triggers": {"schedule": "0 3 * * *"}})
    base = {"last_schedule_time": NOW - timedelta(days=1)}
    blocked = decide(RES, spec, _state(**base, last_started_at=NOW - timedelta(hours=1)))
    assert not blocked.retrain and "cooldown" in blocked.reason
    later = replace(_state(**base, last_started_at=NOW - timedelta(hours=1)))
    later = replace(later, now=NOW + timedelta(hours=5))
    assert decide(RES, spec, later).retrain  # the missed tick runs once allowed


def test_drift_wins_and_consumes_a_pending_tick() -> None:
    spec = _spec(retraining={"triggers": {"schedule": "0 3 * * *"}})
    state = _state(episodes=_drifting(60), last_schedule_time=NOW - timedelta(days=1))
    decision = decide(RES, spec, state)
    assert decision.trigger and decision.trigger.kind == "drift"
    assert "schedule" in decision.reason  # both reasons are reported
    assert decision.schedule_time == datetime(2026, 11, 26, 3, 0, tzinfo=UTC)


def test_trigger_ids_are_deterministic_and_distinct() -> None:
    state = _state(episodes=_drifting(60))
    first, second = (
        decide(RES, SPEC, state),
        decide(RES, SPEC, replace(state, now=NOW + timedelta(minutes=1))),
    )
    assert first.trigger and second.trigger
    assert first.trigger.id == second.trigger.id  # same episode, same Job
    assert len(first.trigger.id) == 16 and int(first.trigger.id, 16) >= 0
    other = decide("uid-other", SPEC, state)
    assert other.trigger and other.trigger.id != first.trigger.id
    assert trigger_id(RES, "manual", "1") != trigger_id(RES, "manual", "2")


def test_an_episode_outlasting_a_retraining_gets_a_new_id() -> None:
    episodes = _drifting(60 * 24)
    before = decide(RES, SPEC, _state(episodes=episodes))
    after = decide(RES, SPEC, _state(episodes=episodes, last_started_at=NOW - timedelta(hours=7)))
    assert before.trigger and after.trigger and before.trigger.id != after.trigger.id


@pytest.mark.parametrize("minutes", [0, 5])
def test_zero_for_counts_at_once(minutes: int) -> None:
    spec = _spec(monitoring={"featureDrift": {"for": "0s"}})
    assert decide(RES, spec, _state(episodes=_drifting(minutes))).retrain


def test_episodes_round_trip_through_status() -> None:
    status = parse(
        Status,
        {
            "drift": {"featureAboveSince": "2026-11-26T11:00:00Z"},
            "quality": {"belowSince": "2026-11-26T11:30:00Z"},
        },
        "status",
    )
    episodes = episodes_of(status)
    assert episodes.feature_drift_since == datetime(2026, 11, 26, 11, tzinfo=UTC)
    assert episodes.prediction_drift_since is None
    assert episodes.quality_below_since == datetime(2026, 11, 26, 11, 30, tzinfo=UTC)
