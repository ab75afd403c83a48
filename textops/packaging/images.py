"""Build the project's images with Docker's classic builder, reusing earlier builds.

`make images` runs `python -m textops.packaging.images build`. For each image it exports its
selection of uv.lock, computes a digest of every input (Dockerfile, locked requirements,
sources, binaries, base image), and returns at once when Docker has the image of that digest
(`textops/NAME:in-<digest>`): Docker's store, outside the repository, is the cache. Otherwise
it assembles a build context under `${TEXTOPS_CACHE}/images-v1/`: the Dockerfile, the files
it copies, `wheels/` with the locked wheels that the host's pip fetched and verified against
the lock's hashes, using the machine's own package index settings (`PIP_*`, the CA bundle),
and `project/` with the textops wheel. Nothing about the index or its certificates goes
into an image, and the build container never reaches the network for Python packages.

With no container registry reachable, the base is a bookworm root file system made from
Debian's packages (mmdebstrap) and imported into Docker; `--base` names another base
(`python:3.11.14-slim-bookworm` is the Dockerfiles' default for users with a registry).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import textops
from textops.contracts import Env
from textops.packaging import recipes
from textops.packaging.recipes import ImageSpec

ROOT = Path(__file__).resolve().parents[2]
CACHE_LAYOUT = "images-v1"
DOCKERD_WAIT_S = 60


class BuildError(RuntimeError):
    """A step of an image build failed; the message says which and shows its output's tail."""


def cache_root() -> Path:
    base = os.environ.get(Env.CACHE) or str(Path.home() / ".cache" / "textops")
    return Path(base) / CACHE_LAYOUT


def say(message: str) -> None:
    print(f"[images] {message}", file=sys.stderr, flush=True)


def run(argv: Sequence[str], *, log: Path | None = None, **kwargs: object) -> str:
    """Run a command; on failure raise BuildError with the tail of what it printed."""
    done = subprocess.run(list(argv), capture_output=True, text=True, check=False, **kwargs)  # type: ignore[call-overload]
    output = (done.stdout or "") + (done.stderr or "")
    if log is not None:
        with log.open("a", encoding="utf-8") as fh:
            fh.write(f"$ {' '.join(argv)}\n{output}\n")
    if done.returncode != 0:
        tail = "\n".join(output.splitlines()[-40:])
        raise BuildError(f"{' '.join(argv[:3])} ... failed ({done.returncode}):\n{tail}")
    return str(done.stdout)


# ----------------------------------------------------------------------------- Docker


def docker_env() -> dict[str, str]:
    # Debian's docker.io has no buildx: the classic builder, which the Dockerfiles are written for.
    return {**os.environ, "DOCKER_BUILDKIT": "0"}


def daemon_answers() -> bool:
    if shutil.which("docker") is None:
        return False
    done = subprocess.run(["docker", "info"], capture_output=True, check=False, timeout=30)
    return done.returncode == 0


def ensure_daemon(state: Path) -> None:
    """Start Debian's dockerd in the background when no Docker daemon answers (it stays up)."""
    if daemon_answers():
        return
    dockerd = shutil.which("dockerd") or "/usr/sbin/dockerd"
    if not Path(dockerd).exists() or shutil.which("docker") is None:
        raise BuildError("no Docker engine: install Debian's docker.io (make system-deps)")
    state.mkdir(parents=True, exist_ok=True)
    log = state / "dockerd.log"
    say(f"starting dockerd (log: {log})")
    with log.open("ab") as fh:
        subprocess.Popen(
            [dockerd], stdout=fh, stderr=subprocess.STDOUT, start_new_session=True, cwd="/"
        )
    deadline = time.monotonic() + DOCKERD_WAIT_S
    while time.monotonic() < deadline:
        if daemon_answers():
            return
        time.sleep(0.5)
    raise BuildError(f"dockerd did not answer within {DOCKERD_WAIT_S} s; see {log}")


def image_exists(tag: str) -> bool:
    done = subprocess.run(
        ["docker", "image", "inspect", tag], capture_output=True, check=False, timeout=60
    )
    return done.returncode == 0


def image_size(tag: str) -> int:
    return int(run(["docker", "image", "inspect", "--format", "{{.Size}}", tag]).strip())


# ----------------------------------------------------------------------------- the base image


