"""The labelling API's request checks: token, paging, label and skip bodies."""

from __future__ import annotations

import pytest

from textops.serving.labelling_api import check_token, page, submission
from textops.serving.validation import RequestRejected


def _rejected(fn, *args) -> RequestRejected:
    with pytest.raises(RequestRejected) as caught:
        fn(*args)
    return caught.value


def test_token_is_required_and_compared() -> None:
    check_token({"authorization": "Bearer s3cret"}, "s3cret")
    check_token({"x-textops-token": "s3cret"}, "s3cret")
    assert _rejected(check_token, {}, "s3cret").reason == "missing_token"
    assert _rejected(check_token, {"authorization": "Bearer nope"}, "s3cret").status == 401
    closed = _rejected(check_token, {"authorization": "Bearer x"}, None)
    assert closed.status == 401 and "TEXTOPS_LABEL_TOKEN" in closed.message


def test_paging_defaults_and_limits() -> None:
    assert page({}) == (20, 0)
    assert page({"limit": "5", "offset": "10"}) == (5, 10)
    assert "integer" in _rejected(page, {"limit": "ten"}).message
    assert _rejected(page, {"limit": "0"}).status == 400
    assert _rejected(page, {"offset": "-1"}).status == 400


def test_label_and_skip_bodies() -> None:
    got = submission({"id": " p-1 ", "label": "neg", "annotator": "ann"}, ["neg", "pos"], False)
    assert (got.sample_id, got.label, got.annotator) == ("p-1", "neg", "ann")
    assert submission({"id": "p-1"}, ["neg"], True).label is None
    assert _rejected(submission, {"label": "neg"}, ["neg"], False).reason == "missing_id"
    unknown = _rejected(submission, {"id": "p", "label": "meh"}, ["neg", "pos"], False)
    assert unknown.status == 422 and "meh" in unknown.message
    assert _rejected(submission, {"id": "p", "annotator": 3}, ["neg"], True).status == 400
