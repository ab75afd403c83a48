"""The pinned holdout: which texts are never trained on, stable across dataset versions.

Membership is decided by a salted hash of the normalised text alone, so a text keeps its side
forever: a text in version 1's holdout is in every later version's holdout, new labelled texts
fall on a side by themselves, and the promotion gate compares challenger and champion on texts
neither was trained on — even when they were trained on different versions.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

HOLDOUT_SALT = "textops-holdout-v1"
DEFAULT_HOLDOUT_FRACTION = 0.2
_SCALE = 10_000


def in_holdout(text: str, fraction: float = DEFAULT_HOLDOUT_FRACTION) -> bool:
    digest = hashlib.sha256(f"{HOLDOUT_SALT}\x00{text}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % _SCALE < fraction * _SCALE


def split_indices(
    texts: Sequence[str], fraction: float = DEFAULT_HOLDOUT_FRACTION
) -> tuple[list[int], list[int]]:
    """(train indices, holdout indices) for the given texts."""
    train: list[int] = []
    holdout: list[int] = []
    for i, text in enumerate(texts):
        (holdout if in_holdout(text, fraction) else train).append(i)
    return train, holdout
