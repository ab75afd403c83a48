"""Run the real serving process for the demo: ``bentoml serve`` as a child, as in the pod.

The child gets the pinned ``models:/NAME/VERSION`` and the demo's serving settings through
its environment; :func:`running_service` waits for ``/readyz`` and always stops the child.
"""

from __future__ import annotations

import os
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from textops.errors import TextopsError
from textops.serving.config import MODEL_URI_ENV
from textops.serving.launcher import bentoml_argv

READY_TIMEOUT_S = 300.0


def free_port() -> int:
    """A TCP port nobody listens on right now (the OS picks it)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_ready(url: str, child: subprocess.Popen[bytes], timeout: float = READY_TIMEOUT_S) -> None:
    """Return once ``url/readyz`` answers 200; raise if the child exits or time runs out."""
    deadline = time.monotonic() + timeout
    while child.poll() is None:
        try:
            with urllib.request.urlopen(f"{url}/readyz", timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        if time.monotonic() > deadline:
            raise TextopsError(f"the service at {url} was not ready after {timeout:.0f}s")
        time.sleep(0.2)
    raise TextopsError(f"the service for {url} exited with status {child.returncode}")


@contextmanager
def running_service(model_uri: str, env: Mapping[str, str], log_path: Path) -> Iterator[str]:
    """Serve the pinned ``model_uri`` on a free local port; yields its base URL."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as log:
        child = subprocess.Popen(
            bentoml_argv("127.0.0.1", port),
            env={**os.environ, **env, MODEL_URI_ENV: model_uri, "PYTHONUNBUFFERED": "1"},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            wait_ready(url, child)
            yield url
        finally:
            _stop(child)


def _stop(child: subprocess.Popen[bytes]) -> None:
    if child.poll() is not None:
        return
    child.terminate()
    try:
        child.wait(timeout=30)
    except subprocess.TimeoutExpired:
        child.kill()
        child.wait()
