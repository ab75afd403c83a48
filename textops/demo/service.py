"""Run the real serving process for the demo: ``bentoml serve`` as a child, as in the pod.

The child gets the pinned ``models:/NAME/VERSION`` and the demo's serving settings through
its environment; :func:`running_service` waits for ``/readyz`` and always stops the child.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from textops.contracts import Env
from textops.devservers.ports import free_port
from textops.errors import TextopsError
from textops.serving.launcher import bentoml_argv, wait_ready


@contextmanager
def running_service(model_uri: str, env: Mapping[str, str], log_path: Path) -> Iterator[str]:
    """Serve the pinned ``model_uri`` on a free local port; yields its base URL."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as log:
        child = subprocess.Popen(
            bentoml_argv("127.0.0.1", port),
            env={**os.environ, **env, Env.MODEL_URI: model_uri, "PYTHONUNBUFFERED": "1"},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            if not wait_ready(url, child):
                raise TextopsError(f"the service for {url} exited with status {child.returncode}")
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
