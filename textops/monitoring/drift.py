"""Online drift detection against the reference profile (pure: no web, no MLflow).

Why this shape: the serving path must stay cheap, so :meth:`DriftMonitor.observe` only turns
one text (and its predicted probabilities) into a handful of sparse counts and adds them to
running totals of a sliding window (a ring buffer of the last ``window`` requests; the oldest
request's counts are subtracted when it falls out). That is O(length of the text), independent
of the window size. :meth:`DriftMonitor.evaluate`, called on a timer, turns the totals into
statistics in O(profile size) and compares each with its own threshold.

Everything works on characters, so Chinese needs no word segmenter. The statistics
(``JS`` = Jensen-Shannon distance, base 2, in [0, 1]; "default" = the fallback threshold at
1,000 texts, see below):

feature drift                                                                   default
  ``char_ngram_js``      JS between the window's character uni+bigram             0.067
                         distribution and the reference's top-1000 n-grams plus an
                         "other" bin: the plain distribution distance; moves only on
                         large topic or domain changes (>= 30 % of a window).
  ``ngram_presence_z``   root mean square over the top n-grams of the z-score of  1.64
                         the share of window texts containing the n-gram vs its
                         training share (standard errors of window and reference
                         added). Counting texts, not occurrences, tames the
                         burstiness of n-grams within a text; ~1 in distribution at
                         any window size, it grows with sqrt(n) under a shift: the
                         one that catches a topical shift.
  ``rare_text_share``    share of window texts whose *rarity* (share of their     0.084
                         n-grams outside the reference top-1000) exceeds the
                         holdout's 95th percentile; ~0.05 in distribution. A few %
                         of foreign texts land almost all in that tail: the one
                         that catches a domain mix. It also ranks the suspects.
  ``unseen_char_rate``   share of window characters never seen in training (new   0.0034
                         script, symbols, emoji, traditional characters).
  ``length_js``          JS of the text-length histogram (training deciles).      0.098
  ``non_chinese_js``     JS of the histogram of each text's non-Chinese share.    0.108
  ``embedding_mean_z``   only for a model that encodes texts (profile section      1.85
                         ``embeddings``): each text's sentence embedding, projected
                         on the top k <= 16 principal directions of the training
                         embeddings and whitened (unit variance there); per
                         direction z = window mean / sqrt(1/n + 1/n_ref); the
                         root mean square over the k directions. Like
                         ``ngram_presence_z``: ~1 in distribution at any window
                         size, growing with sqrt(n) under a shift the encoder sees
                         (meaning rather than characters). Default: the
                         calibration rule applied to sqrt(chi2_16 / 16), not a
                         corpus (the built-in classifier has no encoder); a tiny
                         random BERT on the built-in corpus calibrated to the same
                         1.85. Bootstrap windows share the holdout's own offset
                         from the training mean: conservative for small holdouts.
prediction drift
  ``class_js``           JS between the window's predicted-class shares and the   0.071
                         classes predicted on the holdout: a label-prior shift.
  ``confidence_js``      JS of the top-class probability histogram vs holdout.    0.068
  ``confidence_shift``   |window mean top-class probability - holdout mean|.      0.017

Thresholds. Each statistic is biased upwards on a finite window and its noise shrinks like
1/sqrt(n), so a fixed number would either shout on small windows or sleep on large ones.
:func:`calibrate` therefore draws many bootstrap windows of several sizes from the *held-out*
rows at training time (texts the reference was not built from, so the unseen/rare rates are
honest), takes the ``quantile`` (0.99) of each statistic and adds ``margin`` (1.0) times its
spread above the median: ``threshold = q99 + 1.0 * (q99 - median)``, roughly median + 4.7
sigma for a normal statistic. The margin buys headroom for live traffic being less
homogeneous than a random holdout sample and for nine (ten) components sharing a <= 1 % overall
false-alarm budget. Thresholds are stored per window size in the profile (``drift``) and
interpolated linearly in 1/sqrt(n); below the smallest calibrated size they are scaled by
sqrt(size/n), above the largest they stay constant (conservative). Profiles without a
calibration use :data:`DEFAULT_THRESHOLDS` (calibrated the same way on the built-in corpus
with the default classifier at 1,000 texts; scaled by sqrt(1000/n) for smaller windows).
Measured on the built-in corpus (benchmarks/drift.md): 0/200 false alarms on in-distribution
1,000-text windows; a 10 % domain mix, a 30 % topical shift and a 70 % negative prior all
caught in 50/50 windows.

Verdicts. Nothing is flagged while a window holds fewer than ``min_samples`` texts (200).
The overall ``feature`` and ``prediction`` results carry the largest statistic/threshold ratio
of their components, with threshold 1.0; either drifts when any component does.

Suspects. :class:`DriftReport` lists the ``top_k`` window texts with the highest rarity (ties:
more unseen characters, then the embedding rarity: the mean squared whitened coordinate, ~1 in
distribution, when the profile has embeddings) for the labelling queue: what a domain mix adds
(in the benchmark 80 % of the top 20 are the injected foreign texts). A topical shift is made
of ordinary-looking texts, so it has no such suspects; ``ngram_presence_z`` says it happened,
not which texts.

Thread safety: ``observe`` computes the counts outside the lock and holds it only to update the
ring buffer and totals; ``evaluate`` copies the totals under the lock and computes outside it.
"""

