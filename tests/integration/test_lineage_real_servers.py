"""Dataset versions on a real S3 server; training and the gate on a real MLflow server whose
backend store is MariaDB and whose artifacts land in S3 — with Chinese names throughout."""

from __future__ import annotations

from io import BytesIO
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from tests.synthetic import cli_json, make_rows, write_jsonl
from textops.data.store import open_store
from textops.devservers import DATASETS_BUCKET, MLFLOW_BUCKET, S3Server
from textops.errors import CorruptDatasetError
from textops.settings import load_settings

pytestmark = pytest.mark.integration


def test_s3_dataset_versions_are_content_addressed_and_verified(
    mlflow_env: dict[str, str],
    s3_server: S3Server,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("TEXTOPS_DATA_URI", f"s3://{DATASETS_BUCKET}/评论-s3-test")
    src = write_jsonl(tmp_path / "rows.jsonl", make_rows(n_per_class=20, classes=3))
    first = cli_json(capsys, "data", "snapshot", "--from", str(src))
    again = cli_json(capsys, "data", "snapshot", "--from", str(src))
    assert first["created"] and not again["created"] and again["id"] == first["id"]
    assert first["store"] == f"s3://{DATASETS_BUCKET}/评论-s3-test"
    listed = cli_json(capsys, "data", "list")
    assert [d["id"] for d in listed] == [first["id"]]

    client = s3_server.client()
    key = f"评论-s3-test/{first['id']}/rows.jsonl"
    payload = client.get_object(DATASETS_BUCKET, key).read()
    assert payload.count(b"\n") == 60
    tampered = payload.replace("房间".encode(), "客房".encode(), 1)
    client.put_object(DATASETS_BUCKET, key, BytesIO(tampered), len(tampered))
    with pytest.raises(CorruptDatasetError):
        open_store(load_settings().data_uri, load_settings()).get(first["id"])


def test_train_and_gate_with_chinese_names_on_mariadb_and_s3(
    mlflow_env: dict[str, str],
    s3_server: S3Server,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    name = "情感分类-集成测试"
    monkeypatch.setenv("TEXTOPS_MODEL_NAME", name)
    monkeypatch.setenv("TEXTOPS_EXPERIMENT", "中文实验")
    monkeypatch.setenv("TEXTOPS_DATA_URI", f"s3://{DATASETS_BUCKET}/gate-test")
    monkeypatch.setenv("TEXTOPS_IMAGE_TAG", "textops-training:test")
    src = write_jsonl(tmp_path / "rows.jsonl", make_rows(n_per_class=50, classes=3, seed=7))
    snap = cli_json(capsys, "data", "snapshot", "--from", str(src))

    v1 = cli_json(capsys, "train", "--n-estimators", "30")
    gate1 = cli_json(capsys, "promote")
    assert gate1["decision"] == "promoted" and gate1["champion_after"] == v1["version"]
    v2 = cli_json(capsys, "train", "--n-estimators", "30")
    gate2 = cli_json(capsys, "promote", "--min-improvement", "0.5")
    assert gate2["decision"] == "rejected" and gate2["champion_after"] == v1["version"]

    client = MlflowClient(tracking_uri=mlflow_env["MLFLOW_TRACKING_URI"])
    assert client.get_registered_model(name).name == name
    assert client.get_model_version_by_alias(name, "champion").version == v1["version"]
    challenger = client.get_model_version_by_alias(name, "challenger")
    assert challenger.version == v2["version"]
    tags = challenger.tags
    assert tags["textops.gate.decision"] == "rejected"
    assert tags["textops.dataset.id"] == snap["id"]
    assert tags["textops.dataset.uri"] == f"s3://{DATASETS_BUCKET}/gate-test"
    assert tags["textops.image.tag"] == "textops-training:test"
    run = client.get_run(challenger.run_id)
    assert client.get_experiment(run.info.experiment_id).name == "中文实验"
    assert run.data.tags["textops.dataset.sha256"] == snap["sha256"]

    # the artifacts went through the server into the S3 bucket
    objects = [
        o.object_name for o in s3_server.client().list_objects(MLFLOW_BUCKET, recursive=True)
    ]
    run_objects = [o for o in objects if run.info.run_id in o]
    assert any(o.endswith("evaluation/confusion_matrix.png") for o in run_objects)
    assert any(o.endswith("reference/profile.json") for o in run_objects)
    assert any(o.endswith("MLmodel") for o in objects)
