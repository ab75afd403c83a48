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
- ``TEXTOPS_WORKLOAD_NODE_SELECTOR`` (``{}``) and ``TEXTOPS_WORKLOAD_TOLERATIONS`` (``[]``):
  JSON ``nodeSelector`` and ``tolerations`` of every serving pod and retraining Job pod, so a
  cluster admin can keep model workloads on their own node pool (GPU nodes, a tainted pool).
- ``TEXTOPS_LABEL_STORE_SECRET_NAME`` (unset): a Secret in the ModelDeployment's namespace with keys
  ``url`` (the installation's label store) and ``token`` (the labelling API's); serving pods and
  Jobs get ``TEXTOPS_LABEL_DB`` (and pods ``TEXTOPS_LABEL_TOKEN``) from it by reference. Unset:
  each serving pod keeps its own SQLite under /tmp.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import textops
from textops.contracts import Env

PULL_POLICIES = ("Always", "IfNotPresent", "Never")
MAX_HISTORY = 50  # the CRD's maxItems of status.history
TOLERATION_KEYS = {"key", "operator", "value", "effect", "tolerationSeconds"}


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
    label_store_secret: str | None = None
    workload_node_selector: dict[str, str] = field(default_factory=dict)
    workload_tolerations: list[dict[str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.image_pull_policy not in PULL_POLICIES:
            raise ValueError(
                f"TEXTOPS_IMAGE_PULL_POLICY={self.image_pull_policy!r}: use one of {PULL_POLICIES}"
            )
        if not 1 <= self.history_limit <= MAX_HISTORY:
            raise ValueError(f"TEXTOPS_HISTORY_LIMIT must be between 1 and {MAX_HISTORY}")
        if not self.tracking_uri.startswith(("http://", "https://")):
            raise ValueError(
                f"MLFLOW_TRACKING_URI={self.tracking_uri!r}: the operator talks to an MLflow "
                "tracking server (http:// or https://)"
            )


def load_config(env: Mapping[str, str] | None = None) -> Config:
    """Resolve the configuration from ``env`` (default: the process environment)."""
    e = os.environ if env is None else env
    base = Config()
    return Config(
        serving_image=e.get(Env.SERVING_IMAGE) or base.serving_image,
        training_image=e.get(Env.TRAINING_IMAGE) or base.training_image,
        prometheus_url=e.get(Env.PROMETHEUS_URL) or base.prometheus_url,
        tracking_uri=e.get(Env.MLFLOW_TRACKING_URI) or base.tracking_uri,
        data_uri=e.get(Env.DATA_URI) or base.data_uri,
        s3_endpoint=e.get(Env.S3_ENDPOINT) or e.get(Env.MLFLOW_S3_ENDPOINT_URL) or None,
        image_pull_policy=e.get(Env.IMAGE_PULL_POLICY) or base.image_pull_policy,
        training_service_account=e.get(Env.TRAINING_SERVICE_ACCOUNT) or None,
        history_limit=int(e.get(Env.HISTORY_LIMIT) or base.history_limit),
        label_store_secret=e.get(Env.LABEL_STORE_SECRET_NAME) or None,
        workload_node_selector=_node_selector(e.get(Env.WORKLOAD_NODE_SELECTOR) or "{}"),
        workload_tolerations=_tolerations(e.get(Env.WORKLOAD_TOLERATIONS) or "[]"),
    )


def _json(text: str, var: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{var} is not JSON: {exc}") from exc


def _node_selector(text: str) -> dict[str, str]:
    value = _json(text, Env.WORKLOAD_NODE_SELECTOR)
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        raise ValueError(
            f"{Env.WORKLOAD_NODE_SELECTOR} must be a JSON object of strings, got {text!r}"
        )
    return value


def _tolerations(text: str) -> list[dict[str, Any]]:
    value = _json(text, Env.WORKLOAD_TOLERATIONS)
    if not isinstance(value, list) or not all(isinstance(t, dict) for t in value):
        raise ValueError(
            f"{Env.WORKLOAD_TOLERATIONS} must be a JSON list of tolerations, got {text!r}"
        )
    unknown = {key for t in value for key in t} - TOLERATION_KEYS
    if unknown:
        raise ValueError(f"{Env.WORKLOAD_TOLERATIONS}: unknown toleration fields {sorted(unknown)}")
    return value
