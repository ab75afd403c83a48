"""MLflow server answers without the MLflow package: the health probe and the error codes
that mean "no such thing". Imported by the operator, which must stay small (no MLflow,
pandas or numpy in its process); ``tracking.py`` re-exports both for the other processes.
"""

from __future__ import annotations

import urllib.error
import urllib.request

from textops.errors import TrackingUnavailableError

HEALTH_TIMEOUT_S = 5
# The error codes with which MLflow answers for a model, alias or version that does not exist;
# any other error is the server failing, never an absence.
MISSING_ERROR_CODES = frozenset({"RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE", "NOT_FOUND"})


def probe(uri: str) -> None:
    """Raise :class:`TrackingUnavailableError` unless the server at ``uri`` is healthy."""
    url = uri.rstrip("/") + "/health"
    try:
        with urllib.request.urlopen(url, timeout=HEALTH_TIMEOUT_S) as response:
            if response.status != 200:
                raise TrackingUnavailableError(f"MLflow at {uri} answered {response.status}")
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise TrackingUnavailableError(
            f"MLflow tracking server {uri} is unreachable: {reason}"
        ) from exc
