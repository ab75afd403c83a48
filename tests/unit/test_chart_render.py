"""The Helm chart (charts/textops), rendered offline with the pinned helm binary.

`helm lint --strict` and `helm template` for every values scenario in charts/textops/ci/ plus
values-kind.yaml; then properties every rendered object must have (standard labels, non-root
read-only containers, credentials only from Secrets), the wiring between components, the
Prometheus configuration checked by the real `promtool`, the dashboards and rule files
provisioned from their folders (also when those are empty), the Prometheus Operator objects
only where their kinds are served, and the plain manifests under manifests/ being exactly what
scripts/render-manifests.py renders from the chart. No cluster: tests/cluster/test_chart.py
applies the same scenarios to the real API server.
"""

from __future__ import annotations

import functools
import importlib.util
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from textops.devcluster.tools import cache_root, versions
from textops.packaging import recipes

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "textops"
SCENARIOS = [
    *sorted((CHART / "ci").glob("*-values.yaml")),
    CHART / "values-kind.yaml",
    CHART / "values-dev.yaml",
]
POD_KINDS = ("Deployment", "Job")
MONITORING_APIS = ("monitoring.coreos.com/v1/PodMonitor", "monitoring.coreos.com/v1/PrometheusRule")


def helm_binary() -> Path:
    """The pinned helm of the dev cluster (`make cluster-tools`); skip when not built yet."""
    path = cache_root() / f"helm-{versions()['HELM_VERSION']}" / "helm"
    if not path.is_file():
        pytest.skip(f"helm is not built ({path}): run `make cluster-tools`")
    return path


