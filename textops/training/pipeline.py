"""Train on a dataset version and record everything in MLflow.

One run logs: parameters (features, XGBoost, data sizes), holdout metrics (accuracy, macro-F1,
per-class precision/recall/F1, log-loss, calibration error), the confusion matrix as a PNG, the
evaluation as JSON, the drift reference profile, the pyfunc model with signature and input
example, and lineage tags (dataset id and hash, git commit and dirty flag, code hash, package
version, image tag). The model is registered as a new version that gets the ``challenger``
alias; promotion to ``champion`` is the gate's job (:mod:`textops.registry.promotion`).
"""

from __future__ import annotations

import json
import tempfile
import time
from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import joblib
import mlflow
import numpy as np
import pandas as pd
from mlflow.models import infer_signature

from textops.contracts import Alias, Tag
from textops.data.dataset import QUEUE_SELECTED_NOTE, Dataset, normalise_text, text_digest
from textops.data.split import DEFAULT_HOLDOUT_FRACTION, split_indices
from textops.data.store import open_store
from textops.errors import TextopsError
from textops.model.classifier import ClassifierParams, TextClassifier
from textops.model.evaluation import Evaluation, evaluate
from textops.model.plots import plot_confusion_matrix
from textops.model.pyfunc import TEXT_COLUMN, TextClassifierModel, predictions_frame
from textops.monitoring.drift import CalibrationParams
from textops.monitoring.reference import build_reference_profile
from textops.progress import Progress
from textops.registry.lineage import lineage_tags
from textops.registry.tracking import connect, ensure_experiment
from textops.settings import Settings

MIN_HOLDOUT = 2
MIN_REFERENCE_ROWS = 200  # fewer representative holdout rows: use them all
# training texts encoded again for the embedding reference (a PCA needs no more; a real
# encoder takes minutes on CPU for much larger samples)
MAX_REFERENCE_EMBEDDINGS = 5000
# what a pyfunc environment needs besides the textops package itself (installed in the image)
MODEL_REQUIREMENTS = [
    "numpy",
    "pandas",
    "scipy",
    "scikit-learn",
    "xgboost-cpu",
    "joblib",
    "mlflow>=3.17,<3.18",
]


@dataclass
class TrainResult:
    run_id: str
    model_name: str
    version: str | None
    dataset_id: str
    evaluation: Evaluation
    train_rows: int
    holdout_rows: int
    timings: dict[str, float] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "model": self.model_name,
            "version": self.version,
            "alias": Alias.CHALLENGER if self.version else None,
            "dataset": self.dataset_id,
            "train_rows": self.train_rows,
            "holdout_rows": self.holdout_rows,
            "accuracy": round(self.evaluation.accuracy, 4),
            "macro_f1": round(self.evaluation.macro_f1, 4),
            "seconds": {k: round(v, 1) for k, v in self.timings.items()},
        }


