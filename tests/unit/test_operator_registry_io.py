"""The registry probe cache (a server that just answered is not probed before every question)
and the refusal of a tracking URI that is no server."""

from __future__ import annotations

from pathlib import Path

import pytest

from textops.errors import TrackingUnavailableError
from textops.operator import registry_io
from textops.operator.config import load_config

URI = "http://mlflow.example:5000"


@pytest.fixture
def probes(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    calls: list[str] = []
    monkeypatch.setattr(registry_io, "probe", calls.append)
    monkeypatch.setattr(registry_io, "_answered", {})
    return calls


def test_probe_is_skipped_while_the_server_answered_recently(
    probes: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = [1000.0]
    monkeypatch.setattr(registry_io.time, "monotonic", lambda: clock[0])
    registry_io.reachable(URI)
    registry_io.reachable(URI)
    assert probes == [URI]
    clock[0] += registry_io.PROBE_TTL_S + 1
    registry_io.reachable(URI)
    assert probes == [URI, URI]


def test_a_failed_probe_is_reported_and_not_cached(monkeypatch: pytest.MonkeyPatch) -> None:
    def down(uri: str) -> None:
        raise TrackingUnavailableError(f"MLflow tracking server {uri} is unreachable")

    monkeypatch.setattr(registry_io, "probe", down)
    monkeypatch.setattr(registry_io, "_answered", {})
    with pytest.raises(registry_io.Unavailable, match="unreachable"):
        registry_io.reachable(URI)
    assert URI not in registry_io._answered


def test_a_local_store_is_refused_with_the_reason(probes: list[str], tmp_path: Path) -> None:
    with pytest.raises(registry_io.Unavailable, match="needs an MLflow tracking server"):
        registry_io.reachable(f"sqlite:///{tmp_path / 'mlflow.db'}")
    assert probes == []


def test_the_operator_refuses_to_start_without_a_tracking_server() -> None:
    with pytest.raises(ValueError, match="MLFLOW_TRACKING_URI='file:///tmp/mlruns'"):
        load_config({"MLFLOW_TRACKING_URI": "file:///tmp/mlruns"})
