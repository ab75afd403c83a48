"""The prediction-drift reference: holdout texts the labelling queue chose are left out, or
recently served texts replace the holdout when asked."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from tests.synthetic import cli_json, make_rows, write_jsonl
from textops.contracts import Tag
from textops.data.dataset import QUEUE_SELECTED_NOTE, Dataset, Row, build_dataset, text_digest
from textops.labelling.predictions import PredictionLog, ServedPrediction
from textops.labelling.store import LabelStore
from textops.settings import load_settings
from textops.training.pipeline import MIN_REFERENCE_ROWS, representative_rows, served_texts


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


def test_the_reference_is_profiled_on_recently_served_texts_when_asked(
    textops_home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`textops train --reference-traffic N` profiles the drift reference on the model's
    newest served texts (the label store's prediction log), and says so in a tag."""
    source = write_jsonl(tmp_path / "rows.jsonl", make_rows(n_per_class=100, classes=2))
    cli_json(capsys, "data", "snapshot", "--from", str(source))
    settings = load_settings()
    served = [f"新的领域文本{i}号，完全不同的用词" for i in range(MIN_REFERENCE_ROWS + 20)]
    log = PredictionLog(LabelStore(settings.label_db).engine)
    log.record(
        [
            ServedPrediction(f"id{i}", settings.model_name, "1", text, "a", {"a": 1.0})
            for i, text in enumerate(served)
        ]
    )
    other = [ServedPrediction("x", "another-model", "1", "别的", "a", {"a": 1.0})]
    log.record(other)

    from_traffic = cli_json(capsys, "train", "--n-estimators", "10", "--reference-traffic", "5000")
    from_holdout = cli_json(capsys, "train", "--n-estimators", "10")
    client = MlflowClient(tracking_uri=settings.tracking_uri)
    tags = {
        name: client.get_run(result["run_id"]).data.tags[Tag.REFERENCE]
        for name, result in (("traffic", from_traffic), ("holdout", from_holdout))
    }
    assert tags == {"traffic": f"traffic:{len(served)}", "holdout": "holdout"}
    profile = client.download_artifacts(from_traffic["run_id"], "reference/profile.json")
    reference = json.loads(Path(profile).read_text())
    assert reference["holdout_samples"] == len(served)


def test_too_few_served_texts_fall_back_to_the_holdout(textops_home: Path) -> None:
    settings = load_settings()
    log = PredictionLog(LabelStore(settings.label_db).engine)
    log.record([ServedPrediction("a", settings.model_name, "1", "一", "a", {"a": 1.0})])
    assert served_texts(settings, 1000) == []
    assert served_texts(settings, 0) == []


def test_texts_the_model_was_fitted_on_are_left_out(textops_home: Path) -> None:
    settings = load_settings()
    log = PredictionLog(LabelStore(settings.label_db).engine)
    texts = [f"文本{i}" for i in range(MIN_REFERENCE_ROWS + 10)]
    log.record(
        [
            ServedPrediction(f"i{i}", settings.model_name, "1", t, "a", {"a": 1.0})
            for i, t in enumerate(texts)
        ]
    )
    kept = served_texts(settings, 1000, exclude=set(texts[:5]))
    assert len(kept) == len(texts) - 5 and not set(texts[:5]) & set(kept)
    assert served_texts(settings, 1000, exclude=set(texts[:20])) == []  # too few remain
