"""The operator's metrics: the pure mapping from status to series, then the registry itself.

The pure part (``first_sight``, ``read``, ``gauge_samples``) is checked on status dicts as the
API server returns them; the :class:`Exporter` is checked through the exposition text
(``generate_latest``), which `promtool check metrics` must accept.
"""

from __future__ import annotations

import shutil
import subprocess
from typing import Any

import pytest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from textops.operator.metrics import (
    PHASES,
    Count,
    Exporter,
    Memory,
    Serving,
    first_sight,
    gauge_samples,
    read,
)

NS, NAME, MODEL = "shop", "reviews", "reviews-sentiment"
JOB1, JOB2 = "reviews-retrain-0123456789", "reviews-retrain-abcdef0123"


def record(time: str, event: str, **fields: Any) -> dict[str, Any]:
    return {"time": f"2026-11-26T{time}Z", "event": event, **fields}


def body(*history: dict[str, Any], **status: Any) -> dict[str, Any]:
    return {
        "metadata": {"namespace": NS, "name": NAME},
        "spec": {"model": {"name": MODEL, "alias": "champion"}},
        "status": {"history": list(history), **status},
    }


STARTED = record("10:00:00", "RetrainingStarted", job=JOB1, message="feature drift")
SUCCEEDED = record(
    "10:10:00",
    "RetrainingSucceeded",
    version="2",
    job=JOB1,
    runId="run-2",
    datasetId="ds-2",
)
PROMOTED = record(
    "10:10:00",
    "Promoted",
    version="2",
    job=JOB1,
    runId="run-2",
    datasetId="ds-2",
    decision="promoted",
)
ROLLED_OUT = record("10:11:00", "RolledOut", version="2")
LAST_JOB1 = {
    "job": JOB1,
    "trigger": "drift",
    "startedAt": "2026-11-26T10:00:00Z",
    "finishedAt": "2026-11-26T10:08:00Z",
    "result": "Succeeded",
    "candidateVersion": "2",
    "decision": "promoted",
}


# --------------------------------------------------------------------------- pure part


def test_one_phase_gauge_is_1_and_the_others_0() -> None:
    samples = gauge_samples(read(body(phase="Retraining"), Memory()))
    phases = {labels[3]: v for (metric, labels), v in samples.items() if metric == "phase"}
    assert phases == {p: 1.0 if p == "Retraining" else 0.0 for p in PHASES}
    no_phase = gauge_samples(read(body(), Memory()))
    assert {v for (m, _), v in no_phase.items() if m == "phase"} == {0.0}


def test_each_condition_has_a_series_per_status_with_1_on_the_current_one() -> None:
    conditions = [
        {"type": "Ready", "status": "True", "lastTransitionTime": "2026-11-26T10:00:00Z",
         "reason": "Available", "message": "1/1"},
        {"type": "Drifting", "status": "False", "lastTransitionTime": "2026-11-26T10:00:00Z",
         "reason": "NoDrift", "message": "quiet"},
    ]  # fmt: skip
    samples = gauge_samples(read(body(conditions=conditions), Memory()))
    got = {labels: v for (metric, labels), v in samples.items() if metric == "condition"}
    assert got == {
        (NS, NAME, "Ready", "True"): 1.0,
        (NS, NAME, "Ready", "False"): 0.0,
        (NS, NAME, "Ready", "Unknown"): 0.0,
        (NS, NAME, "Drifting", "True"): 0.0,
        (NS, NAME, "Drifting", "False"): 1.0,
        (NS, NAME, "Drifting", "Unknown"): 0.0,
    }


def test_retraining_running_follows_last_retraining_result() -> None:
    running = read(body(lastRetraining={"job": JOB1, "result": "Running"}), Memory())
    assert gauge_samples(running)["retraining_running", (NS, NAME, MODEL)] == 1.0
    done = read(body(lastRetraining=LAST_JOB1), Memory())
    assert gauge_samples(done)["retraining_running", (NS, NAME, MODEL)] == 0.0


def test_history_records_are_counted_once_with_their_outcome_and_decision() -> None:
    memory = first_sight(body())
    first = read(body(STARTED, lastRetraining={**LAST_JOB1, "result": "Running"}), memory)
    assert first.counts == ()  # a start is not counted
    done = body(STARTED, SUCCEEDED, PROMOTED, lastRetraining=LAST_JOB1)
    second = read(done, first.memory)
    assert second.counts == (
        Count("retraining", "succeeded", "drift", 480.0),  # finishedAt - startedAt
        Count("promotion", "promoted"),
    )
    assert read(done, second.memory).counts == ()  # the next pass: nothing new
    third = read(body(STARTED, SUCCEEDED, PROMOTED, ROLLED_OUT, lastRetraining=LAST_JOB1),
                 second.memory)  # fmt: skip
    assert third.counts == (Count("rollout", "rolled_out"),)


