"""Which captured samples a person should label next, and why (pure: no I/O, no services).

Labelling time is the scarce resource, so the queue puts first the texts whose label would teach
the serving model the most. Each sample's score is a weighted sum of parts, all kept on the
item so an annotator (or a reviewer of the queue) sees why it is there:

- ``uncertainty``: how unsure the model is — one minus the margin between the two most probable
  classes, or the normalised entropy; any number of classes. A committee's probabilities (an
  array of shape members x samples x classes) are averaged first;
- ``drift``: how far the text sits from the training reference profile of
  :mod:`textops.monitoring.reference` — the share of its characters never seen in training
  and of its character uni/bigrams outside the reference's frequent n-grams;
- ``density``: how typical the text is of the captured batch (mean cosine similarity of char
  n-gram vectors, scaled to 0-1). Uncertain outliers teach little; "information density";
- ``business``: an optional per-sample weight from the caller (e.g. a high-value customer);
- ``diversity_penalty`` (zero or negative): the similarity to the most similar text already
  placed above it, so the top of the queue covers different regions instead of many copies of
  one text. A text at least ``duplicate_threshold`` similar to one above it is a near-duplicate:
  it is collapsed to the end of the queue and names the text it repeats.

Placement is greedy — each pick raises the penalties of the texts like it — and lazy: only
texts that could still make the next place have their similarities computed.
"""

from __future__ import annotations

import heapq
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
from scipy import sparse
from sklearn.feature_extraction.text import HashingVectorizer
from sklearn.preprocessing import normalize

PARTS = ("uncertainty", "drift", "density", "business", "diversity_penalty")


@dataclass(frozen=True)
class RankingWeights:
    """How much each part counts; a weight of 0 switches the part off."""

    uncertainty: float = 1.0
    # 0.5 slowed the first active-learning rounds (a reference built from few texts calls
    # ordinary texts drifted); 0.2 matched plain margin sampling (benchmarks/labelling.md)
    drift: float = 0.2
    # off by default: on the review corpus, density weighting delayed learning (see
    # benchmarks/labelling.md); useful where captured traffic holds many one-off outliers
    density: float = 0.0
    business: float = 1.0
    diversity: float = 0.1


@dataclass(frozen=True)
class RankingConfig:
    """Weights plus how the parts are measured."""

    weights: RankingWeights = field(default_factory=RankingWeights)
    uncertainty_measure: Literal["margin", "entropy"] = "margin"
    # char n-grams for the similarity vectors (density, diversity, near-duplicates)
    ngram_range: tuple[int, int] = (2, 3)
    hash_features: int = 2**20
    # cosine similarity at or above which a text counts as a near-duplicate of one above it
    duplicate_threshold: float = 0.8


@dataclass(frozen=True)
class RankedItem:
    """One queue entry: ``score == sum(parts.values())``."""

    id: str
    score: float
    parts: dict[str, float]
    reason: str
    duplicate_of: str | None = None


def uncertainty_scores(
    probabilities: np.ndarray, measure: Literal["margin", "entropy"] = "margin"
) -> np.ndarray:
    """0 (certain) .. 1 (no idea) per row of a samples x classes (or members x samples x
    classes) probability array."""
    proba = np.asarray(probabilities, dtype=float)
    if proba.ndim == 3:
        proba = proba.mean(axis=0)
    if proba.ndim != 2 or proba.shape[1] < 2:
        raise ValueError(f"probabilities must be samples x classes (>= 2), got {proba.shape}")
    if measure == "margin":
        top2 = np.sort(proba, axis=1)[:, -2:]
        return np.clip(1.0 - (top2[:, 1] - top2[:, 0]), 0.0, 1.0)
    if measure == "entropy":
        p = np.clip(proba, 1e-12, 1.0)
        return np.clip(-(p * np.log(p)).sum(axis=1) / np.log(proba.shape[1]), 0.0, 1.0)
    raise ValueError(f"unknown uncertainty measure {measure!r}")


