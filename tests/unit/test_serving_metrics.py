"""The serving metrics expose valid Prometheus names (checked by promtool)."""

from __future__ import annotations

import shutil
import subprocess

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from textops.serving.metrics import ServingMetrics, batch_buckets
from textops.serving.quality import TextQuality


def test_batch_buckets_end_at_the_maximum() -> None:
    assert batch_buckets(64) == (1, 2, 4, 8, 16, 32, 64)
    assert batch_buckets(10) == (1, 2, 4, 8, 10)


def test_every_metric_passes_promtool() -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.fail("promtool is missing: make system-deps installs Debian's prometheus")
    registry = CollectorRegistry()
    metrics = ServingMetrics("reviews", "7", max_batch_size=16, registry=registry)
    metrics.loaded("models:/reviews/7", {"run_id": "abc", "dataset": "ds-1", "trigger": "drift"})
    metrics.request("predict", "ok", 0.01)
    metrics.reject("predict", "empty_text")
    metrics.batch(3)
    metrics.prediction("酒店", 0.9, TextQuality(12, 0.1, 2))
    metrics.feedback_given("酒店", True, "酒店", 1.0, 2.0)
    text = generate_latest(registry)
    check = subprocess.run(
        [promtool, "check", "metrics"], input=text, capture_output=True, timeout=30
    )
    assert check.returncode == 0, check.stdout + check.stderr
    assert not check.stdout.strip() and not check.stderr.strip(), check.stdout + check.stderr
    exposed = text.decode()
    for name in (
        "textops_requests_total",
        "textops_request_duration_seconds_bucket",
        "textops_rejected_requests_total",
        "textops_inference_batch_size_bucket",
        "textops_predictions_total",
        "textops_prediction_confidence_bucket",
        "textops_text_length_characters_bucket",
        "textops_text_non_chinese_ratio_bucket",
        "textops_text_unseen_characters_bucket",
        "textops_feedback_total",
        "textops_feedback_labels_total",
        "textops_online_accuracy_ratio",
        "textops_business_value_total",
        "textops_model_info",
    ):
        assert f"{name}{{" in exposed, name
    assert 'textops_predictions_total{class="酒店",model="reviews",version="7"} 1.0' in exposed
    assert 'textops_business_value_total{model="reviews",version="7"} 2.0' in exposed
