"""Which captured samples a person should label next, and why (pure: no I/O, no services).

Labelling time is the scarce resource, so the queue puts first the texts whose label would teach
the serving model the most. Each sample's score is a weighted sum of parts, all kept on the
item so an annotator (or a reviewer of the queue) sees why it is there:

- ``uncertainty``: how unsure the model is — one minus the margin between the two most probable
  classes, or the normalised entropy; any number of classes. A committee's probabilities (an
  array of shape members x samples x classes) are averaged first;
- ``drift``: how far the text sits from the training reference profile of
  :mod:`textops.monitoring.reference` — the share of its characters never seen in training
  and of its character uni/bigrams outside the reference's frequent n-grams (or a drift score
  the caller measured already, e.g. the serving drift monitor's rarity). A text the caller
  marks *drifted* — with its evidence, e.g. the n-grams it shares with a shift in recent
  traffic (:mod:`textops.monitoring.emerging`) — gets ``drift_first`` on top, which puts the
  drifted texts ahead of all but the most uncertain in-distribution ones: when part of the
  traffic comes from somewhere new, those are the labels the next model needs first;
- ``density``: how typical the text is of the captured batch (mean cosine similarity of char
  n-gram vectors, scaled to 0-1). Uncertain outliers teach little; "information density";
- ``business``: an optional per-sample weight from the caller (e.g. a high-value customer);
- ``diversity_penalty`` (zero or negative): the similarity to the most similar text already
  placed above it, so the top of the queue covers different regions instead of many copies of
  one text. A text at least ``duplicate_threshold`` similar to one above it is a near-duplicate:
  it is collapsed to the end of the queue and names the text it repeats;
- ``balance_penalty`` (zero or negative): how many more texts of its *predicted* class are
  already placed above than an even share across the predicted classes. Pure uncertainty
  sampling can take a batch mostly from one side of the boundary. Off by default: it did not
  pay on the review corpus (``benchmarks/labelling.py``).

Placement is greedy — each pick raises the penalties of the texts like it and of its class — and
lazy: only texts that could still make the next place have their similarities computed, and
without given vectors only those texts are vectorised. :class:`Ranker` keeps that state, so a
caller paging through a long queue extends the same order instead of recomputing it; the
first ``n`` places never depend on how many are asked for.
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

PARTS = ("uncertainty", "drift", "density", "business", "diversity_penalty", "balance_penalty")
DUPLICATE_DROP = 1e9  # subtracted from a near-duplicate's effective score: after every distinct
VECTOR_BLOCK = 64  # texts vectorised together when the greedy first needs one of them


@dataclass(frozen=True)
class RankingWeights:
    """How much each part counts; a weight of 0 switches the part off."""

    uncertainty: float = 1.0
    # 0.5 slowed the first active-learning rounds (a reference built from few texts calls
    # ordinary texts drifted); 0.2 matched plain margin sampling (benchmarks/README.md)
    drift: float = 0.2
    # added for a text with drift evidence: uncertainty is at most 1, so drifted texts come
    # first unless an in-distribution text is nearly a coin toss (benchmarks/queue_drift.py)
    drift_first: float = 1.0
    # off by default: on the review corpus, density weighting delayed learning (see
    # benchmarks/README.md); useful where captured traffic holds many one-off outliers
    density: float = 0.0
    business: float = 1.0
    diversity: float = 0.1
    # per text of the same predicted class placed above beyond an even share; off by default:
    # on the review corpus it cost labels (57% of random's labels against 50% without, 5 seeds)
    # — margin batches there are already split evenly; for traffic whose captures skew to one
    # predicted class
    balance: float = 0.0


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
    return sparse.csr_matrix(_hasher(config or RankingConfig()).transform(list(texts)))


def _hasher(cfg: RankingConfig) -> HashingVectorizer:
    return HashingVectorizer(
        analyzer="char",
        ngram_range=cfg.ngram_range,
        n_features=cfg.hash_features,
        alternate_sign=False,
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
    drift: Sequence[float] | None = None,
    drift_evidence: Sequence[str] | None = None,
    config: RankingConfig | None = None,
    limit: int | None = None,
    vectors: Any = None,
) -> list[RankedItem]:
    """The labelling queue, best first; ``limit`` items (all by default).

    ``probabilities`` are the serving model's class probabilities for ``texts`` (samples x
    classes, or members x samples x classes for a committee). ``reference`` is a drift reference
    profile (drift is 0 without it); ``drift`` gives per-text drift scores (0..1) instead, and
    ``drift_evidence`` says per text why it counts as drifted ("" when it does not): those get
    ``drift_first``, and the evidence is shown in their reason.
    ``vectors`` replaces the built-in char n-gram vectors used for density and diversity (one
    row per text).
    """
    ranker = Ranker(
        ids,
        texts,
        probabilities,
        reference=reference,
        business=business,
        drift=drift,
        drift_evidence=drift_evidence,
        config=config,
        vectors=vectors,
    )
    return ranker.items(0, len(ids) if limit is None else limit)


class Ranker:
    """The greedy placement behind :func:`rank`, kept so that the order can be extended.

    ``items(start, stop)`` places texts up to ``stop`` (never further) and returns that slice;
    asking for a later slice continues from where the last one stopped.
    """

    def __init__(
        self,
        ids: Sequence[str],
        texts: Sequence[str],
        probabilities: np.ndarray,
        *,
        reference: Mapping[str, Any] | None = None,
        business: Sequence[float] | None = None,
        drift: Sequence[float] | None = None,
        drift_evidence: Sequence[str] | None = None,
        config: RankingConfig | None = None,
        vectors: Any = None,
    ) -> None:
        self.config = cfg = config or RankingConfig()
        w = cfg.weights
        n = len(ids)
        if len(texts) != n:
            raise ValueError(f"{n} ids but {len(texts)} texts")
        proba = np.asarray(probabilities, dtype=float)
        if proba.ndim not in (2, 3) or proba.shape[-2] != n:
            raise ValueError(f"probabilities of shape {proba.shape} do not match {n} texts")
        self.ids = [str(i) for i in ids]
        self.parts: dict[str, np.ndarray] = {
            "uncertainty": w.uncertainty * uncertainty_scores(proba, cfg.uncertainty_measure)
            if n
            else np.zeros(0),
            "drift": (w.drift * _drift(texts, reference, drift, n) if w.drift else np.zeros(n))
            + w.drift_first * _per_text(_flags(drift_evidence, n), n, "drift evidence"),
            "business": w.business * _per_text(business, n, "business weights"),
            "density": np.zeros(n),
            "diversity_penalty": np.zeros(n),
            "balance_penalty": np.zeros(n),
        }
        self._vectors: _Vectors | None = None
        if n and (w.density or w.diversity or cfg.duplicate_threshold <= 1.0):
            self._vectors = _Vectors(texts, cfg, vectors)
            if w.density:
                self.parts["density"] = w.density * density_scores(self._vectors.all())
        base = self.parts["uncertainty"] + self.parts["drift"] + self.parts["density"]
        self.base = base + self.parts["business"]
        if self._vectors is not None:
            self._vectors.prefer(np.argsort(-self.base, kind="stable"))
        self._evidence = list(drift_evidence) if drift_evidence is not None else [""] * n
        self._margin = _top2(proba) if n else np.zeros(0)
        predicted = (proba.mean(axis=0) if proba.ndim == 3 else proba).argmax(axis=1)
        present = np.unique(predicted)
        self._classes = len(present)
        self._class_of = np.searchsorted(present, predicted)
        self._heaps: list[list[tuple[float, int]]] = [[] for _ in present]
        for i in range(n):
            self._heaps[self._class_of[i]].append((-float(self.base[i]), i))
        for heap in self._heaps:
            heapq.heapify(heap)
        self._placed = np.zeros(len(present))
        self.similarity = np.zeros(n)
        self.nearest = np.full(n, -1)
        self._checked = np.zeros(n, dtype=int)  # how many picks each similarity already covers
        self.order: list[int] = []

    def __len__(self) -> int:
        return len(self.ids)

    def items(self, start: int, stop: int) -> list[RankedItem]:
        """Places ``start`` .. ``stop - 1`` of the queue (fewer at its end)."""
        self.extend(stop)
        return [self.item(i) for i in self.order[start:stop]]

    def extend(self, stop: int) -> None:
        """Place texts until ``stop`` are placed or none are left."""
        want = min(stop, len(self.ids))
        balance = self.config.weights.balance
        while len(self.order) < want:
            best: tuple[float, int, int] | None = None  # (value, -index, class)
            for c, heap in enumerate(self._heaps):
                if not heap:
                    continue
                effective, i = self._settle(heap)
                excess = max(0.0, self._placed[c] - len(self.order) / self._classes)
                candidate = (effective - balance * excess, -i, c)
                if best is None or candidate > best:
                    best = candidate
            assert best is not None
            _, negative_i, c = best
            i = -negative_i
            heapq.heappop(self._heaps[c])
            excess = max(0.0, self._placed[c] - len(self.order) / self._classes)
            self.parts["balance_penalty"][i] = -balance * excess + 0.0  # + 0.0: never -0.0
            self._placed[c] += 1
            self.order.append(i)
            if self._vectors is not None:
                self._vectors.pick(i)

    def item(self, i: int) -> RankedItem:
        cfg = self.config
        duplicate = bool(self.similarity[i] >= cfg.duplicate_threshold)
        parts = {name: float(self.parts[name][i]) for name in PARTS}
        parts["diversity_penalty"] = -cfg.weights.diversity * float(self.similarity[i]) + 0.0
        nearest = int(self.nearest[i])
        return RankedItem(
            id=self.ids[i],
            score=sum(parts.values()),
            parts=parts,
            reason=_reason(
                parts,
                self._margin[i],
                self.similarity[i],
                duplicate,
                self.ids,
                nearest,
                self._evidence[i],
            ),
            duplicate_of=self.ids[nearest] if duplicate and nearest >= 0 else None,
        )

    def _settle(self, heap: list[tuple[float, int]]) -> tuple[float, int]:
        """The heap's best text with its similarity brought up to date: (effective, index).

        Penalties only grow, so a stored key is an upper bound of the current effective score;
        only a text that reaches the top has its similarity to the picks made since it was
        last looked at computed.
        """
        vectors = self._vectors
        while True:
            key, i = heap[0]
            if vectors is None or self._checked[i] == len(self.order):
                return -key, i
            sims = vectors.similarities(i, self._checked[i])
            if len(sims):
                j = int(np.argmax(sims))
                if sims[j] > self.similarity[i]:
                    self.similarity[i] = sims[j]
                    self.nearest[i] = self.order[self._checked[i] + j]
            self._checked[i] = len(self.order)
            effective = self.base[i] - self.config.weights.diversity * self.similarity[i]
            if self.similarity[i] >= self.config.duplicate_threshold:
                effective -= DUPLICATE_DROP
            heapq.heapreplace(heap, (-float(effective), i))


class _Vectors:
    """Unit-length similarity vectors, made on first use, and those of the texts placed so far.

    Without given vectors a text is vectorised only when the greedy first looks at it (with the
    next texts by index, in blocks), so the top of a 10,000-text queue costs a few blocks.
    """

    def __init__(self, texts: Sequence[str], cfg: RankingConfig, given: Any) -> None:
        self._texts = texts
        self._hasher = _hasher(cfg)
        self._matrix = None if given is None else normalize(sparse.csr_matrix(given))
        self._rows: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        self._priority = np.arange(len(texts))  # the order in which texts are likely needed
        self._position = self._priority.copy()
        width = cfg.hash_features if self._matrix is None else self._matrix.shape[1]
        self._dense = np.zeros(width)
        # the picks' rows, concatenated: column indices, values, which pick each belongs to
        self._columns = np.zeros(0, dtype=np.int64)
        self._values = np.zeros(0)
        self._pick_of = np.zeros(0, dtype=np.int64)
        self._starts = [0]  # offset of each pick's first entry in the arrays above
        self._size = 0

    def prefer(self, priority: np.ndarray) -> None:
        """Vectorise in this order (best base score first): the greedy looks at them so."""
        self._priority = priority
        self._position = np.empty_like(priority)
        self._position[priority] = np.arange(len(priority))

    def all(self) -> sparse.csr_matrix:
        if self._matrix is None:
            self._matrix = normalize(sparse.csr_matrix(self._hasher.transform(list(self._texts))))
        return self._matrix

    def row(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        if self._matrix is not None:
            start, end = self._matrix.indptr[i], self._matrix.indptr[i + 1]
            return self._matrix.indices[start:end], self._matrix.data[start:end]
        if i not in self._rows:
            after = self._priority[self._position[i] :]
            block = [int(j) for j in after[: 4 * VECTOR_BLOCK] if j not in self._rows]
            block = block[:VECTOR_BLOCK]
            made = normalize(
                sparse.csr_matrix(self._hasher.transform([self._texts[j] for j in block]))
            )
            for k, j in enumerate(block):
                start, end = made.indptr[k], made.indptr[k + 1]
                self._rows[j] = (made.indices[start:end], made.data[start:end])
        return self._rows[i]

    def pick(self, i: int) -> None:
        columns, values = self.row(i)
        end = self._size + len(columns)
        if end > len(self._columns):  # grow by doubling: amortised O(1) per entry
            capacity = max(2 * len(self._columns), end, 1024)
            self._columns = np.resize(self._columns, capacity)
            self._values = np.resize(self._values, capacity)
            self._pick_of = np.resize(self._pick_of, capacity)
        self._columns[self._size : end] = columns
        self._values[self._size : end] = values
        self._pick_of[self._size : end] = len(self._starts) - 1
        self._size = end
        self._starts.append(end)

    def similarities(self, i: int, first_pick: int) -> np.ndarray:
        """Cosine similarity of text ``i`` to every pick from ``first_pick`` on."""
        picks = len(self._starts) - 1
        if first_pick >= picks:
            return np.zeros(0)
        columns, values = self.row(i)
        # the row scattered into a dense buffer, then one gather over the picks' entries
        self._dense[columns] = values
        lo, hi = self._starts[first_pick], self._size
        products = self._values[lo:hi] * self._dense[self._columns[lo:hi]]
        self._dense[columns] = 0.0
        return np.bincount(
            self._pick_of[lo:hi] - first_pick, weights=products, minlength=picks - first_pick
        )


def _drift(
    texts: Sequence[str],
    reference: Mapping[str, Any] | None,
    given: Sequence[float] | None,
    n: int,
) -> np.ndarray:
    if given is not None:
        return np.clip(_per_text(given, n, "drift scores"), 0.0, 1.0)
    return drift_scores(texts, reference)


def _flags(evidence: Sequence[str] | None, n: int) -> list[float] | None:
    """1 for a text with drift evidence, 0 without."""
    if evidence is None:
        return None
    if len(evidence) != n:
        raise ValueError(f"drift evidence for {len(evidence)} texts, expected {n}")
    return [1.0 if e else 0.0 for e in evidence]


def _per_text(values: Sequence[float] | None, n: int, what: str) -> np.ndarray:
    if values is None:
        return np.zeros(n)
    array = np.asarray(values, dtype=float)
    if array.shape != (n,):
        raise ValueError(f"{what} of shape {array.shape}, expected ({n},)")
    return array


def _top2(proba: np.ndarray) -> np.ndarray:
    mean = proba.mean(axis=0) if proba.ndim == 3 else proba
    top2 = np.sort(mean, axis=1)[:, -2:]
    return np.asarray(top2[:, 1] - top2[:, 0])


def _reason(
    parts: Mapping[str, float],
    margin: float,
    similarity: float,
    duplicate: bool,
    ids: Sequence[str],
    nearest: int,
    evidence: str = "",
) -> str:
    notes = []
    if parts["uncertainty"] > 0:
        notes.append((parts["uncertainty"], f"model unsure (top-2 margin {margin:.2f})"))
    if parts["drift"] > 0:
        # a drifted text ranks by its drift part, so that is what the annotator reads first
        note = f"drifted: {evidence}" if evidence else "unlike the training data"
        notes.append((parts["drift"], note))
    if parts["density"] > 0:
        notes.append((parts["density"], "typical of the captured texts"))
    if parts["business"] > 0:
        notes.append((parts["business"], "business weight"))
    text = "; ".join(note for _, note in sorted(notes, key=lambda x: -x[0])) or "no signal"
    if parts["balance_penalty"] < 0:
        text += "; its predicted class already has more than its share above"
    if duplicate and nearest >= 0:
        text += f"; near-duplicate of {ids[nearest]} (similarity {similarity:.2f})"
    elif similarity > 0 and nearest >= 0:
        text += f"; closest earlier item {ids[nearest]} (similarity {similarity:.2f})"
    return text
