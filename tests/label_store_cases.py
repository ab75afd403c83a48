"""Behaviour every label-store backend must show; run on SQLite (unit) and MariaDB
(integration) by the two test modules that import it."""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable
from datetime import timedelta
from typing import TypeVar

import pytest
import sqlalchemy as sa

from textops.labelling.predictions import (
    FeedbackConflict,
    PredictionLog,
    ServedPrediction,
    UnknownPrediction,
)
from textops.labelling.schema import MIGRATIONS, now, open_engine, schema_version
from textops.labelling.store import (
    LABELLED,
    SKIPPED,
    CapturedSample,
    LabelStore,
    UnknownSampleError,
)

T = TypeVar("T")


def sample(i: int, score: float = 0.5, text: str | None = None) -> CapturedSample:
    return CapturedSample(
        id=f"p-{i}",
        text=text or f"样本{i}：房间还行👍",
        model_name="情感分类",
        model_version="3",
        predicted_label="positive",
        confidence=0.55,
        probabilities={"positive": 0.55, "negative": 0.45},
        reason="uncertain",
        score=score,
        score_parts={"uncertainty": score},
    )


def check_queue_label_skip_and_conflicts(store: LabelStore) -> None:
    assert store.add_samples([sample(1, 0.2), sample(2, 0.9), sample(3, 0.5)]) == 3
    assert store.add_samples([sample(2, 0.1)]) == 0  # a retried capture changes nothing
    queue = store.queue(limit=10)
    # equally uncertain (0.55 / 0.45) and alike: the capture score breaks the tie
    assert [q.id for q in queue] == ["p-2", "p-3", "p-1"]
    assert [q.position for q in queue] == [0, 1, 2]
    assert queue[0].text == "样本2：房间还行👍" and queue[0].reason == "uncertain"
    assert queue[0].score_parts["uncertainty"] == pytest.approx(0.9)  # 1 - top-2 margin
    assert "model unsure" in queue[0].why
    assert queue[1].score_parts["diversity_penalty"] < 0 and "p-2" in queue[1].why
    assert [q.id for q in store.queue(limit=1, offset=1)] == ["p-3"]

    first = store.submit_label("p-2", "negative", "alice")
    assert first.created and not first.conflict and first.labels == ["negative"]
    again = store.submit_label("p-2", "negative", "alice")
    assert not again.created and not again.conflict  # idempotent
    other = store.submit_label("p-2", "positive", "bob")
    assert other.created and other.conflict and other.labels == ["negative", "positive"]

    store.skip("p-1", "alice")
    assert [q.id for q in store.queue()] == ["p-3"]
    assert [q.id for q in store.queue(status=LABELLED)] == ["p-2"]
    assert [q.id for q in store.queue(status=SKIPPED)] == ["p-1"]
    stats = store.stats()
    assert stats == {
        "queued": 1,
        "labelled": 1,
        "skipped": 1,
        "labels": 2,
        "skips": 1,
        "conflicts": 1,
    }
    stored = store.labels_after(0)
    assert [(s.sample_id, s.label, s.annotator) for s in stored] == [
        ("p-2", "negative", "alice"),
        ("p-2", "positive", "bob"),
    ]
    assert store.labels_after(stored[0].id)[0].label == "positive"

    with pytest.raises(UnknownSampleError, match="p-404"):
        store.submit_label("p-404", "negative", "alice")
    with pytest.raises(UnknownSampleError):
        store.skip("p-404", "alice")
    assert store.stats()["labels"] == 2  # the failed submissions wrote nothing


def check_each_model_has_its_own_queue(store: LabelStore) -> None:
    """Two models sharing one store (an installation serves several): each one's queue and
    counts hold its own samples only; without a model, everything."""
    other = [dataclasses.replace(sample(10 + i), model_name="新闻分类") for i in range(3)]
    store.add_samples([sample(1, 0.2), sample(2, 0.9), *other])
    store.submit_label("p-2", "negative", "alice")
    store.submit_label("p-10", "positive", "alice")
    store.submit_label("p-10", "negative", "bob")
    store.skip("p-11", "alice")
    assert [q.id for q in store.queue(model_name="情感分类")] == ["p-1"]
    assert [q.id for q in store.queue(model_name="新闻分类")] == ["p-12"]
    assert {q.id for q in store.queue(limit=10)} == {"p-1", "p-12"}
    assert [q.id for q in store.queue(status=LABELLED, model_name="新闻分类")] == ["p-10"]
    assert store.stats("情感分类") == {
        "queued": 1, "labelled": 1, "skipped": 0, "labels": 1, "skips": 0, "conflicts": 0,
    }  # fmt: skip
    assert store.stats("新闻分类") == {
        "queued": 1, "labelled": 1, "skipped": 1, "labels": 2, "skips": 1, "conflicts": 1,
    }  # fmt: skip
    assert store.stats()["labels"] == 3
    assert store.queue(model_name="nobody") == [] and store.stats("nobody")["queued"] == 0


def check_reopening_keeps_data_and_schema(url: str) -> None:
    store = LabelStore(url)
    store.add_samples([sample(7)])
    store.submit_label("p-7", "positive", "carol")
    reopened = LabelStore(url)  # migrations already applied: a no-op
    assert reopened.migrate() == len(MIGRATIONS)
    assert reopened.stats()["labels"] == 1


