"""How the live labelling queue ranks, from the environment (read once per label store).

Every setting has a default, so nothing needs setting; a bad value is an error naming the
variable rather than a silently different queue.

- ``TEXTOPS_LABEL_WEIGHTS``: comma-separated ``part=weight`` overrides of the ranking weights
  (:class:`textops.labelling.ranking.RankingWeights`), e.g. ``drift=0.5,balance=0.1``. Parts:
  ``uncertainty`` (1), ``drift`` (0.2), ``drift_first`` (1; added for a text of the shift in
  recent traffic), ``density`` (0; vectorises every queued text, so it
  costs seconds on a 10,000-text queue), ``business`` (1), ``diversity`` (0.1), ``balance``
  (0; per text of the same predicted class above an even share). A weight of 0 switches the
  part off.
- ``TEXTOPS_LABEL_CLASS_VALUE``: comma-separated ``class=value`` business values by predicted
  class (default none), added to a capture's own ``business`` score part.
- ``TEXTOPS_LABEL_DUPLICATE_THRESHOLD`` (0.8): cosine similarity of char n-grams from which a
  text counts as a near-duplicate of one ranked above it (it moves to the end of the queue);
  above 1 switches the collapse off.
- ``TEXTOPS_LABEL_RANK_DEPTH`` (500): how many places the greedy ranking (diversity, class
  balance, near-duplicates) fills; places after that follow the summed score. Its cost grows
  with the square of the depth, and an annotator works from the top.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass, field

from textops.contracts import Env
from textops.errors import TextopsError
from textops.labelling.ranking import RankingConfig, RankingWeights

DEFAULT_DEPTH = 500


@dataclass(frozen=True)
class QueueConfig:
    """The ranking configuration of the live queue plus what only the live queue needs."""

    ranking: RankingConfig = field(default_factory=RankingConfig)
    class_value: Mapping[str, float] = field(default_factory=dict)
    depth: int = DEFAULT_DEPTH


def load_queue_config(env: Mapping[str, str] | None = None) -> QueueConfig:
    """The queue configuration from ``env`` (default: the process environment)."""
    e = os.environ if env is None else env
    names = [f.name for f in dataclasses.fields(RankingWeights)]
    weights = RankingWeights(
        **_pairs(e.get(Env.LABEL_WEIGHTS, ""), Env.LABEL_WEIGHTS, allowed=names)
    )
    threshold = _number(
        e.get(Env.LABEL_DUPLICATE_THRESHOLD),
        Env.LABEL_DUPLICATE_THRESHOLD,
        RankingConfig.duplicate_threshold,
    )
    depth = _number(e.get(Env.LABEL_RANK_DEPTH), Env.LABEL_RANK_DEPTH, DEFAULT_DEPTH)
    if depth < 1 or depth != int(depth):
        raise TextopsError(
            f"{Env.LABEL_RANK_DEPTH} must be a whole number of at least 1, got {depth}"
        )
    return QueueConfig(
        ranking=RankingConfig(weights=weights, duplicate_threshold=threshold),
        class_value=_pairs(e.get(Env.LABEL_CLASS_VALUE, ""), Env.LABEL_CLASS_VALUE),
        depth=int(depth),
    )


def _pairs(raw: str, variable: str, allowed: list[str] | None = None) -> dict[str, float]:
    """``a=1,b=0.5`` → {"a": 1.0, "b": 0.5}, with errors that name the variable."""
    out: dict[str, float] = {}
    for chunk in filter(None, (c.strip() for c in raw.split(","))):
        name, sep, value = chunk.partition("=")
        name = name.strip()
        if not sep or not name:
            raise TextopsError(f"{variable}: expected name=number, got {chunk!r}")
        if allowed is not None and name not in allowed:
            raise TextopsError(f"{variable}: unknown part {name!r} (known: {', '.join(allowed)})")
        out[name] = _number(value, variable, 0.0)
    return out


def _number(raw: str | None, variable: str, default: float) -> float:
    if raw is None or not raw.strip():
        return float(default)
    try:
        value = float(raw)
    except ValueError:
        raise TextopsError(f"{variable} must be a number, got {raw!r}") from None
    if value != value or value in (float("inf"), float("-inf")):
        raise TextopsError(f"{variable} must be a finite number, got {raw!r}")
    return value
