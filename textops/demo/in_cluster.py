"""``make cluster-demo``: the demo's story on the dev cluster's real node, closed by the operator.

What the person does is what a user of the chart does: ``helm install`` (the dev values),
put the first dataset version in the in-cluster S3 store, and apply a ModelDeployment with two
replicas following ``@champion`` that asks for a first training (annotation
``textops.io/retrain``). The operator trains v1 in a Job and rolls it out. Then the world
sends in-distribution and shifted traffic (40 % hotel reviews) through the Service's
ClusterIP (this host is the node, so kube-proxy balances over both replicas), simulated users
send feedback for a quarter of the answers, and a simulated annotator labels the top of the
ranked queue through the labelling API of the Service (``kubectl port-forward``, the chart's
token). From there on the demo only watches: drift in the in-cluster Prometheus → the
operator starts a retraining Job once drift lasts and the labels are in (``minNewLabels`` is
the number the demo gives) → the Job exports the labels as a dataset version whose parent is
v1's, trains, gates and promotes v2 → the operator rolls v2 out on both replicas → the same
shifted mix reads under both drift thresholds. The cluster stays up.
"""

from __future__ import annotations

import base64
import contextlib
import json
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

from kubernetes import client
from mlflow.tracking import MlflowClient

from textops.contracts import Annotation, Env, Metric
from textops.data.snapshot import take_snapshot
from textops.data.sources import builtin_corpus
from textops.data.validation import validate_records
from textops.demo.client import DriftReading, ServiceClient
from textops.demo.loop import annotate, phase_line, record_drift, replay
from textops.demo.report import write_report
from textops.demo.scenario import (
    DemoSize,
    Phase,
    build_scenario,
    feedback_plan,
    phase_traffic,
)
from textops.devcluster import Cluster
from textops.devcluster.access import (
    CHART,
    ClusterAccessError,
    dev_values,
    helm,
    port_forward,
    wait_for,
)
from textops.operator.spec import GROUP, PLURAL, VERSION
from textops.progress import Progress
from textops.serving.config import ServingConfig
from textops.settings import load_settings

NAMESPACE, RELEASE = "textops-demo", "demo"
MDEP = "reviews"  # the ModelDeployment, its Deployment and Service
CREDENTIALS = "reviews-s3"  # the Jobs' S3 keys (spec.credentialsSecret)
REPLICAS = 2
KINDS = ("feature", "prediction")
STAGES = 10  # the story's; `main` adds the helm install
# Smaller than make demo's: each serving pod observes at most 50 texts/s for drift, and the
# traffic is sent at 80 % of that budget so every text enters a drift window. 40 % hotel
# reviews rather than 30 %: each pod's window holds half the traffic, and at 30 % the
# feature drift read 1.09x of its threshold, too close to call.
SIZE = DemoSize(in_distribution=1000, shifted=3000, new_share=0.4, labels=500, chunk=200)


@dataclass(frozen=True)
class Installation:
    """One release of the chart, and the admin API client the demo reads it with."""

    cluster: Cluster
    api: Any
    namespace: str
    release: str

    @property
    def base(self) -> str:
        return f"{self.release}-textops"

    def secret_value(self, name: str, key: str) -> str:
        data = client.CoreV1Api(self.api).read_namespaced_secret(name, self.namespace).data
        return base64.b64decode((data or {})[key]).decode()

    def s3_credentials(self) -> dict[str, str]:
        """The chart's MinIO root keys as the AWS variables clients read."""
        secret = f"{self.base}-minio"
        return {
            "AWS_ACCESS_KEY_ID": self.secret_value(secret, "root-user"),
            "AWS_SECRET_ACCESS_KEY": self.secret_value(secret, "root-password"),
        }

    def plain(self, obj: Any) -> dict[str, Any]:
        """An API object as the camelCase dict the API server sent."""
        body: dict[str, Any] = self.api.sanitize_for_serialization(obj)
        return body

    def cluster_ip_url(self, service: str, port: int) -> str:
        found = client.CoreV1Api(self.api).read_namespaced_service(service, self.namespace)
        return f"http://{self.plain(found)['spec']['clusterIP']}:{port}"


