"""A pod's container run as a local process: what kwok's fake nodes cannot do.

The dev cluster schedules pods on kwok nodes, which run nothing. A test that needs what a pod
would *do* reads the pod spec the operator wrote (a Deployment's template, a Job's template)
and starts its one container here, changing only what cannot hold outside a container. Every
change is listed in :attr:`LocalPod.translated`, so a test can assert that nothing else was
touched:

1. **Image → local program.** An image is its entry point, working directory and baked-in
   environment; :func:`images` maps each textops image to the same program in this checkout:

   - ``textops/training:<version>`` (``training/Dockerfile``): its ``ENTRYPOINT`` is the file
     ``COPY``-ed from ``training/entrypoint.sh``; its ``ENV`` lines are the image environment.
   - ``textops/serving:<version>`` (the Bento of ``bentos/classifier/``, containerised by
     BentoML): with no command or args the Bento image runs ``bentoml serve $BENTO_PATH``; the
     Bento's ``envs`` (``bentofile.yaml``) and ``PYTHONUNBUFFERED=1`` are its environment.

   A container ``command`` (it would replace the entry point) is refused; ``args`` are kept.
2. **PATH** is the virtualenv's ``bin`` then the system's (the image has textops on PATH).
3. **emptyDir volumes** get a private directory; an env value equal to a mount path, or below
   one, is rewritten to the same place under that directory (``TEXTOPS_HOME=/tmp/textops``).
4. **The container port** (the Bento listens on ``BENTOML_PORT``, 3000 in the image) becomes a
   free loopback port: ``BENTOML_PORT`` and ``BENTOML_HOST=127.0.0.1`` are added.

Everything else is the kubelet's ordinary work, done the kubelet's way: ``envFrom`` Secrets
are resolved, then ``env`` entries override them. Nothing is inherited from the test's own
environment: ``MLFLOW_TRACKING_URI``, the dataset URI and the S3 endpoint are the ones the
operator wrote into the spec (the operator runs with the test servers as its configuration).
Not translated, because nothing local can honour them: ``securityContext`` (user 10001,
read-only root), ``resources``, probes (the caller polls the readiness probe's path itself).
"""

from __future__ import annotations

import base64
import json
import os
import re
import shlex
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

import textops
from textops.devservers.ports import LOOPBACK, free_port
from textops.devservers.procs import (
    ManagedProcess,
    descendant_pids,
    pid_alive,
    start_process,
    stop_process_group,
)
from textops.packaging import recipes

ROOT = Path(__file__).resolve().parents[2]
TRAINING_DOCKERFILE = ROOT / "training" / "Dockerfile"
BENTO_DIR = ROOT / "bentos" / "classifier"
VENV_BIN = Path(sys.executable).parent
SYSTEM_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
PORT_ENV = ("BENTOML_PORT", "BENTOML_HOST")
# what a translation may change, and nothing else (tests assert it)
TRANSLATABLE = frozenset({"PATH", *PORT_ENV, "TEXTOPS_HOME", "HOME", "MPLCONFIGDIR"})

Body = Mapping[str, Any]


@dataclass(frozen=True)
class Image:
    """What an image runs: entry point (local argv), working directory, baked environment."""

    entrypoint: tuple[str, ...]
    cwd: Path
    env: Mapping[str, str]
    port_env: str | None = None  # the variable the program reads its listening port from


def _dockerfile(path: Path) -> Image:
    """ENTRYPOINT (exec form), the COPY that put it in place, and ENV lines."""
    copies: dict[str, str] = {}
    env: dict[str, str] = {}
    entrypoint: list[str] = []
    text = re.sub(r"\\\n", " ", path.read_text("utf-8"))  # join continuation lines
    for line in text.splitlines():
        if line.lstrip().startswith("#"):
            continue
        word, _, rest = line.strip().partition(" ")
        if word == "COPY":
            *sources, target = shlex.split(rest)
            if len(sources) == 1:
                copies[target] = sources[0]
        elif word == "ENV":
            env.update(dict(item.split("=", 1) for item in shlex.split(rest)))
        elif word == "ENTRYPOINT":
            entrypoint = json.loads(rest)
    if not entrypoint or entrypoint[0] not in copies:
        raise ValueError(f"{path}: no exec-form ENTRYPOINT copied from the build context")
    # the build context holds the spec's files under their context names (recipes.IMAGES)
    context_to_repo = {dest: src for src, dest in recipes.IMAGES["training"].files.items()}
    source = copies[entrypoint[0]]
    program = ROOT / context_to_repo.get(source, source)
    return Image(("/bin/sh", str(program), *entrypoint[1:]), ROOT, env)


def _bento(bento_dir: Path) -> Image:
    """A containerised Bento with no command or args runs ``bentoml serve $BENTO_PATH``."""
    spec = yaml.safe_load((bento_dir / "bentofile.yaml").read_text("utf-8"))
    env = {e["name"]: str(e["value"]) for e in spec.get("envs") or [] if "value" in e}
    env["PYTHONUNBUFFERED"] = "1"  # set by BentoML's image template
    argv = (sys.executable, "-m", "bentoml", "serve", str(bento_dir))
    return Image(argv, bento_dir, env, port_env="BENTOML_PORT")


def images() -> dict[str, Image]:
    """The textops images by the names the operator uses by default."""
    version = textops.__version__
    return {
        f"textops/serving:{version}": _bento(BENTO_DIR),
        f"textops/training:{version}": _dockerfile(TRAINING_DOCKERFILE),
    }


