"""Surface statistics of texts shared by the features and the drift profile (pure)."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import numpy as np


def is_chinese(ch: str) -> bool:
    """CJK unified ideographs (basic block and extension A) — what 'Chinese' means here."""
    code = ord(ch)
    return 0x4E00 <= code <= 0x9FFF or 0x3400 <= code <= 0x4DBF


def char_ngrams(text: str, sizes: Sequence[int] = (1, 2)) -> Iterable[str]:
    """The character n-grams of ``text`` without its whitespace, for each size in ``sizes``."""
    compact = "".join(text.split())
    for n in sizes:
        for i in range(len(compact) - n + 1):
            yield compact[i : i + n]


def non_chinese_share(text: str) -> float:
    """Share of non-whitespace characters that are not Chinese ideographs (0 for empty).

    Vectorised over the code points rather than a Python loop over characters: the same value
    as that loop with :func:`is_chinese`, about 7x cheaper on a 100-character review. It runs
    for every text classified (features), measured and observed (quality, drift).
    """
    visible = "".join(text.split())  # str.split() drops exactly what str.isspace() calls space
    if not visible:
        return 0.0
    codes = np.frombuffer(visible.encode("utf-32-le"), dtype=np.uint32)
    # unsigned wrap-around: one comparison per range
    chinese = np.count_nonzero(
        (codes - 0x4E00 <= 0x9FFF - 0x4E00) | (codes - 0x3400 <= 0x4DBF - 0x3400)
    )
    return (len(visible) - int(chinese)) / len(visible)


def surface_stats(texts: list[str]) -> np.ndarray:
    """Columns: log(1+length), non-Chinese share, exclamation marks, question marks."""
    out = np.zeros((len(texts), 4), dtype=np.float32)
    for i, text in enumerate(texts):
        out[i, 0] = math.log1p(len(text))
        out[i, 1] = non_chinese_share(text)
        out[i, 2] = text.count("!") + text.count("！")
        out[i, 3] = text.count("?") + text.count("？")
    return out
