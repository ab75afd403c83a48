"""What each of the project's images is made of (pure: plain data in, plain data out).

Why: the builder (`textops.packaging.images`) only runs commands; which lock selection an image
installs, which files its build context holds, what its tags are and when an unchanged tree
may reuse an earlier build are decisions, tested here without Docker.

Every image installs its Python packages from uv.lock (`uv export` of one selection of extras
or dependency groups) as wheels the host prepared, with `pip --no-index`: the image holds
exactly the lock's versions and nothing the build container downloads itself. Its base is
`ARG BASE_IMAGE`: the official Python slim image for users, a bookworm root file system made
from Debian's packages (mmdebstrap) on machines that reach no container registry.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

# Bumped when the way contexts are assembled changes, so no build of the old way is reused.
RECIPE_VERSION = "2"
REPOSITORY = "textops"
WHEELS_DIR = "wheels"  # in each build context: the locked dependencies and requirements.txt
PROJECT_DIR = "project"  # ... and the textops wheel, a layer of its own (it changes often)
REQUIREMENTS = "requirements.txt"
INSTALL_SCRIPT = "images/install-locked.sh"  # the RUN steps of every Python image
CONTENT_TAG_PREFIX = "in-"  # textops/NAME:in-<digest>: the build of exactly these inputs
DEPENDENCIES_STAGE = "dependencies"  # the Dockerfiles' stage installing the locked packages
STAGE_LABEL = "io.textops.build-stage=dependencies"  # its label, for pruning


@dataclass(frozen=True)
class ImageSpec:
    """One image: its Dockerfile, the lock selection it installs and the files it needs."""

    name: str
    dockerfile: str  # relative to the repository root
    extras: tuple[str, ...] = ()
    groups: tuple[str, ...] = ()
    with_project: bool = True  # install the textops wheel
    # ... and its main dependencies. False: the wheel goes in with --no-deps, beside the
    # closure of `groups` alone (an image whose code imports none of them: the operator)
    project_dependencies: bool = True
    files: Mapping[str, str] = field(default_factory=dict)  # repo path -> path in the context
    bento: str | None = None  # a bento folder to `bentoml build` into the context's bento/
    # binaries from the tool cache (textops.packaging.images.TOOLS) -> path in the context
    tools: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.project_dependencies and self.extras:
            # an extra is exported with the main dependencies: to go without them, use a group
            raise ValueError(f"{self.name}: the textops wheel alone takes groups, not extras")

    @property
    def installs_the_lock(self) -> bool:
        """Python images install a selection of uv.lock; the stand-ins install none."""
        return self.with_project or bool(self.extras or self.groups)

    @property
    def context_files(self) -> dict[str, str]:
        """Repository files the build context gets: the spec's, and the install script every
        Python image runs."""
        shared = {INSTALL_SCRIPT: "install-locked.sh"} if self.installs_the_lock else {}
        return {**shared, **self.files}


IMAGES: dict[str, ImageSpec] = {
    spec.name: spec
    for spec in (
        # The operator imports none of textops's main dependencies (it asks MLflow over its
        # REST API): the closure of the `operator` extra, as the group `operator-image`.
        ImageSpec(
            "operator",
            "operator/Dockerfile",
            groups=("operator-image",),
            project_dependencies=False,
        ),
        ImageSpec(
            "training",
            "training/Dockerfile",
            files={"training/entrypoint.sh": "entrypoint.sh"},
        ),
        ImageSpec(
            "mlflow", "images/mlflow/Dockerfile", groups=("mlflow-server",), with_project=False
        ),
        ImageSpec(
            "serving",
            "bentos/classifier/Dockerfile",
            extras=("serving",),
            bento="bentos/classifier",
        ),
        # Stand-ins for the third-party images the chart runs, which no registry here serves:
        # MySQL (Debian's MariaDB), MinIO (the S3 server the suite runs), Prometheus (built
        # from its Go module: Debian's has no Kubernetes discovery). See docs/images.md.
        ImageSpec(
            "mariadb-standin",
            "images/mariadb/Dockerfile",
            with_project=False,
            files={"images/mariadb/entrypoint.sh": "entrypoint.sh"},
        ),
        ImageSpec(
            "s3-standin",
            "images/s3/Dockerfile",
            with_project=False,
            files={"images/s3/entrypoint.sh": "entrypoint.sh"},
            tools={"versitygw": "versitygw"},
        ),
        ImageSpec(
            "prometheus-standin",
            "images/prometheus/Dockerfile",
            with_project=False,
            tools={"prometheus": "prometheus"},
        ),
    )
}
STANDINS = ("mariadb-standin", "s3-standin", "prometheus-standin")

# The embeddings extra (torch, transformers) is several GB: only models with a sentence
# encoder need it, so it is a variant a user asks for, never part of the default images.
VARIANT_EXTRAS = {"embeddings": ("embeddings",)}


def with_variant(spec: ImageSpec, variant: str | None) -> ImageSpec:
    """`spec` with a variant's extras added (`serving` + embeddings -> `serving-embeddings`)."""
    if not variant:
        return spec
    if variant not in VARIANT_EXTRAS:
        raise ValueError(f"unknown variant {variant!r}: one of {sorted(VARIANT_EXTRAS)}")
    if not spec.with_project:
        raise ValueError(f"the {spec.name} image does not install textops: it has no variants")
    if not spec.project_dependencies:
        raise ValueError(f"the {spec.name} image installs textops alone: it has no variants")
    if spec.tools:
        raise ValueError(f"the {spec.name} image has no variants")
    return replace(
        spec, name=f"{spec.name}-{variant}", extras=spec.extras + VARIANT_EXTRAS[variant]
    )


