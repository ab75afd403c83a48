"""Names that cross a process boundary, spelled once.

The operator sets environment variables that serving pods and training Jobs read; the training
pipeline and the promotion gate write MLflow tags and aliases that the operator, the serving
pods and the CLI read; serving pods publish Prometheus metrics that the operator queries
(through the chart's scrape configuration, which turns pod labels into target labels); the
operator writes Kubernetes labels and annotations that it reads back after a restart. A name
misspelled on one side fails nowhere — the reader just sees "absent" — so writer and reader
both import the name from here, and ``tests/unit/test_contracts.py`` round-trips every pair.

Only names live here; what a value means and how it is parsed stays with the module that
owns it.
"""

from __future__ import annotations

from typing import Final

GROUP: Final = "textops.io"  # the API group; also the prefix of our labels and annotations


class Env:
    """Environment variables our processes read (the writer named beside each group)."""

    # textops.settings (every command): set by the operator on pods and Jobs, by the demo
    # for the service it starts, by the chart for the operator
    HOME: Final = "TEXTOPS_HOME"
    DATA_URI: Final = "TEXTOPS_DATA_URI"
    S3_ENDPOINT: Final = "TEXTOPS_S3_ENDPOINT"
    LABEL_DB: Final = "TEXTOPS_LABEL_DB"
    ARTIFACTS: Final = "TEXTOPS_ARTIFACTS"
    MODEL_NAME: Final = "TEXTOPS_MODEL_NAME"
    EXPERIMENT: Final = "TEXTOPS_EXPERIMENT"
    IMAGE_TAG: Final = "TEXTOPS_IMAGE_TAG"
    MLFLOW_TRACKING_URI: Final = "MLFLOW_TRACKING_URI"
    MLFLOW_S3_ENDPOINT_URL: Final = "MLFLOW_S3_ENDPOINT_URL"

    # the serving pod (textops.serving.config), set by the operator's Deployment
    MODEL_URI: Final = "TEXTOPS_MODEL_URI"
    MAX_BATCH_SIZE: Final = "TEXTOPS_MAX_BATCH_SIZE"
    MAX_LATENCY_MS: Final = "TEXTOPS_MAX_LATENCY_MS"
    BENTOML_PORT: Final = "BENTOML_PORT"
    # ... and by whoever runs `textops serve` (the demo, a user)
    DRIFT_WINDOW: Final = "TEXTOPS_DRIFT_WINDOW"
    DRIFT_INTERVAL_S: Final = "TEXTOPS_DRIFT_INTERVAL_S"
    DRIFT_SAMPLES_PER_S: Final = "TEXTOPS_DRIFT_SAMPLES_PER_S"
    DRIFT_MONITORING: Final = "TEXTOPS_DRIFT_MONITORING"
    CAPTURE_QUEUE: Final = "TEXTOPS_CAPTURE_QUEUE"
    CAPTURE_BELOW_CONFIDENCE: Final = "TEXTOPS_CAPTURE_BELOW_CONFIDENCE"
    RECENT_PREDICTIONS: Final = "TEXTOPS_RECENT_PREDICTIONS"
    VALUE_PER_ACCEPTED: Final = "TEXTOPS_VALUE_PER_ACCEPTED"
    MAX_TEXT_CHARS: Final = "TEXTOPS_MAX_TEXT_CHARS"
    MAX_TEXTS: Final = "TEXTOPS_MAX_TEXTS"
    REQUEST_TIMEOUT_S: Final = "TEXTOPS_REQUEST_TIMEOUT_S"
    TIMEOUT_MIDDLEWARE: Final = "TEXTOPS_TIMEOUT_MIDDLEWARE"
    ACCESS_LOG: Final = "TEXTOPS_ACCESS_LOG"
    WORKERS: Final = "TEXTOPS_WORKERS"
    PREDICTION_LOG: Final = "TEXTOPS_PREDICTION_LOG"
    PREDICTION_LOG_QUEUE: Final = "TEXTOPS_PREDICTION_LOG_QUEUE"
    PREDICTION_RETENTION_H: Final = "TEXTOPS_PREDICTION_RETENTION_H"
    LABEL_TOKEN: Final = "TEXTOPS_LABEL_TOKEN"
    LABEL_WEIGHTS: Final = "TEXTOPS_LABEL_WEIGHTS"
    LABEL_RANK_DEPTH: Final = "TEXTOPS_LABEL_RANK_DEPTH"
    LABEL_DUPLICATE_THRESHOLD: Final = "TEXTOPS_LABEL_DUPLICATE_THRESHOLD"
    LABEL_CLASS_VALUE: Final = "TEXTOPS_LABEL_CLASS_VALUE"

    # the retraining Job (training/entrypoint.sh, textops.registry.lineage), set by the operator
    DATASET: Final = "TEXTOPS_DATASET"
    PROMOTION_METRIC: Final = "TEXTOPS_PROMOTION_METRIC"
    MIN_IMPROVEMENT: Final = "TEXTOPS_MIN_IMPROVEMENT"
    MAX_RECALL_DROP: Final = "TEXTOPS_MAX_RECALL_DROP"
    TRIGGER: Final = "TEXTOPS_TRIGGER"
    TRIGGER_ID: Final = "TEXTOPS_TRIGGER_ID"
    TRIGGER_REASON: Final = "TEXTOPS_TRIGGER_REASON"
    MODELDEPLOYMENT: Final = "TEXTOPS_MODELDEPLOYMENT"
    SERVING_VERSION: Final = "TEXTOPS_SERVING_VERSION"
    REFERENCE_TRAFFIC: Final = "TEXTOPS_REFERENCE_TRAFFIC"

    # the project's images (textops.packaging.images passes them as build arguments): the
    # commit their sources come from, which lineage records where no checkout is
    GIT_COMMIT: Final = "TEXTOPS_GIT_COMMIT"
    GIT_DIRTY: Final = "TEXTOPS_GIT_DIRTY"

    # the operator (textops.operator.config), set by the chart's operator Deployment
    PROMETHEUS_URL: Final = "TEXTOPS_PROMETHEUS_URL"
    SERVING_IMAGE: Final = "TEXTOPS_SERVING_IMAGE"
    TRAINING_IMAGE: Final = "TEXTOPS_TRAINING_IMAGE"
    TRAINING_SERVICE_ACCOUNT: Final = "TEXTOPS_TRAINING_SERVICE_ACCOUNT"
    IMAGE_PULL_POLICY: Final = "TEXTOPS_IMAGE_PULL_POLICY"
    HISTORY_LIMIT: Final = "TEXTOPS_HISTORY_LIMIT"
    WORKLOAD_NODE_SELECTOR: Final = "TEXTOPS_WORKLOAD_NODE_SELECTOR"
    WORKLOAD_TOLERATIONS: Final = "TEXTOPS_WORKLOAD_TOLERATIONS"
    RECONCILE_SECONDS: Final = "TEXTOPS_RECONCILE_SECONDS"
    METRICS_PORT: Final = "TEXTOPS_METRICS_PORT"
    LABEL_STORE_SECRET_NAME: Final = "TEXTOPS_LABEL_STORE_SECRET_NAME"

    # developer tools (make, the dev servers and cluster, image builds)
    CACHE: Final = "TEXTOPS_CACHE"
    EMBEDDINGS_DIR: Final = "TEXTOPS_EMBEDDINGS_DIR"


