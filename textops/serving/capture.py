"""Samples for labelling leave the request path through a bounded queue.

The request thread only offers a sample (``put_nowait``); a writer thread drains the queue in
batches into the label store. A full queue drops the newest capture and counts it — a
prediction never blocks or fails because the label store is slow or down. While the store is
unreachable the writer keeps its batch and retries with backoff, so an outage loses only what
overflows the queue, and that loss is counted.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable

from textops.labelling.store import CapturedSample, LabelStore

logger = logging.getLogger("textops.serving.capture")

BATCH = 100
MAX_BACKOFF_S = 30.0


class CaptureQueue:
    def __init__(
        self,
        open_store: Callable[[], LabelStore],
        capacity: int,
        on_drop: Callable[[], None],
        on_written: Callable[[int, LabelStore], None],
    ) -> None:
        self._open_store = open_store
        self._queue: queue.Queue[CapturedSample] = queue.Queue(maxsize=capacity)
        self._on_drop = on_drop
        self._on_written = on_written
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="textops-capture", daemon=True)
        self._thread.start()

    @property
    def backlog(self) -> int:
        return self._queue.qsize()

    def offer(self, sample: CapturedSample) -> bool:
        """Queue a capture without waiting; False (and counted) when the queue is full."""
        try:
            self._queue.put_nowait(sample)
        except queue.Full:
            self._on_drop()
            return False
        return True

    def close(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self._thread.join(timeout)

    def _run(self) -> None:
        store: LabelStore | None = None
        backoff = 0.5
        batch: list[CapturedSample] = []
        while not self._stop.is_set():
            if not batch:
                try:
                    batch.append(self._queue.get(timeout=0.5))
                except queue.Empty:
                    continue
                while len(batch) < BATCH:
                    try:
                        batch.append(self._queue.get_nowait())
                    except queue.Empty:
                        break
            try:
                store = store or self._open_store()
                store.add_samples(batch)
                self._on_written(len(batch), store)
                batch, backoff = [], 0.5
            except Exception as exc:  # keep the batch; the store may come back
                logger.warning("label store write failed (%s); retrying in %.1fs", exc, backoff)
                store = None
                self._stop.wait(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF_S)
