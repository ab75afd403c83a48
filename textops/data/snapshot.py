"""Taking a snapshot: read a source, validate every row, store an immutable version."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from textops.data.dataset import Dataset, build_dataset
from textops.data.sources import BUILTIN_SOURCE, builtin_corpus, read_source
from textops.data.store import open_store
from textops.data.validation import ValidationReport, validate_records
from textops.settings import Settings


@dataclass
class SnapshotResult:
    dataset: Dataset
    created: bool  # False: that exact content was already stored under the same id
    report: ValidationReport
    store_uri: str


def take_snapshot(
    settings: Settings,
    source: Path | None = None,
    labels: set[str] | None = None,
    drop_duplicates: bool = False,
    parent: str | None = None,
) -> SnapshotResult:
    """Validate all rows first (nothing is stored if any row is bad), then store the version.

    With no ``source`` the built-in review corpus is used; it is known to repeat lines and to
    carry some texts under both labels, so duplicates are always dropped for it (and counted).
    """
    if source is None:
        records, name, drop_duplicates = builtin_corpus(), BUILTIN_SOURCE, True
    else:
        records, name = read_source(source), str(source)
    report = validate_records(records, allowed_labels=labels, drop_duplicates=drop_duplicates)
    store = open_store(settings.data_uri, settings)
    if parent is not None:
        parent = store.resolve(parent)
    notes = {
        "duplicates_dropped": report.duplicates_dropped,
        "conflicting_texts_dropped": len(report.conflicts_dropped),
    }
    dataset = build_dataset(report.rows, source=name, parent=parent, notes=notes)
    created = store.put(dataset)
    if not created:
        dataset = store.get(dataset.id)  # report the stored (original) manifest, unchanged
    return SnapshotResult(dataset=dataset, created=created, report=report, store_uri=store.uri)
