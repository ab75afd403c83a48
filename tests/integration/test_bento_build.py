"""`bentoml build` of bentos/classifier succeeds and yields the Bento the serving image holds.

It runs the image builder's own step (textops.packaging.images.build_bento): the textops
wheel and the locked `serving` requirements go into a copy of the bento folder, then the real
`bentoml build` runs with BENTOML_HOME in a temporary folder; nothing is written into the
checkout. It checks what the serving image copies: the service entry point, the wheel, the
locked requirements and the environment defaults. The image itself is built and run by the
image tests.

Marked integration: it runs real tools (uv, bentoml) for about 15 s, though no server.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

import textops
from textops.packaging import images, lock, recipes

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
BENTO_SRC = ROOT / "bentos" / "classifier"


def test_bentoml_build_makes_the_serving_bento(tmp_path: Path) -> None:
    log = tmp_path / "build.log"
    wheel = images.project_wheel(tmp_path / "wheels", log)
    assert f"-{textops.__version__}-" in wheel.name  # the bentofile follows the package version
    requirements = images.locked_requirements(recipes.IMAGES["serving"], hashes=False)
    assert "bentoml==" in requirements and "torch==" not in requirements
    bento = tmp_path / "bento"
    images.build_bento(BENTO_SRC, wheel, requirements, bento, log)

    bentofile = yaml.safe_load((BENTO_SRC / "bentofile.yaml").read_text(encoding="utf-8"))
    assert Path(bentofile["python"]["wheels"][0]).name == wheel.name
    info = yaml.safe_load((bento / "bento.yaml").read_text(encoding="utf-8"))
    assert info["service"] == "service:TextClassifierService"
    assert info["labels"] == {"project": "textops", "component": "serving"}
    assert info["models"] == []  # the model is loaded from MLflow at start-up, not baked in
    assert {e["name"] for e in info["envs"]} >= {"TEXTOPS_MODEL_URI", "TEXTOPS_MAX_BATCH_SIZE"}
    assert (bento / "src" / "service.py").is_file()
    assert (bento / "env" / "python" / "wheels" / wheel.name).is_file()
    # the bento carries the lock's versions, for `bentoml containerize` users too
    locked = (bento / "env" / "python" / "requirements.txt").read_text(encoding="utf-8")
    assert lock.pinned(locked) == lock.pinned(requirements)
    openapi = (bento / "apis" / "openapi.yaml").read_text(encoding="utf-8")
    assert "/predict" in openapi and "/feedback" in openapi
