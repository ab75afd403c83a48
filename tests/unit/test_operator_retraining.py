"""Observation and retraining bookkeeping without a cluster: drift episodes into status, one
Job per decision, adoption of a Job status never recorded, candidate and failure outcomes."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from typing import Any

from textops.operator.builders import job_name
from textops.operator.policy import Observation
from textops.operator.retraining import (
    Candidate,
    JobState,
    consecutive_failures,
    job_state,
    plan_retraining,
    unrecorded_success,
)
from textops.operator.spec import HistoryRecord, ModelDeployment, RetrainingStatus, Status
from textops.operator.status import find

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
DRIFT = Observation(feature_drift=0.9, prediction_drift=0.01, quality=0.95, quality_samples=300)


def _mdep(status: Status | None = None, **spec: Any) -> ModelDeployment:
    body = {
        "metadata": {
            "name": "reviews",
            "namespace": "ml",
            "uid": "u1",
            "generation": 1,
            "creationTimestamp": "2026-11-01T00:00:00Z",
        },
        "spec": {
            "model": {"name": "m", "alias": "champion"},
            "monitoring": {"featureDrift": {"threshold": 0.2, "for": "1m"}},
            "retraining": {"minNewLabels": 0},
            **spec,
        },
    }
    mdep = ModelDeployment.from_body(body)
    return dataclasses.replace(mdep, status=status or Status(serving_version="1"))


def _running() -> Status:
    """A status whose last retraining Job was started and not yet seen finishing."""
    return Status(
        serving_version="1",
        last_retraining=RetrainingStatus(
            job="reviews-retrain-abc",
            trigger="manual",
            trigger_id="abc",
            started_at=NOW,
            result="Running",
        ),
    )


def _next(mdep: ModelDeployment, plan_mdep: ModelDeployment) -> ModelDeployment:
    return dataclasses.replace(mdep, status=plan_mdep.status)


def test_sustained_drift_starts_one_job_with_a_stable_name() -> None:
    mdep = _mdep()
    first = plan_retraining(mdep, DRIFT, [], None, 0, NOW, 20)
    assert first.start is None  # above threshold, not yet for 1m
    assert first.mdep.status.drift.feature_above_since == NOW
    drifting = find(first.mdep.status.conditions, "Drifting")
    assert drifting is not None and drifting.status == "True"

    later = NOW + timedelta(minutes=2)
    second = plan_retraining(_next(mdep, first.mdep), DRIFT, [], None, 0, later, 20)
    assert second.start is not None and second.start.kind == "drift"
    last = second.mdep.status.last_retraining
    assert last.job == job_name(mdep, second.start) and last.result == "Running"
    assert second.mdep.status.phase == "Retraining"
    # the same decision from the same state (status write lost, operator restarted)
    again = plan_retraining(_next(mdep, first.mdep), DRIFT, [], None, 0, later, 20)
    assert again.start == second.start


def test_an_unrecorded_job_is_adopted_instead_of_starting_another() -> None:
    mdep = _mdep()
    first = plan_retraining(mdep, DRIFT, [], None, 0, NOW, 20)
    job = JobState("reviews-retrain-abc", NOW + timedelta(minutes=1), "Running", trigger="drift")
    later = NOW + timedelta(minutes=2)
    plan = plan_retraining(_next(mdep, first.mdep), DRIFT, [job], None, 0, later, 20)
    assert plan.start is None
    assert plan.mdep.status.last_retraining.job == job.name
    assert [h.event for h in plan.mdep.status.history] == ["RetrainingStarted"]


def test_a_succeeded_job_records_candidate_and_verdict() -> None:
    started = _running()
    mdep = _mdep(started)
    job = JobState("reviews-retrain-abc", NOW, "Succeeded", NOW + timedelta(minutes=3))
    assert unrecorded_success(mdep, [job]) == job
    plan = plan_retraining(
        mdep, None, [job], Candidate("2", "promoted", "better"), 0, NOW + timedelta(minutes=4), 20
    )
    last = plan.mdep.status.last_retraining
    assert (last.result, last.candidate_version, last.decision) == ("Succeeded", "2", "promoted")
    assert [h.event for h in plan.mdep.status.history] == ["RetrainingSucceeded", "Promoted"]
    retraining = find(plan.mdep.status.conditions, "Retraining")
    assert retraining is not None and retraining.status == "False"
    assert unrecorded_success(_next(mdep, plan.mdep), [job]) is None


def test_a_failed_job_warns_and_promotes_nothing() -> None:
    mdep = _mdep(_running())
    job = JobState("reviews-retrain-abc", NOW, "Failed", NOW + timedelta(minutes=3))
    plan = plan_retraining(mdep, None, [job], None, 0, NOW + timedelta(minutes=4), 20)
    last = plan.mdep.status.last_retraining
    assert last.result == "Failed" and last.decision is None
    assert [(e.type, e.reason) for e in plan.events] == [("Warning", "RetrainingFailed")]
    assert plan.start is None  # the cooldown spaces out the next attempt
    retraining = find(plan.mdep.status.conditions, "Retraining")
    assert retraining is not None and retraining.reason == "JobFailed"
    until = "automatic retraining waits until 2026-11-26T18:00:00Z (1 consecutive failure)"
    assert until in retraining.message and until in plan.events[0].message


def test_drift_outlasting_failed_jobs_retries_with_doubling_waits() -> None:
    """Each failure is recorded once; the next automatic Job waits cooldown, then twice it."""
    mdep = _mdep(_running(), retraining={"minNewLabels": 0, "cooldown": "1h"})
    t = NOW
    job = JobState("reviews-retrain-abc", NOW, "Failed", NOW + timedelta(minutes=3))
    plan = plan_retraining(mdep, DRIFT, [job], None, 0, t + timedelta(minutes=4), 20)
    assert plan.start is None
    mdep = _next(mdep, plan.mdep)
    again = plan_retraining(mdep, DRIFT, [job], None, 0, t + timedelta(minutes=5), 20)
    assert again.start is None and not again.events  # recorded once, no new Event
    retry = plan_retraining(mdep, DRIFT, [job], None, 0, t + timedelta(hours=1), 20)
    assert retry.start is not None and retry.start.kind == "drift"
    # The retry fails too: the next wait is two hours from its start.
    mdep = _next(mdep, retry.mdep)
    name = job_name(mdep, retry.start)
    second = JobState(name, t + timedelta(hours=1), "Failed", t + timedelta(hours=1, minutes=2))
    jobs = [job, second]
    failed = plan_retraining(mdep, DRIFT, jobs, None, 0, t + timedelta(hours=1, minutes=3), 20)
    assert "until 2026-11-26T15:00:00Z (2 consecutive failures)" in failed.events[0].message
    mdep = _next(mdep, failed.mdep)
    early = plan_retraining(mdep, DRIFT, jobs, None, 0, t + timedelta(hours=2, minutes=30), 20)
    assert early.start is None
    late = plan_retraining(mdep, DRIFT, jobs, None, 0, t + timedelta(hours=3), 20)
    assert late.start is not None


def test_consecutive_failures_count_back_to_the_last_success() -> None:
    def h(event: Any) -> HistoryRecord:
        return HistoryRecord(NOW, event)

    assert consecutive_failures(()) == 0
    history = [h("RetrainingFailed"), h("RetrainingSucceeded"), h("RetrainingFailed")]
    assert consecutive_failures(history) == 1
    history += [h("RolledOut"), h("RetrainingStarted"), h("RetrainingFailed")]
    assert consecutive_failures(history) == 2


def test_job_state_reads_conditions_and_annotations() -> None:
    body = {
        "metadata": {
            "name": "j",
            "creationTimestamp": "2026-11-26T12:00:00Z",
            "annotations": {"textops.io/trigger": "manual", "textops.io/trigger-id": "abc"},
        },
        "status": {
            "conditions": [
                {"type": "Complete", "status": "True", "lastTransitionTime": "2026-11-26T12:05:00Z"}
            ]
        },
    }
    state = job_state(body)
    assert state.result == "Succeeded" and state.trigger == "manual" and state.trigger_id == "abc"
    assert state.finished == NOW + timedelta(minutes=5)
