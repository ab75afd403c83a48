"""The ranked labelling queue through the real service: GET /labelling/api/queue lists the
label store's pending samples in ranking order, with every item's parts and why, pages that
join up, and near-duplicates at the end.

A small model is trained and promoted in a temporary home and served as a child process, as in
``test_serving.py``; the samples are written to the served label store directly.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.served_model import call, serve_champion
from textops.labelling.ranking import PARTS
from textops.labelling.store import CapturedSample, LabelStore
from textops.processes import (
    ManagedProcess,
)

pytestmark = pytest.mark.integration

MODEL = "reviews-sentiment"
TOKEN = "queue-test-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@dataclass
class Served:
    url: str
    home: Path
    process: ManagedProcess


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    base = tmp_path_factory.mktemp("labelling-queue")
    with serve_champion(
        base,
        "textops-serve-queue",
        TEXTOPS_LABEL_TOKEN=TOKEN,
        # diversity and balance off: the order below is decided by uncertainty and business
        TEXTOPS_LABEL_WEIGHTS="diversity=0,balance=0",
    ) as (url, proc):
        yield Served(url, base / "home", proc)


def _sample(i: int, text: str, top: float, parts: dict[str, float]) -> CapturedSample:
    rest = (1 - top) / 2
    return CapturedSample(
        id=f"q-{i}",
        text=text,
        model_name=MODEL,
        model_version="1",
        predicted_label="书籍",
        confidence=top,
        probabilities={"书籍": top, "电脑": rest, "酒店": rest},
        reason="uncertain",
        score=1 - top,
        score_parts=parts,
    )


def test_the_api_lists_the_ranked_queue_and_pages_it(served: Served) -> None:
    store = LabelStore(f"sqlite:///{served.home / 'labels.db'}")
    store.add_samples(
        [
            _sample(0, "这本书的情节很拖沓，翻译也一般", 0.45, {}),
            _sample(1, "这本书的情节很拖沓，翻译也一般！", 0.4, {}),  # a near-copy, less sure
            _sample(2, "键盘手感不错，但是风扇太吵", 0.5, {}),
            _sample(3, "早餐品种少，前台服务还行", 0.95, {"business": 2.0}),
            _sample(4, "电池续航短，系统还算流畅", 0.7, {"drift": 0.8}),
        ]
    )
    api = f"{served.url}/labelling/api"
    status, whole = call(f"{api}/queue?limit=50", headers=AUTH)
    assert status == 200
    items = whole["items"]
    # business first, then the most uncertain; q-0 (uncertainty 0.825) would come third but
    # repeats q-1, so it goes to the end
    assert [i["id"] for i in items] == ["q-3", "q-1", "q-2", "q-4", "q-0"]
    assert [i["position"] for i in items] == [0, 1, 2, 3, 4]
    assert items[-1]["duplicate_of"] == "q-1" and "near-duplicate of q-1" in items[-1]["why"]
    assert items[0]["score_parts"]["business"] == pytest.approx(2.0)
    # drift is measured again against the serving model's reference (a shift it has learned
    # is no longer drift), not taken from the capture's 0.8; no shift in traffic: no tier
    assert 0 <= items[3]["score_parts"]["drift"] <= 0.2
    assert items[3]["score_parts"]["drift"] != pytest.approx(0.2 * 0.8)
    assert not any(i["why"].startswith("drifted") for i in items)
    for item in items:
        assert set(item["score_parts"]) == set(PARTS)
        assert item["score"] == pytest.approx(sum(item["score_parts"].values()), abs=1e-5)
        assert item["reason"] == "uncertain" and item["why"]

    pages = [call(f"{api}/queue?limit=2&offset={o}", headers=AUTH)[1]["items"] for o in (0, 2, 4)]
    assert [i["id"] for page in pages for i in page] == [i["id"] for i in items]

    status, _ = call(
        f"{api}/labels", {"id": "q-3", "label": "酒店", "annotator": "ann"}, headers=AUTH
    )
    assert status == 200
    after = call(f"{api}/queue?limit=50", headers=AUTH)[1]["items"]
    assert [i["id"] for i in after] == ["q-1", "q-2", "q-4", "q-0"]
    assert after[0]["position"] == 0


def test_an_unreachable_label_store_is_a_503_and_predictions_go_on(tmp_path: Path) -> None:
    """The label store down (a MariaDB URL nothing listens on): the labelling API says so with
    503 and reason label_store, never 500, while /predict keeps answering."""
    with serve_champion(
        tmp_path,
        "textops-serve-no-store",
        TEXTOPS_LABEL_TOKEN=TOKEN,
        TEXTOPS_LABEL_DB="mysql+pymysql://textops:x@127.0.0.1:9/labels",
    ) as (url, _proc):
        status, answer = call(f"{url}/labelling/api/stats", headers=AUTH)
        assert status == 503 and answer["reason"] == "label_store", answer
        assert "unreachable" in answer["error"], answer
        status, answer = call(
            f"{url}/labelling/api/labels", {"id": "q-1", "label": "书籍"}, headers=AUTH
        )
        assert status == 503 and answer["reason"] == "label_store", answer
        status, answer = call(f"{url}/predict", {"texts": ["屏幕很好，电池一般"]})
        assert status == 200 and len(answer["predictions"]) == 1, answer
