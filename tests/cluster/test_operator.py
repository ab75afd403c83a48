"""The operator, run for real, against a real control plane, MLflow server and Prometheus,
with its serving pods and retraining Jobs running real containers on the dev cluster's node.

The operator runs as a subprocess (``python -m textops.operator --namespace NS``) under the
least-privilege ServiceAccount of ``manifests/rbac/`` (a token kubeconfig), so a missing
permission fails these tests; it is killed and restarted at will, which a pod makes slow.
(The chart's tests and the full loop run it in-cluster from its image.) Everything it
creates runs on the real node: the serving pods from the serving image load their model from
the chart's MLflow (on MariaDB, artifacts in the chart's S3 server, both reached through their
Services' ClusterIPs, from this host as from the pods); the retraining Jobs run the training
image, which trains on a dataset of the chart's S3 server, registers and gates the candidate.

Models: one version is trained on the host once per module (200 reviews) and every version
the tests register is a new registry entry pointing at its artifacts (no training per
version). Datasets: ``small`` (that version's training set: retraining on it gives the same
model, which the gate rejects), ``big`` (1,000 reviews: the gate promotes what it trains) and
``missing`` (no version: a Job on it fails, which is what a failing retraining is here).

The one stand-in: a tiny HTTP server per test plays the serving pods' ``/metrics`` for the
tests of the monitoring policy, so each sets exact drift and quality readings (0.05 then 0.9,
accuracy 0.93 then 0.61, a confusion). It is scraped by a real Prometheus that attaches the
target labels the chart's relabelling would (``namespace``, ``modeldeployment``, ...), next to
two neighbours serving the same version that the operator must not read. The real pods'
metrics through the in-cluster Prometheus are covered by test_full_loop.py and the demo.

Every wait polls a condition with a deadline; nothing sleeps to synchronise.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import threading
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client
from kubernetes.client.exceptions import ApiException
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from tests.cluster import operator_access
from tests.cluster.operator_access import SA_NAME, SA_NAMESPACE, apply_crd
from tests.cluster.seed import review_rows, textops_cli, write_rows
from tests.cluster.stack import Stack
from tests.plugins.cluster import wait_until
from tests.served_model import clean_env, http_status
from textops.contracts import Annotation
from textops.devcluster import Cluster
from textops.devcluster.access import REAL_NODE_TOLERATION
from textops.devcluster.node_config import NODE_NAME
from textops.devservers.prometheus import PrometheusServer, start_prometheus
from textops.operator.policy import trigger_id
from textops.operator.spec import GROUP, PLURAL, VERSION, format_time
from textops.packaging import images, recipes
from textops.processes import ManagedProcess, start_process
from textops.processes import wait_until as wait_for_process

pytestmark = [pytest.mark.cluster, pytest.mark.images, pytest.mark.timeout(900)]

ROOT = Path(__file__).resolve().parents[2]
OPERATOR_MANIFEST = ROOT / "manifests" / "operator" / "deployment.yaml"
SA_USER = f"system:serviceaccount:{SA_NAMESPACE}:{SA_NAME}"
SECRET = "s3-credentials"  # in each test's namespace: the chart's S3 keys
SEED_PER_CLASS, BIG_PER_CLASS = 100, 500
MIN_IMPROVEMENT = 0.05  # what the gate asks of a candidate in these tests
# small requests: the chart's pods share the node's two cores with these
SERVING_RESOURCES = {"requests": {"cpu": "50m", "memory": "256Mi"}}
TRAINING_RESOURCES = {"requests": {"cpu": "250m", "memory": "1Gi"}}
READY_TIMEOUT = 240  # a serving pod of the serving image on a busy two-core node
JOB_TIMEOUT = 600  # a Job's pod trains 1,000 reviews, registers and gates
Kubectl = Callable[..., subprocess.CompletedProcess[str]]


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def crd(kube_api: Any, kubectl: Kubectl) -> None:
    apply_crd(kubectl)


@pytest.fixture(scope="module")
def operator_kubeconfig(
    k8s_cluster: Cluster, kubectl: Kubectl, crd: None, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """A kubeconfig authenticating as the operator's ServiceAccount (manifests/rbac/)."""
    return operator_access.operator_kubeconfig(
        k8s_cluster, kubectl, tmp_path_factory.mktemp("operator")
    )


@dataclass(frozen=True)
class Stores:
    """The chart's MLflow and S3 server, seeded for these tests (see the module docstring)."""

    mlflow_url: str
    s3_url: str
    credentials: dict[str, str]
    seed_version: Any  # the trained ModelVersion every registered version points at
    small: str
    big: str
    missing: str
    big_dataset: str  # the id of the newest dataset under ``big``


