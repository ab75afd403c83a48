"""The images users run hold exactly the lock and start as the chart runs them.

Each image is run for real by Docker with no network, as uid 10001 on a read-only root file
system with a writable /tmp (what the chart and the operator give their pods), and asked what
it holds: its Python distributions must be the lock's selection for that image at the lock's
versions, no more and no fewer.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

import textops
from textops.packaging import images, lock, recipes

pytestmark = pytest.mark.images

ROOT = Path(__file__).resolve().parents[2]
LIST_DISTRIBUTIONS = (
    "import importlib.metadata as m, json; "
    "print(json.dumps({d.metadata['Name']: d.version for d in m.distributions()}))"
)


def run_in(image: str, *argv: str, entrypoint: str = "python", user: str = "10001") -> str:
    done = subprocess.run(
        [
            "docker",
            "run",
            "--rm",
            "--network",
            "none",
            "--read-only",
            "--tmpfs",
            "/tmp",
            "--user",
            user,
            "--entrypoint",
            entrypoint,
            image,
            *argv,
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, f"{image} {argv}:\n{done.stdout}\n{done.stderr}"
    return done.stdout


PYTHON_IMAGES = [name for name, spec in recipes.IMAGES.items() if spec.installs_the_lock]


@pytest.mark.parametrize("name", PYTHON_IMAGES)
def test_each_image_holds_exactly_its_selection_of_the_lock(
    name: str, built_images: dict[str, images.Built]
) -> None:
    spec = recipes.IMAGES[name]
    image = built_images[name].tags[-1]
    installed: dict[str, str] = json.loads(run_in(image, "-c", LIST_DISTRIBUTIONS))
    project = installed.pop(lock.PROJECT, None)
    assert project == (textops.__version__ if spec.with_project else None)

    assert lock.differences(installed, lock.versions(lock.read())) == []
    wanted = lock.pinned(images.locked_requirements(spec, hashes=False))
    assert {lock.canonical(n) for n in installed} == set(wanted)


def test_the_images_start_their_programs_as_the_chart_runs_them(
    built_images: dict[str, images.Built],
) -> None:
    tag = {name: built.tags[-1] for name, built in built_images.items()}
    assert "usage" in run_in(tag["operator"], "-m", "textops.operator", "--help").lower()
    assert "train" in run_in(tag["training"], "--help", entrypoint="textops")
    assert "mlflow, version" in run_in(tag["mlflow"], "--version", entrypoint="mlflow")
    # the serving image's bento names the service class the package provides
    served = run_in(
        tag["serving"],
        "-c",
        "import sys; sys.path.insert(0, '/opt/bento/src'); import service; "
        "print(service.TextClassifierService.name)",
    )
    assert served.strip() == "textops-classifier"


def test_the_stand_ins_run_their_servers_as_the_chart_runs_them(
    built_images: dict[str, images.Built],
) -> None:
    """The chart runs them for real on the dev cluster's node (tests/cluster/test_chart.py);
    here: the right program, as the uid the chart gives it, on a read-only root."""
    tag = {name: built_images[name].tags[-1] for name in recipes.STANDINS}
    mariadb = run_in(tag["mariadb-standin"], "--version", entrypoint="mariadbd", user="999")
    assert "MariaDB" in mariadb
    assert "Version" in run_in(tag["s3-standin"], "--version", entrypoint="versitygw")
    prometheus = run_in(
        tag["prometheus-standin"], "--version", entrypoint="prometheus", user="65534"
    )
    assert "prometheus, version 3." in prometheus


def test_an_unchanged_tree_rebuilds_nothing(built_images: dict[str, images.Built]) -> None:
    again = images.build_all(["operator"])
    assert again[0].cached and again[0].tags == built_images["operator"].tags