def export_args(spec: ImageSpec, *, hashes: bool) -> list[str]:
    """`uv export` arguments giving the image's locked requirements (never the project)."""
    args = ["export", "--frozen", "--quiet", "--no-emit-project", "--format", "requirements.txt"]
    if spec.with_project and spec.project_dependencies:
        for extra in spec.extras:
            args += ["--extra", extra]
        for group in spec.groups:
            args += ["--group", group]
    else:  # only the groups' own closure, not the project's dependencies
        for group in spec.groups:
            args += ["--only-group", group]
    if not hashes:
        args.append("--no-hashes")
    return args


def source_files(root: Path, spec: ImageSpec) -> list[Path]:
    """Every file whose content goes into the image, in a stable order (for the digest)."""
    paths = [root / spec.dockerfile, *(root / p for p in spec.context_files)]
    if spec.with_project:  # pyproject.toml counts through wheel_metadata(), not as a file
        paths += [root / "README.md", *_tree(root / "textops")]
    if spec.bento:
        paths += _tree(root / spec.bento)
    return sorted(set(paths))


def _tree(folder: Path) -> list[Path]:
    return [
        p
        for p in folder.rglob("*")
        if p.is_file() and "__pycache__" not in p.parts and p.suffix not in (".pyc", ".whl")
    ]


# The tables of pyproject.toml that shape the textops wheel; tool settings (pytest, ruff, mypy)
# do not, so editing them rebuilds no image.
WHEEL_TABLES = ("build-system", "project", "tool.setuptools")


def wheel_metadata(pyproject: Mapping) -> str:
    """The part of pyproject.toml that goes into the wheel, as stable text."""
    picked = {}
    for table in WHEEL_TABLES:
        node = pyproject
        for key in table.split("."):
            node = node.get(key, {})
        picked[table] = node
    return json.dumps(picked, sort_keys=True)


def input_digest(
    root: Path,
    files: Iterable[Path],
    requirements: str,
    base_image: str,
    spec: ImageSpec,
    pyproject: Mapping | None = None,
    binaries: Mapping[str, Path] | None = None,
    revision: Revision | None = None,
) -> str:
    """sha256 over everything a build depends on: equal digests mean an equal image.

    `binaries` are the tool-cache files the context gets (by their name in the context);
    `revision` is what the image records of its commit."""
    h = hashlib.sha256()
    metadata = wheel_metadata(pyproject) if spec.with_project and pyproject else ""
    parts = [RECIPE_VERSION, base_image, repr(spec), requirements, metadata]
    if revision:  # images that record none keep the digests they had
        parts.append(repr(revision))
    for part in parts:
        h.update(part.encode())
        h.update(b"\0")
    named = [(str(path.relative_to(root)), path) for path in files]
    named += sorted((f"tool:{name}", path) for name, path in (binaries or {}).items())
    for name, path in named:
        h.update(name.encode())
        h.update(b"\0")
        h.update(path.read_bytes())
        h.update(b"\0")
    return h.hexdigest()


# ----------------------------------------------------------------------------- the revision

UNKNOWN = "unknown"