@pytest.fixture(scope="module")
def stores(chart_stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> Stores:
    mlflow_url = chart_stack.cluster_ip_url(f"{chart_stack.base}-mlflow", 5000)
    s3_url = chart_stack.cluster_ip_url(f"{chart_stack.base}-minio", 9000)
    wait_until("MLflow answers", lambda: http_status(f"{mlflow_url}/health") == 200, timeout=60)
    credentials = chart_stack.s3_credentials()
    home = tmp_path_factory.mktemp("seed")
    suffix = uuid.uuid4().hex[:8]
    uris = {k: f"s3://datasets/op-{suffix}-{k}" for k in ("small", "big", "missing")}
    seed_model = f"op-seed-{suffix}"

    def cli(data_uri: str, *argv: str) -> dict[str, Any]:
        env = clean_env(
            home,
            MLFLOW_TRACKING_URI=mlflow_url,
            TEXTOPS_DATA_URI=data_uri,
            TEXTOPS_S3_ENDPOINT=s3_url,
            TEXTOPS_MODEL_NAME=seed_model,
            **credentials,
        )
        return textops_cli(env, *argv)

    small = write_rows(home / "small.jsonl", review_rows(SEED_PER_CLASS))
    big = write_rows(home / "big.jsonl", review_rows(BIG_PER_CLASS))
    small_id = cli(uris["small"], "data", "snapshot", "--from", str(small))["id"]
    big_id = cli(uris["big"], "data", "snapshot", "--from", str(big))["id"]
    version = cli(uris["small"], "train", "--dataset", small_id)["version"]
    registry = MlflowClient(tracking_uri=mlflow_url, registry_uri=mlflow_url)
    return Stores(
        mlflow_url=mlflow_url,
        s3_url=s3_url,
        credentials=credentials,
        seed_version=registry.get_model_version(seed_model, str(version)),
        big_dataset=big_id,
        **uris,
    )


@dataclass
class Operator:
    """The operator subprocess: restartable, killable, its log attached on failure."""

    env: dict[str, str]
    namespace: str
    log_path: Path
    process: ManagedProcess | None = None

    def start(self) -> None:
        self.process = start_process(
            "textops-operator",
            [sys.executable, "-m", "textops.operator", "--namespace", self.namespace],
            self.log_path,
            env=self.env,
            cwd=ROOT,
            die_with_parent=True,
        )

    def alive(self) -> bool:
        return self.process is not None and self.process.alive()

    def kill(self) -> None:
        """SIGKILL: no cleanup, no final status write, as a crashed node would do."""
        assert self.process is not None
        os.killpg(self.process.pid, signal.SIGKILL)
        if self.process.popen is not None:
            self.process.popen.wait(timeout=30)

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop(timeout=20)

    def restart(self) -> None:
        self.stop()
        self.start()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


@pytest.fixture
def operator(
    k8s_namespace: str,
    operator_kubeconfig: Path,
    stores: Stores,
    built_images: dict[str, images.Built],
    kube_api: Any,
    tmp_path: Path,
) -> Iterator[Operator]:
    """The operator watching the test's namespace, stopped (after its resources) afterwards.

    Its workloads go to the real node (its taint tolerated, its name selected) and run the
    images of this tree (their content tags, never pulled); the namespace gets the S3 keys.
    """
    client.CoreV1Api(kube_api).create_namespaced_secret(
        k8s_namespace,
        client.V1Secret(metadata=client.V1ObjectMeta(name=SECRET), string_data=stores.credentials),
    )
    env = {
        **clean_env(tmp_path / "operator-home"),
        "KUBECONFIG": str(operator_kubeconfig),
        "MLFLOW_TRACKING_URI": stores.mlflow_url,
        "TEXTOPS_S3_ENDPOINT": stores.s3_url,
        "TEXTOPS_DATA_URI": stores.missing,  # a spec names its dataset when its Job must train
        "TEXTOPS_RECONCILE_SECONDS": "1",
        "TEXTOPS_SERVING_IMAGE": built_images["serving"].content_tag,
        "TEXTOPS_TRAINING_IMAGE": built_images["training"].content_tag,
        "TEXTOPS_IMAGE_PULL_POLICY": "Never",
        "TEXTOPS_WORKLOAD_TOLERATIONS": json.dumps([REAL_NODE_TOLERATION]),
        "TEXTOPS_WORKLOAD_NODE_SELECTOR": json.dumps({"kubernetes.io/hostname": NODE_NAME}),
        "TEXTOPS_PROMETHEUS_URL": "http://127.0.0.1:9",  # nothing listens: tests set their own
    }
    op = Operator(env=env, namespace=k8s_namespace, log_path=tmp_path / "operator.log")
    op.start()
    try:
        yield op
    finally:
        # Delete the resources while the operator runs, so it releases its finalizer.
        if not op.alive():
            op.start()
        assert op.process is not None
        operator_access.delete_modeldeployments(
            client.CustomObjectsApi(kube_api),
            k8s_namespace,
            op.process.pid,
            op.log_path,
            restart=op.restart,
        )
        op.stop()
        # pytest shows captured output only for a failed test: there, the operator's log.
        print(f"---- operator log ({op.log_path}) ----\n{op.log()[-20000:]}")


class Registry(MlflowClient):
    """The chart's MLflow registry, and the trained version new versions point at."""

    def __init__(self, stores: Stores) -> None:
        super().__init__(tracking_uri=stores.mlflow_url, registry_uri=stores.mlflow_url)
        self.seed = stores.seed_version


@pytest.fixture
def registry(stores: Stores) -> Registry:
    return Registry(stores)


def register(registry: Registry, name: str, tags: dict[str, str] | None = None) -> str:
    """A new version of ``name`` holding the seed's trained model (its run and artifacts)."""
    with contextlib.suppress(MlflowException):  # registered by an earlier call
        registry.create_registered_model(name)
    seed = registry.seed
    # MLflow 3 registers a logged model (source models:/m-ID); the server wants its id again
    # and a version read back does not carry it
    model_id = seed.model_id or seed.source.removeprefix("models:/")
    version = registry.create_model_version(
        name, source=seed.source, run_id=seed.run_id, tags=tags or {}, model_id=model_id
    )
    return str(version.version)


# --------------------------------------------------------------------------- helpers


class Cluster_:
    """Reads of what the operator wrote, for one namespace."""

    def __init__(self, api: Any, namespace: str) -> None:
        self.ns = namespace
        self.custom = client.CustomObjectsApi(api)
        self.apps = client.AppsV1Api(api)
        self.core = client.CoreV1Api(api)
        self.batch = client.BatchV1Api(api)

    def create(self, name: str, spec: dict[str, Any]) -> dict[str, Any]:
        """Apply ModelDeployment ``name``: its pods and Jobs read the chart's S3 server with
        the namespace's keys and ask for little of the node (unless ``spec`` says)."""
        spec = {"credentialsSecret": SECRET, **spec}
        spec["serving"] = {"resources": SERVING_RESOURCES, **spec.get("serving", {})}
        spec["retraining"] = {"resources": TRAINING_RESOURCES, **spec.get("retraining", {})}
        body = {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "ModelDeployment",
            "metadata": {"name": name},
            "spec": spec,
        }
        created: dict[str, Any] = self.custom.create_namespaced_custom_object(
            GROUP, VERSION, self.ns, PLURAL, body
        )  # type: ignore[assignment]
        return created

    def mdep(self, name: str) -> dict[str, Any]:
        got: dict[str, Any] = self.custom.get_namespaced_custom_object(
            GROUP, VERSION, self.ns, PLURAL, name
        )  # type: ignore[assignment]
        return got

    def status(self, name: str) -> dict[str, Any]:
        return self.mdep(name).get("status") or {}

    def condition(self, name: str, type_: str) -> dict[str, Any]:
        for cond in self.status(name).get("conditions") or []:
            if cond["type"] == type_:
                return dict(cond)
        return {}

    def deployment_uri(self, name: str) -> str | None:
        try:
            dep = self.apps.read_namespaced_deployment(name, self.ns)
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise
        env = {e.name: e.value for e in dep.spec.template.spec.containers[0].env}
        return env.get("TEXTOPS_MODEL_URI")

    def events(self, reason: str) -> list[Any]:
        items = self.core.list_namespaced_event(self.ns).items
        return [e for e in items if e.reason == reason]

    def jobs(self) -> list[Any]:
        return list(self.batch.list_namespaced_job(self.ns).items)

    def job_log(self, name: str) -> str:
        """The last lines of every pod of Job ``name`` (for a failing assertion's message)."""
        pods = self.core.list_namespaced_pod(self.ns, label_selector=f"job-name={name}").items
        return "\n".join(
            f"--- {p.metadata.name}:\n"
            + self.core.read_namespaced_pod_log(p.metadata.name, self.ns, tail_lines=40)
            for p in pods
        )

    def await_job(self, name: str, outcome: str) -> Any:
        """Wait until the Job controller marks Job ``name`` Complete or Failed; the condition.

        Its pods must have run the training image on the real node."""

        def ended() -> Any:
            job = self.batch.read_namespaced_job(name, self.ns)
            return next(
                (
                    c
                    for c in job.status.conditions or []
                    if c.type in ("Complete", "Failed") and c.status == "True"
                ),
                None,
            )

        condition = wait_until(f"Job {name} done", ended, timeout=JOB_TIMEOUT, interval=2)
        assert condition.type == outcome, self.job_log(name)
        pods = self.core.list_namespaced_pod(self.ns, label_selector=f"job-name={name}").items
        assert pods
        for pod in pods:
            assert pod.spec.node_name == NODE_NAME
            [state] = pod.status.container_statuses or [None]
            assert state is not None and state.image.startswith("docker.io/textops/training:")
        return condition

    def rolled_out(self, name: str, version: str) -> bool:
        """``version`` serves and is Ready, whatever monitoring says of it."""
        return bool(
            self.status(name).get("servingVersion") == version
            and self.condition(name, "Ready").get("status") == "True"
        )

    def serving(self, name: str, version: str) -> bool:
        """Rolled out and nothing to report: phase Serving."""
        return self.rolled_out(name, version) and self.status(name).get("phase") == "Serving"


@pytest.fixture
def k8s(kube_api: Any, k8s_namespace: str) -> Cluster_:
    return Cluster_(kube_api, k8s_namespace)


# --------------------------------------------------------------------------- rollout


def test_rollout_pins_the_alias_version_and_follows_it(
    operator: Operator, k8s: Cluster_, registry: Registry
) -> None:
    model = f"op-{uuid.uuid4().hex[:8]}"
    v1 = register(registry, model)
    registry.set_registered_model_alias(model, "champion", v1)
    k8s.create("reviews", {"model": {"name": model, "alias": "champion"}})

    wait_until("version 1 served", lambda: k8s.serving("reviews", v1), timeout=READY_TIMEOUT)
    assert k8s.deployment_uri("reviews") == f"models:/{model}/{v1}"
    service = k8s.core.read_namespaced_service("reviews", k8s.ns)
    assert service.spec.ports[0].port == 3000
    st = k8s.status("reviews")
    assert st["modelUri"] == f"models:/{model}/{v1}"
    assert st["observedGeneration"] == k8s.mdep("reviews")["metadata"]["generation"]
    assert [h["event"] for h in st["history"]] == ["RolledOut"]
    assert k8s.events("RolledOut")

    v2 = register(registry, model)
    registry.set_registered_model_alias(model, "champion", v2)
    wait_until("alias move rolled out", lambda: k8s.serving("reviews", v2), timeout=READY_TIMEOUT)
    assert k8s.deployment_uri("reviews") == f"models:/{model}/{v2}"
    history = k8s.status("reviews")["history"]
    assert [(h["event"], h["version"]) for h in history] == [("RolledOut", v1), ("RolledOut", v2)]
    # nothing is done at deletion (the garbage collector takes the children): no finalizer,
    # so a deletion never waits for the operator
    assert not k8s.mdep("reviews")["metadata"].get("finalizers")
    assert operator.alive()


def test_unknown_model_is_reported_without_crashing(
    operator: Operator, k8s: Cluster_, registry: Registry
) -> None:
    model = f"missing-{uuid.uuid4().hex[:8]}"
    k8s.create("ghost", {"model": {"name": model, "alias": "champion"}})

    wait_until(
        "Ready=False ModelNotFound",
        lambda: k8s.condition("ghost", "Ready").get("reason") == "ModelNotFound",
        timeout=60,
    )
    assert k8s.status("ghost")["phase"] == "Failed"
    assert model in k8s.condition("ghost", "Ready")["message"]
    wait_until("a ModelNotFound Event", lambda: k8s.events("ModelNotFound"), timeout=30)
    assert k8s.deployment_uri("ghost") is None

    # Once the model exists, the same resource converges without anyone touching it.
    version = register(registry, model)
    registry.set_registered_model_alias(model, "champion", version)
    wait_until(
        "served after registration", lambda: k8s.serving("ghost", version), timeout=READY_TIMEOUT
    )
    assert len(k8s.events("ModelNotFound")) == 1  # an Event per transition, not per pass
    assert operator.alive()


def test_unreachable_registry_degrades_and_recovers(
    operator: Operator, k8s: Cluster_, registry: Registry
) -> None:
    model = f"op-{uuid.uuid4().hex[:8]}"
    version = register(registry, model)
    registry.set_registered_model_alias(model, "champion", version)
    real = operator.env["MLFLOW_TRACKING_URI"]
    operator.stop()
    operator.env["MLFLOW_TRACKING_URI"] = "http://127.0.0.1:9"  # nothing listens there
    operator.start()
    k8s.create("offline", {"model": {"name": model, "alias": "champion"}})
    wait_until(
        "Degraded=True RegistryUnavailable",
        lambda: k8s.condition("offline", "Degraded").get("reason") == "RegistryUnavailable",
        timeout=60,
    )
    assert k8s.status("offline")["phase"] == "Degraded"
    assert "unreachable" in k8s.condition("offline", "Degraded")["message"]
    wait_until("a RegistryUnavailable Event", lambda: k8s.events("RegistryUnavailable"), timeout=30)

    operator.stop()
    operator.env["MLFLOW_TRACKING_URI"] = real
    operator.start()
    wait_until(
        "served once MLflow answers", lambda: k8s.serving("offline", version), timeout=READY_TIMEOUT
    )
    assert k8s.condition("offline", "Degraded")["status"] == "False"


def test_spec_the_operator_cannot_act_on_fails_once_and_recovers_when_fixed(
    operator: Operator, k8s: Cluster_, registry: Registry
) -> None:
    model = f"op-{uuid.uuid4().hex[:8]}"
    version = register(registry, model)
    registry.set_registered_model_alias(model, "champion", version)
    # The schema admits any five cron-like fields; minute 61 is caught by the operator.
    bad = {
        "model": {"name": model, "alias": "champion"},
        "retraining": {"triggers": {"schedule": "61 * * * *"}},
    }
    k8s.create("cronbad", bad)
    wait_until(
        "Ready=False InvalidSpec",
        lambda: k8s.condition("cronbad", "Ready").get("reason") == "InvalidSpec",
        timeout=60,
    )
    assert k8s.status("cronbad")["phase"] == "Failed"
    assert "schedule" in k8s.condition("cronbad", "Ready")["message"]
    wait_until("an InvalidSpec Event", lambda: k8s.events("InvalidSpec"), timeout=30)
    assert k8s.deployment_uri("cronbad") is None

    k8s.custom.patch_namespaced_custom_object(
        GROUP,
        VERSION,
        k8s.ns,
        PLURAL,
        "cronbad",
        {"spec": {"retraining": {"triggers": {"schedule": "0 3 * * 0"}}}},
    )
    wait_until("served once fixed", lambda: k8s.serving("cronbad", version), timeout=READY_TIMEOUT)
    assert len(k8s.events("InvalidSpec")) == 1  # no retry storm meanwhile
    assert operator.alive()


def test_rollout_that_cannot_become_available_is_rolled_back(
    operator: Operator, k8s: Cluster_, registry: Registry, kubectl: Kubectl, tmp_path: Path
) -> None:
    model = f"op-{uuid.uuid4().hex[:8]}"
    v1 = register(registry, model)
    registry.set_registered_model_alias(model, "champion", v1)
    spec = {
        "model": {"name": model, "alias": "champion"},
        "rollout": {"progressDeadlineSeconds": 30},
    }
    k8s.create("fragile", spec)
    wait_until("version 1 served", lambda: k8s.serving("fragile", v1), timeout=READY_TIMEOUT)

    v2 = register(registry, model)
    _refuse_pods_of_version(kubectl, k8s.ns, v2, tmp_path)  # version 2's pods can never start
    registry.set_registered_model_alias(model, "champion", v2)
    wait_until(
        "Deployment moved to version 2",
        lambda: k8s.deployment_uri("fragile") == f"models:/{model}/{v2}",
        timeout=60,
    )
    wait_until(
        "RolledBack=True",
        lambda: k8s.condition("fragile", "RolledBack").get("status") == "True",
        timeout=120,
    )
    assert k8s.deployment_uri("fragile") == f"models:/{model}/{v1}"
    rolled = k8s.condition("fragile", "RolledBack")
    assert rolled["reason"] == "ProgressDeadlineExceeded"
    assert f"version {v2}" in rolled["message"]
    assert k8s.events("RolledBack")
    history = k8s.status("fragile")["history"]
    assert ("RolledBack", v2) in [(h["event"], h.get("version")) for h in history]
    # The alias still names version 2: the operator does not retry it by itself.
    wait_until(
        "version 1 available again",
        lambda: _available(k8s, "fragile") and k8s.status("fragile")["servingVersion"] == v1,
        timeout=60,
    )
    assert k8s.deployment_uri("fragile") == f"models:/{model}/{v1}"


def _available(k8s: Cluster_, name: str) -> bool:
    status = k8s.apps.read_namespaced_deployment(name, k8s.ns).status
    return bool(status.available_replicas and status.updated_replicas == status.replicas)


def _refuse_pods_of_version(kubectl: Kubectl, namespace: str, version: str, tmp_path: Path) -> None:
    """An admission policy refusing the pods of one version: a rollout that cannot progress."""
    name = f"refuse-{namespace}-v{version}"
    policy = {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingAdmissionPolicy",
        "metadata": {"name": name},
        "spec": {
            "failurePolicy": "Fail",
            "matchConstraints": {
                "resourceRules": [
                    {
                        "apiGroups": [""],
                        "apiVersions": ["v1"],
                        "operations": ["CREATE"],
                        "resources": ["pods"],
                    }
                ],
                "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": namespace}},
            },
            "validations": [
                {
                    "expression": (
                        "!has(object.metadata.labels) || "
                        f"object.metadata.labels[?'{GROUP}/model-version'].orValue('') != "
                        f"'{version}'"
                    ),
                    "message": f"test: pods of model version {version} cannot start",
                }
            ],
        },
    }
    binding = {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingAdmissionPolicyBinding",
        "metadata": {"name": name},
        "spec": {"policyName": name, "validationActions": ["Deny"]},
    }
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump_all([policy, binding]))
    kubectl("apply", "-f", str(path), check=True)
    # the API server loads new policies asynchronously: wait until a pod of that version is
    # really refused, or the rollout under test may slip through before the policy applies
    probe = tmp_path / f"{name}-probe.yaml"
    probe.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {
                    "name": "probe",
                    "namespace": namespace,
                    "labels": {f"{GROUP}/model-version": version},
                },
                "spec": {"containers": [{"name": "c", "image": "probe"}]},
            }
        )
    )
    wait_until(
        "the admission policy to refuse pods of the version",
        lambda: "cannot start" in kubectl("create", "--dry-run=server", "-f", str(probe)).stderr,
        timeout=60,
    )