from __future__ import annotations

import bisect
import heapq
import math
import threading
from collections import Counter, deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import sparse

from textops.contracts import Metric
from textops.features.text_stats import char_ngrams, non_chinese_share

FEATURE = "feature"
PREDICTION = "prediction"
FEATURE_STATISTICS = (
    "char_ngram_js",
    "ngram_presence_z",
    "rare_text_share",
    "unseen_char_rate",
    "length_js",
    "non_chinese_js",
)
# feature drift that exists only when the profile has an ``embeddings`` section
EMBEDDING_STATISTICS = ("embedding_mean_z",)
PREDICTION_STATISTICS = ("class_js", "confidence_js", "confidence_shift")
STATISTICS = FEATURE_STATISTICS + EMBEDDING_STATISTICS + PREDICTION_STATISTICS
DEFAULT_WINDOW = 1000
DEFAULT_MIN_SAMPLES = 200
DEFAULT_TOP_K = 20
RARITY_QUANTILE = 0.95
# fallback thresholds at 1,000 texts (built-in corpus, calibrated as described above)
DEFAULT_WINDOW_FOR_THRESHOLDS = 1000
DEFAULT_THRESHOLDS: dict[str, float] = {
    "char_ngram_js": 0.067,
    "ngram_presence_z": 1.64,
    "rare_text_share": 0.084,
    "unseen_char_rate": 0.0034,
    "length_js": 0.098,
    "non_chinese_js": 0.108,
    "embedding_mean_z": 1.85,
    "class_js": 0.071,
    "confidence_js": 0.068,
    "confidence_shift": 0.017,
}


@dataclass(frozen=True)
class DriftResult:
    """One published statistic: what the serving side turns into gauges."""

    name: str
    kind: str  # "feature" or "prediction"
    statistic: float
    threshold: float
    samples: int
    drifted: bool

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            "statistic": self.statistic,
            "threshold": self.threshold,
            "samples": self.samples,
            "drifted": self.drifted,
        }


@dataclass(frozen=True)
class Suspect:
    """A recent text that pulls the feature statistics away from the reference."""

    text: str
    rarity: float  # share of its character n-grams outside the reference top n-grams
    unseen_chars: int  # characters never seen in training
    embedding_rarity: float | None = None  # mean squared whitened coordinate (~1 typical)
    # the class probabilities it was observed with, so it need not be classified again
    proba: tuple[float, ...] | None = None


