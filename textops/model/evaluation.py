"""Classification metrics from labels and probabilities (pure, any number of classes)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn.metrics import (
    accuracy_score,
    confusion_matrix,
    f1_score,
    log_loss,
    precision_recall_fscore_support,
)

CALIBRATION_BINS = 10


@dataclass(frozen=True)
class Evaluation:
    """Headline and per-class numbers plus the confusion matrix (rows: truth, columns: guess)."""

    classes: list[str]
    accuracy: float
    macro_f1: float
    log_loss: float
    calibration_error: float
    per_class: dict[str, dict[str, float]]
    confusion: list[list[int]]
    samples: int

    def metrics(self) -> dict[str, float]:
        """Flat names for MLflow: ``accuracy``, ``macro_f1``, ``recall.<class>`` ..."""
        flat = {
            "accuracy": self.accuracy,
            "macro_f1": self.macro_f1,
            "log_loss": self.log_loss,
            "calibration_error": self.calibration_error,
        }
        for cls, scores in self.per_class.items():
            for name, value in scores.items():
                flat[f"{name}.{cls}"] = value
        return flat

    def to_dict(self) -> dict[str, Any]:
        return {
            "classes": self.classes,
            "samples": self.samples,
            **self.metrics(),
            "confusion": self.confusion,
        }


def expected_calibration_error(correct: np.ndarray, confidence: np.ndarray) -> float:
    """Mean |accuracy - confidence| over equal-width confidence bins, weighted by bin size."""
    if len(confidence) == 0:
        return 0.0
    edges = np.linspace(0.0, 1.0, CALIBRATION_BINS + 1)
    bins = np.clip(np.digitize(confidence, edges[1:-1]), 0, CALIBRATION_BINS - 1)
    total = 0.0
    for b in range(CALIBRATION_BINS):
        mask = bins == b
        if mask.any():
            total += mask.sum() * abs(correct[mask].mean() - confidence[mask].mean())
    return float(total / len(confidence))


def evaluate(truth: list[str], proba: np.ndarray, classes: list[str]) -> Evaluation:
    """Score probabilities whose columns follow ``classes`` against true labels.

    A true label the model has never seen counts as an error for every metric rather than
    being dropped.
    """
    all_classes = classes + sorted(set(truth) - set(classes))
    index = {c: i for i, c in enumerate(all_classes)}
    y_true = np.array([index[t] for t in truth], dtype=int)
    y_pred = proba.argmax(axis=1) if len(proba) else np.zeros(0, dtype=int)
    labels = list(range(len(all_classes)))
    precision, recall, f1, support = precision_recall_fscore_support(
        y_true, y_pred, labels=labels, zero_division=0
    )
    padded = np.zeros((len(proba), len(all_classes)))
    padded[:, : len(classes)] = np.clip(proba, 1e-7, 1.0)
    padded /= np.maximum(padded.sum(axis=1, keepdims=True), 1e-12)  # float32 rounding
    confidence = proba.max(axis=1) if len(proba) else np.zeros(0)
    return Evaluation(
        classes=all_classes,
        accuracy=float(accuracy_score(y_true, y_pred)),
        macro_f1=float(f1_score(y_true, y_pred, labels=labels, average="macro", zero_division=0)),
        log_loss=float(log_loss(y_true, padded, labels=labels)) if len(truth) else 0.0,
        calibration_error=expected_calibration_error(y_true == y_pred, confidence),
        per_class={
            cls: {
                "precision": float(precision[i]),
                "recall": float(recall[i]),
                "f1": float(f1[i]),
                "support": float(support[i]),
            }
            for i, cls in enumerate(all_classes)
        },
        confusion=confusion_matrix(y_true, y_pred, labels=labels).tolist(),
        samples=len(truth),
    )