# --------------------------------------------------------------------------- drift


class FakeServingMetrics:
    """Stands in for the serving pods' /metrics: exact readings the test sets (module docstring)."""

    def __init__(
        self, model: str, version: str, feature_drift: float = 0.05, accuracy: float = 0.93
    ) -> None:
        self.model, self.version = model, version
        self.feature_drift = feature_drift
        self.accuracy = accuracy
        # counters that grow by 100 feedback per scrape, as labelled feedback arrives; the
        # confusion (predicted, true) of each 100 is all on class S unless a test sets it
        self.confusion: dict[tuple[str, str], int] | None = None
        self.correct = self.wrong = 0
        self.labels: Counter[tuple[str, str]] = Counter()
        handler = self._handler()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def target(self) -> str:
        port = self.server.server_address[1]
        return f"127.0.0.1:{port}"

    def text(self) -> str:
        right = round(100 * self.accuracy)
        confusion = self.confusion or {("S", "S"): right, ("S", "T"): 100 - right}
        self.labels.update(confusion)
        self.correct += sum(n for (p, t), n in confusion.items() if p == t)
        self.wrong += sum(n for (p, t), n in confusion.items() if p != t)
        base = f'model="{self.model}",version="{self.version}"'
        overall = f'{base},statistic="overall"'
        labels = "".join(
            f'textops_feedback_labels_total{{{base},predicted="{p}",actual="{t}"}} {n}\n'
            for (p, t), n in self.labels.items()
        )
        return (
            f"textops_feature_drift_statistic{{{overall}}} {self.feature_drift}\n"
            f"textops_feature_drift_threshold{{{overall}}} 0.2\n"
            f"textops_feature_drift_window_samples{{{base}}} 500\n"
            f"textops_prediction_drift_statistic{{{overall}}} 0.01\n"
            f"textops_prediction_drift_window_samples{{{base}}} 500\n"
            f'textops_feedback_total{{{base},class="S",outcome="correct"}} {self.correct}\n'
            f'textops_feedback_total{{{base},class="S",outcome="wrong"}} {self.wrong}\n'
            f"{labels}"
        )

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                payload = outer.text().encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; version=0.0.4")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return Handler

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def start_labelled_prometheus(
    base: Path, targets: list[tuple[str, dict[str, str]]]
) -> PrometheusServer:
    """A real Prometheus scraping ``(host:port, target labels)`` every second.

    The labels stand in for the chart's relabelling of the inference pods (``namespace``,
    ``pod``, ``modeldeployment``, ``model_version``), as static labels of each target.
    """
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "scrape_configs": [
            {
                "job_name": "textops-serving",
                "static_configs": [
                    {"targets": [target], "labels": labels} for target, labels in targets
                ],
            }
        ],
    }
    server = start_prometheus(base, [], die_with_parent=True, config=config)
    try:
        wait_for_process(
            lambda: server.targets() and all(t["health"] == "up" for t in server.targets()),
            timeout=60,
            what="waiting for Prometheus to scrape its targets",
            proc=server.process,
        )
    except BaseException:
        server.stop()
        raise
    return server


