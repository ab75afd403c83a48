"""``make demo`` / ``textops demo``: the closed loop on one machine, stage by stage.

Snapshot a first training set (book and computer reviews), train and promote v1, serve it for
real (``bentoml serve``), replay in-distribution traffic and then traffic that is 30 % hotel
reviews, watch the drift gauges cross their thresholds, let a simulated annotator label the
top of the ranked labelling queue from ground truth, export the labels as a new dataset
version, retrain, gate, promote v2, serve v2 and replay new traffic from the same shifted mix
to show drift and quality recovering. Every run gets its own folder (stores, logs, report), so the
demo can be re-run and compared; servers configured in the environment are used instead of
the embedded stores.
"""

from __future__ import annotations

import json
import os
import secrets
import time
from collections.abc import Callable
from contextlib import ExitStack
from datetime import UTC, datetime
from typing import Any

from textops.contracts import Alias, Env
from textops.data.snapshot import take_snapshot
from textops.data.sources import builtin_corpus
from textops.data.validation import validate_records
from textops.demo.client import DriftReading, ServiceClient
from textops.demo.report import write_report
from textops.demo.scenario import (
    NEW_SEGMENT,
    DemoSize,
    Phase,
    Scenario,
    build_scenario,
    feedback_plan,
    phase_traffic,
    segment_of,
)
from textops.demo.service import running_service
from textops.labelling.export import export_labels
from textops.progress import Progress
from textops.registry.gate import GateResult, promote
from textops.registry.promotion import PromotionPolicy
from textops.serving.model_loader import resolve
from textops.settings import Settings, load_settings
from textops.training.pipeline import TrainResult, train

STAGES = 11
DRIFT_WINDOW = 1000
DRIFT_INTERVAL_S = 1.0


def run_demo(
    settings: Settings, policy: PromotionPolicy, size: DemoSize | None = None
) -> dict[str, Any]:
    """Run the whole loop in a fresh folder under ``settings.home``; returns the summary."""
    size = size or DemoSize()
    started = time.perf_counter()
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    run_dir = settings.home / "demo" / stamp
    run = load_settings({**os.environ, Env.HOME: str(run_dir)})
    progress = Progress(total=STAGES + 8)  # training adds its own stages twice
    progress.say(f"demo folder: {run_dir}")
    token = secrets.token_urlsafe(16)
    serving_env = {
        Env.HOME: str(run.home),
        Env.MLFLOW_TRACKING_URI: run.tracking_uri,
        Env.LABEL_DB: run.label_db,
        Env.DATA_URI: run.data_uri,
        Env.ARTIFACTS: str(run.artifact_root),
        Env.LABEL_TOKEN: token,
        Env.DRIFT_WINDOW: str(DRIFT_WINDOW),
        Env.DRIFT_INTERVAL_S: str(DRIFT_INTERVAL_S),
        Env.DRIFT_SAMPLES_PER_S: "0",  # every text: the demo replays faster than real time
    }

    with progress.stage("snapshot the first training set (books + computers)"):
        rows = validate_records(builtin_corpus(), drop_duplicates=True).rows
        scenario = build_scenario(rows, size.first_training, size.seed)
        first_file = run_dir / "first-training.jsonl"
        first_file.parent.mkdir(parents=True, exist_ok=True)
        first_file.write_text(
            "".join(
                json.dumps({"text": r.text, "label": r.label}, ensure_ascii=False) + "\n"
                for r in scenario.first_training
            ),
            encoding="utf-8",
        )
        v1_data = take_snapshot(run, first_file).dataset.manifest
        progress.say(f"    {v1_data.id}: {v1_data.rows} rows {v1_data.label_counts}")
    v1 = train(run, v1_data.id, progress=progress)
    with progress.stage("promotion gate for v1"):
        gate1 = promote(run, policy, v1_data.id)
        progress.say(f"    {gate1.decision.outcome}: {gate1.decision.reason}")

    shift = (size.shifted, size.new_share)
    plan = [(size.in_distribution, 0.0), shift, shift]
    texts_before, texts_shifted, texts_after = phase_traffic(scenario, plan, size.seed)
    before = Phase("in-distribution", "", texts_before)
    shifted = Phase("shifted", "", texts_shifted)
    with ExitStack() as stack:
        with progress.stage("serve the champion (bentoml serve)"):
            v1_uri = resolve(run, f"models:/{run.model_name}@{Alias.CHAMPION}").uri
            url = stack.enter_context(
                running_service(v1_uri, serving_env, run_dir / "logs" / "serve-v1.log")
            )
            progress.say(f"    {v1_uri} ready at {url}")
        client = ServiceClient(url, label_token=token)
        stack.callback(client.close)
        with progress.stage("replay in-distribution traffic"):
            _replay_locally(client, before, size, progress)
        with progress.stage(f"replay shifted traffic ({size.new_share:.0%} hotel reviews)"):
            _replay_locally(client, shifted, size, progress)
        with progress.stage("annotate the top of the labelling queue"):
            labelling = annotate(client, scenario, size.labels, progress)

    with progress.stage("export the labels as a new dataset version"):
        exported = export_labels(run, v1_data.id)
        progress.say(
            f"    {exported['dataset']} (parent {exported['parent']}): {exported['rows']} rows, "
            f"{exported['labels_added']} labels added"
        )
    v2 = train(
        run, exported["dataset"], progress=progress, reference_traffic=size.reference_traffic
    )
    with progress.stage("promotion gate for v2"):
        gate2 = promote(run, policy, exported["dataset"])
        progress.say(f"    {gate2.decision.outcome}: {gate2.decision.reason}")

    after = Phase("after retraining", "", texts_after)
    with progress.stage("serve the new champion and replay the shifted traffic"):
        v2_uri = resolve(run, f"models:/{run.model_name}@{Alias.CHAMPION}").uri
        with running_service(v2_uri, serving_env, run_dir / "logs" / "serve-v2.log") as url2:
            client = ServiceClient(url2, label_token=token)
            try:
                _replay_locally(client, after, size, progress)
            finally:
                client.close()

    with progress.stage("write the report"):
        phases = [before, shifted, after]
        summary = _summary(run, v1, v2, gate1, gate2, phases, labelling, exported, size)
        summary["seconds"] = _seconds(progress, started)
        report = write_report(run_dir / "report", summary, phases, v1.evaluation.classes)
        summary["report"] = str(report)
    summary["seconds"] = _seconds(progress, started)
    summary.pop("labelling_order")
    (report.parent / "summary.json").write_text(
        json.dumps(summary, indent=2, ensure_ascii=False), encoding="utf-8"
    )
    progress.say(_headline(summary))
    return summary


