"""Transformer embeddings from a local folder: a tiny BERT with a generated vocabulary (the
``tiny_bert`` fixture in tests/conftest.py: no hub, no download) exercises the real loading and
encoding code."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tests.synthetic import make_rows, write_jsonl
from textops.errors import TextopsError
from textops.features.embeddings import TransformerEmbeddings
from textops.model.classifier import ClassifierParams, TextClassifier, XGBoostParams


def test_local_model_loads_offline_with_its_real_vocabulary(tiny_bert: Path) -> None:
    emb = TransformerEmbeddings(tiny_bert, max_length=32, batch_size=4)
    texts = ["房间很好", "作者的故事不错！", "屏幕"]
    vectors = emb.transform(texts)
    assert vectors.shape == (3, 32) and np.isfinite(vectors).all()
    expected = json.loads((tiny_bert / "vocab-size.json").read_text())
    assert len(emb._tokenizer) == expected  # not a 5-token default vocabulary
    ids = emb._tokenizer("房间")["input_ids"]
    assert emb._tokenizer.unk_token_id not in ids
    np.testing.assert_allclose(emb.transform(texts[:1]), vectors[:1], atol=1e-5)


def test_missing_folder_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(TextopsError, match="never downloaded"):
        TransformerEmbeddings(tmp_path / "nope").transform(["好"])


def test_classifier_with_embeddings_round_trips_through_pickle(tiny_bert: Path) -> None:
    import joblib

    rows = make_rows(n_per_class=40, classes=3)
    texts, labels = [t for t, _ in rows], [lab for _, lab in rows]
    params = ClassifierParams(xgb=XGBoostParams(n_estimators=20), embeddings_dir=str(tiny_bert))
    clf = TextClassifier(params).fit(texts, labels)
    before = clf.predict_proba(texts[:5])
    path = tiny_bert.parent / "clf.joblib"
    joblib.dump(clf, path)
    restored = joblib.load(path)
    assert restored.embedder is not None and restored.embedder._model is None
    np.testing.assert_allclose(restored.predict_proba(texts[:5]), before, atol=1e-5)


def test_registered_model_carries_its_encoder(
    tiny_bert: Path, tmp_path: Path, textops_home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The pyfunc logs the encoder folder as an artifact and serves without the original."""
    import shutil

    import mlflow.pyfunc
    import pandas as pd

    from textops.cli import main

    encoder = tmp_path / "encoder"
    shutil.copytree(tiny_bert, encoder)
    rows = make_rows(n_per_class=30, classes=3, seed=3)
    src = write_jsonl(tmp_path / "rows.jsonl", rows)
    assert main(["data", "snapshot", "--from", str(src), "--json"]) == 0
    capsys.readouterr()
    assert main(["train", "--n-estimators", "20", "--embeddings-dir", str(encoder), "--json"]) == 0
    trained = json.loads(capsys.readouterr().out)
    assert trained["version"] == "1"
    shutil.rmtree(encoder)  # the model must not depend on the training machine's folder
    model = mlflow.pyfunc.load_model("models:/reviews-sentiment/1")
    out = model.predict(pd.DataFrame({"text": ["房间很好", "作者的故事"]}))
    assert list(out.columns[:2]) == ["label", "confidence"] and len(out) == 2
    # the logged drift reference carries the whitened PCA of the training embeddings
    section = model.unwrap_python_model().profile["embeddings"]
    assert section["dimension"] == 32 and 0 < len(section["components"]) <= 16
    assert len(section["scale"]) == len(section["components"]) and section["samples"] > 0


def test_texts_longer_than_the_encoder_positions_are_truncated_not_a_crash(
    tiny_bert: Path,
) -> None:
    # the tiny BERT has 64 positions; the default max_length (128) must not exceed them
    emb = TransformerEmbeddings(tiny_bert)
    vectors = emb.transform(["房间很好" * 100, "屏幕"])
    assert vectors.shape == (2, 32) and np.isfinite(vectors).all()