@pytest.mark.parametrize(
    ("event", "expected"),
    [
        ("RetrainingFailed", Count("retraining", "failed", "manual", 120.0)),
        ("Rejected", Count("promotion", "rejected")),
        ("RolledBack", Count("rollout", "rolled_back")),
        ("RolledOut", Count("rollout", "rolled_out")),
        ("Promoted", Count("promotion", "promoted")),
    ],
)
def test_each_event_maps_to_its_counter(event: str, expected: Count) -> None:
    last = {
        "job": JOB2,
        "trigger": "manual",
        "startedAt": "2026-11-26T11:00:00Z",
        "finishedAt": "2026-11-26T11:02:00Z",
        "result": "Failed",
    }
    new = record("11:02:05", event, job=JOB2, version="3")
    assert read(body(new, lastRetraining=last), Memory()).counts == (expected,)


def test_without_last_retraining_the_duration_comes_from_the_started_record() -> None:
    started = record("11:00:00", "RetrainingStarted", job=JOB2)
    failed = record("11:05:00", "RetrainingFailed", job=JOB2)
    [count] = read(body(started, failed, lastRetraining=LAST_JOB1), Memory()).counts
    assert count == Count("retraining", "failed", "", 300.0)  # JOB2's trigger is unknown


def test_first_sight_takes_the_history_as_baseline() -> None:
    """After a restart the records in status were counted by the previous process."""
    old = body(STARTED, SUCCEEDED, PROMOTED, ROLLED_OUT, lastRetraining=LAST_JOB1)
    assert read(old, first_sight(old)).counts == ()
    # records written by the first pass after the restart are new against its starting body
    rolled_back = record("12:00:00", "RolledBack", version="3")
    after = body(STARTED, SUCCEEDED, PROMOTED, ROLLED_OUT, rolled_back, lastRetraining=LAST_JOB1)
    assert read(after, first_sight(old)).counts == (Count("rollout", "rolled_back"),)


def test_records_at_the_same_second_are_distinct_events() -> None:
    twice = (
        record("10:00:00", "RolledOut", version="1"),
        record("10:00:00", "RolledOut", version="2"),
    )
    assert len(read(body(*twice), Memory()).counts) == 2  # fmt: skip


def test_serving_lineage_comes_from_the_versions_history_records() -> None:
    status = {"servingVersion": "2", "lastRetraining": LAST_JOB1}
    reading = read(body(STARTED, SUCCEEDED, PROMOTED, ROLLED_OUT, **status), Memory())
    assert reading.serving == Serving("2", run_id="run-2", dataset="ds-2", trigger="drift")
    # a later Job replaces lastRetraining: the trigger of JOB1 is remembered
    later = {**status, "lastRetraining": {"job": JOB2, "trigger": "manual", "result": "Running"}}
    started2 = record("12:00:00", "RetrainingStarted", job=JOB2)
    again = read(body(STARTED, SUCCEEDED, PROMOTED, ROLLED_OUT, started2, **later), reading.memory)
    assert again.serving == reading.serving
    # a version the operator never saw trained (the seed): empty lineage, not a guess
    seed = read(body(servingVersion="1"), Memory())
    assert seed.serving == Serving("1")
    assert read(body(), Memory()).serving is None


def test_memory_forgets_what_left_the_history() -> None:
    reading = read(body(STARTED, SUCCEEDED, lastRetraining=LAST_JOB1), Memory())
    assert reading.memory.triggers == {JOB1: "drift"}
    assert len(reading.memory.counted) == 2
    gone = read(body(ROLLED_OUT), reading.memory)  # bounded history: old records dropped
    assert gone.memory.triggers == {} and len(gone.memory.counted) == 1


def test_an_invalid_spec_still_exports_its_status() -> None:
    invalid = body(phase="Failed")
    invalid["spec"] = {"model": {"name": MODEL}}  # neither alias nor version
    assert gauge_samples(read(invalid, Memory()))["phase", (NS, NAME, MODEL, "Failed")] == 1.0


