"""The demo's world: who trains on what, and which texts each traffic phase sends."""

from __future__ import annotations

import pytest

from textops.data.dataset import Row
from textops.demo.report import confusion
from textops.demo.scenario import (
    KNOWN_SEGMENT,
    NEW_SEGMENT,
    Sample,
    accuracy_by_segment,
    build_scenario,
    feedback_sample,
    phase_traffic,
    segment_of,
)


def _rows() -> list[Row]:
    known = [Row(f"这本书第{i}页很好看", "positive" if i % 2 else "negative") for i in range(300)]
    hotel = [Row(f"酒店房间{i}号很干净", "positive" if i % 3 else "negative") for i in range(200)]
    essay = [Row("长" * 3000, "positive")]
    return known + hotel + essay


def test_segments_follow_the_hotel_words() -> None:
    assert segment_of("前台服务很好") == NEW_SEGMENT
    assert segment_of("这台电脑的屏幕不错") == KNOWN_SEGMENT


def test_first_training_set_is_known_segment_only_and_never_sent_as_traffic() -> None:
    scenario = build_scenario(_rows(), first_training_rows=100, seed=1)
    first = {r.text for r in scenario.first_training}
    assert len(first) == 100
    assert all(segment_of(t) == KNOWN_SEGMENT for t in first)
    live = {s.text for s in (*scenario.known_pool, *scenario.new_pool)}
    assert not first & live
    assert len(scenario.new_pool) == 200 and len(scenario.known_pool) == 200
    assert all(len(t) <= 2000 for t in live)  # the 3,000-character essay is left out


def test_phases_have_the_planned_mix_and_never_share_a_text() -> None:
    scenario = build_scenario(_rows(), first_training_rows=100, seed=1)
    phases = phase_traffic(scenario, [(50, 0.0), (100, 0.3), (100, 0.3)], seed=2)
    assert [len(p) for p in phases] == [50, 100, 100]
    assert [sum(s.segment == NEW_SEGMENT for s in p) for p in phases] == [0, 30, 30]
    texts = [s.text for p in phases for s in p]
    assert len(texts) == len(set(texts))
    truth = scenario.truth()
    assert all(truth[s.text] == s.label for p in phases for s in p)


def test_a_plan_larger_than_the_pools_is_refused() -> None:
    scenario = build_scenario(_rows(), first_training_rows=100, seed=1)
    with pytest.raises(ValueError, match="not enough live texts"):
        phase_traffic(scenario, [(300, 0.9)], seed=0)
    with pytest.raises(ValueError, match=r"in \[0, 1\]"):
        phase_traffic(scenario, [(10, 1.5)], seed=0)


def test_feedback_sample_and_accuracy_per_segment() -> None:
    samples = [Sample("a", "x", KNOWN_SEGMENT), Sample("b", "y", NEW_SEGMENT)] * 5
    picked = feedback_sample(samples, 0.3, seed=0)
    assert len(picked) == 3 and len(set(picked)) == 3
    predicted = ["x", "x"] * 5  # right on every known text, wrong on every new one
    assert accuracy_by_segment(samples, predicted) == {
        KNOWN_SEGMENT: 1.0,
        NEW_SEGMENT: 0.0,
        "all": 0.5,
    }
    assert confusion(["x", "y", "y"], ["x", "x", "y"], ["x", "y"]) == [[1, 0], [1, 1]]
