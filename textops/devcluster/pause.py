"""The pod sandbox ("pause") image, made here: no registry is reachable to pull one.

What a sandbox container needs is a process that holds the pod's namespaces open, reaps
orphaned children and exits on SIGTERM/SIGINT. A dozen lines of C compiled statically make
it (680 KB); the image is written directly as a `docker save` tar (manifest.json, config,
one layer), which `ctr images import` loads into the node's containerd. Cached by the hash of
its source, like the other tools.
"""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import subprocess
import tarfile
import tempfile
from pathlib import Path

from .node_config import PAUSE_IMAGE

PAUSE_C = r"""
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

static void quit(int sig) { (void)sig; _exit(0); }
static void reap(int sig) { (void)sig; while (waitpid(-1, NULL, WNOHANG) > 0) {} }

int main(void) {
    signal(SIGINT, quit);
    signal(SIGTERM, quit);
    signal(SIGCHLD, reap);
    for (;;) pause();
}
"""


def _layer(binary: bytes) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        info = tarfile.TarInfo("pause")
        info.size = len(binary)
        info.mode = 0o755
        tar.addfile(info, io.BytesIO(binary))
    return buf.getvalue()


def image_tar(binary: bytes, reference: str = PAUSE_IMAGE) -> bytes:
    """A `docker save` archive of an image whose only file is /pause (its entry point)."""
    layer = _layer(binary)
    diff_id = "sha256:" + hashlib.sha256(layer).hexdigest()
    config = json.dumps(
        {
            "architecture": "amd64",
            "os": "linux",
            "config": {"Entrypoint": ["/pause"], "User": "65535:65535"},
            "rootfs": {"type": "layers", "diff_ids": [diff_id]},
            "history": [{"created_by": "textops.devcluster.pause"}],
        },
        sort_keys=True,
    ).encode()
    config_name = hashlib.sha256(config).hexdigest() + ".json"
    layer_name = diff_id.removeprefix("sha256:") + "/layer.tar"
    repo_tag = reference.removeprefix("docker.io/")
    manifest = json.dumps(
        [{"Config": config_name, "RepoTags": [repo_tag], "Layers": [layer_name]}]
    ).encode()
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        for name, data in ((config_name, config), (layer_name, layer), ("manifest.json", manifest)):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


def ensure_pause_tar(cache: Path) -> Path:
    """The pause image tar in `cache`, compiled with the machine's gcc when missing."""
    digest = hashlib.sha256(PAUSE_C.encode()).hexdigest()[:12]
    target = cache / f"pause-{digest}.tar"
    if target.exists():
        return target
    cc = shutil.which("gcc") or shutil.which("cc")
    if cc is None:
        raise RuntimeError("gcc is needed to build the pause image (Debian's build-essential)")
    cache.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        source = Path(tmp) / "pause.c"
        source.write_text(PAUSE_C)
        binary = Path(tmp) / "pause"
        subprocess.run(
            [cc, "-Os", "-static", "-o", str(binary), str(source)],
            check=True,
            capture_output=True,
        )
        subprocess.run(["strip", str(binary)], check=False, capture_output=True)
        partial = target.with_name(target.name + ".partial")
        partial.write_bytes(image_tar(binary.read_bytes()))
        partial.rename(target)
    return target