def train(
    settings: Settings,
    dataset_id: str = "latest",
    params: ClassifierParams | None = None,
    register: bool = True,
    progress: Progress | None = None,
    reference_traffic: int = 0,
) -> TrainResult:
    """Run the whole training job; returns what was logged and registered.

    ``reference_traffic``: profile the drift reference's predictions on up to that many of
    the model's most recently served texts (the prediction log in the label store) instead of
    the holdout, so that right after a retraining on a shifted mix the monitor compares
    traffic with that mix, not with the dataset's (fewer than ``MIN_REFERENCE_ROWS`` served
    texts: the holdout, as with 0).
    """
    progress = progress or Progress(total=5)
    params = params or ClassifierParams()
    with progress.stage("load dataset"):
        dataset = open_store(settings.data_uri, settings).get(dataset_id)
        train_idx, holdout_idx = split_indices(dataset.texts, DEFAULT_HOLDOUT_FRACTION)
        if len(holdout_idx) < MIN_HOLDOUT or len(train_idx) < MIN_HOLDOUT:
            raise TextopsError(f"dataset {dataset.id} has too few rows to train and evaluate")
        texts, labels = dataset.texts, dataset.labels
        x_train = [texts[i] for i in train_idx]
        y_train = [labels[i] for i in train_idx]
        x_hold = [texts[i] for i in holdout_idx]
        y_hold = [labels[i] for i in holdout_idx]
        progress.say(
            f"    {dataset.id}: {len(x_train)} train / {len(x_hold)} holdout rows, "
            f"labels {dataset.manifest.labels}"
        )
    with progress.stage("fit features + XGBoost"):
        started = time.perf_counter()
        classifier = TextClassifier(params).fit(x_train, y_train)
        fit_seconds = time.perf_counter() - started
    with progress.stage("evaluate on the pinned holdout"):
        proba, hold_embeddings = classifier.predict_proba_with_embeddings(x_hold)
        evaluation = evaluate(y_hold, proba, classifier.classes)
        progress.say(f"    accuracy {evaluation.accuracy:.4f}  macro-F1 {evaluation.macro_f1:.4f}")
        recent = served_texts(settings, reference_traffic, exclude=set(x_train))
        if recent:
            progress.say(f"    drift reference: {len(recent)} recently served texts")
            recent_proba, recent_embeddings = classifier.predict_proba_with_embeddings(recent)
            profile = reference_profile(
                classifier, x_train, y_train, recent, recent_proba, recent_embeddings
            )
        else:
            keep = representative_rows(dataset, x_hold)
            profile = reference_profile(
                classifier,
                x_train,
                y_train,
                [x_hold[k] for k in keep],
                proba[keep],
                None if hold_embeddings is None else hold_embeddings[keep],
            )
        profile["reference_source"] = f"traffic:{len(recent)}" if recent else "holdout"
    with progress.stage("log to MLflow and register"):
        run_id, version = _log_run(
            settings,
            dataset,
            classifier,
            params,
            evaluation,
            profile,
            sizes=(len(x_train), len(x_hold)),
            fit_seconds=fit_seconds,
            register=register,
        )
        progress.say(
            f"    run {run_id}"
            + (f", {settings.model_name} v{version} @{Alias.CHALLENGER}" if version else "")
        )
    return TrainResult(
        run_id=run_id,
        model_name=settings.model_name,
        version=version,
        dataset_id=dataset.id,
        evaluation=evaluation,
        train_rows=len(x_train),
        holdout_rows=len(x_hold),
        timings=dict(progress.timings),
    )


def reference_profile(
    classifier: TextClassifier,
    x_train: list[str],
    y_train: list[str],
    holdout_texts: list[str],
    holdout_proba: np.ndarray,
    holdout_embeddings: np.ndarray | None,
    calibration: CalibrationParams | None = None,
) -> dict[str, Any]:
    """The drift reference of a fitted classifier; with an embedder, also its embedding
    section, fitted on at most ``MAX_REFERENCE_EMBEDDINGS`` training texts (a fixed sample)
    and calibrated on the held-out rows' embeddings (computed for the evaluation anyway)."""
    embeddings = None
    if classifier.embedder is not None:
        sample = x_train
        if len(x_train) > MAX_REFERENCE_EMBEDDINGS:
            picks = np.random.default_rng(0).choice(len(x_train), MAX_REFERENCE_EMBEDDINGS, False)
            sample = [x_train[i] for i in sorted(picks)]
        embeddings = classifier.embed(sample)
    return build_reference_profile(
        x_train,
        y_train,
        classifier.classes,
        holdout_proba,
        holdout_texts=holdout_texts,
        calibration=calibration,
        embeddings=embeddings,
        holdout_embeddings=holdout_embeddings,
    )


def served_texts(
    settings: Settings, limit: int, exclude: Collection[str] = frozenset()
) -> list[str]:
    """Of the ``limit`` texts the model served most recently, those not in ``exclude`` (the
    texts it was fitted on: it is surer of those than of traffic it never saw, which would
    read as drift at once); [] when fewer than ``MIN_REFERENCE_ROWS`` remain (too few to
    profile) or ``limit`` is 0.

    Only the fitted texts, not every labelled one: the queue's labels are the uncertain and
    drifted texts, and leaving all of them out made the reference surer than the traffic
    (``make demo``: prediction drift 1.26x right after retraining, against 0.85x when the
    labelled texts that fell into the pinned holdout stay in)."""
    if limit <= 0:
        return []
    from textops.labelling.predictions import PredictionLog
    from textops.labelling.store import LabelStore

    served = PredictionLog(LabelStore(settings.label_db).engine).recent_texts(
        settings.model_name, limit
    )
    texts = [t for t in served if normalise_text(t) not in exclude]
    return texts if len(texts) >= MIN_REFERENCE_ROWS else []