class SecretKey:
    """Keys of the label store's Secret (the chart makes it, the operator references it)."""

    LABEL_DB_URL: Final = "url"  # -> TEXTOPS_LABEL_DB of serving pods and Jobs
    LABEL_TOKEN: Final = "token"  # -> TEXTOPS_LABEL_TOKEN of serving pods


class Alias:
    """Registered-model aliases: training sets the challenger, the gate moves the champion."""

    CHAMPION: Final = "champion"
    CHALLENGER: Final = "challenger"


class Tag:
    """MLflow run and model-version tags: the pipeline and gate write, the operator, serving
    pods (``textops_model_info``) and the CLI read."""

    UNKNOWN: Final = "unknown"  # written when a value cannot be known (no git in an image)

    # lineage of the code (textops.registry.lineage)
    PACKAGE_VERSION: Final = "textops.package.version"
    CODE_SHA256: Final = "textops.code.sha256"
    GIT_COMMIT: Final = "textops.git.commit"
    GIT_DIRTY: Final = "textops.git.dirty"
    IMAGE: Final = "textops.image.tag"
    # why the run happened (from the Job's environment)
    TRIGGER: Final = "textops.trigger"
    TRIGGER_ID: Final = "textops.trigger.id"
    TRIGGER_REASON: Final = "textops.trigger.reason"
    MODELDEPLOYMENT: Final = "textops.modeldeployment"
    SERVING_VERSION: Final = "textops.trigger.serving_version"
    # the data (textops.training.pipeline)
    DATASET_ID: Final = "textops.dataset.id"
    DATASET_SHA256: Final = "textops.dataset.sha256"
    DATASET_URI: Final = "textops.dataset.uri"
    DATASET_PARENT: Final = "textops.dataset.parent"
    REFERENCE: Final = "textops.reference.source"  # holdout, or traffic:N served texts
    DATASET_LABELS_ADDED: Final = "textops.dataset.labels_added"  # by its label export
    # the promotion gate's verdict (textops.registry.gate)
    GATE_DECISION: Final = "textops.gate.decision"
    GATE_REASON: Final = "textops.gate.reason"
    GATE_METRIC: Final = "textops.gate.metric"
    GATE_MIN_IMPROVEMENT: Final = "textops.gate.min_improvement"
    GATE_MAX_RECALL_DROP: Final = "textops.gate.max_recall_drop"
    GATE_CHALLENGER_VALUE: Final = "textops.gate.challenger_value"
    GATE_CHAMPION_VALUE: Final = "textops.gate.champion_value"
    GATE_CHAMPION_VERSION: Final = "textops.gate.champion_version"
    GATE_DATASET: Final = "textops.gate.dataset"
    GATE_AT: Final = "textops.gate.at"
    GATE_RECALL_DROPS: Final = "textops.gate.recall_drops"


