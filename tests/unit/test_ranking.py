"""Behaviour of the labelling queue: what comes first, and that every item says why."""

from __future__ import annotations

import numpy as np
import pytest

from textops.labelling.ranking import (
    RankingConfig,
    RankingWeights,
    drift_scores,
    rank,
    uncertainty_scores,
)
from textops.monitoring.reference import build_reference_profile

TRAINING = [
    "酒店的服务很好，房间也很干净",
    "这本书写得很好，值得一读",
    "电脑的屏幕不错，运行速度很快",
    "房间太小了，服务态度很差",
    "书的内容很无聊，不推荐",
    "电脑用了一周就坏了，质量太差",
]


def reference() -> dict:
    labels = ["positive", "positive", "positive", "negative", "negative", "negative"]
    return build_reference_profile(
        TRAINING, labels, ["negative", "positive"], np.zeros((0, 2), dtype=float)
    )


def ids_of(items) -> list[str]:
    return [item.id for item in items]


def test_an_uncertain_sample_outranks_a_confident_one() -> None:
    items = rank(
        ["sure", "unsure"],
        ["房间很干净，服务很好", "书的内容一般般吧"],
        np.array([[0.98, 0.02], [0.52, 0.48]]),
    )
    assert ids_of(items) == ["unsure", "sure"]
    assert items[0].parts["uncertainty"] > items[1].parts["uncertainty"]
    assert "unsure" in items[0].reason


def test_a_drifted_sample_outranks_an_in_distribution_one_at_equal_uncertainty() -> None:
    items = rank(
        ["usual", "drifted"],
        ["酒店的服务很好，房间很干净", "ｇｐｕ驱动闪退，蓝屏死机了"],
        np.array([[0.7, 0.3], [0.7, 0.3]]),
        reference=reference(),
    )
    assert ids_of(items) == ["drifted", "usual"]
    assert items[0].parts["drift"] > items[1].parts["drift"]
    scores = drift_scores(["酒店的服务很好", "ｇｐｕ驱动闪退"], reference())
    assert 0.0 <= scores[0] < scores[1] <= 1.0


def test_without_a_reference_drift_is_zero() -> None:
    items = rank(["a"], ["ｇｐｕ驱动闪退"], np.array([[0.5, 0.5]]))
    assert items[0].parts["drift"] == 0.0


def test_near_duplicates_do_not_fill_the_top() -> None:
    copies = [f"这家酒店的房间很大，早餐一般，服务员态度还可以{i}" for i in range(20)]
    distinct = ["这本书翻译得很差", "电脑键盘手感不错", "物流太慢了", "价格便宜但是质量一般"]
    texts = copies + distinct
    ids = [f"copy{i}" for i in range(20)] + [f"other{i}" for i in range(4)]
    proba = np.array([[0.5, 0.5]] * 20 + [[0.7, 0.3]] * 4)  # the copies are the most uncertain
    items = rank(ids, texts, proba, limit=5)
    top = ids_of(items)
    assert sum(i.startswith("copy") for i in top) == 1
    assert {"other0", "other1", "other2", "other3"} <= set(top)
    everything = rank(ids, texts, proba)
    tail = everything[5:]
    assert all(item.duplicate_of is not None for item in tail)
    assert all("near-duplicate of" in item.reason for item in tail)


def test_the_diversity_weight_only_penalises_similarity() -> None:
    texts = ["服务很好", "服务很好啊", "书很无聊"]
    proba = np.array([[0.5, 0.5], [0.55, 0.45], [0.6, 0.4]])
    no_penalty = RankingConfig(
        weights=RankingWeights(diversity=0.0, density=0.0), duplicate_threshold=1.01
    )
    assert ids_of(rank(["a", "b", "c"], texts, proba, config=no_penalty)) == ["a", "b", "c"]
    strong = RankingConfig(
        weights=RankingWeights(diversity=1.0, density=0.0), duplicate_threshold=1.01
    )
    items = rank(["a", "b", "c"], texts, proba, config=strong)
    assert ids_of(items) == ["a", "c", "b"]
    assert items[2].parts["diversity_penalty"] < 0


def test_weights_change_the_order_as_configured() -> None:
    ids = ["unsure", "valuable"]
    texts = ["书的内容一般般吧", "房间很干净，服务很好"]
    proba = np.array([[0.5, 0.5], [0.9, 0.1]])
    business = [0.0, 1.0]
    plain = RankingConfig(weights=RankingWeights(business=0.0))
    assert ids_of(rank(ids, texts, proba, business=business, config=plain)) == ids
    paid = RankingConfig(weights=RankingWeights(business=2.0))
    items = rank(ids, texts, proba, business=business, config=paid)
    assert ids_of(items) == ["valuable", "unsure"]
    assert items[0].parts["business"] == pytest.approx(2.0)
    assert "business weight" in items[0].reason