def drift_scores(texts: Sequence[str], reference: Mapping[str, Any] | None) -> np.ndarray:
    """0 (looks like training) .. 1 (nothing like it), from a reference profile.

    Half the share of characters absent from the training vocabulary, half the share of
    character uni/bigrams outside the profile's most frequent n-grams.
    """
    if not reference:
        return np.zeros(len(texts))
    vocabulary = set(reference.get("vocabulary", ""))
    frequent = set((reference.get("char_ngrams") or {}).get("top", {}))
    scores = np.zeros(len(texts))
    for i, text in enumerate(texts):
        chars = "".join(text.split())
        if not chars:
            continue
        unseen = sum(ch not in vocabulary for ch in chars) / len(chars)
        grams = [*chars, *(chars[j : j + 2] for j in range(len(chars) - 1))]
        rare = sum(g not in frequent for g in grams) / len(grams)
        scores[i] = 0.5 * unseen + 0.5 * rare
    return scores


def text_vectors(texts: Sequence[str], config: RankingConfig | None = None) -> sparse.csr_matrix:
    """L2-normalised counts of hashed char n-grams (bi- and trigrams by default).

    No idf: within a batch full of near-duplicates, idf would discount exactly the n-grams they
    share. No unigrams: common characters make any two Chinese texts look alike.
    """
    cfg = config or RankingConfig()
    return sparse.csr_matrix(
        HashingVectorizer(
            analyzer="char",
            ngram_range=cfg.ngram_range,
            n_features=cfg.hash_features,
            alternate_sign=False,
        ).transform(list(texts))
    )


def density_scores(vectors: Any) -> np.ndarray:
    """Mean cosine similarity of each row to all rows, scaled so the most typical is 1."""
    matrix = normalize(sparse.csr_matrix(vectors))
    centroid = np.asarray(matrix.mean(axis=0)).ravel()
    density = np.asarray(matrix @ centroid).ravel()
    top = density.max() if len(density) else 0.0
    return density / top if top > 0 else density


def rank(
    ids: Sequence[str],
    texts: Sequence[str],
    probabilities: np.ndarray,
    *,
    reference: Mapping[str, Any] | None = None,
    business: Sequence[float] | None = None,
    config: RankingConfig | None = None,
    limit: int | None = None,
    vectors: Any = None,
) -> list[RankedItem]:
    """The labelling queue, best first; ``limit`` items (all by default).

    ``probabilities`` are the serving model's class probabilities for ``texts`` (samples x
    classes, or members x samples x classes for a committee). ``reference`` is a drift reference
    profile (drift is 0 without it). ``vectors`` replaces the built-in char n-gram vectors used
    for density and diversity (one row per text).
    """
    cfg = config or RankingConfig()
    w = cfg.weights
    n = len(ids)
    if len(texts) != n:
        raise ValueError(f"{n} ids but {len(texts)} texts")
    proba = np.asarray(probabilities, dtype=float)
    if proba.ndim not in (2, 3) or proba.shape[-2] != n:
        raise ValueError(f"probabilities of shape {proba.shape} do not match {n} texts")
    if n == 0:
        return []
    parts: dict[str, np.ndarray] = {
        "uncertainty": w.uncertainty * uncertainty_scores(proba, cfg.uncertainty_measure),
        "drift": w.drift * drift_scores(texts, reference) if w.drift else np.zeros(n),
        "business": w.business * _business(business, n),
    }
    need_vectors = bool(w.density or w.diversity or cfg.duplicate_threshold <= 1.0)
    matrix = None
    if need_vectors:
        given = text_vectors(texts, cfg) if vectors is None else vectors
        matrix = normalize(sparse.csr_matrix(given))
    parts["density"] = (
        w.density * density_scores(matrix) if w.density and matrix is not None else np.zeros(n)
    )
    base = parts["uncertainty"] + parts["drift"] + parts["density"] + parts["business"]
    order, nearest, similarity = _greedy(base, matrix, w.diversity, cfg.duplicate_threshold, limit)
    raw_margin = _top2(proba)
    items = []
    for i in order:
        duplicate = similarity[i] >= cfg.duplicate_threshold
        item_parts = {name: float(parts[name][i]) for name in PARTS if name != "diversity_penalty"}
        item_parts["diversity_penalty"] = -w.diversity * float(similarity[i])
        items.append(
            RankedItem(
                id=str(ids[i]),
                score=sum(item_parts.values()),
                parts=item_parts,
                reason=_reason(
                    item_parts, raw_margin[i], similarity[i], duplicate, ids, nearest[i]
                ),
                duplicate_of=str(ids[nearest[i]]) if duplicate and nearest[i] >= 0 else None,
            )
        )
    return items


