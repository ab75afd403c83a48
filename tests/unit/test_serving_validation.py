"""Request validation, serving settings, input quality and the feedback memory (pure)."""

from __future__ import annotations

import json
import unicodedata
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from textops.errors import TextopsError
from textops.serving.config import Limits, load_serving_config, request_timeout_s
from textops.serving.model_loader import ModelRef, parse_model_uri
from textops.serving.quality import QualityMeter
from textops.serving.recent import (
    AlreadyJudged,
    FeedbackTally,
    RecentPredictions,
    StoredPrediction,
)
from textops.serving.validation import (
    REASONS,
    Feedback,
    RequestRejected,
    has_visible_character,
    max_body_bytes,
    parse_json_object,
    validate_feedback,
    validate_texts,
)

LIMITS = Limits(max_texts=3, max_text_chars=10)
JSON = "application/json"


def _rejected(call, *args) -> RequestRejected:
    with pytest.raises(RequestRejected) as info:
        call(*args)
    assert info.value.reason in REASONS
    assert 400 <= info.value.status < 500
    return info.value


def _predict(body: bytes, content_type: str | None = JSON) -> list[str]:
    return validate_texts(parse_json_object(body, content_type, max_body_bytes(LIMITS)), LIMITS)


def test_valid_texts_pass_unchanged() -> None:
    body = json.dumps({"texts": ["房间很好", " 一般 "]}, ensure_ascii=False).encode()
    assert _predict(body) == ["房间很好", " 一般 "]
    assert _predict(body, "application/json; charset=UTF-8") == ["房间很好", " 一般 "]


@pytest.mark.parametrize(
    ("body", "content_type", "status", "reason", "fragment"),
    [
        (b'{"texts": ["a"]}', "text/plain", 415, "content_type", "got text/plain"),
        (b'{"texts": ["a"]}', None, 415, "content_type", "got none"),
        (b'{"texts": ["a"]}', "application/json; charset=latin-1", 415, "content_type", "UTF-8"),
        (b'{"texts": ["\xff"]}', JSON, 400, "invalid_utf8", "not valid UTF-8 (byte 12"),
        (b'{"texts": [', JSON, 400, "invalid_json", "not valid JSON"),
        (b"", JSON, 400, "invalid_json", "body is empty"),
        (b'["a"]', JSON, 400, "not_an_object", "got a list"),
        (b'{"text": "a"}', JSON, 422, "missing_texts", '"texts"'),
        (b'{"texts": "a"}', JSON, 422, "texts_not_a_list", "got a string"),
        (b'{"texts": []}', JSON, 422, "empty_list", "is empty"),
        (b'{"texts": ["a", 1]}', JSON, 422, "not_a_string", "texts[1] must be a string"),
        (b'{"texts": ["a", null]}', JSON, 422, "not_a_string", "got null"),
        (b'{"texts": ["a", " \\n\\t"]}', JSON, 422, "empty_text", "texts[1] has nothing to read"),
        (b'{"texts": ["\\u200b\\ufeff\\u0000"]}', JSON, 422, "empty_text", "nothing to read"),
        (b'{"texts": ["\\u0301\\ue000"]}', JSON, 422, "empty_text", "nothing to read"),
        (b"[" * 2000 + b"]" * 2000, JSON, 400, "invalid_json", "nested too deeply"),
        (b'{"texts": [' + b"9" * 4400 + b"]}", JSON, 400, "invalid_json", "not usable JSON"),
        (b'{"texts": ["a", "b", "c", "d"]}', JSON, 413, "too_many_texts", "4 items"),
        (b'{"texts": ["' + b"x" * 11 + b'"]}', JSON, 413, "text_too_long", "11 characters"),
        (b'{"texts": ["\\ud800"]}', JSON, 400, "invalid_text", "unpaired surrogate"),
        (b" " * (max_body_bytes(LIMITS) + 1), JSON, 413, "body_too_large", "bytes"),
    ],
)
def test_bad_predict_bodies_name_the_problem(
    body: bytes, content_type: str | None, status: int, reason: str, fragment: str
) -> None:
    error = _rejected(_predict, body, content_type)
    assert (error.status, error.reason) == (status, reason)
    assert fragment in error.message
    assert error.body() == {"error": error.message, "reason": reason}


def test_text_length_counts_characters_not_bytes() -> None:
    assert _predict(json.dumps({"texts": ["酒" * 10]}).encode()) == ["酒" * 10]


def test_feedback_needs_a_known_label_or_a_boolean() -> None:
    classes = ["书籍", "酒店"]
    assert validate_feedback({"id": "p1", "label": "酒店"}, classes) == Feedback("p1", label="酒店")
    assert validate_feedback({"id": "p1", "accepted": False}, classes) == Feedback(
        "p1", accepted=False
    )
    cases = [
        ({"label": "酒店"}, "missing_id"),
        ({"id": "", "accepted": True}, "missing_id"),
        ({"id": "p1"}, "bad_feedback"),
        ({"id": "p1", "label": "酒店", "accepted": True}, "bad_feedback"),
        ({"id": "p1", "accepted": 1}, "bad_feedback"),
        ({"id": "p1", "label": 3}, "bad_feedback"),
        ({"id": "p1", "label": "手机"}, "unknown_label"),
    ]
    for payload, reason in cases:
        assert _rejected(validate_feedback, payload, classes).reason == reason, payload
    message = _rejected(validate_feedback, {"id": "p1", "label": "手机"}, classes).message
    assert "'手机'" in message and "'书籍', '酒店'" in message


