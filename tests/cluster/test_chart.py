"""The Helm chart against the real control plane and the dev cluster's real node.

1. Every values scenario of charts/textops/ci/ (and values-kind.yaml), rendered with
   `helm template`, is accepted by the API server: server-side apply as a dry run with strict
   field validation (unknown or duplicate fields fail), admission and the CRD's own schema.
2. `helm install` of the whole stack on the real node (values-dev.yaml: the project's images
   and the stand-ins; ephemeral-values.yaml: no volumes; the placement overlay a user with a
   tainted node pool writes) with `--wait`: every object is created, the CRD is Established,
   each Deployment (the operator's first) becomes Available with its containers running, the
   bucket hook Job completes; a `helm upgrade` keeps the generated passwords and restarts the
   operator with the new setting; `helm uninstall` keeps the CRD and the Secrets
   (resource-policy keep) and removes the rest, cluster-scoped RBAC included. Grafana is off
   in the dev values (no image of it can be built here): its objects are proven by the
   render tests (tests/unit/test_chart_render.py) and the dry runs of (1).
3. Every manifests/examples/*.yaml passes admission of the CRD the chart installs.
4. With the Prometheus Operator's kinds served (schema-less stand-in CRDs: detection only
   looks at discovery), `helm install` creates the PodMonitor and the PrometheusRule.

The CRD may already exist in this session (tests/cluster/test_crd.py and test_operator.py
apply manifests/crd/ with kubectl): the install takes it over with --take-ownership, the path
docs/install.md gives to people moving from the plain manifests to the chart.
"""

from __future__ import annotations

import base64
import subprocess
import uuid
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client

from tests.plugins.cluster import gone, wait_until
from tests.unit.test_chart_render import CHART, SCENARIOS
from textops.devcluster import Cluster, access
from textops.devcluster.node_config import NODE_NAME
from textops.packaging import images

pytestmark = [pytest.mark.cluster, pytest.mark.timeout(900)]

Kubectl = Callable[..., subprocess.CompletedProcess[str]]
CRD_NAME = "modeldeployments.textops.io"
DEPLOYMENTS = ("operator", "mlflow", "mysql", "minio", "prometheus")  # Grafana: off in values-dev


