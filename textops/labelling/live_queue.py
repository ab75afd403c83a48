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

    ``key`` names what the measure depends on (model version, the shift in recent traffic):
    the queue is ranked again when it changes. ``rarity(text)`` is the drift monitor's per-text
    rarity (the drift score part); ``evidence(text)`` says why a text belongs to a shift in
    recent traffic, "" when it does not (see :mod:`textops.monitoring.emerging`).
    """

    key: str
    rarity: Callable[[str], float]
    evidence: Callable[[str], str]


def serving_drift(
    model: str, reference: CompiledReference, emerging: EmergingGrams | None
) -> DriftMeasure:
    """The measure of a served ``model`` (name/version): rarity against its drift
    ``reference``, evidence from the n-grams ``emerging`` in its recent traffic (None: the
    last drift evaluation found no shift, so nothing counts as drifted)."""
    return DriftMeasure(
        f"{model}/{emerging.key if emerging else 'no-shift'}",
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
        measured: Mapping[str, tuple[float, str]] | None = None,
    ) -> None:
        """``measured`` holds the measure's (rarity, evidence) of samples already measured."""
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
        self.measured: dict[str, tuple[float, str]] = {}
        evidence: list[str] | None = None
        if measure is None:
            drift = [float(p.captured_parts.get("drift", 0.0)) for p in self.pending]
        else:
            known = measured or {}
            for p in self.pending:
                found = known.get(p.id)
                self.measured[p.id] = found or (measure.rarity(p.text), measure.evidence(p.text))
            drift = [self.measured[p.id][0] for p in self.pending]
            evidence = [self.measured[p.id][1] for p in self.pending]
        self.ranker = Ranker(
            [p.id for p in self.pending],
            [p.text for p in self.pending],
            proba,
            business=business,
            drift=drift,
            drift_evidence=evidence,
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
        self._measured: str | None = None  # the measure key of the queue's rarity values
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
                # a sample measured under the same key stays measured
                same = measure is not None and self._measured == measure.key
                measured = self._queue.measured if same and self._queue else None
                self._queue = RankedQueue(
                    list(self._known.values()), self.config, measure, measured
                )
                self._measured = None if measure is None else measure.key
                self._key = key
            return self._queue
