"""The per-text quality meter and the features' non-Chinese share count exactly what the plain
per-character definitions count."""

from __future__ import annotations

import random

from textops.features.text_stats import is_chinese, non_chinese_share
from textops.serving.quality import QualityMeter

ALPHABET = "房间很干净前台服务热情物流太慢屏幕划痕㐀䶵鿿一 \t\n\u3000\x1cabcXYZ123!！?？，。😀é"


def _texts(n: int) -> list[str]:
    rng = random.Random(7)
    return [
        "",
        " \t",
        "\u3000",
        *("".join(rng.choices(ALPHABET, k=rng.randint(1, 60))) for _ in range(n)),
    ]


def test_measure_matches_the_per_character_definitions() -> None:
    vocabulary = "房间很干净前台服务abc!，"
    meter = QualityMeter({"vocabulary": vocabulary})
    for text in _texts(500):
        quality = meter.measure(text)
        assert quality.length == len(text)
        visible = [ch for ch in text if not ch.isspace()]
        plain = sum(not is_chinese(ch) for ch in visible) / len(visible) if visible else 0.0
        assert quality.non_chinese_share == non_chinese_share(text) == plain, text
        expected_unseen = sum(1 for ch in text if not ch.isspace() and ch not in vocabulary)
        assert quality.unseen_chars == expected_unseen, text