def helm(*args: str, chart: Path = CHART, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run helm on the chart (`chart` replaces the CHART argument)."""
    argv = [str(helm_binary()), *(str(chart) if a == "CHART" else a for a in args)]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False)
    if check and done.returncode != 0:
        pytest.fail(f"{' '.join(argv[1:])} failed:\n{done.stderr}", pytrace=False)
    return done


def render(
    *extra: str, values: Path | None = None, namespace: str = "textops", chart: Path = CHART
) -> list[dict[str, Any]]:
    """`helm template` of release "textops" as a list of objects (empty documents dropped)."""
    args = ("template", "textops", "CHART", "--namespace", namespace, *extra)
    if values is not None:
        args += ("--values", str(values))
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    return [doc for doc in yaml.load_all(_template(args, chart), Loader=loader) if doc]


@functools.cache
def _template(args: tuple[str, ...], chart: Path) -> str:
    """Rendered text, once per argument list: several tests read the same scenario."""
    return helm(*args, chart=chart).stdout


def find(objects: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    for obj in objects:
        if obj["kind"] == kind and obj["metadata"]["name"] == name:
            return obj
    names = [(o["kind"], o["metadata"]["name"]) for o in objects]
    raise AssertionError(f"no {kind} {name} in {names}")


def pod_spec(obj: dict[str, Any]) -> dict[str, Any]:
    spec: dict[str, Any] = obj["spec"]["template"]["spec"]
    return spec


def env_of(container: dict[str, Any]) -> dict[str, Any]:
    """name -> value, or name -> {"secret": name, "key": key} for secretKeyRef variables."""
    out: dict[str, Any] = {}
    for var in container.get("env", []):
        ref = var.get("valueFrom", {}).get("secretKeyRef")
        out[var["name"]] = {"secret": ref["name"], "key": ref["key"]} if ref else var.get("value")
    return out


def by_kind(objects: list[dict[str, Any]]) -> dict[str, list[str]]:
    kinds: dict[str, list[str]] = {}
    for obj in objects:
        kinds.setdefault(obj["kind"], []).append(obj["metadata"]["name"])
    return kinds


# --------------------------------------------------------------------------- lint and schema


@pytest.mark.parametrize("values", SCENARIOS, ids=lambda p: p.name)
def test_helm_lint_is_clean(values: Path) -> None:
    done = helm("lint", "--strict", "CHART", "--values", str(values))
    assert "0 chart(s) failed" in done.stdout, done.stdout


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ("operator.config.historyLimit=0", "/operator/config/historyLimit"),
        ("operator.typo=1", "additional properties 'typo' not allowed"),
        ("mysql.persistence.size=lots", "/mysql/persistence/size"),
        ("grafana.service.nodePort=80", "/grafana/service/nodePort"),
        ("prometheus.retention=forever", "/prometheus/retention"),
    ],
)
def test_values_schema_refuses_bad_values(setting: str, message: str) -> None:
    done = helm("template", "x", "CHART", "--set", setting, check=False)
    assert done.returncode != 0
    assert message in done.stderr


def test_mlflow_without_a_backend_store_is_refused_with_a_message() -> None:
    off = ("--set", "mysql.enabled=false", "--set", "labelStore.enabled=false")
    done = helm("template", "x", "CHART", *off, check=False)
    assert done.returncode != 0
    assert "mlflow.backendStore.existingSecret" in done.stderr


def test_a_label_store_without_a_database_is_refused_with_a_message() -> None:
    done = helm(
        "template",
        "x",
        "CHART",
        "--set",
        "mysql.enabled=false",
        "--set",
        "mlflow.backendStore.existingSecret=b",
        check=False,
    )
    assert done.returncode != 0
    assert "labelStore.existingSecret" in done.stderr


# --------------------------------------------------------------------------- every object


@pytest.mark.parametrize("values", SCENARIOS, ids=lambda p: p.name)
def test_every_object_has_the_standard_labels(values: Path) -> None:
    for obj in render(values=values):
        labels = obj["metadata"].get("labels", {})
        where = f"{obj['kind']} {obj['metadata']['name']}"
        assert labels.get("app.kubernetes.io/name") == "textops", where
        assert labels.get("app.kubernetes.io/instance") == "textops", where
        assert labels.get("app.kubernetes.io/managed-by") == "Helm", where
        assert labels.get("app.kubernetes.io/part-of") == "textops", where
        assert labels.get("helm.sh/chart", "").startswith("textops-"), where
        assert labels.get("app.kubernetes.io/component"), where


@pytest.mark.parametrize("values", SCENARIOS, ids=lambda p: p.name)
def test_every_container_is_non_root_and_read_only(values: Path) -> None:
    pods = [o for o in render(values=values) if o["kind"] in POD_KINDS]
    assert pods
    for obj in pods:
        spec = pod_spec(obj)
        where = f"{obj['kind']} {obj['metadata']['name']}"
        assert spec["securityContext"]["runAsNonRoot"] is True, where
        assert spec["securityContext"]["runAsUser"] > 0, where
        assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}, where
        for container in spec["containers"] + spec.get("initContainers", []):
            context = container["securityContext"]
            assert context["readOnlyRootFilesystem"] is True, where
            assert context["allowPrivilegeEscalation"] is False, where
            assert context["capabilities"] == {"drop": ["ALL"]}, where
            assert container["resources"]["requests"], where
            # pinned: a tag other than latest, or a digest
            image = container["image"]
            assert "@sha256:" in image or (":" in image and not image.endswith(":latest")), where


@pytest.mark.parametrize("values", SCENARIOS, ids=lambda p: p.name)
def test_credentials_come_only_from_secrets(values: Path) -> None:
    objects = render(values=values)
    for obj in (o for o in objects if o["kind"] in POD_KINDS):
        for container in pod_spec(obj)["containers"]:
            for name, value in env_of(container).items():
                names_a_secret = name.endswith("_SECRET_NAME")  # a name, not a credential
                if any(w in name for w in ("PASSWORD", "SECRET", "TOKEN")) and not names_a_secret:
                    assert isinstance(value, dict), f"{obj['metadata']['name']}: {name} is plain"
                if isinstance(value, str):
                    # a URI may carry a password only as a $(VAR) reference to a secret variable
                    assert "://" not in value or "@" not in value or "$(" in value, (name, value)
    for secret in (o for o in objects if o["kind"] == "Secret"):
        assert secret["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"


# --------------------------------------------------------------------------- scenarios


def test_defaults_deploy_the_whole_stack_wired_together() -> None:
    objects = render()
    kinds = by_kind(objects)
    assert sorted(kinds["Deployment"]) == [
        "textops-grafana",
        "textops-minio",
        "textops-mlflow",
        "textops-mysql",
        "textops-operator",
        "textops-prometheus",
    ]
    assert kinds["CustomResourceDefinition"] == ["modeldeployments.textops.io"]
    assert sorted(kinds["PersistentVolumeClaim"]) == [
        "textops-minio",
        "textops-mysql",
        "textops-prometheus",
    ]
    assert "PodMonitor" not in kinds and "PrometheusRule" not in kinds

    operator = env_of(pod_spec(find(objects, "Deployment", "textops-operator"))["containers"][0])
    assert operator["MLFLOW_TRACKING_URI"] == "http://textops-mlflow.textops.svc:5000"
    assert operator["TEXTOPS_PROMETHEUS_URL"] == "http://textops-prometheus.textops.svc:9090"
    assert operator["TEXTOPS_S3_ENDPOINT"] == "http://textops-minio.textops.svc:9000"
    assert operator["TEXTOPS_SERVING_IMAGE"] == "textops/serving:0.1.0"

    mlflow = env_of(pod_spec(find(objects, "Deployment", "textops-mlflow"))["containers"][0])
    assert mlflow["MYSQL_PASSWORD"] == {"secret": "textops-mysql", "key": "mysql-password"}
    assert mlflow["MLFLOW_BACKEND_STORE_URI"] == (
        "mysql+pymysql://$(MYSQL_USER):$(MYSQL_PASSWORD)@textops-mysql.textops.svc:3306/mlflow"
    )
    assert mlflow["AWS_SECRET_ACCESS_KEY"] == {"secret": "textops-minio", "key": "root-password"}
    assert mlflow["MLFLOW_S3_ENDPOINT_URL"] == "http://textops-minio.textops.svc:9000"
    assert "textops-mlflow.*" in mlflow["MLFLOW_SERVER_ALLOWED_HOSTS"].split(",")

    job = find(objects, "Job", "textops-minio-buckets")
    assert job["metadata"]["annotations"]["helm.sh/hook"] == "post-install,post-upgrade"
    assert env_of(pod_spec(job)["containers"][0])["BUCKETS"] == "mlflow,datasets"

    grafana_sources = find(objects, "ConfigMap", "textops-grafana-datasources")
    source = yaml.safe_load(grafana_sources["data"]["prometheus.yaml"])["datasources"][0]
    assert source["url"] == "http://textops-prometheus.textops.svc:9090"
    assert source["uid"] == "prometheus"


def test_operator_only_renders_the_operator_and_its_crd() -> None:
    objects = render(values=CHART / "ci" / "operator-only-values.yaml")
    assert by_kind(objects) == {
        "ServiceAccount": ["textops-operator"],
        "ClusterRole": ["textops-operator"],
        "ClusterRoleBinding": ["textops-operator"],
        "CustomResourceDefinition": ["modeldeployments.textops.io"],
        "Deployment": ["textops-operator"],
    }
    env = env_of(pod_spec(objects[-1])["containers"][0])
    assert env["MLFLOW_TRACKING_URI"] == "http://mlflow.mlflow.svc:5000"
    assert env["TEXTOPS_S3_ENDPOINT"] == "http://minio.storage.svc:9000"


def test_external_stores_use_the_given_secrets_and_confine_the_operator() -> None:
    objects = render(values=CHART / "ci" / "external-stores-values.yaml")
    kinds = by_kind(objects)
    assert "CustomResourceDefinition" not in kinds
    assert "Secret" not in kinds  # every credential is an existing Secret
    assert "ClusterRoleBinding" not in kinds
    bindings = [o for o in objects if o["kind"] == "RoleBinding"]
    assert sorted(b["metadata"]["namespace"] for b in bindings) == ["ml", "ml-staging"]
    operator = pod_spec(find(objects, "Deployment", "textops-operator"))["containers"][0]
    assert operator["args"] == ["--namespace=ml", "--namespace=ml-staging"]
    assert "TEXTOPS_PROMETHEUS_URL" not in env_of(operator)  # the operator's own default

    mlflow = pod_spec(find(objects, "Deployment", "textops-mlflow"))["containers"][0]
    env = env_of(mlflow)
    assert env["MLFLOW_BACKEND_STORE_URI"] == {
        "secret": "mlflow-backend",
        "key": "backend-store-uri",
    }
    assert mlflow["envFrom"] == [{"secretRef": {"name": "mlflow-s3"}}]
    assert "AWS_SECRET_ACCESS_KEY" not in env
    assert env["MLFLOW_S3_ENDPOINT_URL"] == "https://s3.eu-west-1.amazonaws.com"
    assert "mlflow.example.com" in env["MLFLOW_SERVER_ALLOWED_HOSTS"].split(",")
    grafana = env_of(pod_spec(find(objects, "Deployment", "textops-grafana"))["containers"][0])
    assert grafana["GF_SECURITY_ADMIN_PASSWORD"]["secret"] == "grafana-admin"


def test_kind_values_match_the_port_mappings_of_kind_config() -> None:
    """Every node port values-kind.yaml fixes is published by kind-config.yaml, and back."""
    objects = render(values=CHART / "values-kind.yaml")
    node_ports = {
        port["nodePort"]
        for obj in objects
        if obj["kind"] == "Service" and obj["spec"]["type"] == "NodePort"
        for port in obj["spec"]["ports"]
    }
    kind = yaml.safe_load((ROOT / "kind-config.yaml").read_text(encoding="utf-8"))
    mapped = {m["containerPort"]: m["hostPort"] for m in kind["nodes"][0]["extraPortMappings"]}
    assert node_ports == set(mapped)
    assert mapped == {30300: 3000, 30500: 5000, 30080: 8080, 30090: 9090}
    exposed = find(objects, "Service", "reviews-public")
    assert exposed["metadata"]["namespace"] == "default"
    assert exposed["spec"]["selector"]["app.kubernetes.io/instance"] == "reviews"


# --------------------------------------------------------------------------- Prometheus, Grafana


def _write_prometheus_config(objects: list[dict[str, Any]], folder: Path) -> Path:
    """The rendered prometheus.yml and rule files, with rule_files pointing into `folder`."""
    config = yaml.safe_load(
        find(objects, "ConfigMap", "textops-prometheus")["data"]["prometheus.yml"]
    )
    rules = folder / "rules"
    rules.mkdir()
    rendered = find(objects, "ConfigMap", "textops-prometheus-rules")["data"] or {}
    for name, text in rendered.items():
        (rules / name).write_text(text, encoding="utf-8")
    config["rule_files"] = [str(rules / "*.yaml")]
    # Debian's promtool is built without Kubernetes service discovery: check the rest (rules,
    # relabelling regexes, intervals) with a static target in its place.
    for job in config["scrape_configs"]:
        if job.pop("kubernetes_sd_configs", None):
            job["static_configs"] = [{"targets": ["pod.invalid:3000"]}]
    path = folder / "prometheus.yml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


def test_prometheus_config_is_valid_and_scrapes_the_inference_pods(tmp_path: Path) -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool is not installed: run `make system-deps`")
    objects = render()
    path = _write_prometheus_config(objects, tmp_path)
    done = subprocess.run(
        [promtool, "check", "config", str(path)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stdout + done.stderr

    config = yaml.safe_load(
        find(objects, "ConfigMap", "textops-prometheus")["data"]["prometheus.yml"]
    )
    assert config["rule_files"] == ["/etc/prometheus/rules/*.yaml"]
    serving = next(j for j in config["scrape_configs"] if j["job_name"] == "textops-serving")
    selector = serving["kubernetes_sd_configs"][0]["selectors"][0]
    assert selector["label"] == (
        "app.kubernetes.io/name=textops-model,app.kubernetes.io/component=serving"
    )
    targets = {r.get("target_label") for r in serving["relabel_configs"]}
    assert {"__address__", "__metrics_path__", "namespace", "pod", "modeldeployment"} <= targets
    # The operator's pods carry prometheus.io/{scrape,port,path}: the relabelling reads them.
    keep = serving["relabel_configs"][0]
    assert keep["action"] == "keep"
    assert keep["source_labels"] == ["__meta_kubernetes_pod_annotation_prometheus_io_scrape"]


def test_kube_state_metrics_is_scraped_when_named() -> None:
    def jobs(*extra: str) -> dict[str, Any]:
        configmap = find(render(*extra), "ConfigMap", "textops-prometheus")
        config = yaml.safe_load(configmap["data"]["prometheus.yml"])
        return {job["job_name"]: job for job in config["scrape_configs"]}

    assert "kube-state-metrics" not in jobs()
    target = "kube-state-metrics.kube-system.svc:8080"
    job = jobs("--set", f"prometheus.kubeStateMetrics={target}")["kube-state-metrics"]
    assert job["honor_labels"] is True
    assert job["static_configs"] == [{"targets": [target]}]


def test_rules_and_dashboards_are_provisioned_from_their_folders() -> None:
    objects = render(*[a for api in MONITORING_APIS for a in ("--api-versions", api)])
    rule_files = sorted(p.name for p in (CHART / "rules").glob("*.yaml"))
    rules = find(objects, "ConfigMap", "textops-prometheus-rules")["data"] or {}
    assert sorted(rules) == rule_files
    for name in rule_files:
        assert rules[name] == (CHART / "rules" / name).read_text(encoding="utf-8")

    groups = [
        group
        for name in rule_files
        for group in yaml.safe_load((CHART / "rules" / name).read_text(encoding="utf-8"))["groups"]
    ]
    prometheus_rule = find(objects, "PrometheusRule", "textops-rules")
    assert prometheus_rule["spec"]["groups"] == groups

    dashboard_files = sorted(p.name for p in (CHART / "dashboards").glob("*.json"))
    dashboards = find(objects, "ConfigMap", "textops-grafana-dashboards")["data"] or {}
    assert sorted(dashboards) == dashboard_files
    for name in dashboard_files:
        assert json.loads(dashboards[name]) == json.loads(
            (CHART / "dashboards" / name).read_text(encoding="utf-8")
        )
    provider = yaml.safe_load(
        find(objects, "ConfigMap", "textops-grafana-providers")["data"]["textops.yaml"]
    )["providers"][0]
    grafana = pod_spec(find(objects, "Deployment", "textops-grafana"))
    mounts = {m["name"]: m["mountPath"] for m in grafana["containers"][0]["volumeMounts"]}
    assert mounts["dashboards"] == provider["options"]["path"]

    podmonitor = find(objects, "PodMonitor", "textops-serving")
    assert podmonitor["spec"]["selector"]["matchLabels"] == {
        "app.kubernetes.io/name": "textops-model",
        "app.kubernetes.io/component": "serving",
    }
    assert podmonitor["spec"]["namespaceSelector"] == {"any": True}


def test_empty_rule_and_dashboard_folders_still_render(tmp_path: Path) -> None:
    chart = tmp_path / "textops"
    shutil.copytree(CHART, chart, ignore=shutil.ignore_patterns("*.json", "rules"))
    (chart / "rules").mkdir()
    objects = render(*[a for api in MONITORING_APIS for a in ("--api-versions", api)], chart=chart)
    assert not find(objects, "ConfigMap", "textops-prometheus-rules").get("data")
    assert not find(objects, "ConfigMap", "textops-grafana-dashboards").get("data")
    assert find(objects, "PrometheusRule", "textops-rules")["spec"]["groups"] == []


# --------------------------------------------------------------------------- plain manifests


def test_plain_manifests_are_generated_from_the_chart() -> None:
    """manifests/{crd,rbac,operator} equal what scripts/render-manifests.py renders now."""
    done = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "render-manifests.py"), "--check"],
        capture_output=True,
        text=True,
        timeout=120,
        env={"HELM": str(helm_binary()), "PATH": "/usr/bin:/bin"},
        check=False,
    )
    assert done.returncode == 0, (
        "manifests/ is out of date with charts/textops; run `python scripts/render-manifests.py`"
        f"\n{done.stdout}{done.stderr}"
    )


def test_the_kustomization_installs_every_generated_manifest() -> None:
    """`kubectl apply -k manifests/` installs CRD, RBAC and operator: exactly the generated
    files (the cluster tests apply it for real)."""
    spec = importlib.util.spec_from_file_location(
        "render", ROOT / "scripts" / "render-manifests.py"
    )
    assert spec is not None and spec.loader is not None
    render_manifests = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(render_manifests)
    kustomization = yaml.safe_load((ROOT / "manifests" / "kustomization.yaml").read_text())
    assert sorted(kustomization["resources"]) == sorted(render_manifests.OUTPUTS)


def test_plain_crd_is_the_chart_crd() -> None:
    """The CRD the cluster tests apply from manifests/ is the one `helm install` creates."""
    from_chart = render("--show-only", "templates/crd/modeldeployments.textops.io.yaml")[0]
    plain = yaml.safe_load(
        (ROOT / "manifests" / "crd" / "modeldeployments.textops.io.yaml").read_text(
            encoding="utf-8"
        )
    )
    assert plain["spec"] == from_chart["spec"]
    assert from_chart["metadata"]["annotations"] == {"helm.sh/resource-policy": "keep"}


# --------------------------------------------------------------------------- images


DOCKERFILES = [
    ROOT / "operator" / "Dockerfile",
    ROOT / "training" / "Dockerfile",
    ROOT / "images" / "mlflow" / "Dockerfile",
    ROOT / "bentos" / "classifier" / "Dockerfile",
]


@pytest.mark.parametrize("path", DOCKERFILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_dockerfiles_default_to_a_pinned_base_and_run_as_a_numeric_non_root_user(
    path: Path,
) -> None:
    """The base is a build argument whose default (for users) is a pinned Python image."""
    lines = [line.strip() for line in path.read_text(encoding="utf-8").splitlines()]
    defaults = [line.partition("=")[2] for line in lines if line.startswith("ARG BASE_IMAGE=")]
    assert len(defaults) == 1, "one ARG BASE_IMAGE with a default"
    tag = defaults[0].partition(":")[2]
    # python:3.11.14-slim-bookworm: major.minor.patch and the Debian release
    assert tag.count(".") >= 2 and "latest" not in tag, defaults[0]
    froms = [line.split() for line in lines if line.startswith("FROM ")]
    stages = {words[3] for words in froms if len(words) == 4 and words[2] == "AS"}
    bases = [words[1] for words in froms]
    assert bases and all(base == "${BASE_IMAGE}" or base in stages for base in bases), bases
    assert bases[-1] == "${BASE_IMAGE}"  # the image users get starts from the base itself
    users = [line.split()[1] for line in lines if line.startswith("USER ")]
    assert users and users[-1].isdigit() and int(users[-1]) >= 1000, users


@pytest.mark.parametrize("path", DOCKERFILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_dockerfiles_install_only_the_locked_wheels(path: Path) -> None:
    """No version is written by hand: each Dockerfile runs images/install-locked.sh, which
    installs requirements.txt (exported from uv.lock by textops.packaging.images) from the
    context's wheels, then (except MLflow's image) the textops wheel, each with no index and
    no dependency resolution of its own, and checks that the result is consistent. The
    operator's image installs textops without its dependencies (recipes: the wheel alone)."""
    code = "\n".join(
        line for line in path.read_text(encoding="utf-8").splitlines() if not line.startswith("#")
    )
    assert "==" not in code and "pip install" not in code, "installs outside the script"
    script = "/tmp/install-locked.sh"
    runs = [line.split() for line in code.splitlines() if line.startswith("RUN ")]
    steps = [words[words.index(script) + 1] for words in runs if script in words]
    spec = next(s for s in recipes.IMAGES.values() if ROOT / s.dockerfile == path)
    project = "project" if spec.project_dependencies else "project-alone"
    assert steps == ["dependencies", *([project] if spec.with_project else [])]


