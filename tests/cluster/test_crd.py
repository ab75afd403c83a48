"""The ModelDeployment CRD and the builders' bodies against a real kube-apiserver.

What only the real API server can prove: the schema is structural and accepted, defaults are
filled in exactly as the Python model assumes, invalid specs are refused at admission with a
message naming the field (OpenAPI checks and CEL rules), unknown fields are pruned, the status
subresource and the printer columns work, `kubectl explain` shows the descriptions, and the
Deployment, Service and Job bodies are valid objects whose children the controllers make and
the garbage collector takes. (Their pods running real containers on the real node is what
tests/cluster/test_operator.py proves.)
"""

from __future__ import annotations

import copy
import json
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from tests.plugins.cluster import wait_until
from textops.devcluster import Cluster
from textops.operator.builders import build_deployment, build_retraining_job, build_service
from textops.operator.config import Config
from textops.operator.policy import Trigger
from textops.operator.spec import (
    GROUP,
    PLURAL,
    VERSION,
    ModelDeployment,
    ModelDeploymentSpec,
    parse,
)

pytestmark = [pytest.mark.cluster, pytest.mark.timeout(300)]

ROOT = Path(__file__).resolve().parents[2]
CRD_FILE = ROOT / "manifests" / "crd" / "modeldeployments.textops.io.yaml"
EXAMPLES = ROOT / "manifests" / "examples"
CRD_NAME = f"{PLURAL}.{GROUP}"
Kubectl = Callable[..., subprocess.CompletedProcess[str]]
MINIMAL_SPEC = {"model": {"name": "reviews-sentiment", "alias": "champion"}}
# No toleration of the real node's taint: the pods stay Pending (nothing here serves a model)
CONFIG = Config(
    serving_image="registry.invalid/textops/serving:1",
    training_image="registry.invalid/textops/training:1",
)


def _example(name: str) -> dict[str, Any]:
    return yaml.safe_load((EXAMPLES / name).read_text(encoding="utf-8"))


def _mdep(name: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "ModelDeployment",
        "metadata": {"name": name},
        "spec": spec,
    }


@pytest.fixture(scope="module")
def crd(k8s_cluster: Cluster, kube_api: Any, kubectl: Kubectl) -> Iterator[None]:
    """The CRD applied from the manifest file with kubectl, Established and served."""
    kubectl("apply", "--server-side", "-f", str(CRD_FILE), check=True)
    ext = client.ApiextensionsV1Api(kube_api)

    def established() -> bool:
        conditions = ext.read_custom_resource_definition(CRD_NAME).status.conditions or []
        return any(c.type == "Established" and c.status == "True" for c in conditions)

    wait_until("CRD Established", established, timeout=60)
    custom = client.CustomObjectsApi(kube_api)

    def served() -> bool:
        try:
            custom.create_namespaced_custom_object(
                GROUP, VERSION, "default", PLURAL, _mdep("probe", MINIMAL_SPEC), dry_run="All"
            )
        except ApiException as exc:
            if exc.status == 404:
                return False
            raise
        return True

    wait_until("ModelDeployment endpoint served", served, timeout=30)
    yield


@pytest.fixture
def custom(kube_api: Any, crd: None) -> client.CustomObjectsApi:
    return client.CustomObjectsApi(kube_api)


def _create(custom: client.CustomObjectsApi, ns: str, body: dict[str, Any]) -> dict[str, Any]:
    created: dict[str, Any] = custom.create_namespaced_custom_object(
        GROUP, VERSION, ns, PLURAL, body
    )  # type: ignore[assignment]
    return created


def test_minimal_is_accepted_and_defaulted(custom: Any, k8s_namespace: str) -> None:
    created = _create(custom, k8s_namespace, _example("minimal.yaml"))
    spec = created["spec"]
    # what the API server filled in, spot-checked in raw form ...
    assert spec["serving"] == {
        "replicas": 1,
        "workers": 1,
        "resources": {
            "requests": {"cpu": "250m", "memory": "512Mi"},
            "limits": {"memory": "1Gi"},
        },
        "batching": {"maxBatchSize": 32, "maxLatencyMs": 20},
    }
    assert spec["monitoring"]["featureDrift"] == {"threshold": 1.0, "for": "10m"}
    assert spec["retraining"]["triggers"] == {
        "onDrift": True,
        "onQualityDrop": True,
        "manual": True,
    }
    assert spec["promotion"] == {"metric": "macro_f1", "minImprovement": 0, "maxRecallDrop": 0.05}
    assert spec["rollout"] == {"progressDeadlineSeconds": 600, "autoRollback": True}
    assert "image" not in spec["serving"] and "prometheus" not in spec["monitoring"]
    # ... and as a whole: the server's defaults are the Python model's defaults
    server = ModelDeployment.from_body(created)
    assert server.spec == parse(ModelDeploymentSpec, MINIMAL_SPEC, "spec")