@dataclass(frozen=True)
class DriftReport:
    feature: DriftResult
    prediction: DriftResult
    components: tuple[DriftResult, ...]
    samples: int
    suspects: tuple[Suspect, ...] = ()

    @property
    def drifted(self) -> bool:
        return self.feature.drifted or self.prediction.drifted

    def results(self) -> list[DriftResult]:
        """The two overall verdicts followed by every component."""
        return [self.feature, self.prediction, *self.components]

    def gauges(self) -> list[tuple[str, dict[str, str], float]]:
        """(metric name, labels, value) for Prometheus, e.g.
        ``textops_feature_drift_statistic{statistic="rare_text_share"}``; the overall verdicts
        carry ``statistic="overall"``."""
        out: list[tuple[str, dict[str, str], float]] = []
        for r in self.results():
            labels = {Metric.STATISTIC: Metric.OVERALL if r.name == r.kind else r.name}
            values = (r.statistic, r.threshold, float(r.samples), float(r.drifted))
            out += [
                (Metric.drift(r.kind, part), labels, value)
                for part, value in zip(Metric.DRIFT_PARTS, values, strict=True)
            ]
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "samples": self.samples,
            "drifted": self.drifted,
            "results": [r.to_dict() for r in self.results()],
            "suspects": [_suspect_dict(s) for s in self.suspects],
        }


def _suspect_dict(s: Suspect) -> dict[str, Any]:
    out: dict[str, Any] = {"text": s.text, "rarity": s.rarity, "unseen_chars": s.unseen_chars}
    if s.embedding_rarity is not None:
        out["embedding_rarity"] = s.embedding_rarity
    return out


@dataclass(frozen=True)
class Observation:
    """One request as sparse counts into the window totals (see :class:`Layout`)."""

    index: np.ndarray
    values: np.ndarray
    rarity: float
    unseen_chars: int
    text: str
    embedding_rarity: float | None = None
    proba: tuple[float, ...] | None = None


@dataclass(frozen=True)
class Layout:
    """Column offsets of the flat totals vector shared by the monitor and the calibration."""

    grams: int  # top n-grams + "other"; the presence section has grams - 1 columns
    lengths: int
    non_chinese: int
    classes: int
    confidence: int
    embedding: int = 0  # whitened directions; 0 = no embedding section (and no columns)

    @property
    def presence0(self) -> int:
        return self.grams

    @property
    def chars(self) -> int:
        return 2 * self.grams - 1

    @property
    def unseen(self) -> int:
        return self.chars + 1

    @property
    def texts(self) -> int:
        return self.chars + 2

    @property
    def rare(self) -> int:
        return self.chars + 3

    @property
    def length0(self) -> int:
        return self.chars + 4

    @property
    def non_chinese0(self) -> int:
        return self.length0 + self.lengths

    @property
    def predicted(self) -> int:
        return self.non_chinese0 + self.non_chinese

    @property
    def class0(self) -> int:
        return self.predicted + 1

    @property
    def confidence0(self) -> int:
        return self.class0 + self.classes

    @property
    def confidence_sum(self) -> int:
        return self.confidence0 + self.confidence

    @property
    def embedded(self) -> int:
        """Texts observed with an embedding (only when ``embedding`` > 0)."""
        return self.confidence_sum + 1

    @property
    def embedding0(self) -> int:
        return self.embedded + 1

    @property
    def size(self) -> int:
        return self.embedding0 + self.embedding if self.embedding else self.confidence_sum + 1


def _inner_edges(edges: Sequence[float | None]) -> list[float]:
    return [float(e) for e in edges[1:-1] if e is not None]


def _bin(value: float, inner: Sequence[float]) -> int:
    return bisect.bisect_right(inner, value)


