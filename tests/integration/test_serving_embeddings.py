"""A model with a sentence encoder, served for real: its drift window watches the embeddings.

The encoder is the tiny random BERT of tests/conftest.py (built locally, nothing downloaded):
a weak encoder, but any encoder maps newspaper sentences away from synthetic reviews, which is
all this test needs to see ``embedding_mean_z`` published, quiet in distribution and rising
under a shift, through the service's own /metrics.
"""

from __future__ import annotations

import urllib.request
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.served_model import MODEL, call, serve_champion
from tests.synthetic import make_rows
from textops.data.sources import news_sentences
from textops.processes import wait_until

pytestmark = pytest.mark.integration

WINDOW = 200
MAX_TEXTS = 50
STATISTIC = "embedding_mean_z"


def _gauges(url: str) -> dict[str, float]:
    """statistic, threshold and window_samples of the embedding component, as published."""
    with urllib.request.urlopen(f"{url}/metrics", timeout=10) as response:
        text = response.read().decode()
    found = {}
    for line in text.splitlines():
        if line.startswith("textops_feature_drift_") and f'statistic="{STATISTIC}"' in line:
            part = line.split("{", 1)[0].removeprefix("textops_feature_drift_")
            if f'model="{MODEL}"' in line:
                found[part] = float(line.rsplit(" ", 1)[1])
    return found


def _window(url: str, holds: Callable[[dict[str, float]], bool]) -> dict[str, float] | None:
    gauges = _gauges(url)
    if gauges.get("window_samples", 0) < WINDOW or "statistic" not in gauges:
        return None
    return gauges if holds(gauges) else None


def test_embedding_drift_is_quiet_in_distribution_and_rises_on_news(
    tmp_path: Path, tiny_bert: Path
) -> None:
    with serve_champion(
        tmp_path,
        "textops-serve-embeddings",
        train_args=("--embeddings-dir", str(tiny_bert)),
        TEXTOPS_DRIFT_WINDOW=str(WINDOW),
        TEXTOPS_DRIFT_INTERVAL_S="1",
        TEXTOPS_DRIFT_SAMPLES_PER_S="0",  # every text: the test sends bursts
    ) as (url, _proc):

        def send(texts: list[str]) -> None:
            for i in range(0, len(texts), MAX_TEXTS):
                assert call(f"{url}/predict", {"texts": texts[i : i + MAX_TEXTS]})[0] == 200

        send([t for t, _ in make_rows(n_per_class=70, classes=3, seed=11)][:WINDOW])
        quiet = wait_until(
            lambda: _window(url, lambda g: True), timeout=90, what="a full drift window"
        )
        assert quiet["statistic"] <= quiet["threshold"], quiet
        assert 0 < quiet["threshold"] < 100, quiet  # calibrated at training time, finite

        send(news_sentences(WINDOW, 200))
        drifted = wait_until(
            lambda: _window(url, lambda g: g["statistic"] > g["threshold"]),
            timeout=90,
            what=f"{STATISTIC} to cross its threshold on newspaper sentences",
        )
        assert drifted["statistic"] > max(quiet["statistic"], drifted["threshold"]), drifted
        assert drifted["detected"] == 1, drifted
