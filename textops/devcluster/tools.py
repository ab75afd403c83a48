"""Locate the dev-cluster binaries that scripts/build-k8s-tools.sh built.

One job: turn the pinned versions (versions.env, shared with the build script) and the cache
root (env TEXTOPS_CACHE) into paths, and fail with a message that says what to run when a
binary is missing, instead of a bare FileNotFoundError deep inside a fixture.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

VERSIONS_FILE = Path(__file__).with_name("versions.env")
CACHE_LAYOUT = "tools-v1"


class ToolsMissing(RuntimeError):
    """A binary of the dev cluster has not been built yet."""


def versions() -> dict[str, str]:
    """Return the pinned versions, e.g. {"KUBERNETES_VERSION": "v1.37.2", ...}."""
    out: dict[str, str] = {}
    for line in VERSIONS_FILE.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#") and "=" in line:
            key, value = line.split("=", 1)
            out[key.strip()] = value.strip()
    return out


def cache_root() -> Path:
    base = os.environ.get("TEXTOPS_CACHE") or str(Path.home() / ".cache" / "textops")
    return Path(base) / CACHE_LAYOUT


@dataclass(frozen=True)
class Tools:
    """Absolute paths of every binary the dev cluster runs."""

    kube_apiserver: Path
    kube_controller_manager: Path
    kube_scheduler: Path
    kubectl: Path
    etcd: Path
    kwok: Path
    helm: Path
    # the real node
    kubelet: Path
    kube_proxy: Path
    containerd: Path
    containerd_shim: Path
    ctr: Path
    runc: Path
    cni_bridge: Path  # the CNI plugins' folder is its parent
    coredns: Path
    prometheus: Path  # the chart's stand-in Prometheus image (textops.packaging)

    @property
    def cni_bin_dir(self) -> Path:
        return self.cni_bridge.parent

    @property
    def bin_dirs(self) -> list[Path]:
        """Folders to put first on PATH so `kubectl` and `helm` are ours."""
        dirs: list[Path] = []
        for path in (self.kubectl, self.helm, self.etcd, self.kwok):
            if path.parent not in dirs:
                dirs.append(path.parent)
        return dirs


def find(root: Path | None = None) -> Tools:
    """Return the cached binaries, or raise ToolsMissing naming the command to build them."""
    root = root or cache_root()
    v = versions()
    k8s = root / f"kubernetes-{v['KUBERNETES_VERSION']}"
    tools = Tools(
        kube_apiserver=k8s / "kube-apiserver",
        kube_controller_manager=k8s / "kube-controller-manager",
        kube_scheduler=k8s / "kube-scheduler",
        kubectl=k8s / "kubectl",
        etcd=root / f"etcd-{v['ETCD_VERSION']}" / "etcd",
        kwok=root / f"kwok-{v['KWOK_VERSION']}" / "kwok",
        helm=root / f"helm-{v['HELM_VERSION']}" / "helm",
        kubelet=k8s / "kubelet",
        kube_proxy=k8s / "kube-proxy",
        containerd=root / f"containerd-{v['CONTAINERD_VERSION']}" / "containerd",
        containerd_shim=root / f"containerd-{v['CONTAINERD_VERSION']}" / "containerd-shim-runc-v2",
        ctr=root / f"containerd-{v['CONTAINERD_VERSION']}" / "ctr",
        runc=root / f"runc-{v['RUNC_VERSION']}" / "runc",
        cni_bridge=root / f"cni-plugins-{v['CNI_PLUGINS_VERSION']}" / "bridge",
        coredns=root / f"coredns-{v['COREDNS_VERSION']}" / "coredns",
        prometheus=root / f"prometheus-{v['PROMETHEUS_VERSION']}" / "prometheus",
    )
    missing = [
        str(p)
        for p in vars(tools).values()
        if not (p.is_file() and os.access(p, os.X_OK) and (p.parent / ".complete").exists())
    ]
    if missing:
        raise ToolsMissing(
            "dev-cluster binaries are not built: "
            + ", ".join(missing)
            + "\nRun `make cluster-tools` (scripts/build-k8s-tools.sh; a cold build takes a while)."
        )
    return tools
