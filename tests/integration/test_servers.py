"""The real servers work together the way the project needs them to.

(a) Chinese experiment/run/model names survive MLflow on MariaDB, whose databases are utf8mb4
    (the original project hit MySQL error 1267 on latin1);
(b) artifacts logged through the MLflow server are stored as objects in the S3 bucket, with
    the client holding no S3 credentials (proxied artifacts);
(c) the S3 server round-trips objects with Chinese keys through minio and boto3.
"""

from __future__ import annotations

import io
import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa

from textops.devservers import (
    DATASETS_BUCKET,
    LABELS_DB,
    MLFLOW_BUCKET,
    MLFLOW_DB,
    MariaDBServer,
    MlflowServer,
    S3Server,
)

pytestmark = pytest.mark.integration
# mlflow is imported inside the tests: it takes seconds, and collection of a unit-test run
# (`-m "not integration"`) should not pay for it.


def _suffix() -> str:
    return uuid.uuid4().hex[:8]


def _scalar(url: str, sql: str, **params: object) -> object:
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            return conn.execute(sa.text(sql), params).scalar()
    finally:
        engine.dispose()


def test_databases_are_utf8mb4(mariadb: MariaDBServer) -> None:
    url = mariadb.url(MLFLOW_DB)
    for db in (MLFLOW_DB, LABELS_DB):
        charset = _scalar(
            url,
            "SELECT CONCAT(default_character_set_name, '/', default_collation_name) "
            "FROM information_schema.schemata WHERE schema_name = :db",
            db=db,
        )
        assert charset == "utf8mb4/utf8mb4_unicode_ci", db


def test_label_db_stores_four_byte_characters(mariadb: MariaDBServer) -> None:
    table = f"t_{_suffix()}"
    text = "好評 👍 𠮷"  # the emoji and 𠮷 need 4 bytes: utf8mb3 would reject them
    engine = sa.create_engine(mariadb.url(LABELS_DB), poolclass=sa.pool.NullPool)
    try:
        with engine.begin() as conn:
            conn.execute(sa.text(f"CREATE TABLE {table} (id INT PRIMARY KEY, txt TEXT)"))
            conn.execute(sa.text(f"INSERT INTO {table} VALUES (1, :t)"), {"t": text})
        with engine.connect() as conn:
            got = conn.execute(sa.text(f"SELECT txt FROM {table} WHERE txt = :t"), {"t": text})
            assert got.scalar() == text
    finally:
        with engine.begin() as conn:
            conn.execute(sa.text(f"DROP TABLE IF EXISTS {table}"))
        engine.dispose()


def test_chinese_names_through_mlflow_on_mariadb(
    mlflow_env: dict[str, str], mariadb: MariaDBServer
) -> None:
    import mlflow
    from mlflow import MlflowClient

    tag = _suffix()
    exp_name = f"情感分類-{tag}"
    run_name = f"訓練運行-{tag}"
    model_name = f"情感分類模型-{tag}"
    assert mlflow.get_tracking_uri() == mlflow_env["MLFLOW_TRACKING_URI"]
    client = MlflowClient()

    exp_id = client.create_experiment(exp_name, tags={"語言": "中文"})
    run = client.create_run(exp_id, run_name=run_name)
    client.log_param(run.info.run_id, "分詞器", "結巴")
    client.set_terminated(run.info.run_id)
    client.create_registered_model(model_name, description="評論情感分類")
    version = client.create_model_version(
        model_name, source=f"{run.info.artifact_uri}/model", run_id=run.info.run_id
    )

    # Read back by name: these comparisons are what failed with error 1267 on latin1.
    exp = client.get_experiment_by_name(exp_name)
    assert exp is not None and exp.experiment_id == exp_id and exp.tags["語言"] == "中文"
    found = client.search_experiments(filter_string=f"name = '{exp_name}'")
    assert [e.experiment_id for e in found] == [exp_id]
    runs = client.search_runs([exp_id], filter_string=f"attributes.run_name = '{run_name}'")
    assert [r.info.run_id for r in runs] == [run.info.run_id]
    assert runs[0].data.params == {"分詞器": "結巴"}
    model = client.get_registered_model(model_name)
    assert model.description == "評論情感分類"
    models = client.search_registered_models(filter_string=f"name LIKE '情感分類模型-{tag}%'")
    assert [m.name for m in models] == [model_name]
    assert client.get_model_version(model_name, version.version).run_id == run.info.run_id

    # The rows in MariaDB hold the real characters (not '?' or mojibake)...
    url = mariadb.url(MLFLOW_DB)
    stored = _scalar(url, "SELECT name FROM experiments WHERE experiment_id = :i", i=int(exp_id))
    assert stored == exp_name
    stored = _scalar(url, "SELECT name FROM registered_models WHERE name = :n", n=model_name)
    assert stored == model_name
    # ...and no text column of MLflow's schema ended up in another character set.
    others = _scalar(
        url,
        "SELECT COUNT(*) FROM information_schema.columns WHERE table_schema = :db "
        "AND character_set_name IS NOT NULL AND character_set_name <> 'utf8mb4'",
        db=MLFLOW_DB,
    )
    assert others == 0