def _seconds(progress: Progress, started: float) -> dict[str, float]:
    """Time per stage (training's own stages are summed over both trainings) and in total."""
    return {
        **{k: round(v, 1) for k, v in progress.timings.items()},
        "total": round(time.perf_counter() - started, 1),
    }


def replay(
    client: ServiceClient,
    phase: Phase,
    size: DemoSize,
    progress: Progress,
    read_drift: Callable[[Phase], DriftReading | None],
    texts_per_s: float = 0.0,
) -> None:
    """Send the phase's texts chunk by chunk (no faster than ``texts_per_s`` when set), give
    feedback, and record ``read_drift``'s reading after each chunk."""
    started = time.perf_counter()
    plan = feedback_plan(phase.samples, size)
    for k, lo in enumerate(range(0, len(phase.samples), size.chunk)):
        if texts_per_s > 0:  # the sender's rate, not a wait for something to happen
            time.sleep(max(0.0, started + lo / texts_per_s - time.perf_counter()))
        chunk = phase.samples[lo : lo + size.chunk]
        answers = client.predict_all([s.text for s in chunk])
        phase.predicted += [str(a["label"]) for a in answers]
        for i in plan[k]:
            tally = client.feedback(str(answers[i]["id"]), chunk[i].label)
            phase.online_accuracy = float(tally["summary"]["accuracy"])
            phase.feedback += 1
        reading = read_drift(phase)
        if reading is not None:
            record_drift(phase, reading, lo + len(chunk))
        done = lo + len(chunk)
        if done % (size.chunk * 4) == 0 or done == len(phase.samples):
            rate = done / max(time.perf_counter() - started, 1e-9)
            drift = (
                f"feature {reading.feature_ratio:.2f}x / prediction "
                f"{reading.prediction_ratio:.2f}x of threshold"
                if reading
                else "no window yet"
            )
            progress.say(f"    {done}/{len(phase.samples)} texts ({rate:.0f}/s), drift {drift}")


def _replay_locally(
    client: ServiceClient, phase: Phase, size: DemoSize, progress: Progress
) -> None:
    """Replay against the local service as fast as it answers; drift from its /metrics."""
    replay(client, phase, size, progress, lambda ph: _next_drift(client, ph))
    phase.version = _served_version(client)


def record_drift(phase: Phase, reading: DriftReading, sent: int) -> None:
    """Append one drift reading, taken after ``sent`` texts of the phase."""
    phase.drift.append(
        {
            "sent": float(sent),
            "feature_ratio": reading.feature_ratio,
            "prediction_ratio": reading.prediction_ratio,
            "feature": reading.feature,
            "feature_threshold": reading.feature_threshold,
            "prediction": reading.prediction,
            "prediction_threshold": reading.prediction_threshold,
            "window": float(reading.samples),
        }
    )