def test_an_unreadable_status_exports_nothing_and_keeps_the_count() -> None:
    memory = read(body(STARTED, SUCCEEDED, lastRetraining=LAST_JOB1), Memory()).memory
    broken = body(phase="Sleeping")  # not a phase
    reading = read(broken, memory)
    assert (reading.counts, reading.memory) == ((), memory)
    assert read(body(STARTED, SUCCEEDED, lastRetraining=LAST_JOB1), memory).counts == ()


# --------------------------------------------------------------------------- the registry


def samples(exporter: Exporter) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    text = generate_latest(exporter.registry).decode()
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(exporter: Exporter, name: str, **labels: str) -> float | None:
    want = {"namespace": NS, "name": NAME, **labels}
    found = [
        v
        for (n, ls), v in samples(exporter).items()
        if n == name and want.items() <= dict(ls).items()
    ]
    assert len(found) <= 1, found
    return found[0] if found else None


def test_exporter_counts_new_events_and_starts_counters_at_zero() -> None:
    exporter = Exporter()
    before = body(servingVersion="1", phase="Serving")
    exporter.update(before, before)
    retrainings = "textops_operator_retrainings_total"
    assert value(exporter, retrainings, trigger="drift", outcome="succeeded") == 0.0
    assert value(exporter, "textops_operator_promotions_total", decision="rejected") == 0.0
    after = body(
        STARTED, SUCCEEDED, PROMOTED, ROLLED_OUT, servingVersion="2", lastRetraining=LAST_JOB1
    )
    exporter.update(after, before)
    exporter.update(after, after)  # the timer again: nothing new
    assert value(exporter, retrainings, trigger="drift", outcome="succeeded") == 1.0
    assert value(exporter, "textops_operator_promotions_total", decision="promoted") == 1.0
    assert value(exporter, "textops_operator_rollouts_total", outcome="rolled_out") == 1.0
    duration = "textops_operator_retraining_duration_seconds_bucket"
    assert value(exporter, duration, outcome="succeeded", le="300.0") == 0.0
    assert value(exporter, duration, outcome="succeeded", le="600.0") == 1.0


def test_exporter_replaces_the_serving_info_when_the_version_changes() -> None:
    exporter = Exporter()
    info = "textops_operator_serving_version_info"
    v1 = body(servingVersion="1")
    exporter.update(v1, v1)
    assert value(exporter, info, version="1") == 1.0
    exporter.update(
        body(STARTED, SUCCEEDED, PROMOTED, servingVersion="2", lastRetraining=LAST_JOB1)
    )
    assert value(exporter, info, version="1") is None
    assert value(exporter, info, version="2", run_id="run-2", dataset="ds-2", trigger="drift") == 1


def test_exporter_forgets_a_deleted_resource() -> None:
    exporter = Exporter()
    other = body(phase="Serving")
    other["metadata"] = {"namespace": NS, "name": "other"}
    exporter.update(other)
    exporter.update(body(STARTED, SUCCEEDED, phase="Serving", lastRetraining=LAST_JOB1))
    exporter.forget(NS, NAME)
    names = {dict(labels).get("name") for _, labels in samples(exporter)}
    assert names == {"other"}
    # seen again (re-created under the same name): a new baseline, no stale memory
    exporter.update(body(phase="Pending"))
    assert value(exporter, "textops_operator_phase", phase="Pending") == 1.0


def test_exposition_passes_promtool() -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.fail("promtool is missing: make system-deps installs Debian's prometheus")
    exporter = Exporter()
    conditions = [{"type": "Ready", "status": "True", "lastTransitionTime": "2026-11-26T10:00:00Z",
                   "reason": "Available", "message": "1/1"}]  # fmt: skip
    full = body(
        STARTED,
        SUCCEEDED,
        PROMOTED,
        ROLLED_OUT,
        servingVersion="2",
        phase="Serving",
        conditions=conditions,
        lastRetraining=LAST_JOB1,
    )
    exporter.update(full, body())
    text = generate_latest(exporter.registry)
    done = subprocess.run(
        [promtool, "check", "metrics"], input=text, capture_output=True, timeout=30
    )
    assert done.returncode == 0, (done.stdout + done.stderr).decode()
    assert b"textops_operator_condition" in text


def test_metrics_port_is_off_unless_asked_for(monkeypatch: pytest.MonkeyPatch) -> None:
    from textops.operator.main import parse_args

    monkeypatch.delenv("TEXTOPS_METRICS_PORT", raising=False)
    assert parse_args([]).metrics_port == 0
    monkeypatch.setenv("TEXTOPS_METRICS_PORT", "8081")
    assert parse_args([]).metrics_port == 8081
    assert parse_args(["--metrics-port", "9100"]).metrics_port == 9100