@dataclass(frozen=True)
class Revision:
    """The commit an image's sources come from, and whether the work tree differed from it.

    It is the newest commit that changed one of the image's inputs (checking it out gives
    the same files), not HEAD: a commit that leaves the inputs alone keeps the image, its
    digest and its revision. The images carry it as TEXTOPS_GIT_COMMIT / TEXTOPS_GIT_DIRTY
    (and the OCI revision label), so a run's lineage in a container names the commit too.
    """

    commit: str = UNKNOWN
    dirty: str = UNKNOWN  # "true", "false" or "unknown"

    def build_args(self) -> dict[str, str]:
        return {"TEXTOPS_GIT_COMMIT": self.commit, "TEXTOPS_GIT_DIRTY": self.dirty}


def revision_paths(spec: ImageSpec) -> list[str]:
    """Repository paths whose content an image holds (what `git log`/`git status` look at)."""
    paths = [spec.dockerfile, *spec.context_files]
    if spec.installs_the_lock:
        paths += ["pyproject.toml", "uv.lock"]
    if spec.with_project:
        paths += ["README.md", "textops"]
    if spec.bento:
        paths.append(spec.bento)
    return sorted(set(paths))


def revision(last_commit: str | None, status: str | None) -> Revision:
    """From ``git log -1 --format=%H -- PATHS`` and ``git status --porcelain -- PATHS``
    (None where git answered nothing: not a checkout, no git)."""
    commit = (last_commit or "").strip()
    if not commit or status is None:
        return Revision()
    return Revision(commit, "true" if status.strip() else "false")


def tags(spec: ImageSpec, version: str, digest: str) -> list[str]:
    """The release tag users and the chart name, and a content tag naming this exact build."""
    name = f"{REPOSITORY}/{spec.name}"
    return [f"{name}:{version}", f"{name}:{CONTENT_TAG_PREFIX}{digest[:16]}"]


def cached_stages(
    spec: ImageSpec, recipe: bytes, requirements: str, base_image: str
) -> dict[str, str]:
    """{stage: tag} of the build stages worth keeping between builds: the locked
    dependencies, whose inputs (the Dockerfile and the files it copies, the requirements, the
    base) rarely change while textops does. Tagged, they survive the pruning of old builds
    and Docker reuses their layers."""
    if not spec.installs_the_lock:
        return {}
    h = hashlib.sha256()
    for part in (RECIPE_VERSION.encode(), recipe, requirements.encode(), base_image.encode()):
        h.update(part)
        h.update(b"\0")
    name = f"{REPOSITORY}/{spec.name}-{DEPENDENCIES_STAGE}"
    return {DEPENDENCIES_STAGE: f"{name}:{CONTENT_TAG_PREFIX}{h.hexdigest()[:16]}"}


def docker_build_args(
    spec: ImageSpec,
    context: Path,
    base_image: str,
    image_tags: Iterable[str],
    target: str | None = None,
    build_args: Mapping[str, str] | None = None,
) -> list[str]:
    """`docker build` with the classic builder (no BuildKit features are used)."""
    args = ["build", "--pull=false", "--build-arg", f"BASE_IMAGE={base_image}"]
    for name, value in (build_args or {}).items():
        args += ["--build-arg", f"{name}={value}"]
    if target:
        args += ["--target", target]
    for tag in image_tags:
        args += ["--tag", tag]
    args += ["--file", str(context / "Dockerfile"), str(context)]
    return args


# ----------------------------------------------------------------------------- the base image

BASE_SUITE = "bookworm"
BASE_PACKAGES = ("python3", "python3-venv", "ca-certificates")
# Documentation and translations are dropped from the base (users never read them in a pod).
BASE_EXCLUDES = ("/usr/share/doc/*", "/usr/share/man/*", "/usr/share/info/*", "/usr/share/locale/*")
BASE_REPOSITORY = f"{REPOSITORY}/python-base"


def base_mmdebstrap_args(output: Path) -> list[str]:
    """A minimal bookworm root file system with Python 3.11 and venv, as a tar."""
    args = ["--variant=minbase", f"--include={','.join(BASE_PACKAGES)}"]
    args += [f"--dpkgopt=path-exclude={p}" for p in BASE_EXCLUDES]
    args += ["--dpkgopt=path-include=/usr/share/doc/*/copyright"]
    return [*args, BASE_SUITE, str(output)]


BASE_RECIPE_VERSION = "1"


def base_tag() -> str:
    """The local base's tag: changes whenever its recipe does."""
    recipe = repr((BASE_RECIPE_VERSION, BASE_SUITE, BASE_PACKAGES, BASE_EXCLUDES))
    return f"{BASE_REPOSITORY}:3.11-{BASE_SUITE}-{hashlib.sha256(recipe.encode()).hexdigest()[:12]}"
