"""``textops serve``: resolve the URI to a pinned version, then run ``bentoml serve``.

The service runs as a child process (``bentoml serve textops.serving.app:...``), exactly as in
the container, so local runs exercise the same worker, batching and metrics set-up. This
process resolves an alias first (the child is given ``models:/NAME/VERSION``), says where it
listens, waits for ``/readyz`` and then for the child; Ctrl-C or SIGTERM stops the child.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from types import FrameType

from textops.contracts import Env
from textops.errors import TextopsError
from textops.serving.model_loader import ModelRef, resolve
from textops.settings import Settings

SERVICE = "textops.serving.app:TextClassifierService"
READY_TIMEOUT_S = 300.0


def bentoml_argv(host: str, port: int) -> list[str]:
    """``python -m bentoml serve`` with the venv's interpreter (no PATH lookup)."""
    return [sys.executable, "-m", "bentoml", "serve", SERVICE, "--host", host, "--port", str(port)]


def serve(settings: Settings, model_uri: str, host: str, port: int) -> int:
    """Serve ``model_uri`` until interrupted; returns the child's exit status."""
    ref: ModelRef = resolve(settings, model_uri)
    env = {**os.environ, Env.MODEL_URI: ref.uri, "PYTHONUNBUFFERED": "1"}
    # BentoML keeps its workers' metrics in $BENTOML_HOME/prometheus_multiproc_dir: two
    # services sharing the default ~/bentoml would report (and reset) each other's counters
    own_home = (
        None if os.environ.get("BENTOML_HOME") else tempfile.mkdtemp(prefix="textops-bentoml-")
    )
    if own_home is not None:
        env["BENTOML_HOME"] = own_home
    url = f"http://{host}:{port}"
    print(f"textops: serving {ref.uri} (from {model_uri}) at {url}", file=sys.stderr, flush=True)
    child = subprocess.Popen(bentoml_argv(host, port), env=env, cwd=Path.cwd())

    def stop(signum: int, _frame: FrameType | None) -> None:
        child.send_signal(signum)

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        if wait_ready(url, child):
            print(
                f"textops: ready at {url}/ (page), {url}/predict, {url}/feedback, "
                f"{url}/metrics, {url}/docs.json",
                file=sys.stderr,
                flush=True,
            )
        return child.wait()
    except KeyboardInterrupt:
        child.send_signal(signal.SIGINT)
        return child.wait()
    finally:
        signal.signal(signal.SIGTERM, previous)
        if child.poll() is None:
            child.terminate()
            try:
                child.wait(timeout=20)
            except subprocess.TimeoutExpired:
                child.kill()
        if own_home is not None:
            shutil.rmtree(own_home, ignore_errors=True)


def wait_ready(url: str, child: subprocess.Popen[bytes], timeout: float = READY_TIMEOUT_S) -> bool:
    """True once /readyz answers 200; False if the child exits first; raises on timeout."""
    deadline = time.monotonic() + timeout
    while child.poll() is None:
        try:
            with urllib.request.urlopen(f"{url}/readyz", timeout=2) as response:
                if response.status == 200:
                    return True
        except (urllib.error.URLError, OSError):
            pass
        if time.monotonic() > deadline:
            raise TextopsError(f"the service at {url} was not ready after {timeout:.0f}s")
        time.sleep(0.2)
    return False
