"""Labels → the next dataset version.

Every export merges *all* labels of one model's samples onto a base version (the newest by
default), so nothing labelled can be lost between runs, and content addressing does the
bookkeeping: with no new labels the merged content is identical, the id is the base's own, and
no version is created. A new version records its parent; the label store records which labels
each export holds, so "labels not yet in a dataset version" is one query.

Conflicts are listed, never resolved silently: a sample whose annotators disagree is left out,
and a labelled text that the base already holds under another label keeps the base's label.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from textops.data.dataset import (
    QUEUE_SELECTED_NOTE,
    Row,
    build_dataset,
    normalise_text,
    text_digest,
)
from textops.data.store import open_store
from textops.labelling.store import FEEDBACK_REASON, LabelStore, StoredLabel
from textops.settings import Settings


@dataclass
class MergeResult:
    rows: list[Row]
    added: int
    already_present: int
    conflicts: list[dict[str, Any]] = field(default_factory=list)


def merge_labels(base: Sequence[Row], stored: Sequence[StoredLabel]) -> MergeResult:
    """Pure: the base rows plus every unambiguous new label."""
    by_text: dict[str, set[str]] = {}
    for item in stored:
        text = normalise_text(item.text)
        if text:
            by_text.setdefault(text, set()).add(item.label)
    existing = {row.text: row.label for row in base}
    rows = list(base)
    added = present = 0
    conflicts: list[dict[str, Any]] = []
    for text, given in sorted(by_text.items()):
        if len(given) > 1:
            conflicts.append(
                {"text": text, "labels": sorted(given), "kept": None, "why": "annotators disagree"}
            )
            continue
        (label,) = given
        if text in existing:
            if existing[text] == label:
                present += 1
            else:
                conflicts.append(
                    {
                        "text": text,
                        "labels": sorted({label, existing[text]}),
                        "kept": existing[text],
                        "why": "dataset holds another label",
                    }
                )
            continue
        rows.append(Row(text, label))
        added += 1
    return MergeResult(rows, added, present, conflicts)


def export_labels(settings: Settings, base: str = "latest") -> dict[str, Any]:
    """Merge the labels of ``settings.model_name``'s samples into a version derived from
    ``base``, and record in the label store which labels it holds (so "new labels" restarts
    from zero for that model)."""
    store = open_store(settings.data_uri, settings)
    parent = store.get(base)
    labels = LabelStore(settings.label_db)
    stored = labels.labels_after(0, model_name=settings.model_name)
    merged = merge_labels(parent.rows, stored)
    # texts the queue chose stay marked in every descendant: the training pipeline keeps them
    # out of the prediction-drift reference (they are not what ordinary traffic looks like)
    selected = set(parent.manifest.notes.get(QUEUE_SELECTED_NOTE) or ())
    selected |= {text_digest(item.text) for item in stored if item.reason != FEEDBACK_REASON}
    notes: dict[str, Any] = {
        QUEUE_SELECTED_NOTE: sorted(selected),
        "labels_in_store": len(stored),
        "labels_added": merged.added,
        "conflicts": len(merged.conflicts),
        "last_label_id": stored[-1].id if stored else 0,
    }
    candidate = build_dataset(
        merged.rows,
        source=f"labels:{settings.label_db.split('://')[0]}",
        parent=parent.id,
        notes=notes,
    )
    created = candidate.id != parent.id and store.put(candidate)
    result = candidate.id if candidate.id != parent.id else parent.id
    if stored:
        labels.record_export(
            settings.model_name, result, parent.id, stored[-1].id, merged.added if created else 0
        )
    return {
        "dataset": result,
        "parent": parent.id,
        "model": settings.model_name,
        "labels_in_store": len(stored),
        "created": created,
        "rows": len(merged.rows),
        "labels_added": merged.added,
        "labels_already_present": merged.already_present,
        "conflicts": merged.conflicts,
    }