@contextlib.contextmanager
def monitored(
    model: str, version: str, tmp_path: Path, namespace: str, name: str
) -> Iterator[tuple[FakeServingMetrics, str]]:
    """Fake serving metrics of one version served by ModelDeployment ``namespace/name``,
    scraped every second by a real Prometheus (URL).

    Two neighbours serve the same model version, drifted and with poor accuracy from the start:
    another ModelDeployment in the namespace (a canary) and one of the same name in another
    namespace (staging). The operator must read only its own pods' series (target labels
    ``namespace`` and ``modeldeployment``); a test that reads 0.05 drift or 0.93 accuracy, or
    starts no Job while its own metrics are quiet, proves it.
    """
    own = FakeServingMetrics(model, version)
    neighbours = [
        (FakeServingMetrics(model, version, 0.95, 0.42), namespace, f"{name}-canary"),
        (FakeServingMetrics(model, version, 0.95, 0.42), f"{namespace}-staging", name),
    ]
    everyone = [(own, namespace, name), *neighbours]
    try:
        targets = [
            (
                m.target,
                {
                    "namespace": ns,
                    "pod": f"{mdep}-0",
                    "modeldeployment": mdep,
                    "model_version": version,
                },
            )
            for m, ns, mdep in everyone
        ]
        prometheus = start_labelled_prometheus(tmp_path / "prometheus", targets)
        try:
            yield own, prometheus.url
        finally:
            prometheus.stop()
    finally:
        for m, _, _ in everyone:
            m.close()


