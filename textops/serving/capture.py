"""What the service writes to the label database leaves the request path through bounded queues.

The request thread only offers an item (``put_nowait``); a writer thread drains the queue in
batches into the label store. A full queue drops the newest item and counts it — a prediction
never blocks or fails because the label store is slow or down. While the store is unreachable
the writer keeps its batch and retries with backoff, so an outage loses only what overflows
the queue, and that loss is counted. Two queues use it: captures for the labelling queue and
the prediction log that feedback claims.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from typing import Generic, TypeVar

from textops.labelling.store import CapturedSample, LabelStore

logger = logging.getLogger("textops.serving.capture")

BATCH = 500
MAX_BACKOFF_S = 30.0
T = TypeVar("T")


class StoreWriter(Generic[T]):
    """A bounded queue of ``T`` and the thread that writes it in batches with ``write``."""

    def __init__(
        self,
        name: str,
        open_store: Callable[[], LabelStore],
        write: Callable[[LabelStore, list[T]], object],
        capacity: int,
        on_drop: Callable[[], None],
        linger_s: float = 0.0,
    ) -> None:
        self.name = name
        # after the first item, wait this long for more: one transaction per interval instead
        # of one per request (and one wake-up of this thread) under load
        self.linger_s = linger_s
        self._open_store = open_store
        self._write = write
        self._queue: queue.Queue[T] = queue.Queue(maxsize=capacity)
        self._on_drop = on_drop
        self._stop = threading.Event()
        self._unwritten: list[T] = []  # the batch the thread held when it stopped
        self._thread = threading.Thread(target=self._run, name=f"textops-{name}", daemon=True)
        self._thread.start()

    @property
    def backlog(self) -> int:
        return self._queue.qsize()

    def offer(self, item: T) -> bool:
        """Queue an item without waiting; False (and counted) when the queue is full."""
        try:
            self._queue.put_nowait(item)
        except queue.Full:
            self._on_drop()
            return False
        return True

    def close(self, timeout: float = 5.0) -> None:
        """Stop taking the queue in the background, then write what is left (a pod being
        deleted drains: what it answered reaches the store), giving up after ``timeout``."""
        self._stop.set()
        self._thread.join(timeout)
        deadline = time.monotonic() + timeout
        left = self._drain(self._unwritten)
        while left and time.monotonic() < deadline:
            try:
                store = self._open_store()
                for start in range(0, len(left), BATCH):
                    self._write(store, left[start : start + BATCH])
                return
            except Exception as exc:
                logger.warning("%s: final write failed (%s)", self.name, exc)
                time.sleep(0.5)
        if left:
            logger.error("%s: %d items not written at shutdown", self.name, len(left))

    def _drain(self, batch: list[T], limit: int | None = None) -> list[T]:
        """Move queued items into ``batch`` without waiting (at most ``limit`` in all)."""
        while limit is None or len(batch) < limit:
            try:
                batch.append(self._queue.get_nowait())
            except queue.Empty:
                break
        return batch

    def _run(self) -> None:
        store: LabelStore | None = None
        backoff = 0.5
        batch: list[T] = []
        while not self._stop.is_set():
            if not batch:
                try:
                    batch.append(self._queue.get(timeout=0.5))
                except queue.Empty:
                    continue
                if self.linger_s > 0:
                    self._stop.wait(self.linger_s)
                self._drain(batch, BATCH)
            try:
                store = store or self._open_store()
                self._write(store, batch)
                batch, backoff = [], 0.5
            except Exception as exc:  # keep the batch; the store may come back
                logger.warning("%s: write failed (%s); retrying in %.1fs", self.name, exc, backoff)
                store = None
                self._stop.wait(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF_S)
        self._unwritten = batch  # for close() to write, before what is still queued


def capture_queue(
    open_store: Callable[[], LabelStore], capacity: int, on_drop: Callable[[], None]
) -> StoreWriter[CapturedSample]:
    """Samples for the labelling queue."""
    return StoreWriter("capture", open_store, LabelStore.add_samples, capacity, on_drop)
