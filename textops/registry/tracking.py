"""Connecting to MLflow: one place that makes 'unreachable' a clear one-line error.

The embedded default (SQLite + a local artifact folder under ``TEXTOPS_HOME``) needs no server;
a remote ``http(s)://`` tracking URI is checked with a short health probe first, because the
MLflow client otherwise retries for minutes before failing.
"""

from __future__ import annotations

import os

import mlflow
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from textops.registry.health import MISSING_ERROR_CODES, probe
from textops.settings import Settings

__all__ = ["client_defaults", "connect", "ensure_experiment", "is_missing", "probe"]


def is_missing(exc: MlflowException) -> bool:
    """Whether MLflow said "no such thing" (rather than failed to answer)."""
    return exc.error_code in MISSING_ERROR_CODES


def client_defaults() -> None:
    """MLflow client settings every textops process uses, unless the environment says else.

    - bounded retries: a dead server should fail in seconds, not minutes;
    - artifacts always through the tracking server: an MLflow 3 server with an S3 artifact
      store offers presigned S3 URLs for downloads, which name the S3 endpoint as the server
      sees it (in a cluster, `http://<release>-minio.<ns>.svc:9000`): a client outside the
      cluster (a port-forward, the tests) cannot reach it, and the chart's design is that
      clients need no access to S3 at all. Our artifacts are small: streaming costs nothing.
    """
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "2")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", "1")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "60")
    os.environ.setdefault("MLFLOW_ENABLE_PROXY_MULTIPART_DOWNLOAD", "false")


def connect(settings: Settings) -> MlflowClient:
    """Point MLflow at the configured store and prove it answers."""
    client_defaults()
    uri = settings.tracking_uri
    if settings.embedded_tracking:
        settings.home.mkdir(parents=True, exist_ok=True)
    elif uri.startswith(("http://", "https://")):
        probe(uri)
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def ensure_experiment(client: MlflowClient, settings: Settings) -> str:
    """The experiment's id, creating it (with the embedded artifact root) when absent."""
    existing = client.get_experiment_by_name(settings.experiment)
    if existing is not None:
        return str(existing.experiment_id)
    location = None
    if settings.embedded_tracking:
        settings.artifact_root.mkdir(parents=True, exist_ok=True)
        location = settings.artifact_root.resolve().as_uri()
    try:
        return str(client.create_experiment(settings.experiment, artifact_location=location))
    except MlflowException:  # created concurrently by another run: use theirs
        again = client.get_experiment_by_name(settings.experiment)
        if again is None:
            raise
        return str(again.experiment_id)
