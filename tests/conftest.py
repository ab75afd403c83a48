"""Shared fixtures. Real servers and the real control plane come from the plugins below."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.synthetic import make_rows
from textops.settings import Settings, load_settings

pytest_plugins = ("tests.plugins.servers", "tests.plugins.cluster", "tests.plugins.images")

# Fail fast instead of retrying for minutes when a server is down (the client default).
os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "2")
os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "60")


@pytest.fixture
def textops_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """An empty embedded TEXTOPS_HOME with every server variable cleared."""
    home = tmp_path / "home"
    for var in (
        "TEXTOPS_DATA_URI",
        "TEXTOPS_LABEL_DB",
        "MLFLOW_TRACKING_URI",
        "TEXTOPS_S3_ENDPOINT",
        "MLFLOW_S3_ENDPOINT_URL",
        "TEXTOPS_ARTIFACTS",
        "TEXTOPS_MODEL_NAME",
        "TEXTOPS_EXPERIMENT",
    ):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("TEXTOPS_HOME", str(home))
    yield home


@pytest.fixture
def settings(textops_home: Path) -> Settings:
    return load_settings()


@pytest.fixture(scope="session")
def tiny_bert(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random BERT (64 positions) over the characters of ``make_rows(80, classes=4)``,
    built locally: no hub, no download. ``vocab-size.json`` records its vocabulary size."""
    from textops.features.embeddings import SPECIAL_TOKENS, save_random_encoder

    texts = [text for text, _ in make_rows(80, classes=4)]
    folder = save_random_encoder(tmp_path_factory.mktemp("tiny-bert"), texts, max_positions=64)
    vocab = SPECIAL_TOKENS + sorted({c for t in texts for c in t if not c.isspace()})
    (folder / "vocab-size.json").write_text(json.dumps(len(vocab)))
    return folder
