"""Labels become the next dataset version: parent recorded, nothing lost, no empty versions."""

from __future__ import annotations

import dataclasses
from datetime import datetime
from pathlib import Path

import pytest

from tests.label_store_cases import sample
from textops.data.dataset import QUEUE_SELECTED_NOTE, Row, build_dataset, text_digest
from textops.data.store import open_store
from textops.labelling.export import export_labels, merge_labels
from textops.labelling.store import FEEDBACK_REASON, LabelStore, StoredLabel
from textops.settings import Settings, load_settings


@pytest.fixture
def settings(textops_home: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """The embedded settings, serving the model the store's samples were captured from."""
    monkeypatch.setenv("TEXTOPS_MODEL_NAME", sample(0).model_name)
    return load_settings()


def _label(i: int, text: str, label: str) -> StoredLabel:
    return StoredLabel(i, f"p-{i}", text, label, "alice", datetime(2026, 1, 1))


def test_merge_adds_new_texts_and_lists_conflicts() -> None:
    base = [Row("好", "positive"), Row("坏", "negative")]
    stored = [
        _label(1, "新的评论", "positive"),
        _label(2, " 好 ", "positive"),  # already in the base, same label
        _label(3, "坏", "positive"),  # the base says otherwise: base kept, listed
        _label(4, "模棱两可", "positive"),
        _label(5, "模棱两可", "negative"),  # annotators disagree: left out, listed
    ]
    merged = merge_labels(base, stored)
    assert sorted(r.text for r in merged.rows) == sorted(["好", "坏", "新的评论"])
    assert merged.added == 1 and merged.already_present == 1
    assert [(c["text"], c["kept"]) for c in merged.conflicts] == [
        ("坏", "negative"),
        ("模棱两可", None),
    ]


def test_export_twice_and_after_new_labels(settings: Settings) -> None:
    store = open_store(settings.data_uri, settings)
    v1 = build_dataset([Row("房间干净", "positive"), Row("服务很差", "negative")], "seed")
    store.put(v1)
    labels = LabelStore(settings.label_db)
    labels.add_samples([sample(1, text="前台态度冷淡"), sample(2, text="早餐丰富")])
    labels.submit_label("p-1", "negative", "alice")

    first = export_labels(settings)
    assert first["created"] and first["parent"] == v1.id and first["labels_added"] == 1
    v2 = store.get(first["dataset"])
    assert v2.manifest.parent == v1.id and ("前台态度冷淡", "negative") in {
        (r.text, r.label) for r in v2.rows
    }

    again = export_labels(settings)
    assert not again["created"] and again["dataset"] == v2.id
    assert len(store.list()) == 2

    labels.submit_label("p-2", "positive", "bob")
    third = export_labels(settings)
    assert third["created"] and third["parent"] == v2.id and third["rows"] == 4
    rows = {(r.text, r.label) for r in store.get(third["dataset"]).rows}
    assert {("前台态度冷淡", "negative"), ("早餐丰富", "positive")} <= rows


def test_export_with_no_labels_creates_nothing(settings: Settings, tmp_path: Path) -> None:
    store = open_store(settings.data_uri, settings)
    v1 = build_dataset([Row("好", "a"), Row("坏", "b")], "seed")
    store.put(v1)
    result = export_labels(settings)
    assert result == {**result, "dataset": v1.id, "created": False, "labels_added": 0}


def test_cli_export_and_stats(settings: Settings, capsys) -> None:
    import json

    from textops.cli import main

    open_store(settings.data_uri, settings).put(
        build_dataset([Row("好", "a"), Row("坏", "b")], "seed")
    )
    store = LabelStore(settings.label_db)
    store.add_samples([sample(1, text="一般般")])
    store.submit_label("p-1", "a", "eve")
    assert main(["labels", "stats", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["labels"] == 1
    assert main(["labels", "export", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["created"] and out["labels_added"] == 1 and out["rows"] == 3


def test_texts_the_queue_chose_are_marked_for_the_training_reference(settings: Settings) -> None:
    store = open_store(settings.data_uri, settings)
    store.put(build_dataset([Row("房间干净", "positive"), Row("服务很差", "negative")], "seed"))
    labels = LabelStore(settings.label_db)
    queued = sample(1, text="前台态度冷淡")
    told = dataclasses.replace(sample(2, text="早餐丰富"), reason=FEEDBACK_REASON)
    labels.add_samples([queued, told])
    labels.submit_label("p-1", "negative", "alice")
    labels.submit_label("p-2", "positive", "feedback")

    first = export_labels(settings)
    marked = store.get(first["dataset"]).manifest.notes[QUEUE_SELECTED_NOTE]
    assert marked == [text_digest("前台态度冷淡")]  # feedback is a random sample: not marked

    labels.add_samples([sample(3, text="床很舒服")])
    labels.submit_label("p-3", "positive", "alice")
    second = export_labels(settings)  # the marks of the parent carry over
    marked = store.get(second["dataset"]).manifest.notes[QUEUE_SELECTED_NOTE]
    assert marked == sorted([text_digest("前台态度冷淡"), text_digest("床很舒服")])


def test_only_the_models_own_labels_are_exported_and_counted(settings: Settings) -> None:
    store = open_store(settings.data_uri, settings)
    store.put(build_dataset([Row("房间干净", "positive"), Row("服务很差", "negative")], "seed"))
    labels = LabelStore(settings.label_db)
    other = dataclasses.replace(sample(9, text="别的模型的样本"), model_name="news-topics")
    labels.add_samples([sample(1, text="前台态度冷淡"), sample(2, text="早餐丰富"), other])
    labels.submit_label("p-1", "negative", "alice")
    labels.submit_label("p-9", "体育", "alice")
    assert labels.unexported_labels(settings.model_name) == 1
    assert labels.unexported_labels("news-topics") == 1

    first = export_labels(settings)
    rows = {r.text for r in store.get(first["dataset"]).rows}
    assert "前台态度冷淡" in rows and "别的模型的样本" not in rows
    assert labels.unexported_labels(settings.model_name) == 0  # all in a dataset version now
    assert labels.unexported_labels("news-topics") == 1

    labels.submit_label("p-2", "positive", "bob")
    assert labels.unexported_labels(settings.model_name) == 1
    export_labels(settings)
    again = export_labels(settings)  # nothing new: no version, the count stays at zero
    assert not again["created"] and labels.unexported_labels(settings.model_name) == 0
