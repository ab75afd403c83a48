"""The retraining policy (pure): should a retraining Job start now, and why?

Two steps, both functions of plain data so that a handler may run them any number of times:

1. :func:`track` turns the latest observation (drift scores, feedback quality) into "since
   when has each signal been bad", kept in status. As with a Prometheus alert's ``for``, a
   signal counts only once it stayed bad for the configured duration, and a missing value
   (no data) ends the episode rather than extending it.
2. :func:`decide` weighs the triggers in a fixed order: nothing starts while a retraining
   runs; a new manual request starts one at once (it skips cooldown and the label minimum: a
   person asked); automatic triggers (sustained drift, sustained quality drop, a schedule
   tick not yet acted on) start one only outside the cooldown and with enough new labels.
   After a failed retraining the wait doubles with each further consecutive failure
   (:func:`retry_after`), so a Job that cannot succeed is not restarted in a storm while its
   trigger persists; a retraining that succeeds resets it.

Every positive decision carries a :class:`Trigger` whose id is a hash of the resource, the
trigger kind and the moment that anchors it (the start of the episode, or of the last
retraining if later; the cron tick; the annotation value). Running ``decide`` again on the same
state gives the same id, hence the same Job name, so a repeated handler finds the Job it
already created instead of starting a second one.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta

from textops.operator.cron import parse_schedule
from textops.operator.spec import (
    ModelDeploymentSpec,
    Monitoring,
    Status,
    TriggerKind,
    format_time,
)

TRIGGER_ID_LENGTH = 16
# Back-off after consecutive failed retrainings: never shorter than this, even with a zero
# cooldown (no retry storm), and at most the longer of the cooldown and MAX_FAILURE_BACKOFF.
MIN_FAILURE_BACKOFF = timedelta(seconds=30)
MAX_FAILURE_BACKOFF = timedelta(days=7)


@dataclass(frozen=True)
class Observation:
    """What the operator just read from Prometheus; None where there was no data."""

    feature_drift: float | None = None
    prediction_drift: float | None = None
    quality: float | None = None
    quality_samples: int | None = None


@dataclass(frozen=True)
class Episodes:
    """Since when each signal has been bad (None: it is not). Persisted in status."""

    feature_drift_since: datetime | None = None
    prediction_drift_since: datetime | None = None
    quality_below_since: datetime | None = None


def episodes_of(status: Status) -> Episodes:
    """The episodes as last written to status (``drift.*AboveSince``, ``quality.belowSince``)."""
    return Episodes(
        feature_drift_since=status.drift.feature_above_since,
        prediction_drift_since=status.drift.prediction_above_since,
        quality_below_since=status.quality.below_since,
    )


def track(
    monitoring: Monitoring, observation: Observation, previous: Episodes, now: datetime
) -> Episodes:
    """Update the episodes with one observation."""
    quality = observation.quality
    enough = (observation.quality_samples or 0) >= monitoring.quality.min_samples
    return Episodes(
        feature_drift_since=_since(
            previous.feature_drift_since,
            _above(observation.feature_drift, monitoring.feature_drift.threshold),
            now,
        ),
        prediction_drift_since=_since(
            previous.prediction_drift_since,
            _above(observation.prediction_drift, monitoring.prediction_drift.threshold),
            now,
        ),
        quality_below_since=_since(
            previous.quality_below_since,
            quality is not None and enough and quality < monitoring.quality.min,
            now,
        ),
    )


def _above(value: float | None, threshold: float) -> bool:
    return value is not None and value > threshold


def _since(previous: datetime | None, bad: bool, now: datetime) -> datetime | None:
    if not bad:
        return None
    return previous or now


@dataclass(frozen=True)
class Trigger:
    """Why a retraining starts; ``id`` names its Job deterministically."""

    kind: TriggerKind
    id: str
    reason: str


@dataclass(frozen=True)
class State:
    """Everything besides the spec that the decision depends on."""

    now: datetime
    created_at: datetime
    episodes: Episodes = Episodes()
    running: bool = False
    last_started_at: datetime | None = None
    new_labels: int = 0
    last_schedule_time: datetime | None = None
    manual_request: str | None = None  # the annotation's current value
    last_manual_request: str | None = None  # the value last acted on
    failures: int = 0  # consecutive failed retrainings (since the last that succeeded)


@dataclass(frozen=True)
class Decision:
    """The outcome. When ``retrain``, the handler records ``schedule_time`` (if set) as
    ``status.lastScheduleTime`` and ``manual_request`` (if set) as ``status.lastManualRequest``."""

    retrain: bool
    reason: str
    trigger: Trigger | None = None
    schedule_time: datetime | None = None
    manual_request: str | None = None


def trigger_id(resource: str, kind: TriggerKind, anchor: str) -> str:
    """A short, stable hex id of one trigger decision."""
    text = f"{resource}|{kind}|{anchor}".encode()
    return hashlib.sha256(text).hexdigest()[:TRIGGER_ID_LENGTH]


def retry_after(cooldown: timedelta, failures: int) -> timedelta:
    """Least time between the start of the last retraining and the next automatic one.

    The cooldown; after failed retrainings, at least :data:`MIN_FAILURE_BACKOFF` doubled for
    each consecutive failure beyond the first (1, 2, 4, ... times), at most
    :data:`MAX_FAILURE_BACKOFF` (or the cooldown itself when that is longer).
    """
    if failures <= 0:
        return cooldown
    cap = max(cooldown, MAX_FAILURE_BACKOFF)
    wait = max(cooldown, MIN_FAILURE_BACKOFF)
    for _ in range(failures - 1):
        if wait >= cap:
            break
        wait *= 2
    return min(wait, cap)


def automatic_not_before(
    cooldown: timedelta, last_started_at: datetime | None, failures: int
) -> datetime | None:
    """When automatic triggers may start a retraining again (None: at any time)."""
    if last_started_at is None:
        return None
    return last_started_at + retry_after(cooldown, failures)


def decide(resource: str, spec: ModelDeploymentSpec, state: State) -> Decision:
    """Decide for the resource identified by ``resource`` (its uid, or namespace/name)."""
    triggers = spec.retraining.triggers
    if state.running:
        return Decision(False, "a retraining Job is already running")

    manual = state.manual_request
    if manual and manual != state.last_manual_request:
        if triggers.manual:
            reason = f"manual request {manual!r} (annotation textops.io/retrain)"
            trigger = Trigger("manual", trigger_id(resource, "manual", manual), reason)
            return Decision(True, reason, trigger, _pending_tick(spec, state), manual)
        ignored = f"manual request {manual!r} ignored: retraining.triggers.manual is false"
    else:
        ignored = ""

    candidates = _automatic(resource, spec, state)
    if not candidates:
        return Decision(False, ignored or "no trigger fired")
    first = candidates[0]
    both = "; ".join(c.reason for c in candidates)
    cooldown_end = automatic_not_before(
        spec.retraining.cooldown, state.last_started_at, state.failures
    )
    if cooldown_end is not None and state.now < cooldown_end:
        if state.failures:
            return Decision(
                False,
                f"{both}; but backing off after {_failed(state.failures)} "
                f"until {format_time(cooldown_end)}",
            )
        return Decision(False, f"{both}; but in cooldown until {format_time(cooldown_end)}")
    needed = spec.retraining.min_new_labels
    if state.new_labels < needed:
        return Decision(
            False, f"{both}; but only {state.new_labels} new labels (retraining needs {needed})"
        )
    trigger = Trigger(first.kind, first.id, both)
    return Decision(True, both, trigger, _pending_tick(spec, state))


def _failed(failures: int) -> str:
    return f"{failures} failed retraining{'s' if failures > 1 else ''}"


def _automatic(resource: str, spec: ModelDeploymentSpec, state: State) -> list[Trigger]:
    """The automatic triggers that fire now, in priority order."""
    fired: list[Trigger] = []
    mon, triggers, ep = spec.monitoring, spec.retraining.triggers, state.episodes
    if triggers.on_drift:
        for what, since, rule in (
            ("feature", ep.feature_drift_since, mon.feature_drift),
            ("prediction", ep.prediction_drift_since, mon.prediction_drift),
        ):
            if since is not None and state.now - since >= rule.for_:
                anchor = _anchor(since, state.last_started_at)
                reason = (
                    f"{what} drift above {rule.threshold} since {format_time(since)} "
                    f"(for {state.now - since}, needs {rule.for_})"
                )
                fired.append(Trigger("drift", trigger_id(resource, "drift", anchor), reason))
                break
    since = ep.quality_below_since
    if triggers.on_quality_drop and since is not None and state.now - since >= mon.quality.for_:
        anchor = _anchor(since, state.last_started_at)
        reason = (
            f"{mon.quality.metric} below {mon.quality.min} since {format_time(since)} "
            f"(for {state.now - since}, needs {mon.quality.for_})"
        )
        fired.append(Trigger("quality", trigger_id(resource, "quality", anchor), reason))
    tick = _pending_tick(spec, state)
    if tick is not None:
        reason = f"schedule {triggers.schedule!r} fired at {format_time(tick)}"
        fired.append(
            Trigger("schedule", trigger_id(resource, "schedule", format_time(tick)), reason)
        )
    return fired


def _anchor(since: datetime, last_started: datetime | None) -> str:
    """An episode that outlasts a retraining counts anew from that retraining's start."""
    return format_time(max(since, last_started) if last_started else since)


def _pending_tick(spec: ModelDeploymentSpec, state: State) -> datetime | None:
    """The newest cron tick not yet acted on (only the newest: missed ticks do not pile up)."""
    expression = spec.retraining.triggers.schedule
    if expression is None:
        return None
    tick = parse_schedule(expression).previous(state.now)
    baseline = state.last_schedule_time or state.created_at
    return tick if tick is not None and tick > baseline else None
