"""Observation and retraining bookkeeping (pure): from readings and Jobs to status and actions.

One pass of the timer, as a function of plain data:

1. the latest Prometheus reading (or None when it was not due or Prometheus did not answer)
   updates the drift and quality status, the episodes (``policy.track``) and the ``Drifting``
   and ``QualityLow`` conditions;
2. the retraining Jobs that exist are reconciled with ``status.lastRetraining``: a Job the
   status does not know yet (the operator died between creating it and writing status) is
   adopted, a finished one is recorded with the version it registered, that version's lineage
   and the gate's verdict. A succeeded Job whose version the registry does not show yet is
   looked up again on every pass for :data:`CANDIDATE_GRACE` after the Job's completion
   (``Retraining=True/AwaitingCandidate``, nothing new starts) before "no candidate" is
   recorded;
3. ``policy.decide`` says whether a new Job starts; its trigger id names the Job, so the same
   decision taken twice (or after a restart) creates it once. Consecutive failed retrainings
   (counted in ``status.history``) lengthen the wait before the next automatic one; the
   ``Retraining`` condition and the failure Event say until when.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from textops.contracts import Annotation, Tag
from textops.operator.builders import job_name
from textops.operator.durations import format_duration
from textops.operator.policy import (
    Episodes,
    Observation,
    State,
    Trigger,
    automatic_not_before,
    decide,
    episodes_of,
    track,
)
from textops.operator.rollout import Event
from textops.operator.spec import (
    Condition,
    DriftStatus,
    GateDecision,
    HistoryEvent,
    HistoryRecord,
    JobResult,
    ModelDeployment,
    QualityStatus,
    RetrainingStatus,
    TriggerKind,
    format_time,
    parse_time,
)
from textops.operator.status import (
    DRIFTING,
    QUALITY_LOW,
    RETRAINING,
    append_history,
    phase_of,
    set_condition,
)

TRIGGERS: tuple[TriggerKind, ...] = ("drift", "quality", "schedule", "manual")
# How long after a Job succeeded its candidate may still be missing from the registry's search
# (tags written last, a registry replica behind) before "no candidate" is recorded for good.
# Measured from the Job's own completion time, so an operator restart does not extend it.
CANDIDATE_GRACE = timedelta(minutes=2)
DECISIONS: tuple[GateDecision, ...] = ("promoted", "rejected")


@dataclass(frozen=True)
class JobState:
    """A retraining Job as the operator needs it."""

    name: str
    created: datetime | None
    result: JobResult
    finished: datetime | None = None
    trigger: TriggerKind | None = None
    trigger_id: str | None = None
    reason: str | None = None


def job_state(body: Mapping[str, Any]) -> JobState:
    """Read a Job (camelCase dict); its trigger comes from the builder's annotations."""
    meta, status = body.get("metadata") or {}, body.get("status") or {}
    notes = meta.get("annotations") or {}
    result: JobResult = "Running"
    finished = None
    for cond in status.get("conditions") or []:
        if cond.get("status") != "True":
            continue
        if cond.get("type") in ("Complete", "SuccessCriteriaMet"):
            result = "Succeeded"
        elif cond.get("type") in ("Failed", "FailureTarget"):
            result = "Failed"
        else:
            continue
        when = cond.get("lastTransitionTime") or status.get("completionTime")
        finished = parse_time(when, "job condition") if when else None
    created = meta.get("creationTimestamp")
    trigger = notes.get(Annotation.TRIGGER)
    return JobState(
        name=meta["name"],
        created=parse_time(created, "metadata.creationTimestamp") if created else None,
        result=result,
        finished=finished,
        trigger=trigger if trigger in TRIGGERS else None,
        trigger_id=notes.get(Annotation.TRIGGER_ID),
        reason=notes.get(Annotation.TRIGGER_REASON),
    )


# Tags the training pipeline (textops/training/pipeline.py, textops/registry/lineage.py) and the
# promotion gate (textops/registry/gate.py) set on every version they register or judge.
LINEAGE_TAGS = {
    "dataset_id": Tag.DATASET_ID,
    "dataset_sha256": Tag.DATASET_SHA256,
    "dataset_parent": Tag.DATASET_PARENT,
    "git_commit": Tag.GIT_COMMIT,
    "code_sha256": Tag.CODE_SHA256,
}
GATE_TAGS = {"metric": Tag.GATE_METRIC, "champion_version": Tag.GATE_CHAMPION_VERSION}
GATE_NUMBERS = {
    "candidate_value": Tag.GATE_CHALLENGER_VALUE,
    "champion_value": Tag.GATE_CHAMPION_VALUE,
}
_UNSET = ("", Tag.UNKNOWN)  # what the pipeline writes when it does not know (no git, no champion)


