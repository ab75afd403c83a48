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


def proba_from_frame(frame: pd.DataFrame) -> tuple[np.ndarray, list[str]]:
    """Inverse of :func:`predictions_frame`: the probability matrix and its class order."""
    columns = [c for c in frame.columns if str(c).startswith(PROBA_PREFIX)]
    return frame[columns].to_numpy(dtype=float), [c[len(PROBA_PREFIX) :] for c in columns]


class TextClassifierModel(PythonModel):
    """Loads the fitted :class:`TextClassifier` and its reference profile from artifacts."""

    classifier: TextClassifier
    profile: dict[str, Any]

    def load_context(self, context: Any) -> None:
        self.classifier = joblib.load(context.artifacts["classifier"])
        if self.classifier.embedder is not None:  # the encoder travels with the model
            self.classifier.embedder.model_dir = context.artifacts["encoder"]
        self.profile = json.loads(Path(context.artifacts["reference_profile"]).read_text("utf-8"))

    # no annotations on purpose: MLflow reads predict's type hints as a schema and warns
    def predict(self, context, model_input, params=None):  # type: ignore[no-untyped-def]
        texts = texts_from(model_input)
        return predictions_frame(self.classifier.predict_proba(texts), self.classifier.classes)
