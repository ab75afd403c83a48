"""Dataset versions are immutable and content-addressed; reading verifies the hash."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

import pytest

from textops.data.dataset import (
    Manifest,
    Row,
    build_dataset,
    decode_and_verify,
    encode_rows,
    normalise_text,
)
from textops.errors import CorruptDatasetError

ROWS = [Row("房间很干净", "positive"), Row("服务太差了", "negative"), Row("还行吧", "neutral")]


def test_same_content_gives_same_id_whatever_order_time_parent_or_source() -> None:
    a = build_dataset(ROWS, source="a", created_at=datetime(2020, 1, 1, tzinfo=UTC))
    b = build_dataset(
        list(reversed(ROWS)),
        source="b",
        parent="ds-0000",
        created_at=datetime(2026, 1, 1, tzinfo=UTC),
    )
    assert a.id == b.id and a.manifest.sha256 == b.manifest.sha256
    assert a.id.startswith("ds-") and len(a.id) == 3 + 16


def test_any_change_of_content_changes_the_id() -> None:
    base = build_dataset(ROWS, source="s")
    relabelled = build_dataset([Row("房间很干净", "neutral"), *ROWS[1:]], source="s")
    extra = build_dataset([*ROWS, Row("新的一条", "positive")], source="s")
    assert len({base.id, relabelled.id, extra.id}) == 3


def test_manifest_counts_labels_and_round_trips() -> None:
    ds = build_dataset(ROWS, source="s", notes={"k": 1})
    assert ds.manifest.rows == 3
    assert ds.manifest.label_counts == {"positive": 1, "negative": 1, "neutral": 1}
    assert ds.manifest.labels == ["negative", "neutral", "positive"]
    assert Manifest.from_dict(ds.manifest.to_dict()) == ds.manifest


def test_normalisation_folds_line_breaks_and_composes_unicode() -> None:
    assert normalise_text("  好\r\n看\t的书 ") == "好 看 的书"
    assert normalise_text("e\u0301") == "\u00e9"
    assert normalise_text("！，") == "！，"  # full-width punctuation carries meaning: kept


def test_decode_verifies_hash_and_detects_tampering() -> None:
    ds = build_dataset(ROWS, source="s")
    payload = encode_rows(ds)
    assert decode_and_verify(ds.manifest, payload).rows == ds.rows
    tampered = payload.replace("很干净".encode(), "很脏".encode())
    with pytest.raises(CorruptDatasetError, match="corrupted"):
        decode_and_verify(ds.manifest, tampered)
    lying = dataclasses.replace(ds.manifest, rows=99)
    with pytest.raises(CorruptDatasetError, match="counts"):
        decode_and_verify(lying, payload)