def install(
    cluster: Cluster,
    api: Any,
    workdir: Path,
    content_tags: dict[str, str],
    reconcile_seconds: int = 2,
) -> Installation:
    """``helm upgrade --install --wait`` of the chart with the dev values into NAMESPACE.

    The overlay a user with a dedicated node writes (tolerate and select the real node), with
    the operator watching only NAMESPACE and reconciling every ``reconcile_seconds`` (the
    chart's default 30 s would make the demo wait), and the images named by their content
    tags (``content_tags``: what was just built), so an upgrade after a rebuild restarts what
    runs an image that changed."""
    helm(
        cluster,
        "upgrade",
        "--install",
        RELEASE,
        str(CHART),
        "--namespace",
        NAMESPACE,
        "--create-namespace",
        *dev_values(workdir, NAMESPACE, reconcile_seconds, content_tags),
        "--wait",
        "--timeout=12m",
        timeout=900,
    )
    return Installation(cluster, api, NAMESPACE, RELEASE)


class Watch:
    """What the demo reads from the cluster: the ModelDeployment, its pods and Jobs, and the
    in-cluster Prometheus."""

    def __init__(self, inst: Installation, name: str, prometheus_url: str) -> None:
        self.inst, self.name, self.ns = inst, name, inst.namespace
        self.custom = client.CustomObjectsApi(inst.api)
        self.core = client.CoreV1Api(inst.api)
        self.batch = client.BatchV1Api(inst.api)
        self.prometheus_url = prometheus_url

    def mdep(self) -> dict[str, Any] | None:
        try:
            body = self.custom.get_namespaced_custom_object(
                GROUP, VERSION, self.ns, PLURAL, self.name
            )
        except client.ApiException as exc:
            if exc.status == 404:
                return None
            raise
        return dict(cast(dict[str, Any], body))

    def status(self) -> dict[str, Any]:
        return dict((self.mdep() or {}).get("status") or {})

    def jobs(self) -> list[dict[str, Any]]:
        selector = f"app.kubernetes.io/instance={self.name}"
        items = self.batch.list_namespaced_job(self.ns, label_selector=selector).items
        jobs = [self.inst.plain(j) for j in items]
        return sorted(jobs, key=lambda j: str(j["metadata"]["creationTimestamp"]))

    def pods(self, selector: str) -> list[dict[str, Any]]:
        items = self.core.list_namespaced_pod(self.ns, label_selector=selector).items
        return [self.inst.plain(p) for p in items]

    def children(self) -> list[str]:
        """Names of the pods and Jobs of the ModelDeployment still there."""
        pods = self.pods(f"app.kubernetes.io/instance={self.name}")
        return [str(o["metadata"]["name"]) for o in (*pods, *self.jobs())]

    def ready_pods(self, version: str) -> list[str]:
        """Names of the ready serving pods of ``version`` (and only if no other version runs)."""
        selector = f"app.kubernetes.io/instance={self.name},app.kubernetes.io/component=serving"
        pods = [p for p in self.pods(selector) if not p["metadata"].get("deletionTimestamp")]
        if any(p["metadata"]["labels"].get(f"{GROUP}/model-version") != version for p in pods):
            return []
        return [
            str(p["metadata"]["name"])
            for p in pods
            if any(c.get("ready") for c in p["status"].get("containerStatuses") or [])
        ]

    def query(self, expr: str) -> list[dict[str, Any]]:
        return instant_query(self.prometheus_url, expr)

    def value(self, expr: str) -> float | None:
        found = self.query(expr)
        return float(found[0]["value"][1]) if found else None

    def drift(self, model: str, version: str) -> DriftReading | None:
        """The largest overall drift statistic over the version's pods, as Prometheus has it."""
        sel = _overall(model, version)
        values = {
            (kind, part): self.value(f"max({Metric.drift(kind, part)}{{{sel}}})")
            for kind in KINDS
            for part in ("statistic", "threshold")
        }
        samples = self.value(f"sum({Metric.drift('feature', 'window_samples')}{{{sel}}})")
        if any(v is None for v in values.values()) or samples is None:
            return None
        return DriftReading(
            feature=values["feature", "statistic"] or 0.0,
            feature_threshold=values["feature", "threshold"] or 0.0,
            prediction=values["prediction", "statistic"] or 0.0,
            prediction_threshold=values["prediction", "threshold"] or 0.0,
            samples=int(samples),
        )

    def drift_after(self, model: str, version: str, since: float) -> DriftReading | None:
        """The drift reading once every pod of ``version`` was scraped one drift evaluation
        interval after ``since`` (epoch seconds), so it covers everything sent before it."""
        sel = _overall(model, version)
        oldest = self.value(f"min(timestamp({Metric.drift('feature', 'statistic')}{{{sel}}}))")
        if oldest is None or oldest < since + ServingConfig.drift_interval_s:
            return None
        return self.drift(model, version)


