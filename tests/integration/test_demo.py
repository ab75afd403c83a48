"""`textops demo` turns the whole loop for real (small sizes): what `make demo` runs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.slow]

SMALL = ["--first-training", "2500", "--in-distribution", "1000", "--shifted", "2000"]
SMALL += ["--labels", "300"]


def test_demo_detects_the_shift_labels_retrains_and_reports(tmp_path: Path) -> None:
    env = {**os.environ, "TEXTOPS_HOME": str(tmp_path)}
    for name in ("MLFLOW_TRACKING_URI", "TEXTOPS_DATA_URI", "TEXTOPS_LABEL_DB"):
        env.pop(name, None)  # the embedded defaults, as on a newcomer's machine
    done = subprocess.run(
        [sys.executable, "-m", "textops", "demo", "--json", *SMALL],
        env=env,
        capture_output=True,
        text=True,
        timeout=1200,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads(done.stdout)
    assert "[1/" in done.stderr  # progress is visible while it runs

    assert summary["v1"]["gate"]["decision"] == "promoted"
    phases = summary["phases"]
    assert phases["in-distribution"]["version"] == "1"
    assert phases["in-distribution"]["new_segment_share"] == 0.0
    assert phases["shifted"]["new_segment_share"] == 0.3
    assert phases["shifted"]["drifted"] is True
    # the shift shows against the in-distribution baseline (the absolute level of a small
    # model's calibrated thresholds is what the default-size demo reports)
    quiet = phases["in-distribution"]["drift_final"]["feature_ratio"]
    assert phases["shifted"]["drift_final"]["feature_ratio"] > quiet
    assert phases["shifted"]["feedback"] > 0 and phases["shifted"]["online_accuracy"] is not None

    labelling = summary["labelling"]
    assert 0 < labelling["labelled"] <= 300
    dataset = summary["dataset_v2"]
    assert dataset["parent"] == summary["v1"]["dataset"]
    assert dataset["labels_added"] > 0 and dataset["rows"] > 2500
    assert summary["v2"]["version"] == "2" and summary["v2"]["dataset"] == dataset["dataset"]
    served_after = phases["after retraining"]["version"]
    expected = "2" if summary["v2"]["gate"]["decision"] == "promoted" else "1"
    assert served_after == expected

    report = Path(summary["report"])
    for name in (
        "index.html",
        "drift.png",
        "confusion-v1.png",
        "confusion-v2.png",
        "labelling.png",
    ):
        assert (report.parent / name).stat().st_size > 0, name
    assert "textops demo" in report.read_text(encoding="utf-8")
    assert set(summary["seconds"]) >= {"total", "write the report"}
