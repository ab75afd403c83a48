"""The live labelling queue: the store's pending samples in ranked order, paged stably."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from textops.errors import TextopsError
from textops.labelling.config import QueueConfig, load_queue_config
from textops.labelling.live_queue import DriftMeasure, Pending, QueueCache, RankedQueue
from textops.labelling.ranking import Ranker, RankingConfig, RankingWeights, rank
from textops.labelling.store import CapturedSample, LabelStore

TEXTS = [
    "酒店的早餐种类很少，但是位置方便",
    "这本书的翻译有些生硬，故事还行",
    "电脑开机很快，就是风扇声音有点大",
    "房间隔音不好，晚上能听到走廊说话",
    "快递包装破了，书角有点折痕",
    "屏幕色彩不错，电池续航一般般",
    "前台办理入住等了半个小时",
    "作者的观点很新颖，值得思考",
    "键盘手感一般，触控板很灵敏",
    "窗外风景很好，空调有点吵",
    "物流速度挺快的，价格也合适",
    "系统预装软件太多，卸载麻烦",
]


def capture(i: int, text: str, p: float, parts: dict[str, float] | None = None) -> CapturedSample:
    return CapturedSample(
        id=f"s-{i:02d}",
        text=text,
        model_name="m",
        model_version="1",
        predicted_label="positive" if p >= 0.5 else "negative",
        confidence=max(p, 1 - p),
        probabilities={"positive": p, "negative": 1 - p},
        reason="uncertain",
        score=1 - max(p, 1 - p),
        score_parts=parts or {},
    )


def filled(tmp_path: Path, config: QueueConfig | None = None, n: int = 12) -> LabelStore:
    store = LabelStore(f"sqlite:///{tmp_path}/labels.db", config or QueueConfig())
    rng = np.random.default_rng(7)
    store.add_samples(capture(i, TEXTS[i], float(rng.uniform(0.2, 0.8))) for i in range(n))
    return store


def ids(items) -> list[str]:
    return [item.id for item in items]


def test_the_queue_is_the_ranked_order_with_parts_and_why(tmp_path: Path) -> None:
    store = LabelStore(f"sqlite:///{tmp_path}/labels.db", QueueConfig())
    store.add_samples(
        [
            capture(0, "酒店的服务很好，房间也很干净，下次还来", 0.51),
            capture(1, "酒店的服务很好，房间也很干净，下次还来！", 0.50),  # a near-copy of 0
            capture(2, "这本书的内容有点无聊", 0.60),
            capture(3, "电脑的散热做得不错", 0.95),
        ]
    )
    queue = store.queue(limit=10)
    assert ids(queue) == ["s-01", "s-02", "s-03", "s-00"]  # the near-copy goes last
    assert [q.position for q in queue] == [0, 1, 2, 3]
    assert queue[-1].duplicate_of == "s-01" and "near-duplicate of s-01" in queue[-1].why
    for item in queue:
        assert item.score == pytest.approx(sum(item.score_parts.values()), abs=1e-5)
        assert item.reason == "uncertain"  # what triggered the capture is kept
    assert queue[0].score_parts["uncertainty"] == pytest.approx(1.0)


def test_pages_join_up_to_the_whole_queue_and_repeat_while_nothing_changes(
    tmp_path: Path,
) -> None:
    store = filled(tmp_path)
    whole = ids(store.queue(limit=100))
    assert sorted(whole) == [f"s-{i:02d}" for i in range(12)]
    pages = [ids(store.queue(limit=5, offset=offset)) for offset in (0, 5, 10)]
    assert [i for page in pages for i in page] == whole  # nothing seen twice, nothing missed
    assert ids(store.queue(limit=5, offset=5)) == pages[1]  # asked again: the same page
    reopened = LabelStore(store.url, QueueConfig())  # another replica agrees
    assert ids(reopened.queue(limit=100)) == whole


def test_a_labelled_sample_leaves_and_the_queue_is_ranked_again(tmp_path: Path) -> None:
    store = filled(tmp_path)
    first, *rest = ids(store.queue(limit=100))
    store.submit_label(first, "positive", "ann")
    after = ids(store.queue(limit=100))
    assert first not in after and sorted(after) == sorted(rest)
    assert after == ids(LabelStore(store.url, QueueConfig()).queue(limit=100))


def test_places_after_the_greedy_depth_follow_the_score_and_duplicates_come_last(
    tmp_path: Path,
) -> None:
    config = QueueConfig(depth=3)
    store = filled(tmp_path, config, n=8)
    copy = TEXTS[0] + "。"  # a near-copy of s-00, captured as the least certain of all
    store.add_samples([capture(8, copy, 0.5)])
    whole = store.queue(limit=100)
    pages = [store.queue(limit=2, offset=o) for o in range(0, 10, 2)]
    assert [i.id for page in pages for i in page] == ids(whole)
    assert len(whole) == 9 and whole[0].id == "s-08"
    assert whole[-1].id == "s-00" and whole[-1].duplicate_of == "s-08"
    scores = [q.score_parts["uncertainty"] for q in whole[3:-1]]
    assert scores == sorted(scores, reverse=True)


def test_predicted_classes_alternate_at_the_top() -> None:
    # the five most uncertain texts are all predicted negative; with a penalty of 0.1 per text
    # of the same class above an even share the positive ones come in between
    proba = np.array([[0.52, 0.48]] * 5 + [[0.47, 0.53]] * 5)
    texts = TEXTS[:10]
    keys = [str(i) for i in range(10)]
    on = RankingConfig(weights=RankingWeights(balance=0.1))
    balanced = rank(keys, texts, proba, config=on)
    assert [int(k) >= 5 for k in ids(balanced)[:4]] == [False, True, False, True]
    assert all(item.parts["balance_penalty"] == 0.0 for item in balanced[:4])
    # much surer positives: the negatives keep the top, paying for their number
    lopsided = rank(keys[:6], texts[:6], np.array([[0.5, 0.5]] * 4 + [[0.3, 0.7]] * 2), config=on)
    assert ids(lopsided)[:3] == ["0", "1", "2"]
    assert lopsided[2].parts["balance_penalty"] == pytest.approx(-0.1)
    assert "predicted class" in lopsided[2].reason
    assert ids(rank(keys, texts, proba))[:5] == ["0", "1", "2", "3", "4"]  # off by default


def test_a_longer_ranking_starts_with_the_shorter_one() -> None:
    rng = np.random.default_rng(3)
    proba = rng.dirichlet([1.0, 1.0, 1.0], size=len(TEXTS))
    keys = [str(i) for i in range(len(TEXTS))]
    whole = ids(rank(keys, TEXTS, proba))
    ranker = Ranker(keys, TEXTS, proba)
    assert ids(ranker.items(0, 4)) + ids(ranker.items(4, 9)) == whole[:9]
    assert ids(rank(keys, TEXTS, proba, limit=6)) == whole[:6]


def test_drift_and_business_come_from_the_capture_and_the_class_value() -> None:
    pending = [
        Pending("plain", TEXTS[0], "negative", {"negative": 0.6, "positive": 0.4}),
        Pending("drift", TEXTS[1], "negative", {"negative": 0.6, "positive": 0.4}, {"drift": 0.9}),
        Pending("paid", TEXTS[2], "positive", {"negative": 0.4, "positive": 0.6}),
    ]
    config = QueueConfig(class_value={"positive": 2.0})
    placed = RankedQueue(pending, config).page(0, 3)
    assert [p.sample.id for p in placed] == ["paid", "drift", "plain"]
    assert placed[0].ranked.parts["business"] == pytest.approx(2.0)
    assert placed[1].ranked.parts["drift"] == pytest.approx(0.2 * 0.9)


def test_the_cache_ranks_once_per_state_and_reads_only_new_samples() -> None:
    reads: list[list[str]] = []
    pending = {f"p{i}": Pending(f"p{i}", t, "a", {"a": 0.5, "b": 0.5}) for i, t in enumerate(TEXTS)}

    def load(missing) -> list[Pending]:
        reads.append(list(missing))
        return [pending[i] for i in missing]

    cache = QueueCache(QueueConfig())
    first = cache.get(["p0", "p1", "p2"], load)
    assert cache.get(["p0", "p1", "p2"], load) is first
    assert reads == [["p0", "p1", "p2"]]
    later = cache.get(["p1", "p2", "p3"], load)  # p0 labelled, p3 captured
    assert reads[-1] == ["p3"] and later is not first
    assert [p.id for p in later.pending] == ["p1", "p2", "p3"]


def test_settings_come_from_the_environment() -> None:
    config = load_queue_config(
        {
            "TEXTOPS_LABEL_WEIGHTS": "drift=0.5, balance=0.3",
            "TEXTOPS_LABEL_CLASS_VALUE": "negative=1.5",
            "TEXTOPS_LABEL_DUPLICATE_THRESHOLD": "0.9",
            "TEXTOPS_LABEL_RANK_DEPTH": "200",
        }
    )
    assert config.ranking.weights == RankingWeights(drift=0.5, balance=0.3)
    assert config.ranking.duplicate_threshold == 0.9
    assert config.class_value == {"negative": 1.5} and config.depth == 200
    assert load_queue_config({}) == QueueConfig()
    with pytest.raises(TextopsError, match="unknown part 'speed'"):
        load_queue_config({"TEXTOPS_LABEL_WEIGHTS": "speed=1"})
    with pytest.raises(TextopsError, match="TEXTOPS_LABEL_RANK_DEPTH"):
        load_queue_config({"TEXTOPS_LABEL_RANK_DEPTH": "0"})
    with pytest.raises(TextopsError, match="must be a number"):
        load_queue_config({"TEXTOPS_LABEL_DUPLICATE_THRESHOLD": "high"})


def test_an_empty_queue_and_a_page_past_its_end_are_empty(tmp_path: Path) -> None:
    store = LabelStore(f"sqlite:///{tmp_path}/labels.db", QueueConfig())
    assert store.queue() == []
    store.add_samples([capture(0, TEXTS[0], 0.6)])
    assert ids(store.queue()) == ["s-00"] and store.queue(offset=5) == []


def test_drift_is_measured_by_the_serving_side_not_taken_from_the_capture() -> None:
    """With a measure, the capture's stored drift is ignored: a text the current traffic's
    shift marks comes first and says why; an old capture's high drift counts for nothing."""
    pending = [
        Pending(
            "old-shift", TEXTS[2], "negative", {"negative": 0.6, "positive": 0.4}, {"drift": 1.0}
        ),
        Pending("unsure", TEXTS[1], "negative", {"negative": 0.55, "positive": 0.45}),
        Pending("new-shift", TEXTS[6], "positive", {"negative": 0.05, "positive": 0.95}),
    ]
    measure = DriftMeasure(
        "m/1",
        "shift",
        rarity=lambda text: 0.5,
        evidence=lambda text: (
            "shares n-grams new in recent traffic (入住)" if "入住" in text else ""
        ),
    )
    placed = RankedQueue(pending, QueueConfig(), measure).page(0, 3)
    assert [p.sample.id for p in placed] == ["new-shift", "unsure", "old-shift"]
    assert placed[0].ranked.reason.startswith("drifted: shares n-grams new in recent traffic")
    assert placed[2].ranked.parts["drift"] == pytest.approx(0.2 * 0.5)


