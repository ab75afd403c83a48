"""Active-learning benchmark: does our labelling queue save labels over random or margin sampling?

Simulation on the built-in review corpus (deduplicated, conflicting texts removed): a 3,000-text
test set is held out, 100 random pool texts are the labelled seed, and in each round every
strategy "labels" the next batch from the rest of the pool, the learner is retrained and test
macro-F1 measured. Strategies:

- ``random``: a random batch (what labelling without a queue amounts to);
- ``margin``: the batch with the smallest top-2 probability margin (plain uncertainty sampling);
- ``textops``: the top of :func:`textops.labelling.ranking.rank` — the same code that orders
  the live queue — with its default configuration (margin uncertainty + drift against a
  reference profile of the labelled texts, a small diversity penalty, near-duplicate collapse
  and the predicted-class balance penalty); the other ``rank-*`` entries of ``STRATEGIES`` are
  the variants tried (committee, density, exploration, balance weights...) and ``badge`` a
  BADGE-style batch for comparison; see the "Labelling queue" section of
  ``benchmarks/README.md``.

Learner: character 1-3-gram TF-IDF (sublinear tf, min_df 2) + logistic regression (C=10,
liblinear). The vectoriser is fitted once on the pool + test texts (unsupervised, no labels), so
rounds differ only in which rows are labelled; the ranking receives the same TF-IDF rows as its
similarity vectors. Reports, per strategy, how many labels it needs to reach random sampling's
final macro-F1 (linear interpolation between rounds), per seed and on the seed-averaged curves,
and plots the curves.

    python benchmarks/labelling.py [--seeds 5] [--rounds 20] [--batch 200] [--quick]
        [--strategies random,margin,textops] [--first-seed N] [--out FILE.json]
    python benchmarks/labelling.py --merge A.json B.json   # seeds split over parallel runs
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from scipy import sparse
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import f1_score
from sklearn.preprocessing import normalize

from textops.data.sources import builtin_corpus
from textops.data.validation import validate_records
from textops.labelling.ranking import RankingConfig, RankingWeights, rank
from textops.monitoring.reference import build_reference_profile

RESULTS = Path(__file__).parent / "results"
TEST_SIZE = 3000
SEED_SIZE = 100


@dataclass
class Round:
    """What a strategy sees when it chooses the next batch."""

    x: sparse.csr_matrix  # TF-IDF rows of all texts
    texts: list[str]
    labelled: np.ndarray  # indices into texts
    labels: np.ndarray  # 0/1.. labels of ``labelled``
    candidates: np.ndarray  # unlabelled pool indices
    model: LogisticRegression
    rng: np.random.Generator
    batch: int


Strategy = Callable[[Round], np.ndarray]


def fit(x: sparse.csr_matrix, y: np.ndarray) -> LogisticRegression:
    return LogisticRegression(C=10, solver="liblinear", max_iter=2000).fit(x, y)


def pick_random(r: Round) -> np.ndarray:
    return r.rng.choice(r.candidates, size=r.batch, replace=False)


def pick_margin(r: Round) -> np.ndarray:
    proba = r.model.predict_proba(r.x[r.candidates])
    top2 = np.sort(proba, axis=1)[:, -2:]
    return r.candidates[np.argsort(top2[:, 1] - top2[:, 0], kind="stable")[: r.batch]]


def committee(r: Round, members: int) -> np.ndarray:
    """Probabilities of ``members`` learners trained on bootstrap resamples of the labels."""
    out = []
    x_lab = r.x[r.labelled]
    for _ in range(members):
        while True:
            take = r.rng.integers(0, len(r.labelled), len(r.labelled))
            if len(np.unique(r.labels[take])) > 1:
                break
        out.append(fit(x_lab[take], r.labels[take]).predict_proba(r.x[r.candidates]))
    return np.stack(out)


def make_ranked(
    config: RankingConfig,
    members: int = 0,
    with_reference: bool = True,
    explore_below: int = 0,
    explore_share: float = 0.0,
) -> Strategy:
    """A strategy that labels the top of our ranking, with the benchmark's learner."""

    def pick(r: Round) -> np.ndarray:
        proba = r.model.predict_proba(r.x[r.candidates])
        if members:
            proba = np.concatenate([proba[None], committee(r, members)])
        reference = None
        if with_reference:
            names = [str(c) for c in r.model.classes_]
            reference = build_reference_profile(
                [r.texts[i] for i in r.labelled],
                [names[k] for k in r.labels],
                names,
                np.zeros((0, len(names))),
            )
        explore = round(r.batch * explore_share) if len(r.labelled) < explore_below else 0
        items = rank(
            [str(i) for i in r.candidates],
            [r.texts[i] for i in r.candidates],
            proba,
            reference=reference,
            config=config,
            limit=r.batch - explore,
            vectors=r.x[r.candidates],
        )
        chosen = np.array([int(item.id) for item in items], dtype=int)
        if explore:
            rest = np.setdiff1d(r.candidates, chosen)
            chosen = np.concatenate([chosen, r.rng.choice(rest, size=explore, replace=False)])
        return chosen

    return pick


