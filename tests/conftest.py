"""Shared fixtures. Real servers and the real control plane come from the plugins below."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from textops.settings import Settings, load_settings

pytest_plugins = ("tests.plugins.servers", "tests.plugins.cluster")

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
