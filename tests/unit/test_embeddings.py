"""Transformer embeddings from a local folder: a tiny BERT with a generated vocabulary is built
here (no hub, no download) to exercise the real loading and encoding code."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tests.synthetic import make_rows, write_jsonl
from textops.errors import TextopsError
from textops.features.embeddings import TransformerEmbeddings
from textops.model.classifier import ClassifierParams, TextClassifier, XGBoostParams

SPECIAL = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


@pytest.fixture(scope="module")
def tiny_bert(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from transformers import BertConfig, BertModel

    folder = tmp_path_factory.mktemp("tiny-bert")
    chars = sorted({ch for text, _ in make_rows(80, classes=4) for ch in text})
    vocab = SPECIAL + chars
    # only a vocab.txt beside config.json: the loading code must build the tokenizer from the
    # folder (transformers 5 silently ignores BertTokenizerFast(vocab_file=...): 5 tokens)
    (folder / "vocab.txt").write_text("\n".join(vocab) + "\n", "utf-8")
    config = BertConfig(
        vocab_size=len(vocab),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=64,
    )
    BertModel(config).save_pretrained(folder)
    (folder / "vocab-size.json").write_text(json.dumps(len(vocab)))
    return folder


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