def _overall(model: str, version: str) -> str:
    """The label selector of a version's overall drift verdicts."""
    return f'model="{model}",version="{version}",{Metric.STATISTIC}="{Metric.OVERALL}"'


def instant_query(url: str, expr: str) -> list[dict[str, Any]]:
    """An instant PromQL query against ``url``; [] while Prometheus cannot answer."""
    request = f"{url}/api/v1/query?{urllib.parse.urlencode({'query': expr})}"
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return list(json.loads(response.read())["data"]["result"])
    except OSError:
        return []


def run_cluster_demo(
    inst: Installation, home: Path, size: DemoSize = SIZE, progress: Progress | None = None
) -> dict[str, Any]:
    """The story on an installed chart; returns the summary (also written to the report)."""
    progress = progress or Progress(total=STAGES)
    started = time.perf_counter()
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    run_dir = home / "cluster-demo" / stamp
    run_dir.mkdir(parents=True, exist_ok=True)
    model = f"reviews-{stamp.replace('-', '')}"
    progress.say(f"demo folder: {run_dir}; model {model}; namespace {inst.namespace}")
    with contextlib.ExitStack() as forwards:

        def forward(service: str, port: int) -> str:
            target = f"svc/{inst.base}-{service}"
            return forwards.enter_context(port_forward(inst.cluster, inst.namespace, target, port))

        urls = {
            "mlflow": forward("mlflow", 5000),
            "s3": forward("minio", 9000),
            "prometheus": forward("prometheus", 9090),
        }
        story = _Story(inst, model, run_dir, size, progress, urls)
        summary = story.run(forwards)
    summary["seconds"] = {
        **{k: round(v, 1) for k, v in progress.timings.items()},
        "total": round(time.perf_counter() - started, 1),
    }
    (run_dir / "summary.json").write_text(
        json.dumps(summary, indent=2, ensure_ascii=False), encoding="utf-8"
    )
    progress.say(headline(summary, inst))
    return summary