def test_full_example_is_accepted_unchanged(custom: Any, k8s_namespace: str) -> None:
    body = _example("full.yaml")
    body["metadata"]["namespace"] = k8s_namespace
    created = _create(custom, k8s_namespace, copy.deepcopy(body))
    local = ModelDeployment.from_body(body).spec
    assert ModelDeployment.from_body(created).spec == local


def _with(path: str, value: Any, base: dict[str, Any] | None = None) -> dict[str, Any]:
    """A copy of the minimal spec with ``path`` (dots) set to ``value`` (or deleted: ...)."""
    spec = copy.deepcopy(base or MINIMAL_SPEC)
    *parents, leaf = path.split(".")
    node = spec
    for part in parents:
        node = node.setdefault(part, {})
    if value is ...:
        node.pop(leaf, None)
    else:
        node[leaf] = value
    return spec


# (spec, text the message must contain): each one is refused at admission.
INVALID = [
    ({}, "spec.model: Required value"),
    (_with("model.name", ...), "spec.model.name: Required value"),
    (_with("model.alias", ...), "exactly one of spec.model.alias or spec.model.version"),
    (_with("model.version", "3"), "exactly one of spec.model.alias or spec.model.version"),
    (_with("model.version", "v7", {"model": {"name": "m"}}), "spec.model.version"),
    (_with("model.name", "my model"), "spec.model.name"),
    (_with("model.name", "m" * 64), "spec.model.name"),
    (_with("serving.replicas", -1), "spec.serving.replicas"),
    (_with("serving.replicas", 101), "spec.serving.replicas"),
    (_with("serving.replicas", "two"), "spec.serving.replicas"),
    (_with("serving.batching", {"maxBatchSize": 0}), "spec.serving.batching.maxBatchSize"),
    (_with("serving.batching", {"maxLatencyMs": 600000}), "spec.serving.batching.maxLatencyMs"),
    (
        _with("serving.resources", {"requests": {"cpu": "lots"}}),
        "spec.serving.resources.requests.cpu",
    ),
    (
        _with("serving.resources", {"requests": {"memory": "2Gi"}, "limits": {"memory": "1Gi"}}),
        "spec.serving.resources.limits.memory must not be below requests.memory",
    ),
    (
        _with("retraining.resources", {"requests": {"cpu": 4}, "limits": {"cpu": "2"}}),
        "spec.retraining.resources.limits.cpu must not be below requests.cpu",
    ),
    (_with("monitoring.prometheus", "prometheus:9090"), "spec.monitoring.prometheus"),
    (_with("monitoring.interval", "1 minute"), "spec.monitoring.interval"),
    (_with("monitoring.featureDrift", {"threshold": 0}), "spec.monitoring.featureDrift.threshold"),
    (_with("monitoring.predictionDrift", {"for": "10"}), "spec.monitoring.predictionDrift.for"),
    (_with("monitoring.quality", {"metric": "f1"}), "spec.monitoring.quality.metric"),
    (_with("monitoring.quality", {"min": 1.5}), "spec.monitoring.quality.min"),
    (_with("monitoring.quality", {"minSamples": 0}), "spec.monitoring.quality.minSamples"),
    (_with("retraining.triggers", {"schedule": "0 3 * *"}), "spec.retraining.triggers.schedule"),
    (_with("retraining.triggers", {"onDrift": "yes"}), "spec.retraining.triggers.onDrift"),
    (_with("retraining.cooldown", "6 hours"), "spec.retraining.cooldown"),
    (_with("retraining.minNewLabels", -1), "spec.retraining.minNewLabels"),
    (_with("retraining.referenceTraffic", -1), "spec.retraining.referenceTraffic"),
    (_with("serving.workers", 0), "spec.serving.workers"),
    (_with("retraining.dataset", "http://data/x"), "spec.retraining.dataset"),
    (_with("retraining.activeDeadlineSeconds", 10), "spec.retraining.activeDeadlineSeconds"),
    (_with("promotion.metric", "auc"), "spec.promotion.metric"),
    (_with("promotion.maxRecallDrop", 2), "spec.promotion.maxRecallDrop"),
    (_with("rollout.progressDeadlineSeconds", 5), "spec.rollout.progressDeadlineSeconds"),
    (_with("credentialsSecret", "Bad_Name"), "spec.credentialsSecret"),
]