def _count(value: str | None) -> int | None:
    """A non-negative whole number from a tag, else None."""
    return int(value) if value is not None and value.isdigit() else None


@dataclass(frozen=True)
class Candidate:
    """A version a retraining Job registered, its lineage, and the promotion gate's verdict."""

    version: str
    decision: str | None = None
    reason: str | None = None
    run_id: str | None = None
    dataset_id: str | None = None
    dataset_sha256: str | None = None
    dataset_parent: str | None = None
    labels_added: int | None = None
    git_commit: str | None = None
    code_sha256: str | None = None
    metric: str | None = None
    candidate_value: float | None = None
    champion_value: float | None = None
    champion_version: str | None = None

    @classmethod
    def from_tags(cls, version: str, run_id: str | None, tags: Mapping[str, str]) -> Candidate:
        """The candidate as its MLflow model version describes it (missing tags: None)."""

        def text(tag: str) -> str | None:
            value = tags.get(tag)
            return None if value is None or value.strip() in _UNSET else value.strip()

        def number(tag: str) -> float | None:
            value = text(tag)
            try:
                parsed = float(value) if value is not None else None
            except ValueError:
                return None
            return parsed if parsed is not None and math.isfinite(parsed) else None

        return cls(
            version=version,
            decision=text(Tag.GATE_DECISION),
            reason=text(Tag.GATE_REASON),
            run_id=run_id or None,
            dataset_id=text(LINEAGE_TAGS["dataset_id"]),
            dataset_sha256=text(LINEAGE_TAGS["dataset_sha256"]),
            dataset_parent=text(LINEAGE_TAGS["dataset_parent"]),
            labels_added=_count(text(Tag.DATASET_LABELS_ADDED)),
            git_commit=text(LINEAGE_TAGS["git_commit"]),
            code_sha256=text(LINEAGE_TAGS["code_sha256"]),
            metric=text(GATE_TAGS["metric"]),
            candidate_value=number(GATE_NUMBERS["candidate_value"]),
            champion_value=number(GATE_NUMBERS["champion_value"]),
            champion_version=text(GATE_TAGS["champion_version"]),
        )

    def lineage(self) -> dict[str, Any]:
        """History fields naming where the candidate came from (run, dataset, code)."""
        return {
            "run_id": self.run_id,
            **{name: getattr(self, name) for name in LINEAGE_TAGS},
            "labels_added": self.labels_added,
        }

    def verdict(self) -> dict[str, Any]:
        """History fields of the gate's decision and the numbers it compared."""
        return {
            name: getattr(self, name)
            for name in ("metric", "candidate_value", "champion_value", "champion_version")
        }


@dataclass(frozen=True)
class RetrainingPlan:
    """The new status, Events, and the trigger whose Job must be created (if any)."""

    mdep: ModelDeployment
    events: tuple[Event, ...] = ()
    start: Trigger | None = None


def unrecorded_success(mdep: ModelDeployment, jobs: Sequence[JobState]) -> JobState | None:
    """The succeeded Job whose outcome status does not hold yet (look up its candidate)."""
    last = mdep.status.last_retraining
    for job in jobs:
        if job.result != "Succeeded":
            continue
        if job.name != last.job or last.result == "Running":
            newest = _newest(jobs)
            if newest is not None and newest.name == job.name:
                return job
    return None


def consecutive_failures(history: Sequence[HistoryRecord]) -> int:
    """Failed retrainings recorded after the last one that succeeded (bounded by history)."""
    count = 0
    for record in reversed(history):
        if record.event == "RetrainingSucceeded":
            break
        if record.event == "RetrainingFailed":
            count += 1
    return count


def _with_backoff(
    message: str, mdep: ModelDeployment, last: RetrainingStatus, failures: int
) -> str:
    """``message`` and until when automatic retraining waits after ``failures`` failures."""
    until = automatic_not_before(mdep.spec.retraining.cooldown, last.started_at, failures)
    if until is None:
        return message
    plural = "s" if failures > 1 else ""
    return (
        f"{message}; automatic retraining waits until {format_time(until)} "
        f"({failures} consecutive failure{plural})"
    )


def _newest(jobs: Sequence[JobState]) -> JobState | None:
    dated = [j for j in jobs if j.created is not None]
    return max(dated, key=lambda j: (j.created, j.name)) if dated else None


