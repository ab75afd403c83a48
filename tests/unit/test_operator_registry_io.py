"""The registry probe cache: a server that just answered is not probed before every question."""

from __future__ import annotations

from pathlib import Path

import pytest

from textops.errors import TrackingUnavailableError
from textops.operator import registry_io

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
    registry_io.client_for(URI)
    registry_io.client_for(URI)
    assert probes == [URI]
    clock[0] += registry_io.PROBE_TTL_S + 1
    registry_io.client_for(URI)
    assert probes == [URI, URI]


def test_a_failed_probe_is_reported_and_not_cached(monkeypatch: pytest.MonkeyPatch) -> None:
    def down(uri: str) -> None:
        raise TrackingUnavailableError(f"MLflow tracking server {uri} is unreachable")

    monkeypatch.setattr(registry_io, "probe", down)
    monkeypatch.setattr(registry_io, "_answered", {})
    with pytest.raises(registry_io.Unavailable, match="unreachable"):
        registry_io.client_for(URI)
    assert URI not in registry_io._answered


def test_local_stores_are_never_probed(probes: list[str], tmp_path: Path) -> None:
    registry_io.client_for(f"sqlite:///{tmp_path / 'mlflow.db'}")
    assert probes == []
