"""Request checks of the labelling API (pure): the token, paging, label and skip bodies.

The API lives beside the prediction API under ``/labelling/api/`` and is for annotators only:
every request needs the token from ``TEXTOPS_LABEL_TOKEN`` (``Authorization: Bearer …`` or
``X-Textops-Token``), compared in constant time. With no token configured the API stays closed
(401 saying so) rather than open to anyone.
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from textops.contracts import Env
from textops.serving.validation import RequestRejected

MAX_PAGE = 200
MAX_ANNOTATOR_CHARS = 255


@dataclass(frozen=True)
class LabelSubmission:
    sample_id: str
    label: str | None  # None: a skip
    annotator: str


def check_token(headers: Mapping[str, str], expected: str | None) -> None:
    if not expected:
        raise RequestRejected(
            401,
            "labelling_disabled",
            f"the labelling API is closed: set {Env.LABEL_TOKEN} on the server",
        )
    auth = headers.get("authorization", "")
    given = auth[7:].strip() if auth.lower().startswith("bearer ") else ""
    given = given or headers.get("x-textops-token", "").strip()
    if not given:
        raise RequestRejected(
            401, "missing_token", "send the labelling token as 'Authorization: Bearer <token>'"
        )
    if not hmac.compare_digest(given.encode(), expected.encode()):
        raise RequestRejected(401, "invalid_token", "the labelling token is not valid")


def page(query: Mapping[str, str]) -> tuple[int, int]:
    """(limit, offset) from the query string, with clear errors for nonsense."""
    values = []
    for name, default, low, high in (("limit", 20, 1, MAX_PAGE), ("offset", 0, 0, 10**9)):
        raw = query.get(name, str(default))
        try:
            value = int(raw)
        except ValueError:
            raise RequestRejected(
                400, "bad_paging", f"{name} must be an integer, got {raw!r}"
            ) from None
        if not low <= value <= high:
            raise RequestRejected(400, "bad_paging", f"{name} must be in [{low}, {high}]")
        values.append(value)
    return values[0], values[1]


def submission(payload: Mapping[str, Any], classes: Sequence[str], skip: bool) -> LabelSubmission:
    sample_id = payload.get("id")
    if not isinstance(sample_id, str) or not sample_id.strip():
        raise RequestRejected(400, "missing_id", "'id' (the queued sample's id) is required")
    annotator = payload.get("annotator", "anonymous")
    if not isinstance(annotator, str) or len(annotator) > MAX_ANNOTATOR_CHARS:
        raise RequestRejected(
            400, "bad_annotator", f"'annotator' must be a string of at most {MAX_ANNOTATOR_CHARS}"
        )
    if skip:
        return LabelSubmission(sample_id.strip(), None, annotator.strip() or "anonymous")
    label = payload.get("label")
    if not isinstance(label, str) or label not in classes:
        raise RequestRejected(
            422, "unknown_label", f"'label' must be one of {list(classes)}, got {label!r}"
        )
    return LabelSubmission(sample_id.strip(), label, annotator.strip() or "anonymous")