def test_artifacts_are_proxied_into_the_bucket(
    mlflow_env: dict[str, str],
    s3_server: S3Server,
    mlflow_server: MlflowServer,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    import mlflow

    # The client gets no S3 endpoint or credentials: uploads must go through the server.
    for key in ("MLFLOW_S3_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.delenv(key)
    content = f"混淆矩陣 {_suffix()}\n"
    mlflow.set_experiment(f"artifacts-{_suffix()}")
    with mlflow.start_run() as run:
        mlflow.log_text(content, "報告/評估.txt")
    assert run.info.artifact_uri.startswith("mlflow-artifacts:/")

    prefix = f"{run.info.experiment_id}/{run.info.run_id}/artifacts/"
    s3 = s3_server.client()
    keys = [o.object_name for o in s3.list_objects(MLFLOW_BUCKET, prefix=prefix, recursive=True)]
    assert keys == [prefix + "報告/評估.txt"]
    resp = s3.get_object(MLFLOW_BUCKET, prefix + "報告/評估.txt")
    try:
        assert resp.read().decode("utf-8") == content
    finally:
        resp.close()
        resp.release_conn()

    # And back out through the server.
    local = mlflow.artifacts.download_artifacts(
        run_id=run.info.run_id, artifact_path="報告/評估.txt", dst_path=str(tmp_path)
    )
    assert Path(local).read_text(encoding="utf-8") == content


def test_s3_round_trips_chinese_keys(s3_server: S3Server) -> None:
    client = s3_server.client()
    key = f"reviews/{_suffix()}/訓練資料 第1部分.jsonl"
    body = '{"text": "這部電影很好看", "label": "正面"}\n'.encode()
    client.put_object(
        DATASETS_BUCKET, key, io.BytesIO(body), len(body), content_type="application/x-ndjson"
    )
    try:
        stat = client.stat_object(DATASETS_BUCKET, key)
        assert stat.size == len(body)
        listed = [o.object_name for o in client.list_objects(DATASETS_BUCKET, prefix=key)]
        assert listed == [key]
        resp = client.get_object(DATASETS_BUCKET, key)
        try:
            assert resp.read() == body
        finally:
            resp.close()
            resp.release_conn()

        # boto3 (what MLflow's S3 artifact repository uses) sees the same object.
        boto3 = pytest.importorskip("boto3")
        s3 = boto3.client(
            "s3",
            endpoint_url=s3_server.endpoint_url,
            aws_access_key_id=s3_server.access_key,
            aws_secret_access_key=s3_server.secret_key,
            region_name=s3_server.region,
        )
        assert s3.get_object(Bucket=DATASETS_BUCKET, Key=key)["Body"].read() == body
    finally:
        client.remove_object(DATASETS_BUCKET, key)
    assert list(client.list_objects(DATASETS_BUCKET, prefix=key)) == []
