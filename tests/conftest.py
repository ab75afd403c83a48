"""Shared fixtures. Real servers and the real control plane come from the plugins below."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.synthetic import make_rows
from textops.settings import Settings, load_settings

pytest_plugins = ("tests.plugins.servers", "tests.plugins.cluster")

# Fail fast instead of retrying for minutes when a server is down (the client default).
os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "2")
os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "60")


@pytest.fixture
def textops_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """An empty embedded TEXTOPS_HOME with every server variable cleared."""
    home = tmp_path / "home"
    for var in (
        "TEXTOPS_DATA_URI",
        "TEXTOPS_LABEL_DB",
        "MLFLOW_TRACKING_URI",
        "TEXTOPS_S3_ENDPOINT",
        "MLFLOW_S3_ENDPOINT_URL",
        "TEXTOPS_ARTIFACTS",
        "TEXTOPS_MODEL_NAME",
        "TEXTOPS_EXPERIMENT",
    ):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("TEXTOPS_HOME", str(home))
    yield home


@pytest.fixture
def settings(textops_home: Path) -> Settings:
    return load_settings()


SPECIAL = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


@pytest.fixture(scope="session")
def tiny_bert(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random BERT saved with ``save_pretrained`` (vocabulary: the characters of
    ``make_rows(80, classes=4)``), built locally: no hub, no download."""
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
