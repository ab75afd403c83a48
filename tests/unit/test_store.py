"""The local dataset store (the embedded default); the S3 one runs in integration tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from textops.data.dataset import Row, build_dataset
from textops.data.store import DatasetStore, LocalBlobs, open_store
from textops.errors import CorruptDatasetError, DatasetNotFoundError, TextopsError
from textops.settings import Settings


def _store(tmp_path: Path) -> DatasetStore:
    return DatasetStore(LocalBlobs(tmp_path / "ds"))


def test_put_get_list_and_idempotent_put(tmp_path: Path) -> None:
    store = _store(tmp_path)
    first = build_dataset([Row("好", "a"), Row("坏", "b")], source="t")
    second = build_dataset(
        [Row("好", "a"), Row("坏", "b"), Row("中", "c")], source="t", parent=first.id
    )
    assert store.put(first) is True
    assert store.put(first) is False
    assert store.put(second) is True
    assert store.get(first.id).rows == first.rows
    assert {m.id for m in store.list()} == {first.id, second.id}
    assert store.get(first.id[:8]).id == first.id
    assert store.manifest(second.id).parent == first.id


def test_latest_is_newest_by_creation_time(tmp_path: Path) -> None:
    from datetime import UTC, datetime

    store = _store(tmp_path)
    old = build_dataset(
        [Row("旧", "a"), Row("老", "b")], "t", created_at=datetime(2020, 1, 1, tzinfo=UTC)
    )
    new = build_dataset(
        [Row("新", "a"), Row("鲜", "b")], "t", created_at=datetime(2026, 1, 1, tzinfo=UTC)
    )
    store.put(new)
    store.put(old)
    assert store.resolve("latest") == new.id


def test_missing_and_corrupt_versions_are_clear_errors(tmp_path: Path) -> None:
    store = _store(tmp_path)
    with pytest.raises(DatasetNotFoundError, match="snapshot"):
        store.get("latest")
    with pytest.raises(DatasetNotFoundError, match="no dataset 'ds-nope'"):
        store.get("ds-nope")
    ds = build_dataset([Row("好", "a"), Row("坏", "b")], source="t")
    store.put(ds)
    rows = tmp_path / "ds" / ds.id / "rows.jsonl"
    rows.write_bytes(rows.read_bytes().replace("好".encode(), "差".encode()))
    with pytest.raises(CorruptDatasetError, match="corrupted"):
        store.get(ds.id)


def test_interrupted_write_is_invisible(tmp_path: Path) -> None:
    store = _store(tmp_path)
    ds = build_dataset([Row("好", "a"), Row("坏", "b")], source="t")
    store.blobs.write(f"{ds.id}/rows.jsonl", b"partial")  # crashed before the manifest
    assert store.list() == []
    assert store.put(ds) is True  # the retry completes the version
    assert store.get(ds.id).rows == ds.rows


def test_s3_uri_without_endpoint_is_refused(settings: Settings) -> None:
    with pytest.raises(TextopsError, match="needs an S3 endpoint"):
        open_store("s3://datasets/reviews", settings)
    with pytest.raises(TextopsError, match="names no bucket"):
        open_store("s3:///reviews", settings)
