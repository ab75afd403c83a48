"""Request validation with limits (pure): every bad input becomes a 4xx naming the problem.

The service reads raw bodies instead of letting a framework parse them, so that invalid
UTF-8, invalid JSON, a wrong content type and every shape error get one consistent answer:
an HTTP status, a short machine-readable ``reason`` (also the label of the rejected-requests
metric) and a message a person can act on. Nothing here raises anything but
:class:`RequestRejected`.
"""

from __future__ import annotations

import json
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from textops.serving.config import Limits

JSON_MEDIA_TYPE = "application/json"
# JSON escapes make one character up to 12 bytes ("\\ud83d\\ude00"); keep a margin on top
BYTES_PER_CHAR = 12
BODY_OVERHEAD = 4096

# reasons: the label values of textops_rejected_requests_total
CONTENT_TYPE = "content_type"
BODY_TOO_LARGE = "body_too_large"
INVALID_UTF8 = "invalid_utf8"
INVALID_JSON = "invalid_json"
NOT_AN_OBJECT = "not_an_object"
MISSING_TEXTS = "missing_texts"
TEXTS_NOT_A_LIST = "texts_not_a_list"
EMPTY_LIST = "empty_list"
TOO_MANY_TEXTS = "too_many_texts"
NOT_A_STRING = "not_a_string"
EMPTY_TEXT = "empty_text"
TEXT_TOO_LONG = "text_too_long"
INVALID_TEXT = "invalid_text"
MISSING_ID = "missing_id"
UNKNOWN_ID = "unknown_id"
BAD_FEEDBACK = "bad_feedback"
UNKNOWN_LABEL = "unknown_label"
DUPLICATE_FEEDBACK = "duplicate_feedback"
REASONS = (
    CONTENT_TYPE,
    BODY_TOO_LARGE,
    INVALID_UTF8,
    INVALID_JSON,
    NOT_AN_OBJECT,
    MISSING_TEXTS,
    TEXTS_NOT_A_LIST,
    EMPTY_LIST,
    TOO_MANY_TEXTS,
    NOT_A_STRING,
    EMPTY_TEXT,
    TEXT_TOO_LONG,
    INVALID_TEXT,
    MISSING_ID,
    UNKNOWN_ID,
    BAD_FEEDBACK,
    UNKNOWN_LABEL,
    DUPLICATE_FEEDBACK,
)


