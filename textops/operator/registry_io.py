"""The operator's questions to the MLflow registry (I/O).

Two questions: which concrete version does ``spec.model`` mean now (an alias resolves to a
version; the pods always pin that version), and what did a retraining Job register (the
version tagged with its trigger id: its run, its lineage tags and the gate's decision tags).
Answers are classified so the handler can say the right thing: a model, alias or version
that does not exist is :class:`NotFound` (a person must act; no retry storm), an unreachable
server is :class:`Unavailable` (retry later, keep serving).
"""

from __future__ import annotations

import time

from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from textops.contracts import Tag
from textops.errors import TrackingUnavailableError
from textops.operator.retraining import Candidate
from textops.operator.spec import ModelRef
from textops.registry.tracking import is_missing, probe

# A server that answered within this many seconds is not probed again: with hundreds of
# resources, a probe before every question would double the requests the registry serves.
PROBE_TTL_S = 10.0
_answered: dict[str, float] = {}  # tracking URI -> monotonic time of its last good answer


class NotFound(LookupError):
    """``reason`` is a condition reason: ModelNotFound, AliasNotFound or VersionNotFound."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


class Unavailable(ConnectionError):
    """The registry did not answer."""


def client_for(tracking_uri: str) -> MlflowClient:
    """A client for ``tracking_uri`` after a short health probe (fail in seconds, not minutes).

    The probe is skipped while the server answered in the last :data:`PROBE_TTL_S` seconds.
    """
    remote = tracking_uri.startswith(("http://", "https://"))
    last = _answered.get(tracking_uri)
    if remote and (last is None or time.monotonic() - last > PROBE_TTL_S):
        try:
            probe(tracking_uri)
        except TrackingUnavailableError as exc:
            _answered.pop(tracking_uri, None)
            raise Unavailable(str(exc)) from exc
        _answered[tracking_uri] = time.monotonic()
    return MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)


def _unavailable(tracking_uri: str, exc: MlflowException) -> Unavailable:
    """The registry failed a request: probe again next time, and say so."""
    _answered.pop(tracking_uri, None)
    return Unavailable(f"MLflow registry at {tracking_uri}: {exc.message}")


def resolve(tracking_uri: str, model: ModelRef) -> str:
    """The concrete version ``model`` names now."""
    client = client_for(tracking_uri)
    try:
        if model.alias is not None:
            return str(client.get_model_version_by_alias(model.name, model.alias).version)
        return str(client.get_model_version(model.name, str(model.version)).version)
    except MlflowException as exc:
        if not is_missing(exc):
            raise _unavailable(tracking_uri, exc) from exc
        raise _missing(tracking_uri, client, model) from exc


def _missing(tracking_uri: str, client: MlflowClient, model: ModelRef) -> NotFound | Unavailable:
    """Which part of ``model`` is missing; an error asking is an outage, never "not found"
    (that would mark the resource Failed while the server is only down)."""
    try:
        client.get_registered_model(model.name)
    except MlflowException as exc:
        if not is_missing(exc):
            return _unavailable(tracking_uri, exc)
        return NotFound("ModelNotFound", f"no registered model {model.name!r} in MLflow")
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
    client = client_for(tracking_uri)
    query = f"name = '{model_name}' and tags.`{Tag.TRIGGER_ID}` = '{trigger_id}'"
    try:
        found = client.search_model_versions(query)
    except MlflowException as exc:
        raise _unavailable(tracking_uri, exc) from exc
    if not found:
        return None
    newest = max(found, key=lambda v: int(v.version))
    return Candidate.from_tags(str(newest.version), newest.run_id, newest.tags or {})