def ensure_base(cache: Path) -> str:
    """The local Debian base, imported into Docker; built with mmdebstrap when not cached."""
    tag = recipes.base_tag()
    if image_exists(tag):
        return tag
    tar = cache / f"{tag.split(':', 1)[1]}.rootfs.tar"
    if not tar.exists():
        if shutil.which("mmdebstrap") is None:
            raise BuildError("mmdebstrap is needed for the local base image (make system-deps)")
        say(f"base: mmdebstrap {recipes.BASE_SUITE} with {', '.join(recipes.BASE_PACKAGES)} ...")
        t0 = time.monotonic()
        partial = tar.with_name(f"{tar.stem}.partial.tar")  # mmdebstrap's format follows the name
        run(["mmdebstrap", "--quiet", *recipes.base_mmdebstrap_args(partial)])
        partial.rename(tar)
        say(f"base: root file system in {time.monotonic() - t0:.0f} s")
    run(["docker", "import", "--change", "ENV LANG=C.UTF-8", str(tar), tag])
    for old in cache.glob("*.rootfs.tar"):  # an earlier recipe's base
        if old != tar:
            old.unlink(missing_ok=True)
    say(f"base: {tag} ({image_size(tag) / 1e6:.0f} MB)")
    return tag


# ----------------------------------------------------------------------------- images


@dataclass(frozen=True)
class Built:
    """What `build` made or found: the tags (the content tag last) and what it cost."""

    name: str
    tags: list[str]
    cached: bool
    seconds: float
    size_bytes: int

    @property
    def content_tag(self) -> str:
        """``textops/NAME:in-<digest>``: exactly this build (recipes.tags puts it last)."""
        return self.tags[-1]

    def as_dict(self) -> dict[str, object]:
        return dict(self.__dict__)


def uv() -> str:
    found = shutil.which("uv", path=str(Path(sys.executable).parent)) or shutil.which("uv")
    if not found:
        raise BuildError("uv is not installed: run make venv")
    return found


def locked_requirements(spec: ImageSpec, *, hashes: bool) -> str:
    return run([uv(), *recipes.export_args(spec, hashes=hashes)], cwd=ROOT)


def project_wheel(out: Path, log: Path) -> Path:
    """The textops wheel, built from a copy of the sources (nothing is written into the tree)."""
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "src"
        shutil.copytree(
            ROOT / "textops", src / "textops", ignore=shutil.ignore_patterns("__pycache__")
        )
        for name in ("pyproject.toml", "README.md"):
            shutil.copy2(ROOT / name, src / name)
        run([uv(), "build", "--wheel", "--quiet", "--out-dir", str(out), str(src)], log=log)
    wheels = sorted(out.glob(f"textops-{textops.__version__}-*.whl"))
    if not wheels:
        raise BuildError(f"uv build made no textops wheel in {out}")
    return wheels[-1]


def fill_wheelhouse(spec: ImageSpec, wheels: Path, log: Path) -> None:
    """The image's locked dependencies as wheels, downloaded and hash-checked by the host's
    pip, and requirements.txt naming exactly their versions."""
    wheels.mkdir(parents=True, exist_ok=True)
    hashed = wheels.parent / "requirements.hashes.txt"
    hashed.write_text(locked_requirements(spec, hashes=True), encoding="utf-8")
    pip = [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--require-hashes"]
    run([*pip, "--wheel-dir", str(wheels), "--requirement", str(hashed)], log=log)
    hashed.unlink()
    pinned = locked_requirements(spec, hashes=False)
    (wheels / recipes.REQUIREMENTS).write_text(pinned, encoding="utf-8")


def tool_binary(name: str) -> Path:
    """A binary of the tool cache that a stand-in image copies in."""
    if name == "versitygw":
        from textops.devservers.s3 import versitygw_binary

        return versitygw_binary()
    if name == "prometheus":
        from textops.devcluster.tools import find

        return find().prometheus
    raise BuildError(f"no tool named {name!r}")


def build_bento(
    bento_src: Path, textops_wheel: Path, requirements: str, out: Path, log: Path
) -> None:
    """`bentoml build` of a copy of `bento_src` into `out` (the bento's own layout).

    The copy gets what the bentofile names: the textops wheel in wheels/ and the locked
    requirements (without textops itself) in requirements.lock.txt.
    """
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp) / "bento"
        shutil.copytree(bento_src, work, ignore=shutil.ignore_patterns("wheels", "__pycache__"))
        (work / "wheels").mkdir()
        shutil.copy2(textops_wheel, work / "wheels" / textops_wheel.name)
        (work / "requirements.lock.txt").write_text(requirements, encoding="utf-8")
        home = Path(tmp) / "bentoml"
        env = {**os.environ, "BENTOML_HOME": str(home), "BENTOML_DO_NOT_TRACK": "true"}
        bentoml = Path(sys.executable).with_name("bentoml")
        text = run([str(bentoml), "build", "--output", "tag"], cwd=work, env=env, log=log)
        tag = text.strip().splitlines()[-1].removeprefix("__tag__:")
        name, version = tag.split(":")
        shutil.copytree(home / "bentos" / name / version, out)


