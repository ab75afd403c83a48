"""The operator's own configuration, read once from its environment (pure).

Cluster-wide choices live here rather than in every ModelDeployment: a spec that leaves
``serving.image``, ``retraining.image``, ``monitoring.prometheus`` or ``retraining.dataset``
unset gets these, so upgrading the images or moving Prometheus is one Helm value, not an edit
of every resource. The Helm chart sets each variable; the defaults below match its defaults.

- ``TEXTOPS_SERVING_IMAGE`` (``textops/serving:<package version>``): BentoML serving image.
- ``TEXTOPS_TRAINING_IMAGE`` (``textops/training:<package version>``): retraining Job image
  (``training/Dockerfile``).
- ``TEXTOPS_PROMETHEUS_URL`` (``http://prometheus.monitoring.svc:9090``): where drift and
  quality are queried.
- ``MLFLOW_TRACKING_URI`` (``http://mlflow.mlflow.svc:5000``): tracking server and registry,
  given to serving pods and Jobs; in-cluster it must be a server, never a local SQLite file.
- ``TEXTOPS_DATA_URI`` (``s3://datasets/textops``): dataset store the Jobs train from.
- ``TEXTOPS_S3_ENDPOINT`` (unset): S3 API endpoint (MinIO) given to pods and Jobs as
  ``TEXTOPS_S3_ENDPOINT`` and ``MLFLOW_S3_ENDPOINT_URL``.
- ``TEXTOPS_IMAGE_PULL_POLICY`` (``IfNotPresent``): pull policy of both images.
- ``TEXTOPS_TRAINING_SERVICE_ACCOUNT`` (unset: the namespace's ``default``): Job pods' account.
- ``TEXTOPS_HISTORY_LIMIT`` (``20``, at most 50): records kept in ``status.history``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

import textops

PULL_POLICIES = ("Always", "IfNotPresent", "Never")
MAX_HISTORY = 50  # the CRD's maxItems of status.history


@dataclass(frozen=True)
class Config:
    """Resolved operator settings; see the module docstring for each variable."""

    serving_image: str = f"textops/serving:{textops.__version__}"
    training_image: str = f"textops/training:{textops.__version__}"
    prometheus_url: str = "http://prometheus.monitoring.svc:9090"
    tracking_uri: str = "http://mlflow.mlflow.svc:5000"
    data_uri: str = "s3://datasets/textops"
    s3_endpoint: str | None = None
    image_pull_policy: str = "IfNotPresent"
    training_service_account: str | None = None
    history_limit: int = 20

    def __post_init__(self) -> None:
        if self.image_pull_policy not in PULL_POLICIES:
            raise ValueError(
                f"TEXTOPS_IMAGE_PULL_POLICY={self.image_pull_policy!r}: use one of {PULL_POLICIES}"
            )
        if not 1 <= self.history_limit <= MAX_HISTORY:
            raise ValueError(f"TEXTOPS_HISTORY_LIMIT must be between 1 and {MAX_HISTORY}")


def load_config(env: Mapping[str, str] | None = None) -> Config:
    """Resolve the configuration from ``env`` (default: the process environment)."""
    e = os.environ if env is None else env
    base = Config()
    return Config(
        serving_image=e.get("TEXTOPS_SERVING_IMAGE") or base.serving_image,
        training_image=e.get("TEXTOPS_TRAINING_IMAGE") or base.training_image,
        prometheus_url=e.get("TEXTOPS_PROMETHEUS_URL") or base.prometheus_url,
        tracking_uri=e.get("MLFLOW_TRACKING_URI") or base.tracking_uri,
        data_uri=e.get("TEXTOPS_DATA_URI") or base.data_uri,
        s3_endpoint=e.get("TEXTOPS_S3_ENDPOINT") or e.get("MLFLOW_S3_ENDPOINT_URL") or None,
        image_pull_policy=e.get("TEXTOPS_IMAGE_PULL_POLICY") or base.image_pull_policy,
        training_service_account=e.get("TEXTOPS_TRAINING_SERVICE_ACCOUNT") or None,
        history_limit=int(e.get("TEXTOPS_HISTORY_LIMIT") or base.history_limit),
    )
