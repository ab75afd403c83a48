"""The CLI on embedded defaults (SQLite MLflow, local artifacts, local dataset store)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from tests.synthetic import cli_json, make_rows, write_jsonl


def test_snapshot_train_promote_three_classes(
    textops_home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = write_jsonl(tmp_path / "rows.jsonl", make_rows(n_per_class=50, classes=3))
    snap = cli_json(capsys, "data", "snapshot", "--from", str(source))
    assert snap["created"] is True and snap["rows"] == 150 and len(snap["label_counts"]) == 3
    again = cli_json(capsys, "data", "snapshot", "--from", str(source))
    assert again["id"] == snap["id"] and again["created"] is False
    assert [d["id"] for d in cli_json(capsys, "data", "list")] == [snap["id"]]
    shown = cli_json(capsys, "data", "show", snap["id"][:10], "--rows", "2")
    assert shown["verified"] is True and len(shown["sample"]) == 2

    trained = cli_json(capsys, "train", "--n-estimators", "30")
    assert trained["version"] == "1" and trained["alias"] == "challenger"
    assert trained["dataset"] == snap["id"]
    first = cli_json(capsys, "promote")
    assert first["decision"] == "promoted" and first["champion_after"] == "1"

    # a second version must beat the first by a margin it cannot reach: rejected, recorded
    cli_json(capsys, "train", "--n-estimators", "30")
    second = cli_json(capsys, "promote", "--min-improvement", "0.5")
    assert second["decision"] == "rejected" and second["champion_after"] == "1"

    client = MlflowClient(tracking_uri=f"sqlite:///{textops_home / 'mlflow.db'}")
    name = "reviews-sentiment"
    assert str(client.get_model_version_by_alias(name, "champion").version) == "1"
    v2 = client.get_model_version_by_alias(name, "challenger")
    assert str(v2.version) == "2"
    assert v2.tags["textops.gate.decision"] == "rejected"
    assert v2.tags["textops.gate.champion_version"] == "1"
    assert v2.tags["textops.dataset.id"] == snap["id"]
    assert v2.tags["textops.git.commit"]
    assert len(v2.tags["textops.code.sha256"]) == 64
    run = client.get_run(v2.run_id)
    assert run.data.params["data.classes"].count(",") == 2
    for metric in ("accuracy", "macro_f1", "log_loss", "calibration_error"):
        assert metric in run.data.metrics
    assert sum(k.startswith("recall.") for k in run.data.metrics) == 3
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id, "evaluation")}
    assert "evaluation/confusion_matrix.png" in artifacts
    profile = json.loads(
        Path(
            client.download_artifacts(run.info.run_id, "reference/profile.json", str(tmp_path))
        ).read_text("utf-8")
    )
    assert len(profile["classes"]) == 3 and profile["samples"] == trained["train_rows"]
    assert all(
        m.current_stage == "None" for m in client.search_model_versions(f"name='{name}'")
    )  # aliases only, never stages


def test_promote_gates_the_version_it_is_given_not_the_moving_challenger_alias(
    textops_home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from textops.cli import main

    source = write_jsonl(tmp_path / "rows.jsonl", make_rows(n_per_class=30, classes=2))
    cli_json(capsys, "data", "snapshot", "--from", str(source))
    cli_json(capsys, "train", "--n-estimators", "10")
    cli_json(capsys, "train", "--n-estimators", "10")  # another training moved @challenger
    gated = cli_json(capsys, "promote", "--version", "1")
    assert gated["challenger"] == "1" and gated["champion_after"] == "1"
    client = MlflowClient(tracking_uri=f"sqlite:///{textops_home / 'mlflow.db'}")
    assert "textops.gate.decision" in client.get_model_version("reviews-sentiment", "1").tags
    assert "textops.gate.decision" not in client.get_model_version("reviews-sentiment", "2").tags

    capsys.readouterr()
    assert main(["promote", "--version", "9"]) == 1
    assert "model 'reviews-sentiment' has no version 9" in capsys.readouterr().err


def _cli(env_home: Path, *argv: str, **env: str) -> subprocess.CompletedProcess[str]:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "TEXTOPS_"))}
    full_env.update(TEXTOPS_HOME=str(env_home), **env)
    return subprocess.run(
        [sys.executable, "-m", "textops", *argv],
        capture_output=True,
        text=True,
        env=full_env,
        timeout=120,
    )


def test_expected_failures_are_one_line_and_nonzero(tmp_path: Path) -> None:
    missing = _cli(tmp_path, "data", "show", "ds-doesnotexist")
    assert missing.returncode == 1
    assert missing.stderr.strip() == (
        f"textops: error: no dataset 'ds-doesnotexist' in {tmp_path / 'datasets'}"
    )

    unreachable = _cli(tmp_path, "promote", MLFLOW_TRACKING_URI="http://127.0.0.1:9")
    assert unreachable.returncode == 1
    assert "MLflow tracking server http://127.0.0.1:9 is unreachable" in unreachable.stderr
    assert "Traceback" not in unreachable.stderr

    no_s3 = _cli(
        tmp_path,
        "data",
        "list",
        TEXTOPS_DATA_URI="s3://datasets/x",
        TEXTOPS_S3_ENDPOINT="127.0.0.1:9",
    )
    assert no_s3.returncode == 1 and "unreachable" in no_s3.stderr
    assert "Traceback" not in no_s3.stderr

    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "", "label": "a"}\n', "utf-8")
    refused = _cli(tmp_path, "data", "snapshot", "--from", str(bad))
    assert refused.returncode == 1 and "bad.jsonl:1: empty text" in refused.stderr
    assert not (tmp_path / "datasets").exists() or not any((tmp_path / "datasets").iterdir())

    usage = _cli(tmp_path, "promote", "--metric", "auc")
    assert usage.returncode == 2 and "invalid choice" in usage.stderr


def test_corrupted_snapshot_is_refused_by_the_cli(tmp_path: Path) -> None:
    src = write_jsonl(tmp_path / "r.jsonl", [("好", "a"), ("坏", "b")])
    assert _cli(tmp_path, "data", "snapshot", "--from", str(src)).returncode == 0
    [folder] = (tmp_path / "datasets").iterdir()
    rows = folder / "rows.jsonl"
    rows.write_bytes(rows.read_bytes().replace("好".encode(), "差".encode()))
    shown = _cli(tmp_path, "data", "show", folder.name)
    assert shown.returncode == 1 and "is corrupted" in shown.stderr
    trained = _cli(tmp_path, "train")
    assert trained.returncode == 1 and "is corrupted" in trained.stderr