class _Story:
    """The steps, in order; each one waits for what the cluster does, bounded in time."""

    def __init__(
        self,
        inst: Installation,
        model: str,
        run_dir: Path,
        size: DemoSize,
        progress: Progress,
        urls: dict[str, str],
    ) -> None:
        self.inst, self.model, self.run_dir, self.size = inst, model, run_dir, size
        self.progress, self.urls = progress, urls
        self.watch = Watch(inst, MDEP, urls["prometheus"])
        self.registry = MlflowClient(tracking_uri=urls["mlflow"], registry_uri=urls["mlflow"])
        self.data_uri = f"s3://datasets/{model}"
        rows = validate_records(builtin_corpus(), drop_duplicates=True).rows
        self.scenario = build_scenario(rows, size.first_training, size.seed)
        shift = (size.shifted, size.new_share)
        plan = [(size.in_distribution, 0.0), shift, shift]
        before, shifted, after = phase_traffic(self.scenario, plan, size.seed)
        self.phases = [
            Phase("in-distribution", "", before),
            Phase("shifted", "", shifted),
            Phase("after retraining", "", after),
        ]
        # labels the operator waits for: every feedback the users give, then the annotator's
        self.min_new_labels = size.labels + sum(
            len(chunk) for ph in self.phases[:2] for chunk in feedback_plan(ph.samples, size)
        )

    def say(self, text: str) -> None:
        self.progress.say(f"    {text}")

    def run(self, forwards: contextlib.ExitStack) -> dict[str, Any]:
        p = self.progress
        with p.stage("put the first training set (books + computers) in the in-cluster store"):
            v1_data = self._snapshot()
        with p.stage("apply the ModelDeployment (2 replicas, @champion, first training asked)"):
            self._apply()
        with p.stage("the operator trains v1 in a Job and rolls it out"):
            v1 = self._await_retraining(known=set())
            self._await_serving(v1)
            v1_jobs = {j["metadata"]["name"] for j in self.watch.jobs()}
        token = self.inst.secret_value(f"{self.inst.base}-labels", "token")
        traffic = ServiceClient(self.inst.cluster_ip_url(MDEP, 3000))
        forwards.callback(traffic.close)
        annotator_url = forwards.enter_context(
            port_forward(self.inst.cluster, self.inst.namespace, f"svc/{MDEP}", 3000)
        )
        annotator = ServiceClient(annotator_url, label_token=token)
        forwards.callback(annotator.close)
        before, shifted, after = self.phases
        with p.stage("replay in-distribution traffic through the Service"):
            self._replay(traffic, before, v1)
        with p.stage(f"replay shifted traffic ({self.size.new_share:.0%} hotel reviews)"):
            self._replay(traffic, shifted, v1)
        with p.stage("annotate the top of the labelling queue (labelling API, chart's token)"):
            labelling = annotate(annotator, self.scenario, self.size.labels, p)
        with p.stage(f"the operator: drift and {self.min_new_labels} new labels → a Job"):
            self._say_while(
                f"the serving pods counting {self.min_new_labels} new labels",
                lambda: (self._new_labels() or 0) >= self.min_new_labels,
                timeout=120,
            )
            v2 = self._await_retraining(known=v1_jobs)
        with p.stage(f"the operator rolls v{v2} out on {REPLICAS} replicas"):
            self._await_serving(v2)
        with p.stage("replay the shifted mix on the new champion"):
            self._replay(traffic, after, v2)
        with p.stage("write the report"):
            summary = self._summary(v1_data.id, v1, v2, labelling)
            classes = sorted({r.label for r in self.scenario.first_training})
            report = write_report(
                self.run_dir / "report",
                summary,
                self.phases,
                classes,
                title="textops cluster demo — the operator closes the loop",
            )
            summary["report"] = str(report)
        summary.pop("labelling_order")
        return summary

    def _snapshot(self) -> Any:
        env = {
            Env.HOME: str(self.run_dir),
            Env.MLFLOW_TRACKING_URI: self.urls["mlflow"],
            Env.DATA_URI: self.data_uri,
            Env.S3_ENDPOINT: self.urls["s3"],
            Env.MODEL_NAME: self.model,
            **self.inst.s3_credentials(),
        }
        first = self.run_dir / "first-training.jsonl"
        first.write_text(
            "".join(
                json.dumps({"text": r.text, "label": r.label}, ensure_ascii=False) + "\n"
                for r in self.scenario.first_training
            ),
            encoding="utf-8",
        )
        manifest = take_snapshot(load_settings(env), first).dataset.manifest
        self.say(f"{manifest.id}: {manifest.rows} rows {manifest.label_counts} in {self.data_uri}")
        return manifest

    def _apply(self) -> None:
        core = client.CoreV1Api(self.inst.api)
        secret = client.V1Secret(
            metadata=client.V1ObjectMeta(name=CREDENTIALS), string_data=self.inst.s3_credentials()
        )
        try:
            core.create_namespaced_secret(self.inst.namespace, secret)
        except client.ApiException as exc:
            if exc.status != 409:
                raise
            core.replace_namespaced_secret(CREDENTIALS, self.inst.namespace, secret)
        if self.watch.mdep() is not None:
            self.say(f"deleting the previous run's ModelDeployment {MDEP}")
            self.watch.custom.delete_namespaced_custom_object(
                GROUP, VERSION, self.inst.namespace, PLURAL, MDEP
            )
            wait_for(f"the previous {MDEP} gone", lambda: self.watch.mdep() is None, timeout=120)
            wait_for(
                "its pods and Jobs gone",
                lambda: not self.watch.children(),
                timeout=180,
            )
        body = mdep_body(
            self.model,
            self.data_uri,
            self.min_new_labels,
            first_training=self.model,
            reference_traffic=self.size.reference_traffic,
        )
        self.watch.custom.create_namespaced_custom_object(
            GROUP, VERSION, self.inst.namespace, PLURAL, body
        )
        self.say(
            f"ModelDeployment {self.inst.namespace}/{MDEP}: retrains on drift once "
            f"{self.min_new_labels} labels are new (the feedback and the annotator's labels)"
        )

    def _await_retraining(self, known: set[str]) -> str:
        """The operator's next Job (one not in ``known``), until the operator recorded its
        candidate promoted: that version."""
        job = self._say_while("a retraining Job", lambda: self._new_job(known), timeout=900)
        name = job["metadata"]["name"]
        trigger = job["metadata"].get("annotations", {}).get(f"{GROUP}/trigger", "?")
        self.say(f"Job {name} (trigger {trigger}) started")

        def recorded() -> dict[str, Any] | None:
            last = self.watch.status().get("lastRetraining") or {}
            return last if last.get("job") == name and last.get("decision") else None

        last = self._say_while(f"Job {name} trained, gated and recorded", recorded, timeout=1200)
        self.say(
            f"v{last.get('candidateVersion')}: {last.get('decision')} "
            f"({last.get('trigger')} retraining, Job {name})"
        )
        if last.get("decision") != "promoted":
            raise ClusterAccessError(f"Job {name} did not promote its candidate: {last}")
        return str(last["candidateVersion"])

    def _new_job(self, known: set[str]) -> Any:
        fresh = [j for j in self.watch.jobs() if j["metadata"]["name"] not in known]
        return fresh[-1] if fresh else None

    def _say_while(self, what: str, probe: Callable[[], Any], timeout: float) -> Any:
        """Wait for ``probe``, saying every 15 s what the operator reports meanwhile."""
        deadline = time.monotonic() + timeout
        while True:
            found = wait_for_or_none(probe, min(15.0, max(deadline - time.monotonic(), 0.0)))
            if found:
                return found
            if time.monotonic() >= deadline:
                raise ClusterAccessError(
                    f"timed out after {timeout:.0f}s waiting for {what}; "
                    f"status: {json.dumps(self.watch.status(), default=str)[:2000]}"
                )
            self.say(f"waiting for {what}: {self._operator_says()}")

    def _operator_says(self) -> str:
        st = self.watch.status()
        drift = {k: f"{v:.2f}x" for k, v in (st.get("drift") or {}).items() if k in KINDS}
        conditions = {c["type"]: c for c in st.get("conditions") or []}
        retraining = conditions.get("Retraining", {}).get("message", "")
        labels = self._new_labels()
        counted = "-" if labels is None else str(int(labels))
        return (
            f"phase {st.get('phase')}, drift feature {drift.get('feature', '-')} / prediction "
            f"{drift.get('prediction', '-')}, new labels {counted}; {retraining}"
        )

    def _new_labels(self) -> float | None:
        """Labels no dataset version holds yet, as the serving pods publish it (what
        ``minNewLabels`` is compared with)."""
        return self.watch.value(f'max({Metric.LABELS_UNEXPORTED}{{model="{self.model}"}})')

    def _await_serving(self, version: str) -> None:
        self._say_while(
            f"v{version} served by {REPLICAS} ready pods",
            lambda: (
                self.watch.status().get("servingVersion") == version
                and len(self.watch.ready_pods(version)) == REPLICAS
            ),
            timeout=600,
        )
        self.say(f"v{version} on pods {', '.join(sorted(self.watch.ready_pods(version)))}")

    def _replay(self, traffic: ServiceClient, phase: Phase, version: str) -> None:
        phase.version = version
        rate = 0.8 * ServingConfig.drift_samples_per_s * REPLICAS
        replay(
            traffic,
            phase,
            self.size,
            self.progress,
            lambda _: self.watch.drift(self.model, version),
            texts_per_s=rate,
        )
        ended = time.time()
        settled = self._say_while(
            "a drift evaluation after the last text",
            lambda: self.watch.drift_after(self.model, version, ended),
            timeout=120,
        )
        record_drift(phase, settled, len(phase.samples))
        self.say(
            f"drift after the phase: feature {settled.feature_ratio:.2f}x / prediction "
            f"{settled.prediction_ratio:.2f}x of threshold"
        )

    def _summary(
        self, v1_dataset: str, v1: str, v2: str, labelling: dict[str, Any]
    ) -> dict[str, Any]:
        history = self.watch.status().get("history") or []
        [promoted] = [h for h in history if h["event"] == "Promoted" and h.get("version") == v2]
        started = [
            h for h in history if h["event"] == "RetrainingStarted" and h["job"] == promoted["job"]
        ]
        return {
            "namespace": self.inst.namespace,
            "modeldeployment": MDEP,
            "model": self.model,
            "size": self.size.__dict__,
            "min_new_labels": self.min_new_labels,
            "v1": self._version(v1),
            "v2": {**self._version(v2), "job": promoted["job"], "started": started},
            "phases": {p.name: p.summary() for p in self.phases},
            "labelling": {k: v for k, v in labelling.items() if k != "order_new_segment"},
            "labelling_order": labelling["order_new_segment"],
            "dataset_v1": v1_dataset,
            "dataset_v2": {
                "dataset": promoted.get("datasetId"),
                "parent": promoted.get("datasetParent"),
                "labels_added": promoted.get("labelsAdded"),
            },
            "feedback_before_retraining": sum(p.feedback for p in self.phases[:2]),
            "history": [(h["event"], h.get("version"), h.get("job")) for h in history],
        }

    def _version(self, version: str) -> dict[str, Any]:
        mv = self.registry.get_model_version(self.model, version)
        metrics = self.registry.get_run(str(mv.run_id)).data.metrics
        return {
            "version": version,
            "dataset": mv.tags.get("textops.dataset.id"),
            "macro_f1": round(metrics.get("macro_f1", float("nan")), 4),
            "trigger": mv.tags.get("textops.trigger"),
            "gate": {
                "decision": mv.tags.get("textops.gate.decision"),
                "reason": mv.tags.get("textops.gate.reason", ""),
            },
        }