class RequestRejected(Exception):
    """A request the service refuses: ``status`` (4xx), ``reason`` and a human ``message``."""

    def __init__(self, status: int, reason: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.reason = reason
        self.message = message

    def body(self) -> dict[str, Any]:
        return {"error": self.message, "reason": self.reason}


@dataclass(frozen=True)
class Feedback:
    """What a person said about one prediction: the true label, or only right/wrong."""

    prediction_id: str
    label: str | None = None
    accepted: bool | None = None


def max_body_bytes(limits: Limits) -> int:
    return limits.max_texts * (limits.max_text_chars * BYTES_PER_CHAR + 8) + BODY_OVERHEAD


def parse_json_object(
    body: bytes, content_type: str | None, max_bytes: int = 1 << 20
) -> dict[str, Any]:
    """Decode a UTF-8 JSON object body, refusing anything else with a precise reason."""
    media_type, _, params = (content_type or "").partition(";")
    if media_type.strip().lower() != JSON_MEDIA_TYPE:
        shown = content_type or "none"
        raise RequestRejected(
            415, CONTENT_TYPE, f"Content-Type must be {JSON_MEDIA_TYPE}, got {shown}"
        )
    charset = _charset(params)
    if charset not in (None, "utf-8", "utf8"):
        raise RequestRejected(415, CONTENT_TYPE, f"the body must be UTF-8, not charset {charset}")
    if len(body) > max_bytes:
        raise RequestRejected(
            413,
            BODY_TOO_LARGE,
            f"the body has {len(body)} bytes, more than the {max_bytes} allowed",
        )
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise RequestRejected(
            400, INVALID_UTF8, f"the body is not valid UTF-8 (byte {exc.start}: {exc.reason})"
        ) from None
    if not text.strip():
        raise RequestRejected(400, INVALID_JSON, "the body is empty; expected a JSON object")
    try:
        payload = json.loads(text)
    except json.JSONDecodeError as exc:
        raise RequestRejected(
            400,
            INVALID_JSON,
            f"the body is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}",
        ) from None
    except RecursionError:  # arrays or objects nested thousands deep
        raise RequestRejected(
            400, INVALID_JSON, "the body's JSON is nested too deeply to be a request"
        ) from None
    except ValueError as exc:  # e.g. an integer of more digits than Python converts
        raise RequestRejected(400, INVALID_JSON, f"the body is not usable JSON: {exc}") from None
    if not isinstance(payload, dict):
        raise RequestRejected(
            400, NOT_AN_OBJECT, f"the body must be a JSON object, got {_kind(payload)}"
        )
    return payload


def validate_texts(payload: dict[str, Any], limits: Limits) -> list[str]:
    """The ``texts`` of a predict request, each a non-blank string within the limits."""
    if "texts" not in payload:
        raise RequestRejected(
            422, MISSING_TEXTS, 'the body needs "texts": a list of strings to classify'
        )
    texts = payload["texts"]
    if not isinstance(texts, list):
        raise RequestRejected(
            422, TEXTS_NOT_A_LIST, f'"texts" must be a list of strings, got {_kind(texts)}'
        )
    if not texts:
        raise RequestRejected(422, EMPTY_LIST, '"texts" is empty; send at least one text')
    if len(texts) > limits.max_texts:
        raise RequestRejected(
            413,
            TOO_MANY_TEXTS,
            f'"texts" has {len(texts)} items, more than the {limits.max_texts} allowed per request',
        )
    for i, text in enumerate(texts):
        check_text(i, text, limits)
    return texts


VISIBLE_CATEGORIES = frozenset("LNPS")  # letters, numbers, punctuation, symbols


def has_visible_character(text: str) -> bool:
    """Whether a reader would see anything: a letter, number, punctuation mark or symbol.

    Whitespace, control and format characters (zero-width spaces, direction marks), lone
    combining marks, private-use and unassigned code points alone are not text to classify.
    Stops at the first visible character: usually the first one.
    """
    return any(unicodedata.category(ch)[0] in VISIBLE_CATEGORIES for ch in text)


def check_text(index: int, text: object, limits: Limits) -> str:
    """One text: a string, not blank, encodable as UTF-8, not longer than the limit."""
    if not isinstance(text, str):
        raise RequestRejected(
            422, NOT_A_STRING, f"texts[{index}] must be a string, got {_kind(text)}"
        )
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate escape such as "\ud800"
        raise RequestRejected(
            400, INVALID_TEXT, f"texts[{index}] holds an unpaired surrogate; send real UTF-8"
        ) from None
    if not has_visible_character(text):
        raise RequestRejected(
            422,
            EMPTY_TEXT,
            f"texts[{index}] has nothing to read: it is empty or only whitespace, control or "
            "format characters",
        )
    if len(text) > limits.max_text_chars:
        raise RequestRejected(
            413,
            TEXT_TOO_LONG,
            f"texts[{index}] has {len(text)} characters, more than the "
            f"{limits.max_text_chars} allowed",
        )
    return text


def validate_feedback(payload: dict[str, Any], classes: Sequence[str]) -> Feedback:
    """A feedback request: ``id`` plus exactly one of ``label`` (a known class) or ``accepted``."""
    prediction_id = payload.get("id")
    if not isinstance(prediction_id, str) or not prediction_id.strip():
        raise RequestRejected(
            422, MISSING_ID, 'the body needs "id": the prediction id returned by /predict'
        )
    has_label, has_accepted = "label" in payload, "accepted" in payload
    if has_label == has_accepted:
        raise RequestRejected(
            422,
            BAD_FEEDBACK,
            'give exactly one of "label" (the true class) or "accepted" (true/false)',
        )
    if has_accepted:
        accepted = payload["accepted"]
        if not isinstance(accepted, bool):
            raise RequestRejected(
                422, BAD_FEEDBACK, f'"accepted" must be true or false, got {_kind(accepted)}'
            )
        return Feedback(prediction_id, accepted=accepted)
    label = payload["label"]
    if not isinstance(label, str):
        raise RequestRejected(422, BAD_FEEDBACK, f'"label" must be a string, got {_kind(label)}')
    if label not in classes:
        raise RequestRejected(
            422,
            UNKNOWN_LABEL,
            f"unknown label {label!r}; this model knows {', '.join(map(repr, classes))}",
        )
    return Feedback(prediction_id, label=label)


def _charset(params: str) -> str | None:
    for param in params.split(";"):
        key, _, value = param.partition("=")
        if key.strip().lower() == "charset":
            return value.strip().strip('"').lower()
    return None


def _kind(value: object) -> str:
    names = {
        dict: "an object",
        list: "a list",
        str: "a string",
        bool: "a boolean",
        int: "a number",
        float: "a number",
        type(None): "null",
    }
    return names.get(type(value), type(value).__name__)