def test_serving_config_from_env() -> None:
    config = load_serving_config(
        {
            "TEXTOPS_MODEL_URI": "models:/m/3",
            "TEXTOPS_MAX_TEXTS": "5",
            "TEXTOPS_MAX_TEXT_CHARS": "100",
            "TEXTOPS_VALUE_PER_ACCEPTED": "2.5",
            "TEXTOPS_MAX_BATCH_SIZE": "16",
        }
    )
    assert config.limits == Limits(5, 100) and config.value_per_accepted == 2.5
    assert (config.max_batch_size, config.max_latency_ms) == (16, 10)
    for env, fragment in [
        ({}, "TEXTOPS_MODEL_URI is not set"),
        ({"TEXTOPS_MODEL_URI": "m", "TEXTOPS_MAX_TEXTS": "0"}, "positive integer"),
        ({"TEXTOPS_MODEL_URI": "m", "TEXTOPS_MAX_TEXT_CHARS": "x"}, "positive integer"),
        ({"TEXTOPS_MODEL_URI": "m", "TEXTOPS_VALUE_PER_ACCEPTED": "-1"}, "zero or more"),
    ]:
        with pytest.raises(TextopsError, match=fragment):
            load_serving_config(env)


def test_request_timeout_from_env() -> None:
    assert request_timeout_s({}) == 10.0
    assert request_timeout_s({"TEXTOPS_REQUEST_TIMEOUT_S": "2.5"}) == 2.5
    for bad in ("0", "-1", "soon"):
        with pytest.raises(TextopsError, match="TEXTOPS_REQUEST_TIMEOUT_S"):
            request_timeout_s({"TEXTOPS_REQUEST_TIMEOUT_S": bad})


def test_model_uris() -> None:
    assert parse_model_uri("models:/reviews-sentiment/12") == ModelRef("reviews-sentiment", "12")
    alias = parse_model_uri("models:/reviews-sentiment@champion")
    assert alias == ModelRef("reviews-sentiment", alias="champion") and not alias.pinned
    assert alias.uri == "models:/reviews-sentiment@champion"
    for bad in ("runs:/abc/model", "models:/m", "models:/m/latest", "models:/m@"):
        with pytest.raises(TextopsError, match="not a registered model URI"):
            parse_model_uri(bad)


def test_quality_against_the_training_vocabulary() -> None:
    meter = QualityMeter({"vocabulary": "房间很好"})
    q = meter.measure("房间 很差abc")
    assert q.length == 8
    assert q.unseen_chars == 4  # 差, a, b, c (the space is not a character of the text)
    assert q.non_chinese_share == pytest.approx(3 / 7)


def test_recent_predictions_are_bounded_and_judged_once() -> None:
    recent = RecentPredictions(capacity=2)
    for i in range(3):
        recent.add(f"p{i}", StoredPrediction("a", {"a": 1.0}, f"t{i}"))
    assert len(recent) == 2 and recent.get("p0") is None
    assert recent.claim_feedback("p2").text == "t2"
    with pytest.raises(AlreadyJudged):
        recent.claim_feedback("p2")
    with pytest.raises(KeyError):
        recent.claim_feedback("p0")


def test_tally() -> None:
    tally = FeedbackTally(value_per_accepted=0.5)
    assert tally.accuracy is None and tally.value == 0
    for correct in (True, True, False, True):
        tally.record(correct)
    assert (tally.total, tally.accuracy, tally.value) == (4, 0.75, 1.5)


# --------------------------------------------------------------------------- properties

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=20,
)
EDGE = settings(max_examples=300, deadline=None)


def _refused_or_valid(call: Callable[[], object]) -> None:
    """Either an answer or a RequestRejected with a 4xx, a known reason and a message."""
    try:
        call()
    except RequestRejected as exc:
        assert 400 <= exc.status < 500 and exc.reason in REASONS and exc.message


@EDGE
@given(st.binary(max_size=600), st.sampled_from([JSON, None, "text/plain", "application/json;"]))
def test_any_bytes_are_answered_or_refused_with_a_4xx(
    body: bytes, content_type: str | None
) -> None:
    _refused_or_valid(lambda: _predict(body, content_type))


@EDGE
@given(st.dictionaries(st.sampled_from(["texts", "id", "label", "accepted", "x"]), JSON_VALUES))
def test_any_json_object_is_answered_or_refused_with_a_4xx(payload: dict[str, object]) -> None:
    body = json.dumps(payload).encode()
    _refused_or_valid(lambda: _predict(body))
    _refused_or_valid(lambda: validate_feedback(parse_json_object(body, JSON), ["好", "差"]))


@EDGE
@given(st.lists(st.text(max_size=12), min_size=1, max_size=3))
def test_texts_pass_exactly_when_each_has_something_to_read(texts: list[str]) -> None:
    body = json.dumps({"texts": texts}).encode()
    readable = all(
        any(unicodedata.category(c)[0] in "LNPS" for c in t)
        and len(t) <= LIMITS.max_text_chars
        and not any(0xD800 <= ord(c) <= 0xDFFF for c in t)
        for t in texts
    )
    if readable:
        assert _predict(body) == texts
    else:
        _refused_or_valid(lambda: _predict(body))
        with pytest.raises(RequestRejected):
            _predict(body)


@EDGE
@given(
    st.text(
        st.characters(
            categories=["Cc", "Cf", "Zs", "Zl", "Zp", "Mn", "Co"], exclude_characters="\ud800"
        ),
        min_size=1,
        max_size=10,
    )
)
def test_a_text_of_invisible_characters_only_is_refused(text: str) -> None:
    assert not has_visible_character(text)
    error = _rejected(_predict, json.dumps({"texts": [text]}).encode())
    assert error.reason == "empty_text"
