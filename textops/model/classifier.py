"""The text classifier: character n-gram features + XGBoost, over any set of labels.

It takes raw texts and returns class probabilities, so the same object serves in training,
in the promotion gate and behind the MLflow pyfunc.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import xgboost as xgb

from textops.errors import TextopsError
from textops.features.char_ngrams import CharNgramFeatures, CharNgramParams
from textops.features.embeddings import TransformerEmbeddings


@dataclass(frozen=True)
class XGBoostParams:
    """Tree ensemble settings; logged as ``xgb.*`` parameters."""

    n_estimators: int = 300
    max_depth: int = 4
    learning_rate: float = 0.05
    subsample: float = 0.8
    seed: int = 0
    n_jobs: int = 2

    def as_params(self) -> dict[str, Any]:
        return {f"xgb.{k}": v for k, v in asdict(self).items()}


@dataclass(frozen=True)
class ClassifierParams:
    features: CharNgramParams = field(default_factory=CharNgramParams)
    xgb: XGBoostParams = field(default_factory=XGBoostParams)
    # a local transformer folder whose sentence embeddings are appended (optional, offline)
    embeddings_dir: str | None = None

    def as_params(self) -> dict[str, Any]:
        return {
            **self.features.as_params(),
            **self.xgb.as_params(),
            "features.embeddings_dir": self.embeddings_dir or "",
        }


class TextClassifier:
    """``fit(texts, labels)`` then ``predict_proba(texts)`` with columns in ``classes`` order."""

    def __init__(self, params: ClassifierParams | None = None) -> None:
        self.params = params or ClassifierParams()
        self.classes: list[str] = []
        self.features = CharNgramFeatures(self.params.features)
        self.embedder: TransformerEmbeddings | None = None
        if self.params.embeddings_dir:
            self.embedder = TransformerEmbeddings(self.params.embeddings_dir)
        self.booster: xgb.XGBClassifier | None = None

    def _with_embeddings(
        self, x: np.ndarray, texts: list[str]
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """The model input and the sentence embeddings in it (None without an embedder)."""
        if self.embedder is None:
            return x, None
        embeddings = self.embedder.transform(texts)
        return np.hstack([x, embeddings]), embeddings

    def fit(self, texts: list[str], labels: list[str]) -> TextClassifier:
        self.classes = sorted(set(labels))
        if len(self.classes) < 2:
            raise TextopsError(f"training needs at least two labels, found {self.classes}")
        index = {c: i for i, c in enumerate(self.classes)}
        y = np.array([index[label] for label in labels], dtype=np.int64)
        x, _ = self._with_embeddings(self.features.fit_transform(texts, y), texts)
        p = self.params.xgb
        self.booster = xgb.XGBClassifier(
            n_estimators=p.n_estimators,
            max_depth=p.max_depth,
            learning_rate=p.learning_rate,
            subsample=p.subsample,
            random_state=p.seed,
            n_jobs=p.n_jobs,
            tree_method="hist",
        )
        self.booster.fit(x, y)
        return self

    def predict_proba(self, texts: list[str]) -> np.ndarray:
        return self.predict_proba_with_embeddings(texts)[0]

    def predict_proba_with_embeddings(
        self, texts: list[str]
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """Probabilities and the sentence embeddings computed for them on the way (None
        without an embedder): the drift monitor reuses them instead of encoding twice."""
        if self.booster is None:
            raise RuntimeError("classifier is not fitted")
        if not texts:
            empty = None if self.embedder is None else np.zeros((0, self.embedder.dimension))
            return np.zeros((0, len(self.classes)), dtype=np.float32), empty
        x, embeddings = self._with_embeddings(self.features.transform(texts), texts)
        proba = np.asarray(self.booster.predict_proba(x))
        return proba.astype(np.float32), embeddings

    def embed(self, texts: list[str]) -> np.ndarray | None:
        """Sentence embeddings of ``texts`` as the model computes them; None without an
        embedder."""
        return None if self.embedder is None else self.embedder.transform(texts)

    def predict(self, texts: list[str]) -> list[str]:
        return [self.classes[i] for i in self.predict_proba(texts).argmax(axis=1)]