def test_parts_add_up_to_the_score() -> None:
    rng = np.random.default_rng(0)
    texts = [*TRAINING, "ｇｐｕ驱动闪退", "服务很好", "服务很好！", "一般"]
    proba = rng.dirichlet([1.0, 1.0], size=len(texts))
    items = rank(
        [str(i) for i in range(len(texts))],
        texts,
        proba,
        reference=reference(),
        business=rng.random(len(texts)).tolist(),
    )
    assert len(items) == len(texts)
    for item in items:
        assert set(item.parts) == {
            "uncertainty",
            "drift",
            "density",
            "business",
            "diversity_penalty",
            "balance_penalty",
        }
        assert item.score == pytest.approx(sum(item.parts.values()))


def test_multi_class_probabilities_work_with_margin_and_entropy() -> None:
    proba = np.array(
        [
            [0.97, 0.01, 0.01, 0.01],
            [0.25, 0.25, 0.25, 0.25],
            [0.45, 0.45, 0.05, 0.05],
        ]
    )
    margin = uncertainty_scores(proba, "margin")
    entropy = uncertainty_scores(proba, "entropy")
    assert margin[1] == pytest.approx(1.0) and margin[2] == pytest.approx(1.0)
    assert entropy[1] == pytest.approx(1.0) and entropy[2] < 1.0
    assert np.argmin(margin) == 0 and np.argmin(entropy) == 0
    texts = ["房间很干净", "书很无聊", "电脑很快"]
    config = RankingConfig(uncertainty_measure="entropy")
    items = rank(["sure", "flat", "split"], texts, proba, config=config)
    assert ids_of(items) == ["flat", "split", "sure"]


def test_a_committee_is_averaged() -> None:
    members = np.array([[[0.9, 0.1], [0.9, 0.1]], [[0.1, 0.9], [0.9, 0.1]]])
    scores = uncertainty_scores(members)
    assert scores[0] == pytest.approx(1.0) and scores[1] == pytest.approx(0.2)
    items = rank(["disputed", "agreed"], ["房间很干净", "书很无聊"], members)
    assert ids_of(items) == ["disputed", "agreed"]


def test_bad_shapes_are_refused() -> None:
    with pytest.raises(ValueError):
        rank(["a", "b"], ["x", "y"], np.array([[0.5, 0.5]]))
    with pytest.raises(ValueError):
        rank(["a"], ["x", "y"], np.array([[0.5, 0.5]]))
    with pytest.raises(ValueError):
        rank(["a"], ["x"], np.array([[0.5, 0.5]]), business=[1.0, 2.0])
    assert rank([], [], np.zeros((0, 2))) == []


def test_drift_evidence_puts_a_confident_drifted_text_above_an_unsure_usual_one() -> None:
    """A text of the shift in recent traffic comes first even when the model is sure of it,
    and its reason says why it counts as drifted."""
    items = rank(
        ["unsure", "shift", "usual"],
        ["书的内容一般般吧", "前台办理入住太慢", "这本书很好看"],
        np.array([[0.55, 0.45], [0.95, 0.05], [0.9, 0.1]]),
        drift_evidence=["", "shares n-grams new in recent traffic (入住)", ""],
    )
    assert ids_of(items) == ["shift", "unsure", "usual"]
    assert items[0].parts["drift"] == pytest.approx(RankingWeights().drift_first)
    assert items[0].reason.startswith("drifted: shares n-grams new in recent traffic (入住)")
    assert items[1].reason.startswith("model unsure")
    assert items[0].score == pytest.approx(sum(items[0].parts.values()))


def test_drift_first_zero_switches_the_tier_off() -> None:
    config = RankingConfig(weights=RankingWeights(drift_first=0.0))
    items = rank(
        ["unsure", "shift"],
        ["书的内容一般般吧", "前台办理入住太慢"],
        np.array([[0.55, 0.45], [0.95, 0.05]]),
        drift_evidence=["", "new n-grams"],
        config=config,
    )
    assert ids_of(items) == ["unsure", "shift"]


def test_drift_evidence_must_cover_every_text() -> None:
    with pytest.raises(ValueError, match="drift evidence for 1 texts, expected 2"):
        rank(["a", "b"], ["一", "二"], np.array([[0.5, 0.5], [0.5, 0.5]]), drift_evidence=[""])
