"""The classifier works for any label set; metrics, reference profile and holdout are sound."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.synthetic import make_rows
from textops.data.split import in_holdout, split_indices
from textops.errors import TextopsError
from textops.model.classifier import ClassifierParams, TextClassifier, XGBoostParams
from textops.model.evaluation import evaluate, expected_calibration_error
from textops.monitoring.reference import build_reference_profile, histogram

FAST = ClassifierParams(xgb=XGBoostParams(n_estimators=40))


def test_four_classes_train_and_predict_well() -> None:
    rows = make_rows(n_per_class=80, classes=4)
    texts, labels = [t for t, _ in rows], [label for _, label in rows]
    train, hold = split_indices(texts, 0.25)
    clf = TextClassifier(FAST).fit([texts[i] for i in train], [labels[i] for i in train])
    assert clf.classes == sorted(set(labels)) and len(clf.classes) == 4
    proba = clf.predict_proba([texts[i] for i in hold])
    assert proba.shape == (len(hold), 4)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-5)
    result = evaluate([labels[i] for i in hold], proba, clf.classes)
    assert result.macro_f1 > 0.8, result.metrics()
    assert set(result.per_class) == set(clf.classes)
    assert clf.predict_proba([]).shape == (0, 4)


def test_one_label_is_refused() -> None:
    with pytest.raises(TextopsError, match="at least two labels"):
        TextClassifier(FAST).fit(["好", "很好"], ["a", "a"])


def test_evaluation_counts_unknown_truth_as_errors() -> None:
    proba = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4]])
    result = evaluate(["a", "b", "c"], proba, ["a", "b"])
    assert result.classes == ["a", "b", "c"]
    assert result.accuracy == pytest.approx(2 / 3)
    assert result.per_class["c"]["recall"] == 0.0
    assert result.confusion == [[1, 0, 0], [0, 1, 0], [1, 0, 0]]


def test_calibration_error_is_zero_when_confidence_matches_accuracy() -> None:
    correct = np.array([True, True, False, False])
    assert expected_calibration_error(correct, np.array([0.5, 0.5, 0.5, 0.5])) == 0.0
    assert expected_calibration_error(correct, np.array([1.0, 1.0, 1.0, 1.0])) == 0.5


def test_reference_profile_distributions_are_probabilities() -> None:
    texts = ["房间很好", "服务差!", "abc 很一般", "书的情节不错？"]
    proba = np.array([[0.9, 0.1], [0.3, 0.7], [0.45, 0.55], [0.2, 0.8]])
    profile = build_reference_profile(texts, ["p", "n", "p", "n"], ["n", "p"], proba)
    for key in ("confidence", "length", "non_chinese_share"):
        assert sum(profile[key]["probabilities"]) == pytest.approx(1.0)
    assert profile["label_prior"] == {"n": 0.5, "p": 0.5}
    assert profile["prediction_prior"] == {"n": 0.25, "p": 0.75}
    assert profile["char_ngrams"]["top"]["很"] > 0 and "a" in profile["vocabulary"]
    assert profile["length"]["edges"][-1] is None  # +inf, JSON-safe
    assert profile["confidence"]["mean"] == pytest.approx(0.7375)
    grams = profile["char_ngrams"]
    presence = dict(zip(grams["top"], grams["presence"], strict=True))
    assert presence["很"] == 0.5 and all(0 < p <= 1 for p in presence.values())
    # drift thresholds are calibrated only from enough held-out texts (none given here)
    assert "drift" not in profile and "rarity" not in profile
    assert histogram([5, 50, 500], [0, 10, 100]) == pytest.approx([1 / 3, 2 / 3], abs=1e-6)


def test_holdout_is_pinned_per_text_and_near_the_fraction() -> None:
    texts = [f"评论{i}" for i in range(5000)]
    _, hold = split_indices(texts)
    assert 0.17 < len(hold) / len(texts) < 0.23
    # a text keeps its side whatever else is in the dataset
    _, hold_again = split_indices(list(reversed(texts)))
    assert {texts[i] for i in hold} == {texts[::-1][i] for i in hold_again}
    assert in_holdout(texts[hold[0]])


def test_lineage_tags_name_the_code_and_the_operator_trigger() -> None:
    from textops.registry.lineage import lineage_tags

    tags = lineage_tags("img:1", env={"TEXTOPS_TRIGGER": "drift", "TEXTOPS_TRIGGER_ID": "abc"})
    assert tags["textops.image.tag"] == "img:1"
    assert tags["textops.trigger"] == "drift" and tags["textops.trigger.id"] == "abc"
    assert "textops.modeldeployment" not in tags
    assert len(tags["textops.code.sha256"]) == 64 and tags["textops.git.dirty"] in (
        "true",
        "false",
        "unknown",
    )


def test_outside_a_checkout_lineage_names_the_commit_the_image_recorded(tmp_path: Path) -> None:
    from textops.registry.lineage import git_state

    commit = "0123456789abcdef0123456789abcdef01234567"
    recorded = {"TEXTOPS_GIT_COMMIT": commit, "TEXTOPS_GIT_DIRTY": "false"}
    assert git_state(tmp_path, recorded) == (commit, False)
    assert git_state(tmp_path, {**recorded, "TEXTOPS_GIT_DIRTY": "true"}) == (commit, True)
    assert git_state(tmp_path, {"TEXTOPS_GIT_COMMIT": commit}) == (commit, None)
    assert git_state(tmp_path, {"TEXTOPS_GIT_COMMIT": "unknown"}) == (None, None)
    assert git_state(tmp_path, {}) == (None, None)
    # in a checkout, the checkout wins over what an environment says
    here, _ = git_state(env=recorded)
    assert here != commit and here is not None and len(here) == 40


def test_serving_lineage_reads_the_version_tags_and_keeps_one_label_set() -> None:
    from textops.registry.lineage import SERVING_LINEAGE_LABELS, lineage_tags, serving_lineage

    tags = {
        **lineage_tags("img:1", env={"TEXTOPS_TRIGGER": "drift"}),
        "textops.dataset.id": "ds-9",
    }
    lineage = serving_lineage("r1", tags)
    assert lineage == {
        "run_id": "r1",
        "dataset": "ds-9",
        "git_commit": tags["textops.git.commit"],
        "image": "img:1",
        "trigger": "drift",
    }
    # a version registered by hand: the same labels, empty
    assert serving_lineage(None, {}) == dict.fromkeys(SERVING_LINEAGE_LABELS, "")