class CompiledReference:
    """A profile turned into lookups; ``summarise`` maps one request to an :class:`Observation`."""

    def __init__(self, profile: Mapping[str, Any]) -> None:
        self.classes: list[str] = list(profile["classes"])
        grams = profile["char_ngrams"]
        self.sizes: tuple[int, ...] = tuple(grams.get("sizes", (1, 2)))
        top: Mapping[str, float] = grams["top"]
        self.char_ngrams: Mapping[str, Any] = grams  # the profile's section, as it is
        self.gram_index = {g: i for i, g in enumerate(top)}
        self.other = len(self.gram_index)
        self.gram_p = _normalise(np.asarray([*top.values(), float(grams["other"])], dtype=float))
        present = grams.get("presence")
        self.presence: np.ndarray | None = (
            np.clip(np.asarray(present, dtype=float), 1e-4, 1 - 1e-4)
            if present is not None and len(present) == self.other
            else None
        )
        self.vocabulary = frozenset(profile["vocabulary"])
        self.length_inner = _inner_edges(profile["length"]["edges"])
        self.length_p = _normalise(np.asarray(profile["length"]["probabilities"], dtype=float))
        self.non_chinese_inner = _inner_edges(profile["non_chinese_share"]["edges"])
        self.non_chinese_p = _normalise(
            np.asarray(profile["non_chinese_share"]["probabilities"], dtype=float)
        )
        prior = profile["prediction_prior"]
        self.class_p = _normalise(np.asarray([prior.get(c, 0.0) for c in self.classes], float))
        self.confidence_inner = _inner_edges(profile["confidence"]["edges"])
        self.confidence_p = _normalise(
            np.asarray(profile["confidence"]["probabilities"], dtype=float)
        )
        self.confidence_mean: float | None = profile["confidence"].get("mean")
        self.reference_texts = max(int(profile.get("samples", 0)), 1)
        rarity = profile.get("rarity") or {}
        self.rarity_cutoff: float | None = rarity.get("cutoff")
        self.embedding = EmbeddingProjection.from_profile(profile)
        self.layout = Layout(
            grams=self.other + 1,
            lengths=len(self.length_p),
            non_chinese=len(self.non_chinese_p),
            classes=len(self.classes),
            confidence=len(self.confidence_p),
            embedding=self.embedding.components if self.embedding else 0,
        )
        self._embedding_index = np.arange(
            self.layout.embedded, self.layout.embedded + 1 + self.layout.embedding
        )

    def rarity(self, text: str) -> tuple[float, Counter[int], int, int]:
        """(rarity, n-gram bin counts, characters, unseen characters) of one text."""
        bins: Counter[int] = Counter(
            self.gram_index.get(g, self.other) for g in char_ngrams(text, self.sizes)
        )
        total = sum(bins.values())
        chars = [c for c in text if not c.isspace()]
        unseen = sum(c not in self.vocabulary for c in chars)
        rare = bins.get(self.other, 0) / total if total else 0.0
        return rare, bins, len(chars), unseen

    def summarise(
        self,
        text: str,
        proba: Sequence[float] | np.ndarray | None,
        embedding: Sequence[float] | np.ndarray | None = None,
    ) -> Observation:
        """What one request adds to the totals. An ``embedding`` counts only when the profile
        has an embedding section of the same dimension (like ``proba`` and the classes)."""
        lay = self.layout
        rare, bins, chars, unseen = self.rarity(text)
        counts: dict[int, float] = {i: float(n) for i, n in bins.items()}
        for i in bins:
            if i != self.other:
                counts[lay.presence0 + i] = 1.0
        counts[lay.chars] = chars
        counts[lay.unseen] = unseen
        counts[lay.texts] = 1
        counts[lay.rare] = float(self.rarity_cutoff is not None and rare > self.rarity_cutoff)
        counts[lay.length0 + _bin(len(text), self.length_inner)] = 1
        counts[lay.non_chinese0 + _bin(non_chinese_share(text), self.non_chinese_inner)] = 1
        if proba is not None and len(proba) == lay.classes:
            p = np.asarray(proba, dtype=float)
            top = int(p.argmax())
            confidence = float(p[top])
            counts[lay.predicted] = 1
            counts[lay.class0 + top] = 1
            counts[lay.confidence0 + _bin(confidence, self.confidence_inner)] = 1
            counts[lay.confidence_sum] = confidence
        index = np.fromiter(counts.keys(), dtype=np.int64, count=len(counts))
        values = np.fromiter(counts.values(), dtype=float, count=len(counts))
        kept = None if proba is None else tuple(float(v) for v in proba)
        z = self.embedding.project(embedding) if self.embedding and embedding is not None else None
        if z is None:
            return Observation(index, values, rare, unseen, text, proba=kept)
        index = np.concatenate([index, self._embedding_index])
        values = np.concatenate([values, [1.0], z])
        return Observation(index, values, rare, unseen, text, float(z @ z) / len(z), kept)

    def statistics(self, totals: np.ndarray) -> dict[str, np.ndarray]:
        """Every statistic for each row of ``totals`` (windows x layout.size); NaN when empty."""
        t = np.atleast_2d(totals)
        lay = self.layout
        texts = t[:, lay.texts]
        predicted = t[:, lay.predicted]
        out = {
            "char_ngram_js": js_distance(t[:, : lay.grams], self.gram_p),
            "rare_text_share": _ratio(t[:, lay.rare], texts),
            "unseen_char_rate": _ratio(t[:, lay.unseen], t[:, lay.chars]),
            "length_js": js_distance(t[:, lay.length0 : lay.non_chinese0], self.length_p),
            "non_chinese_js": js_distance(
                t[:, lay.non_chinese0 : lay.predicted], self.non_chinese_p
            ),
            "class_js": js_distance(t[:, lay.class0 : lay.confidence0], self.class_p),
            "confidence_js": js_distance(
                t[:, lay.confidence0 : lay.confidence_sum], self.confidence_p
            ),
        }
        if self.presence is not None:
            share = t[:, lay.presence0 : lay.chars] / np.where(texts > 0, texts, 1)[:, None]
            z2 = (share - self.presence) ** 2 / (self.presence * (1 - self.presence))
            out["ngram_presence_z"] = np.where(texts > 0, np.sqrt(z2.mean(axis=1) * texts), np.nan)
        if self.embedding is not None:
            n = t[:, lay.embedded]
            safe = np.where(n > 0, n, 1.0)
            mean = t[:, lay.embedding0 : lay.embedding0 + lay.embedding] / safe[:, None]
            z2 = mean**2 / (1 / safe + 1 / self.embedding.samples)[:, None]
            out["embedding_mean_z"] = np.where(n > 0, np.sqrt(z2.mean(axis=1)), np.nan)
        if self.confidence_mean is not None:
            mean = _ratio(t[:, lay.confidence_sum], predicted)
            out["confidence_shift"] = np.abs(mean - self.confidence_mean)
        if self.rarity_cutoff is None:
            del out["rare_text_share"]  # an in-sample cutoff would flag every live window
        return out


