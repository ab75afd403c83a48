"""The queue annotators see: the label store's pending samples in :func:`rank` order (pure).

The store stays the source of truth; this module only orders what the store holds, so the
order is a function of the pending samples alone — the same on every replica and on every
request while nothing changes, which is what makes ``offset`` paging safe. The store keeps one
:class:`RankedQueue` per state (see :class:`QueueCache`) and pages through it, so paging
extends the same greedy order instead of recomputing it.

What goes into the ranking per sample: the stored class probabilities (uncertainty and the
predicted class), its drift, its ``business`` score part plus the configured value of its
predicted class, and the text (diversity, near-duplicates). Ties keep the capture order: the
capture's own score first, then oldest first.

Drift is measured again against the model serving now and the traffic it sees now (a
:class:`DriftMeasure`), not taken from the capture: a shift the current model was trained on,
or one traffic no longer carries, is no longer drift, so its leftover captures must not crowd
out the texts of a shift happening now. Without a measure (no model loaded) the capture's
``drift`` score part is used, and nothing counts as drifted.

The greedy fills the first ``depth`` places; after them the rest follow their summed score
(without the penalties), and the texts found to be near-duplicates of a placed one come last.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from textops.labelling.config import QueueConfig
from textops.labelling.ranking import RankedItem, Ranker
from textops.monitoring.drift import CompiledReference
from textops.monitoring.emerging import EmergingGrams


@dataclass(frozen=True)
class Pending:
    """A queued sample as the store holds it, in capture order."""

    id: str
    text: str
    predicted_label: str
    probabilities: Mapping[str, float]
    captured_parts: Mapping[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class DriftMeasure:
    """Drift as the serving side sees it now, as the queue needs it.

    ``rarity(text)`` is the drift monitor's per-text rarity (the drift score part), which
    depends only on the drift ``reference`` (named, e.g. model name and version);
    ``evidence(text)`` says why a text belongs to the ``shift`` in recent traffic (named;
    "" when it does not, see :mod:`textops.monitoring.emerging`). The queue is ranked again
    when either name changes, and measures again only what depends on the changed one: the
    shift changes with every drift evaluation, the reference only with a new model.
    """

    reference: str
    shift: str
    rarity: Callable[[str], float]
    evidence: Callable[[str], str]

    @property
    def key(self) -> str:
        return f"{self.reference}@{self.shift}"


def serving_drift(
    model: str, reference: CompiledReference, emerging: EmergingGrams | None
) -> DriftMeasure:
    """The measure of a served ``model`` (name/version): rarity against its drift
    ``reference``, evidence from the n-grams ``emerging`` in its recent traffic (None: the
    last drift evaluation found no shift, so nothing counts as drifted)."""
    return DriftMeasure(
        model,
        emerging.key if emerging else "no-shift",
        lambda text: float(reference.rarity(text)[0]),
        emerging.evidence if emerging else lambda _text: "",
    )


@dataclass(frozen=True)
class Placed:
    """One place of the queue: 0-based ``position``, the sample, and why it is there."""

    position: int
    sample: Pending
    ranked: RankedItem


def fingerprint(ids: Sequence[str]) -> str:
    """Identifies a state of the queue: the pending ids in capture order."""
    digest = hashlib.sha256()
    for sample_id in ids:
        digest.update(sample_id.encode("utf-8") + b"\0")
    return digest.hexdigest()


class RankedQueue:
    """The pending samples of one state of the store, placed on demand."""

    def __init__(
        self,
        pending: Sequence[Pending],
        config: QueueConfig,
        measure: DriftMeasure | None = None,
        rarity: Mapping[str, float] | None = None,
        evidence: Mapping[str, str] | None = None,
    ) -> None:
        """``rarity`` and ``evidence`` hold what ``measure`` gave samples already measured
        (by id), under the same reference and the same shift respectively."""
        self.pending = list(pending)
        self.config = config
        classes = sorted({c for p in self.pending for c in p.probabilities})
        proba = np.array(
            [[float(p.probabilities.get(c, 0.0)) for c in classes] for p in self.pending]
        ).reshape(len(self.pending), len(classes))
        if len(classes) < 2:  # a single-class model (or none): nothing to be unsure about
            proba = np.hstack([proba, np.zeros((len(self.pending), 2 - len(classes)))])
        business = [
            float(p.captured_parts.get("business", 0.0))
            + float(config.class_value.get(p.predicted_label, 0.0))
            for p in self.pending
        ]
        self.rarity: dict[str, float] = {}
        self.evidence: dict[str, str] = {}
        if measure is None:
            drift = [float(p.captured_parts.get("drift", 0.0)) for p in self.pending]
        else:
            known_rarity, known_evidence = rarity or {}, evidence or {}
            for p in self.pending:
                r = known_rarity.get(p.id)
                self.rarity[p.id] = measure.rarity(p.text) if r is None else r
                e = known_evidence.get(p.id)
                self.evidence[p.id] = measure.evidence(p.text) if e is None else e
            drift = [self.rarity[p.id] for p in self.pending]
        self.ranker = Ranker(
            [p.id for p in self.pending],
            [p.text for p in self.pending],
            proba,
            business=business,
            drift=drift,
            drift_evidence=None if measure is None else [self.evidence[p.id] for p in self.pending],
            config=config.ranking,
        )
        self._rest: list[int] | None = None
        self._lock = threading.Lock()  # one ranker, several request threads

    def __len__(self) -> int:
        return len(self.pending)

    def page(self, offset: int, limit: int) -> list[Placed]:
        """Places ``offset`` .. ``offset + limit - 1`` (fewer at the end of the queue)."""
        stop = min(offset + limit, len(self.pending))
        with self._lock:
            depth = self.config.depth
            self.ranker.extend(min(stop, depth))
            order = self.ranker.order
            if stop > depth:
                order = order + self._after_depth()
            return [
                Placed(position, self.pending[i], self.ranker.item(i))
                for position, i in enumerate(order[offset:stop], start=offset)
            ]

    def _after_depth(self) -> list[int]:
        """Everything the greedy did not place: by summed score, near-duplicates last."""
        if self._rest is None:
            self.ranker.extend(self.config.depth)
            placed = set(self.ranker.order)
            duplicate = self.ranker.similarity >= self.config.ranking.duplicate_threshold
            base = self.ranker.base
            rest = [i for i in range(len(self.pending)) if i not in placed]
            self._rest = sorted(rest, key=lambda i: (bool(duplicate[i]), -base[i], i))
        return self._rest


class QueueCache:
    """The ranked queue of the latest state seen, rebuilt when the pending samples change.

    A captured sample never changes, so what the ranking needs of each is kept across states:
    after a label or a new capture only the new samples are read from the store.
    """

    def __init__(self, config: QueueConfig) -> None:
        self.config = config
        self._key: str | None = None
        self._queue: RankedQueue | None = None
        self._known: dict[str, Pending] = {}
        self._measure: DriftMeasure | None = None  # the one the queue was measured with
        self._lock = threading.Lock()

    def get(
        self,
        ids: Sequence[str],
        load: Callable[[Sequence[str]], Sequence[Pending]],
        measure: DriftMeasure | None = None,
    ) -> RankedQueue:
        """The queue of the pending ``ids`` (in capture order) with drift from ``measure``;
        ``load(missing)`` reads the samples not seen before."""
        key = fingerprint(ids) + ("" if measure is None else f"@{measure.key}")
        with self._lock:
            if self._queue is None or self._key != key:
                missing = [i for i in ids if i not in self._known]
                fresh = {p.id: p for p in load(missing)} if missing else {}
                known = {i: self._known.get(i) or fresh.get(i) for i in ids}
                self._known = {i: p for i, p in known.items() if p is not None}
                # what a sample was measured under the same reference / shift stays measured
                last, queue = self._measure, self._queue
                rarity = evidence = None
                if (
                    measure is not None
                    and last is not None
                    and queue is not None
                    and last.reference == measure.reference
                ):
                    rarity = queue.rarity
                    evidence = queue.evidence if last.shift == measure.shift else None
                self._queue = RankedQueue(
                    list(self._known.values()), self.config, measure, rarity, evidence
                )
                self._measure = measure
                self._key = key
            return self._queue