def check_concurrent_submissions_do_not_duplicate(store: LabelStore) -> None:
    store.add_samples([sample(50 + i) for i in range(20)])
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            for i in range(20):
                store.submit_label(f"p-{50 + i}", "negative", "dave")
        except BaseException as exc:  # collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, [repr(e) for e in errors]
    dave = [s for s in store.labels_after(0) if s.annotator == "dave"]
    assert len(dave) == 20


def check_replicas_capturing_the_same_ids_store_each_once(url: str) -> None:
    """Two serving replicas (two engines) hand over overlapping batches at the same time: each
    id is stored once and the "new" counts add up to the distinct ids, whichever replica won."""
    replicas = [LabelStore(url), LabelStore(url)]
    assert replicas[0].add_samples([sample(300), sample(300)]) == 1  # twice in one batch
    ids = list(range(100, 160))
    added: list[int] = []
    errors: list[BaseException] = []

    def worker(store: LabelStore, offset: int) -> None:
        try:
            for lo in range(0, len(ids), 10):
                chunk = ids[lo : lo + 10]
                added.append(store.add_samples([sample(i) for i in chunk[offset:] + chunk]))
        except BaseException as exc:  # collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(replicas[k % 2], k % 3)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, [repr(e) for e in errors]
    assert sum(added) == len(ids)
    stored = {q.id for q in replicas[1].queue(limit=500)}
    assert stored == {f"p-{i}" for i in [300, *ids]}


def check_upgrade_from_the_first_schema_keeps_data(url: str) -> None:
    """A database made by the first release (migration 1 only) gains the prediction log."""
    engine = open_engine(url)
    with engine.begin() as conn:
        for table in MIGRATIONS[0]:
            table.create(conn, checkfirst=True)
        conn.execute(schema_version.insert().values(version=1, applied_at=now()))
    engine.dispose()
    store = LabelStore(url)
    store.add_samples([sample(9)])
    with store.engine.connect() as conn:
        versions = sorted(conn.execute(sa.select(schema_version.c.version)).scalars())
    assert versions == list(range(1, len(MIGRATIONS) + 1))
    log = PredictionLog(store.engine)
    assert log.record([served("u-1")]) == 1
    assert store.stats()["queued"] == 1


def served(prediction_id: str, label: str = "positive") -> ServedPrediction:
    return ServedPrediction(
        prediction_id, "情感分类", "3", "房间还行👍", label, {"positive": 0.6, "negative": 0.4}
    )


def check_feedback_is_claimed_once(store: LabelStore) -> None:
    log = PredictionLog(store.engine)
    assert log.record([served("a-1"), served("a-2"), served("a-3")]) == 3
    assert log.record([served("a-3"), served("a-4")]) == 1  # a retried batch: one new row
    first = log.claim("a-1", None, "negative")
    assert first.first and not first.verdict.correct and first.verdict.truth == "negative"
    assert first.prediction.text == "房间还行👍" and first.prediction.model_version == "3"
    again = log.claim("a-1", None, "negative")
    assert not again.first and again.verdict == first.verdict  # a repeat: same answer
    with pytest.raises(FeedbackConflict):
        log.claim("a-1", True, None)  # different feedback is refused, not counted
    accepted = log.claim("a-2", True, None)
    assert accepted.verdict.correct and accepted.verdict.truth == "positive"
    assert log.claim("a-2", None, "positive").first is False  # the same verdict in words
    with pytest.raises(UnknownPrediction):
        log.claim("nope", True, None)
    # feedback outran the writer: the replica's own copy goes in first
    late = log.claim("a-9", False, None, known=served("a-9"))
    assert late.first and late.verdict.truth is None
    assert log.record([served("a-9")]) == 0  # the writer's batch arrives afterwards
    assert log.find("a-9") is not None


def together(work: Callable[[], T], times: int, timeout: float = 120.0) -> list[T]:
    """Run ``work`` in ``times`` threads released at the same moment; their results, or the
    first error any of them raised."""
    barrier = threading.Barrier(times)
    results: list[T] = []
    errors: list[BaseException] = []

    def one() -> None:
        try:
            barrier.wait(timeout)
            results.append(work())
        except BaseException as exc:  # re-raised below
            errors.append(exc)

    threads = [threading.Thread(target=one) for _ in range(times)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout)
    if errors:
        raise AssertionError([repr(e) for e in errors]) from errors[0]
    assert len(results) == times, "a thread did not finish in time"
    return results


def check_replicas_claiming_the_same_prediction_count_it_once(store: LabelStore) -> None:
    PredictionLog(store.engine).record([served("c-1")])
    outcomes = together(lambda: PredictionLog(store.engine).claim("c-1", True, None).first, 6)
    assert sorted(outcomes) == [False] * 5 + [True]


def check_old_predictions_are_pruned(store: LabelStore) -> None:
    log = PredictionLog(store.engine)
    log.record([served("o-1"), served("o-2")])
    assert log.prune(now() - timedelta(hours=1)) == 0
    assert log.prune(now() + timedelta(seconds=2)) == 2
    assert log.find("o-1") is None


def check_replicas_opening_a_fresh_database_together_all_start(url: str) -> None:
    """Pods of a new installation start at once: every one migrates or finds it done."""
    opened = together(lambda: LabelStore(url), 4)
    assert opened[0].stats()["queued"] == 0
