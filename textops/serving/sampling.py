"""How many served texts per second feed the drift window: a token bucket (pure).

Observing a text for drift (its character n-grams and rarity against the reference profile)
costs about half as much CPU as classifying it in a batch, while a window of 1,000 texts
evaluated every 15 s needs only about 70 new texts per second to turn over between two
evaluations. So the monitor sees every text while traffic stays under ``per_second`` texts per
second, and under load an even sample of it: ``per_second`` texts per second, bursts up to one
second's worth. The cost of drift monitoring is then bounded whatever the traffic.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class ObservationBudget:
    """``take()`` is True when a text may be observed now; ``per_second=0`` means always."""

    def __init__(self, per_second: float, clock: Callable[[], float] = time.monotonic) -> None:
        if per_second < 0:
            raise ValueError("per_second must be zero or more")
        self.per_second = per_second
        self.burst = max(1.0, per_second)  # one second's worth
        self._clock = clock
        self._tokens = self.burst
        self._last = clock()
        self._lock = threading.Lock()
        self.skipped = 0

    def take(self) -> bool:
        if self.per_second == 0:
            return True
        with self._lock:
            now = self._clock()
            self._tokens = min(self.burst, self._tokens + (now - self._last) * self.per_second)
            self._last = now
            if self._tokens >= 1.0:
                self._tokens -= 1.0
                return True
            self.skipped += 1
            return False
