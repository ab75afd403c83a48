"""Immutable, content-addressed dataset versions (pure: no I/O).

A version is its rows plus a manifest. The id is derived from the SHA-256 of the normalised
content only — not from the parent, the time or the source — so snapshotting the same content
twice gives the same id, and a derived version with nothing new is recognisably its parent.
"""

from __future__ import annotations

import hashlib
import json
import unicodedata
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from textops.errors import CorruptDatasetError

FORMAT_VERSION = 1
ID_PREFIX = "ds-"
ID_HEX_CHARS = 16


@dataclass(frozen=True, order=True)
class Row:
    """One labelled text. Ordering is (text, label), which is also the canonical order."""

    text: str
    label: str


def normalise_text(text: str) -> str:
    """Unicode NFC, line breaks and tabs folded into spaces, outer whitespace stripped.

    NFC (not NFKC) keeps full-width Chinese punctuation as written: it carries sentiment.
    """
    folded = unicodedata.normalize("NFC", text)
    for ch in ("\r\n", "\r", "\n", "\t"):
        folded = folded.replace(ch, " ")
    return folded.strip()


# Manifest note listing texts that entered through the labelling queue (chosen because they
# were uncertain or drifted, so not representative of traffic): digests from ``text_digest``.
QUEUE_SELECTED_NOTE = "queue_selected_texts"


def text_digest(text: str) -> str:
    """A short, stable fingerprint of one text (after normalisation), for manifest notes."""
    return hashlib.sha256(normalise_text(text).encode("utf-8")).hexdigest()[:16]


def canonical_lines(rows: Iterable[Row]) -> Iterable[bytes]:
    """The byte lines that are hashed and stored: one JSON array per row, rows sorted."""
    for row in sorted(rows):
        yield (json.dumps([row.text, row.label], ensure_ascii=False) + "\n").encode("utf-8")


def content_sha256(rows: Iterable[Row]) -> str:
    digest = hashlib.sha256()
    for line in canonical_lines(rows):
        digest.update(line)
    return digest.hexdigest()


def dataset_id_for(sha256: str) -> str:
    return ID_PREFIX + sha256[:ID_HEX_CHARS]


@dataclass(frozen=True)
class Manifest:
    """What a version is, without its rows: enough to list, compare and verify versions."""

    id: str
    sha256: str
    rows: int
    label_counts: dict[str, int]
    parent: str | None
    created_at: str
    source: str
    format: int = FORMAT_VERSION
    notes: dict[str, Any] = field(default_factory=dict)

    @property
    def labels(self) -> list[str]:
        return sorted(self.label_counts)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "sha256": self.sha256,
            "rows": self.rows,
            "label_counts": dict(sorted(self.label_counts.items())),
            "parent": self.parent,
            "created_at": self.created_at,
            "source": self.source,
            "format": self.format,
            "notes": self.notes,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Manifest:
        try:
            return cls(
                id=str(data["id"]),
                sha256=str(data["sha256"]),
                rows=int(data["rows"]),
                label_counts={str(k): int(v) for k, v in data["label_counts"].items()},
                parent=data.get("parent"),
                created_at=str(data["created_at"]),
                source=str(data["source"]),
                format=int(data.get("format", FORMAT_VERSION)),
                notes=dict(data.get("notes") or {}),
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise CorruptDatasetError(f"dataset manifest is malformed: {exc!r}") from exc


@dataclass(frozen=True)
class Dataset:
    """A dataset version: canonical (sorted, normalised, unique) rows and their manifest."""

    rows: tuple[Row, ...]
    manifest: Manifest

    @property
    def id(self) -> str:
        return self.manifest.id

    @property
    def texts(self) -> list[str]:
        return [r.text for r in self.rows]

    @property
    def labels(self) -> list[str]:
        return [r.label for r in self.rows]


def build_dataset(
    rows: Sequence[Row],
    source: str,
    parent: str | None = None,
    created_at: datetime | None = None,
    notes: dict[str, Any] | None = None,
) -> Dataset:
    """Make a version from already validated rows (see :mod:`textops.data.validation`)."""
    canonical = tuple(sorted(Row(normalise_text(r.text), r.label) for r in rows))
    sha = content_sha256(canonical)
    manifest = Manifest(
        id=dataset_id_for(sha),
        sha256=sha,
        rows=len(canonical),
        label_counts=dict(Counter(r.label for r in canonical)),
        parent=parent,
        created_at=(created_at or datetime.now(UTC)).isoformat(timespec="seconds"),
        source=source,
        notes=dict(notes or {}),
    )
    return Dataset(rows=canonical, manifest=manifest)


def encode_rows(dataset: Dataset) -> bytes:
    return b"".join(canonical_lines(dataset.rows))


def decode_and_verify(manifest: Manifest, payload: bytes) -> Dataset:
    """Rebuild a stored version and prove it is intact: hash, id, counts and order all match."""
    sha = hashlib.sha256(payload).hexdigest()
    if sha != manifest.sha256 or dataset_id_for(sha) != manifest.id:
        raise CorruptDatasetError(
            f"dataset {manifest.id} is corrupted: content hash {sha[:16]} does not match the "
            f"manifest's {manifest.sha256[:16]}"
        )
    rows = []
    try:
        for line in payload.decode("utf-8").splitlines():
            text, label = json.loads(line)
            rows.append(Row(str(text), str(label)))
    except (UnicodeDecodeError, ValueError, TypeError) as exc:
        raise CorruptDatasetError(f"dataset {manifest.id} rows are unreadable: {exc}") from exc
    if len(rows) != manifest.rows or dict(Counter(r.label for r in rows)) != manifest.label_counts:
        raise CorruptDatasetError(f"dataset {manifest.id}: rows do not match the manifest counts")
    return Dataset(rows=tuple(rows), manifest=manifest)
