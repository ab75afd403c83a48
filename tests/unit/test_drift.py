"""Online drift detection: known shifts are flagged, in-distribution windows stay quiet.

The reference is built from the built-in review corpus (pinned split, like training) with
synthetic probabilities standing in for a model, so the test needs no training and is fast.
"""

from __future__ import annotations

import json
import threading
from functools import cache

import numpy as np
import pytest

from textops.data.sources import builtin_corpus
from textops.data.split import split_indices
from textops.data.validation import validate_records
from textops.monitoring.drift import (
    FEATURE_STATISTICS,
    PREDICTION_STATISTICS,
    CalibrationParams,
    DriftMonitor,
    DriftResult,
    Thresholds,
    js_distance,
)
from textops.monitoring.reference import build_reference_profile

WINDOW = 500
CLASSES = ["negative", "positive"]
# not reviews: classical poems and news-like sentences, written for this test
FOREIGN = [
    "床前明月光，疑是地上霜。举头望明月，低头思故乡。",
    "白日依山尽，黄河入海流。欲穷千里目，更上一层楼。",
    "春眠不觉晓，处处闻啼鸟。夜来风雨声，花落知多少。",
    "锄禾日当午，汗滴禾下土。谁知盘中餐，粒粒皆辛苦。",
    "千山鸟飞绝，万径人踪灭。孤舟蓑笠翁，独钓寒江雪。",
    "国务院总理主持召开常务会议，部署进一步扩大对外开放的各项措施。",
    "新华社记者从国家统计局获悉，全国粮食总产量连续第五年保持稳定增长。",
    "联合国安理会就地区局势举行紧急磋商，各方呼吁通过对话解决分歧。",
    "省政府召开全省农业农村工作会议，总结去年工作并部署今年重点任务。",
    "我国科学家在量子通信领域取得重大突破，相关成果发表于国际期刊。",
    "近日，市交通部门宣布将新建三条地铁线路，预计五年内全部建成通车。",
    "据气象台预报，受冷空气影响，北方大部地区将出现大风降温天气。",
]


def fake_proba(labels: list[str], rng: np.random.Generator) -> np.ndarray:
    """An 85%-accurate classifier's probabilities, confidence ~ U(0.55, 1)."""
    truth = np.array([CLASSES.index(label) for label in labels])
    right = rng.random(len(labels)) < 0.85
    top = np.where(right, truth, 1 - truth)
    confidence = rng.uniform(0.55, 1.0, len(labels))
    proba = np.empty((len(labels), 2))
    proba[np.arange(len(labels)), top] = confidence
    proba[np.arange(len(labels)), 1 - top] = 1 - confidence
    return proba


@cache
def corpus() -> dict[str, list]:
    rows = validate_records(builtin_corpus(), drop_duplicates=True).rows
    texts, labels = [r.text for r in rows], [r.label for r in rows]
    train, hold = split_indices(texts)
    # the "live" traffic: a part of the training split the reference is not built from; the
    # reference uses two fifths of the rest, which keeps the test fast
    live, fit = train[::5], [i for k, i in enumerate(train) if k % 5 in (1, 2)]
    rng = np.random.default_rng(0)
    hold_x, hold_y = [texts[i] for i in hold], [labels[i] for i in hold]
    profile = build_reference_profile(
        [texts[i] for i in fit],
        [labels[i] for i in fit],
        CLASSES,
        fake_proba(hold_y, rng),
        holdout_texts=hold_x,
        calibration=CalibrationParams(windows=200, window_sizes=(200, 500, 1000)),
    )
    live_y = [labels[i] for i in live]
    return {
        "profile": [profile],
        "live_x": [texts[i] for i in live],
        "live_y": live_y,
        "live_p": list(fake_proba(live_y, rng)),
    }


def window(rng: np.random.Generator, indices: list[int], n: int = WINDOW) -> list[int]:
    return [int(i) for i in rng.choice(indices, size=n, replace=False)]


def feed(monitor: DriftMonitor, picks: list[int]) -> None:
    data = corpus()
    for i in picks:
        monitor.observe(data["live_x"][i], data["live_p"][i])


