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

from textops.operator.builders import job_name
from textops.operator.durations import format_duration
from textops.operator.policy import (
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
    GROUP,
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
    trigger = notes.get(f"{GROUP}/trigger")
    return JobState(
        name=meta["name"],
        created=parse_time(created, "metadata.creationTimestamp") if created else None,
        result=result,
        finished=finished,
        trigger=trigger if trigger in TRIGGERS else None,
        trigger_id=notes.get(f"{GROUP}/trigger-id"),
        reason=notes.get(f"{GROUP}/trigger-reason"),
    )


# Tags the training pipeline (textops/training/pipeline.py, textops/registry/lineage.py) and the
# promotion gate (textops/registry/gate.py) set on every version they register or judge.
DECISION_TAG = "textops.gate.decision"
REASON_TAG = "textops.gate.reason"
LINEAGE_TAGS = {
    "dataset_id": "textops.dataset.id",
    "dataset_sha256": "textops.dataset.sha256",
    "git_commit": "textops.git.commit",
    "code_sha256": "textops.code.sha256",
}
GATE_TAGS = {"metric": "textops.gate.metric", "champion_version": "textops.gate.champion_version"}
GATE_NUMBERS = {
    "candidate_value": "textops.gate.challenger_value",
    "champion_value": "textops.gate.champion_value",
}
_UNSET = ("", "unknown")  # what the pipeline writes when it does not know (no git, no champion)


@dataclass(frozen=True)
class Candidate:
    """A version a retraining Job registered, its lineage, and the promotion gate's verdict."""

    version: str
    decision: str | None = None
    reason: str | None = None
    run_id: str | None = None
    dataset_id: str | None = None
    dataset_sha256: str | None = None
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
            decision=text(DECISION_TAG),
            reason=text(REASON_TAG),
            run_id=run_id or None,
            dataset_id=text(LINEAGE_TAGS["dataset_id"]),
            dataset_sha256=text(LINEAGE_TAGS["dataset_sha256"]),
            git_commit=text(LINEAGE_TAGS["git_commit"]),
            code_sha256=text(LINEAGE_TAGS["code_sha256"]),
            metric=text(GATE_TAGS["metric"]),
            candidate_value=number(GATE_NUMBERS["candidate_value"]),
            champion_value=number(GATE_NUMBERS["champion_value"]),
            champion_version=text(GATE_TAGS["champion_version"]),
        )

    def lineage(self) -> dict[str, Any]:
        """History fields naming where the candidate came from (run, dataset, code)."""
        return {"run_id": self.run_id, **{name: getattr(self, name) for name in LINEAGE_TAGS}}

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
    spec = mdep.spec
    events: list[Event] = []
    conditions, history = st.conditions, st.history

    def condition(type_: str, ok: bool, reason: str, message: str, warn: bool) -> None:
        nonlocal conditions
        conditions, changed = set_condition(
            conditions, type_, "True" if ok else "False", reason, message, now, mdep.generation
        )
        if changed and warn and ok:
            events.append(Event("Warning", reason, message))

    drift, quality, episodes = st.drift, st.quality, episodes_of(st)
    if observation is not None:
        episodes = track(spec.monitoring, observation, episodes, now)
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
        mon = spec.monitoring
        above = [
            f"{what} drift {value:.3f} > {rule.threshold}"
            for what, value, rule in (
                ("feature", observation.feature_drift, mon.feature_drift),
                ("prediction", observation.prediction_drift, mon.prediction_drift),
            )
            if value is not None and value > rule.threshold
        ]
        condition(
            DRIFTING,
            bool(above),
            "DriftAboveThreshold" if above else "NoDrift",
            "; ".join(above) or "drift within thresholds (or no data)",
            warn=True,
        )
        low = episodes.quality_below_since is not None
        condition(
            QUALITY_LOW,
            low,
            "QualityBelowMinimum" if low else "QualityOK",
            f"{mon.quality.metric} {observation.quality} < {mon.quality.min} "
            f"on {observation.quality_samples} feedback labels"
            if low
            else "quality at or above its minimum (or too few feedback labels)",
            warn=True,
        )

    last = st.last_retraining
    newest = _newest(jobs)
    if (
        newest is not None
        and newest.name != last.job
        and newest.created is not None
        and (last.started_at is None or newest.created >= last.started_at)
    ):
        last = RetrainingStatus(
            job=newest.name,
            trigger=newest.trigger,
            trigger_id=newest.trigger_id,
            reason=newest.reason,
            started_at=newest.created,
            result="Running",
        )
        history = append_history(
            history,
            history_limit,
            now,
            "RetrainingStarted",
            job=newest.name,
            message=newest.reason,
        )
    awaiting: str | None = None  # the Job succeeded; its candidate is not visible yet
    if last.job is not None and last.result == "Running":
        job = next((j for j in jobs if j.name == last.job), None)
        if job is None:
            message = f"Job {last.job} disappeared before it finished"
            last = dataclasses.replace(last, result="Failed", finished_at=now)
            history = append_history(
                history, history_limit, now, "RetrainingFailed", job=last.job, message=message
            )
            failed = consecutive_failures(history)
            events.append(
                Event("Warning", "RetrainingFailed", _with_backoff(message, mdep, last, failed))
            )
        elif job.result == "Failed":
            message = f"Job {job.name} failed; nothing was promoted (see its pod logs)"
            last = dataclasses.replace(last, result="Failed", finished_at=job.finished or now)
            history = append_history(
                history, history_limit, now, "RetrainingFailed", job=job.name, message=message
            )
            failed = consecutive_failures(history)
            events.append(
                Event("Warning", "RetrainingFailed", _with_backoff(message, mdep, last, failed))
            )
        elif job.result == "Succeeded":
            finished = job.finished or now
            wait_until = finished + CANDIDATE_GRACE
            if candidate is None and job.finished is not None and now < wait_until:
                awaiting = (
                    f"Job {job.name} succeeded; looking for the model version tagged "
                    f"textops.trigger.id={last.trigger_id} until {format_time(wait_until)}"
                )
            else:
                last = dataclasses.replace(last, result="Succeeded", finished_at=finished)
                if candidate is None:
                    message = (
                        f"Job {job.name} succeeded but no model version is tagged "
                        f"textops.trigger.id={last.trigger_id} (looked for "
                        f"{format_duration(CANDIDATE_GRACE)} after it finished)"
                    )
                    history = append_history(
                        history,
                        history_limit,
                        now,
                        "RetrainingSucceeded",
                        job=job.name,
                        message=message,
                    )
                    events.append(Event("Warning", "NoCandidate", message))
                else:
                    verdict: GateDecision | None = next(
                        (d for d in DECISIONS if d == candidate.decision), None
                    )
                    last = dataclasses.replace(
                        last,
                        candidate_version=candidate.version,
                        decision=verdict,
                    )
                    message = f"Job {job.name} registered version {candidate.version}"
                    history = append_history(
                        history,
                        history_limit,
                        now,
                        "RetrainingSucceeded",
                        candidate.version,
                        job.name,
                        message,
                        **candidate.lineage(),
                    )
                    events.append(Event("Normal", "RetrainingSucceeded", message))
                    if verdict is not None:
                        event: HistoryEvent = "Promoted" if verdict == "promoted" else "Rejected"
                        why = f"version {candidate.version} {verdict}: {candidate.reason or ''}"
                        history = append_history(
                            history,
                            history_limit,
                            now,
                            event,
                            candidate.version,
                            job.name,
                            why.strip(": "),
                            **candidate.lineage(),
                            decision=verdict,
                            **candidate.verdict(),
                        )
                        events.append(Event("Normal", event, why.strip(": ")))

    running = any(j.result == "Running" for j in jobs) or awaiting is not None
    failures = consecutive_failures(history)
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
        failures=failures,
    )
    decision = decide(mdep.uid or f"{mdep.namespace}/{mdep.name}", spec, state)
    start = decision.trigger if decision.retrain else None
    last_schedule, last_manual = st.last_schedule_time, st.last_manual_request
    if start is not None:
        name = job_name(mdep, start)
        last = RetrainingStatus(
            job=name,
            trigger=start.kind,
            trigger_id=start.id,
            reason=start.reason,
            started_at=now,
            result="Running",
        )
        history = append_history(
            history, history_limit, now, "RetrainingStarted", job=name, message=start.reason
        )
        events.append(Event("Normal", "RetrainingStarted", f"Job {name}: {start.reason}"))
        last_schedule = decision.schedule_time or last_schedule
        last_manual = decision.manual_request or last_manual

    if last.job is not None:
        active = last.result == "Running"
        message = f"Job {last.job} ({last.trigger}): {last.reason or ''}".strip(": ")
        reason = "JobRunning" if active else f"Job{last.result}"
        if last.result == "Failed":
            message = _with_backoff(f"{message}; failed", mdep, last, failures)
        if awaiting is not None:
            message, reason = awaiting, "AwaitingCandidate"
        conditions, _ = set_condition(
            conditions,
            RETRAINING,
            "True" if active else "False",
            reason,
            message,
            now,
            mdep.generation,
        )
    rolling_out = st.phase in ("Promoting", "Pending")
    status = dataclasses.replace(
        st,
        drift=drift,
        quality=quality,
        last_retraining=last,
        last_schedule_time=last_schedule,
        last_manual_request=last_manual,
        conditions=conditions,
        history=history,
        phase=st.phase
        if st.phase == "Failed"
        else phase_of(conditions, st.serving_version, rolling_out),
    )
    return RetrainingPlan(dataclasses.replace(mdep, status=status), tuple(events), start)
