"""Character n-gram features, condensed into a few dense columns XGBoost can use well.

Why not feed the TF-IDF matrix to XGBoost directly: on this corpus the raw ~180k sparse columns
gave macro-F1 ≈ 0.84 after more than two minutes of training, below a plain logistic
regression (≈ 0.85-0.86). Trees split one column at a time, and single n-grams are weak. So the
sparse matrix is condensed into:

- out-of-fold class probabilities of two linear models (logistic regression and complement
  naive Bayes) trained on the TF-IDF matrix — out-of-fold so the trees never see scores a
  model produced for texts it was trained on (that would leak and over-trust them);
- a truncated SVD of the TF-IDF matrix (topic-like directions: hotel vs book vs computer);
- a few surface statistics (length, share of non-Chinese characters, ! and ? counts).

Character n-grams need no word segmenter, which Chinese would otherwise require.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from scipy import sparse
from sklearn.decomposition import TruncatedSVD
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold
from sklearn.naive_bayes import ComplementNB

from textops.features.text_stats import surface_stats


@dataclass(frozen=True)
class CharNgramParams:
    """Knobs of the feature pipeline; logged to MLflow as ``features.*`` parameters."""

    ngram_min: int = 1
    ngram_max: int = 3
    min_df: int = 2
    sublinear_tf: bool = True
    svd_components: int = 64
    oof_folds: int = 4
    lr_c: float = 10.0
    nb_alpha: float = 0.3
    seed: int = 0

    def as_params(self) -> dict[str, Any]:
        return {f"features.{k}": v for k, v in asdict(self).items()}


class CharNgramFeatures:
    """Fit on labelled texts, then turn any texts into a dense float32 matrix."""

    def __init__(self, params: CharNgramParams | None = None) -> None:
        self.params = params or CharNgramParams()
        p = self.params
        self.vectorizer = TfidfVectorizer(
            analyzer="char",
            ngram_range=(p.ngram_min, p.ngram_max),
            min_df=p.min_df,
            sublinear_tf=p.sublinear_tf,
            dtype=np.float32,
        )
        self.svd = TruncatedSVD(p.svd_components, random_state=p.seed, n_iter=3)
        self.lr: LogisticRegression | None = None
        self.nb: ComplementNB | None = None

    def _linear_models(self, n_classes: int) -> tuple[LogisticRegression, ComplementNB]:
        # liblinear is the fastest for two classes but cannot do more; lbfgs is multinomial
        solver = "liblinear" if n_classes == 2 else "lbfgs"
        return (
            LogisticRegression(C=self.params.lr_c, max_iter=1000, solver=solver),
            ComplementNB(alpha=self.params.nb_alpha),
        )

    def fit_transform(self, texts: list[str], y: np.ndarray) -> np.ndarray:
        """Fit every part; the rows returned for training use out-of-fold linear scores."""
        n_classes = int(y.max()) + 1
        tfidf = self.vectorizer.fit_transform(texts)
        oof = np.zeros((len(texts), 2 * n_classes), dtype=np.float32)
        folds = min(self.params.oof_folds, int(np.bincount(y).min()))
        if folds >= 2:
            splitter = StratifiedKFold(folds, shuffle=True, random_state=self.params.seed)
            for train_idx, held_idx in splitter.split(tfidf, y):
                oof[held_idx] = self._linear_scores(
                    tfidf[train_idx], y[train_idx], tfidf[held_idx], n_classes
                )
        self.lr, self.nb = self._linear_models(n_classes)
        self.lr.fit(tfidf, y)
        self.nb.fit(tfidf, y)
        if folds < 2:  # too few examples per class for folds: fall back to in-sample scores
            oof = self._scores(tfidf)
        dense = self.svd.fit_transform(tfidf).astype(np.float32)
        return np.hstack([oof, dense, surface_stats(texts)])

    def transform(self, texts: list[str]) -> np.ndarray:
        tfidf = self.vectorizer.transform(texts)
        dense = self.svd.transform(tfidf).astype(np.float32)
        return np.hstack([self._scores(tfidf), dense, surface_stats(texts)])

    def _scores(self, tfidf: sparse.spmatrix) -> np.ndarray:
        if self.lr is None or self.nb is None:
            raise RuntimeError("features are not fitted")
        return np.hstack([self.lr.predict_proba(tfidf), self.nb.predict_proba(tfidf)]).astype(
            np.float32
        )

    def _linear_scores(
        self, x_fit: sparse.spmatrix, y_fit: np.ndarray, x_out: sparse.spmatrix, n_classes: int
    ) -> np.ndarray:
        lr, nb = self._linear_models(n_classes)
        lr.fit(x_fit, y_fit)
        nb.fit(x_fit, y_fit)
        out = np.zeros((x_out.shape[0], 2 * n_classes), dtype=np.float32)
        # a fold may miss a rare class; place each model's columns by its own class list
        out[:, lr.classes_] = lr.predict_proba(x_out)
        out[:, n_classes + nb.classes_] = nb.predict_proba(x_out)
        return out

    @property
    def vocabulary_size(self) -> int:
        return len(self.vectorizer.vocabulary_)

    def feature_names(self, classes: list[str]) -> list[str]:
        return (
            [f"lr_p[{c}]" for c in classes]
            + [f"nb_p[{c}]" for c in classes]
            + [f"svd_{i}" for i in range(self.params.svd_components)]
            + ["log_length", "non_chinese_share", "exclamations", "questions"]
        )
