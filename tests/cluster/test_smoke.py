"""Smoke tests proving the dev cluster is a real Kubernetes control plane.

Each test exercises one piece a fake API server would not have: controllers (Deployment, Job,
garbage collector), the scheduler plus the real node's kubelet running containers of one of the
project's images, RBAC authorization of a ServiceAccount token, and the apiextensions server's
structural-schema validation and pruning.
Every wait polls a condition with a deadline; nothing sleeps to synchronise.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

import textops
from tests.plugins.cluster import gone, wait_until
from textops.devcluster import Cluster
from textops.devcluster.access import REAL_NODE_TOLERATION
from textops.devcluster.cluster import write_kubeconfig
from textops.devcluster.node_config import NODE_NAME

pytestmark = [pytest.mark.cluster, pytest.mark.timeout(300)]

Kubectl = Callable[..., subprocess.CompletedProcess[str]]
# any of the project's images the node holds; the containers only wait or exit
IMAGE = f"textops/training:{textops.__version__}"


def _labels(app: str) -> dict[str, str]:
    return {"app": app}


def _pod_template(app: str, command: list[str]) -> client.V1PodTemplateSpec:
    """Pods on the real node (its taint tolerated), running ``command`` in IMAGE."""
    container = client.V1Container(
        name="main",
        image=IMAGE,
        image_pull_policy="Never",
        command=command,
        resources=client.V1ResourceRequirements(requests={"cpu": "10m", "memory": "16Mi"}),
    )
    return client.V1PodTemplateSpec(
        metadata=client.V1ObjectMeta(labels=_labels(app)),
        spec=client.V1PodSpec(
            containers=[container],
            node_selector={"kubernetes.io/hostname": NODE_NAME},
            tolerations=[client.V1Toleration(**REAL_NODE_TOLERATION)],
            termination_grace_period_seconds=1,
        ),
    )


def _deployment(name: str, replicas: int) -> client.V1Deployment:
    return client.V1Deployment(
        metadata=client.V1ObjectMeta(name=name),
        spec=client.V1DeploymentSpec(
            replicas=replicas,
            selector=client.V1LabelSelector(match_labels=_labels(name)),
            template=_pod_template(name, ["sleep", "3600"]),
        ),
    )


def _condition(obj: Any, kind: str) -> bool:
    conditions = (obj.status.conditions if obj.status else None) or []
    return any(c.type == kind and c.status == "True" for c in conditions)


@pytest.mark.cluster
def test_version_is_the_pinned_release(k8s_cluster: Cluster, kubectl: Kubectl) -> None:
    from textops.devcluster.tools import versions

    out = kubectl("version", "-o", "json", check=True).stdout
    info = json.loads(out)
    pinned = versions()["KUBERNETES_VERSION"]
    assert info["serverVersion"]["gitVersion"] == pinned
    assert info["clientVersion"]["gitVersion"] == pinned
    nodes = kubectl("get", "nodes", "-o", "name", check=True).stdout.split()
    assert nodes == [f"node/{NODE_NAME}"]  # the real node (tests/cluster/test_node.py) alone


@pytest.mark.cluster
def test_deployment_becomes_available(kube_api: Any, k8s_namespace: str) -> None:
    apps, core = client.AppsV1Api(kube_api), client.CoreV1Api(kube_api)
    apps.create_namespaced_deployment(k8s_namespace, _deployment("web", replicas=3))

    def available() -> Any:
        dep = apps.read_namespaced_deployment("web", k8s_namespace)
        ok = _condition(dep, "Available") and (dep.status.ready_replicas or 0) == 3
        return dep if ok else None

    wait_until("Deployment web Available with 3 ready replicas", available, timeout=120)
    pods = core.list_namespaced_pod(k8s_namespace, label_selector="app=web").items
    assert len(pods) == 3
    for pod in pods:
        assert pod.status.phase == "Running"
        assert pod.spec.node_name == NODE_NAME
        assert _condition(pod, "Ready")
        [state] = pod.status.container_statuses or [None]
        assert state is not None and state.state.running
        assert state.image.startswith("docker.io/textops/training:")


@pytest.mark.cluster
def test_job_completes(kube_api: Any, k8s_namespace: str) -> None:
    batch, core = client.BatchV1Api(kube_api), client.CoreV1Api(kube_api)
    template = _pod_template("train", ["python3", "-c", "print('trained')"])
    template.spec.restart_policy = "Never"
    job = client.V1Job(
        metadata=client.V1ObjectMeta(name="train"),
        spec=client.V1JobSpec(completions=2, parallelism=2, backoff_limit=0, template=template),
    )
    batch.create_namespaced_job(k8s_namespace, job)

    def complete() -> Any:
        current = batch.read_namespaced_job("train", k8s_namespace)
        return current if _condition(current, "Complete") else None

    done = wait_until("Job train Complete", complete, timeout=120)
    assert done.status.succeeded == 2
    pods = core.list_namespaced_pod(k8s_namespace, label_selector="job-name=train").items
    assert pods and all(p.status.phase == "Succeeded" for p in pods)
    for pod in pods:  # the container ran and its output is the kubelet's to give
        assert core.read_namespaced_pod_log(pod.metadata.name, k8s_namespace) == "trained\n"


@pytest.mark.cluster
def test_deleting_an_owner_collects_its_children(kube_api: Any, k8s_namespace: str) -> None:
    apps, core = client.AppsV1Api(kube_api), client.CoreV1Api(kube_api)
    ns = k8s_namespace

    # A hand-made owner reference: the garbage collector alone must delete the child.
    owner = core.create_namespaced_config_map(
        ns, client.V1ConfigMap(metadata=client.V1ObjectMeta(name="owner"))
    )
    ref = client.V1OwnerReference(
        api_version="v1", kind="ConfigMap", name="owner", uid=owner.metadata.uid
    )
    core.create_namespaced_config_map(
        ns, client.V1ConfigMap(metadata=client.V1ObjectMeta(name="child", owner_references=[ref]))
    )
    core.delete_namespaced_config_map("owner", ns, propagation_policy="Background")
    wait_until(
        "ConfigMap child collected",
        lambda: gone(lambda: core.read_namespaced_config_map("child", ns)),
        timeout=60,
    )

    # A controller-made chain: Deployment -> ReplicaSet -> Pods, deleted in the foreground.
    apps.create_namespaced_deployment(ns, _deployment("gc", replicas=2))
    wait_until(
        "Deployment gc ready",
        lambda: (apps.read_namespaced_deployment("gc", ns).status.ready_replicas or 0) == 2,
        timeout=120,
    )
    assert apps.list_namespaced_replica_set(ns, label_selector="app=gc").items
    apps.delete_namespaced_deployment("gc", ns, propagation_policy="Foreground")
    wait_until(
        "Deployment gc, its ReplicaSet and Pods gone",
        lambda: (
            gone(lambda: apps.read_namespaced_deployment("gc", ns))
            and not apps.list_namespaced_replica_set(ns, label_selector="app=gc").items
            and not core.list_namespaced_pod(ns, label_selector="app=gc").items
        ),
        timeout=120,
    )


@pytest.mark.cluster
def test_service_account_without_rights_is_forbidden(
    kube_api: Any, k8s_cluster: Cluster, k8s_namespace: str, kubectl: Kubectl, tmp_path: Path
) -> None:
    core, rbac = client.CoreV1Api(kube_api), client.RbacAuthorizationV1Api(kube_api)
    ns = k8s_namespace
    core.create_namespaced_service_account(
        ns, client.V1ServiceAccount(metadata=client.V1ObjectMeta(name="nobody"))
    )
    token = core.create_namespaced_service_account_token(
        "nobody",
        ns,
        client.AuthenticationV1TokenRequest(
            spec=client.V1TokenRequestSpec(audiences=[], expiration_seconds=600)
        ),
    ).status.token

    cfg = client.Configuration()
    cfg.host = k8s_cluster.server
    cfg.ssl_ca_cert = str(k8s_cluster.workdir / "pki" / "ca.crt")
    cfg.api_key = {"authorization": f"Bearer {token}"}
    with client.ApiClient(cfg) as as_nobody:
        # Authenticated (a bad token would be 401), but not authorized: 403.
        with pytest.raises(ApiException) as err:
            client.CoreV1Api(as_nobody).list_namespaced_pod(ns)
        assert err.value.status == 403
        review = client.AuthenticationV1Api(as_nobody).create_self_subject_review(
            client.V1SelfSubjectReview()
        )
        assert review.status.user_info.username == f"system:serviceaccount:{ns}:nobody"

    user = f"system:serviceaccount:{ns}:nobody"
    denied = kubectl("auth", "can-i", "list", "pods", "-n", ns, f"--as={user}")
    assert denied.returncode == 1 and denied.stdout.strip() == "no", denied
    # The same question asked with the token itself (a kubeconfig without the admin cert).
    sa_config = tmp_path / "nobody.kubeconfig"
    write_kubeconfig(
        sa_config,
        k8s_cluster.server,
        (k8s_cluster.workdir / "pki" / "ca.crt").read_bytes(),
        user,
        token=token,
    )
    by_token = kubectl("--kubeconfig", str(sa_config), "auth", "can-i", "list", "pods", "-n", ns)
    assert by_token.returncode == 1 and by_token.stdout.strip() == "no", by_token
    forbidden = kubectl("--kubeconfig", str(sa_config), "get", "pods", "-n", ns)
    assert forbidden.returncode != 0 and "Forbidden" in forbidden.stderr, forbidden

    # RBAC is live: a Role and RoleBinding flip the answer.
    rbac.create_namespaced_role(
        ns,
        client.V1Role(
            metadata=client.V1ObjectMeta(name="pod-reader"),
            rules=[client.V1PolicyRule(api_groups=[""], resources=["pods"], verbs=["list"])],
        ),
    )
    rbac.create_namespaced_role_binding(
        ns,
        client.V1RoleBinding(
            metadata=client.V1ObjectMeta(name="nobody-reads-pods"),
            role_ref=client.V1RoleRef(
                api_group="rbac.authorization.k8s.io", kind="Role", name="pod-reader"
            ),
            subjects=[client.RbacV1Subject(kind="ServiceAccount", name="nobody", namespace=ns)],
        ),
    )
    wait_until(
        "RBAC grant visible to can-i",
        lambda: kubectl("auth", "can-i", "list", "pods", "-n", ns, f"--as={user}").returncode == 0,
        timeout=30,
    )
    still = kubectl("auth", "can-i", "delete", "pods", "-n", ns, f"--as={user}")
    assert still.stdout.strip() == "no"


GROUP = "smoke.textops.dev"


def _crd() -> dict[str, Any]:
    schema = {
        "type": "object",
        "properties": {
            "spec": {
                "type": "object",
                "required": ["replicas"],
                "properties": {
                    "replicas": {"type": "integer", "minimum": 1},
                    "model": {"type": "string"},
                },
            }
        },
    }
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"widgets.{GROUP}"},
        "spec": {
            "group": GROUP,
            "scope": "Namespaced",
            "names": {"plural": "widgets", "singular": "widget", "kind": "Widget"},
            "versions": [
                {
                    "name": "v1",
                    "served": True,
                    "storage": True,
                    "schema": {"openAPIV3Schema": schema},
                }
            ],
        },
    }


@pytest.mark.cluster
def test_crd_validates_and_prunes(kube_api: Any, k8s_namespace: str) -> None:
    ext = client.ApiextensionsV1Api(kube_api)
    custom = client.CustomObjectsApi(kube_api)
    ext.create_custom_resource_definition(_crd())
    try:

        def established() -> bool:
            crd = ext.read_custom_resource_definition(f"widgets.{GROUP}")
            conditions = crd.status.conditions or []
            return any(c.type == "Established" and c.status == "True" for c in conditions)

        wait_until("CRD widgets Established", established, timeout=60)

        def widget(name: str, spec: dict[str, Any]) -> dict[str, Any]:
            return {
                "apiVersion": f"{GROUP}/v1",
                "kind": "Widget",
                "metadata": {"name": name},
                "spec": spec,
            }

        def create(body: dict[str, Any]) -> Any:
            return custom.create_namespaced_custom_object(
                GROUP, "v1", k8s_namespace, "widgets", body
            )

        # The discovery cache of a fresh CRD may lag Established by a moment: retry on 404.
        def first_create() -> Any:
            try:
                return create(widget("ok", {"replicas": 2, "model": "m", "unknown": "x"}))
            except ApiException as exc:
                if exc.status == 404:
                    return None
                raise

        created = wait_until("Widget endpoint served", first_create, timeout=30)
        assert created["spec"] == {"replicas": 2, "model": "m"}, "unknown field not pruned"
        stored = custom.get_namespaced_custom_object(GROUP, "v1", k8s_namespace, "widgets", "ok")
        assert "unknown" not in stored["spec"]

        for bad in ({"replicas": 0}, {"replicas": "two"}, {"model": "no replicas"}):
            with pytest.raises(ApiException) as err:
                create(widget("bad", bad))
            assert err.value.status == 422, err.value.body
    finally:
        ext.delete_custom_resource_definition(f"widgets.{GROUP}")
