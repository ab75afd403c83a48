"""``make demo`` / ``textops demo``: the loop as far as it exists, on embedded defaults.

Snapshot the built-in corpus, train, register the version as ``challenger``, run the
promotion gate (the first version becomes ``champion``), and print a summary with the time
each stage took.
"""

from __future__ import annotations

import time
from typing import Any

from textops.data.snapshot import take_snapshot
from textops.progress import Progress
from textops.registry.gate import promote
from textops.registry.promotion import PromotionPolicy
from textops.settings import Settings
from textops.training.pipeline import train


def run_demo(settings: Settings, policy: PromotionPolicy) -> dict[str, Any]:
    started = time.perf_counter()
    progress = Progress(total=6)
    with progress.stage("snapshot the built-in review corpus"):
        snap = take_snapshot(settings)
        m = snap.dataset.manifest
        progress.say(
            f"    {m.id}: {m.rows} rows {m.label_counts} "
            f"({'new' if snap.created else 'already stored'}; "
            f"{snap.report.summary()})"
        )
    result = train(settings, snap.dataset.id, progress=progress)
    with progress.stage("promotion gate"):
        gate = promote(settings, policy, snap.dataset.id)
        progress.say(f"    {gate.decision.outcome}: {gate.decision.reason}")
    return {
        "dataset": {"id": m.id, "rows": m.rows, "labels": m.label_counts, "store": snap.store_uri},
        "training": result.summary(),
        "promotion": gate.summary(),
        "tracking_uri": settings.tracking_uri,
        "seconds": {
            **{k: round(v, 1) for k, v in progress.timings.items()},
            "total": round(time.perf_counter() - started, 1),
        },
    }
