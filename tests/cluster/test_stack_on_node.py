"""`helm install` of the whole stack on the real node, as a user runs it, and a model served.

Real: the chart with ``values-dev.yaml`` (the project's four images and the stand-ins for
MySQL, MinIO and Prometheus, imported into the node's containerd), every pod running as a
container on the dev cluster's real node; the operator in-cluster, from its image, under the
chart's ServiceAccount; the serving pods from the serving image, loading the model from the
in-cluster MLflow (artifacts proxied to the in-cluster S3 server); the in-cluster Prometheus
discovering them through the Kubernetes API.

The story: install; train a small model from the host into the in-cluster MLflow (through a
port-forward, as a user would with ``textops train``) and promote it; ``kubectl apply`` a
ModelDeployment following ``@champion``; predictions come back through its Service, both by
port-forward and by the Service's ClusterIP (kube-proxy's rules on the node); Prometheus
scrapes the serving pod. Then the operator's container is killed (SIGKILL through the node's
containerd, not a graceful stop) while the ModelDeployment is scaled: the kubelet restarts the
container and the restarted operator finishes the change from the resource's status alone.

The real node is tainted in the test session (kwok's fake nodes carry the older tests), so
the install gives every component and the operator's workloads a toleration and a
nodeSelector for it (``operator.config.workloadTolerations``, ``workloadNodeSelector``): the
values a user sets for a dedicated node pool.
Traffic: only 127.0.0.1 (port-forwards) and the ClusterIP of the Service this test created.
"""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import pytest
import yaml
from kubernetes import client

from tests.cluster.test_chart import CRD_NAME, helm
from tests.plugins.cluster import REAL_NODE_TOLERATION, port_forward, wait_until
from tests.served_model import MODEL, call, clean_env, http_status
from tests.synthetic import make_rows, write_jsonl
from textops.devcluster import Cluster, node
from textops.devcluster.node_config import NODE_NAME
from textops.operator.spec import GROUP, PLURAL, VERSION
from textops.packaging import images

pytestmark = [
    pytest.mark.cluster,
    pytest.mark.images,
    pytest.mark.slow,  # about 4 minutes on 2 idle cores
    pytest.mark.timeout(1500),
]

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "textops"
NAME = "reviews"  # the ModelDeployment, its Deployment and its Service
COMPONENTS = ("operator", "mlflow", "mysql", "minio", "prometheus")
TEXTS = ["房间很干净，前台热情", "作者的故事不错", "键盘手感很好"]


@dataclass(frozen=True)
class Stack:
    """One release of the chart on the real node."""

    release: str
    namespace: str
    cluster: Cluster
    api: Any

    @property
    def base(self) -> str:
        return f"{self.release}-textops"

    def pods(self, selector: str) -> list[Any]:
        core = client.CoreV1Api(self.api)
        return list(core.list_namespaced_pod(self.namespace, label_selector=selector).items)

    def mdep(self) -> dict[str, Any]:
        custom = client.CustomObjectsApi(self.api)
        body = custom.get_namespaced_custom_object(GROUP, VERSION, self.namespace, PLURAL, NAME)
        return cast(dict[str, Any], body)


def _placement_values(namespace: str) -> dict[str, Any]:
    """The overlay a user with a tainted node pool writes: tolerate it everywhere."""
    tolerations = [REAL_NODE_TOLERATION]
    selector = {"kubernetes.io/hostname": NODE_NAME}
    values: dict[str, Any] = {
        c: {"tolerations": tolerations, "nodeSelector": selector} for c in COMPONENTS
    }
    values["operator"].update(
        watchNamespaces=[namespace],  # other tests' operators own the other namespaces
        config={
            "workloadTolerations": tolerations,
            "workloadNodeSelector": selector,
            "reconcileSeconds": 2,
        },
    )
    return values