def test_sustained_drift_starts_exactly_one_retraining_even_across_a_crash(
    operator: Operator, k8s: Cluster_, registry: Registry, tmp_path: Path
) -> None:
    model = f"op-{uuid.uuid4().hex[:8]}"
    v1 = register(registry, model)
    registry.set_registered_model_alias(model, "champion", v1)
    with monitored(model, v1, tmp_path, k8s.ns, "drifty") as (metrics, prometheus_url):
        spec = {
            "model": {"name": model, "alias": "champion"},
            "monitoring": {
                "prometheus": prometheus_url,
                "interval": "1s",
                "featureDrift": {"threshold": 0.2, "for": "2s"},
            },
            "retraining": {"minNewLabels": 0, "cooldown": "6h"},
        }
        k8s.create("drifty", spec)
        wait_until("served", lambda: k8s.serving("drifty", v1), timeout=READY_TIMEOUT)
        # its own pod's 0.05 and 0.93, not the neighbours' 0.95 and 0.42 (same model version)
        wait_until(
            "drift read from Prometheus",
            lambda: k8s.status("drifty").get("drift", {}).get("feature") == pytest.approx(0.05),
            timeout=60,
        )
        # quality is a ratio of counter increases: it needs two scrapes of the counters
        wait_until(
            "quality read from Prometheus",
            lambda: (
                k8s.status("drifty").get("quality", {}).get("value")
                == pytest.approx(0.93, abs=0.01)
            ),
            timeout=30,
        )
        assert k8s.condition("drifty", "Drifting")["status"] == "False"
        assert not k8s.jobs()

        metrics.feature_drift = 0.9
        wait_until(
            "Drifting=True",
            lambda: k8s.condition("drifty", "Drifting").get("status") == "True",
            timeout=60,
        )
        job = wait_until("a retraining Job", lambda: k8s.jobs(), timeout=60)[0]
        assert job.metadata.annotations[f"{GROUP}/trigger"] == "drift"
        env = {e.name: e.value for e in job.spec.template.spec.containers[0].env}
        assert env["TEXTOPS_MODEL_NAME"] == model
        assert env["TEXTOPS_SERVING_VERSION"] == v1
        wait_until(
            "the Job recorded in status",
            lambda: k8s.status("drifty").get("lastRetraining", {}).get("job") == job.metadata.name,
            timeout=30,
        )

        # Crash the operator and start it again: it converges on the same state.
        operator.kill()
        before = k8s.status("drifty")["drift"]["observedAt"]
        operator.start()
        wait_until(
            "observations resumed after the restart",
            lambda: k8s.status("drifty")["drift"]["observedAt"] > before,
            timeout=60,
        )
        observed = k8s.status("drifty")["drift"]["observedAt"]
        wait_until(
            "two more observations",
            lambda: k8s.status("drifty")["drift"]["observedAt"] > observed,
            timeout=30,
        )
        names = [j.metadata.name for j in k8s.jobs()]
        assert names == [job.metadata.name]  # still exactly one Job
        last = k8s.status("drifty")["lastRetraining"]
        assert last["trigger"] == "drift" and last["job"] == job.metadata.name
        started = [h for h in k8s.status("drifty")["history"] if h["event"] == "RetrainingStarted"]
        assert len(started) == 1


# --------------------------------------------------------------------------- retraining


