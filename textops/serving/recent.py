"""Recent predictions and the feedback tally, in memory (pure).

Feedback arrives after the prediction, by id, so the service must remember what it answered.
Until the label store takes over, a bounded map keeps the newest predictions and forgets the
oldest; feedback for a forgotten id is refused like an unknown one. The tally turns feedback
into online accuracy and business value.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass


class AlreadyJudged(Exception):
    """Feedback for this prediction was recorded before."""


@dataclass
class StoredPrediction:
    label: str
    proba: dict[str, float]
    text: str
    feedback: bool = False


class RecentPredictions:
    """An id -> prediction map holding at most ``capacity`` entries (oldest dropped first)."""

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError("capacity must be at least 1")
        self.capacity = capacity
        self._items: OrderedDict[str, StoredPrediction] = OrderedDict()
        self._lock = threading.Lock()

    def add(self, prediction_id: str, prediction: StoredPrediction) -> None:
        with self._lock:
            self._items[prediction_id] = prediction
            self._items.move_to_end(prediction_id)
            while len(self._items) > self.capacity:
                self._items.popitem(last=False)

    def get(self, prediction_id: str) -> StoredPrediction | None:
        with self._lock:
            return self._items.get(prediction_id)

    def claim_feedback(self, prediction_id: str) -> StoredPrediction:
        """The prediction, now marked as judged so feedback counts once.

        Raises ``KeyError`` for an unknown (or forgotten) id and :class:`AlreadyJudged` when
        feedback was recorded before.
        """
        with self._lock:
            stored = self._items[prediction_id]
            if stored.feedback:
                raise AlreadyJudged(prediction_id)
            stored.feedback = True
            return stored

    def __len__(self) -> int:
        return len(self._items)


@dataclass
class FeedbackTally:
    """Counts of right and wrong predictions; accuracy and value follow from them."""

    value_per_accepted: float
    correct: int = 0
    wrong: int = 0

    def record(self, correct: bool) -> None:
        if correct:
            self.correct += 1
        else:
            self.wrong += 1

    @property
    def total(self) -> int:
        return self.correct + self.wrong

    @property
    def accuracy(self) -> float | None:
        return self.correct / self.total if self.total else None

    @property
    def value(self) -> float:
        return self.correct * self.value_per_accepted
