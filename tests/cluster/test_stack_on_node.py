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

The real node is tainted in the test session (as a dedicated node pool would be), so
the install gives every component and the operator's workloads a toleration and a
nodeSelector for it (``operator.config.workloadTolerations``, ``workloadNodeSelector``): the
values a user sets for a dedicated node pool.
Traffic: only 127.0.0.1 (port-forwards) and the ClusterIP of the Service this test created.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import threading
import time
import urllib.error
from collections.abc import Iterator
from typing import Any

import pytest
import yaml
from kubernetes import client
from mlflow import MlflowClient

from tests.cluster.stack import Stack, delete_when_done, instant_query
from tests.cluster.test_chart import CRD_NAME
from tests.plugins.cluster import port_forward, wait_until
from tests.served_model import MODEL, call, clean_env, http_status
from tests.synthetic import make_rows, write_jsonl
from textops.devcluster.access import CHART_COMPONENTS
from textops.devcluster.node_config import NODE_NAME
from textops.operator.spec import GROUP, PLURAL, VERSION

pytestmark = [
    pytest.mark.cluster,
    pytest.mark.images,
    pytest.mark.slow,  # about 4 minutes on 2 idle cores
    pytest.mark.timeout(1500),
]

NAME = "reviews"  # the ModelDeployment, its Deployment and its Service
TEXTS = ["房间很干净，前台热情", "作者的故事不错", "键盘手感很好"]


@pytest.fixture(scope="module")
def stack(chart_stack: Stack) -> Iterator[Stack]:
    """The session's chart installation; this module's ModelDeployment is deleted at its end."""
    with delete_when_done(chart_stack, NAME):
        yield chart_stack


def test_every_pod_of_the_chart_runs_on_the_real_node(stack: Stack) -> None:
    pods = stack.pods(f"app.kubernetes.io/instance={stack.release}")
    by_component = {p.metadata.labels["app.kubernetes.io/component"]: p for p in pods}
    assert set(CHART_COMPONENTS) <= set(by_component), sorted(by_component)
    for component in CHART_COMPONENTS:
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
        status = stack.mdep(NAME).get("status") or {}
        return status.get("phase") == "Serving" and _ready_replicas(stack) == 1

    wait_until("the ModelDeployment Serving with a ready pod", serving, timeout=420, interval=1)
    return champion


def test_the_model_deployment_serves_through_its_service(stack: Stack, served: str) -> None:
    status = stack.mdep(NAME)["status"]
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
    service_url = stack.cluster_ip_url(NAME, 3000)
    answer = wait_until(
        "an answer from the ClusterIP",
        lambda: _answer(f"{service_url}/predict"),
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
            lambda: [float(r["value"][1]) for r in instant_query(url, query)] or None,
            timeout=120,
            interval=1,
        )
    assert values == [1.0]


def test_a_killed_operator_container_restarts_and_finishes_the_change(
    stack: Stack, served: str
) -> None:
    selector = f"app.kubernetes.io/instance={stack.release},app.kubernetes.io/component=operator"
    (operator,) = stack.pods(selector)
    before = operator.status.container_statuses[0]
    rollouts_before = _history(stack, "RolledOut")

    stack.kill_container(before)
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
        status = stack.mdep(NAME).get("status") or {}
        return (
            status.get("observedGeneration") == generation
            and _ready_replicas(stack) == 2
            and status.get("phase") == "Serving"
        )

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
    status = stack.mdep(NAME)["status"]
    assert status["phase"] == "Serving" and status["servingVersion"] == served
    assert _history(stack, "RolledOut") == rollouts_before  # no second rollout of the same version


def _history(stack: Stack, event: str) -> list[dict[str, Any]]:
    history = (stack.mdep(NAME).get("status") or {}).get("history") or []
    return [record for record in history if record.get("event") == event]