def _message(exc: ApiException) -> str:
    try:
        return str(json.loads(exc.body)["message"])
    except (TypeError, ValueError, KeyError):
        return str(exc.body)


@pytest.mark.parametrize(("spec", "needle"), INVALID, ids=[n for _, n in INVALID])
def test_invalid_spec_is_refused_naming_the_field(
    custom: Any, spec: dict[str, Any], needle: str
) -> None:
    with pytest.raises(ApiException) as err:
        custom.create_namespaced_custom_object(
            GROUP, VERSION, "default", PLURAL, _mdep("bad", spec), dry_run="All"
        )
    assert err.value.status == 422, err.value.body
    message = _message(err.value)
    assert needle in message, message


@pytest.mark.parametrize("name", ["1reviews", "a" * 53])
def test_names_that_cannot_name_a_service_are_refused(custom: Any, name: str) -> None:
    with pytest.raises(ApiException) as err:
        custom.create_namespaced_custom_object(
            GROUP, VERSION, "default", PLURAL, _mdep(name, MINIMAL_SPEC), dry_run="All"
        )
    assert err.value.status == 422
    assert "metadata.name must be a DNS-1035 label" in _message(err.value)


def test_model_name_is_immutable(custom: Any, k8s_namespace: str) -> None:
    _create(custom, k8s_namespace, _mdep("fixed", MINIMAL_SPEC))
    patch = {"spec": {"model": {"name": "another-model"}}}
    with pytest.raises(ApiException) as err:
        custom.patch_namespaced_custom_object(GROUP, VERSION, k8s_namespace, PLURAL, "fixed", patch)
    assert err.value.status == 422
    assert "spec.model.name is immutable" in _message(err.value)
    # the alias may change (e.g. to follow "challenger" for a while)
    ok = {"spec": {"model": {"alias": "challenger"}}}
    custom.patch_namespaced_custom_object(GROUP, VERSION, k8s_namespace, PLURAL, "fixed", ok)


def test_unknown_fields_are_pruned(custom: Any, k8s_namespace: str) -> None:
    spec = _with("serving.bogus", 1, {**MINIMAL_SPEC, "extra": {"a": 1}})
    created = _create(custom, k8s_namespace, _mdep("pruned", spec))
    assert "extra" not in created["spec"] and "bogus" not in created["spec"]["serving"]
    stored = custom.get_namespaced_custom_object(GROUP, VERSION, k8s_namespace, PLURAL, "pruned")
    assert "extra" not in stored["spec"]


STATUS = {
    "phase": "Serving",
    "observedGeneration": 1,
    "servingVersion": "7",
    "modelUri": "models:/reviews-sentiment/7",
    "drift": {"feature": 0.042, "prediction": 0.31, "observedAt": "2026-11-26T12:00:00Z"},
    "history": [{"time": "2026-11-26T11:00:00Z", "event": "RolledOut", "version": "7"}],
    "conditions": [
        {
            "type": "Ready",
            "status": "True",
            "lastTransitionTime": "2026-11-26T11:00:00Z",
            "reason": "RolledOut",
            "message": "version 7 serves",
        }
    ],
}


def test_status_subresource(custom: Any, k8s_namespace: str, kubectl: Kubectl) -> None:
    ns = k8s_namespace
    created = _create(custom, ns, {**_mdep("st", MINIMAL_SPEC), "status": {"phase": "Failed"}})
    assert "status" not in created  # status is ignored on the main endpoint
    patched = custom.patch_namespaced_custom_object_status(
        GROUP, VERSION, ns, PLURAL, "st", {"status": STATUS}
    )
    assert patched["status"]["servingVersion"] == "7"
    assert patched["metadata"]["generation"] == created["metadata"]["generation"]
    parsed = ModelDeployment.from_body(patched).status
    assert parsed.phase == "Serving" and parsed.conditions[0].type == "Ready"
    # a spec change through the main endpoint leaves the status alone and bumps generation
    spec_patch = {"spec": {"serving": {"replicas": 2}}}
    after = custom.patch_namespaced_custom_object(GROUP, VERSION, ns, PLURAL, "st", spec_patch)
    assert after["status"] == patched["status"]
    assert after["metadata"]["generation"] == created["metadata"]["generation"] + 1
    # the status is validated too
    with pytest.raises(ApiException) as err:
        custom.patch_namespaced_custom_object_status(
            GROUP, VERSION, ns, PLURAL, "st", {"status": {"phase": "Sleeping"}}
        )
    assert err.value.status == 422 and "status.phase" in _message(err.value)

    # printer columns, as people see them
    table = kubectl("get", "mdep", "st", "-n", ns, check=True).stdout.splitlines()
    assert table[0].split() == ["NAME", "MODEL", "SERVING", "PHASE", "DRIFT", "AGE"]
    assert table[1].split()[:5] == ["st", "reviews-sentiment", "7", "Serving", "0.042"]
    wide = kubectl("get", "modeldeployments", "st", "-n", ns, "-o", "wide", check=True).stdout
    header, row = wide.splitlines()
    assert header.split() == [
        "NAME",
        "MODEL",
        "WANTS",
        "SERVING",
        "PHASE",
        "DRIFT",
        "PRED-DRIFT",
        "AGE",
    ]
    assert row.split()[2] == "champion" and row.split()[6] == "0.31"


