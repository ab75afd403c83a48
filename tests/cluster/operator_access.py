"""What a test needs before the real operator can run: the CRD, the RBAC manifests, and a
kubeconfig that authenticates as the operator's ServiceAccount (so the tests exercise its
least-privilege rights, not the admin's)."""

from __future__ import annotations

import os
import signal
import subprocess
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.plugins.cluster import wait_until
from textops.devcluster import Cluster

ROOT = Path(__file__).resolve().parents[2]
CRD_FILE = ROOT / "manifests" / "crd" / "modeldeployments.textops.io.yaml"
RBAC_DIR = ROOT / "manifests" / "rbac"
SA_NAMESPACE, SA_NAME = "textops-system", "textops-operator"

Kubectl = Callable[..., subprocess.CompletedProcess[str]]


def apply_crd(kubectl: Kubectl) -> None:
    """The CRD from the (chart-generated) manifest, Established.

    --force-conflicts: a release of the chart may own it by now (the same schema: the
    manifest is generated from the chart), and a module's fixtures run again when the
    session's order splits its tests around the ones on the shared installation."""
    done = kubectl("apply", "--server-side", "--force-conflicts", "-f", str(CRD_FILE))
    assert done.returncode == 0, done.stderr
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


RELEASE_TIMEOUT_S = 60


def delete_modeldeployments(
    custom: Any,
    namespace: str,
    operator_pid: int | None,
    operator_log: Path,
    restart: Callable[[], None],
) -> None:
    """Delete every ModelDeployment of ``namespace`` while the operator runs, and wait until it
    has released its finalizers.

    If it has not within a minute, its threads' stacks are dumped into its log (SIGUSR1:
    faulthandler) and it is restarted, which a restart-safe operator must survive; the delay
    is reported as a warning with the log path, so a stuck pass is diagnosable, not hidden.
    """
    from textops.operator.spec import GROUP, PLURAL, VERSION

    def remaining() -> list[Any]:
        return list(
            custom.list_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL)["items"]
        )

    for item in remaining():
        custom.delete_namespaced_custom_object(
            GROUP, VERSION, namespace, PLURAL, item["metadata"]["name"]
        )
    try:
        wait_until("ModelDeployments deleted", lambda: not remaining(), RELEASE_TIMEOUT_S)
        return
    except pytest.fail.Exception:
        pass
    if operator_pid is not None:
        os.kill(operator_pid, signal.SIGUSR1)
        wait_until(
            "the operator's thread dump",
            lambda: "most recent call first" in operator_log.read_text(errors="replace"),
            30,
        )
    warnings.warn(
        f"the operator did not release deleted ModelDeployments within {RELEASE_TIMEOUT_S}s; "
        f"thread stacks in {operator_log}; restarting it",
        stacklevel=2,
    )
    restart()
    wait_until("ModelDeployments deleted after a restart", lambda: not remaining(), 120)
