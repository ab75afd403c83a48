"""Feedback reaches a prediction made by another replica, before and after a restart, once.

Two `textops serve` processes of the same model (one of them with two worker processes) share
one label database on the real MariaDB, as two serving pods of a ModelDeployment share the
chart's: a prediction answered by one is accepted as feedback by the other (the prediction log
in the database, written off the request path, is what they share), counted once across both,
and still claimable after the replica that made it was stopped or killed, or while the
database itself was down and came back.
"""

from __future__ import annotations

import contextlib
import os
import signal
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.served_model import call, prepare_champion, serving
from textops.devservers import MariaDBServer
from textops.labelling.predictions import PredictionLog
from textops.labelling.store import LabelStore
from textops.processes import descendant_pids, wait_until

pytestmark = pytest.mark.integration

TEXTS = ["房间很干净，前台热情", "作者的故事不错", "屏幕很亮，键盘手感好", "早餐一般，位置方便"]


@dataclass
class Replicas:
    base: Path
    home: Path
    env: dict[str, str]
    a: str
    b: str


@pytest.fixture(scope="module")
def replicas(
    tmp_path_factory: pytest.TempPathFactory, mariadb: MariaDBServer
) -> Iterator[Replicas]:
    base = tmp_path_factory.mktemp("replicas")
    home = prepare_champion(base)
    mariadb.create_database("feedback_replicas")
    env = {"TEXTOPS_LABEL_DB": mariadb.url("feedback_replicas")}
    with (
        serving(base, home, "replica-a", **env) as (a, _),
        # two worker processes: feedback lands on whichever worker, not the one that answered
        serving(base, home, "replica-b", TEXTOPS_WORKERS="2", **env) as (b, _),
    ):
        yield Replicas(base, home, env, a, b)


def _predict(url: str, texts: list[str]) -> list[dict]:
    status, body = call(f"{url}/predict", {"texts": texts})
    assert status == 200, body
    return list(body["predictions"])


def _feedback_counted(url: str) -> float:
    """Feedback this replica counted (textops_feedback_total over every series)."""
    with urllib.request.urlopen(f"{url}/metrics", timeout=10) as response:
        text = response.read().decode()
    return sum(
        s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == "textops_feedback_total"
    )


def test_feedback_for_the_other_replicas_predictions_is_accepted_once(replicas: Replicas) -> None:
    before = _feedback_counted(replicas.a) + _feedback_counted(replicas.b)
    predictions = _predict(replicas.a, TEXTS * 5)
    for p in predictions:  # at once: the other replica's log writer may not have run yet
        status, answer = call(f"{replicas.b}/feedback", {"id": p["id"], "accepted": True})
        assert status == 200 and answer["recorded"] is True, answer
        assert answer["predicted"] == p["label"]
    # the same feedback at the replica that made the prediction: answered, not counted again
    for p in predictions[:5]:
        status, answer = call(f"{replicas.a}/feedback", {"id": p["id"], "accepted": True})
        assert status == 200 and answer["recorded"] is False, answer
    status, answer = call(f"{replicas.a}/feedback", {"id": predictions[0]["id"], "accepted": False})
    assert (status, answer["reason"]) == (409, "duplicate_feedback")
    after = _feedback_counted(replicas.a) + _feedback_counted(replicas.b)
    assert after - before == len(predictions)


def test_a_label_given_at_one_replica_reaches_the_shared_store(replicas: Replicas) -> None:
    (p,) = _predict(replicas.b, [TEXTS[0]])
    status, answer = call(f"{replicas.a}/feedback", {"id": p["id"], "label": "电脑"})
    assert status == 200 and answer["correct"] is False
    store = LabelStore(replicas.env["TEXTOPS_LABEL_DB"])
    kept = [x for x in store.labels_after(0) if x.sample_id == f"feedback-{p['id']}"]
    assert [(x.text, x.label, x.reason) for x in kept] == [(TEXTS[0], "电脑", "feedback")]


def test_feedback_survives_the_replica_that_made_the_prediction(replicas: Replicas) -> None:
    with serving(replicas.base, replicas.home, "replica-c", **replicas.env) as (c, process):
        predictions = _predict(c, TEXTS)
        # the log writer hands predictions over within a batch; a stop waits for nothing
        log = PredictionLog(LabelStore(replicas.env["TEXTOPS_LABEL_DB"]).engine)
        wait_until(
            lambda: all(log.find(p["id"]) for p in predictions),
            timeout=30,
            what="waiting for replica-c's predictions in the log",
        )
    assert not process.alive()
    for p in predictions:
        status, answer = call(f"{replicas.b}/feedback", {"id": p["id"], "label": p["label"]})
        assert status == 200 and answer["recorded"] is True and answer["correct"] is True
    # and after a restart of a replica, the repeat is still recognised as one
    with serving(replicas.base, replicas.home, "replica-c2", **replicas.env) as (c2, _):
        for p in predictions:
            status, answer = call(f"{c2}/feedback", {"id": p["id"], "accepted": True})
            assert status == 200 and answer["recorded"] is False, answer


def _labels_in(url: str, ids: list[str]) -> dict[str, str]:
    """sample id -> label of the feedback labels of ``ids`` in the store at ``url``."""
    wanted = {f"feedback-{i}" for i in ids}
    stored = LabelStore(url).labels_after(0)
    return {x.sample_id: x.label for x in stored if x.sample_id in wanted}


def test_an_acknowledged_label_survives_a_killed_serving_process(replicas: Replicas) -> None:
    url = replicas.env["TEXTOPS_LABEL_DB"]
    with serving(replicas.base, replicas.home, "replica-k", **replicas.env) as (k, process):
        predictions = _predict(k, TEXTS)
        for p in predictions:
            status, answer = call(f"{k}/feedback", {"id": p["id"], "label": "电脑"})
            assert status == 200, answer
        # a crash, not a shutdown: SIGKILL to the workers and the server, no flush hook runs
        for pid in [*descendant_pids(process.pid), process.pid]:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    labels = _labels_in(url, [p["id"] for p in predictions])
    assert labels == {f"feedback-{p['id']}": "电脑" for p in predictions}


def test_labels_acknowledged_while_the_label_database_is_down_are_kept(
    replicas: Replicas, tmp_path: Path
) -> None:
    """Its own MariaDB, stopped and started again on the same data under a running service:
    feedback answered meanwhile is decided by the replica's memory, and its labels wait in
    the capture queue until the database is back."""
    from textops.devservers.mariadb import start_mariadb

    db = start_mariadb(tmp_path / "db", databases=["labels"], die_with_parent=True)
    url = db.url("labels")
    try:
        with serving(replicas.base, replicas.home, "replica-db", TEXTOPS_LABEL_DB=url) as (s, _):
            predictions = _predict(s, TEXTS)
            log = PredictionLog(LabelStore(url).engine)
            wait_until(
                lambda: all(log.find(p["id"]) for p in predictions),
                timeout=30,
                what="waiting for the predictions in the log",
            )
            port = db.port
            db.stop()
            for p in predictions:
                status, answer = call(f"{s}/feedback", {"id": p["id"], "label": "书籍"})
                assert status == 200 and answer["recorded"] is True, answer
            db = start_mariadb(tmp_path / "db", port=port, databases=["labels"])
            labels = wait_until(
                lambda: (
                    found
                    if len(found := _labels_in(url, [p["id"] for p in predictions]))
                    == len(predictions)
                    else None
                ),
                timeout=120,  # the writer retries with backoff up to 30 s
                what="waiting for the labels after the database came back",
            )
            assert set(labels.values()) == {"书籍"}
    finally:
        db.stop()
