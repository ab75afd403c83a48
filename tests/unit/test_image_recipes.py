"""What each image installs and when a build may be reused (textops.packaging.recipes)."""

from __future__ import annotations

import json
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest

from textops.packaging import lock, recipes

ROOT = Path(__file__).resolve().parents[2]
UV = Path(sys.executable).with_name("uv")


def export(spec: recipes.ImageSpec) -> dict[str, str]:
    """The image's selection of uv.lock, through the real `uv export`."""
    text = subprocess.run(
        [str(UV), *recipes.export_args(spec, hashes=False)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return lock.pinned(text)


def test_each_image_installs_a_subset_of_the_lock_at_the_locked_versions() -> None:
    locked = lock.versions(lock.read())
    for spec in recipes.IMAGES.values():
        if not spec.installs_the_lock:
            assert spec.name in recipes.STANDINS
            continue
        selected = export(spec)
        assert selected, spec.name
        assert {n: locked[n] for n in selected} == selected, spec.name


def test_serving_and_operator_images_carry_no_torch_unless_asked() -> None:
    for name in ("serving", "operator"):
        selected = export(recipes.IMAGES[name])
        assert "torch" not in selected and "transformers" not in selected, name
        assert "pytest" not in selected and "mypy" not in selected, name
    assert "kopf" in export(recipes.IMAGES["operator"])
    assert "bentoml" in export(recipes.IMAGES["serving"])
    with_encoder = export(recipes.with_variant(recipes.IMAGES["serving"], "embeddings"))
    assert "torch" in with_encoder and "bentoml" in with_encoder


def pyproject() -> dict[str, Any]:
    with (ROOT / "pyproject.toml").open("rb") as f:
        return tomllib.load(f)


def test_the_operator_image_holds_its_closure_and_none_of_the_main_dependencies() -> None:
    spec = recipes.IMAGES["operator"]
    selected = export(spec)
    assert {"kopf", "kubernetes", "prometheus-client"} <= set(selected)
    main = {name for group, name, _ in lock.declared(pyproject()) if group == ""}
    for name in (
        "mlflow",
        "numpy",
        "scipy",
        "scikit-learn",
        "xgboost-cpu",
        "matplotlib",
        "snownlp",
    ):
        assert name in main and name not in selected, name
    assert not main & set(selected)
    assert spec.with_project and not spec.project_dependencies  # the textops wheel, --no-deps
    assert "--only-group" in recipes.export_args(spec, hashes=False)
    with pytest.raises(ValueError, match="no variants"):
        recipes.with_variant(spec, "embeddings")
    with pytest.raises(ValueError, match="groups, not extras"):
        recipes.ImageSpec("x", "Dockerfile", extras=("operator",), project_dependencies=False)


def test_the_operator_image_group_is_the_operator_extra() -> None:
    """uv exports a group's closure alone (--only-group), an extra only with the main
    dependencies: the image installs the group `operator-image`, which must ask for what the
    `operator` extra asks."""
    toml = pyproject()
    extra = toml["project"]["optional-dependencies"]["operator"]
    assert toml["dependency-groups"]["operator-image"] == extra
    assert recipes.IMAGES["operator"].groups == ("operator-image",)


# Run in a fresh interpreter of this venv: the modules of any installed distribution outside
# the selection cannot be imported, as in the image (optional imports, such as kubernetes's of
# google-auth, fall back as they do there). Prints the top-level modules then loaded.
ONLY_THE_SELECTION = """
import importlib, importlib.abc, importlib.metadata, json, sys
from textops.packaging.lock import canonical

allowed = set(json.loads(sys.argv[1]))
owners = importlib.metadata.packages_distributions()

class OnlyTheSelection(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        dists = {canonical(d) for d in owners.get(name.partition(".")[0], [])}
        if dists and not dists & allowed:
            raise ModuleNotFoundError(f"No module named {name!r} (not selected)", name=name)
        return None

sys.meta_path.insert(0, OnlyTheSelection())
for module in sys.argv[2:]:
    importlib.import_module(module)
print(json.dumps(sorted({name.partition(".")[0] for name in sys.modules})))
"""


def import_with_only(selection: set[str], *modules: str) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-c", ONLY_THE_SELECTION, json.dumps(sorted(selection)), *modules]
    return subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, check=False)


def test_the_operator_imports_nothing_its_image_lacks() -> None:
    """What the operator's Dockerfile proves at build time (install-locked.sh project-alone),
    here without Docker: the modules it names import with the image's selection alone."""
    spec = recipes.IMAGES["operator"]
    text = (ROOT / spec.dockerfile).read_text(encoding="utf-8").replace("\\\n", " ")
    run = next(line for line in text.splitlines() if "install-locked.sh project-alone" in line)
    modules = run.split("project-alone", 1)[1].split()[1:]  # after the venv
    assert "textops.operator.main" in modules and "textops.cli" in modules
    selection = {*export(spec), lock.PROJECT}

    done = import_with_only(selection, *modules)
    assert done.returncode == 0, done.stderr
    loaded = set(json.loads(done.stdout))
    assert {"kopf", "kubernetes", "prometheus_client"} <= loaded
    assert not {"mlflow", "numpy", "pandas", "sklearn", "xgboost"} & loaded
    # the fence holds: what needs a main dependency does not import
    training = import_with_only(selection, "textops.demo.scenario")
    assert training.returncode != 0 and "numpy" in training.stderr


def test_the_mlflow_image_holds_its_group_and_not_the_project_dependencies() -> None:
    selected = export(recipes.IMAGES["mlflow"])
    assert {"mlflow", "pymysql", "cryptography", "boto3"} <= set(selected)
    assert "xgboost-cpu" not in selected and "snownlp" not in selected
    with pytest.raises(ValueError, match="no variants"):
        recipes.with_variant(recipes.IMAGES["mlflow"], "embeddings")


def test_the_digest_follows_every_input_and_nothing_else(tmp_path: Path) -> None:
    spec = recipes.ImageSpec("x", "Dockerfile", files={"entry.sh": "entry.sh"}, bento="bento")
    for rel, text in {
        "Dockerfile": "FROM x",
        "entry.sh": "run",
        "pyproject.toml": "[project]",
        "README.md": "hi",
        "textops/a.py": "a = 1",
        "bento/service.py": "s",
        "images/install-locked.sh": "pip install",
    }.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(text)

    pyproject: dict[str, Any] = {
        "project": {"name": "textops"},
        "tool": {"pytest": {"markers": ["a"]}},
    }

    def digest(requirements: str = "a==1\n", base: str = "base:1") -> str:
        files = recipes.source_files(tmp_path, spec)
        return recipes.input_digest(tmp_path, files, requirements, base, spec, pyproject)

    first = digest()
    assert digest() == first  # stable
    (tmp_path / "textops" / "__pycache__").mkdir()
    (tmp_path / "textops" / "__pycache__" / "a.cpython-311.pyc").write_bytes(b"\0")
    assert digest() == first  # byte code is not an input
    assert digest(requirements="a==2\n") != first
    assert digest(base="base:2") != first
    pyproject["tool"]["pytest"]["markers"].append("b")  # test settings are not in the wheel
    assert digest() == first
    pyproject["project"]["version"] = "2"
    assert digest() != first
    del pyproject["project"]["version"]
    for rel in (
        "textops/a.py",
        "bento/service.py",
        "entry.sh",
        "Dockerfile",
        "images/install-locked.sh",
    ):
        before = (tmp_path / rel).read_text()
        (tmp_path / rel).write_text(before + " ")
        assert digest() != first, rel
        (tmp_path / rel).write_text(before)
    assert digest() == first


def test_a_stand_in_is_rebuilt_when_its_binary_changes(tmp_path: Path) -> None:
    spec = recipes.IMAGES["s3-standin"]
    assert not spec.installs_the_lock and spec.tools == {"versitygw": "versitygw"}
    binary = tmp_path / "versitygw"
    binary.write_bytes(b"v1")
    files = recipes.source_files(ROOT, spec)
    first = recipes.input_digest(ROOT, files, "", "base:1", spec, None, {"versitygw": binary})
    binary.write_bytes(b"v2")
    assert (
        recipes.input_digest(ROOT, files, "", "base:1", spec, None, {"versitygw": binary}) != first
    )
    with pytest.raises(ValueError, match="no variants"):
        recipes.with_variant(spec, "embeddings")


def test_tags_name_the_release_and_the_exact_build() -> None:
    spec = recipes.IMAGES["operator"]
    assert recipes.tags(spec, "0.1.0", "ab" * 32) == [
        "textops/operator:0.1.0",
        f"textops/operator:in-{'ab' * 8}",
    ]
    args = recipes.docker_build_args(spec, Path("/ctx"), "base:1", ["a:1"])
    assert args[args.index("--build-arg") + 1] == "BASE_IMAGE=base:1"
    assert args[-1] == "/ctx" and "--pull=false" in args


def test_the_base_recipe_is_named_by_its_content() -> None:
    args = recipes.base_mmdebstrap_args(Path("/out/base.tar"))
    assert args[-2:] == ["bookworm", "/out/base.tar"]
    assert "--include=python3,python3-venv,ca-certificates" in args
    assert recipes.base_tag().startswith("textops/python-base:3.11-bookworm-")


def test_the_revision_is_the_newest_commit_of_the_inputs_and_the_digest_follows_it(
    tmp_path: Path,
) -> None:
    commit = "0123456789abcdef0123456789abcdef01234567"
    assert recipes.revision(f"{commit}\n", "") == recipes.Revision(commit, "false")
    assert recipes.revision(commit, " M textops/cli.py\n") == recipes.Revision(commit, "true")
    assert recipes.revision(None, None) == recipes.Revision("unknown", "unknown")  # no git
    assert recipes.revision("", "") == recipes.Revision()  # no commit touches the paths
    assert recipes.Revision(commit, "false").build_args() == {
        "TEXTOPS_GIT_COMMIT": commit,
        "TEXTOPS_GIT_DIRTY": "false",
    }
    training = recipes.revision_paths(recipes.IMAGES["training"])
    for path in ("textops", "uv.lock", "pyproject.toml", "training/Dockerfile"):
        assert path in training
    assert "training/entrypoint.sh" in training
    assert "bentos/classifier" in recipes.revision_paths(recipes.IMAGES["serving"])
    assert "textops" not in recipes.revision_paths(recipes.IMAGES["mlflow"])

    spec = recipes.IMAGES["operator"]
    (tmp_path / "Dockerfile").write_text("FROM x")
    files = [tmp_path / "Dockerfile"]

    def digest(revision: recipes.Revision | None) -> str:
        return recipes.input_digest(tmp_path, files, "", "base:1", spec, None, None, revision)

    clean = digest(recipes.Revision(commit, "false"))
    assert digest(recipes.Revision(commit, "true")) != clean
    assert digest(recipes.Revision("f" * 40, "false")) != clean
    assert digest(None) == recipes.input_digest(tmp_path, files, "", "base:1", spec)
    args = recipes.docker_build_args(
        spec, Path("/ctx"), "base:1", ["a:1"], build_args={"TEXTOPS_GIT_COMMIT": commit}
    )
    assert f"TEXTOPS_GIT_COMMIT={commit}" in args


@pytest.mark.parametrize("name", ["operator", "training", "serving"])
def test_the_textops_images_record_their_revision(name: str) -> None:
    dockerfile = (ROOT / recipes.IMAGES[name].dockerfile).read_text()
    final = dockerfile.rsplit("\nFROM ", 1)[1]
    for line in (
        "ARG TEXTOPS_GIT_COMMIT=unknown",
        "ARG TEXTOPS_GIT_DIRTY=unknown",
        "ENV TEXTOPS_GIT_COMMIT=${TEXTOPS_GIT_COMMIT} TEXTOPS_GIT_DIRTY=${TEXTOPS_GIT_DIRTY}",
        "LABEL org.opencontainers.image.revision=${TEXTOPS_GIT_COMMIT}",
    ):
        assert line in final, (name, line)
