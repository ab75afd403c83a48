"""Observation and retraining bookkeeping without a cluster: drift episodes into status, one
Job per decision, adoption of a Job status never recorded, candidate and failure outcomes."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from typing import Any

from textops.operator.builders import job_name
from textops.operator.policy import Observation
from textops.operator.retraining import (
    CANDIDATE_GRACE,
    Candidate,
    JobState,
    consecutive_failures,
    job_state,
    plan_retraining,
    unrecorded_success,
)
from textops.operator.spec import (
    HistoryRecord,
    ModelDeployment,
    RetrainingStatus,
    Status,
    dump,
    parse,
)
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


TAGS = {
    "textops.trigger.id": "abc",
    "textops.dataset.id": "ds-20261126-1",
    "textops.dataset.sha256": "d" * 64,
    "textops.git.commit": "c0ffee",
    "textops.code.sha256": "e" * 64,
    "textops.gate.decision": "rejected",
    "textops.gate.reason": "macro_f1 0.86 vs champion 0.88",
    "textops.gate.metric": "macro_f1",
    "textops.gate.challenger_value": "0.860000",
    "textops.gate.champion_value": "0.880000",
    "textops.gate.champion_version": "1",
}


def test_candidate_reads_lineage_and_the_gate_numbers_from_version_tags() -> None:
    c = Candidate.from_tags("2", "run-1", TAGS)
    assert (c.version, c.run_id, c.decision, c.reason) == (
        "2",
        "run-1",
        "rejected",
        "macro_f1 0.86 vs champion 0.88",
    )
    assert (c.dataset_id, c.dataset_sha256, c.git_commit, c.code_sha256) == (
        "ds-20261126-1",
        "d" * 64,
        "c0ffee",
        "e" * 64,
    )
    assert (c.metric, c.candidate_value, c.champion_value, c.champion_version) == (
        "macro_f1",
        0.86,
        0.88,
        "1",
    )


def test_candidate_leaves_out_what_the_pipeline_did_not_know() -> None:
    """No git in the image, no champion yet, a value that is not a number: unset, no error."""
    tags = {
        **TAGS,
        "textops.git.commit": "unknown",
        "textops.gate.champion_value": "",
        "textops.gate.champion_version": "",
        "textops.gate.challenger_value": "nan",
    }
    c = Candidate.from_tags("2", "", tags)
    assert c.run_id is None and c.git_commit is None and c.code_sha256 == "e" * 64
    assert c.champion_value is None and c.champion_version is None and c.candidate_value is None
    bare = Candidate.from_tags("3", None, {})
    assert bare == Candidate("3")


def test_history_records_the_candidates_lineage_and_verdict() -> None:
    mdep = _mdep(_running())
    job = JobState("reviews-retrain-abc", NOW, "Succeeded", NOW + timedelta(minutes=3))
    candidate = Candidate.from_tags("2", "run-1", TAGS)
    plan = plan_retraining(mdep, None, [job], candidate, 0, NOW + timedelta(minutes=4), 20)
    succeeded, rejected = plan.mdep.status.history
    for record in (succeeded, rejected):
        assert (record.version, record.job, record.run_id) == ("2", job.name, "run-1")
        assert (record.dataset_id, record.dataset_sha256) == ("ds-20261126-1", "d" * 64)
        assert (record.git_commit, record.code_sha256) == ("c0ffee", "e" * 64)
    assert succeeded.event == "RetrainingSucceeded" and succeeded.decision is None
    assert succeeded.candidate_value is None and succeeded.metric is None
    assert rejected.event == "Rejected" and rejected.decision == "rejected"
    assert (rejected.metric, rejected.candidate_value, rejected.champion_value) == (
        "macro_f1",
        0.86,
        0.88,
    )
    assert rejected.champion_version == "1"
    # as written to the status subresource (camelCase, numbers as numbers, unset left out)
    written = dump(plan.mdep.status)["history"]
    assert written[1] == {
        "time": "2026-11-26T12:04:00Z",
        "event": "Rejected",
        "version": "2",
        "job": job.name,
        "message": "version 2 rejected: macro_f1 0.86 vs champion 0.88",
        "runId": "run-1",
        "datasetId": "ds-20261126-1",
        "datasetSha256": "d" * 64,
        "gitCommit": "c0ffee",
        "codeSha256": "e" * 64,
        "decision": "rejected",
        "metric": "macro_f1",
        "candidateValue": 0.86,
        "championValue": 0.88,
        "championVersion": "1",
    }
    assert "decision" not in written[0] and written[0]["runId"] == "run-1"
    # and read back from it
    assert parse(Status, dump(plan.mdep.status), "status") == plan.mdep.status


def test_a_candidate_not_visible_yet_is_looked_up_again_for_a_bounded_time() -> None:
    """Job Complete, nothing tagged yet: no outcome and no new Job for CANDIDATE_GRACE after
    the Job's completion (its own time: a restart does not extend it); then "no candidate"."""
    finished = NOW + timedelta(minutes=3)
    mdep = _mdep(_running())
    mdep = dataclasses.replace(mdep, annotations={"textops.io/retrain": "again"})
    job = JobState("reviews-retrain-abc", NOW, "Succeeded", finished)
    soon = finished + CANDIDATE_GRACE - timedelta(seconds=1)
    for t in (finished + timedelta(seconds=5), soon):
        plan = plan_retraining(mdep, None, [job], None, 0, t, 20)
        assert plan.mdep.status.last_retraining == mdep.status.last_retraining  # still Running
        assert not plan.mdep.status.history and not plan.events and plan.start is None
        retraining = find(plan.mdep.status.conditions, "Retraining")
        assert retraining is not None
        assert (retraining.status, retraining.reason) == ("True", "AwaitingCandidate")
        assert "until 2026-11-26T12:05:00Z" in retraining.message
        assert unrecorded_success(_next(mdep, plan.mdep), [job]) == job  # look again next pass
    # found within the grace: recorded as usual
    found = plan_retraining(mdep, None, [job], Candidate("2", "promoted"), 0, soon, 20)
    events = [h.event for h in found.mdep.status.history]
    assert events[:2] == ["RetrainingSucceeded", "Promoted"]
    # not found once the grace is over: "no candidate" for good, and the manual request starts
    late = plan_retraining(mdep, None, [job], None, 0, finished + CANDIDATE_GRACE, 20)
    succeeded, started = late.mdep.status.history
    assert (succeeded.event, succeeded.job, succeeded.version) == (
        "RetrainingSucceeded",
        job.name,
        None,
    )
    assert started.event == "RetrainingStarted" and started.job != job.name
    assert [e.reason for e in late.events] == ["NoCandidate", "RetrainingStarted"]
    assert "looked for 2m after it finished" in late.events[0].message
    assert late.start is not None and late.start.kind == "manual"


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