def helm(cluster: Cluster, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """Run the pinned helm against the dev cluster; fail the test with its output."""
    try:
        return access.helm(cluster, *args, timeout=timeout)
    except access.ClusterAccessError as exc:
        pytest.fail(str(exc), pytrace=False)


def _overrides(values: Path, namespace: str) -> list[str]:
    """Point a scenario's namespaces at the test's (the others do not exist here)."""
    text = values.read_text(encoding="utf-8")
    out: list[str] = []
    if "watchNamespaces" in text:
        out += ["--set", f"operator.watchNamespaces={{{namespace}}}"]
    if "exposeModel" in text:
        out += ["--set", f"exposeModel.namespace={namespace}"]
    return out


@pytest.mark.parametrize("values", SCENARIOS, ids=lambda p: p.name)
def test_rendered_scenario_is_accepted_by_the_api_server(
    k8s_cluster: Cluster, kubectl: Kubectl, k8s_namespace: str, values: Path, tmp_path: Path
) -> None:
    release = f"d{uuid.uuid4().hex[:6]}"
    rendered = helm(
        k8s_cluster,
        "template",
        release,
        str(CHART),
        "--namespace",
        k8s_namespace,
        "--values",
        str(values),
        *_overrides(values, k8s_namespace),
    ).stdout
    manifest = tmp_path / "rendered.yaml"
    manifest.write_text(rendered, encoding="utf-8")
    kinds = {doc["kind"] for doc in yaml.safe_load_all(rendered) if doc}
    assert "Deployment" in kinds
    # --force-conflicts: a dry run may overrule the field managers of objects other tests
    # created (the shared CRD); nothing is written.
    done = kubectl(
        "apply",
        "--server-side",
        "--force-conflicts",
        "--field-manager=chart-dry-run",
        "--dry-run=server",
        "--validate=strict",
        "-f",
        str(manifest),
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("(server dry run)") == len(
        [d for d in yaml.safe_load_all(rendered) if d]
    )


def _available(apps: client.AppsV1Api, namespace: str, name: str) -> bool:
    deployment = apps.read_namespaced_deployment(name, namespace)
    conditions = (deployment.status.conditions if deployment.status else None) or []
    return any(c.type == "Available" and c.status == "True" for c in conditions)


def _secret_value(core: client.CoreV1Api, namespace: str, name: str, key: str) -> str:
    data = core.read_namespaced_secret(name, namespace).data or {}
    return base64.b64decode(data[key]).decode()


def test_helm_install_upgrade_uninstall(
    k8s_cluster: Cluster,
    kube_api: Any,
    k8s_namespace: str,
    built_images: dict[str, images.Built],
    tmp_path: Path,
) -> None:
    release = f"r{uuid.uuid4().hex[:6]}"
    base = f"{release}-textops"
    # the builds the node imported (k8s_cluster), named as make cluster-demo names them
    content_tags = {name: built.content_tag for name, built in built_images.items()}
    common = [
        "--namespace",
        k8s_namespace,
        *access.dev_values(tmp_path, k8s_namespace, 10, content_tags),
        "--values",
        str(CHART / "ci" / "ephemeral-values.yaml"),
    ]
    helm(
        k8s_cluster,
        "install",
        release,
        str(CHART),
        *common,
        "--wait",
        "--timeout=8m",
        "--take-ownership",
        "--force-conflicts",
        timeout=600,
    )
    apps, core = client.AppsV1Api(kube_api), client.CoreV1Api(kube_api)
    rbac = client.RbacAuthorizationV1Api(kube_api)
    ext = client.ApiextensionsV1Api(kube_api)

    # --wait returned: every Deployment is Available on the real node, the operator's first,
    # each pod's containers running the images the node holds.
    for component in DEPLOYMENTS:
        assert _available(apps, k8s_namespace, f"{base}-{component}"), component
    pods = core.list_namespaced_pod(
        k8s_namespace, label_selector=f"app.kubernetes.io/instance={release}"
    ).items
    running = [p for p in pods if p.status.phase == "Running"]
    assert {p.metadata.labels["app.kubernetes.io/component"] for p in running} >= set(DEPLOYMENTS)
    for pod in running:
        assert pod.spec.node_name == NODE_NAME
        assert all(c.ready and c.state.running for c in pod.status.container_statuses)
    operator_pods = [
        p for p in running if p.metadata.labels["app.kubernetes.io/component"] == "operator"
    ]
    assert len(operator_pods) == 1
    assert operator_pods[0].spec.service_account_name == f"{base}-operator"

    crd = ext.read_custom_resource_definition(CRD_NAME)
    assert any(c.type == "Established" and c.status == "True" for c in crd.status.conditions)
    assert crd.metadata.annotations["meta.helm.sh/release-name"] == release
    role = rbac.read_cluster_role(f"{base}-operator")
    assert {r.resources[0] for r in role.rules} >= {"modeldeployments", "deployments", "jobs"}
    # the placement values confine the operator to this namespace: its ClusterRole's rights
    # come from a RoleBinding here, and no ClusterRoleBinding exists
    binding = rbac.read_namespaced_role_binding(f"{base}-operator", k8s_namespace)
    assert binding.role_ref.kind == "ClusterRole" and binding.role_ref.name == f"{base}-operator"
    assert binding.subjects[0].namespace == k8s_namespace
    assert gone(lambda: rbac.read_cluster_role_binding(f"{base}-operator"))
    assert rbac.read_cluster_role(f"{base}-prometheus").rules[0].resources == ["pods"]
    for name in (f"{base}-mlflow", f"{base}-prometheus", f"{base}-minio"):
        assert core.read_namespaced_service(name, k8s_namespace).spec.cluster_ip
    # The bucket hook Job's container made the buckets in the S3 stand-in, and the Job was
    # deleted (hook-succeeded).
    assert gone(
        lambda: client.BatchV1Api(kube_api).read_namespaced_job(
            f"{base}-minio-buckets", k8s_namespace
        )
    )

    # Generated passwords survive an upgrade (looked up from the live Secrets).
    password = _secret_value(core, k8s_namespace, f"{base}-mysql", "mysql-password")
    s3_key = _secret_value(core, k8s_namespace, f"{base}-minio", "root-password")
    helm(
        k8s_cluster,
        "upgrade",
        release,
        str(CHART),
        *common,
        "--set",
        "operator.config.historyLimit=30",
        "--wait",
        "--timeout=8m",
        timeout=600,
    )
    assert _secret_value(core, k8s_namespace, f"{base}-mysql", "mysql-password") == password
    assert _secret_value(core, k8s_namespace, f"{base}-minio", "root-password") == s3_key
    operator = apps.read_namespaced_deployment(f"{base}-operator", k8s_namespace)
    env = {e.name: e.value for e in operator.spec.template.spec.containers[0].env}
    assert env["TEXTOPS_HISTORY_LIMIT"] == "30"
    wait_until(
        "operator Available after the upgrade",
        lambda: _available(apps, k8s_namespace, f"{base}-operator"),
        timeout=120,
    )

    helm(k8s_cluster, "uninstall", release, "--namespace", k8s_namespace, "--wait", timeout=300)
    assert gone(lambda: rbac.read_cluster_role(f"{base}-operator"))
    assert gone(lambda: rbac.read_namespaced_role_binding(f"{base}-operator", k8s_namespace))
    assert gone(lambda: apps.read_namespaced_deployment(f"{base}-operator", k8s_namespace))
    assert ext.read_custom_resource_definition(CRD_NAME)  # kept: resource-policy keep
    assert core.read_namespaced_secret(f"{base}-mysql", k8s_namespace)  # kept with the data


def test_examples_are_accepted_by_the_crd_the_chart_installs(
    k8s_cluster: Cluster, kubectl: Kubectl, k8s_namespace: str, tmp_path: Path
) -> None:
    """Every manifests/examples/*.yaml passes admission (schema, CEL rules) of the chart's CRD."""
    crd = helm(
        k8s_cluster,
        "template",
        "textops",
        str(CHART),
        "--show-only",
        "templates/crd/modeldeployments.textops.io.yaml",
    ).stdout
    (tmp_path / "crd.yaml").write_text(crd, encoding="utf-8")
    kubectl(
        "apply",
        "--server-side",
        "--force-conflicts",
        "--field-manager=chart-test",
        "-f",
        str(tmp_path / "crd.yaml"),
        check=True,
    )
    kubectl("wait", "--for=condition=Established", f"crd/{CRD_NAME}", check=True)
    for example in sorted((CHART.parents[1] / "manifests" / "examples").glob("*.yaml")):
        body = yaml.safe_load(example.read_text(encoding="utf-8"))
        body["metadata"]["namespace"] = k8s_namespace  # the examples' own do not exist here
        path = tmp_path / example.name
        path.write_text(yaml.safe_dump(body), encoding="utf-8")
        done = wait_until(
            f"{example.name} accepted (the CRD's endpoint is served)",
            partial(_dry_run_ok, kubectl, path),
            timeout=30,
        )
        assert done


def _dry_run_ok(kubectl: Kubectl, path: Path) -> bool:
    done = kubectl("apply", "--dry-run=server", "--validate=strict", "-f", str(path))
    not_served = ("no matches for kind", "could not find the requested resource")
    if done.returncode != 0 and any(text in done.stderr for text in not_served):
        return False  # the CRD's endpoint is not served yet: poll again
    assert done.returncode == 0, done.stderr
    return True


def _stand_in_crd(kind: str, plural: str) -> dict[str, Any]:
    """A schema-less CRD of the Prometheus Operator's group: enough for API discovery, which
    is all the chart's detection (.Capabilities.APIVersions) looks at. The real CRDs are
    large upstream files this test does not need."""
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.monitoring.coreos.com"},
        "spec": {
            "group": "monitoring.coreos.com",
            "scope": "Namespaced",
            "names": {"kind": kind, "plural": plural, "singular": kind.lower()},
            "versions": [
                {
                    "name": "v1",
                    "served": True,
                    "storage": True,
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "x-kubernetes-preserve-unknown-fields": True,
                        }
                    },
                }
            ],
        },
    }