def cfg(**weights: float) -> RankingConfig:
    return RankingConfig(weights=RankingWeights(**weights))


def pick_badge(r: Round) -> np.ndarray:
    """BADGE-style batch: k-means++ seeding on the logistic loss's gradient embeddings.

    For a linear model the gradient of the loss at the predicted label is the text's row scaled
    by (p - onehot(predicted)) per class, so its length grows with uncertainty and its direction
    with the text; D^2 sampling then mixes uncertainty with diversity.
    """
    proba = r.model.predict_proba(r.x[r.candidates])
    predicted = proba.argmax(axis=1)
    rows = normalize(r.x[r.candidates])
    blocks = []
    for k in range(proba.shape[1]):
        scale = proba[:, k] - (predicted == k)
        blocks.append(sparse.diags(scale) @ rows)
    g = sparse.csr_matrix(sparse.hstack(blocks))
    norms = np.asarray(g.multiply(g).sum(axis=1)).ravel()

    def distances(j: int) -> np.ndarray:
        return np.maximum(norms + norms[j] - 2 * (g @ g[j].T).toarray().ravel(), 0.0)

    chosen = [int(np.argmax(norms))]
    d2 = distances(chosen[0])
    while len(chosen) < r.batch:
        d2[chosen] = 0.0
        nxt = int(r.rng.choice(len(d2), p=d2 / d2.sum()))
        chosen.append(nxt)
        d2 = np.minimum(d2, distances(nxt))
    return r.candidates[np.array(chosen)]


# The variants tried (``--strategies`` picks any); "textops" is the default configuration.
STRATEGIES: dict[str, Strategy] = {
    "random": pick_random,
    "margin": pick_margin,
    "textops": make_ranked(RankingConfig()),
    "badge": pick_badge,
    "rank-bal0.1": make_ranked(cfg(balance=0.1)),
    "rank-bal1": make_ranked(cfg(balance=1.0)),
    "rank-drift0.5": make_ranked(cfg(drift=0.5, density=0, diversity=0.1)),
    "rank-u-drift": make_ranked(cfg(drift=0.5, density=0, diversity=0)),
    "rank-u-div": make_ranked(cfg(drift=0, density=0, diversity=0.25), with_reference=False),
    "rank-div-high": make_ranked(cfg(drift=0, density=0, diversity=0.5), with_reference=False),
    "rank-den0.25": make_ranked(cfg(drift=0.5, density=0.25, diversity=0.25)),
    "rank-den1": make_ranked(cfg(drift=0, density=1.0, diversity=0.25), with_reference=False),
    "rank-committee": make_ranked(cfg(drift=0, density=0, diversity=0), members=4),
    "rank-u-explore": make_ranked(
        cfg(drift=0, density=0, diversity=0.1),
        with_reference=False,
        explore_below=500,
        explore_share=0.5,
    ),
}


def interpolate_labels(sizes: np.ndarray, scores: np.ndarray, target: float) -> float | None:
    """Labels at which ``scores`` first reaches ``target`` (linear between rounds)."""
    above = np.nonzero(scores >= target)[0]
    if not len(above):
        return None
    i = int(above[0])
    if i == 0:
        return float(sizes[0])
    s0, s1 = scores[i - 1], scores[i]
    frac = (target - s0) / (s1 - s0) if s1 > s0 else 1.0
    return float(sizes[i - 1] + frac * (sizes[i] - sizes[i - 1]))


def simulate(
    x: sparse.csr_matrix,
    texts: list[str],
    y: np.ndarray,
    seed: int,
    names: list[str],
    rounds: int,
    batch: int,
) -> dict[str, list[float]]:
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(texts))
    test, pool = order[:TEST_SIZE], order[TEST_SIZE:]
    seed_idx = rng.choice(pool, size=SEED_SIZE, replace=False)
    curves: dict[str, list[float]] = {}
    for name in names:
        strategy = STRATEGIES[name]
        srng = np.random.default_rng([seed, 1])  # same exploration stream for every strategy
        labelled = seed_idx.copy()
        scores: list[float] = []
        start = time.perf_counter()
        for step in range(rounds + 1):
            model = fit(x[labelled], y[labelled])
            scores.append(float(f1_score(y[test], model.predict(x[test]), average="macro")))
            if step == rounds:
                break
            candidates = np.setdiff1d(pool, labelled)
            chosen = strategy(
                Round(x, texts, labelled, y[labelled], candidates, model, srng, batch)
            )
            assert len(np.unique(chosen)) == batch and not np.isin(chosen, labelled).any()
            labelled = np.concatenate([labelled, chosen])
        print(
            f"seed {seed} {name:>14}: "
            + " ".join(f"{s:.3f}" for s in scores)
            + f" final {scores[-1]:.3f} ({time.perf_counter() - start:.0f}s)",
            file=sys.stderr,
            flush=True,
        )
        curves[name] = scores
    return curves


