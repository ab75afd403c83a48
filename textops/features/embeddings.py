"""Optional sentence embeddings from a local transformer directory (offline only).

The seed project embedded texts with ``hfl/chinese-roberta-wwm-ext``. Here any BERT-like model
saved with ``save_pretrained`` (weights, config, tokenizer files) in a local folder works; hub
access is switched off before ``transformers`` is imported, so nothing is ever downloaded at
run time. Embeddings are mean-pooled last hidden states (padding masked out) and are appended
to the character n-gram features.

Needs the ``embeddings`` extra (``transformers`` + ``torch``).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from textops.errors import TextopsError

REQUIRED_FILES = ("config.json",)


class TransformerEmbeddings:
    """Encode texts with a local model; the loaded model is not pickled, only its folder."""

    def __init__(self, model_dir: str | Path, max_length: int = 128, batch_size: int = 32):
        self.model_dir = str(model_dir)
        self.max_length = max_length
        self.batch_size = batch_size
        self._tokenizer: Any = None
        self._model: Any = None

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_tokenizer"] = state["_model"] = None
        return state

    @property
    def dimension(self) -> int:
        self._load()
        return int(self._model.config.hidden_size)

    def _load(self) -> None:
        if self._model is not None:
            return
        folder = Path(self.model_dir)
        missing = [f for f in REQUIRED_FILES if not (folder / f).is_file()]
        if not folder.is_dir() or missing:
            raise TextopsError(
                f"embedding model folder {folder} is missing or incomplete ({missing or 'absent'})"
                "; models are never downloaded: save one there with save_pretrained()"
            )
        os.environ["HF_HUB_OFFLINE"] = "1"
        os.environ["TRANSFORMERS_OFFLINE"] = "1"
        try:
            import torch
            from transformers import AutoModel, AutoTokenizer
        except ImportError as exc:
            raise TextopsError(
                "embeddings need the 'embeddings' extra: pip install 'textops[embeddings]'"
            ) from exc
        torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))
        self._tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
        self._model = AutoModel.from_pretrained(folder, local_files_only=True).eval()

    def transform(self, texts: list[str]) -> np.ndarray:
        self._load()
        import torch

        out = np.zeros((len(texts), self.dimension), dtype=np.float32)
        # never more tokens than the model has positions for (a small encoder may have < 128)
        positions = getattr(self._model.config, "max_position_embeddings", None)
        max_length = min(self.max_length, positions) if positions else self.max_length
        with torch.inference_mode():
            for start in range(0, len(texts), self.batch_size):
                batch = texts[start : start + self.batch_size]
                encoded = self._tokenizer(
                    batch,
                    padding=True,
                    truncation=True,
                    max_length=max_length,
                    return_tensors="pt",
                )
                hidden = self._model(**encoded).last_hidden_state
                mask = encoded["attention_mask"].unsqueeze(-1).to(hidden.dtype)
                pooled = (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1.0)
                out[start : start + len(batch)] = pooled.float().numpy()
        return out


SPECIAL_TOKENS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


def save_random_encoder(
    folder: str | Path, texts: Sequence[str], max_positions: int = 128, seed: int = 0
) -> Path:
    """A 2-layer, 32-dimensional BERT with random weights over the characters of ``texts``,
    saved with ``save_pretrained``: an encoder for tests and benchmarks that downloads nothing.

    Only ``vocab.txt`` and the model files are written, so loading exercises the real path
    (the tokenizer is built from the folder). Random weights make a weak encoder: any text
    still maps somewhere definite, which is what drift tests need, not what a model needs.
    """
    import torch
    from transformers import BertConfig, BertModel

    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    vocab = SPECIAL_TOKENS + sorted({c for t in texts for c in t if not c.isspace()})
    (out / "vocab.txt").write_text("\n".join(vocab) + "\n", "utf-8")
    config = BertConfig(
        vocab_size=len(vocab),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=max_positions,
    )
    torch.manual_seed(seed)
    BertModel(config).save_pretrained(out)
    return out