def test_manual_retraining_records_the_candidate_and_rolls_out_the_promotion(
    operator: Operator, k8s: Cluster_, registry: Registry, stores: Stores
) -> None:
    """A person asks; the Job's pod trains on the newest dataset (1,000 reviews, where the
    champion saw 200), registers the candidate with its trigger id and lineage, and the gate
    promotes it. The operator records all of it from the registry and rolls it out."""
    model = f"op-{uuid.uuid4().hex[:8]}"
    v1 = register(registry, model)
    registry.set_registered_model_alias(model, "champion", v1)
    spec = {
        "model": {"name": model, "alias": "champion"},
        "retraining": {"dataset": stores.big, "minNewLabels": 0},
        "promotion": {"minImprovement": MIN_IMPROVEMENT},
    }
    created = k8s.create("manual", spec)
    wait_until("served", lambda: k8s.serving("manual", v1), timeout=READY_TIMEOUT)

    k8s.custom.patch_namespaced_custom_object(
        GROUP,
        VERSION,
        k8s.ns,
        PLURAL,
        "manual",
        {"metadata": {"annotations": {Annotation.RETRAIN: "r1"}}},
    )
    # The trigger id of a manual request is a function of the resource uid and the annotation.
    tid = trigger_id(created["metadata"]["uid"], "manual", "r1")
    job = wait_until("the manual Job", lambda: k8s.jobs(), timeout=60)[0]
    assert tid[:10] in job.metadata.name
    k8s.await_job(job.metadata.name, "Complete")

    [candidate] = registry.search_model_versions(
        f"name = '{model}' and tags.`textops.trigger.id` = '{tid}'"
    )
    tags, v2 = candidate.tags, str(candidate.version)
    assert tags["textops.gate.decision"] == "promoted", tags
    assert registry.get_model_version_by_alias(model, "champion").version == v2
    wait_until(
        "candidate recorded",
        lambda: k8s.status("manual").get("lastRetraining", {}).get("decision") == "promoted",
        timeout=60,
    )
    last = k8s.status("manual")["lastRetraining"]
    assert last["candidateVersion"] == v2 and last["result"] == "Succeeded"
    assert last["trigger"] == "manual" and last["triggerId"] == tid
    assert k8s.status("manual")["lastManualRequest"] == "r1"
    wait_until("promoted version served", lambda: k8s.serving("manual", v2), timeout=READY_TIMEOUT)
    history = k8s.status("manual")["history"]
    events = [h["event"] for h in history]
    for expected in ("RetrainingStarted", "RetrainingSucceeded", "Promoted"):
        assert expected in events
    # the candidate's lineage and the gate's numbers, from the status alone
    [succeeded] = [h for h in history if h["event"] == "RetrainingSucceeded"]
    [promoted] = [h for h in history if h["event"] == "Promoted"]
    assert tags["textops.dataset.id"] == stores.big_dataset
    # the training image recorded the commit of its sources; the Job's run names it
    revision = images.source_revision(recipes.IMAGES["training"])
    assert revision is not None and tags["textops.git.commit"] == revision.commit != "unknown"
    for record in (succeeded, promoted):
        assert (record["version"], record["job"], record["runId"]) == (
            v2,
            job.metadata.name,
            candidate.run_id,
        )
        assert record["datasetId"] == stores.big_dataset
        assert record["datasetSha256"] == tags["textops.dataset.sha256"]
        assert record["gitCommit"] == tags["textops.git.commit"]
        assert record["codeSha256"] == tags["textops.code.sha256"]
    assert "decision" not in succeeded
    assert promoted["decision"] == "promoted" and promoted["metric"] == "macro_f1"
    assert (promoted["candidateValue"], promoted["championValue"]) == pytest.approx(
        (float(tags["textops.gate.challenger_value"]), float(tags["textops.gate.champion_value"]))
    )
    assert promoted["candidateValue"] >= promoted["championValue"] + MIN_IMPROVEMENT
    assert promoted["championVersion"] == v1
    assert tags["textops.gate.reason"] in promoted["message"]
    assert not k8s.events("NoCandidate")
    assert len(k8s.jobs()) == 1


def _observations_after(k8s: Cluster_, name: str, count: int, timeout: float = 60) -> str:
    """Wait until the operator has read Prometheus ``count`` more times; the last reading time."""

    def observed() -> str:
        return str(k8s.status(name).get("drift", {}).get("observedAt") or "")

    def newer_than(before: str) -> Callable[[], str]:
        def probe() -> str:
            now = observed()
            return now if now > before else ""

        return probe

    seen = observed()
    for _ in range(count):
        seen = wait_until("another observation", newer_than(seen), timeout=timeout)
    return seen


def _read_job(k8s: Cluster_, name: str) -> Any:
    return k8s.batch.read_namespaced_job(name, k8s.ns)


def _waits_until(message: str) -> datetime:
    """The back-off end written in the Retraining condition's message."""
    found = re.search(r"waits until (\S+Z)", message)
    assert found, message
    return datetime.fromisoformat(found.group(1).replace("Z", "+00:00"))


