"""The operator's questions to the MLflow registry (I/O), over MLflow's REST API.

Two questions: which concrete version does ``spec.model`` mean now (an alias resolves to a
version; the pods always pin that version), and what did a retraining Job register (the
version tagged with its trigger id: its run, its lineage tags and the gate's decision tags).
Answers are classified so the handler can say the right thing: a model, alias or version
that does not exist is :class:`NotFound` (a person must act; no retry storm), an unreachable
server is :class:`Unavailable` (retry later, keep serving).

Plain HTTP rather than ``MlflowClient``: importing the MLflow package brings pandas and numpy
into the operator's process (about 100 MB of its 200 MB), for three GET requests. The
server's credentials are the MLflow client's variables: ``MLFLOW_TRACKING_TOKEN`` (bearer) or
``MLFLOW_TRACKING_USERNAME``/``MLFLOW_TRACKING_PASSWORD`` (basic).
"""

from __future__ import annotations

import base64
import json
import os
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

from textops.contracts import Tag
from textops.errors import TrackingUnavailableError
from textops.operator.retraining import Candidate
from textops.operator.spec import ModelRef
from textops.registry.health import MISSING_ERROR_CODES, probe

# A server that answered within this many seconds is not probed again: with hundreds of
# resources, a probe before every question would double the requests the registry serves.
PROBE_TTL_S = 10.0
REQUEST_TIMEOUT_S = 10.0
SEARCH_PAGE = 200
SEARCH_PAGES_MAX = 50  # a trigger id tags one version; more than this many pages is a bug
_answered: dict[str, float] = {}  # tracking URI -> monotonic time of its last good answer


class NotFound(LookupError):
    """``reason`` is a condition reason: ModelNotFound, AliasNotFound or VersionNotFound."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


class Unavailable(ConnectionError):
    """The registry did not answer."""


class _Missing(LookupError):
    """MLflow answered "no such thing"."""


def reachable(tracking_uri: str) -> str:
    """``tracking_uri`` after a short health probe (fail in seconds, not minutes); skipped
    while the server answered in the last :data:`PROBE_TTL_S` seconds."""
    if not tracking_uri.startswith(("http://", "https://")):
        raise Unavailable(
            f"the operator needs an MLflow tracking server (http:// or https://), "
            f"got {tracking_uri!r}"
        )
    last = _answered.get(tracking_uri)
    if last is None or time.monotonic() - last > PROBE_TTL_S:
        try:
            probe(tracking_uri)
        except TrackingUnavailableError as exc:
            _answered.pop(tracking_uri, None)
            raise Unavailable(str(exc)) from exc
        _answered[tracking_uri] = time.monotonic()
    return tracking_uri


def _headers() -> dict[str, str]:
    """The MLflow client's credentials, when the environment has them."""
    token = os.environ.get("MLFLOW_TRACKING_TOKEN")
    if token:
        return {"Authorization": f"Bearer {token}"}
    user, password = (os.environ.get(f"MLFLOW_TRACKING_{k}") for k in ("USERNAME", "PASSWORD"))
    if user and password:
        pair = base64.b64encode(f"{user}:{password}".encode()).decode()
        return {"Authorization": f"Basic {pair}"}
    return {}


def _get(tracking_uri: str, path: str, params: dict[str, Any]) -> dict[str, Any]:
    """GET ``/api/2.0/mlflow/<path>``; :class:`_Missing` or :class:`Unavailable` on failure."""
    query = urllib.parse.urlencode(params)
    url = f"{reachable(tracking_uri).rstrip('/')}/api/2.0/mlflow/{path}?{query}"
    request = urllib.request.Request(url, headers=_headers())
    try:
        with urllib.request.urlopen(request, timeout=REQUEST_TIMEOUT_S) as response:
            answer: dict[str, Any] = json.loads(response.read())
            return answer
    except urllib.error.HTTPError as exc:
        try:
            error = json.loads(exc.read() or b"{}")
        except ValueError:
            error = {}
        code, message = error.get("error_code", ""), error.get("message", exc.reason)
        if exc.code < 500 and code in MISSING_ERROR_CODES:
            raise _Missing(message) from exc
        failed = f"HTTP {exc.code} {code}: {message}"
    except (urllib.error.URLError, OSError, ValueError) as exc:
        failed = str(getattr(exc, "reason", exc))
    _answered.pop(tracking_uri, None)  # probe again next time
    raise Unavailable(f"MLflow registry at {tracking_uri}: {path}: {failed}")


def resolve(tracking_uri: str, model: ModelRef) -> str:
    """The concrete version ``model`` names now."""
    try:
        if model.alias is not None:
            found = _get(
                tracking_uri, "registered-models/alias", {"name": model.name, "alias": model.alias}
            )
        else:
            found = _get(
                tracking_uri,
                "model-versions/get",
                {"name": model.name, "version": str(model.version)},
            )
    except _Missing:
        raise _missing(tracking_uri, model) from None
    return str(found["model_version"]["version"])


def _missing(tracking_uri: str, model: ModelRef) -> NotFound | Unavailable:
    """Which part of ``model`` is missing; an error asking is an outage, never "not found"
    (that would mark the resource Failed while the server is only down)."""
    try:
        _get(tracking_uri, "registered-models/get", {"name": model.name})
    except _Missing:
        return NotFound("ModelNotFound", f"no registered model {model.name!r} in MLflow")
    except Unavailable as exc:
        return exc
    if model.alias is not None:
        return NotFound(
            "AliasNotFound", f"registered model {model.name!r} has no alias {model.alias!r}"
        )
    return NotFound(
        "VersionNotFound", f"registered model {model.name!r} has no version {model.version}"
    )


def candidate(tracking_uri: str, model_name: str, trigger_id: str) -> Candidate | None:
    """The newest version of ``model_name`` tagged with ``trigger_id``, if any: its run,
    lineage tags and the gate's verdict (see :meth:`Candidate.from_tags`)."""
    query = f"name = '{model_name}' and tags.`{Tag.TRIGGER_ID}` = '{trigger_id}'"
    found: list[dict[str, Any]] = []
    params: dict[str, Any] = {"filter": query, "max_results": SEARCH_PAGE}
    for _ in range(SEARCH_PAGES_MAX):
        try:
            page = _get(tracking_uri, "model-versions/search", params)
        except _Missing as exc:
            raise Unavailable(
                f"MLflow registry at {tracking_uri} refused {query!r}: {exc}"
            ) from exc
        found += page.get("model_versions") or []
        if not page.get("next_page_token"):
            break
        params["page_token"] = page["next_page_token"]
    if not found:
        return None
    newest = max(found, key=lambda v: int(v["version"]))
    tags = {t["key"]: t.get("value", "") for t in newest.get("tags") or []}
    return Candidate.from_tags(str(newest["version"]), newest.get("run_id"), tags)