def test_the_cache_measures_each_sample_once_per_reference_and_shift() -> None:
    """Rarity is measured once per sample and reference; evidence once per sample and shift
    (the shift changes with every drift evaluation, the reference only with a new model)."""
    rarities: list[str] = []
    evidences: list[str] = []
    pending = {f"p{i}": Pending(f"p{i}", t, "a", {"a": 0.5, "b": 0.5}) for i, t in enumerate(TEXTS)}

    def rarity(text: str) -> float:
        rarities.append(text)
        return 0.1

    def evidence(text: str) -> str:
        evidences.append(text)
        return ""

    def measure(reference: str, shift: str) -> DriftMeasure:
        return DriftMeasure(reference, shift, rarity, evidence)

    cache = QueueCache(QueueConfig())
    load = lambda missing: [pending[i] for i in missing]  # noqa: E731
    first = cache.get(["p0", "p1"], load, measure("v1", "no-shift"))
    assert rarities == evidences == [TEXTS[0], TEXTS[1]]
    assert cache.get(["p0", "p1"], load, measure("v1", "no-shift")) is first
    cache.get(["p0", "p1", "p2"], load, measure("v1", "no-shift"))  # a new capture
    assert rarities[2:] == evidences[2:] == [TEXTS[2]]
    cache.get(["p0", "p1", "p2"], load, measure("v1", "shift-a"))  # the shift changed
    assert rarities[3:] == [] and evidences[3:] == TEXTS[:3]
    cache.get(["p0", "p1", "p2"], load, measure("v2", "shift-a"))  # a new model
    assert rarities[3:] == TEXTS[:3] and evidences[6:] == TEXTS[:3]
