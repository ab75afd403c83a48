"""Surface statistics of texts shared by the features and the drift profile (pure)."""

from __future__ import annotations

import math

import numpy as np


def is_chinese(ch: str) -> bool:
    """CJK unified ideographs (basic block and extension A) — what 'Chinese' means here."""
    code = ord(ch)
    return 0x4E00 <= code <= 0x9FFF or 0x3400 <= code <= 0x4DBF


def non_chinese_share(text: str) -> float:
    """Share of non-whitespace characters that are not Chinese ideographs (0 for empty)."""
    chars = [c for c in text if not c.isspace()]
    if not chars:
        return 0.0
    return sum(not is_chinese(c) for c in chars) / len(chars)


def surface_stats(texts: list[str]) -> np.ndarray:
    """Columns: log(1+length), non-Chinese share, exclamation marks, question marks."""
    out = np.zeros((len(texts), 4), dtype=np.float32)
    for i, text in enumerate(texts):
        out[i, 0] = math.log1p(len(text))
        out[i, 1] = non_chinese_share(text)
        out[i, 2] = text.count("!") + text.count("！")
        out[i, 3] = text.count("?") + text.count("？")
    return out
