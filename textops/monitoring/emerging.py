"""What recent traffic talks about that training did not: emerging bigrams (pure).

A text's rarity (its share of n-grams outside the reference's frequent ones) says a text is
unusual, not that it belongs to a shift: short, misspelt or rambling in-distribution texts are
rare too, and in the labelling queue they crowded out the texts of a new domain (half of the
top 50 with a third of the traffic from it). What marks a shift is that the *same* unusual
bigrams recur across recent traffic — hotel reviews say 房间, 前台, 入住; newspaper sentences
企业, 政府, 记者. So: a character bigram is *emerging* when it appears in enough recent texts
and in a share of them many times the share of training texts that contained it (the
reference profile's ``char_ngrams.bigram_presence``; a bigram missing from it was in at
most ``bigram_floor`` of them). A text belongs to the shift when it contains an emerging
bigram.

The thresholds were chosen on the review corpus (`benchmarks/queue_drift.py`): with a
window of 1,000 texts, in-distribution windows gave no emerging bigram, and a third of the
traffic from news or hotel reviews marked 41 % / 100 % of those texts at 96 % / 93 %
precision; a ratio of 3 instead of 10 let ordinary bigrams through (8 on in-distribution
traffic, 83 % / 61 % precision).

Old shifts fade by themselves: once traffic no longer carries their bigrams, or once a model
trained on them serves (their bigrams are in its reference), they stop emerging. A profile
without a bigram table (trained before it existed) finds nothing emerging.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from textops.features.text_stats import char_ngrams

BIGRAM = (2,)
RATIO = 10.0  # window presence at least this many times the training presence
MIN_DOC_SHARE = 0.01  # and in at least this share of the window's texts
MIN_DOCS = 5  # and in at least this many texts


def bigrams(text: str) -> set[str]:
    """The distinct character bigrams of ``text`` (without its whitespace)."""
    return set(char_ngrams(text, BIGRAM))


@dataclass(frozen=True)
class EmergingGrams:
    """The emerging bigrams of one window, and what a text has of them."""

    grams: frozenset[str]

    @property
    def key(self) -> str:
        """Names this set (changes when a bigram emerges or fades)."""
        return hashlib.sha256("\0".join(sorted(self.grams)).encode()).hexdigest()[:16]

    def found_in(self, text: str) -> list[str]:
        return sorted(bigrams(text) & self.grams)

    def evidence(self, text: str, most: int = 5) -> str:
        """Why ``text`` belongs to the shift, for an annotator; "" when it does not."""
        found = self.found_in(text)
        if not found:
            return ""
        shown = ", ".join(found[:most]) + (", ..." if len(found) > most else "")
        return f"shares n-grams new in recent traffic ({shown})"


def emerging_grams(
    reference: Mapping[str, Any],
    texts: Iterable[str],
    ratio: float = RATIO,
    min_doc_share: float = MIN_DOC_SHARE,
    min_docs: int = MIN_DOCS,
) -> EmergingGrams:
    """Emerging bigrams of ``texts`` (the recent window) against a profile's ``char_ngrams``."""
    table: Mapping[str, float] = reference.get("bigram_presence") or {}
    if not table:
        return EmergingGrams(frozenset())
    bound = float(reference.get("bigram_floor") or min(table.values()))
    documents: Counter[str] = Counter()
    count = 0
    for text in texts:
        count += 1
        documents.update(bigrams(text))
    least = max(min_docs, min_doc_share * count)
    return EmergingGrams(
        frozenset(
            g
            for g, docs in documents.items()
            if docs >= least and docs / count >= ratio * table.get(g, bound)
        )
    )