def wait_for_or_none(probe: Callable[[], Any], timeout: float, interval: float = 1.0) -> Any:
    """``probe``'s first truthy answer within ``timeout`` seconds, else None."""
    try:
        return wait_for("", probe, timeout, interval)
    except ClusterAccessError:
        return None


def mdep_body(
    model: str, data_uri: str, min_new_labels: int, first_training: str, reference_traffic: int
) -> dict[str, Any]:
    """The ModelDeployment: two replicas following @champion, drift read every 2 s and acted
    on after 10 s, retraining once ``min_new_labels`` labels are new, 60 s apart at least;
    the annotation asks for the first training (there is no champion yet)."""
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "ModelDeployment",
        "metadata": {"name": MDEP, "annotations": {Annotation.RETRAIN: first_training}},
        "spec": {
            "model": {"name": model, "alias": "champion"},
            "serving": {
                "replicas": REPLICAS,
                "resources": {"requests": {"cpu": "100m", "memory": "256Mi"}},
            },
            "monitoring": {
                "interval": "2s",
                "featureDrift": {"threshold": 1.0, "for": "10s"},
                "predictionDrift": {"threshold": 1.0, "for": "10s"},
            },
            "retraining": {
                "dataset": data_uri,
                "minNewLabels": min_new_labels,
                "cooldown": "60s",
                "referenceTraffic": reference_traffic,
                "resources": {"requests": {"cpu": "500m", "memory": "1Gi"}},
            },
            "credentialsSecret": CREDENTIALS,
        },
    }


