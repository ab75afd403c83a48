"""The demo's report: plots a person would open, and one HTML page that shows them.

``drift.png`` (both drift statistics over the whole run, as multiples of their thresholds),
``confusion-v1.png`` / ``confusion-v2.png`` (the shifted traffic, before and after
retraining), ``labelling.png`` (accuracy per segment per phase, and how much of the ranked
queue's top was the new segment compared with its share of the traffic).
"""

from __future__ import annotations

import html
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from textops.demo.scenario import KNOWN_SEGMENT, NEW_SEGMENT, Phase
from textops.model.plots import plot_confusion_matrix, plt


def confusion(
    truth: Sequence[str], predicted: Sequence[str], classes: Sequence[str]
) -> list[list[int]]:
    """Counts with rows = true class, columns = predicted class (pure)."""
    index = {c: i for i, c in enumerate(classes)}
    out = [[0] * len(classes) for _ in classes]
    for t, p in zip(truth, predicted, strict=True):
        out[index[t]][index[p]] += 1
    return out


def plot_drift(phases: Sequence[Phase], path: Path) -> Path:
    fig, ax = plt.subplots(figsize=(9, 4))
    offset = 0.0
    colours = ("#e8f4ea", "#fdecea", "#e8eef9")
    for phase, colour in zip(phases, colours, strict=False):
        xs = [offset + d["sent"] for d in phase.drift]
        ax.axvspan(offset, offset + len(phase.samples), color=colour, zorder=0)
        ax.text(
            offset + len(phase.samples) / 2,
            0.02,
            f"{phase.name}\n(v{phase.version})",
            ha="center",
            va="bottom",
            transform=ax.get_xaxis_transform(),
            fontsize=8,
        )
        first = offset == 0
        ax.plot(
            xs,
            [d["feature_ratio"] for d in phase.drift],
            "o-",
            color="#c0392b",
            ms=3,
            label="feature drift" if first else None,
        )
        ax.plot(
            xs,
            [d["prediction_ratio"] for d in phase.drift],
            "s-",
            color="#2471a3",
            ms=3,
            label="prediction drift" if first else None,
        )
        offset += len(phase.samples)
    ax.axhline(1.0, color="black", linestyle="--", linewidth=1, label="threshold")
    ax.legend(loc="upper left", fontsize=8)
    ax.set_xlabel("texts sent")
    ax.set_ylabel("statistic / threshold")
    ax.set_title("Drift over the demo (window of the last 1,000 texts)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_labelling(phases: Sequence[Phase], summary: dict[str, Any], path: Path) -> Path:
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    segments = (KNOWN_SEGMENT, NEW_SEGMENT, "all")
    width = 0.8 / len(phases)
    for k, phase in enumerate(phases):
        acc = summary["phases"][phase.name]["accuracy"]
        left.bar(
            np.arange(len(segments)) + k * width,
            [acc.get(s, 0.0) for s in segments],
            width,
            label=f"{phase.name} (v{phase.version})",
        )
    left.set_xticks(np.arange(len(segments)) + width, segments)
    left.set_ylim(0.5, 1.0)
    left.set_ylabel("accuracy (ground truth)")
    left.set_title("Quality per segment")
    left.legend(fontsize=8)
    order = np.array(summary["labelling_order"], dtype=float)
    if order.size:
        ranks = np.arange(1, order.size + 1)
        right.plot(ranks, np.cumsum(order) / ranks, color="#c0392b", label="ranked queue")
    share = summary["phases"]["shifted"]["new_segment_share"]
    right.axhline(share, color="grey", linestyle="--", label="share in the traffic")
    right.set_ylim(0, 1)
    right.set_xlabel("labels given (queue order)")
    right.set_ylabel("share of hotel reviews so far")
    right.set_title("What the annotator saw first")
    right.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def write_report(
    folder: Path,
    summary: dict[str, Any],
    phases: Sequence[Phase],
    classes: Sequence[str],
    title: str = "textops demo — the loop, once around",
) -> Path:
    """Write the plots and ``index.html`` into ``folder``; returns the page's path.

    ``summary`` has the keys :func:`textops.demo.loop.run_demo` writes: ``v1``/``v2`` with
    dataset, macro_f1 and gate decision/reason, ``dataset_v2.labels_added``, ``phases`` and
    ``labelling_order``."""
    folder.mkdir(parents=True, exist_ok=True)
    shifted, after = phases[1], phases[2]
    images = [
        plot_drift(phases, folder / "drift.png"),
        plot_confusion_matrix(
            confusion([s.label for s in shifted.samples], shifted.predicted, classes),
            list(classes),
            folder / "confusion-v1.png",
            f"v{shifted.version} on the shifted traffic",
        ),
        plot_confusion_matrix(
            confusion([s.label for s in after.samples], after.predicted, classes),
            list(classes),
            folder / "confusion-v2.png",
            f"v{after.version} on the same traffic",
        ),
        plot_labelling(phases, summary, folder / "labelling.png"),
    ]
    rows = "".join(
        f"<tr><td>{html.escape(name)}</td><td>v{p['version']}</td><td>{p['texts']}</td>"
        f"<td>{p['new_segment_share']:.0%}</td><td>{p['accuracy'].get('all', 0):.3f}</td>"
        f"<td>{p['accuracy'].get(NEW_SEGMENT, float('nan')):.3f}</td>"
        f"<td>{p['drift_final'].get('feature_ratio', 0):.2f}×</td>"
        f"<td>{p['drift_final'].get('prediction_ratio', 0):.2f}×</td></tr>"
        for name, p in summary["phases"].items()
    )
    page = f"""<!doctype html><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>body{{font-family:sans-serif;max-width:980px;margin:2em auto}}td,th{{padding:2px 10px}}
img{{max-width:100%}}pre{{background:#f4f4f4;padding:1em;overflow:auto}}</style>
<h1>{html.escape(title)}</h1>
<p>v1 trained on dataset <code>{summary["v1"]["dataset"]}</code> (macro-F1
{summary["v1"]["macro_f1"]}, {summary["v1"]["gate"]["decision"]}); v2 on
<code>{summary["v2"]["dataset"]}</code> (+{summary["dataset_v2"]["labels_added"]} labels;
macro-F1 {summary["v2"]["macro_f1"]}, {summary["v2"]["gate"]["decision"]}:
{html.escape(summary["v2"]["gate"]["reason"])}).</p>
<table border=1 cellspacing=0><tr><th>phase</th><th>served</th><th>texts</th><th>hotel</th>
<th>accuracy</th><th>hotel accuracy</th><th>feature drift</th><th>prediction drift</th></tr>
{rows}</table>
{"".join(f'<p><img src="{p.name}" alt="{p.stem}"></p>' for p in images)}
<h2>Summary</h2><pre>{html.escape(json.dumps(summary, indent=2, ensure_ascii=False))}</pre>
"""
    index = folder / "index.html"
    index.write_text(page, encoding="utf-8")
    return index
