"""`kubectl apply -k manifests/` installs a working operator without Helm, on the real node.

The user's path of docs/install.md for clusters without Helm: one server-side apply of the
kustomization (CRD, namespace, ServiceAccount, RBAC, the operator's Deployment, in an order
that works on an empty cluster) through an overlay of the kind a user writes for their
cluster: here it adds the real node's toleration and nodeSelector (the node is tainted as a
dedicated pool would be) and watches one namespace (the other tests run operators of their own). The
operator must then run from its image under the manifests' RBAC and write a
ModelDeployment's status; with no MLflow behind the manifests' default URL, the status must
say the registry is unreachable (Degraded), not that the model does not exist.

Only the operator's Deployment is removed afterwards: the CRD and the RBAC are shared with
the other tests of the session.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

import pytest
import yaml
from kubernetes import client

from tests.plugins.cluster import REAL_NODE_TOLERATION, gone, wait_until
from textops.devcluster.node_config import NODE_NAME
from textops.operator.spec import GROUP, PLURAL, VERSION

pytestmark = [pytest.mark.cluster, pytest.mark.images, pytest.mark.timeout(600)]

ROOT = Path(__file__).resolve().parents[2]
MANIFESTS = ROOT / "manifests"
OPERATOR, OPERATOR_NAMESPACE = "textops-operator", "textops-system"
Kubectl = Callable[..., subprocess.CompletedProcess[str]]


def _overlay(directory: Path, watch: str) -> Path:
    """A kustomization over manifests/ that places the operator on the real node."""
    spec = "/spec/template/spec"
    ops = [
        {"op": "add", "path": f"{spec}/tolerations", "value": [REAL_NODE_TOLERATION]},
        {
            "op": "add",
            "path": f"{spec}/nodeSelector",
            "value": {"kubernetes.io/hostname": NODE_NAME},
        },
        {"op": "add", "path": f"{spec}/containers/0/args", "value": [f"--namespace={watch}"]},
    ]
    kustomization = {
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "resources": [os.path.relpath(MANIFESTS, directory)],  # kustomize: relative only
        "patches": [
            {"target": {"kind": "Deployment", "name": OPERATOR}, "patch": yaml.safe_dump(ops)}
        ],
    }
    (directory / "kustomization.yaml").write_text(yaml.safe_dump(kustomization), "utf-8")
    return directory


def test_apply_k_installs_an_operator_that_runs_and_reports(
    kubectl: Kubectl, kube_api: Any, k8s_namespace: str, tmp_path: Path
) -> None:
    rendered = kubectl("kustomize", str(MANIFESTS), check=True).stdout
    kinds = [doc["kind"] for doc in yaml.safe_load_all(rendered) if doc]
    # kustomize's order: what others need first (the namespace and the CRD before the rest)
    assert kinds.index("Namespace") < kinds.index("ServiceAccount") < kinds.index("Deployment")
    assert kinds.index("CustomResourceDefinition") < kinds.index("Deployment")

    # --force-conflicts: the CRD may belong to a Helm release of an earlier test (a user
    # moving from the chart to the manifests takes it over the same way).
    overlay = _overlay(tmp_path, k8s_namespace)
    done = kubectl("apply", "--server-side", "--force-conflicts", "-k", str(overlay), timeout=120)
    assert done.returncode == 0, done.stderr
    apps = client.AppsV1Api(kube_api)
    try:
        wait_until(
            "the operator Deployment Available",
            lambda: _available(apps.read_namespaced_deployment(OPERATOR, OPERATOR_NAMESPACE)),
            timeout=180,
            interval=1,
        )
        (pod,) = (
            client.CoreV1Api(kube_api)
            .list_namespaced_pod(
                OPERATOR_NAMESPACE, label_selector="app.kubernetes.io/component=operator"
            )
            .items
        )
        assert pod.spec.node_name == NODE_NAME
        assert pod.status.container_statuses[0].image.startswith("docker.io/textops/operator:")

        custom = client.CustomObjectsApi(kube_api)
        custom.create_namespaced_custom_object(
            GROUP,
            VERSION,
            k8s_namespace,
            PLURAL,
            {
                "apiVersion": f"{GROUP}/{VERSION}",
                "kind": "ModelDeployment",
                "metadata": {"name": "reviews"},
                "spec": {"model": {"name": "reviews-sentiment", "alias": "champion"}},
            },
        )

        def reported() -> dict[str, Any] | None:
            body = cast(
                dict[str, Any],
                custom.get_namespaced_custom_object(
                    GROUP, VERSION, k8s_namespace, PLURAL, "reviews"
                ),
            )
            status: dict[str, Any] = body.get("status") or {}
            return status if status.get("phase") else None

        status = wait_until("a status from the in-cluster operator", reported, timeout=120)
        assert status["phase"] == "Degraded", status
        messages = " ".join(c.get("message", "") for c in status.get("conditions", []))
        assert "unreachable" in messages, status["conditions"]
    finally:
        apps.delete_namespaced_deployment(OPERATOR, OPERATOR_NAMESPACE)
        wait_until(
            "the operator's pod gone",
            lambda: (
                not client.CoreV1Api(kube_api)
                .list_namespaced_pod(
                    OPERATOR_NAMESPACE, label_selector="app.kubernetes.io/component=operator"
                )
                .items
            ),
            timeout=120,
        )
    assert gone(lambda: apps.read_namespaced_deployment(OPERATOR, OPERATOR_NAMESPACE))


def _available(deployment: Any) -> bool:
    conditions = (deployment.status.conditions if deployment.status else None) or []
    return any(c.type == "Available" and c.status == "True" for c in conditions)