def test_kubectl_explain_documents_the_fields(crd: None, kubectl: Kubectl) -> None:
    def explained() -> str:
        result = kubectl("explain", "modeldeployment.spec.model")
        return result.stdout if result.returncode == 0 else ""

    out = wait_until("kubectl explain sees the CRD", explained, timeout=60, interval=1)
    assert "Registered model name in MLflow" in out
    assert "name\t<string> -required-" in out
    assert "Registry alias to follow" in out and "A fixed registered version" in out
    recursive = kubectl("explain", "mdep.spec", "--recursive", check=True).stdout
    for field in ("maxBatchSize", "predictionDrift", "minNewLabels", "maxRecallDrop", "for"):
        assert field in recursive
    deep = kubectl("explain", "mdep.spec.retraining.triggers.schedule", check=True).stdout
    assert "Cron schedule in UTC" in deep


def test_builder_bodies_run_on_the_cluster(custom: Any, kube_api: Any, k8s_namespace: str) -> None:
    ns = k8s_namespace
    apps, core, batch = (
        client.AppsV1Api(kube_api),
        client.CoreV1Api(kube_api),
        client.BatchV1Api(kube_api),
    )
    body = _mdep("reviews", _with("serving.replicas", 2))
    mdep = ModelDeployment.from_body(_create(custom, ns, body))
    assert mdep.uid

    deployment = build_deployment(mdep, CONFIG, "7")
    service = build_service(mdep, CONFIG)
    job = build_retraining_job(mdep, CONFIG, Trigger("manual", "00ff" * 4, "test"), "7")
    # server-side dry run first: every field is known to the API (strict: no silent drop)
    apps.create_namespaced_deployment(ns, deployment, dry_run="All", field_validation="Strict")
    core.create_namespaced_service(ns, service, dry_run="All", field_validation="Strict")
    batch.create_namespaced_job(ns, job, dry_run="All", field_validation="Strict")

    apps.create_namespaced_deployment(ns, deployment)
    created_service = core.create_namespaced_service(ns, service)
    assert created_service.spec.cluster_ip
    created_job = batch.create_namespaced_job(ns, job)
    assert created_job.metadata.name == job["metadata"]["name"]

    # the controllers act on the bodies: the ReplicaSet makes both pods, the Job its pod
    selector = ",".join(f"{k}={v}" for k, v in service["spec"]["selector"].items())

    def both_pods() -> list[Any] | None:
        found = core.list_namespaced_pod(ns, label_selector=selector).items
        return found if len(found) == 2 else None

    pods = wait_until("the serving Deployment's 2 pods", both_pods, timeout=60)
    for pod in pods:
        env = {e.name: e.value for e in pod.spec.containers[0].env}
        assert env["TEXTOPS_MODEL_URI"] == "models:/reviews-sentiment/7"
        assert pod.spec.security_context.run_as_non_root is True
    job_pods = f"job-name={job['metadata']['name']}"
    wait_until("the Job's pod", lambda: core.list_namespaced_pod(ns, label_selector=job_pods).items)

    # the owner references are right: deleting the resource collects all three
    custom.delete_namespaced_custom_object(
        GROUP, VERSION, ns, PLURAL, mdep.name, propagation_policy="Foreground"
    )

    def collected() -> bool:
        return (
            not apps.list_namespaced_deployment(ns).items
            and not core.list_namespaced_service(ns).items
            and not batch.list_namespaced_job(ns).items
        )

    wait_until("children garbage-collected", collected, timeout=120)