def test_the_install_script_installs_exactly_the_context_and_checks_it() -> None:
    script = (ROOT / "images" / "install-locked.sh").read_text(encoding="utf-8")
    code = " ".join(
        line.strip().rstrip("\\")
        for line in script.splitlines()
        if not line.lstrip().startswith("#")
    )
    assert "==" not in code
    installs = [part for part in code.split("pip install")[1:]]
    assert len(installs) == 2
    for install in installs:
        assert "--no-index" in install and "--no-deps" in install, install
    wheels, project = sorted(installs, key=lambda install: "/tmp/project/" in install)
    assert "--find-links /tmp/wheels --requirement /tmp/wheels/requirements.txt" in " ".join(
        wheels.split()
    )
    assert "/tmp/project/textops-*.whl" in project
    assert code.count("pip check") == 2
    assert "python3 -m venv --without-pip" in code
    # textops without its dependencies: no `pip check` (it would name them), an import of the
    # modules the Dockerfile names instead
    alone = re.search(r"^project-alone\)$(.*?);;", script, re.MULTILINE | re.DOTALL)
    assert alone, "no project-alone mode"
    assert "pip check" not in alone[1] and "install_project" in alone[1]
    assert "import_module" in alone[1] and "stage_project" in alone[1]


def test_bentofile_names_no_version_and_installs_the_lock() -> None:
    bentofile = yaml.safe_load(
        (ROOT / "bentos" / "classifier" / "bentofile.yaml").read_text(encoding="utf-8")
    )
    python = bentofile["python"]
    assert python["requirements_txt"] == "./requirements.lock.txt"
    assert "packages" not in python and python["lock_packages"] is False
