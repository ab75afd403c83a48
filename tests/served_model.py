"""A trained model served for real by ``textops serve``: the set-up the integration tests share.

Each test module that needs a running service trains the same small synthetic model (600
rows, 3 classes: its pinned holdout of ~120 rows is enough to calibrate the drift thresholds),
promotes it and serves ``@champion`` with its own serving settings.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from tests.synthetic import make_rows, write_jsonl
from textops.devservers.ports import LOOPBACK, free_port
from textops.processes import (
    ManagedProcess,
    descendant_pids,
    pid_alive,
    start_process,
    wait_until,
)

MODEL = "reviews-sentiment"


def clean_env(home: Path, **extra: str) -> dict[str, str]:
    """This process's environment without MLflow/textops settings, rooted at ``home``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "TEXTOPS_"))}
    env.update(TEXTOPS_HOME=str(home), PYTHONUNBUFFERED="1", **extra)
    return env


def run_cli(home: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "textops", *argv],
        capture_output=True,
        text=True,
        env=clean_env(home),
        timeout=300,
    )


def call(
    url: str,
    body: bytes | dict | None = None,
    content_type: str | None = "application/json",
    headers: dict[str, str] | None = None,
) -> tuple[int, dict]:
    """POST (or GET without a body); returns the status and the decoded JSON answer."""
    data = json.dumps(body, ensure_ascii=False).encode() if isinstance(body, dict) else body
    request = urllib.request.Request(
        url, data=data, method="POST" if data is not None else "GET", headers=headers or {}
    )
    if content_type and data is not None:
        request.add_header("Content-Type", content_type)
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return int(response.status), json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def http_status(url: str) -> int:
    """The HTTP status of a GET; 0 when nothing answers (yet)."""
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return exc.code
    except (urllib.error.URLError, OSError):
        return 0


def prepare_champion(base: Path, train_args: Sequence[str] = ()) -> Path:
    """Snapshot, train and promote the synthetic model under ``base/home``; returns the home."""
    home = base / "home"
    rows = write_jsonl(base / "rows.jsonl", make_rows(n_per_class=200, classes=3))
    for argv in (
        ("data", "snapshot", "--from", str(rows)),
        ("train", "--n-estimators", "20", *train_args),
        ("promote",),
    ):
        done = run_cli(home, *argv)
        assert done.returncode == 0, done.stderr
    return home


@contextmanager
def serve_champion(
    base: Path, name: str, train_args: Sequence[str] = (), **env: str
) -> Iterator[tuple[str, ManagedProcess]]:
    """Train, promote and serve the synthetic model under ``base/home``; yields (URL, process).

    ``train_args`` are added to ``textops train`` (say, an encoder folder); ``env`` is the
    service's own settings.
    """
    home = prepare_champion(base, train_args)
    with serving(base, home, name, **env) as served:
        yield served


@contextmanager
def serving(base: Path, home: Path, name: str, **env: str) -> Iterator[tuple[str, ManagedProcess]]:
    """``textops serve`` of ``@champion`` from ``home`` until the block ends; yields (URL,
    process). On exit the server and every BentoML worker (they run in process groups of
    their own) are gone."""
    port = free_port()
    proc = start_process(
        name,
        [sys.executable, "-m", "textops", "serve", f"models:/{MODEL}@champion", f"--port={port}"],
        base / f"{name}.log",
        env=clean_env(home, **env),
        cwd=base,
        die_with_parent=True,
    )
    url = f"http://{LOOPBACK}:{port}"
    # Each worker process loads its own model, and one connection reaches one worker: with
    # several, wait until many connections in a row found a ready one, so a worker still
    # loading has been asked too (it answers 503, which restarts the count).
    workers = int(env.get("TEXTOPS_WORKERS", "1"))
    in_a_row = 1 if workers == 1 else 16 * workers
    ready = [0]

    def all_ready() -> bool:
        ready[0] = ready[0] + 1 if http_status(f"{url}/readyz") == 200 else 0
        return ready[0] >= in_a_row

    try:
        wait_until(
            all_ready,
            timeout=240,
            what="waiting for the service's /readyz",
            proc=proc,
            interval=0.05,
        )
        yield url, proc
    finally:
        children = descendant_pids(proc.pid)
        proc.stop(timeout=30)
        wait_until(
            lambda: not any(pid_alive(p) for p in children),
            timeout=30,
            what="waiting for the BentoML workers to exit",
        )
