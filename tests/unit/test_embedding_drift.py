"""Embedding-based feature drift (``embedding_mean_z``): quiet in distribution, loud under a
shift, absent without an embedding section.

Synthetic Gaussian embeddings test the statistic itself (its null behaviour is known); the
tiny random BERT of tests/conftest.py runs the real path: a classifier with an encoder, the
training pipeline's profile, the monitor fed with the embeddings the model computed.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np

from tests.synthetic import make_rows
from textops.model.classifier import ClassifierParams, TextClassifier, XGBoostParams
from textops.monitoring.drift import (
    FEATURE_STATISTICS,
    PREDICTION_STATISTICS,
    CalibrationParams,
    DriftMonitor,
    EmbeddingProjection,
)
from textops.monitoring.reference import build_reference_profile, embedding_reference
from textops.serving.model_loader import LoadedModel, ModelRef
from textops.training.pipeline import reference_profile

NAME = "embedding_mean_z"
DIM = 48
WINDOW = 500
# decreasing spread per dimension: a handful of directions carry most of the variance
SCALES = np.geomspace(3.0, 0.05, DIM)
# another domain: news phrases, mostly characters the tiny BERT's vocabulary lacks
NEWS = ["国务院", "常务会议", "统计局", "粮食总产量", "安理会", "紧急磋商", "地铁线路", "气象台"]


def gaussian(rng: np.random.Generator, n: int) -> np.ndarray:
    return rng.standard_normal((n, DIM)) * SCALES + 0.5


@cache
def synthetic() -> dict[str, Any]:
    """A profile from 2,000 training and 600 held-out rows; texts from tests/synthetic.py."""
    rng = np.random.default_rng(0)
    rows = make_rows(n_per_class=300, classes=3)
    texts, labels = [t for t, _ in rows], [lab for _, lab in rows]
    classes = sorted(set(labels))
    proba = rng.dirichlet(np.ones(len(classes)), 600)
    hold = [texts[i % len(texts)] for i in range(600)]
    profile = build_reference_profile(
        texts,
        labels,
        classes,
        proba,
        holdout_texts=hold,
        calibration=CalibrationParams(windows=200, window_sizes=(200, 500)),
        embeddings=gaussian(rng, 2000),
        holdout_embeddings=gaussian(rng, 600),
    )
    return {"profile": profile, "texts": texts, "classes": classes}


def run_windows(shift: float, share: float, windows: int = 50) -> list[tuple[float, float]]:
    """(statistic, threshold) of ``windows`` fresh windows; ``share`` of each window's texts
    moved by ``shift`` standard deviations along the 8 widest dimensions."""
    data = synthetic()
    monitor = DriftMonitor(data["profile"], window=WINDOW)
    rng = np.random.default_rng(7)
    out = []
    for _ in range(windows):
        monitor.reset()
        emb = gaussian(rng, WINDOW)
        moved = rng.random(WINDOW) < share
        emb[np.ix_(moved, np.arange(8))] += shift * SCALES[:8]
        for i in range(WINDOW):
            monitor.observe(data["texts"][i], None, emb[i])
        result = next(r for r in monitor.evaluate().components if r.name == NAME)
        assert result.samples == WINDOW and result.kind == "feature"
        out.append((result.statistic, result.threshold))
    return out


def test_reference_is_a_whitened_pca_and_json() -> None:
    rng = np.random.default_rng(1)
    train = gaussian(rng, 3000)
    section = embedding_reference(train)
    assert len(section["components"]) == 16 and section["dimension"] == DIM
    json.loads(json.dumps(section))
    projection = EmbeddingProjection.from_profile({"embeddings": section})
    assert projection is not None
    z = np.stack([np.asarray(projection.project(e)) for e in train])
    np.testing.assert_allclose(z.mean(axis=0), 0, atol=1e-3)
    np.testing.assert_allclose(z.std(axis=0, ddof=1), 1, rtol=1e-3)
    # a rank-2 cloud keeps two directions, not 16 whitened rounding errors
    flat = rng.standard_normal((200, 2)) @ rng.standard_normal((2, DIM))
    assert len(embedding_reference(flat)["components"]) == 2


def test_profile_carries_a_calibrated_threshold() -> None:
    drift = synthetic()["profile"]["drift"]
    thresholds = drift["thresholds"][NAME]
    # a z-score: ~1 in distribution at any size, so the threshold barely moves with it; it
    # creeps up as the window nears the holdout's size (the bootstrap windows share the
    # holdout's own offset from the training mean: conservative)
    assert all(1.2 < t < 2.6 for t in thresholds), thresholds
    assert all(0.8 < m < 1.35 for m in drift["null_median"][NAME])


def test_in_distribution_windows_stay_quiet() -> None:
    results = run_windows(shift=0.0, share=0.0)
    assert sum(s > t for s, t in results) == 0, max(results)
    assert 0.7 < float(np.median([s for s, _ in results])) < 1.3


def test_a_mean_shift_in_a_fifth_of_the_texts_is_caught() -> None:
    results = run_windows(shift=1.0, share=0.2)
    assert sum(s > t for s, t in results) == 50, min(results)


def test_profiles_without_embeddings_have_no_such_component() -> None:
    data = synthetic()
    plain = build_reference_profile(
        data["texts"], data["texts"][:1] * len(data["texts"]), ["a"], np.ones((300, 1))
    )
    assert "embeddings" not in plain
    monitor = DriftMonitor(plain, min_samples=10)
    assert not monitor.uses_embeddings
    size = monitor.reference.layout.size
    for text in data["texts"][:50]:
        monitor.observe(text, [1.0], np.ones(DIM))  # ignored: nothing to compare it with
    names = [r.name for r in monitor.evaluate().components]
    assert NAME not in names and set(names) <= set(FEATURE_STATISTICS + PREDICTION_STATISTICS)
    assert monitor.reference.layout.size == size == monitor._totals.size


def test_texts_without_a_fitting_embedding_do_not_count() -> None:
    data = synthetic()
    monitor = DriftMonitor(data["profile"], window=WINDOW, min_samples=10)
    assert monitor.uses_embeddings
    rng = np.random.default_rng(3)
    emb = gaussian(rng, 30)
    for i in range(30):
        monitor.observe(data["texts"][i], None, emb[i] if i < 20 else np.ones(DIM + 1))
    report = monitor.evaluate()
    result = next(r for r in report.components if r.name == NAME)
    assert result.samples == 20 and report.feature.samples == 30
    # the embedding rarity travels with the suspects
    assert all(s.embedding_rarity is None or s.embedding_rarity >= 0 for s in report.suspects)
    assert any("embedding_rarity" in s for s in report.to_dict()["suspects"])


def test_the_sliding_window_subtracts_embeddings_too() -> None:
    data = synthetic()
    emb = gaussian(np.random.default_rng(5), 700)
    sliding, fresh = (DriftMonitor(data["profile"], window=200) for _ in range(2))
    for i in range(700):
        sliding.observe(data["texts"][i], None, emb[i])
    for i in range(500, 700):
        fresh.observe(data["texts"][i], None, emb[i])
    np.testing.assert_allclose(sliding._totals, fresh._totals, atol=1e-8)


def test_trained_model_with_an_encoder_monitors_its_embeddings(tiny_bert: Path) -> None:
    """The pipeline's profile of a classifier with the tiny BERT; news sentences move
    ``embedding_mean_z`` above its threshold and well above in-distribution windows (the
    encoder has random weights: it tells texts apart by their tokens, not their meaning)."""
    train = make_rows(n_per_class=70, classes=3, seed=0)
    hold = make_rows(n_per_class=50, classes=3, seed=1)
    live = make_rows(n_per_class=40, classes=3, seed=2)
    rng = np.random.default_rng(3)
    other = ["，".join(rng.choice(NEWS, 3)) + "。" for _ in range(100)]
    params = ClassifierParams(xgb=XGBoostParams(n_estimators=20), embeddings_dir=str(tiny_bert))
    clf = TextClassifier(params).fit([t for t, _ in train], [y for _, y in train])
    hold_x = [t for t, _ in hold]
    proba, hold_emb = clf.predict_proba_with_embeddings(hold_x)
    assert hold_emb is not None and hold_emb.shape == (len(hold_x), 32)
    profile = reference_profile(
        clf,
        [t for t, _ in train],
        [y for _, y in train],
        hold_x,
        proba,
        hold_emb,
        calibration=CalibrationParams(windows=200, window_sizes=(100, 200)),
    )
    assert NAME in profile["drift"]["thresholds"]
    # what the service calls once per batch: the probabilities and the embeddings behind them
    served = LoadedModel(ModelRef("m", "1"), clf, json.loads(json.dumps(profile)))

    def window(texts: list[str]) -> tuple[float, float]:
        monitor = DriftMonitor(served.profile, window=100, min_samples=50)
        assert monitor.uses_embeddings
        rows, emb = served.predict_proba_with_embeddings(texts[:100])
        assert emb is not None
        np.testing.assert_allclose(rows, clf.predict_proba(texts[:100]))
        np.testing.assert_allclose(emb[:3], clf.embed(texts[:3]), atol=1e-5)
        for text, row, e in zip(texts, rows, emb, strict=False):
            monitor.observe(text, row, e)
        result = next(r for r in monitor.evaluate().components if r.name == NAME)
        return result.statistic, result.threshold

    normal, threshold = window([t for t, _ in live])
    shifted, _ = window(other)
    assert np.isfinite(threshold) and threshold > 0
    assert np.isfinite(normal) and shifted > 2 * normal and shifted > threshold, (
        normal,
        shifted,
        threshold,
    )