def _business(business: Sequence[float] | None, n: int) -> np.ndarray:
    if business is None:
        return np.zeros(n)
    values = np.asarray(business, dtype=float)
    if values.shape != (n,):
        raise ValueError(f"business weights of shape {values.shape}, expected ({n},)")
    return values


def _top2(proba: np.ndarray) -> np.ndarray:
    mean = proba.mean(axis=0) if proba.ndim == 3 else proba
    top2 = np.sort(mean, axis=1)[:, -2:]
    return np.asarray(top2[:, 1] - top2[:, 0])


def _greedy(
    base: np.ndarray,
    matrix: sparse.csr_matrix | None,
    diversity: float,
    threshold: float,
    limit: int | None,
) -> tuple[list[int], np.ndarray, np.ndarray]:
    """Pick the best effective score repeatedly; near-duplicates wait until the end.

    Returns the order plus, per sample, the most similar earlier pick and that similarity.
    """
    n = len(base)
    want = n if limit is None else min(limit, n)
    similarity = np.zeros(n)
    nearest = np.full(n, -1)
    if matrix is None:
        return [int(i) for i in np.argsort(-base, kind="stable")[:want]], nearest, similarity
    # Lazy greedy: penalties only grow, so a stored key is an upper bound of the current
    # effective score; only items that reach the top of the heap get their similarity to the
    # picks made since they were last looked at computed.
    heap = [(-float(base[i]), i) for i in range(n)]
    heapq.heapify(heap)
    checked = np.zeros(n, dtype=int)  # how many picks each similarity already covers
    row = np.zeros(matrix.shape[1])
    order: list[int] = []
    while heap and len(order) < want:
        _, i = heapq.heappop(heap)
        if checked[i] < len(order):
            since = order[checked[i] :]
            # the row scattered into a dense buffer: a sparse-dense product costs O(nnz), where
            # a sparse-sparse one would convert the (very wide) matrix
            start, end = matrix.indptr[i], matrix.indptr[i + 1]
            columns = matrix.indices[start:end]
            row[columns] = matrix.data[start:end]
            sims = np.asarray(matrix[since] @ row).ravel()
            row[columns] = 0.0
            j = int(np.argmax(sims))
            if sims[j] > similarity[i]:
                similarity[i], nearest[i] = sims[j], since[j]
            checked[i] = len(order)
            effective = base[i] - diversity * similarity[i]
            if similarity[i] >= threshold:
                effective -= 1e9  # near-duplicates come after every distinct text
            heapq.heappush(heap, (-float(effective), i))
            continue
        order.append(i)
    return order, nearest, similarity


def _reason(
    parts: Mapping[str, float],
    margin: float,
    similarity: float,
    duplicate: bool,
    ids: Sequence[str],
    nearest: int,
) -> str:
    notes = []
    if parts["uncertainty"] > 0:
        notes.append((parts["uncertainty"], f"model unsure (top-2 margin {margin:.2f})"))
    if parts["drift"] > 0:
        notes.append((parts["drift"], "unlike the training data"))
    if parts["density"] > 0:
        notes.append((parts["density"], "typical of the captured texts"))
    if parts["business"] > 0:
        notes.append((parts["business"], "business weight"))
    text = "; ".join(note for _, note in sorted(notes, key=lambda x: -x[0])) or "no signal"
    if duplicate and nearest >= 0:
        text += f"; near-duplicate of {ids[nearest]} (similarity {similarity:.2f})"
    elif similarity > 0 and nearest >= 0:
        text += f"; closest earlier item {ids[nearest]} (similarity {similarity:.2f})"
    return text
