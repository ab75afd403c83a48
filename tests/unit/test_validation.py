"""Every bad row is reported with its line number and nothing passes when one is bad."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from textops.data.sources import builtin_corpus, read_source
from textops.data.validation import RawRecord, validate_records
from textops.errors import InvalidDataError, TextopsError


def test_all_problems_reported_with_line_numbers(tmp_path: Path) -> None:
    path = tmp_path / "rows.jsonl"
    lines = [
        json.dumps({"text": "很好", "label": "pos"}, ensure_ascii=False).encode(),
        json.dumps({"text": "   ", "label": "pos"}).encode(),
        json.dumps({"text": "一般", "label": "meh"}, ensure_ascii=False).encode(),
        b'{"text": "\xff\xfe", "label": "pos"}',
        json.dumps({"text": "很好", "label": "pos"}, ensure_ascii=False).encode(),
        json.dumps({"text": "很好", "label": "neg"}, ensure_ascii=False).encode(),
        b"{not json",
    ]
    path.write_bytes(b"\n".join(lines) + b"\n")
    with pytest.raises(InvalidDataError) as caught:
        validate_records(read_source(path), allowed_labels={"pos", "neg"})
    problems = caught.value.problems
    assert problems[0] == "rows.jsonl:2: empty text"
    assert problems[1].startswith("rows.jsonl:3: unknown label 'meh'")
    assert problems[2].startswith("rows.jsonl:4: not valid UTF-8")
    assert problems[3] == "rows.jsonl:5: duplicate of rows.jsonl:1"
    assert problems[4].startswith("rows.jsonl:6: same text as rows.jsonl:1 but labelled 'neg'")
    assert problems[5].startswith("rows.jsonl:7: invalid JSON")
    assert len(problems) == 6
    assert "6 bad rows" in caught.value.report()


def test_drop_duplicates_keeps_first_and_removes_conflicting_texts() -> None:
    records = [
        RawRecord("f:1", "好", "pos"),
        RawRecord("f:2", "好", "pos"),
        RawRecord("f:3", "坏", "neg"),
        RawRecord("f:4", "一般", "pos"),
        RawRecord("f:5", "一般", "neg"),
    ]
    report = validate_records(records, drop_duplicates=True)
    assert sorted((r.text, r.label) for r in report.rows) == [("坏", "neg"), ("好", "pos")]
    assert report.duplicates_dropped == 1
    assert report.conflicts_dropped == ["f:4 (pos) vs f:5 (neg)"]


def test_folder_of_label_files_and_csv(tmp_path: Path) -> None:
    folder = tmp_path / "corpus"
    folder.mkdir()
    (folder / "酒店.txt").write_text("房间大\n早餐好\n", "utf-8")
    (folder / "书籍.txt").write_text("情节好\n\n", "utf-8")
    with pytest.raises(InvalidDataError) as caught:
        validate_records(read_source(folder))
    assert caught.value.problems == ["书籍.txt:2: empty text"]

    csv_path = tmp_path / "rows.csv"
    csv_path.write_text('text,label\n"多行\n文本",a\n好,b\n', "utf-8")
    report = validate_records(read_source(csv_path))
    assert sorted((r.text, r.label) for r in report.rows) == [("多行 文本", "a"), ("好", "b")]


def test_unsupported_or_missing_sources_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(TextopsError, match="no such file"):
        list(read_source(tmp_path / "nope.jsonl"))
    (tmp_path / "x.parquet").write_bytes(b"PAR1")
    with pytest.raises(TextopsError, match="unsupported format"):
        list(read_source(tmp_path / "x.parquet"))
    bad = tmp_path / "h.csv"
    bad.write_text("body,category\nx,y\n", "utf-8")
    with pytest.raises(TextopsError, match="'text' and 'label'"):
        list(read_source(bad))


def test_builtin_corpus_dedupes_to_about_17k_distinct_texts() -> None:
    report = validate_records(builtin_corpus(), drop_duplicates=True)
    labels = {r.label for r in report.rows}
    assert labels == {"positive", "negative"}
    assert 17_000 < len(report.rows) < 17_800
    assert len(report.conflicts_dropped) == 47
    assert report.duplicates_dropped > 15_000  # about half the shipped lines repeat
    texts = [r.text for r in report.rows]
    assert len(texts) == len(set(texts))