def _time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def test_failed_retraining_job_is_reported_promotes_nothing_and_backs_off(
    operator: Operator, k8s: Cluster_, registry: Registry, stores: Stores, tmp_path: Path
) -> None:
    """Manual Job fails (its pods run the training image on a dataset URI with no version;
    the real Job controller, backoffLimit 1) → Failed condition, Warning Event, champion
    untouched; sustained drift then waits out the back-off (no retry storm), and the retry
    that fails again doubles the wait."""
    model = f"op-{uuid.uuid4().hex[:8]}"
    v1 = register(registry, model)
    registry.set_registered_model_alias(model, "champion", v1)
    with monitored(model, v1, tmp_path, k8s.ns, "failing") as (metrics, prometheus_url):
        spec = {
            "model": {"name": model, "alias": "champion"},
            "monitoring": {
                "prometheus": prometheus_url,
                "interval": "1s",
                "featureDrift": {"threshold": 0.2, "for": "2s"},
            },
            "retraining": {
                "dataset": stores.missing,
                "minNewLabels": 0,
                # long enough for two failing pods (the Job controller waits 10 s between
                # them) and the checks inside the window that follows
                "cooldown": "90s",
                "backoffLimit": 1,
            },
        }
        k8s.create("failing", spec)
        wait_until("served", lambda: k8s.serving("failing", v1), timeout=READY_TIMEOUT)
        k8s.custom.patch_namespaced_custom_object(
            GROUP,
            VERSION,
            k8s.ns,
            PLURAL,
            "failing",
            {"metadata": {"annotations": {Annotation.RETRAIN: "r1"}}},
        )
        job = wait_until("the manual Job", lambda: k8s.jobs(), timeout=60)[0]
        failed = k8s.await_job(job.metadata.name, "Failed")
        assert failed.reason == "BackoffLimitExceeded"
        assert "no dataset versions" in k8s.job_log(job.metadata.name)
        assert _read_job(k8s, job.metadata.name).status.failed == 2  # backoffLimit 1: two pods

        wait_until(
            "the failure recorded",
            lambda: k8s.status("failing").get("lastRetraining", {}).get("result") == "Failed",
            timeout=30,
        )
        st = k8s.status("failing")
        assert st["lastRetraining"]["job"] == job.metadata.name
        assert st["lastRetraining"]["trigger"] == "manual"
        assert "candidateVersion" not in st["lastRetraining"]
        retraining = k8s.condition("failing", "Retraining")
        assert (retraining["status"], retraining["reason"]) == ("False", "JobFailed")
        until = _waits_until(retraining["message"])
        started = _time(st["lastRetraining"]["startedAt"])
        assert until - started == timedelta(seconds=90)  # one failure: the cooldown
        assert "(1 consecutive failure)" in retraining["message"]
        events = wait_until("a RetrainingFailed Event", lambda: k8s.events("RetrainingFailed"))
        assert events[0].type == "Warning" and job.metadata.name in events[0].message
        assert "RetrainingFailed" in [h["event"] for h in st["history"]]
        # Nothing was promoted: the alias and what is served are unchanged.
        assert registry.get_model_version_by_alias(model, "champion").version == v1
        assert st["servingVersion"] == v1
        assert k8s.deployment_uri("failing") == f"models:/{model}/{v1}"

        # Drift now fires and stays, but inside the back-off window no Job starts.
        metrics.feature_drift = 0.9
        wait_until(
            "drift sustained past its 2s",
            lambda: (
                (d := k8s.status("failing").get("drift", {})).get("featureAboveSince")
                and _time(d["observedAt"]) - _time(d["featureAboveSince"]) >= timedelta(seconds=3)
            ),
            timeout=30,
        )
        last_seen = _time(_observations_after(k8s, "failing", 2))
        assert last_seen < until, "the back-off window was over before the check: machine slow?"
        assert [j.metadata.name for j in k8s.jobs()] == [job.metadata.name]

        # Once the window is over, the drift retraining starts: exactly one new Job.
        retry = wait_until(
            "the drift retraining after the back-off",
            lambda: [j for j in k8s.jobs() if j.metadata.name != job.metadata.name],
            timeout=150,
        )
        assert len(retry) == 1
        assert retry[0].metadata.annotations[f"{GROUP}/trigger"] == "drift"
        assert retry[0].metadata.creation_timestamp >= until
        # It fails too (same dataset): the next wait is twice the cooldown.
        k8s.await_job(retry[0].metadata.name, "Failed")
        wait_until(
            "the second failure recorded",
            lambda: (
                "(2 consecutive failures)"
                in k8s.condition("failing", "Retraining").get("message", "")
            ),
            timeout=60,
        )
        st = k8s.status("failing")
        assert st["lastRetraining"]["job"] == retry[0].metadata.name
        second_until = _waits_until(k8s.condition("failing", "Retraining")["message"])
        assert second_until - _time(st["lastRetraining"]["startedAt"]) == timedelta(seconds=180)
        assert len(k8s.events("RetrainingFailed")) == 2  # one per failure, not per pass
        assert len(k8s.jobs()) == 2
        assert registry.get_model_version_by_alias(model, "champion").version == v1


def test_schedule_tick_starts_exactly_one_retraining(
    operator: Operator, k8s: Cluster_, registry: Registry, stores: Stores, tmp_path: Path
) -> None:
    """A real cron tick (every minute: the first one after creation is at most 60 s away)
    starts one Job. Its pod trains on the champion's own dataset, so the candidate is the
    champion again and the gate rejects it; the operator records the rejection."""
    model = f"op-{uuid.uuid4().hex[:8]}"
    v1 = register(registry, model)
    registry.set_registered_model_alias(model, "champion", v1)
    with monitored(model, v1, tmp_path, k8s.ns, "nightly") as (_, prometheus_url):
        spec = {
            "model": {"name": model, "alias": "champion"},
            "monitoring": {"prometheus": prometheus_url, "interval": "1s"},
            "retraining": {
                "dataset": stores.small,
                "minNewLabels": 0,
                "triggers": {"schedule": "* * * * *"},
            },
            "promotion": {"minImprovement": MIN_IMPROVEMENT},
        }
        created = k8s.create("nightly", spec)
        # Ticks at or before creation never fire: the first is the next whole minute.
        tick = _time(created["metadata"]["creationTimestamp"]).replace(second=0) + timedelta(
            minutes=1
        )
        tid = trigger_id(created["metadata"]["uid"], "schedule", format_time(tick))
        wait_until("served", lambda: k8s.serving("nightly", v1), timeout=READY_TIMEOUT)
        job = wait_until("the scheduled Job", lambda: k8s.jobs(), timeout=120)[0]
        assert job.metadata.creation_timestamp >= tick
        assert job.metadata.annotations[f"{GROUP}/trigger"] == "schedule"
        assert job.metadata.annotations[f"{GROUP}/trigger-id"] == tid
        env = {e.name: e.value for e in job.spec.template.spec.containers[0].env}
        assert env["TEXTOPS_TRIGGER"] == "schedule" and env["TEXTOPS_TRIGGER_ID"] == tid
        k8s.await_job(job.metadata.name, "Complete")
        [candidate] = registry.search_model_versions(
            f"name = '{model}' and tags.`textops.trigger.id` = '{tid}'"
        )
        assert candidate.tags["textops.gate.decision"] == "rejected", candidate.tags
        v2 = str(candidate.version)

        wait_until(
            "the rejected candidate recorded",
            lambda: k8s.status("nightly").get("lastRetraining", {}).get("decision") == "rejected",
            timeout=60,
        )
        st = k8s.status("nightly")
        assert _time(st["lastScheduleTime"]) == tick
        last = st["lastRetraining"]
        assert (last["trigger"], last["triggerId"], last["result"]) == (
            "schedule",
            tid,
            "Succeeded",
        )
        assert last["candidateVersion"] == v2 and "* * * * *" in last["reason"]
        _observations_after(k8s, "nightly", 2)
        assert [j.metadata.name for j in k8s.jobs()] == [job.metadata.name]
        history = [h["event"] for h in k8s.status("nightly")["history"]]
        assert history.count("RetrainingStarted") == 1 and "Rejected" in history
        assert registry.get_model_version_by_alias(model, "champion").version == v1