@pytest.fixture(scope="module")
def stack(
    k8s_cluster: Cluster,
    kube_api: Any,
    built_images: dict[str, images.Built],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Stack]:
    """The chart installed with the dev values (``--wait``: every Deployment Available)."""
    del built_images  # imported into the node's containerd by k8s_cluster
    core = client.CoreV1Api(kube_api)
    namespace = f"stack-{uuid.uuid4().hex[:6]}"
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=namespace)))
    overlay = tmp_path_factory.mktemp("stack") / "placement.yaml"
    overlay.write_text(yaml.safe_dump(_placement_values(namespace)), encoding="utf-8")
    release = f"s{uuid.uuid4().hex[:5]}"
    helm(
        k8s_cluster,
        "install",
        release,
        str(CHART),
        "--namespace",
        namespace,
        "--values",
        str(CHART / "values-dev.yaml"),
        "--values",
        str(overlay),
        "--take-ownership",  # the CRD other modules of this session applied
        "--force-conflicts",
        "--wait",
        "--timeout=12m",
        timeout=900,
    )
    try:
        yield Stack(release, namespace, k8s_cluster, kube_api)
    finally:
        helm(k8s_cluster, "uninstall", release, "--namespace", namespace, "--wait", timeout=300)
        core.delete_namespace(namespace)


def test_every_pod_of_the_chart_runs_on_the_real_node(stack: Stack) -> None:
    pods = stack.pods(f"app.kubernetes.io/instance={stack.release}")
    by_component = {p.metadata.labels["app.kubernetes.io/component"]: p for p in pods}
    assert set(COMPONENTS) <= set(by_component), sorted(by_component)
    for component in COMPONENTS:
        pod = by_component[component]
        assert pod.spec.node_name == NODE_NAME, component
        (state,) = pod.status.container_statuses
        assert state.ready and state.state.running is not None, (component, state)
        assert state.image.startswith("docker.io/textops/"), state.image
    # The operator runs from its image as the chart's ServiceAccount, watching this namespace.
    operator = by_component["operator"]
    assert operator.spec.service_account_name == f"{stack.base}-operator"
    assert operator.spec.containers[0].image_pull_policy == "Never"
    # The CRD is the chart's now (taken over from the plain manifests other tests applied).
    crd = client.ApiextensionsV1Api(stack.api).read_custom_resource_definition(CRD_NAME)
    assert crd.metadata.annotations["meta.helm.sh/release-name"] == stack.release


@pytest.fixture(scope="module")
def champion(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> str:
    """Version 1 of the synthetic model, trained on the host into the in-cluster MLflow."""
    base = tmp_path_factory.mktemp("train")
    rows = write_jsonl(base / "rows.jsonl", make_rows(n_per_class=200, classes=3))
    with port_forward(stack.cluster, stack.namespace, f"svc/{stack.base}-mlflow", 5000) as url:
        wait_until("MLflow answers", lambda: http_status(f"{url}/health") == 200, timeout=120)
        env = clean_env(base / "home", MLFLOW_TRACKING_URI=url)
        for argv in (
            ("data", "snapshot", "--from", str(rows)),
            ("train", "--n-estimators", "20", "--json"),
            ("promote",),
        ):
            done = subprocess.run(
                [sys.executable, "-m", "textops", *argv],
                capture_output=True,
                text=True,
                env=env,
                timeout=600,
                check=False,
            )
            assert done.returncode == 0, f"textops {' '.join(argv)}:\n{done.stderr[-3000:]}"
            if argv[0] == "train":
                trained = json.loads(done.stdout)
    version = str(trained["version"])
    assert version == "1"
    return version


def _serving(stack: Stack) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "ModelDeployment",
        "metadata": {"name": NAME, "namespace": stack.namespace},
        "spec": {
            "model": {"name": MODEL, "alias": "champion"},
            "serving": {
                "replicas": 1,
                "resources": {"requests": {"cpu": "100m", "memory": "256Mi"}},
            },
            "retraining": {"triggers": {"onDrift": False, "onQualityDrop": False}},
        },
    }


def _ready_replicas(stack: Stack) -> int:
    deployment = client.AppsV1Api(stack.api).read_namespaced_deployment(NAME, stack.namespace)
    return int((deployment.status.ready_replicas if deployment.status else 0) or 0)


