"""The hand-off of captures and predictions to the label store, on a real SQLite store."""

from __future__ import annotations

import threading
from pathlib import Path

from sqlalchemy.exc import OperationalError

from textops.labelling.predictions import PredictionLog, ServedPrediction
from textops.labelling.store import LabelStore
from textops.processes import wait_until
from textops.serving.capture import StoreWriter


def _served(i: int) -> ServedPrediction:
    return ServedPrediction(f"id-{i}", "m", "1", f"文本{i}", "a", {"a": 0.9, "b": 0.1})


def _log_writer(url: str) -> StoreWriter[ServedPrediction]:
    return StoreWriter(
        "prediction-log",
        lambda: LabelStore(url),
        lambda store, batch: PredictionLog(store.engine).record(batch),
        1000,
        on_drop=lambda: None,
    )


def test_offered_predictions_reach_the_store(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/w.db"
    writer = _log_writer(url)
    log = PredictionLog(LabelStore(url).engine)
    for i in range(250):
        assert writer.offer(_served(i))
    # written in the background, before any close()
    wait_until(lambda: all(log.find(f"id-{i}") for i in (0, 124, 249)), timeout=10, what="rows")
    writer.close()


def test_close_writes_what_is_still_queued(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/c.db"
    gate = threading.Event()
    calls: list[int] = []

    def slow_write(store: LabelStore, batch: list[ServedPrediction]) -> None:
        calls.append(len(batch))
        gate.wait(10)  # the first batch blocks until close() is under way
        PredictionLog(store.engine).record(batch)

    writer = StoreWriter("log", lambda: LabelStore(url), slow_write, 1000, on_drop=lambda: None)
    for i in range(300):
        writer.offer(_served(i))
    threading.Timer(0.5, gate.set).start()
    writer.close(timeout=10)
    log = PredictionLog(LabelStore(url).engine)
    assert all(log.find(f"id-{i}") for i in range(300))


def test_a_full_queue_drops_and_counts(tmp_path: Path) -> None:
    drops: list[int] = []
    blocked = threading.Event()

    def never_written(_store: LabelStore, _batch: list[ServedPrediction]) -> None:
        blocked.wait(10)

    url = f"sqlite:///{tmp_path}/f.db"
    writer = StoreWriter(
        "log", lambda: LabelStore(url), never_written, 5, on_drop=lambda: drops.append(1)
    )
    accepted = [writer.offer(_served(i)) for i in range(20)]
    blocked.set()
    writer.close(timeout=5)
    # 5 fit in the queue, and the writer may have taken one out before the rest came
    assert accepted.count(False) == len(drops) and len(drops) in (14, 15)


def test_a_store_that_fails_keeps_the_batch_until_it_answers(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/r.db"
    failures = [2]

    def flaky(store: LabelStore, batch: list[ServedPrediction]) -> None:
        if failures[0] > 0:
            failures[0] -= 1
            raise OperationalError("INSERT", {}, Exception("server has gone away"))
        PredictionLog(store.engine).record(batch)

    writer = StoreWriter("log", lambda: LabelStore(url), flaky, 100, on_drop=lambda: None)
    for i in range(10):
        writer.offer(_served(i))
    log = PredictionLog(LabelStore(url).engine)
    # retried after 0.5 s and 1 s of backoff, without a close()
    wait_until(lambda: all(log.find(f"id-{i}") for i in range(10)), timeout=10, what="rows")
    writer.close()
    assert failures == [0]


def test_close_writes_the_batch_the_thread_held_for_a_retry(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/h.db"
    down, failed = threading.Event(), threading.Event()
    down.set()

    def write(store: LabelStore, batch: list[ServedPrediction]) -> None:
        if down.is_set():
            failed.set()
            raise OperationalError("INSERT", {}, Exception("server has gone away"))
        PredictionLog(store.engine).record(batch)

    writer = StoreWriter("log", lambda: LabelStore(url), write, 100, on_drop=lambda: None)
    for i in range(10):
        writer.offer(_served(i))
    assert failed.wait(10)  # the thread now holds the batch and waits to retry
    down.clear()
    writer.close(timeout=10)  # wakes the thread from its back-off: close() writes the batch
    log = PredictionLog(LabelStore(url).engine)
    assert all(log.find(f"id-{i}") for i in range(10))
