"""Training benchmark: textops' default classifier vs what a user would otherwise pick.

Side by side, in one run, on the same stratified 80/20 split of the built-in review corpus
(deduplicated, texts found under both labels removed):

- ``tfidf+logreg``: character 1-3-gram TF-IDF + logistic regression (the usual baseline);
- ``textops``: the default :class:`~textops.model.classifier.TextClassifier` (TF-IDF condensed
  into out-of-fold linear scores + SVD + surface stats, then XGBoost);
- ``tfidf+xgboost`` (only with ``--raw-xgboost``, it takes minutes): XGBoost on the raw sparse
  TF-IDF matrix, the naive way to use XGBoost here.

Each is trained on 5k, 10k and all training rows; macro-F1 is always measured on the same full
20% test split. Prints a table and the ratios textops/baseline.

    python benchmarks/training.py [--sizes 5000,10000,0] [--raw-xgboost] [--out FILE.json]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import f1_score
from sklearn.model_selection import train_test_split

from textops.data.sources import builtin_corpus
from textops.data.validation import validate_records
from textops.model.classifier import TextClassifier

Fit = Callable[[list[str], list[str]], Callable[[list[str]], list[str]]]


def tfidf() -> TfidfVectorizer:
    return TfidfVectorizer(analyzer="char", ngram_range=(1, 3), sublinear_tf=True, min_df=2)


def fit_logreg(texts: list[str], labels: list[str]) -> Callable[[list[str]], list[str]]:
    vec = tfidf()
    model = LogisticRegression(C=10, max_iter=2000).fit(vec.fit_transform(texts), labels)
    return lambda xs: list(model.predict(vec.transform(xs)))


def fit_raw_xgboost(texts: list[str], labels: list[str]) -> Callable[[list[str]], list[str]]:
    import xgboost as xgb

    classes = sorted(set(labels))
    y = np.array([classes.index(x) for x in labels])
    vec = tfidf()
    model = xgb.XGBClassifier(
        n_estimators=300, max_depth=6, learning_rate=0.1, tree_method="hist", n_jobs=2
    ).fit(vec.fit_transform(texts), y)
    return lambda xs: [classes[i] for i in model.predict(vec.transform(xs))]


def fit_textops(texts: list[str], labels: list[str]) -> Callable[[list[str]], list[str]]:
    return TextClassifier().fit(texts, labels).predict


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="5000,10000,0", help="training sizes; 0 = all")
    parser.add_argument("--raw-xgboost", action="store_true")
    parser.add_argument("--out", type=Path, help="also write the results as JSON")
    args = parser.parse_args()

    rows = validate_records(builtin_corpus(), drop_duplicates=True).rows
    texts, labels = [r.text for r in rows], [r.label for r in rows]
    x_tr, x_te, y_tr, y_te = train_test_split(
        texts, labels, test_size=0.2, stratify=labels, random_state=0
    )
    print(
        f"corpus: {len(texts)} distinct texts; train {len(x_tr)}, test {len(x_te)}", file=sys.stderr
    )
    models: dict[str, Fit] = {"tfidf+logreg": fit_logreg, "textops": fit_textops}
    if args.raw_xgboost:
        models["tfidf+xgboost"] = fit_raw_xgboost
    results: list[dict[str, Any]] = []
    for size in [int(s) for s in args.sizes.split(",")]:
        n = size or len(x_tr)
        if n < len(x_tr):
            sub_x, _, sub_y, _ = train_test_split(
                x_tr, y_tr, train_size=n, stratify=y_tr, random_state=0
            )
        else:
            sub_x, sub_y = x_tr, y_tr
        for name, fit in models.items():
            print(f"  training {name} on {n} rows ...", file=sys.stderr, flush=True)
            start = time.perf_counter()
            predict = fit(sub_x, sub_y)
            seconds = time.perf_counter() - start
            f1 = f1_score(y_te, predict(x_te), average="macro")
            results.append(
                {
                    "model": name,
                    "train_rows": n,
                    "seconds": round(seconds, 1),
                    "macro_f1": round(float(f1), 4),
                }
            )
    print(f"\n{'model':<15}{'rows':>7}{'seconds':>9}{'macro-F1':>10}")
    for r in results:
        print(f"{r['model']:<15}{r['train_rows']:>7}{r['seconds']:>9}{r['macro_f1']:>10}")
    print("\nratios textops / tfidf+logreg:")
    for n in sorted({r["train_rows"] for r in results}):
        by = {r["model"]: r for r in results if r["train_rows"] == n}
        base, ours = by["tfidf+logreg"], by["textops"]
        print(
            f"  {n:>6} rows: macro-F1 x{ours['macro_f1'] / base['macro_f1']:.3f} "
            f"({ours['macro_f1'] - base['macro_f1']:+.4f}), "
            f"time x{ours['seconds'] / max(base['seconds'], 0.1):.1f}"
        )
    if args.out:
        args.out.write_text(json.dumps(results, indent=2), "utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