def _served_version(client: ServiceClient) -> str:
    return next(
        (
            dict(labels)["version"]
            for name, labels in client.metrics()
            if name == "textops_model_info"
        ),
        "?",
    )


def _next_drift(client: ServiceClient, phase: Phase) -> DriftReading | None:
    """The first drift evaluation that includes the chunk just sent (polled, bounded)."""
    previous = phase.drift[-1] if phase.drift else None
    deadline = time.monotonic() + 10 * DRIFT_INTERVAL_S
    reading = None
    while time.monotonic() < deadline:
        latest = client.drift()
        reading = latest or reading
        if latest is not None and (
            previous is None
            or (latest.feature, latest.prediction) != (previous["feature"], previous["prediction"])
        ):
            return latest
        time.sleep(DRIFT_INTERVAL_S / 4)
    return reading


def annotate(
    client: ServiceClient, scenario: Scenario, budget: int, progress: Progress
) -> dict[str, Any]:
    """A simulated annotator labels the queue's top ``budget`` items from ground truth."""
    truth = scenario.truth()
    queued = int(client.labelling_stats().get("queued", 0))
    labelled: list[dict[str, Any]] = []
    while len(labelled) < budget:
        page = client.queue(limit=min(200, budget - len(labelled)))
        if not page:
            break
        for item in page:
            label = truth.get(item["text"])
            if label is None:  # not a text the simulated world sent: cannot happen, but skip
                continue
            client.label(item["id"], label, annotator="demo-annotator")
            labelled.append({**item, "true_label": label, "segment": segment_of(item["text"])})
        progress.say(f"    labelled {len(labelled)}/{budget}")
    new = sum(i["segment"] == NEW_SEGMENT for i in labelled)
    wrong = sum(i["predicted_label"] != i["true_label"] for i in labelled)
    return {
        "queued_before": queued,
        "labelled": len(labelled),
        "new_segment": new,
        "model_was_wrong": wrong,
        "reasons": _count(i.get("reason", "?") for i in labelled),
        "order_new_segment": [int(i["segment"] == NEW_SEGMENT) for i in labelled],
    }


def _count(values: Any) -> dict[str, int]:
    out: dict[str, int] = {}
    for v in values:
        out[str(v)] = out.get(str(v), 0) + 1
    return out


def _summary(
    run: Settings,
    v1: TrainResult,
    v2: TrainResult,
    gate1: GateResult,
    gate2: GateResult,
    phases: list[Phase],
    labelling: dict[str, Any],
    exported: dict[str, Any],
    size: DemoSize,
) -> dict[str, Any]:
    return {
        "folder": str(run.home),
        "tracking_uri": run.tracking_uri,
        "size": size.__dict__,
        "v1": {**v1.summary(), "gate": gate1.summary()},
        "v2": {**v2.summary(), "gate": gate2.summary()},
        "phases": {p.name: p.summary() for p in phases},
        "labelling": {k: v for k, v in labelling.items() if k != "order_new_segment"},
        "labelling_order": labelling["order_new_segment"],
        "dataset_v2": {k: exported[k] for k in ("dataset", "parent", "rows", "labels_added")},
    }


def _headline(summary: dict[str, Any]) -> str:
    p = summary["phases"]
    lines = ["", "textops demo — summary"]
    lines.append(
        f"  v1 (dataset {summary['v1']['dataset']}): macro-F1 {summary['v1']['macro_f1']}"
        f" → {summary['v1']['gate']['decision']}"
    )
    lines.append(
        f"  v2 (dataset {summary['v2']['dataset']}, +{summary['dataset_v2']['labels_added']} "
        f"labels): macro-F1 {summary['v2']['macro_f1']} → {summary['v2']['gate']['decision']}"
    )
    lines += [phase_line(name, ph) for name, ph in p.items()]
    lab = summary["labelling"]
    lines.append(
        f"  labelling: {lab['labelled']} labelled of {lab['queued_before']} queued, "
        f"{lab['new_segment']} hotel, model wrong on {lab['model_was_wrong']}"
    )
    lines.append(f"  report: {summary['report']}  ({summary['seconds']['total']:.0f}s)")
    return "\n".join(lines)


def phase_line(name: str, phase: dict[str, Any]) -> str:
    """One phase of the summary: served version, accuracy, drift against its thresholds."""
    d, accuracy = phase["drift_final"], phase["accuracy"]
    return (
        f"  {name:<18} v{phase['version']}: accuracy {accuracy.get('all', 0):.3f}"
        f" (hotel {accuracy.get(NEW_SEGMENT, float('nan')):.3f}), drift feature "
        f"{d.get('feature_ratio', 0):.2f}x / prediction {d.get('prediction_ratio', 0):.2f}x"
        f" of threshold{'  DRIFT' if phase['drifted'] else ''}"
    )
