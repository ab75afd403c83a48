"""The operator's PromQL: every query of one observation names its ModelDeployment."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from textops.operator import prometheus_io

SCOPE = 'model="m",version="2",namespace="prod",modeldeployment="reviews"'


@pytest.fixture
def asked(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    expressions: list[str] = []

    def answer(base_url: str, expr: str) -> float | None:
        expressions.append(expr)
        if "window_samples" in expr:
            return 500.0
        return 300.0 if "feedback" in expr else 0.5

    def answer_vector(base_url: str, expr: str) -> list[dict[str, Any]]:
        expressions.append(expr)
        confusion = {("S", "S"): 90.0, ("S", "T"): 10.0}  # T never predicted: its F1 is 0
        return [
            {"metric": {"predicted": p, "actual": a}, "value": [0, str(n)]}
            for (p, a), n in confusion.items()
        ]

    monkeypatch.setattr(prometheus_io, "query", answer)
    monkeypatch.setattr(prometheus_io, "query_vector", answer_vector)
    return expressions


def test_every_query_of_an_observation_is_scoped_to_the_modeldeployment(asked: list[str]) -> None:
    got = prometheus_io.observe("http://p", "m", "2", timedelta(hours=1), "prod", "reviews")
    assert got.feature_drift == 0.5 and got.quality_samples == 300
    assert asked == [
        f'max(textops_feature_drift_statistic{{{SCOPE},statistic="overall"}})',
        f"sum(textops_feature_drift_window_samples{{{SCOPE}}})",
        f'max(textops_prediction_drift_statistic{{{SCOPE},statistic="overall"}})',
        f"sum(textops_prediction_drift_window_samples{{{SCOPE}}})",
        f"sum(increase(textops_feedback_total{{{SCOPE}}}[3600s]))",
        f'sum(increase(textops_feedback_total{{{SCOPE},outcome="correct"}}[3600s]))',
    ]
    assert got.quality == 1.0  # 300 correct of 300 (the stub's answers)


def test_macro_f1_is_read_from_the_confusion_counts_of_the_window(asked: list[str]) -> None:
    got = prometheus_io.observe(
        "http://p", "m", "2", timedelta(minutes=10), "prod", "reviews", "macro_f1"
    )
    assert asked[-2:] == [
        f"sum(increase(textops_feedback_total{{{SCOPE}}}[600s]))",
        f"sum by (predicted, actual) (increase(textops_feedback_labels_total{{{SCOPE}}}[600s]))",
    ]
    assert got.quality == pytest.approx((180 / 190 + 0) / 2) and got.quality_samples == 300


def test_label_values_are_quoted(asked: list[str]) -> None:
    prometheus_io.observe("http://p", 'm"x', "2", timedelta(hours=1), "ns", "a\\b")
    assert all('model="m\\"x"' in e and 'modeldeployment="a\\\\b"' in e for e in asked)


def test_new_labels_are_the_label_stores_count_of_labels_no_dataset_holds(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    asked: list[str] = []

    def answer(base_url: str, expr: str) -> float | None:
        asked.append(expr)
        return 42.0

    monkeypatch.setattr(prometheus_io, "query", answer)
    assert prometheus_io.new_labels("http://p", "m", timedelta(minutes=5)) == 42
    assert asked == ['max(textops_labels_unexported{model="m"})']


def test_without_the_label_stores_gauge_new_labels_are_the_feedback(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    asked: list[str] = []

    def answer(base_url: str, expr: str) -> float | None:
        asked.append(expr)
        return None if "unexported" in expr else 300.0

    monkeypatch.setattr(prometheus_io, "query", answer)
    assert prometheus_io.new_labels("http://p", "m", timedelta(minutes=5)) == 300
    assert asked[1:] == ['sum(increase(textops_feedback_total{model="m"}[300s]))']