@pytest.fixture(scope="module")
def served(stack: Stack, champion: str) -> str:
    """The ModelDeployment applied with kubectl and Serving; returns the served version."""
    manifest = stack.cluster.workdir / f"{stack.namespace}-mdep.yaml"
    manifest.write_text(yaml.safe_dump(_serving(stack)), encoding="utf-8")
    done = subprocess.run(
        [str(stack.cluster.tools.kubectl), "apply", "-f", str(manifest)],
        env=stack.cluster.env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr

    def serving() -> bool:
        status = stack.mdep().get("status") or {}
        return status.get("phase") == "Serving" and _ready_replicas(stack) == 1

    wait_until("the ModelDeployment Serving with a ready pod", serving, timeout=420, interval=1)
    return champion


def test_the_model_deployment_serves_through_its_service(stack: Stack, served: str) -> None:
    status = stack.mdep()["status"]
    assert status["servingVersion"] == served
    (pod,) = stack.pods(f"app.kubernetes.io/instance={NAME},app.kubernetes.io/component=serving")
    assert pod.spec.node_name == NODE_NAME
    assert pod.status.container_statuses[0].image.startswith("docker.io/textops/serving:")

    with port_forward(stack.cluster, stack.namespace, f"svc/{NAME}", 3000) as url:
        code, body = call(f"{url}/predict", {"texts": TEXTS})
    assert code == 200, body
    assert (body["model"], body["version"]) == (MODEL, served)
    assert [p["label"] for p in body["predictions"]][:2] == ["酒店", "书籍"]

    # The Service's own address, through kube-proxy's rules on the node.
    service = client.CoreV1Api(stack.api).read_namespaced_service(NAME, stack.namespace)
    cluster_ip = service.spec.cluster_ip
    answer = wait_until(
        "an answer from the ClusterIP",
        lambda: _answer(f"http://{cluster_ip}:3000/predict"),
        timeout=60,
        interval=1,
    )
    assert answer is not None
    code, body = answer
    assert code == 200 and body["version"] == served


def _answer(url: str) -> tuple[int, dict[str, Any]] | None:
    try:
        return call(url, {"texts": TEXTS})
    except OSError:
        return None


def test_the_in_cluster_prometheus_scrapes_the_serving_pod(stack: Stack, served: str) -> None:
    query = (
        f'up{{job="textops-serving",namespace="{stack.namespace}",modeldeployment="{NAME}",'
        f'model_version="{served}"}}'
    )
    target = f"svc/{stack.base}-prometheus"
    with port_forward(stack.cluster, stack.namespace, target, 9090) as url:
        values = wait_until(
            "the serving pod up in the in-cluster Prometheus",
            lambda: _instant(url, query) or None,
            timeout=120,
            interval=1,
        )
    assert values == [1.0]


def _instant(url: str, query: str) -> list[float]:
    request = f"{url}/api/v1/query?{urllib.parse.urlencode({'query': query})}"
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            result = json.loads(response.read())["data"]["result"]
    except OSError:
        return []
    return [float(r["value"][1]) for r in result]


def test_a_killed_operator_container_restarts_and_finishes_the_change(
    stack: Stack, served: str
) -> None:
    selector = f"app.kubernetes.io/instance={stack.release},app.kubernetes.io/component=operator"
    (operator,) = stack.pods(selector)
    before = operator.status.container_statuses[0]
    container_id = before.container_id.removeprefix("containerd://")
    rollouts_before = _history(stack, "RolledOut")

    node.ctr(
        stack.cluster.node_paths,
        stack.cluster.tools,
        "tasks",
        "kill",
        "-s",
        "SIGKILL",
        container_id,
    )
    patch = {"spec": {"serving": {"replicas": 2}}}
    generation = client.CustomObjectsApi(stack.api).patch_namespaced_custom_object(
        GROUP, VERSION, stack.namespace, PLURAL, NAME, patch
    )["metadata"]["generation"]

    def restarted() -> bool:
        (pod,) = stack.pods(selector)
        state = pod.status.container_statuses[0]
        return bool(state.restart_count > before.restart_count and state.ready)

    wait_until("the operator container restarted and ready", restarted, timeout=180, interval=1)

    def converged() -> bool:
        status = stack.mdep().get("status") or {}
        return status.get("observedGeneration") == generation and _ready_replicas(stack) == 2

    wait_until(
        "two ready serving pods, observed by the restarted operator",
        converged,
        timeout=300,
        interval=1,
    )
    (pod,) = stack.pods(selector)
    assert pod.metadata.uid == operator.metadata.uid  # the same pod: its container restarted
    last = pod.status.container_statuses[0].last_state.terminated
    assert last is not None and last.exit_code == 137  # killed, not stopped
    status = stack.mdep()["status"]
    assert status["phase"] == "Serving" and status["servingVersion"] == served
    assert _history(stack, "RolledOut") == rollouts_before  # no second rollout of the same version


def _history(stack: Stack, event: str) -> list[dict[str, Any]]:
    history = (stack.mdep().get("status") or {}).get("history") or []
    return [record for record in history if record.get("event") == event]