def test_prometheus_operator_objects_appear_where_their_kinds_are_served(
    k8s_cluster: Cluster, kube_api: Any, kubectl: Kubectl, k8s_namespace: str, tmp_path: Path
) -> None:
    stand_ins = tmp_path / "monitoring-crds.yaml"
    stand_ins.write_text(
        yaml.safe_dump_all(
            [
                _stand_in_crd("PodMonitor", "podmonitors"),
                _stand_in_crd("PrometheusRule", "prometheusrules"),
            ]
        ),
        encoding="utf-8",
    )
    kubectl("apply", "-f", str(stand_ins), check=True)
    release = f"m{uuid.uuid4().hex[:6]}"
    try:
        wait_until(
            "monitoring.coreos.com/v1 PodMonitor and PrometheusRule in discovery",
            lambda: (
                {"podmonitors", "prometheusrules"}
                <= set(
                    kubectl("api-resources", "--api-group=monitoring.coreos.com", "-o", "name")
                    .stdout.replace(".monitoring.coreos.com", "")
                    .split()
                )
            ),
            timeout=60,
        )
        helm(
            k8s_cluster,
            "install",
            release,
            str(CHART),
            "--namespace",
            k8s_namespace,
            "--values",
            str(CHART / "ci" / "operator-only-values.yaml"),
            "--set",
            "crds.install=false",
            "--set",
            "prometheusOperator.podMonitor.labels.release=kube-prometheus-stack",
        )
        custom = client.CustomObjectsApi(kube_api)
        base = f"{release}-textops"
        monitor = custom.get_namespaced_custom_object(
            "monitoring.coreos.com", "v1", k8s_namespace, "podmonitors", f"{base}-serving"
        )
        assert monitor["metadata"]["labels"]["release"] == "kube-prometheus-stack"
        assert monitor["spec"]["selector"]["matchLabels"]["app.kubernetes.io/name"] == (
            "textops-model"
        )
        rule = custom.get_namespaced_custom_object(
            "monitoring.coreos.com", "v1", k8s_namespace, "prometheusrules", f"{base}-rules"
        )
        files = sorted((CHART / "rules").glob("*.yaml"))
        wanted = [
            group["name"]
            for path in files
            for group in yaml.safe_load(path.read_text(encoding="utf-8"))["groups"]
        ]
        assert [group["name"] for group in rule["spec"]["groups"]] == wanted
        helm(k8s_cluster, "uninstall", release, "--namespace", k8s_namespace, "--wait")
    finally:
        kubectl("delete", "-f", str(stand_ins), "--ignore-not-found", "--wait=true")