class Traffic:
    """One client sending /predict through the Service's ClusterIP, one request at a time,
    until stopped (at most MAX_REQUESTS, each with a 10 s timeout): every outcome recorded."""

    MAX_REQUESTS = 5000

    def __init__(self, url: str) -> None:
        self.url, self.outcomes = f"{url}/predict", list[str]()
        self.ids: list[str] = []  # every prediction id answered
        self.answered_at: dict[str, float] = {}  # id -> time.monotonic() of the answer
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Traffic:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def _run(self) -> None:
        for _ in range(self.MAX_REQUESTS):
            if self._stop.is_set():
                return
            outcome, prediction_id = _outcome(self.url)
            self.outcomes.append(outcome)
            if outcome.startswith("connection:"):
                # a refused connection fails at once: pace the retries so they do not use up
                # the request budget before the Service routes around the dead pod
                self._stop.wait(0.05)
            if prediction_id:
                self.ids.append(prediction_id)
                self.answered_at[prediction_id] = time.monotonic()

    def more_answers(self, count: int) -> None:
        """Wait until ``count`` more requests than now were answered 200."""
        wanted = self.outcomes.count("ok") + count
        wait_until(
            f"{count} more answers",
            lambda: self.outcomes.count("ok") >= wanted or not self._thread.is_alive(),
            timeout=120,
        )
        assert self.outcomes.count("ok") >= wanted, self.outcomes[-10:]


def _outcome(url: str) -> tuple[str, str | None]:
    """("ok", the prediction id), or ("http CODE: body" | "connection: reason", None) for one
    /predict."""
    data = json.dumps({"texts": TEXTS[:1]}, ensure_ascii=False).encode()
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            body = json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return f"http {exc.code}: {exc.read()[:200]!r}", None
    except (urllib.error.URLError, OSError) as exc:
        return f"connection: {getattr(exc, 'reason', exc)}", None
    predictions = body.get("predictions", [])
    return ("ok", predictions[0]["id"]) if len(predictions) == 1 else (f"http 200: {body}", None)


def test_serving_pods_deleted_or_killed_under_traffic(stack: Stack, served: str) -> None:
    """A deleted pod (a rollout, a drain) costs no request: it answers while its endpoint
    leaves kube-proxy (preStop), then drains. A crashed one (SIGKILL) costs only requests
    refused or reset at the connection, never an HTTP error; the kubelet restarts it."""
    del served
    core = client.CoreV1Api(stack.api)
    selector = f"app.kubernetes.io/instance={NAME},app.kubernetes.io/component=serving"
    assert _ready_replicas(stack) == 2  # scaled by the operator test above
    with Traffic(stack.cluster_ip_url(NAME, 3000)) as traffic:
        traffic.more_answers(20)
        victim = stack.pods(selector)[0].metadata.name
        core.delete_namespaced_pod(victim, stack.namespace)
        wait_until(
            "the deleted pod replaced",
            lambda: (
                victim not in {p.metadata.name for p in stack.pods(selector)}
                and _ready_replicas(stack) == 2
            ),
            timeout=300,
            interval=1,
        )
        traffic.more_answers(20)
        graceful = list(traffic.outcomes)

        pod = stack.pods(selector)[0]
        before = pod.status.container_statuses[0]
        killed_at = time.monotonic()
        stack.kill_container(before)

        def restarted() -> bool:
            state = core.read_namespaced_pod(pod.metadata.name, stack.namespace).status
            status = state.container_statuses[0]
            return bool(status.restart_count > before.restart_count and status.ready)

        wait_until("the killed container restarted and ready", restarted, timeout=300, interval=1)
        wait_until("two ready pods", lambda: _ready_replicas(stack) == 2, timeout=120)
        traffic.more_answers(20)
    crashed = traffic.outcomes[len(graceful) :]
    print(
        f"\n[traffic] pod deleted: {graceful.count('ok')} answered of {len(graceful)}; "
        f"container killed: {crashed.count('ok')} answered of {len(crashed)}, "
        f"failed {sorted({o for o in crashed if o != 'ok'})}"
    )
    assert [o for o in graceful if o != "ok"] == []
    assert all(o == "ok" or o.startswith("connection:") for o in crashed), crashed
    assert "timed out" not in " ".join(crashed)

    # Feedback for every answered prediction, through the Service (either replica), after one
    # pod was deleted and one container killed: the shared prediction log has them all.
    url = stack.cluster_ip_url(NAME, 3000)
    refused = []
    for prediction_id in traffic.ids:
        code, answer = call(f"{url}/feedback", {"id": prediction_id, "accepted": True})
        if code != 200 or answer.get("recorded") is not True:
            refused.append((prediction_id, code, answer))
    print(f"[feedback] {len(traffic.ids) - len(refused)} of {len(traffic.ids)} accepted")
    # A SIGKILL takes with it the predictions its log writer was still gathering (it writes
    # every 0.2 s, off the request path): only ids answered in the second before the kill
    # may be unknown. A deleted pod flushes its writer before it stops: nothing else.
    lost = [traffic.answered_at[i] - killed_at for i, _, _ in refused]
    assert all(code == 404 for _, code, _ in refused), refused
    assert all(-1.0 <= dt <= 0.5 for dt in lost), (lost, refused)