def representative_rows(dataset: Dataset, holdout: list[str]) -> list[int]:
    """Holdout positions the prediction-drift reference may use.

    Texts labelled from the queue were chosen *because* the model was unsure about them or
    they looked drifted; in the reference they would make the model look less sure than it is
    on ordinary traffic, so that traffic would look drifted right after a retraining. They
    stay in the evaluation, not in the profile, unless too few other rows would remain.
    """
    selected = set(dataset.manifest.notes.get(QUEUE_SELECTED_NOTE) or ())
    keep = [k for k, text in enumerate(holdout) if text_digest(text) not in selected]
    return keep if len(keep) >= MIN_REFERENCE_ROWS else list(range(len(holdout)))


def _log_run(
    settings: Settings,
    dataset: Dataset,
    classifier: TextClassifier,
    params: ClassifierParams,
    evaluation: Evaluation,
    profile: dict[str, Any],
    sizes: tuple[int, int],
    fit_seconds: float,
    register: bool,
) -> tuple[str, str | None]:
    client = connect(settings)
    experiment_id = ensure_experiment(client, settings)
    tags = {
        **lineage_tags(settings.image_tag),
        **dataset_tags(dataset, settings.data_uri),
        Tag.REFERENCE: str(profile.get("reference_source", "holdout")),
    }
    with (
        tempfile.TemporaryDirectory(prefix="textops-train-") as tmp,
        mlflow.start_run(experiment_id=experiment_id, tags=tags) as run,
    ):
        work = Path(tmp)
        mlflow.log_params(
            {
                **params.as_params(),
                "dataset.id": dataset.id,
                "dataset.rows": dataset.manifest.rows,
                "data.train_rows": sizes[0],
                "data.holdout_rows": sizes[1],
                "data.classes": ",".join(classifier.classes),
                "features.vocabulary_size": classifier.features.vocabulary_size,
            }
        )
        mlflow.log_metrics({**evaluation.metrics(), "train_seconds": fit_seconds})
        mlflow.log_dict(evaluation.to_dict(), "evaluation/holdout.json")
        mlflow.log_dict(profile, "reference/profile.json")
        mlflow.log_dict(dataset.manifest.to_dict(), "dataset/manifest.json")
        plot = plot_confusion_matrix(
            evaluation.confusion,
            evaluation.classes,
            work / "confusion_matrix.png",
            f"{settings.model_name} — holdout ({evaluation.samples})",
        )
        mlflow.log_artifact(str(plot), "evaluation")
        classifier_path = work / "classifier.joblib"
        joblib.dump(classifier, classifier_path)
        profile_path = work / "reference_profile.json"
        profile_path.write_text(json.dumps(profile, ensure_ascii=False), "utf-8")
        example = pd.DataFrame({TEXT_COLUMN: dataset.texts[:3]})
        signature = infer_signature(
            example,
            predictions_frame(
                classifier.predict_proba(example[TEXT_COLUMN].tolist()), classifier.classes
            ),
        )
        artifacts = {"classifier": str(classifier_path), "reference_profile": str(profile_path)}
        if params.embeddings_dir:
            artifacts["encoder"] = params.embeddings_dir
        info = mlflow.pyfunc.log_model(
            name="model",
            python_model=TextClassifierModel(),
            artifacts=artifacts,
            signature=signature,
            input_example=example,
            pip_requirements=MODEL_REQUIREMENTS,
            registered_model_name=settings.model_name if register else None,
        )
        run_id = run.info.run_id
    version = None
    if register:
        version = str(info.registered_model_version)
        for key, value in tags.items():
            client.set_model_version_tag(settings.model_name, version, key, value)
        client.set_model_version_tag(
            settings.model_name, version, "textops.macro_f1", f"{evaluation.macro_f1:.6f}"
        )
        client.set_registered_model_alias(settings.model_name, Alias.CHALLENGER, version)
    return run_id, version


def dataset_tags(dataset: Dataset, data_uri: str) -> dict[str, str]:
    """The dataset version a run trained on, as run and model-version tags."""
    return {
        Tag.DATASET_ID: dataset.id,
        Tag.DATASET_SHA256: dataset.manifest.sha256,
        Tag.DATASET_URI: data_uri,
        Tag.DATASET_PARENT: dataset.manifest.parent or "",
        # labels the export that made this version added to its parent (0: not an export)
        Tag.DATASET_LABELS_ADDED: str(int(dataset.manifest.notes.get("labels_added") or 0)),
    }
