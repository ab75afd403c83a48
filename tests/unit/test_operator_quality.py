"""The quality metric a ModelDeployment names, from feedback counts: the values agree with
scikit-learn's on the same predictions, and the serving side's counters carry what the
operator's reading needs (a round trip through the exposition format)."""

from __future__ import annotations

import random
from collections import Counter

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families
from sklearn.metrics import accuracy_score, f1_score

from textops.operator.quality import UNKNOWN_TRUTH, accuracy, macro_f1, quality_value
from textops.serving.metrics import ServingMetrics

CLASSES = ["书籍", "电脑", "酒店"]


def _feedback(seed: int, n: int = 300) -> list[tuple[str, str]]:
    """(predicted, true) pairs from a classifier that is good on two classes, poor on one."""
    rng = random.Random(seed)
    pairs = []
    for _ in range(n):
        truth = rng.choice(CLASSES)
        right = rng.random() < (0.5 if truth == "酒店" else 0.95)
        pairs.append((truth if right else rng.choice([c for c in CLASSES if c != truth]), truth))
    return pairs


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_macro_f1_and_accuracy_from_counts_equal_scikit_learn(seed: int) -> None:
    pairs = _feedback(seed)
    predicted, truth = [p for p, _ in pairs], [t for _, t in pairs]
    confusion = Counter(pairs)
    assert macro_f1(confusion) == pytest.approx(f1_score(truth, predicted, average="macro"))
    correct = sum(p == t for p, t in pairs)
    assert accuracy(correct, len(pairs)) == pytest.approx(accuracy_score(truth, predicted))
    by_f1 = quality_value("macro_f1", correct, len(pairs), confusion)
    by_accuracy = quality_value("accuracy", correct, len(pairs), confusion)
    assert by_f1 is not None and by_accuracy is not None
    assert by_f1 < by_accuracy  # the poor class weighs a third in macro-F1


def test_no_feedback_is_no_value_and_unknown_truth_counts_against_the_prediction() -> None:
    assert macro_f1({}) is None and accuracy(None, None) is None and accuracy(0, 0) is None
    assert accuracy(None, 10) == 0.0  # feedback, none of it correct
    # 9 right 书籍; one 书籍 marked wrong with no class: a false positive of 书籍 only
    assert macro_f1({("书籍", "书籍"): 9, ("书籍", UNKNOWN_TRUTH): 1}) == pytest.approx(18 / 19)


def test_the_serving_counters_give_the_operator_the_confusion_it_reads() -> None:
    pairs = _feedback(7, n=120)
    summed: dict[tuple[str, str], float] = {}
    for pod in range(2):  # two pods' series, summed by (predicted, actual) as the query does
        registry = CollectorRegistry()
        metrics = ServingMetrics("reviews", "3", max_batch_size=8, registry=registry)
        for said, true in pairs[pod::2]:
            metrics.feedback_given(said, said == true, true, None, 0.0)
        metrics.feedback_given("书籍", False, None, None, 0.0)  # marked wrong, no class given
        for family in text_string_to_metric_families(generate_latest(registry).decode()):
            if family.name != "textops_feedback_labels":
                continue
            for sample in family.samples:
                if sample.name.endswith("_total"):
                    key = (sample.labels["predicted"], sample.labels["actual"])
                    summed[key] = summed.get(key, 0.0) + sample.value
    assert summed.pop(("书籍", UNKNOWN_TRUTH)) == 2
    predicted, truth = [p for p, _ in pairs], [t for _, t in pairs]
    assert macro_f1(summed) == pytest.approx(f1_score(truth, predicted, average="macro"))