def summarise(
    runs: list[dict[str, list[float]]], sizes: np.ndarray, names: list[str]
) -> dict[str, Any]:
    mean = {n: np.mean([run[n] for run in runs], axis=0) for n in names}
    target = float(mean["random"][-1])
    final_random = float(sizes[-1])
    summary: dict[str, Any] = {"random_final_f1": target, "random_final_labels": final_random}
    for n in names:
        per_seed = []
        for run in runs:
            need = interpolate_labels(sizes, np.asarray(run[n]), run["random"][-1])
            per_seed.append(need)
        on_mean = interpolate_labels(sizes, mean[n], target)
        reached = [p for p in per_seed if p is not None]
        summary[n] = {
            "final_f1": float(mean[n][-1]),
            "labels_on_mean_curve": on_mean,
            "share_on_mean_curve": None if on_mean is None else on_mean / final_random,
            "labels_per_seed": per_seed,
            "mean_share_per_seed": (
                float(np.mean(reached) / final_random) if len(reached) == len(runs) else None
            ),
        }
    return summary


def plot(
    runs: list[dict[str, list[float]]], sizes: np.ndarray, names: list[str], out: Path
) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for n in names:
        curves = np.array([run[n] for run in runs])
        m, s = curves.mean(axis=0), curves.std(axis=0)
        ax.plot(sizes, m, label=n, marker=".")
        ax.fill_between(sizes, m - s, m + s, alpha=0.15)
    ax.axhline(float(np.mean([run["random"][-1] for run in runs])), color="grey", ls=":", lw=1)
    ax.set_xlabel("labelled texts")
    ax.set_ylabel("test macro-F1")
    ax.set_title(f"Active learning on the review corpus ({len(runs)} seeds, mean ± sd)")
    ax.legend(loc="lower right")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=120)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--batch", type=int, default=200)
    parser.add_argument("--quick", action="store_true", help="smoke run: 1 seed, 3 rounds of 100")
    parser.add_argument("--strategies", default="random,margin,textops")
    parser.add_argument("--first-seed", type=int, default=0, help="to split seeds over runs")
    parser.add_argument("--out", type=Path, help="also write curves and summary as JSON")
    parser.add_argument(
        "--merge", type=Path, nargs="+", help="summarise and plot the runs of earlier --out files"
    )
    parser.add_argument("--plot", type=Path, default=RESULTS / "labelling.png")
    args = parser.parse_args()
    if args.quick:
        args.seeds, args.rounds, args.batch = 1, 3, 100
    if args.merge:
        runs, seeds, sizes = merged(args.merge)
        wanted = args.strategies.split(",")
        names = [n for n in wanted if all(n in run for run in runs)]
        report(runs, seeds, sizes, names, args)
        return 0
    names = args.strategies.split(",")
    unknown = [n for n in names if n not in STRATEGIES]
    if unknown:
        parser.error(f"unknown strategies: {unknown}")

    rows = validate_records(builtin_corpus(), drop_duplicates=True).rows
    texts = [r.text for r in rows]
    classes = sorted({r.label for r in rows})
    y = np.array([classes.index(r.label) for r in rows])
    vectoriser = TfidfVectorizer(analyzer="char", ngram_range=(1, 3), sublinear_tf=True, min_df=2)
    x = sparse.csr_matrix(vectoriser.fit_transform(texts))
    print(f"corpus: {len(texts)} texts, {x.shape[1]} n-gram columns", file=sys.stderr)
    sizes = SEED_SIZE + args.batch * np.arange(args.rounds + 1)
    seeds = list(range(args.first_seed, args.first_seed + args.seeds))
    runs = [simulate(x, texts, y, s, names, args.rounds, args.batch) for s in seeds]
    report(runs, seeds, sizes, names, args)
    return 0


def report(
    runs: list[dict[str, list[float]]],
    seeds: list[int],
    sizes: np.ndarray,
    names: list[str],
    args: Any,
) -> None:
    summary = summarise(runs, sizes, names) if "random" in names else None
    if summary is not None:
        print(json.dumps(summary, indent=2))
        plot(runs, sizes, names, args.plot)
    if args.out:
        payload = {"sizes": sizes.tolist(), "seeds": seeds, "runs": runs, "summary": summary}
        args.out.write_text(json.dumps(payload, indent=1))


def merged(paths: list[Path]) -> tuple[list[dict[str, list[float]]], list[int], np.ndarray]:
    """Runs of several ``--out`` files joined by seed (files may hold other strategies)."""
    by_seed: dict[int, dict[str, list[float]]] = {}
    sizes = np.zeros(0)
    for path in paths:
        payload = json.loads(path.read_text())
        sizes = np.asarray(payload["sizes"])
        for seed, run in zip(payload["seeds"], payload["runs"], strict=True):
            by_seed.setdefault(seed, {}).update(run)
    seeds = sorted(by_seed)
    return [by_seed[s] for s in seeds], seeds, sizes


if __name__ == "__main__":
    sys.exit(main())
