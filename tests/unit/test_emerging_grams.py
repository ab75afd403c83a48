"""Emerging bigrams: what recent traffic repeats that the training reference does not know."""

from __future__ import annotations

from typing import Any

import numpy as np

from textops.data.sources import news_sentences
from textops.monitoring.emerging import emerging_grams
from textops.monitoring.reference import bigram_presence, build_reference_profile

BOOKS = [
    "这本书写得很好，值得一读",
    "书的内容很无聊，不推荐",
    "作者的观点很新颖，值得思考",
    "翻译有些生硬，故事还行",
    "快递很快，书的包装也很好",
]
HOTELS = [
    "酒店前台服务很好，房间干净",
    "房间太小，入住等了很久",
    "前台态度差，房间有异味",
    "入住方便，房间安静",
]


def char_ngrams_of(texts: list[str]) -> dict[str, Any]:
    """The ``char_ngrams`` section of a reference profile of ``texts``."""
    labels = ["a", "b"] * (len(texts) // 2) + ["a"] * (len(texts) % 2)
    profile = build_reference_profile(texts, labels, ["a", "b"], np.zeros((0, 2)))
    return profile["char_ngrams"]


def numbered(texts: list[str], copies: int) -> list[str]:
    """Distinct texts: each of ``texts`` ``copies`` times with a number (digits are not
    Chinese bigrams of interest, and a bigram needs two texts to be listed)."""
    return [f"{t}{k}" for k in range(copies) for t in texts]


def test_a_shift_in_traffic_emerges_and_usual_traffic_does_not() -> None:
    reference = char_ngrams_of(numbered(BOOKS, 200))
    shifted = emerging_grams(reference, numbered(BOOKS, 40) + numbered(HOTELS, 25))
    assert {"房间", "前台", "入住"} <= shifted.grams
    assert not shifted.grams & {"书的", "值得"}
    assert emerging_grams(reference, numbered(BOOKS, 60)).grams == frozenset()


def test_a_text_of_the_shift_says_why_a_usual_one_does_not() -> None:
    reference = char_ngrams_of(numbered(BOOKS, 200))
    shifted = emerging_grams(reference, numbered(BOOKS, 40) + numbered(HOTELS, 25))
    assert shifted.found_in("前台说房间满了") == ["前台", "房间"]
    assert shifted.evidence("前台说房间满了").startswith("shares n-grams new in recent traffic")
    assert shifted.evidence("这本书值得一读") == ""


def test_too_few_texts_carry_a_bigram_for_it_to_emerge() -> None:
    """Four odd texts among hundreds are not a shift (at least MIN_DOCS texts)."""
    reference = char_ngrams_of(numbered(BOOKS, 200))
    assert emerging_grams(reference, numbered(BOOKS, 40) + HOTELS).grams == frozenset()


def test_a_learned_shift_no_longer_emerges() -> None:
    """Once the reference was trained on the new texts, the same traffic shows no shift."""
    news = news_sentences(1000, 80)
    traffic = numbered(BOOKS, 40) + news[:300]
    assert emerging_grams(char_ngrams_of(numbered(BOOKS, 200)), traffic).grams
    learned = char_ngrams_of(numbered(BOOKS, 200) + news)
    assert emerging_grams(learned, traffic).grams == frozenset()


def test_a_profile_without_a_bigram_table_finds_nothing() -> None:
    reference = char_ngrams_of(numbered(BOOKS, 200))
    del reference["bigram_presence"], reference["bigram_floor"]
    assert emerging_grams(reference, numbered(HOTELS, 50)).grams == frozenset()


def test_the_table_keeps_bigrams_of_two_texts_or_more_and_its_floor() -> None:
    table = bigram_presence(["房间很好", "房间太小", "书很好"])
    assert table["bigram_presence"] == {"房间": 0.666667, "很好": 0.666667}
    assert table["bigram_floor"] == round(1 / 3, 6)
    capped = bigram_presence(["房间很好", "房间太小", "书很好"], most=1)
    assert len(capped["bigram_presence"]) == 1 and capped["bigram_floor"] == 0.666667


def test_the_key_names_the_set() -> None:
    reference = char_ngrams_of(numbered(BOOKS, 200))
    a = emerging_grams(reference, numbered(BOOKS, 40) + numbered(HOTELS, 25))
    assert a.key == emerging_grams(reference, numbered(HOTELS, 25) + numbered(BOOKS, 40)).key
    assert a.key != emerging_grams(reference, numbered(BOOKS, 40)).key
