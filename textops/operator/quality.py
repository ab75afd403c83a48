"""Online quality from feedback counts (pure): the value ``spec.monitoring.quality.metric``
names, computed from the increases of the serving side's feedback counters over
``quality.window``. Counts, not per-pod ratios, go in: every pod's feedback weighs by how
much of it there was, and a restarted pod loses nothing Prometheus already scraped.
"""

from __future__ import annotations

from collections.abc import Mapping

from textops.operator.spec import QualityMetric

UNKNOWN_TRUTH = ""  # ``actual`` of a prediction marked wrong without its true class


def accuracy(correct: float | None, total: float | None) -> float | None:
    """Share of feedback that confirmed the prediction (None without feedback)."""
    if not total or total <= 0:
        return None
    return min(max((correct or 0.0) / total, 0.0), 1.0)


def macro_f1(confusion: Mapping[tuple[str, str], float]) -> float | None:
    """Mean F1 over every class seen as predicted or true (None without feedback).

    ``confusion[(predicted, actual)]`` counts feedback. An ``actual`` of
    :data:`UNKNOWN_TRUTH` is a prediction marked wrong with no true class given: a false
    positive of the predicted class and nobody's false negative.
    """
    counts = {key: n for key, n in confusion.items() if n > 0}
    if not counts:
        return None
    classes = {p for p, _ in counts} | {a for _, a in counts if a != UNKNOWN_TRUTH}
    scores = []
    for c in sorted(classes):
        tp = counts.get((c, c), 0.0)
        fp = sum(n for (p, a), n in counts.items() if p == c and a != c)
        fn = sum(n for (p, a), n in counts.items() if a == c and p != c)
        scores.append(2 * tp / (2 * tp + fp + fn) if tp + fp + fn > 0 else 0.0)
    return sum(scores) / len(scores)


def quality_value(
    metric: QualityMetric,
    correct: float | None,
    total: float | None,
    confusion: Mapping[tuple[str, str], float],
) -> float | None:
    """The value of ``metric`` for one window's counts."""
    if metric == "accuracy":
        return accuracy(correct, total)
    return macro_f1(confusion)
