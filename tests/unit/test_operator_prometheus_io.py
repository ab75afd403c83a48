"""The operator's PromQL: every query of one observation names its ModelDeployment."""

from __future__ import annotations

from datetime import timedelta

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

    monkeypatch.setattr(prometheus_io, "query", answer)
    return expressions


def test_every_query_of_an_observation_is_scoped_to_the_modeldeployment(asked: list[str]) -> None:
    got = prometheus_io.observe("http://p", "m", "2", timedelta(hours=1), "prod", "reviews")
    assert got.feature_drift == 0.5 and got.quality_samples == 300
    assert asked == [
        f'max(textops_feature_drift_statistic{{{SCOPE},statistic="overall"}})',
        f"sum(textops_feature_drift_window_samples{{{SCOPE}}})",
        f'max(textops_prediction_drift_statistic{{{SCOPE},statistic="overall"}})',
        f"sum(textops_prediction_drift_window_samples{{{SCOPE}}})",
        f"avg(textops_online_accuracy_ratio{{{SCOPE}}})",
        f"sum(increase(textops_feedback_total{{{SCOPE}}}[3600s]))",
    ]


def test_label_values_are_quoted(asked: list[str]) -> None:
    prometheus_io.observe("http://p", 'm"x', "2", timedelta(hours=1), "ns", "a\\b")
    assert all('model="m\\"x"' in e and 'modeldeployment="a\\\\b"' in e for e in asked)


def test_new_labels_count_every_deployment_of_the_model(asked: list[str]) -> None:
    assert prometheus_io.new_labels("http://p", "m", timedelta(minutes=5)) == 300
    assert asked == ['sum(increase(textops_feedback_total{model="m"}[300s]))']