def assemble_context(spec: ImageSpec, context: Path, binaries: dict[str, Path], log: Path) -> None:
    if context.exists():
        shutil.rmtree(context)
    context.mkdir(parents=True)
    shutil.copy2(ROOT / spec.dockerfile, context / "Dockerfile")
    for src, dest in spec.context_files.items():
        shutil.copy2(ROOT / src, context / dest)
    for dest, binary in binaries.items():
        shutil.copy2(binary, context / dest)
    if spec.installs_the_lock:
        fill_wheelhouse(spec, context / recipes.WHEELS_DIR, log)
    if spec.with_project:
        wheel = project_wheel(context / recipes.PROJECT_DIR, log)
        if spec.bento:
            requirements = locked_requirements(spec, hashes=False)
            build_bento(ROOT / spec.bento, wheel, requirements, context / "bento", log)


def source_revision(spec: ImageSpec) -> recipes.Revision | None:
    """The commit the image's sources come from (recipes.Revision), for the images holding
    textops; None for the others (they record none)."""
    if not spec.with_project:
        return None
    paths = recipes.revision_paths(spec)
    return recipes.revision(
        _git("log", "-1", "--format=%H", "--", *paths), _git("status", "--porcelain", "--", *paths)
    )


def _git(*argv: str) -> str | None:
    """git's output in the repository, or None (no git, not a checkout)."""
    try:
        done = subprocess.run(
            ["git", *argv], cwd=ROOT, capture_output=True, text=True, timeout=60, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout if done.returncode == 0 else None


def build(spec: ImageSpec, base: str, cache: Path, *, force: bool = False) -> Built:
    """Build one image unless Docker has the image of the same inputs."""
    t0 = time.monotonic()
    requirements = locked_requirements(spec, hashes=True) if spec.installs_the_lock else ""
    files = recipes.source_files(ROOT, spec)
    binaries = {dest: tool_binary(name) for name, dest in spec.tools.items()}
    with (ROOT / "pyproject.toml").open("rb") as f:
        pyproject = tomllib.load(f)
    revision = source_revision(spec)
    digest = recipes.input_digest(
        ROOT, files, requirements, base, spec, pyproject, binaries, revision
    )
    image_tags = recipes.tags(spec, textops.__version__, digest)
    content_tag = image_tags[-1]
    if not force and image_exists(content_tag):
        _retag(content_tag, image_tags)
        return Built(spec.name, image_tags, True, time.monotonic() - t0, image_size(content_tag))

    log = cache / f"{spec.name}.log"
    log.write_text("", encoding="utf-8")
    context = cache / "contexts" / spec.name
    say(f"{spec.name}: preparing the build context (log: {log})")
    assemble_context(spec, context, binaries, log)
    stages = recipes.cached_stages(spec, (ROOT / spec.dockerfile).read_bytes(), requirements, base)
    for stage, tag in stages.items():  # tagged, so that pruning keeps them for the next build
        say(f"{spec.name}: docker build --target {stage} ({tag})")
        _docker_build(spec, context, base, [tag], log, target=stage)
    say(f"{spec.name}: docker build ({content_tag})")
    build_args = revision.build_args() if revision else None
    _docker_build(spec, context, base, image_tags, log, build_args=build_args)
    shutil.rmtree(context, ignore_errors=True)
    _forget_older_builds(spec, keep={content_tag, *stages.values()})
    return Built(spec.name, image_tags, False, time.monotonic() - t0, image_size(content_tag))


def _docker_build(
    spec: ImageSpec,
    context: Path,
    base: str,
    image_tags: list[str],
    log: Path,
    target: str | None = None,
    build_args: dict[str, str] | None = None,
) -> None:
    argv = [
        "docker",
        *recipes.docker_build_args(spec, context, base, image_tags, target, build_args),
    ]
    with log.open("a", encoding="utf-8") as fh:
        fh.write(f"$ {' '.join(argv)}\n")
        fh.flush()
        proc = subprocess.Popen(
            argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=docker_env()
        )
        assert proc.stdout is not None
        for line in proc.stdout:
            fh.write(line)
            if line.startswith("Step "):  # the classic builder's progress: "Step 3/12 : RUN ..."
                say(f"{spec.name}: {line.strip()[:110]}")
        code = proc.wait()
    if code != 0:
        tail = "\n".join(log.read_text(encoding="utf-8").splitlines()[-40:])
        raise BuildError(f"docker build of {spec.name} failed ({code}):\n{tail}")


def _forget_older_builds(spec: ImageSpec, keep: set[str]) -> None:
    """Earlier builds of this image (and of its cached stages) go, then the layers only they
    used: the disk holds one build per image, not one per change of the sources."""
    repositories = {tag.rsplit(":", 1)[0] for tag in keep}
    listed = run(["docker", "image", "ls", "--format", "{{.Repository}}:{{.Tag}}"])
    stale = [
        tag
        for tag in listed.split()
        if tag.rsplit(":", 1)[0] in repositories
        and tag.rsplit(":", 1)[1].startswith(recipes.CONTENT_TAG_PREFIX)
        and tag not in keep
    ]
    if stale:
        run(["docker", "image", "rm", *stale])
    run(["docker", "image", "prune", "--force", "--filter", f"label={recipes.STAGE_LABEL}"])


def save_to(image_tags: Sequence[str], sink: Sequence[str]) -> None:
    """Stream `docker save` of the tags into a command's stdin (e.g. `ctr images import -`)."""
    save = subprocess.Popen(["docker", "save", *image_tags], stdout=subprocess.PIPE)
    try:
        done = subprocess.run(list(sink), stdin=save.stdout, capture_output=True, check=False)
    finally:
        if save.stdout is not None:
            save.stdout.close()
        code = save.wait()
    if code != 0 or done.returncode != 0:
        raise BuildError(
            f"docker save {' '.join(image_tags)} | {' '.join(sink[:3])} ... failed: "
            f"{done.stderr.decode(errors='replace')[-2000:]}"
        )


def _retag(source: str, image_tags: list[str]) -> None:
    for tag in image_tags:
        if tag != source:
            run(["docker", "tag", source, tag])


def build_all(
    names: Sequence[str] | None = None,
    *,
    variant: str | None = None,
    base: str = "local",
    force: bool = False,
) -> list[Built]:
    """Build (or find) the named images, default all; the Docker daemon is started if needed."""
    cache = cache_root()
    cache.mkdir(parents=True, exist_ok=True)
    ensure_daemon(cache / "dockerd")
    base_image = ensure_base(cache) if base == "local" else base
    results = []
    for name in names or list(recipes.IMAGES):
        spec = recipes.with_variant(recipes.IMAGES[name], variant)
        built = build(spec, base_image, cache, force=force)
        how = "unchanged" if built.cached else "built"
        say(
            f"{built.name}: {how} in {built.seconds:.0f} s, "
            f"{built.size_bytes / 1e6:.0f} MB, {' '.join(built.tags)}"
        )
        results.append(built)
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m textops.packaging.images")
    sub = parser.add_subparsers(dest="command", required=True)
    b = sub.add_parser("build", help="build the images (reusing unchanged ones)")
    b.add_argument("names", nargs="*", help=f"default: all of {', '.join(recipes.IMAGES)}")
    b.add_argument("--variant", choices=sorted(recipes.VARIANT_EXTRAS), default=None)
    b.add_argument("--base", default="local", help="'local' (mmdebstrap bookworm) or an image")
    b.add_argument("--force", action="store_true", help="rebuild even when the inputs match")
    b.add_argument("--json", action="store_true", help="print what was built as JSON")
    args = parser.parse_args(argv)

    names = args.names or list(recipes.IMAGES)
    unknown = sorted(set(names) - set(recipes.IMAGES))
    if unknown:
        parser.error(f"unknown image(s) {unknown}: one of {list(recipes.IMAGES)}")
    try:
        results = build_all(names, variant=args.variant, base=args.base, force=args.force)
    except BuildError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps([r.as_dict() for r in results], indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
