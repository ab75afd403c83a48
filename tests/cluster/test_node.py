"""The dev cluster's real node runs the project's images as any cluster would.

A Deployment of the MLflow image becomes Available with its container running; `kubectl
exec`, `logs` and `port-forward` reach it; a Job from the same image finds it through its
Service's DNS name; a claim of the default StorageClass binds and a non-root pod writes to
it; a pod cannot resolve names outside the cluster. Traffic goes only to the pods and
Services of this cluster and to 127.0.0.1 (the port-forward).
"""

from __future__ import annotations

import subprocess
import time
import urllib.request
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from kubernetes import client

from tests.plugins.cluster import REAL_NODE_TOLERATION, port_forward, wait_until
from textops.devcluster import Cluster
from textops.devcluster.node_config import NODE_NAME

pytestmark = [pytest.mark.cluster, pytest.mark.timeout(600)]

Kubectl = Callable[..., subprocess.CompletedProcess[str]]
IMAGE = "textops/mlflow:0.1.0"
SECURITY = {
    "runAsUser": 10001,
    "runAsNonRoot": True,
    "allowPrivilegeEscalation": False,
    "readOnlyRootFilesystem": True,
    "capabilities": {"drop": ["ALL"]},
}


def pod_spec(containers: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    return {
        "nodeSelector": {"kubernetes.io/hostname": NODE_NAME},
        "tolerations": [REAL_NODE_TOLERATION],
        "containers": containers,
        "volumes": [{"name": "tmp", "emptyDir": {}}],
        **extra,
    }


def container(name: str, command: list[str], **extra: Any) -> dict[str, Any]:
    return {
        "name": name,
        "image": IMAGE,
        "imagePullPolicy": "Never",
        "command": command,
        "securityContext": SECURITY,
        "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],
        "resources": {"limits": {"memory": "1Gi"}},
        **extra,
    }


@pytest.fixture(scope="module")
def mlflow_app(kube_api: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """An MLflow server Deployment + Service on the real node; yields its namespace."""
    core, apps = client.CoreV1Api(kube_api), client.AppsV1Api(kube_api)
    namespace = f"node-{int(time.time())}"
    core.create_namespace({"metadata": {"name": namespace}})
    wait_until(
        "default ServiceAccount",
        lambda: core.list_namespaced_service_account(namespace).items,
        timeout=60,
    )
    server = container(
        "mlflow",
        [
            "mlflow",
            "server",
            "--host",
            "0.0.0.0",
            "--port",
            "5000",
            "--backend-store-uri",
            "sqlite:////tmp/mlflow.db",
            "--default-artifact-root",
            "/tmp/artifacts",
            "--workers",
            "1",
        ],
        ports=[{"name": "http", "containerPort": 5000}],
        # as the chart: MLflow's job runner (huey consumers, ~1.7 GB) would exceed the limit
        env=[{"name": "MLFLOW_SERVER_ENABLE_JOB_EXECUTION", "value": "false"}],
        readinessProbe={"httpGet": {"path": "/health", "port": "http"}, "periodSeconds": 2},
    )
    apps.create_namespaced_deployment(
        namespace,
        {
            "metadata": {"name": "mlflow"},
            "spec": {
                "replicas": 1,
                "selector": {"matchLabels": {"app": "mlflow"}},
                "template": {
                    "metadata": {"labels": {"app": "mlflow"}},
                    "spec": pod_spec([server], automountServiceAccountToken=False),
                },
            },
        },
    )
    core.create_namespaced_service(
        namespace,
        {
            "metadata": {"name": "mlflow"},
            "spec": {
                "selector": {"app": "mlflow"},
                "ports": [{"name": "http", "port": 5000, "targetPort": "http"}],
            },
        },
    )

    def available() -> bool:
        status = apps.read_namespaced_deployment(name="mlflow", namespace=namespace).status
        return any(c.type == "Available" and c.status == "True" for c in status.conditions or [])

    wait_until("the MLflow Deployment Available", available, timeout=300, interval=1)
    yield namespace
    core.delete_namespace(namespace)


def test_the_node_is_real_ready_and_runs_containerd(kube_api: Any, k8s_cluster: Cluster) -> None:
    node = client.CoreV1Api(kube_api).read_node(NODE_NAME)
    ready = {c.type: c.status for c in node.status.conditions}["Ready"]
    assert ready == "True"
    assert node.status.node_info.container_runtime_version == "containerd://2.4.2"
    assert node.status.node_info.kubelet_version == "v1.37.2"
    assert "kwok.x-k8s.io/node" not in (node.metadata.annotations or {})

    def images() -> set[str]:  # the kubelet reports them with its next status update
        status = client.CoreV1Api(kube_api).read_node(NODE_NAME).status
        return {name for image in status.images or [] for name in image.names or []}

    wait_until(
        "the imported images in the node's status",
        lambda: "docker.io/textops/serving:0.1.0" in images(),
        timeout=60,
        interval=1,
    )


def test_deployment_runs_and_answers_exec_logs_and_port_forward(
    mlflow_app: str, kube_api: Any, k8s_cluster: Cluster, kubectl: Kubectl
) -> None:
    (pod,) = client.CoreV1Api(kube_api).list_namespaced_pod(mlflow_app).items
    state = pod.status.container_statuses[0]
    assert state.ready and state.state.running is not None
    assert pod.spec.node_name == NODE_NAME

    done = kubectl("exec", "-n", mlflow_app, pod.metadata.name, "--", "id", "-u", check=True)
    assert done.stdout.strip() == "10001"
    assert "Uvicorn" in kubectl("logs", "-n", mlflow_app, pod.metadata.name, check=True).stdout

    with port_forward(k8s_cluster, mlflow_app, "svc/mlflow", 5000) as url:
        body = wait_until(
            "MLflow through the port-forward", lambda: get(f"{url}/health"), timeout=60
        )
        assert body == "OK"


def test_a_job_reaches_the_service_by_its_dns_name_and_nothing_outside(
    mlflow_app: str, kube_api: Any
) -> None:
    script = (
        "import socket, urllib.request\n"
        f"url = 'http://mlflow.{mlflow_app}.svc.cluster.local:5000/health'\n"
        "print(urllib.request.urlopen(url, timeout=20).read().decode())\n"
        "try:\n"
        "    socket.getaddrinfo('pypi.org', 443)\n"
        "    print('outside resolved')\n"
        "except socket.gaierror:\n"
        "    print('outside refused')\n"
    )
    batch = client.BatchV1Api(kube_api)
    batch.create_namespaced_job(
        mlflow_app,
        {
            "metadata": {"name": "probe"},
            "spec": {
                "backoffLimit": 0,
                "template": {
                    "spec": pod_spec(
                        [container("probe", ["python", "-c", script])], restartPolicy="Never"
                    )
                },
            },
        },
    )

    def finished() -> str | None:
        status = batch.read_namespaced_job("probe", mlflow_app).status
        return "ok" if status.succeeded else ("failed" if status.failed else None)

    result = wait_until("the probe Job", finished, timeout=180, interval=1)
    core = client.CoreV1Api(kube_api)
    (pod,) = core.list_namespaced_pod(mlflow_app, label_selector="job-name=probe").items
    log = core.read_namespaced_pod_log(pod.metadata.name, mlflow_app)
    assert result == "ok", log
    assert log.split() == ["OK", "outside", "refused"]
    # the server stayed up all along (an OOM kill under its memory limit restarts it)
    (server,) = core.list_namespaced_pod(mlflow_app, label_selector="app=mlflow").items
    assert [c.restart_count for c in server.status.container_statuses] == [0]


def test_a_claim_binds_and_a_non_root_pod_writes_to_it(mlflow_app: str, kube_api: Any) -> None:
    core = client.CoreV1Api(kube_api)
    core.create_namespaced_persistent_volume_claim(
        mlflow_app,
        {
            "metadata": {"name": "data"},
            "spec": {
                "accessModes": ["ReadWriteOnce"],
                "resources": {"requests": {"storage": "100Mi"}},
            },
        },
    )
    writer = container(
        "writer",
        [
            "python",
            "-c",
            "open('/data/hello', 'w').write('written'); print(open('/data/hello').read())",
        ],
    )
    writer["volumeMounts"].append({"name": "data", "mountPath": "/data"})
    spec = pod_spec([writer], restartPolicy="Never")
    spec["volumes"].append({"name": "data", "persistentVolumeClaim": {"claimName": "data"}})
    core.create_namespaced_pod(mlflow_app, {"metadata": {"name": "writer"}, "spec": spec})

    def phase() -> str | None:
        current = core.read_namespaced_pod("writer", mlflow_app).status.phase
        return current if current in ("Succeeded", "Failed") else None

    assert wait_until("the writer pod", phase, timeout=180, interval=1) == "Succeeded"
    claim = core.read_namespaced_persistent_volume_claim("data", mlflow_app)
    assert claim.status.phase == "Bound" and claim.spec.storage_class_name == "standard"
    assert core.read_namespaced_pod_log("writer", mlflow_app).strip() == "written"


def get(url: str) -> str | None:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return str(response.read().decode())
    except OSError:
        return None