@dataclass(frozen=True)
class EmbeddingProjection:
    """The profile's whitened PCA as one matrix: ``project`` is O(dimension x components)."""

    weights: np.ndarray  # dimension x components: components.T * scale
    offset: np.ndarray  # mean @ weights, so project(e) = e @ weights - offset
    samples: int  # training texts the PCA was fitted on (the reference mean's n)

    @property
    def components(self) -> int:
        return int(self.weights.shape[1])

    @property
    def dimension(self) -> int:
        return int(self.weights.shape[0])

    @classmethod
    def from_profile(cls, profile: Mapping[str, Any]) -> EmbeddingProjection | None:
        section = profile.get("embeddings")
        if not section or not section.get("components"):
            return None
        components = np.asarray(section["components"], dtype=float)
        weights = components.T * np.asarray(section["scale"], dtype=float)
        offset = np.asarray(section["mean"], dtype=float) @ weights
        return cls(weights, offset, max(int(section.get("samples", 0)), 1))

    def project(self, embedding: Sequence[float] | np.ndarray) -> np.ndarray | None:
        """Whitened coordinates of one embedding; None when its dimension does not fit."""
        e = np.asarray(embedding, dtype=float)
        if e.shape != (self.dimension,):
            return None
        out: np.ndarray = e @ self.weights - self.offset
        return out


def _normalise(p: np.ndarray) -> np.ndarray:
    total = p.sum()
    return p / total if total > 0 else np.full_like(p, 1.0 / max(len(p), 1))


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1.0), np.nan)