@dataclass(frozen=True)
class LocalPod:
    """One container as a local process: argv, env, working directory, where it listens."""

    name: str
    argv: tuple[str, ...]
    env: Mapping[str, str]
    cwd: Path
    port: int | None
    # variable -> (value the pod would have, or None when absent; value here)
    translated: Mapping[str, tuple[str | None, str]] = field(default_factory=dict)

    @property
    def url(self) -> str:
        assert self.port is not None, f"{self.name} listens on no port"
        return f"http://{LOOPBACK}:{self.port}"


def translate(
    name: str,
    pod_spec: Body,
    workdir: Path,
    read_secret: Callable[[str], Mapping[str, str]],
) -> LocalPod:
    """The local process standing in for ``pod_spec``'s one container (camelCase dict)."""
    [container] = pod_spec["containers"]
    image = images().get(container["image"])
    if image is None:
        raise ValueError(f"no local stand-in for image {container['image']!r}")
    if container.get("command"):
        raise ValueError(f"{name}: a container command replaces the entry point; not supported")
    # the kubelet's order: image env < envFrom < env
    pod_env: dict[str, str] = dict(image.env)
    for source in container.get("envFrom") or []:
        if "secretRef" not in source:
            raise ValueError(f"{name}: only secretRef envFrom is supported: {source}")
        pod_env.update(read_secret(source["secretRef"]["name"]))
    for entry in container.get("env") or []:
        if "value" not in entry:
            raise ValueError(f"{name}: env {entry['name']} has no literal value")
        pod_env[entry["name"]] = entry["value"]

    env = dict(pod_env)
    env["PATH"] = f"{VENV_BIN}:{SYSTEM_PATH}"
    volumes = {v["name"]: v for v in pod_spec.get("volumes") or []}
    for mount in container.get("volumeMounts") or []:
        volume = volumes[mount["name"]]
        if "emptyDir" not in volume:
            raise ValueError(f"{name}: only emptyDir volumes are supported: {volume}")
        local = workdir / mount["name"]
        local.mkdir(parents=True, exist_ok=True)
        path = mount["mountPath"].rstrip("/")
        for key, value in pod_env.items():
            if value == path or value.startswith(path + "/"):
                env[key] = str(local) + value[len(path) :]
    port = None
    if container.get("ports"):
        if image.port_env is None:
            raise ValueError(f"{name}: image {container['image']} has no known port variable")
        port = free_port()
        env[image.port_env] = str(port)
        env["BENTOML_HOST"] = LOOPBACK
    translated = {
        key: (pod_env.get(key), value) for key, value in env.items() if pod_env.get(key) != value
    }
    if set(translated) - TRANSLATABLE:
        raise AssertionError(f"translation beyond its list: {sorted(set(translated))}")
    argv = (*image.entrypoint, *(container.get("args") or []))
    return LocalPod(name, argv, env, image.cwd, port, translated)


def secret_reader(core_api: Any, namespace: str) -> Callable[[str], dict[str, str]]:
    """Read a Secret's keys as the kubelet gives them to ``envFrom`` (valid names only)."""

    def read(name: str) -> dict[str, str]:
        secret = core_api.read_namespaced_secret(name, namespace)
        return {
            key: base64.b64decode(value).decode()
            for key, value in (secret.data or {}).items()
            if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key)
        }

    return read


@dataclass
class Running:
    """A started local pod; :meth:`stop` ends it and every worker it forked."""

    pod: LocalPod
    process: ManagedProcess

    def stop(self) -> None:
        # BentoML's workers run in process groups of their own: note them before the leader
        # goes, and end the ones still there (by pid, each checked to be alive first).
        children = descendant_pids(self.process.pid)
        stop_process_group(self.process.pid, timeout=30, popen=self.process.popen)
        for pid in children:
            if pid_alive(pid):
                stop_process_group(pid, timeout=10)

    def tail(self, lines: int = 60) -> str:
        return self.process.tail(lines)


def start(pod: LocalPod, log_dir: Path) -> Running:
    process = start_process(
        pod.name,
        list(pod.argv),
        log_dir / f"{pod.name}.log",
        env=pod.env,
        cwd=pod.cwd,
        die_with_parent=True,
    )
    return Running(pod, process)


def scrape_targets(path: Path, pods: Sequence[tuple[LocalPod, Body]]) -> None:
    """Write a Prometheus file_sd list standing in for ``kubernetes_sd`` and its relabelling.

    Mirrors the chart's ``textops-serving`` job (``charts/textops/templates/prometheus/``):
    pods annotated ``prometheus.io/scrape: "true"`` are scraped on ``prometheus.io/path``, and
    get the labels ``namespace``, ``pod``, ``modeldeployment`` (``app.kubernetes.io/instance``)
    and ``model_version`` (``textops.io/model-version``); the address is the local process
    instead of the pod IP. ``pods`` pairs each local pod with its kwok pod's metadata.
    """
    groups = []
    for pod, meta in pods:
        notes, labels = meta.get("annotations") or {}, meta.get("labels") or {}
        if notes.get("prometheus.io/scrape") != "true":
            continue
        groups.append(
            {
                "targets": [f"{LOOPBACK}:{pod.port}"],
                "labels": {
                    "__metrics_path__": notes.get("prometheus.io/path", "/metrics"),
                    "namespace": meta["namespace"],
                    "pod": meta["name"],
                    "modeldeployment": labels.get("app.kubernetes.io/instance", ""),
                    "model_version": labels.get("textops.io/model-version", ""),
                },
            }
        )
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(groups, indent=2), "utf-8")
    os.replace(tmp, path)  # file_sd must never read a half-written file
