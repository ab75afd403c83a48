"""Builders: names, labels, pinned model URI, probes, hardening, Job environment.

The real API server accepting these bodies is proven in tests/cluster/test_crd.py; here the
content is checked field by field, fast.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from textops.operator.builders import (
    JOB_INFIX,
    build_deployment,
    build_retraining_job,
    build_service,
    job_name,
    model_uri,
    selector_labels,
)
from textops.operator.config import Config, load_config
from textops.operator.policy import Trigger
from textops.operator.spec import ModelDeployment

CONFIG = Config(
    serving_image="reg.example/serving:1",
    training_image="reg.example/training:1",
    tracking_uri="http://mlflow:5000",
    data_uri="s3://datasets/default",
    s3_endpoint="http://minio:9000",
)
TRIGGER = Trigger("drift", "0123456789abcdef", "feature drift above 0.2 since ...")


def _mdep(name: str = "reviews", uid: str | None = "uid-1", **spec: Any) -> ModelDeployment:
    body = {
        "metadata": {"name": name, "namespace": "ml", "uid": uid},
        "spec": {"model": {"name": "reviews-sentiment", "alias": "champion"}, **spec},
    }
    return ModelDeployment.from_body(body)


def _env(container: dict[str, Any]) -> dict[str, str]:
    return {e["name"]: e["value"] for e in container["env"]}


def _assert_hardened(pod: dict[str, Any]) -> None:
    assert pod["automountServiceAccountToken"] is False
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    for c in pod["containers"]:
        sc = c["securityContext"]
        assert sc["readOnlyRootFilesystem"] is True
        assert sc["allowPrivilegeEscalation"] is False
        assert sc["capabilities"] == {"drop": ["ALL"]}
        assert {"name": "tmp", "mountPath": "/tmp"} in c["volumeMounts"]
    assert {v["name"] for v in pod["volumes"] if "emptyDir" in v} == {"tmp"}


def test_deployment_pins_the_version_and_serves_on_3000() -> None:
    body = build_deployment(_mdep(), CONFIG, "7")
    assert body["metadata"]["name"] == "reviews" and body["metadata"]["namespace"] == "ml"
    pod = body["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    env = _env(container)
    assert (
        env["TEXTOPS_MODEL_URI"]
        == "models:/reviews-sentiment/7"
        == model_uri("reviews-sentiment", "7")
    )
    assert env["MLFLOW_TRACKING_URI"] == "http://mlflow:5000"
    assert env["TEXTOPS_MAX_BATCH_SIZE"] == "32" and env["TEXTOPS_MAX_LATENCY_MS"] == "20"
    assert env["MLFLOW_S3_ENDPOINT_URL"] == "http://minio:9000"
    assert container["image"] == "reg.example/serving:1"
    assert container["ports"] == [{"name": "http", "containerPort": 3000, "protocol": "TCP"}]
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    assert container["livenessProbe"]["httpGet"] == {"path": "/livez", "port": "http"}
    # a deleted pod answers while its endpoint leaves kube-proxy, then drains
    assert container["lifecycle"] == {"preStop": {"sleep": {"seconds": 5}}}
    assert pod["terminationGracePeriodSeconds"] > 5
    assert container["resources"] == {
        "requests": {"cpu": "250m", "memory": "512Mi"},
        "limits": {"memory": "1Gi"},
    }
    assert "envFrom" not in container
    _assert_hardened(pod)
    annotations = body["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/scrape"] == "true"
    assert annotations["prometheus.io/port"] == "3000"
    assert annotations["prometheus.io/path"] == "/metrics"


def test_deployment_rollout_settings_and_selector() -> None:
    body = build_deployment(_mdep(rollout={"progressDeadlineSeconds": 120}), CONFIG, "7")
    spec = body["spec"]
    assert spec["progressDeadlineSeconds"] == 120
    assert spec["strategy"]["rollingUpdate"] == {"maxSurge": 1, "maxUnavailable": 0}
    template_labels = spec["template"]["metadata"]["labels"]
    assert spec["selector"]["matchLabels"].items() <= template_labels.items()
    assert template_labels["textops.io/model-version"] == "7"
    # the selector never contains the version: it must not change between rollouts
    assert build_deployment(_mdep(), CONFIG, "8")["spec"]["selector"] == spec["selector"]


def test_spec_overrides_config() -> None:
    mdep = _mdep(
        serving={
            "image": "mine:2",
            "replicas": 3,
            "resources": {"requests": {"cpu": 2}, "limits": {"cpu": "3"}},
        },
        credentialsSecret="creds",
    )
    body = build_deployment(mdep, CONFIG, "1")
    (container,) = body["spec"]["template"]["spec"]["containers"]
    assert container["image"] == "mine:2" and body["spec"]["replicas"] == 3
    assert container["resources"]["requests"] == {"cpu": "2", "memory": "512Mi"}
    assert container["resources"]["limits"] == {"cpu": "3", "memory": "1Gi"}
    assert container["envFrom"] == [{"secretRef": {"name": "creds"}}]


def test_owner_reference_makes_the_resource_the_controller() -> None:
    for body in (
        build_deployment(_mdep(), CONFIG, "7"),
        build_service(_mdep(), CONFIG),
        build_retraining_job(_mdep(), CONFIG, TRIGGER),
    ):
        (ref,) = body["metadata"]["ownerReferences"]
        assert ref == {
            "apiVersion": "textops.io/v1alpha1",
            "kind": "ModelDeployment",
            "name": "reviews",
            "uid": "uid-1",
            "controller": True,
            "blockOwnerDeletion": True,
        }
    assert "ownerReferences" not in build_service(_mdep(uid=None), CONFIG)["metadata"]


def test_service_selects_the_serving_pods() -> None:
    mdep = _mdep()
    body = build_service(mdep, CONFIG)
    assert body["spec"]["selector"] == selector_labels(mdep, "serving")
    assert body["spec"]["ports"] == [
        {"name": "http", "port": 3000, "targetPort": "http", "protocol": "TCP"}
    ]


def test_job_environment_carries_dataset_model_policy_and_lineage() -> None:
    mdep = _mdep(
        promotion={"metric": "log_loss", "minImprovement": -0.01, "maxRecallDrop": 0.1},
        retraining={"dataset": "s3://datasets/reviews"},
    )
    body = build_retraining_job(mdep, CONFIG, TRIGGER, serving_version="7")
    pod = body["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    env = _env(container)
    assert env["TEXTOPS_DATA_URI"] == "s3://datasets/reviews"
    assert env["TEXTOPS_MODEL_NAME"] == "reviews-sentiment"
    assert env["MLFLOW_TRACKING_URI"] == "http://mlflow:5000"
    assert env["TEXTOPS_PROMOTION_METRIC"] == "log_loss"
    assert float(env["TEXTOPS_MIN_IMPROVEMENT"]) == -0.01
    assert float(env["TEXTOPS_MAX_RECALL_DROP"]) == 0.1
    assert env["TEXTOPS_TRIGGER"] == "drift" and env["TEXTOPS_TRIGGER_ID"] == TRIGGER.id
    assert env["TEXTOPS_MODELDEPLOYMENT"] == "ml/reviews"
    assert env["TEXTOPS_SERVING_VERSION"] == "7"
    assert env["TEXTOPS_IMAGE_TAG"] == container["image"] == "reg.example/training:1"
    assert env["TEXTOPS_HOME"].startswith("/tmp/")
    assert container["resources"] == {
        "requests": {"cpu": "1", "memory": "2Gi"},
        "limits": {"memory": "4Gi"},
    }
    assert pod["restartPolicy"] == "Never"
    _assert_hardened(pod)
    spec = body["spec"]
    assert (
        spec["backoffLimit"],
        spec["activeDeadlineSeconds"],
        spec["ttlSecondsAfterFinished"],
    ) == (
        1,
        7200,
        86400,
    )
    assert body["metadata"]["annotations"]["textops.io/trigger-id"] == TRIGGER.id


def test_job_defaults_to_the_operator_dataset() -> None:
    body = build_retraining_job(_mdep(), CONFIG, TRIGGER)
    env = _env(body["spec"]["template"]["spec"]["containers"][0])
    assert env["TEXTOPS_DATA_URI"] == "s3://datasets/default"
    assert "TEXTOPS_SERVING_VERSION" not in env


@pytest.mark.parametrize("name", ["r", "reviews", "a" * 52, "ab-" * 17 + "c"])
def test_job_names_are_deterministic_and_fit_63(name: str) -> None:
    mdep = _mdep(name=name)
    first = job_name(mdep, TRIGGER)
    assert first == job_name(mdep, TRIGGER)
    assert len(first) <= 63 and first.endswith(JOB_INFIX + TRIGGER.id[:10])
    assert "--" not in first.replace(JOB_INFIX, "-")
    other = Trigger("manual", "fedcba9876543210", "")
    assert job_name(mdep, other) != first


def test_builders_are_pure_and_deterministic() -> None:
    mdep = _mdep()
    a = json.dumps(build_deployment(mdep, CONFIG, "7"), sort_keys=True)
    b = json.dumps(build_deployment(mdep, CONFIG, "7"), sort_keys=True)
    assert a == b


def test_config_from_env() -> None:
    config = load_config(
        {
            "TEXTOPS_SERVING_IMAGE": "s:1",
            "TEXTOPS_TRAINING_IMAGE": "t:1",
            "TEXTOPS_PROMETHEUS_URL": "http://prom:9090",
            "MLFLOW_TRACKING_URI": "http://mlflow:5000",
            "MLFLOW_S3_ENDPOINT_URL": "http://minio:9000",
            "TEXTOPS_HISTORY_LIMIT": "5",
        }
    )
    assert (config.serving_image, config.training_image) == ("s:1", "t:1")
    assert config.prometheus_url == "http://prom:9090"
    assert config.s3_endpoint == "http://minio:9000" and config.history_limit == 5
    defaults = load_config({})
    assert defaults == Config()
    with pytest.raises(ValueError, match="TEXTOPS_IMAGE_PULL_POLICY"):
        load_config({"TEXTOPS_IMAGE_PULL_POLICY": "Sometimes"})
    with pytest.raises(ValueError, match="TEXTOPS_HISTORY_LIMIT"):
        load_config({"TEXTOPS_HISTORY_LIMIT": "51"})


def test_workload_placement_reaches_serving_pods_and_job_pods() -> None:
    """An admin's nodeSelector and tolerations (operator env) land on every pod it creates."""
    toleration = {"key": "pool", "operator": "Equal", "value": "models", "effect": "NoSchedule"}
    config = load_config(
        {
            "TEXTOPS_WORKLOAD_NODE_SELECTOR": '{"pool": "models"}',
            "TEXTOPS_WORKLOAD_TOLERATIONS": json.dumps([toleration]),
        }
    )
    mdep = _mdep()
    pods = (
        build_deployment(mdep, config, "7")["spec"]["template"]["spec"],
        build_retraining_job(mdep, config, TRIGGER)["spec"]["template"]["spec"],
    )
    for pod in pods:
        assert pod["nodeSelector"] == {"pool": "models"}
        assert pod["tolerations"] == [toleration]
    for pod in (
        build_deployment(mdep, CONFIG, "7")["spec"]["template"]["spec"],
        build_retraining_job(mdep, CONFIG, TRIGGER)["spec"]["template"]["spec"],
    ):
        assert "nodeSelector" not in pod and "tolerations" not in pod


@pytest.mark.parametrize(
    ("var", "value", "message"),
    [
        ("TEXTOPS_WORKLOAD_NODE_SELECTOR", "pool=models", "is not JSON"),
        ("TEXTOPS_WORKLOAD_NODE_SELECTOR", '{"pool": 1}', "JSON object of strings"),
        ("TEXTOPS_WORKLOAD_TOLERATIONS", '{"key": "pool"}', "JSON list of tolerations"),
        (
            "TEXTOPS_WORKLOAD_TOLERATIONS",
            '[{"keys": "pool"}]',
            r"unknown toleration fields \['keys'\]",
        ),
    ],
)
def test_workload_placement_refuses_what_kubernetes_would(
    var: str, value: str, message: str
) -> None:
    with pytest.raises(ValueError, match=f"{var}.*{message}|{message}"):
        load_config({var: value})