@dataclass
class _Pass:
    """What one pass accumulates while its decisions are taken: conditions, history, Events."""

    mdep: ModelDeployment
    now: datetime
    history_limit: int
    conditions: tuple[Condition, ...]
    history: tuple[HistoryRecord, ...]
    events: list[Event] = dataclasses.field(default_factory=list)

    def condition(self, type_: str, ok: bool, reason: str, message: str, warn: bool) -> None:
        """Set a condition; a transition to a bad state (``warn``) is also a Warning Event."""
        self.conditions, changed = set_condition(
            self.conditions,
            type_,
            "True" if ok else "False",
            reason,
            message,
            self.now,
            self.mdep.generation,
        )
        if changed and warn and ok:
            self.events.append(Event("Warning", reason, message))

    def record(self, event: HistoryEvent, *args: Any, **details: Any) -> None:
        self.history = append_history(
            self.history, self.history_limit, self.now, event, *args, **details
        )


def plan_retraining(
    mdep: ModelDeployment,
    observation: Observation | None,
    jobs: Sequence[JobState],
    candidate: Candidate | None,
    new_labels: int,
    now: datetime,
    history_limit: int,
) -> RetrainingPlan:
    """One timer pass of bookkeeping and the retraining decision (see the module docstring)."""
    st = mdep.status
    run = _Pass(mdep, now, history_limit, tuple(st.conditions), tuple(st.history))
    drift, quality, episodes = st.drift, st.quality, episodes_of(st)
    if observation is not None:
        drift, quality, episodes = _read_observation(run, observation, episodes)
    last = _adopt_unknown_job(run, st.last_retraining, jobs)
    last, awaiting = _settle_finished_job(run, last, jobs, candidate)
    running = any(j.result == "Running" for j in jobs) or awaiting is not None
    state = State(
        now=now,
        created_at=mdep.created_at or now,
        episodes=episodes,
        running=running,
        last_started_at=last.started_at,
        new_labels=new_labels,
        last_schedule_time=st.last_schedule_time,
        manual_request=mdep.retrain_request,
        last_manual_request=st.last_manual_request,
        failures=consecutive_failures(run.history),
    )
    decision = decide(mdep.uid or f"{mdep.namespace}/{mdep.name}", mdep.spec, state)
    start = decision.trigger if decision.retrain else None
    if start is not None:
        last = _start_job(run, start)
    if last.job is not None:
        _retraining_condition(run, last, awaiting, state.failures)
    rolling_out = st.phase in ("Promoting", "Pending")
    status = dataclasses.replace(
        st,
        drift=drift,
        quality=quality,
        last_retraining=last,
        last_schedule_time=(decision.schedule_time if start else None) or st.last_schedule_time,
        last_manual_request=(decision.manual_request if start else None) or st.last_manual_request,
        conditions=run.conditions,
        history=run.history,
        phase=st.phase
        if st.phase == "Failed"
        else phase_of(run.conditions, st.serving_version, rolling_out),
    )
    return RetrainingPlan(dataclasses.replace(mdep, status=status), tuple(run.events), start)


def _read_observation(
    run: _Pass, observation: Observation, episodes: Episodes
) -> tuple[DriftStatus, QualityStatus, Episodes]:
    """What a Prometheus reading says: drift and quality status, episodes, two conditions."""
    mon = run.mdep.spec.monitoring
    now = run.now
    episodes = track(mon, observation, episodes, now)
    drift = DriftStatus(
        feature=observation.feature_drift,
        prediction=observation.prediction_drift,
        observed_at=now,
        feature_above_since=episodes.feature_drift_since,
        prediction_above_since=episodes.prediction_drift_since,
    )
    quality = QualityStatus(
        value=observation.quality,
        samples=observation.quality_samples,
        observed_at=now,
        below_since=episodes.quality_below_since,
    )
    above = [
        f"{what} drift {value:.3f} > {rule.threshold}"
        for what, value, rule in (
            ("feature", observation.feature_drift, mon.feature_drift),
            ("prediction", observation.prediction_drift, mon.prediction_drift),
        )
        if value is not None and value > rule.threshold
    ]
    run.condition(
        DRIFTING,
        bool(above),
        "DriftAboveThreshold" if above else "NoDrift",
        "; ".join(above) or "drift within thresholds (or no data)",
        warn=True,
    )
    low = episodes.quality_below_since is not None
    run.condition(
        QUALITY_LOW,
        low,
        "QualityBelowMinimum" if low else "QualityOK",
        f"{mon.quality.metric} {observation.quality or 0:.3f} < {mon.quality.min} "
        f"on {observation.quality_samples} feedback labels"
        if low
        else "quality at or above its minimum (or too few feedback labels)",
        warn=True,
    )
    return drift, quality, episodes


def _adopt_unknown_job(
    run: _Pass, last: RetrainingStatus, jobs: Sequence[JobState]
) -> RetrainingStatus:
    """A newer Job than status knows (the operator died between creating it and writing
    status) becomes the running retraining."""
    newest = _newest(jobs)
    if (
        newest is None
        or newest.name == last.job
        or newest.created is None
        or (last.started_at is not None and newest.created < last.started_at)
    ):
        return last
    return _started(
        run, newest.name, newest.trigger, newest.trigger_id, newest.reason, newest.created
    )


