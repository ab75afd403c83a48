"""An MLflow outage keeps its meaning in the operator's registry questions: a stopped tracking
server is "unavailable" (retry later, keep serving), never "not found" (which marks a
ModelDeployment Failed until a person acts), and answers again once it is back.

A tracking server of its own (SQLite backend, the session's S3 server), stopped and started
again on the same port: the session's server is shared by other tests.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from textops.contracts import Tag
from textops.devservers import S3Server
from textops.devservers.mlflow_server import MlflowServer, start_mlflow
from textops.devservers.ports import free_port
from textops.operator import registry_io
from textops.operator.spec import ModelRef

pytestmark = pytest.mark.integration

MODEL = "outage-model"
CHAMPION = ModelRef(MODEL, alias="champion")
QUESTIONS = (CHAMPION, ModelRef(MODEL, alias="nope"), ModelRef("no-such-model", version="1"))


def _start(s3: S3Server, base: Path, folder: str, port: int) -> MlflowServer:
    """A tracking server on ``port`` over the SQLite database in ``base`` (kept across starts)."""
    return start_mlflow(
        base / folder,
        backend_store_uri=f"sqlite:///{base / 'mlflow.db'}",
        s3=s3,
        port=port,
        die_with_parent=True,
    )


@pytest.fixture
def tracking(s3_server: S3Server, tmp_path: Path) -> Iterator[tuple[MlflowServer, Path, int]]:
    port = free_port()
    server = _start(s3_server, tmp_path, "first", port)
    try:
        yield server, tmp_path, port
    finally:
        server.stop()


def test_a_stopped_tracking_server_is_unavailable_never_not_found(
    tracking: tuple[MlflowServer, Path, int],
    s3_server: S3Server,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    server, base, port = tracking
    monkeypatch.setattr(registry_io, "_answered", {})
    uri = server.tracking_uri
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    client.create_registered_model(MODEL)
    run = client.create_run(client.create_experiment("outage"))
    version = client.create_model_version(
        MODEL, source=f"{run.info.artifact_uri}/model", run_id=run.info.run_id
    )
    client.set_registered_model_alias(MODEL, "champion", version.version)

    assert registry_io.resolve(uri, CHAMPION) == "1"
    with pytest.raises(registry_io.NotFound) as missing:
        registry_io.resolve(uri, QUESTIONS[1])
    assert missing.value.reason == "AliasNotFound"

    server.stop()
    # the server answered a moment ago, so the first question skips the probe and meets the
    # dead server in its REST request; the next ones are refused by the probe
    for question in (*QUESTIONS, *QUESTIONS):
        with pytest.raises(registry_io.Unavailable):
            registry_io.resolve(uri, question)

    again = _start(s3_server, base, "second", port)
    with contextlib.ExitStack() as stack:
        stack.callback(again.stop)
        assert registry_io.resolve(uri, CHAMPION) == "1"
        with pytest.raises(registry_io.NotFound) as gone:
            registry_io.resolve(uri, QUESTIONS[2])
        assert gone.value.reason == "ModelNotFound"


def test_every_registry_question_over_rest_against_a_real_server(
    tracking: tuple[MlflowServer, Path, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The operator asks over plain HTTP (no MLflow package in its process): pinned versions,
    aliases, each kind of absence, and a Job's candidate found by its trigger tag with the
    lineage and gate tags the operator reads."""
    monkeypatch.setattr(registry_io, "_answered", {})
    server, _, _ = tracking
    uri = server.tracking_uri
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    client.create_registered_model(MODEL)
    experiment = client.create_experiment("rest")
    versions = []
    for trigger in ("t-one", "t-two", "t-two"):
        run = client.create_run(experiment)
        versions.append(
            client.create_model_version(
                MODEL,
                source=f"{run.info.artifact_uri}/model",
                run_id=run.info.run_id,
                tags={
                    Tag.TRIGGER_ID: trigger,
                    Tag.GATE_DECISION: "promoted",
                    Tag.DATASET_ID: f"ds-{trigger}",
                    Tag.DATASET_LABELS_ADDED: "12",
                },
            )
        )
    client.set_registered_model_alias(MODEL, "champion", "2")

    assert registry_io.resolve(uri, CHAMPION) == "2"
    assert registry_io.resolve(uri, ModelRef(MODEL, version="3")) == "3"
    for ref, reason in (
        (ModelRef(MODEL, alias="nope"), "AliasNotFound"),
        (ModelRef(MODEL, version="9"), "VersionNotFound"),
        (ModelRef("no-such-model", alias="champion"), "ModelNotFound"),
    ):
        with pytest.raises(registry_io.NotFound) as missing:
            registry_io.resolve(uri, ref)
        assert missing.value.reason == reason

    found = registry_io.candidate(uri, MODEL, "t-two")
    assert found is not None
    assert (found.version, found.run_id) == ("3", versions[2].run_id)  # the newest of two
    assert (found.decision, found.dataset_id, found.labels_added) == ("promoted", "ds-t-two", 12)
    assert registry_io.candidate(uri, MODEL, "t-none") is None
    assert registry_io.candidate(uri, "no-such-model", "t-one") is None
