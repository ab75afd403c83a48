"""The MLflow pyfunc: raw texts in, label + confidence + per-class probabilities out.

Logged with every training run, so any MLflow-aware runtime (our BentoML service, ``mlflow
models serve``, a notebook) serves the very same artifact. The drift reference profile travels
inside the model, so a pinned ``models:/NAME/VERSION`` carries what the serving side needs.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pandas as pd
from mlflow.pyfunc import PythonModel

from textops.model.classifier import TextClassifier

# MLflow suggests type hints on predict() when logging and loading; ours are left out on
# purpose (see TextClassifierModel.predict), so the suggestion is noise.
warnings.filterwarnings("ignore", message=".*Add type hints to the `predict` method")

TEXT_COLUMN = "text"
PROBA_PREFIX = "proba."


def texts_from(model_input: Any) -> list[str]:
    """Accept a DataFrame with a ``text`` column, a Series, a list of strings or one string."""
    if isinstance(model_input, pd.DataFrame):
        column = TEXT_COLUMN if TEXT_COLUMN in model_input.columns else model_input.columns[0]
        return [str(t) for t in model_input[column].tolist()]
    if isinstance(model_input, str):
        return [model_input]
    return [str(t) for t in list(model_input)]


def predictions_frame(proba: np.ndarray, classes: list[str]) -> pd.DataFrame:
    best = proba.argmax(axis=1) if len(proba) else np.zeros(0, dtype=int)
    frame = pd.DataFrame(
        {
            "label": [classes[i] for i in best],
            "confidence": proba.max(axis=1) if len(proba) else np.zeros(0),
        }
    )
    for i, cls in enumerate(classes):
        frame[f"{PROBA_PREFIX}{cls}"] = proba[:, i] if len(proba) else np.zeros(0)
    return frame


# XGBoost threads when predicting. Training uses two; for the small batches of serving two
# OpenMP threads mostly wait for each other (a one-text call cost 17 ms of CPU on two busy
# cores against about 2 ms with one), so every runtime that loads the pyfunc predicts with one
# and scales with batching and processes instead.
INFERENCE_THREADS = 1


def prepare_for_inference(classifier: TextClassifier) -> TextClassifier:
    """Set the fitted classifier up for fast prediction; the probabilities are bit-identical.

    scipy computes ``tfidf @ W.T`` by flattening ``W.T``; for a C-ordered ``W`` (the SVD's
    64 x 180k components, naive Bayes' per-class log-probabilities) that copies the whole
    matrix on every call: 130 ms for one text, most of it the SVD. Stored Fortran-ordered,
    ``W.T`` is already contiguous and the call takes about 3 ms. XGBoost gets
    ``INFERENCE_THREADS``.
    """
    if classifier.booster is not None:
        classifier.booster.set_params(n_jobs=INFERENCE_THREADS)
    features = classifier.features
    svd = getattr(features, "svd", None)
    if svd is not None and hasattr(svd, "components_"):
        svd.components_ = np.asfortranarray(svd.components_)
    nb = getattr(features, "nb", None)
    if nb is not None and hasattr(nb, "feature_log_prob_"):
        nb.feature_log_prob_ = np.asfortranarray(nb.feature_log_prob_)
    return classifier


def proba_from_frame(frame: pd.DataFrame) -> tuple[np.ndarray, list[str]]:
    """Inverse of :func:`predictions_frame`: the probability matrix and its class order."""
    columns = [c for c in frame.columns if str(c).startswith(PROBA_PREFIX)]
    return frame[columns].to_numpy(dtype=float), [c[len(PROBA_PREFIX) :] for c in columns]


class TextClassifierModel(PythonModel):
    """Loads the fitted :class:`TextClassifier` and its reference profile from artifacts."""

    classifier: TextClassifier
    profile: dict[str, Any]

    def load_context(self, context: Any) -> None:
        self.classifier = prepare_for_inference(joblib.load(context.artifacts["classifier"]))
        if self.classifier.embedder is not None:  # the encoder travels with the model
            self.classifier.embedder.model_dir = context.artifacts["encoder"]
        self.profile = json.loads(Path(context.artifacts["reference_profile"]).read_text("utf-8"))

    # no annotations on purpose: MLflow reads predict's type hints as a schema and warns
    def predict(self, context, model_input, params=None):  # type: ignore[no-untyped-def]
        texts = texts_from(model_input)
        return predictions_frame(self.classifier.predict_proba(texts), self.classifier.classes)