@contextlib.contextmanager
def _operator_log_on_failure(stack: Stack) -> Iterator[None]:
    try:
        yield
    except BaseException:
        print(
            f"\n[operator log]\n{stack.operator_log()}\n[status] {stack.mdep(NAME).get('status')}"
        )
        raise


def _deployment_uri(stack: Stack) -> str | None:
    deployment = client.AppsV1Api(stack.api).read_namespaced_deployment(NAME, stack.namespace)
    env = deployment.spec.template.spec.containers[0].env or []
    return next((e.value for e in env if e.name == "TEXTOPS_MODEL_URI"), None)


def test_a_version_that_cannot_serve_is_rolled_back_on_real_pods(stack: Stack, served: str) -> None:
    """Version 2 is registered over artifacts that do not exist: its pods start, cannot load
    the model and never get ready. At the rollout's progress deadline the operator puts
    version 1 back, and the Service answered every request throughout (last test of the
    module: the alias is left on version 2, which the operator does not retry by itself)."""
    crd = client.CustomObjectsApi(stack.api)
    patch = {"spec": {"rollout": {"progressDeadlineSeconds": 40}}}
    crd.patch_namespaced_custom_object(GROUP, VERSION, stack.namespace, PLURAL, NAME, patch)
    with port_forward(stack.cluster, stack.namespace, f"svc/{stack.base}-mlflow", 5000) as url:
        # registry_uri too: an earlier test in the same process may have set another one
        # (mlflow.set_registry_uri is global), and the alias would move in that registry
        registry = MlflowClient(tracking_uri=url, registry_uri=url)
        broken = registry.create_model_version(
            MODEL, source="s3://mlflow-artifacts/no-such-model", description="cannot load"
        )
        with Traffic(stack.cluster_ip_url(NAME, 3000)) as traffic, _operator_log_on_failure(stack):
            traffic.more_answers(10)
            registry.set_registered_model_alias(MODEL, "champion", broken.version)
            wait_until(
                "the Deployment moved to the broken version",
                lambda: _deployment_uri(stack) == f"models:/{MODEL}/{broken.version}",
                timeout=120,
                interval=1,
            )
            wait_until(
                "RolledBack",
                lambda: [
                    h for h in _history(stack, "RolledBack") if h.get("version") == broken.version
                ],
                timeout=300,
                interval=1,
            )
            wait_until(
                "version 1 back on every replica",
                lambda: (
                    _deployment_uri(stack) == f"models:/{MODEL}/{served}"
                    and _ready_replicas(stack) == 2
                    and stack.mdep(NAME)["status"].get("servingVersion") == served
                ),
                timeout=300,
                interval=1,
            )
            traffic.more_answers(10)
    conditions = {c["type"]: c for c in stack.mdep(NAME)["status"]["conditions"]}
    assert conditions["RolledBack"]["status"] == "True"
    assert conditions["RolledBack"]["reason"] == "ProgressDeadlineExceeded"
    print(f"\n[rollback] {len(traffic.outcomes)} requests during the failed rollout")
    assert [o for o in traffic.outcomes if o != "ok"] == []