def _settle_finished_job(
    run: _Pass, last: RetrainingStatus, jobs: Sequence[JobState], candidate: Candidate | None
) -> tuple[RetrainingStatus, str | None]:
    """The running retraining's outcome once its Job ended (or vanished); with it, the
    message "awaiting the candidate" while a succeeded Job's version is not visible yet."""
    if last.job is None or last.result != "Running":
        return last, None
    job = next((j for j in jobs if j.name == last.job), None)
    if job is None:
        return _failed(run, last, f"Job {last.job} disappeared before it finished", run.now), None
    if job.result == "Failed":
        message = f"Job {job.name} failed; nothing was promoted (see its pod logs)"
        return _failed(run, last, message, job.finished or run.now), None
    if job.result != "Succeeded":
        return last, None
    finished = job.finished or run.now
    wait_until = finished + CANDIDATE_GRACE
    if candidate is None and job.finished is not None and run.now < wait_until:
        return last, (
            f"Job {job.name} succeeded; looking for the model version tagged "
            f"textops.trigger.id={last.trigger_id} until {format_time(wait_until)}"
        )
    last = dataclasses.replace(last, result="Succeeded", finished_at=finished)
    if candidate is None:
        message = (
            f"Job {job.name} succeeded but no model version is tagged "
            f"textops.trigger.id={last.trigger_id} (looked for "
            f"{format_duration(CANDIDATE_GRACE)} after it finished)"
        )
        run.record("RetrainingSucceeded", job=job.name, message=message)
        run.events.append(Event("Warning", "NoCandidate", message))
        return last, None
    return _record_candidate(run, last, job.name, candidate), None


def _failed(
    run: _Pass, last: RetrainingStatus, message: str, finished: datetime
) -> RetrainingStatus:
    last = dataclasses.replace(last, result="Failed", finished_at=finished)
    run.record("RetrainingFailed", job=last.job, message=message)
    failures = consecutive_failures(run.history)
    run.events.append(
        Event("Warning", "RetrainingFailed", _with_backoff(message, run.mdep, last, failures))
    )
    return last


def _record_candidate(
    run: _Pass, last: RetrainingStatus, job: str, candidate: Candidate
) -> RetrainingStatus:
    """The version a succeeded Job registered, its lineage, and the gate's verdict."""
    verdict: GateDecision | None = next((d for d in DECISIONS if d == candidate.decision), None)
    message = f"Job {job} registered version {candidate.version}"
    run.record("RetrainingSucceeded", candidate.version, job, message, **candidate.lineage())
    run.events.append(Event("Normal", "RetrainingSucceeded", message))
    if verdict is not None:
        event: HistoryEvent = "Promoted" if verdict == "promoted" else "Rejected"
        why = f"version {candidate.version} {verdict}: {candidate.reason or ''}".strip(": ")
        run.record(
            event,
            candidate.version,
            job,
            why,
            **candidate.lineage(),
            decision=verdict,
            **candidate.verdict(),
        )
        run.events.append(Event("Normal", event, why))
    return dataclasses.replace(last, candidate_version=candidate.version, decision=verdict)


def _start_job(run: _Pass, start: Trigger) -> RetrainingStatus:
    """A new retraining for ``start``: its deterministic Job name, history and an Event."""
    name = job_name(run.mdep, start)
    run.events.append(Event("Normal", "RetrainingStarted", f"Job {name}: {start.reason}"))
    return _started(run, name, start.kind, start.id, start.reason, run.now)


def _started(
    run: _Pass,
    job: str,
    trigger: TriggerKind | None,
    trigger_id: str | None,
    reason: str | None,
    at: datetime,
) -> RetrainingStatus:
    """A running retraining, recorded in history."""
    run.record("RetrainingStarted", job=job, message=reason)
    return RetrainingStatus(
        job=job,
        trigger=trigger,
        trigger_id=trigger_id,
        reason=reason,
        started_at=at,
        result="Running",
    )


def _retraining_condition(
    run: _Pass, last: RetrainingStatus, awaiting: str | None, failures: int
) -> None:
    active = last.result == "Running"
    message = f"Job {last.job} ({last.trigger}): {last.reason or ''}".strip(": ")
    reason = "JobRunning" if active else f"Job{last.result}"
    if last.result == "Failed":
        message = _with_backoff(f"{message}; failed", run.mdep, last, failures)
    if awaiting is not None:
        message, reason = awaiting, "AwaitingCandidate"
    run.condition(RETRAINING, active, reason, message, warn=False)
