"""What the demo's data and traffic are: pure functions of the corpus and a seed.

The story: the first model is trained on book and computer reviews only; later the business
adds hotels, so live traffic becomes partly hotel reviews the model never saw. Hotel reviews
are recognised by keywords (about 31 % of the built-in corpus), which also makes the shift
measurable: the demo knows, for every text it sends, which segment it came from and its true
label (the simulated users and annotator answer from that ground truth).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from textops.data.dataset import Row

NEW_SEGMENT_WORDS = ("酒店", "房间", "前台", "入住", "宾馆")
NEW_SEGMENT = "hotel"
KNOWN_SEGMENT = "books+computers"


def segment_of(text: str) -> str:
    """The demo's segment of a review: ``hotel`` when it mentions a hotel word."""
    return NEW_SEGMENT if any(w in text for w in NEW_SEGMENT_WORDS) else KNOWN_SEGMENT


@dataclass(frozen=True)
class DemoSize:
    """How much data each stage uses; the defaults fit in a few minutes on 2 cores."""

    first_training: int = 2500
    in_distribution: int = 2000
    shifted: int = 5000
    new_share: float = 0.3
    labels: int = 1000
    feedback_share: float = 0.25
    chunk: int = 250
    seed: int = 7
    # served texts v2's drift reference is profiled on (0: its holdout), as a retraining Job's
    reference_traffic: int = 2000


@dataclass(frozen=True)
class Sample:
    """One text the simulated world sends, with what only the world knows about it."""

    text: str
    label: str
    segment: str


@dataclass(frozen=True)
class Scenario:
    """The first training set and the two pools live traffic is drawn from."""

    first_training: tuple[Row, ...]
    known_pool: tuple[Sample, ...]
    new_pool: tuple[Sample, ...]

    def truth(self) -> dict[str, str]:
        """Text → true label for every text the world may send (the annotator's answers)."""
        return {s.text: s.label for s in (*self.known_pool, *self.new_pool)}


def build_scenario(
    rows: Sequence[Row], first_training_rows: int, seed: int, max_chars: int = 2000
) -> Scenario:
    """Split the corpus: ``first_training_rows`` known-segment rows train v1, the rest is live.

    No text is both trained on and sent as traffic, so online accuracy is honest. Reviews
    longer than the service accepts (``max_chars``; a handful of essays) are left out.
    """
    rng = np.random.default_rng(seed)
    rows = [r for r in rows if len(r.text) <= max_chars]
    known = [r for r in rows if segment_of(r.text) == KNOWN_SEGMENT]
    new = [r for r in rows if segment_of(r.text) == NEW_SEGMENT]
    if len(known) <= first_training_rows or not new:
        raise ValueError(
            f"the corpus has {len(known)} known-segment and {len(new)} new-segment rows; "
            f"need more than {first_training_rows} known and some new"
        )
    order = rng.permutation(len(known))
    first = tuple(known[i] for i in order[:first_training_rows])
    known_live = tuple(
        Sample(known[i].text, known[i].label, KNOWN_SEGMENT) for i in order[first_training_rows:]
    )
    new_live = tuple(
        Sample(r.text, r.label, NEW_SEGMENT) for r in (new[i] for i in rng.permutation(len(new)))
    )
    return Scenario(first_training=first, known_pool=known_live, new_pool=new_live)


def phase_traffic(
    scenario: Scenario, plan: Sequence[tuple[int, float]], seed: int
) -> list[list[Sample]]:
    """One list of texts per ``(size, new_share)`` in ``plan``, shuffled; no text repeats.

    Phases never share a text, so what the annotator labelled from one phase cannot inflate
    the accuracy measured on a later one.
    """
    rng = np.random.default_rng(seed)
    new = [scenario.new_pool[i] for i in rng.permutation(len(scenario.new_pool))]
    known = [scenario.known_pool[i] for i in rng.permutation(len(scenario.known_pool))]
    phases = []
    for size, share in plan:
        if not 0.0 <= share <= 1.0:
            raise ValueError(f"the new segment's share must be in [0, 1], got {share}")
        n_new = round(size * share)
        if n_new > len(new) or size - n_new > len(known):
            raise ValueError(f"not enough live texts left for {size} texts at {share:.0%} new")
        picked = new[:n_new] + known[: size - n_new]
        new, known = new[n_new:], known[size - n_new :]
        phases.append([picked[i] for i in rng.permutation(len(picked))])
    return phases


def feedback_sample(samples: Sequence[Sample], share: float, seed: int) -> list[int]:
    """Indices of the predictions the simulated users give feedback on (a fixed share)."""
    rng = np.random.default_rng(seed)
    return sorted(
        int(i) for i in rng.choice(len(samples), round(len(samples) * share), replace=False)
    )


def feedback_plan(samples: Sequence[Sample], size: DemoSize) -> list[list[int]]:
    """Per chunk of ``size.chunk`` samples as the demo sends them, the indices (within the
    chunk) the simulated users give feedback on: what the replay does, and what the cluster
    demo counts the labels from."""
    return [
        feedback_sample(samples[lo : lo + size.chunk], size.feedback_share, size.seed + lo)
        for lo in range(0, len(samples), size.chunk)
    ]


def accuracy_by_segment(samples: Sequence[Sample], predicted: Sequence[str]) -> dict[str, float]:
    """Share of correct predictions per segment and overall (ground truth from the world)."""
    out: dict[str, float] = {}
    for segment in (KNOWN_SEGMENT, NEW_SEGMENT, "all"):
        pairs = [
            (s.label, p)
            for s, p in zip(samples, predicted, strict=True)
            if segment in ("all", s.segment)
        ]
        if pairs:
            out[segment] = sum(t == p for t, p in pairs) / len(pairs)
    return out


@dataclass
class Phase:
    """One stretch of traffic against one served version, and what was seen."""

    name: str
    version: str
    samples: list[Sample]
    predicted: list[str] = field(default_factory=list)
    drift: list[dict[str, float]] = field(default_factory=list)
    online_accuracy: float | None = None
    feedback: int = 0

    def summary(self) -> dict[str, Any]:
        last = self.drift[-1] if self.drift else {}
        return {
            "version": self.version,
            "texts": len(self.samples),
            "new_segment_share": round(
                sum(s.segment == NEW_SEGMENT for s in self.samples) / max(len(self.samples), 1), 3
            ),
            "accuracy": {
                k: round(v, 4) for k, v in accuracy_by_segment(self.samples, self.predicted).items()
            },
            "online_accuracy": None
            if self.online_accuracy is None
            else round(self.online_accuracy, 4),
            "feedback": self.feedback,
            "drift_final": {k: round(v, 4) for k, v in last.items()},
            "drifted": bool(last) and max(last["feature_ratio"], last["prediction_ratio"]) > 1.0,
        }