def test_quality_drop_starts_a_retraining(
    operator: Operator, k8s: Cluster_, registry: Registry, tmp_path: Path
) -> None:
    model = f"op-{uuid.uuid4().hex[:8]}"
    v1 = register(registry, model)
    registry.set_registered_model_alias(model, "champion", v1)
    with monitored(model, v1, tmp_path, k8s.ns, "sliding") as (metrics, prometheus_url):
        spec = {
            "model": {"name": model, "alias": "champion"},
            "monitoring": {
                "prometheus": prometheus_url,
                "interval": "1s",
                "quality": {
                    "metric": "accuracy",
                    "min": 0.8,
                    "minSamples": 200,
                    "for": "2s",
                    "window": "10s",  # the value follows the feedback of the last seconds
                },
            },
            "retraining": {"minNewLabels": 0},
        }
        k8s.create("sliding", spec)
        wait_until("served", lambda: k8s.serving("sliding", v1), timeout=READY_TIMEOUT)
        wait_until(
            "quality read with enough feedback",
            lambda: (
                (q := k8s.status("sliding").get("quality", {})).get("value")
                == pytest.approx(0.93, abs=0.01)
                and (q.get("samples") or 0) >= 200
            ),
            timeout=60,
        )
        assert k8s.condition("sliding", "QualityLow")["status"] == "False"
        assert not k8s.jobs()

        metrics.accuracy = 0.61
        wait_until(
            "QualityLow=True",
            lambda: k8s.condition("sliding", "QualityLow").get("status") == "True",
            timeout=60,
        )

        def said_accuracy() -> dict[str, Any] | None:
            c = k8s.condition("sliding", "QualityLow")
            said = re.match(r"accuracy ([0-9.]+) < 0.8 on", c.get("message", ""))
            return c if said and float(said[1]) == pytest.approx(0.61, abs=0.01) else None

        low = wait_until("the window holding only the new feedback", said_accuracy, timeout=60)
        assert low["reason"] == "QualityBelowMinimum"
        wait_until("a QualityBelowMinimum Event", lambda: k8s.events("QualityBelowMinimum"))
        job = wait_until("the quality retraining Job", lambda: k8s.jobs(), timeout=60)[0]
        assert job.metadata.annotations[f"{GROUP}/trigger"] == "quality"
        env = {e.name: e.value for e in job.spec.template.spec.containers[0].env}
        assert env["TEXTOPS_TRIGGER"] == "quality"
        assert "accuracy below 0.8" in env["TEXTOPS_TRIGGER_REASON"]
        wait_until(
            "the Job recorded in status",
            lambda: k8s.status("sliding").get("lastRetraining", {}).get("job") == job.metadata.name,
            timeout=30,
        )
        assert k8s.status("sliding")["lastRetraining"]["trigger"] == "quality"
        _observations_after(k8s, "sliding", 2)
        assert [j.metadata.name for j in k8s.jobs()] == [job.metadata.name]


def test_quality_metric_macro_f1_is_read_from_the_confusion_of_the_feedback(
    operator: Operator, k8s: Cluster_, registry: Registry, tmp_path: Path
) -> None:
    """Feedback that is 90 % right but never right on class T: accuracy 0.90 passes a minimum
    of 0.8, macro-F1 0.474 does not. The ModelDeployment asks for macro-F1 and gets it."""
    model = f"op-{uuid.uuid4().hex[:8]}"
    v1 = register(registry, model)
    registry.set_registered_model_alias(model, "champion", v1)
    with monitored(model, v1, tmp_path, k8s.ns, "balanced") as (metrics, prometheus_url):
        metrics.confusion = {("S", "S"): 90, ("S", "T"): 10}
        quality = {"metric": "macro_f1", "min": 0.8, "minSamples": 200, "for": "1h"}
        spec = {
            "model": {"name": model, "alias": "champion"},
            "monitoring": {
                "prometheus": prometheus_url,
                "interval": "1s",
                "quality": {**quality, "window": "10s"},
            },
            "retraining": {"minNewLabels": 0},
        }
        k8s.create("balanced", spec)
        # the feedback is poor from the start, so the phase may go straight to Degraded
        wait_until("rolled out", lambda: k8s.rolled_out("balanced", v1), timeout=READY_TIMEOUT)
        # F1 of S and of T, averaged; increase() extrapolates each series to the window's edges
        # on its own, so the ratio of two of them is exact only to about a percent
        expected = pytest.approx((2 * 90 / (2 * 90 + 10) + 0.0) / 2, abs=0.01)
        wait_until(
            "macro-F1 of the window's feedback",
            lambda: (
                (q := k8s.status("balanced").get("quality", {})).get("value") == expected
                and (q.get("samples") or 0) >= 200
            ),
            timeout=60,
        )
        low = wait_until(
            "QualityLow=True on macro-F1",
            lambda: (c := k8s.condition("balanced", "QualityLow")).get("status") == "True" and c,
            timeout=30,
        )
        said = re.match(r"macro_f1 ([0-9.]+) < 0.8 on \d+ feedback labels", low["message"])
        assert said and float(said[1]) == expected, low
        assert not k8s.jobs()  # below for less than quality.for


# --------------------------------------------------------------------------- RBAC


@pytest.mark.parametrize(
    ("verb", "resource", "allowed"),
    [
        ("patch", "modeldeployments.textops.io", True),
        ("patch", "modeldeployments.textops.io/status", True),
        ("watch", "modeldeployments.textops.io", True),
        ("create", "deployments.apps", True),
        ("update", "deployments.apps", True),
        ("create", "jobs.batch", True),
        ("create", "events", True),
        ("create", "services", True),
        ("create", "modeldeployments.textops.io", False),
        ("delete", "modeldeployments.textops.io", False),
        ("delete", "deployments.apps", False),
        ("delete", "jobs.batch", False),
        ("get", "secrets", False),
        ("list", "secrets", False),
        ("create", "pods", False),
        ("get", "pods", False),
        ("create", "customresourcedefinitions.apiextensions.k8s.io", False),
        ("create", "clusterrolebindings.rbac.authorization.k8s.io", False),
        ("list", "namespaces", False),
    ],
)
def test_operator_service_account_has_only_what_it_uses(
    operator_kubeconfig: Path, kubectl: Kubectl, verb: str, resource: str, allowed: bool
) -> None:
    done = kubectl("auth", "can-i", verb, resource, "-n", "default", f"--as={SA_USER}")
    assert done.stdout.strip() == ("yes" if allowed else "no"), done.stderr


def test_operator_deployment_manifest_is_valid(operator_kubeconfig: Path, kubectl: Kubectl) -> None:
    """The operator's own Deployment is accepted by the API server (strict field validation)."""
    done = kubectl("apply", "--dry-run=server", "--validate=strict", "-f", str(OPERATOR_MANIFEST))
    assert done.returncode == 0, done.stderr
