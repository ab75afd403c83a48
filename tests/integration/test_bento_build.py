"""`bentoml build` of bentos/classifier succeeds and yields the Bento the serving image holds.

The bentofile installs textops from a wheel (bentos/classifier/bentofile.yaml), so the test
builds that wheel first, from a copy of the package sources (nothing is written into the
checkout), then runs the real `bentoml build` in a copy of the bento folder with BENTOML_HOME
in a temporary folder. It checks what `bentoml containerize` would turn into the serving image:
the service entry point, the wheel, the environment defaults and the generated Dockerfile
(non-root user). The image itself cannot be built here (no Docker engine).

Marked integration: it runs real tools (pip, bentoml) for about 15 s, though no server.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

import textops

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
BENTO_SRC = ROOT / "bentos" / "classifier"


def _run(argv: list[str], cwd: Path, env: dict[str, str]) -> str:
    done = subprocess.run(
        argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=300, check=False
    )
    assert done.returncode == 0, f"{' '.join(argv)}:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def test_bentoml_build_makes_the_serving_bento(tmp_path: Path) -> None:
    env = {**os.environ, "BENTOML_HOME": str(tmp_path / "bentoml"), "BENTOML_DO_NOT_TRACK": "true"}

    # The wheel the bentofile names, built from a copy of the sources (setuptools would
    # otherwise leave build/ in the checkout).
    source = tmp_path / "source"
    shutil.copytree(
        ROOT / "textops", source / "textops", ignore=shutil.ignore_patterns("__pycache__")
    )
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, source / name)
    bento_dir = tmp_path / "classifier"
    shutil.copytree(BENTO_SRC, bento_dir, ignore=shutil.ignore_patterns("wheels", "__pycache__"))
    wheels = bento_dir / "wheels"
    _run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(wheels),
            str(source),
        ],
        cwd=tmp_path,
        env=env,
    )
    bentofile = yaml.safe_load((bento_dir / "bentofile.yaml").read_text(encoding="utf-8"))
    wheel_name = Path(bentofile["python"]["wheels"][0]).name
    assert (wheels / wheel_name).is_file(), sorted(p.name for p in wheels.iterdir())
    assert f"-{textops.__version__}-" in wheel_name  # the bentofile follows the package version

    bentoml = Path(sys.executable).with_name("bentoml")
    out = _run([str(bentoml), "build", "--output", "tag"], cwd=bento_dir, env=env)
    tag = out.strip().splitlines()[-1].removeprefix("__tag__:")
    name, version = tag.split(":")
    assert name == "textops-classifier"

    bento = tmp_path / "bentoml" / "bentos" / name / version
    info = yaml.safe_load((bento / "bento.yaml").read_text(encoding="utf-8"))
    assert info["service"] == "service:TextClassifierService"
    assert info["labels"] == {"project": "textops", "component": "serving"}
    assert info["models"] == []  # the model is loaded from MLflow at start-up, not baked in
    assert {e["name"] for e in info["envs"]} >= {"TEXTOPS_MODEL_URI", "TEXTOPS_MAX_BATCH_SIZE"}
    assert (bento / "src" / "service.py").is_file()
    assert (bento / "env" / "python" / "wheels" / wheel_name).is_file()
    openapi = (bento / "apis" / "openapi.yaml").read_text(encoding="utf-8")
    assert "/predict" in openapi and "/feedback" in openapi

    dockerfile = (bento / "env" / "docker" / "Dockerfile").read_text(encoding="utf-8")
    assert "EXPOSE 3000" in dockerfile
    assert dockerfile.rstrip().splitlines()[-1].startswith("ENTRYPOINT")
    users = [line for line in dockerfile.splitlines() if line.startswith("USER ")]
    assert users[-1] != "USER root"  # the image runs as the bento user
