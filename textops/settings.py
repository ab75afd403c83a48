"""Settings from the environment, resolved in one place.

Every setting has an embedded default under ``TEXTOPS_HOME`` so that ``make demo`` runs with no
server at all; pointing the variables at real servers (MLflow, S3, MariaDB) changes nothing else.

- ``TEXTOPS_HOME`` (``./.textops``): root of the embedded stores.
- ``TEXTOPS_DATA_URI`` (``$TEXTOPS_HOME/datasets``): dataset store, a directory or
  ``s3://bucket/prefix``.
- ``TEXTOPS_S3_ENDPOINT`` (``$MLFLOW_S3_ENDPOINT_URL``): S3 API endpoint for ``s3://`` URIs,
  with ``AWS_ACCESS_KEY_ID`` and ``AWS_SECRET_ACCESS_KEY``.
- ``TEXTOPS_LABEL_DB`` (``sqlite:///$TEXTOPS_HOME/labels.db``): the label store.
- ``MLFLOW_TRACKING_URI`` (``sqlite:///$TEXTOPS_HOME/mlflow.db``): tracking and registry.
- ``TEXTOPS_ARTIFACTS`` (``$TEXTOPS_HOME/mlartifacts``): artifact root of the embedded store.
- ``TEXTOPS_MODEL_NAME`` (``reviews-sentiment``): the registered model.
- ``TEXTOPS_EXPERIMENT`` (``textops``): the MLflow experiment.
- ``TEXTOPS_IMAGE_TAG`` (unset): image tag recorded as lineage when running in a container.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from textops.contracts import Env

DEFAULT_MODEL_NAME = "reviews-sentiment"
DEFAULT_EXPERIMENT = "textops"


@dataclass(frozen=True)
class Settings:
    """A resolved snapshot of the environment."""

    home: Path
    data_uri: str
    s3_endpoint: str | None
    s3_access_key: str | None
    s3_secret_key: str | None
    label_db: str
    tracking_uri: str
    artifact_root: Path
    model_name: str
    experiment: str
    image_tag: str | None

    @property
    def embedded_tracking(self) -> bool:
        """True when MLflow runs in-process on SQLite (no server to reach)."""
        return self.tracking_uri.startswith(("sqlite:", "file:")) or "://" not in self.tracking_uri


def load_settings(env: dict[str, str] | None = None) -> Settings:
    """Resolve settings from ``env`` (default: the process environment)."""
    e = dict(os.environ if env is None else env)
    home = Path(e.get(Env.HOME, ".textops")).expanduser().resolve()
    return Settings(
        home=home,
        data_uri=e.get(Env.DATA_URI) or str(home / "datasets"),
        s3_endpoint=e.get(Env.S3_ENDPOINT) or e.get(Env.MLFLOW_S3_ENDPOINT_URL) or None,
        s3_access_key=e.get("AWS_ACCESS_KEY_ID") or None,
        s3_secret_key=e.get("AWS_SECRET_ACCESS_KEY") or None,
        label_db=e.get(Env.LABEL_DB) or f"sqlite:///{home / 'labels.db'}",
        tracking_uri=e.get(Env.MLFLOW_TRACKING_URI) or f"sqlite:///{home / 'mlflow.db'}",
        artifact_root=Path(e.get(Env.ARTIFACTS) or home / "mlartifacts"),
        model_name=e.get(Env.MODEL_NAME) or DEFAULT_MODEL_NAME,
        experiment=e.get(Env.EXPERIMENT) or DEFAULT_EXPERIMENT,
        image_tag=e.get(Env.IMAGE_TAG) or None,
    )
