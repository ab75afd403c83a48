"""What a test needs before the real operator can run: the CRD, the RBAC manifests, and a
kubeconfig that authenticates as the operator's ServiceAccount (so the tests exercise its
least-privilege rights, not the admin's)."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import yaml

from tests.plugins.cluster import wait_until
from textops.devcluster import Cluster

ROOT = Path(__file__).resolve().parents[2]
CRD_FILE = ROOT / "manifests" / "crd" / "modeldeployments.textops.io.yaml"
RBAC_DIR = ROOT / "manifests" / "rbac"
SA_NAMESPACE, SA_NAME = "textops-system", "textops-operator"

Kubectl = Callable[..., subprocess.CompletedProcess[str]]


def apply_crd(kubectl: Kubectl) -> None:
    """The CRD from the (chart-generated) manifest, Established."""
    kubectl("apply", "--server-side", "-f", str(CRD_FILE), check=True)
    kubectl("wait", "--for=condition=Established", "crd/modeldeployments.textops.io", check=True)


def operator_kubeconfig(cluster: Cluster, kubectl: Kubectl, directory: Path) -> Path:
    """Apply the RBAC manifests and write ``directory/kubeconfig`` with the ServiceAccount's
    token in place of the admin's credentials."""
    kubectl("apply", "-f", str(RBAC_DIR), check=True)
    wait_until(
        "operator ServiceAccount",
        lambda: kubectl("get", "sa", SA_NAME, "-n", SA_NAMESPACE).returncode == 0,
        timeout=30,
    )
    token = kubectl(
        "create", "token", SA_NAME, "-n", SA_NAMESPACE, "--duration=2h", check=True
    ).stdout.strip()
    config = yaml.safe_load(cluster.kubeconfig.read_text())
    user = config["contexts"][0]["context"]["user"]
    for entry in config["users"]:
        if entry["name"] == user:
            entry["user"] = {"token": token}
    path = directory / "kubeconfig"
    path.write_text(yaml.safe_dump(config))
    return path