def headline(summary: dict[str, Any], inst: Installation) -> str:
    """The summary table and the commands to look around."""
    lines = ["", "textops cluster demo — summary"]
    for key in ("v1", "v2"):
        v = summary[key]
        lines.append(
            f"  {key}: v{v['version']} (dataset {v['dataset']}, {v['trigger']} Job): "
            f"macro-F1 {v['macro_f1']} → {v['gate']['decision']}"
        )
    ds = summary["dataset_v2"]
    lines.append(
        f"  dataset {ds['dataset']}: parent {ds['parent']}, +{ds['labels_added']} labels "
        f"({summary['feedback_before_retraining']} feedback + {summary['labelling']['labelled']} "
        f"annotated)"
    )
    lines += [phase_line(name, ph) for name, ph in summary["phases"].items()]
    lines.append(f"  report: {summary['report']}  ({summary['seconds']['total']:.0f}s)")
    kubeconfig = inst.cluster.kubeconfig
    ns, base = inst.namespace, inst.base
    lines += [
        "",
        "The cluster stays up; look around (`make cluster-down` ends it):",
        f"  export KUBECONFIG={kubeconfig}",
        f"  kubectl -n {ns} get modeldeployment {MDEP} -o yaml   # status, history, lineage",
        f"  kubectl -n {ns} port-forward svc/{MDEP} 3000         # /predict, /labelling",
        f"  kubectl -n {ns} port-forward svc/{base}-mlflow 5000  # MLflow",
        f"  kubectl -n {ns} port-forward svc/{base}-prometheus 9090  # Prometheus",
        f"  kubectl -n {ns} get secret {base}-labels -o jsonpath='{{.data.token}}' | base64 -d",
    ]
    return "\n".join(lines)


def main() -> int:
    """``make cluster-demo``: install (or upgrade) the chart on the running dev cluster and
    run the story; the cluster stays up."""
    from kubernetes import config

    from textops.devcluster import default_workdir
    from textops.devcluster.access import attach
    from textops.errors import TextopsError
    from textops.packaging.images import BuildError, build_all

    progress = Progress(total=STAGES + 2)
    try:
        cluster = attach(default_workdir())
        api = config.new_client_from_config(config_file=str(cluster.kubeconfig))
        home = load_settings().home
        with progress.stage("the images (unchanged ones are reused)"):
            content_tags = {built.name: built.content_tag for built in build_all()}
        with progress.stage(f"helm upgrade --install {RELEASE} (dev values) in {NAMESPACE}"):
            inst = install(cluster, api, home / "cluster-demo", content_tags)
        run_cluster_demo(inst, home, progress=progress)
    except (TextopsError, BuildError) as exc:
        print(f"cluster demo failed: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