def test_profile_carries_calibrated_thresholds_and_is_json() -> None:
    profile = corpus()["profile"][0]
    drift = profile["drift"]
    assert drift["window_sizes"] == [200, 500, 1000]
    assert set(drift["thresholds"]) == set(FEATURE_STATISTICS + PREDICTION_STATISTICS)
    for name, values in drift["thresholds"].items():
        # noise shrinks with the window, so must the thresholds (a z-score stays ~flat)
        assert values[0] * (1.2 if name == "ngram_presence_z" else 1) >= values[-1] > 0, name
    assert 0.04 <= profile["rarity"]["tail_share"] <= 0.06
    assert 0.5 < profile["confidence"]["mean"] < 1
    json.loads(json.dumps(profile))


def test_in_distribution_windows_stay_quiet() -> None:
    data = corpus()
    monitor = DriftMonitor(data["profile"][0], window=WINDOW)
    rng = np.random.default_rng(1)
    everyone = list(range(len(data["live_x"])))
    for _ in range(5):
        monitor.reset()
        feed(monitor, window(rng, everyone))
        report = monitor.evaluate()
        assert not report.drifted, [r for r in report.results() if r.statistic > r.threshold]
        assert report.samples == WINDOW


def test_domain_mix_is_flagged_and_foreign_texts_are_the_suspects() -> None:
    data = corpus()
    monitor = DriftMonitor(data["profile"][0], window=WINDOW, top_k=10)
    rng = np.random.default_rng(2)
    feed(monitor, window(rng, list(range(len(data["live_x"]))), WINDOW - 50))
    for k in range(50):  # 10% foreign texts
        monitor.observe(FOREIGN[k % len(FOREIGN)], [0.5, 0.5])
    report = monitor.evaluate()
    assert report.feature.drifted
    flagged = {r.name for r in report.components if r.drifted}
    assert "rare_text_share" in flagged
    assert sum(s.text in FOREIGN for s in report.suspects) >= 8
    # each suspect keeps the probabilities it was observed with: no second classification
    foreign = [s for s in report.suspects if s.text in FOREIGN]
    assert foreign and all(s.proba == (0.5, 0.5) for s in foreign)


def test_topical_shift_is_flagged() -> None:
    data = corpus()
    monitor = DriftMonitor(data["profile"][0], window=WINDOW)
    hotel = [i for i, t in enumerate(data["live_x"]) if "酒店" in t or "房间" in t]
    feed(monitor, window(np.random.default_rng(3), hotel))
    report = monitor.evaluate()
    assert report.feature.drifted
    assert any(r.name == "char_ngram_js" and r.drifted for r in report.components)


def test_label_prior_shift_is_prediction_drift() -> None:
    data = corpus()
    monitor = DriftMonitor(data["profile"][0], window=WINDOW)
    rng = np.random.default_rng(4)
    negative = [i for i, y in enumerate(data["live_y"]) if y == "negative"]
    positive = [i for i, y in enumerate(data["live_y"]) if y == "positive"]
    feed(monitor, window(rng, negative, 400) + window(rng, positive, 100))  # 80% negative
    report = monitor.evaluate()
    assert report.prediction.drifted
    assert any(r.name == "class_js" and r.drifted for r in report.components)


def test_confidence_collapse_is_prediction_drift() -> None:
    data = corpus()
    monitor = DriftMonitor(data["profile"][0], window=WINDOW)
    for i in window(np.random.default_rng(5), list(range(len(data["live_x"])))):
        monitor.observe(data["live_x"][i], [0.45, 0.55] if i % 2 else [0.55, 0.45])
    report = monitor.evaluate()
    assert report.prediction.drifted and not report.feature.drifted
    drifted = {r.name for r in report.components if r.drifted}
    assert {"confidence_js", "confidence_shift"} <= drifted


def test_nothing_is_flagged_below_the_minimum_window() -> None:
    monitor = DriftMonitor(corpus()["profile"][0], window=WINDOW, min_samples=100)
    for k in range(99):
        monitor.observe(FOREIGN[k % len(FOREIGN)], [0.99, 0.01])
    report = monitor.evaluate()
    assert report.samples == 99 and not report.drifted
    assert report.feature.statistic > 1  # the statistics are computed, just not acted upon
    monitor.observe(FOREIGN[0], [0.99, 0.01])
    assert monitor.evaluate().drifted


