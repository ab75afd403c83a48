"""Evidently 0.7's default text and prediction drift on the windows of benchmarks/drift.py.

Runs in its own venv (Evidently wants pandas < 3, textops does not), so it imports nothing from
textops: it reads ``{"reference": {"text", "prediction"}, "windows": [{"text", "prediction"}]}``
as JSON and writes one line per window: the text column's drift score and verdict, the
prediction column's verdict, and the seconds the report took. Evidently picks the method by
itself (the default a user gets): a TF-IDF domain classifier for the text column, a z-test or
chi-square test for the predicted class.

    $VENV/bin/python benchmarks/drift_evidently.py IN.json OUT.jsonl
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

import pandas as pd
from evidently import DataDefinition, Dataset, Report
from evidently.metrics import ValueDrift


def verdict(snapshot: Any) -> dict[str, Any]:
    found: dict[str, Any] = {}
    data = snapshot.dict()
    for metric in data["metrics"]:
        column = metric["config"]["column"]
        found[f"{column}_score"] = metric["value"]
    for test in data.get("tests", []):
        column = "text" if "column text" in test["name"] else "prediction"
        found[f"{column}_drift"] = test["status"] == "FAIL"
    return found


def main() -> int:
    source, target = sys.argv[1], sys.argv[2]
    payload = json.loads(Path(source).read_text("utf-8"))
    definition = DataDefinition(text_columns=["text"], categorical_columns=["prediction"])
    reference = Dataset.from_pandas(pd.DataFrame(payload["reference"]), data_definition=definition)
    with open(target, "w", encoding="utf-8") as out:
        for i, window in enumerate(payload["windows"]):
            current = Dataset.from_pandas(pd.DataFrame(window), data_definition=definition)
            started = time.perf_counter()
            report = Report(
                [ValueDrift(column="text"), ValueDrift(column="prediction")], include_tests=True
            )
            found = verdict(report.run(current, reference))
            found["seconds"] = time.perf_counter() - started
            out.write(json.dumps(found) + "\n")
            if i % 25 == 0:
                print(f"evidently: window {i + 1}/{len(payload['windows'])}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
