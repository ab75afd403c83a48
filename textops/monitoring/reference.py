"""The drift reference profile: what "normal" looked like at training time (pure).

Logged with every trained model so that the serving side compares live traffic against the
data the serving version actually learnt from. Every distribution is stored as bin edges plus
probabilities so a streaming window only needs to bin its own values the same way:

- ``label_prior``: share of each label in the training rows (label drift);
- ``prediction_prior``: share of each predicted class on the holdout (prediction drift);
- ``confidence``: histogram of the top-class probability on the holdout — held-out, because
  in-sample confidence is inflated and would make every live window look drifted;
- ``length`` (decile edges of the training texts) and ``non_chinese_share`` histograms;
- ``char_ngrams``: the most frequent character uni- and bigrams with their probabilities and
  the mass of all others (feature drift over the model's actual input units), and for each
  of those n-grams the share of training texts containing it (``presence``); and
  ``bigram_presence``: the share of training texts containing each bigram seen in at least two
  of them (the most common ``MAX_BIGRAMS``; ``bigram_floor`` bounds the unlisted ones), which
  tells the bigrams of a shift in live traffic from ordinary ones
  (:mod:`textops.monitoring.emerging`);
- ``vocabulary``: every character seen in training, to count unseen characters online;
- ``embeddings`` (only for a model that encodes texts with a transformer): a whitened PCA of
  the training texts' sentence embeddings (``mean``, the top ``components``, their ``scale``
  = 1/sqrt(eigenvalue)), so the monitor can compare a window's mean embedding in a few
  unit-variance directions instead of the full hidden size.

Given the held-out texts too, the profile also carries what the online drift monitor
(:mod:`textops.monitoring.drift`) needs to stay quiet on in-distribution traffic:

- ``rarity``: the 95th percentile of the per-text share of n-grams outside ``char_ngrams.top``
  on held-out texts (the cutoff for a "rare" text) and the share above it there;
- ``drift``: thresholds of every drift statistic per window size, calibrated on bootstrap
  windows of held-out rows (see :func:`textops.monitoring.drift.calibrate`).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from textops.features.text_stats import char_ngrams, non_chinese_share
from textops.monitoring.drift import CalibrationParams, calibrate, rarity_reference
from textops.monitoring.emerging import bigrams

PROFILE_VERSION = 2
CONFIDENCE_BINS = 10
LENGTH_BINS = 10
NON_CHINESE_EDGES = [0.0, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0]
TOP_NGRAMS = 1000
MAX_BIGRAMS = 50_000  # ~1 MB of JSON at most; 3,000 reviews have ~21,000 in two texts or more
EMBEDDING_COMPONENTS = 16
# directions with less variance than this share of the top one are noise, not signal: whitening
# them would blow tiny numerical differences up to unit scale
MIN_EIGENVALUE_SHARE = 1e-6


def histogram(values: Iterable[float], edges: Sequence[float]) -> list[float]:
    """Share of values per bin; values beyond the outer edges fall into the outer bins."""
    array = np.asarray(list(values), dtype=float)
    bins = len(edges) - 1
    if len(array) == 0:
        return [0.0] * bins
    index = np.clip(np.searchsorted(np.asarray(edges[1:-1]), array, side="right"), 0, bins - 1)
    counts = np.bincount(index, minlength=bins)
    return (counts / counts.sum()).round(6).tolist()


def length_edges(lengths: Sequence[int]) -> list[float]:
    """Decile edges of the training lengths, strictly increasing, open at both ends.

    The last edge is +infinity (``null`` once written as JSON).
    """
    inner = np.unique(np.quantile(lengths, np.linspace(0, 1, LENGTH_BINS + 1)[1:-1]))
    return [0.0, *[float(x) for x in inner], float("inf")]


def presence(grams: Sequence[str], texts: Sequence[str]) -> list[float]:
    """Share of texts that contain each n-gram at least once (its document frequency)."""
    index = {g: i for i, g in enumerate(grams)}
    counts = np.zeros(len(grams))
    for text in texts:
        found = {index[g] for g in char_ngrams(text) if g in index}
        counts[list(found)] += 1
    return (counts / max(len(texts), 1)).round(6).tolist()


def bigram_presence(texts: Sequence[str], most: int | None = None) -> dict[str, Any]:
    """``bigram_presence``: the share of ``texts`` containing each bigram found in at least two
    of them (the ``most`` common, ``MAX_BIGRAMS`` by default; a bigram of one text says nothing
    of its kind), and ``bigram_floor``: the most an unlisted bigram can have."""
    documents: Counter[str] = Counter()
    for text in texts:
        documents.update(bigrams(text))
    n = max(len(texts), 1)
    limit = most or MAX_BIGRAMS
    listed = [(g, d) for g, d in documents.most_common(limit) if d >= 2]
    floor = listed[-1][1] / n if len(listed) == limit else 1 / n
    return {
        "bigram_presence": {g: round(d / n, 6) for g, d in listed},
        "bigram_floor": round(floor, 6),
    }


def shares(values: Iterable[str], classes: Sequence[str]) -> dict[str, float]:
    counts = Counter(values)
    total = max(sum(counts.values()), 1)
    return {c: round(counts.get(c, 0) / total, 6) for c in classes}


def embedding_reference(
    embeddings: np.ndarray, components: int = EMBEDDING_COMPONENTS
) -> dict[str, Any]:
    """Whitened PCA of the training embeddings (rows = texts), as lists: the profile is JSON.

    ``project(e) = ((e - mean) @ components.T) * scale`` has mean 0 and unit variance per
    direction on the training texts; at most ``components`` directions, fewer when the texts or
    the hidden size are fewer or the variance runs out.
    """
    x = np.asarray(embeddings, dtype=float)
    if x.ndim != 2 or len(x) < 2:
        raise ValueError("the embedding reference needs a matrix of at least two rows")
    mean = x.mean(axis=0)
    _, singular, vt = np.linalg.svd(x - mean, full_matrices=False)
    eigen = singular**2 / (len(x) - 1)
    floor = MIN_EIGENVALUE_SHARE * max(float(eigen[0]), 1e-30)
    keep = min(components, len(eigen), int(np.sum(eigen > floor)))
    return {
        "samples": len(x),
        "dimension": int(x.shape[1]),
        "mean": np.round(mean, 6).tolist(),
        "components": np.round(vt[:keep], 6).tolist(),
        "scale": [float(f"{v:.7g}") for v in 1 / np.sqrt(eigen[:keep])],
        "explained_variance": round(float(eigen[:keep].sum() / max(eigen.sum(), 1e-30)), 6),
    }


def build_reference_profile(
    texts: Sequence[str],
    labels: Sequence[str],
    classes: Sequence[str],
    holdout_proba: np.ndarray,
    holdout_texts: Sequence[str] | None = None,
    calibration: CalibrationParams | None = None,
    embeddings: np.ndarray | None = None,
    holdout_embeddings: np.ndarray | None = None,
) -> dict[str, Any]:
    """Profile the training texts and the model's held-out predictions.

    With ``holdout_texts`` (the rows of ``holdout_proba``, in order) and at least
    ``calibration.min_rows`` of them, also add ``rarity`` and the calibrated ``drift``
    thresholds. With ``embeddings`` (sentence embeddings of the training texts or a sample of
    them) also add ``embeddings``; its drift threshold is calibrated when
    ``holdout_embeddings`` (the rows of ``holdout_proba``, in order) are given too.
    """
    lengths = [len(t) for t in texts]
    edges = length_edges(lengths)
    counts: Counter[str] = Counter()
    for text in texts:
        counts.update(char_ngrams(text))
    total = max(sum(counts.values()), 1)
    top = counts.most_common(TOP_NGRAMS)
    conf_edges = np.linspace(0.0, 1.0, CONFIDENCE_BINS + 1).round(6).tolist()
    predicted = [classes[i] for i in holdout_proba.argmax(axis=1)] if len(holdout_proba) else []
    profile: dict[str, Any] = {
        "version": PROFILE_VERSION,
        "classes": list(classes),
        "samples": len(texts),
        "holdout_samples": len(holdout_proba),
        "label_prior": shares(labels, classes),
        "prediction_prior": shares(predicted, classes),
        "confidence": {
            "edges": conf_edges,
            "probabilities": histogram(
                holdout_proba.max(axis=1) if len(predicted) else [], conf_edges
            ),
            "mean": round(float(holdout_proba.max(axis=1).mean()), 6) if len(predicted) else None,
        },
        "length": {
            "edges": [e if np.isfinite(e) else None for e in edges],
            "probabilities": histogram(lengths, edges),
        },
        "non_chinese_share": {
            "edges": NON_CHINESE_EDGES,
            "probabilities": histogram([non_chinese_share(t) for t in texts], NON_CHINESE_EDGES),
        },
        "char_ngrams": {
            "sizes": [1, 2],
            "top": {gram: round(n / total, 8) for gram, n in top},
            "other": round(1 - sum(n for _, n in top) / total, 8),
            "presence": presence([g for g, _ in top], texts),
            **bigram_presence(texts),
        },
        "vocabulary": "".join(sorted({ch for t in texts for ch in t if not ch.isspace()})),
    }
    if embeddings is not None:
        profile["embeddings"] = embedding_reference(embeddings)
    params = calibration or CalibrationParams()
    if holdout_texts is not None and len(holdout_texts) >= max(params.min_rows, 1):
        if len(holdout_texts) != len(holdout_proba):
            raise ValueError("holdout_texts and holdout_proba must have the same rows")
        profile["rarity"] = rarity_reference(profile, holdout_texts)
        if holdout_embeddings is not None and len(holdout_embeddings) != len(holdout_proba):
            raise ValueError("holdout_embeddings and holdout_proba must have the same rows")
        profile["drift"] = calibrate(
            profile, holdout_texts, holdout_proba, params, embeddings=holdout_embeddings
        )
    return profile