class Label:
    """Kubernetes labels on what the operator creates; the chart's Prometheus turns two of
    them into the target labels the operator's queries select by."""

    NAME: Final = "app.kubernetes.io/name"
    INSTANCE: Final = "app.kubernetes.io/instance"  # the ModelDeployment's name
    COMPONENT: Final = "app.kubernetes.io/component"
    PART_OF: Final = "app.kubernetes.io/part-of"
    MANAGED_BY: Final = "app.kubernetes.io/managed-by"
    MODEL: Final = f"{GROUP}/model"
    MODEL_VERSION: Final = f"{GROUP}/model-version"
    TRIGGER: Final = f"{GROUP}/trigger"


class Annotation:
    """Kubernetes annotations: written by the operator (or a user) and read back later."""

    SPEC_HASH: Final = f"{GROUP}/spec-hash"  # on children: the body the operator last wrote
    MODEL_URI: Final = f"{GROUP}/model-uri"
    TRIGGER: Final = f"{GROUP}/trigger"  # on retraining Jobs: why they run
    TRIGGER_ID: Final = f"{GROUP}/trigger-id"
    TRIGGER_REASON: Final = f"{GROUP}/trigger-reason"
    RETRAIN: Final = f"{GROUP}/retrain"  # on a ModelDeployment: a user asks for a retraining


class Target:
    """Labels Prometheus attaches to every scraped serving series (chart scrape config)."""

    NAMESPACE: Final = "namespace"
    MODELDEPLOYMENT: Final = "modeldeployment"  # from the pod label Label.INSTANCE
    MODEL_VERSION: Final = "model_version"  # from the pod label Label.MODEL_VERSION


class Metric:
    """Serving metrics and label names the operator, the demo and the dashboards read
    (counters without ``_total``: prometheus_client adds it on exposition)."""

    FEEDBACK: Final = "textops_feedback"  # labels: model, version, class, outcome
    FEEDBACK_LABELS: Final = "textops_feedback_labels"  # labels: model, version, predicted, actual
    LABELS_UNEXPORTED: Final = "textops_labels_unexported"  # labels no dataset version holds
    OUTCOME: Final = "outcome"
    CORRECT: Final = "correct"
    WRONG: Final = "wrong"
    PREDICTED: Final = "predicted"
    ACTUAL: Final = "actual"

    DRIFT_KINDS: Final = ("feature", "prediction")
    DRIFT_PARTS: Final = ("statistic", "threshold", "window_samples", "detected")
    STATISTIC: Final = "statistic"  # the drift gauges' label naming the statistic ...
    OVERALL: Final = "overall"  # ... and its value on the verdict of a kind

    @staticmethod
    def drift(kind: str, part: str) -> str:
        """``textops_{feature|prediction}_drift_{statistic|threshold|window_samples|detected}``."""
        return f"textops_{kind}_drift_{part}"


def counter_total(name: str) -> str:
    """The series name Prometheus stores for counter ``name``."""
    return f"{name}_total"