def js_distance(counts: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Jensen-Shannon distance (base 2, in [0, 1]) of each row's distribution to ``reference``."""
    c = np.atleast_2d(np.asarray(counts, dtype=float))
    total = c.sum(axis=1, keepdims=True)
    q = np.divide(c, total, out=np.zeros_like(c), where=total > 0)
    p = np.broadcast_to(reference, q.shape)
    m = (p + q) / 2
    with np.errstate(divide="ignore", invalid="ignore"):
        kl_p = np.where(p > 0, p * np.log2(np.where(p > 0, p, 1) / np.where(m > 0, m, 1)), 0.0)
        kl_q = np.where(q > 0, q * np.log2(np.where(q > 0, q, 1) / np.where(m > 0, m, 1)), 0.0)
    jsd = np.clip((kl_p.sum(axis=1) + kl_q.sum(axis=1)) / 2, 0.0, 1.0)
    return np.where(total[:, 0] > 0, np.sqrt(jsd), np.nan)


def _kind(name: str) -> str:
    return PREDICTION if name in PREDICTION_STATISTICS else FEATURE


class Thresholds:
    """Threshold of each statistic as a function of the window's sample count."""

    def __init__(
        self,
        profile: Mapping[str, Any],
        overrides: Mapping[str, float] | None = None,
    ) -> None:
        drift = profile.get("drift") or {}
        self.overrides = dict(overrides or {})
        self.sizes = np.asarray(drift.get("window_sizes", []), dtype=float)
        self.table: dict[str, np.ndarray] = {
            name: np.asarray(values, dtype=float)
            for name, values in (drift.get("thresholds") or {}).items()
        }
        self.calibrated = bool(len(self.sizes)) and bool(self.table)

    def __call__(self, name: str, samples: int) -> float:
        if name in self.overrides:
            return float(self.overrides[name])
        n = max(samples, 1)
        if self.calibrated and name in self.table:
            order = np.argsort(self.sizes)
            sizes, values = self.sizes[order], self.table[name][order]
            if n < sizes[0]:
                return float(values[0] * math.sqrt(sizes[0] / n))
            # interpolate in 1/sqrt(n), where sampling noise is linear; np.interp needs x rising
            x = 1 / np.sqrt(sizes[::-1])
            return float(np.interp(1 / math.sqrt(n), x, values[::-1]))
        scale = math.sqrt(DEFAULT_WINDOW_FOR_THRESHOLDS / min(n, DEFAULT_WINDOW_FOR_THRESHOLDS))
        return DEFAULT_THRESHOLDS[name] * scale


def verdicts(
    statistics: Mapping[str, float],
    samples: Mapping[str, int],
    thresholds: Thresholds,
    min_samples: int,
) -> tuple[DriftResult, DriftResult, tuple[DriftResult, ...]]:
    """Component results plus the overall feature and prediction verdicts.

    ``samples`` holds the window count of each kind and, where it differs (the texts observed
    with an embedding), of a statistic by name.
    """
    components: list[DriftResult] = []
    for name in STATISTICS:
        if name not in statistics:
            continue
        kind = _kind(name)
        n = samples.get(name, samples[kind])
        value = float(statistics[name])
        threshold = thresholds(name, n)
        drifted = n >= min_samples and math.isfinite(value) and value > threshold
        components.append(DriftResult(name, kind, value, threshold, n, drifted))
    overall = []
    for kind in (FEATURE, PREDICTION):
        mine = [r for r in components if r.kind == kind]
        ratios = [r.statistic / r.threshold for r in mine if math.isfinite(r.statistic)]
        overall.append(
            DriftResult(
                kind,
                kind,
                max(ratios) if ratios else float("nan"),
                1.0,
                samples[kind],
                any(r.drifted for r in mine),
            )
        )
    return overall[0], overall[1], tuple(components)


class DriftMonitor:
    """Sliding-window drift detection for one served model version.

    ``observe(text, proba)`` per request (cheap), ``evaluate()`` on a timer.
    """

    def __init__(
        self,
        profile: Mapping[str, Any],
        window: int = DEFAULT_WINDOW,
        min_samples: int = DEFAULT_MIN_SAMPLES,
        top_k: int = DEFAULT_TOP_K,
        thresholds: Mapping[str, float] | None = None,
    ) -> None:
        if window < 1 or min_samples < 1:
            raise ValueError("window and min_samples must be positive")
        self.reference = CompiledReference(profile)
        self.thresholds = Thresholds(profile, thresholds)
        self.window = window
        self.min_samples = min_samples
        self.top_k = top_k
        self._lock = threading.Lock()
        self._ring: deque[Observation] = deque()
        self._totals = np.zeros(self.reference.layout.size, dtype=float)
        self.observed = 0  # requests seen since creation (not only those in the window)

    @property
    def samples(self) -> int:
        return len(self._ring)

    @property
    def uses_embeddings(self) -> bool:
        """Whether ``observe`` takes the model's sentence embeddings (the profile has them)."""
        return self.reference.embedding is not None

    def observe(
        self,
        text: str,
        proba: Sequence[float] | np.ndarray | None = None,
        embedding: Sequence[float] | np.ndarray | None = None,
    ) -> None:
        """Add one request to the window; evicts the oldest when full.

        O(len(text)), plus O(dimension x components) for an ``embedding``.
        """
        obs = self.reference.summarise(text, proba, embedding)
        with self._lock:
            if len(self._ring) >= self.window:
                old = self._ring.popleft()
                self._totals[old.index] -= old.values
            self._ring.append(obs)
            self._totals[obs.index] += obs.values
            self.observed += 1

    def observe_many(
        self, texts: Iterable[str], probas: Iterable[Sequence[float] | np.ndarray | None]
    ) -> None:
        for text, proba in zip(texts, probas, strict=True):
            self.observe(text, proba)

    def recent_texts(self) -> list[str]:
        """The texts in the window, oldest first."""
        with self._lock:
            return [o.text for o in self._ring]

    def reset(self) -> None:
        with self._lock:
            self._ring.clear()
            self._totals[:] = 0.0

    def evaluate(self) -> DriftReport:
        """Statistics of the current window against the reference and thresholds."""
        with self._lock:
            totals = self._totals.copy()
            ring = list(self._ring) if self.top_k > 0 else []
        lay = self.reference.layout
        stats = {k: float(v[0]) for k, v in self.reference.statistics(totals).items()}
        samples = {FEATURE: round(totals[lay.texts]), PREDICTION: round(totals[lay.predicted])}
        if lay.embedding:
            samples["embedding_mean_z"] = round(totals[lay.embedded])
        feature, prediction, components = verdicts(
            stats, samples, self.thresholds, self.min_samples
        )
        suspects = heapq.nlargest(
            self.top_k, ring, key=lambda o: (o.rarity, o.unseen_chars, o.embedding_rarity or 0.0)
        )
        return DriftReport(
            feature=feature,
            prediction=prediction,
            components=components,
            samples=samples[FEATURE],
            suspects=tuple(_suspect(o) for o in suspects),
        )


def _suspect(o: Observation) -> Suspect:
    embedding = None if o.embedding_rarity is None else round(o.embedding_rarity, 4)
    return Suspect(o.text, round(o.rarity, 4), o.unseen_chars, embedding, o.proba)


# --------------------------------------------------------------------------- calibration


@dataclass(frozen=True)
class CalibrationParams:
    """How :func:`calibrate` draws in-distribution windows from the held-out rows."""

    windows: int = 400
    window_sizes: tuple[int, ...] = (200, 500, 1000, 2000)
    quantile: float = 0.99
    margin: float = 1.0
    seed: int = 0
    min_rows: int = 100


def rarity_reference(
    profile: Mapping[str, Any], texts: Sequence[str], quantile: float = RARITY_QUANTILE
) -> dict[str, float]:
    """The rarity cutoff (a high quantile on held-out texts) and the share above it there."""
    ref = CompiledReference(profile)
    rarity = np.asarray([ref.rarity(t)[0] for t in texts], dtype=float)
    cutoff = float(np.quantile(rarity, quantile))
    return {
        "quantile": quantile,
        "cutoff": round(cutoff, 6),
        "tail_share": round(float((rarity > cutoff).mean()), 6),
    }


def observation_matrix(
    ref: CompiledReference, texts: Sequence[str], proba: Any, embeddings: Any = None
) -> sparse.csr_matrix:
    """Rows = texts, columns = the totals layout: what each text adds to a window."""
    rows, cols, vals = [], [], []
    has_proba = proba is not None and len(proba) == len(texts)
    has_embeddings = embeddings is not None and len(embeddings) == len(texts)
    for i, text in enumerate(texts):
        obs = ref.summarise(
            text, proba[i] if has_proba else None, embeddings[i] if has_embeddings else None
        )
        rows.append(np.full(len(obs.index), i))
        cols.append(obs.index)
        vals.append(obs.values)
    return sparse.csr_matrix(
        (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
        shape=(len(texts), ref.layout.size),
    )


def bootstrap_statistics(
    ref: CompiledReference,
    matrix: sparse.csr_matrix,
    size: int,
    windows: int,
    rng: np.random.Generator,
) -> dict[str, np.ndarray]:
    """Statistics of ``windows`` windows of ``size`` rows drawn with replacement."""
    rows = matrix.shape[0]
    picks = rng.integers(0, rows, size=(windows, size))
    weights = sparse.csr_matrix(
        (
            np.ones(picks.size),
            (np.repeat(np.arange(windows), size), picks.ravel()),
        ),
        shape=(windows, rows),
    )
    totals = np.asarray((weights @ matrix).todense())
    return ref.statistics(totals)


def calibrate(
    profile: Mapping[str, Any],
    texts: Sequence[str],
    proba: Any,
    params: CalibrationParams | None = None,
    embeddings: Any = None,
) -> dict[str, Any]:
    """Per-size thresholds from bootstrap windows of held-out rows (the profile's ``drift``).

    ``profile`` must already hold ``rarity`` (see :func:`rarity_reference`) for the rare-text
    share to be calibrated, and ``embeddings`` plus the held-out rows' ``embeddings`` (in
    order) for the embedding statistic to be.
    """
    params = params or CalibrationParams()
    ref = CompiledReference(profile)
    matrix = observation_matrix(ref, texts, proba, embeddings)
    rng = np.random.default_rng(params.seed)
    thresholds: dict[str, list[float]] = {}
    medians: dict[str, list[float]] = {}
    false_alarms: dict[str, list[float]] = {FEATURE: [], PREDICTION: []}
    for size in params.window_sizes:
        stats = bootstrap_statistics(ref, matrix, size, params.windows, rng)
        for name, values in stats.items():
            finite = values[np.isfinite(values)]
            if not len(finite):
                continue
            high = float(np.quantile(finite, params.quantile))
            median = float(np.median(finite))
            # a floor keeps a statistic that is constant in distribution (e.g. no non-Chinese
            # text at all) from flagging the first odd request
            threshold = max(high + params.margin * (high - median), median + 1e-3)
            thresholds.setdefault(name, []).append(round(threshold, 6))
            medians.setdefault(name, []).append(round(median, 6))
        # the overall false-alarm rate on fresh windows of the same rows
        fresh = bootstrap_statistics(ref, matrix, size, params.windows, rng)
        for kind in (FEATURE, PREDICTION):
            flagged = np.zeros(params.windows, dtype=bool)
            for name, values in fresh.items():
                if _kind(name) == kind and name in thresholds:
                    flagged |= np.nan_to_num(values, nan=-np.inf) > thresholds[name][-1]
            false_alarms[kind].append(round(float(flagged.mean()), 4))
    return {
        "window_sizes": list(params.window_sizes),
        "thresholds": thresholds,
        "null_median": medians,
        "false_alarm_rate": false_alarms,
        "windows": params.windows,
        "quantile": params.quantile,
        "margin": params.margin,
        "rows": len(texts),
        "seed": params.seed,
    }
