"""Durations as written in a ModelDeployment ("30s", "10m", "6h", "1d", "1h30m") (pure).

The CRD's pattern admits exactly what :func:`parse_duration` accepts, so a spec the API server
stored always parses; :func:`format_duration` writes the same form back.
"""

from __future__ import annotations

import re
from datetime import timedelta

_PART = re.compile(r"([0-9]+)([smhd])")
_WHOLE = re.compile(r"^(?:[0-9]+[smhd])+$")
_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str) -> timedelta:
    """Parse "1h30m"-style text; raise ValueError naming the accepted form otherwise."""
    if not isinstance(text, str) or not _WHOLE.match(text):
        raise ValueError(f"invalid duration {text!r}: use e.g. '30s', '10m', '6h', '1d', '1h30m'")
    seconds = sum(int(n) * _SECONDS[unit] for n, unit in _PART.findall(text))
    return timedelta(seconds=seconds)


def format_duration(value: timedelta) -> str:
    """The shortest "1d2h3m4s" form of a whole number of seconds ("0s" for zero)."""
    total = int(value.total_seconds())
    if total < 0 or total != value.total_seconds():
        raise ValueError(f"cannot format {value!r}: whole, non-negative seconds only")
    parts = []
    for unit in ("d", "h", "m", "s"):
        n, total = divmod(total, _SECONDS[unit])
        if n:
            parts.append(f"{n}{unit}")
    return "".join(parts) or "0s"
