"""The prediction-drift reference leaves out texts the labelling queue chose."""

from __future__ import annotations

from textops.data.dataset import QUEUE_SELECTED_NOTE, Dataset, Row, build_dataset, text_digest
from textops.training.pipeline import MIN_REFERENCE_ROWS, representative_rows


def _dataset(n: int, selected: list[str]) -> tuple[Dataset, list[str]]:
    rows = [Row(f"评论{i}", "positive" if i % 2 else "negative") for i in range(n)]
    notes = {QUEUE_SELECTED_NOTE: [text_digest(t) for t in selected]}
    return build_dataset(rows, source="test", notes=notes), [r.text for r in rows]


def test_queue_selected_texts_are_left_out_of_the_reference() -> None:
    n = MIN_REFERENCE_ROWS + 50
    dataset, texts = _dataset(n, selected=["评论3", "评论7"])
    keep = representative_rows(dataset, texts)
    assert [texts[k] for k in keep if texts[k] in ("评论3", "评论7")] == []
    assert len(keep) == n - 2


def test_all_rows_are_used_when_too_few_would_remain() -> None:
    dataset, texts = _dataset(MIN_REFERENCE_ROWS, selected=["评论0"])
    assert representative_rows(dataset, texts) == list(range(MIN_REFERENCE_ROWS))


def test_a_dataset_without_the_note_keeps_every_row() -> None:
    dataset, texts = _dataset(10, selected=[])
    assert representative_rows(dataset, texts) == list(range(10))
