"""A real MLflow tracking server: MariaDB backend store, S3 artifact store, proxied artifacts.

Why a real server: the project's training and promotion code talks to MLflow over HTTP, and
the failures that matter (collations on MariaDB, artifact uploads reaching S3, the registry)
only show up against the real stack.  Artifacts are proxied (`--artifacts-destination
s3://...`), so clients need only `MLFLOW_TRACKING_URI`; only the server holds S3 credentials.
Client retry settings in `client_env()` are short so a broken server fails a test in seconds,
not after MLflow's default minutes of back-off.
"""

from __future__ import annotations

import json
import os
import sys
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from textops.devservers.ports import LOOPBACK, free_port
from textops.devservers.s3 import MLFLOW_BUCKET, S3Server
from textops.processes import ManagedProcess, start_process, wait_until

# Environment for MLflow clients (tests, CLI runs): fail fast instead of retrying for minutes.
CLIENT_RETRY_ENV = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "0",
    "MLFLOW_HTTP_REQUEST_BACKOFF_JITTER": "0",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "30",
}


@dataclass
class MlflowServer:
    """A running `mlflow server`; `tracking_uri` is what clients need."""

    host: str
    port: int
    backend_store_uri: str
    artifacts_destination: str
    process: ManagedProcess = field(repr=False)

    @property
    def tracking_uri(self) -> str:
        return f"http://{self.host}:{self.port}"

    def client_env(self) -> dict[str, str]:
        """MLFLOW_TRACKING_URI plus short client retries/timeouts."""
        return {"MLFLOW_TRACKING_URI": self.tracking_uri, **CLIENT_RETRY_ENV}

    def log_path(self) -> Path:
        return self.process.log_path

    def stop(self) -> None:
        self.process.stop(timeout=30)

    def to_dict(self) -> dict[str, Any]:
        return {
            "host": self.host,
            "port": self.port,
            "backend_store_uri": self.backend_store_uri,
            "artifacts_destination": self.artifacts_destination,
            "process": self.process.to_dict(),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> MlflowServer:
        return cls(
            host=str(data["host"]),
            port=int(data["port"]),
            backend_store_uri=str(data["backend_store_uri"]),
            artifacts_destination=str(data["artifacts_destination"]),
            process=ManagedProcess.from_dict(data["process"]),
        )


def _get(url: str) -> tuple[int, bytes]:
    with urllib.request.urlopen(url, timeout=5) as resp:
        return int(resp.status), resp.read()


def _ready(base: str) -> bool:
    """/health says OK and the tracking API can read the Default experiment from the DB."""
    status, body = _get(base + "/health")
    if status != 200 or body.strip() != b"OK":
        return False
    query = urllib.parse.urlencode({"experiment_name": "Default"})
    status, body = _get(f"{base}/api/2.0/mlflow/experiments/get-by-name?{query}")
    return status == 200 and json.loads(body)["experiment"]["name"] == "Default"


def start_mlflow(
    base_dir: Path,
    *,
    backend_store_uri: str,
    s3: S3Server,
    bucket: str = MLFLOW_BUCKET,
    port: int | None = None,
    workers: int = 1,
    allowed_hosts: str | None = None,
    die_with_parent: bool = False,
    timeout: float = 300.0,
) -> MlflowServer:
    """Start `mlflow server` on a free loopback port; wait until its API answers.

    The first start against an empty database runs MLflow's schema migrations, which takes
    tens of seconds; `timeout` covers that.  The log is `base_dir/mlflow.log`.
    `allowed_hosts` is passed to `--allowed-hosts` (MLflow's default admits localhost,
    127.0.0.1 and private addresses); set it when clients reach the server by another name.
    `die_with_parent`: see `textops.processes.start_process`.
    """
    base_dir.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    destination = f"s3://{bucket}"
    argv = [
        sys.executable,
        "-m",
        "mlflow",
        "server",
        "--backend-store-uri",
        backend_store_uri,
        "--serve-artifacts",
        "--artifacts-destination",
        destination,
        "--host",
        LOOPBACK,
        "--port",
        str(port),
        "--workers",
        str(workers),
    ]
    if allowed_hosts:
        argv += ["--allowed-hosts", allowed_hosts]
    env = {
        **os.environ,
        **s3.env(),
        # The job runner (huey consumers) is for GenAI evaluation jobs we do not use; it would
        # only cost processes and CPU on a shared machine.
        "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
        "PYTHONUNBUFFERED": "1",
    }
    env.pop("MLFLOW_TRACKING_URI", None)
    proc = start_process(
        "mlflow",
        argv,
        base_dir / "mlflow.log",
        env=env,
        cwd=base_dir,
        die_with_parent=die_with_parent,
    )
    server = MlflowServer(
        host=LOOPBACK,
        port=port,
        backend_store_uri=backend_store_uri,
        artifacts_destination=destination,
        process=proc,
    )
    try:
        wait_until(
            lambda: _ready(server.tracking_uri),
            timeout=timeout,
            what="waiting for MLflow /health and the experiments API",
            proc=proc,
            interval=0.5,
        )
    except BaseException:
        proc.stop()
        raise
    return server