def test_results_carry_statistic_threshold_and_samples() -> None:
    monitor = DriftMonitor(corpus()["profile"][0], window=WINDOW)
    feed(monitor, list(range(300)))
    monitor.observe("一条没有概率的请求", None)  # feature-only observation
    report = monitor.evaluate()
    names = [r.name for r in report.results()]
    assert names == ["feature", "prediction", *FEATURE_STATISTICS, *PREDICTION_STATISTICS]
    for result in report.results():
        assert isinstance(result, DriftResult)
        assert np.isfinite(result.statistic) and result.threshold > 0
        expected = 301 if result.kind == "feature" else 300
        assert result.samples == expected, result
    assert report.feature.threshold == 1.0
    as_dict = report.to_dict()
    assert as_dict["results"][2]["name"] == "char_ngram_js"
    gauges = {(name, labels["statistic"]): value for name, labels, value in report.gauges()}
    assert gauges["textops_feature_drift_threshold", "overall"] == 1.0
    assert gauges["textops_prediction_drift_window_samples", "class_js"] == 300
    assert gauges["textops_feature_drift_detected", "rare_text_share"] in (0.0, 1.0)


def test_observe_is_incremental_and_the_window_slides() -> None:
    """Totals equal a from-scratch window after many evictions; memory stays at the window."""
    data = corpus()
    profile = data["profile"][0]
    sliding = DriftMonitor(profile, window=200)
    feed(sliding, list(range(1000)))
    fresh = DriftMonitor(profile, window=200)
    feed(fresh, list(range(800, 1000)))
    assert sliding.samples == 200 and sliding.observed == 1000
    np.testing.assert_allclose(sliding._totals, fresh._totals, atol=1e-9)
    a, b = sliding.evaluate(), fresh.evaluate()
    for x, y in zip(a.results(), b.results(), strict=True):
        assert x.statistic == pytest.approx(y.statistic, abs=1e-9)
    # an observation touches counters in proportion to its text, never the whole window
    obs = sliding.reference.summarise("房间很干净", [0.2, 0.8])
    grams = 5 + 4  # uni- and bigrams
    assert len(obs.index) <= 2 * grams + 12 < sliding.reference.layout.size


def test_concurrent_observers_lose_no_update() -> None:
    data = corpus()
    monitor = DriftMonitor(data["profile"][0], window=10_000)

    def worker(offset: int) -> None:
        for i in range(offset, offset + 250):
            monitor.observe(data["live_x"][i], data["live_p"][i])
            if i % 50 == 0:
                monitor.evaluate()

    threads = [threading.Thread(target=worker, args=(k * 250,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    report = monitor.evaluate()
    assert report.samples == 1000 and report.prediction.samples == 1000


def test_thresholds_fall_back_and_scale_with_the_window() -> None:
    profile = corpus()["profile"][0]
    calibrated = Thresholds(profile)
    sizes = profile["drift"]["window_sizes"]
    table = profile["drift"]["thresholds"]["char_ngram_js"]
    assert calibrated("char_ngram_js", sizes[1]) == pytest.approx(table[1])
    assert table[2] <= calibrated("char_ngram_js", 700) <= table[1]
    assert calibrated("char_ngram_js", 5000) == pytest.approx(table[-1])
    assert calibrated("char_ngram_js", 50) == pytest.approx(table[0] * 2)
    assert Thresholds(profile, {"class_js": 0.5})("class_js", 300) == 0.5
    uncalibrated = Thresholds({})
    assert uncalibrated("class_js", 250) == pytest.approx(2 * uncalibrated("class_js", 1000))


def test_profile_without_holdout_texts_still_monitors() -> None:
    texts = ["房间很好", "服务差!", "abc 很一般", "书的情节不错？"] * 10
    proba = np.tile([[0.9, 0.1], [0.3, 0.7]], (20, 1))
    profile = build_reference_profile(texts, ["p", "n"] * 20, ["n", "p"], proba)
    assert "drift" not in profile and "rarity" not in profile
    monitor = DriftMonitor(profile, min_samples=10)
    for text in texts:
        monitor.observe(text, [0.2, 0.8])
    names = {r.name for r in monitor.evaluate().components}
    assert "rare_text_share" not in names and "class_js" in names


def test_js_distance_bounds() -> None:
    p = np.array([0.5, 0.5, 0.0])
    assert js_distance(np.array([5, 5, 0]), p)[0] == pytest.approx(0.0)
    assert js_distance(np.array([0, 0, 7]), p)[0] == pytest.approx(1.0)
    assert np.isnan(js_distance(np.zeros(3), p)[0])
