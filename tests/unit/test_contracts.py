"""Every name that crosses a process boundary, round-tripped from its writer to its reader.

Each test takes what one side writes (a pod's environment, a Job's annotations, MLflow tags,
a /metrics page, the chart's scrape configuration) from the real builder or writer, and hands
it to the real reader on the other side. A name spelled differently on one side, or a value
written that no reader uses, fails here instead of reading as "absent" in a cluster.
"""

from __future__ import annotations

import dataclasses
import os
import re
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from tests.unit.test_operator_builders import CONFIG
from textops.cli import build_parser
from textops.contracts import (
    GROUP,
    Alias,
    Annotation,
    Env,
    Label,
    Metric,
    SecretKey,
    Tag,
    Target,
)
from textops.data.dataset import Row, build_dataset
from textops.data.store import open_store
from textops.labelling.export import export_labels
from textops.model.evaluation import Evaluation
from textops.monitoring.drift import DriftReport, DriftResult
from textops.operator.builders import build_deployment, build_retraining_job
from textops.operator.config import load_config
from textops.operator.policy import Trigger
from textops.operator.retraining import Candidate, job_state
from textops.operator.rollout import deployment_state
from textops.operator.spec import ModelDeployment
from textops.registry.gate import gate_tags
from textops.registry.lineage import lineage_tags, serving_lineage
from textops.registry.promotion import Decision, PromotionPolicy
from textops.serving.config import (
    access_log_enabled,
    load_serving_config,
    request_timeout_s,
    serving_workers,
)
from textops.serving.metrics import ServingMetrics
from textops.settings import load_settings
from textops.training.pipeline import TrainResult, dataset_tags

ROOT = Path(__file__).resolve().parents[2]
TRIGGER = Trigger("drift", "0123456789abcdef", "prediction drift 0.31 above 0.2")
# read by a library rather than by textops: the OS, BentoML, MLflow/boto, matplotlib
READ_BY_LIBRARIES = {"HOME", Env.BENTOML_PORT, Env.MLFLOW_S3_ENDPOINT_URL, "MPLCONFIGDIR"}


def _mdep() -> ModelDeployment:
    return ModelDeployment.from_body(
        {
            "metadata": {"name": "reviews", "namespace": "ml", "uid": "uid-1"},
            "spec": {
                "model": {"name": "reviews-sentiment", "alias": Alias.CHAMPION},
                "serving": {"batching": {"maxBatchSize": 48, "maxLatencyMs": 7}},
                "promotion": {"metric": "accuracy", "minImprovement": 0.02},
            },
        }
    )


def _env(container: dict[str, Any]) -> dict[str, str]:
    """The plain values (references to Secrets are checked on their own)."""
    return {e["name"]: e["value"] for e in container["env"] if "value" in e}


def _secret_refs(container: dict[str, Any]) -> dict[str, tuple[str, str]]:
    refs = (e for e in container["env"] if "valueFrom" in e)
    return {
        e["name"]: (e["valueFrom"]["secretKeyRef"]["name"], e["valueFrom"]["secretKeyRef"]["key"])
        for e in refs
    }


def _changed(env: dict[str, str], name: str) -> dict[str, str]:
    """``env`` with ``name`` set to another value of the same kind."""
    value = env[name]
    other = str(int(value) + 1) if value.isdigit() else f"{value}-other"
    return {**env, name: other}


# --------------------------------------------------------------------- operator -> serving pod


def test_the_serving_pod_reads_what_the_operator_sets() -> None:
    deployment = build_deployment(_mdep(), CONFIG, "7")
    env = _env(deployment["spec"]["template"]["spec"]["containers"][0])
    serving, settings = load_serving_config(env), load_settings(env)
    assert serving.model_uri == "models:/reviews-sentiment/7"
    assert (serving.max_batch_size, serving.max_latency_ms) == (48, 7)
    assert settings.model_name == "reviews-sentiment"
    assert settings.tracking_uri == CONFIG.tracking_uri
    assert settings.s3_endpoint == CONFIG.s3_endpoint
    assert str(settings.home) == "/tmp/textops"


def test_every_variable_on_the_serving_pod_changes_what_the_pod_reads() -> None:
    deployment = build_deployment(_mdep(), CONFIG, "7")
    env = _env(deployment["spec"]["template"]["spec"]["containers"][0])
    read = _pod_reads(env)
    for name in set(env) - READ_BY_LIBRARIES:
        assert _pod_reads(_changed(env, name)) != read, (
            f"{name} is set on serving pods but nothing there reads it"
        )


def _pod_reads(env: dict[str, str]) -> tuple[Any, ...]:
    """What the serving process makes of its environment: its settings, and what the service
    class reads when it is defined (workers, timeout, access log)."""
    return (
        load_serving_config(env),
        load_settings(env),
        serving_workers(env),
        request_timeout_s(env),
        access_log_enabled(env),
    )


def test_the_pods_version_label_is_what_the_rollout_reads() -> None:
    deployment = build_deployment(_mdep(), CONFIG, "7")
    assert deployment["spec"]["template"]["metadata"]["labels"][Label.MODEL_VERSION] == "7"
    assert deployment_state(deployment).version == "7"


# --------------------------------------------------------------------- operator -> training Job


def _job_env() -> dict[str, str]:
    job = build_retraining_job(_mdep(), CONFIG, TRIGGER, serving_version="7")
    return _env(job["spec"]["template"]["spec"]["containers"][0])


def _entrypoint_variables() -> set[str]:
    script = (ROOT / "training" / "entrypoint.sh").read_text()
    return set(re.findall(r"\$\{(TEXTOPS_[A-Z0-9_]+)", script))


def _job_reads(env: dict[str, str]) -> tuple[Any, ...]:
    """What the Job's process makes of its environment: settings, lineage tags, and the
    entry point's own variables (read by the shell)."""
    script_values = tuple(env.get(name) for name in sorted(_entrypoint_variables()))
    tags = lineage_tags(None, env)
    lineage = {k: v for k, v in tags.items() if k not in (Tag.GIT_COMMIT, Tag.GIT_DIRTY)}
    with mock.patch.dict(os.environ, env, clear=True):  # `textops train`'s own defaults
        train_args = vars(build_parser().parse_args(["train"]))
    train_args.pop("handler")
    return load_settings(env), lineage, script_values, train_args


def test_every_variable_the_entrypoint_reads_is_set_on_the_job() -> None:
    env = _job_env()
    assert _entrypoint_variables() - set(env) == set()
    assert env[Env.PROMOTION_METRIC] == "accuracy" and env[Env.MIN_IMPROVEMENT] == "0.02"


def test_every_variable_on_the_job_changes_what_the_job_reads() -> None:
    env = _job_env()
    read = _job_reads(env)
    for name in set(env) - READ_BY_LIBRARIES:
        assert _job_reads(_changed(env, name)) != read, (
            f"{name} is set on retraining Jobs but nothing there reads it"
        )


def test_the_jobs_trigger_reaches_the_version_tags_the_operator_reads() -> None:
    tags = lineage_tags("textops/training:1", _job_env())
    assert tags[Tag.TRIGGER] == "drift"
    assert tags[Tag.TRIGGER_ID] == TRIGGER.id
    assert tags[Tag.TRIGGER_REASON] == TRIGGER.reason
    assert tags[Tag.MODELDEPLOYMENT] == "ml/reviews"
    assert tags[Tag.SERVING_VERSION] == "7"
    lineage = serving_lineage("run-1", tags)
    assert (lineage["trigger"], lineage["image"]) == ("drift", "textops/training:1")


def test_the_jobs_annotations_are_what_the_operator_reads_back() -> None:
    job = build_retraining_job(_mdep(), CONFIG, TRIGGER)
    job["status"] = {"conditions": [{"type": "Complete", "status": "True"}]}
    state = job_state(job)
    assert (state.trigger, state.trigger_id, state.reason) == ("drift", TRIGGER.id, TRIGGER.reason)
    assert job["metadata"]["annotations"][Annotation.TRIGGER_ID] == TRIGGER.id
    assert job["spec"]["template"]["metadata"]["labels"][Label.TRIGGER] == "drift"


def test_the_fields_the_entrypoint_reads_are_the_ones_export_and_train_print(
    textops_home: Path,
) -> None:
    script = (ROOT / "training" / "entrypoint.sh").read_text()
    read = dict(re.findall(r'field "\$workdir/(\w+)" (\w+)', script))
    assert read == {"exported": "dataset", "trained": "version"}
    evaluation = Evaluation(["a", "b"], 0.5, 0.5, 1.0, 0.1, {}, [[1, 0], [0, 1]], 2)
    result = TrainResult("run-1", "m", "3", "ds-1", evaluation, 10, 2)
    assert result.summary()[read["trained"]] == "3"
    settings = load_settings()
    seed = build_dataset([Row("房间干净", "positive"), Row("服务很差", "negative")], "seed")
    open_store(settings.data_uri, settings).put(seed)
    assert export_labels(settings)[read["exported"]] == seed.id


# --------------------------------------------------------------------- pipeline, gate -> operator


def test_the_operator_reads_the_lineage_and_verdict_the_pipeline_and_gate_write() -> None:
    dataset = build_dataset(
        [Row("房间很干净", "positive"), Row("服务太差了", "negative")],
        "labels:mysql",
        parent="ds-0123456789abcdef",
        notes={"labels_added": 1},
    )
    decision = Decision(True, "better", "macro_f1", 0.91, 0.87, {"negative": 0.01})
    tags = {
        **lineage_tags("textops/training:1", {}),
        **dataset_tags(dataset, "s3://datasets/default"),
        **gate_tags("4", dataset.id, PromotionPolicy("macro_f1", 0.01, 0.05), decision),
        Tag.GIT_COMMIT: "abc123",
    }
    candidate = Candidate.from_tags("5", "run-5", tags)
    assert candidate.decision == "promoted" and candidate.reason == "better"
    assert candidate.dataset_id == dataset.id
    assert candidate.dataset_sha256 == dataset.manifest.sha256
    assert (candidate.dataset_parent, candidate.labels_added) == ("ds-0123456789abcdef", 1)
    assert candidate.lineage()["labels_added"] == 1
    assert candidate.git_commit == "abc123" and candidate.code_sha256
    assert candidate.metric == "macro_f1" and candidate.champion_version == "4"
    assert (candidate.candidate_value, candidate.champion_value) == (0.91, 0.87)
    assert serving_lineage("run-5", tags)["dataset"] == dataset.id


def test_unknown_values_written_by_the_pipeline_read_as_absent() -> None:
    tags = {Tag.GIT_COMMIT: Tag.UNKNOWN, Tag.GATE_CHAMPION_VERSION: ""}
    candidate = Candidate.from_tags("1", None, tags)
    assert candidate.git_commit is None and candidate.champion_version is None


# ----------------------------------------------------- serving -> Prometheus -> operator


def _exposition() -> dict[str, list[dict[str, str]]]:
    registry = CollectorRegistry()
    metrics = ServingMetrics("m", "3", registry=registry)
    metrics.feedback_given("positive", True, "positive", 1.0, 0.0)
    metrics.feedback_given("positive", False, "negative", 0.5, 0.0)
    metrics.unexported_labels(7)
    feature, prediction = (DriftResult(k, k, 0.3, 0.2, 100, True) for k in Metric.DRIFT_KINDS)
    component = DriftResult("rare_text_share", "feature", 0.1, 0.2, 100, False)
    metrics.drift_report(DriftReport(feature, prediction, (component,), 100).gauges())
    series: dict[str, list[dict[str, str]]] = {}
    for family in text_string_to_metric_families(generate_latest(registry).decode()):
        for sample in family.samples:
            series.setdefault(sample.name, []).append(dict(sample.labels))
    return series


def test_the_series_the_operator_queries_are_the_ones_serving_publishes() -> None:
    series = _exposition()
    feedback = series[f"{Metric.FEEDBACK}_total"]
    assert {s[Metric.OUTCOME] for s in feedback} == {Metric.CORRECT, Metric.WRONG}
    confusion = series[f"{Metric.FEEDBACK_LABELS}_total"]
    assert {(s[Metric.PREDICTED], s[Metric.ACTUAL]) for s in confusion} == {
        ("positive", "positive"),
        ("positive", "negative"),
    }
    assert series[Metric.LABELS_UNEXPORTED] == [{"model": "m", "version": "3"}]
    for kind in Metric.DRIFT_KINDS:
        for part in Metric.DRIFT_PARTS:
            published = series[Metric.drift(kind, part)]
            overall = [s for s in published if s[Metric.STATISTIC] == Metric.OVERALL]
            assert len(overall) == 1, (kind, part, published)
            assert overall[0]["model"] == "m" and overall[0]["version"] == "3"


def _sanitized(label: str) -> str:
    """The name Prometheus' Kubernetes discovery gives a pod label."""
    return "__meta_kubernetes_pod_label_" + re.sub(r"[^a-zA-Z0-9_]", "_", label)


def test_the_charts_scrape_config_makes_the_target_labels_the_operator_selects_by() -> None:
    from tests.unit.test_chart_render import find, render

    prometheus_yml = find(render(), "ConfigMap", "textops-prometheus")["data"]["prometheus.yml"]
    import yaml

    config = yaml.safe_load(prometheus_yml)
    job = next(j for j in config["scrape_configs"] if j["job_name"] == "textops-serving")
    made = {
        tuple(r.get("source_labels", [])): r.get("target_label")
        for r in job["relabel_configs"]
        if r.get("target_label")
    }
    assert made[(_sanitized(Label.INSTANCE),)] == Target.MODELDEPLOYMENT
    assert made[(_sanitized(Label.MODEL_VERSION),)] == Target.MODEL_VERSION
    assert made[("__meta_kubernetes_namespace",)] == Target.NAMESPACE
    deployment = build_deployment(_mdep(), CONFIG, "7")
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert pod_labels[Label.INSTANCE] == "reviews"


# --------------------------------------------------------------------- chart -> operator


def test_every_variable_the_chart_sets_on_the_operator_changes_its_configuration() -> None:
    from tests.unit.test_chart_render import env_of, find, pod_spec, render

    operator = find(render(), "Deployment", "textops-operator")
    env = {
        k: v for k, v in env_of(pod_spec(operator)["containers"][0]).items() if isinstance(v, str)
    }
    assert Env.PROMETHEUS_URL in env and Env.SERVING_IMAGE in env
    # read by the operator's process outside its Config: the reconcile period, the metrics port
    elsewhere = {Env.RECONCILE_SECONDS, Env.METRICS_PORT}
    base = load_config(env)
    for name in set(env) - elsewhere - READ_BY_LIBRARIES:
        value = env[name]
        other = {
            Env.IMAGE_PULL_POLICY: "Never" if value != "Never" else "Always",
            Env.WORKLOAD_NODE_SELECTOR: '{"a": "b"}',
            Env.WORKLOAD_TOLERATIONS: '[{"key": "k", "operator": "Exists"}]',
            Env.HISTORY_LIMIT: "7" if value != "7" else "8",
        }.get(name, f"{value}-other")
        assert load_config({**env, name: other}) != base, f"the operator ignores {name}"


def test_group_prefixes_every_label_and_annotation_of_ours() -> None:
    ours = [v for k, v in vars(Label).items() if k.isupper() and "textops" in v]
    ours += [v for k, v in vars(Annotation).items() if k.isupper()]
    assert ours and all(name.startswith(f"{GROUP}/") for name in ours)


@pytest.mark.parametrize("kind", [Env, Tag, Label, Annotation, Metric])
def test_no_name_is_spelled_twice(kind: type) -> None:
    values = [v for k, v in vars(kind).items() if k.isupper() and isinstance(v, str)]
    assert len(values) == len(set(values))


def test_the_label_store_secret_the_chart_makes_is_the_one_pods_and_jobs_reference() -> None:
    from tests.unit.test_chart_render import env_of, find, pod_spec, render

    objects = render()
    operator_env = env_of(
        pod_spec(find(objects, "Deployment", "textops-operator"))["containers"][0]
    )
    secret_name = operator_env[Env.LABEL_STORE_SECRET_NAME]
    secret = find(objects, "Secret", secret_name)
    assert set(secret["stringData"]) >= {SecretKey.LABEL_DB_URL, SecretKey.LABEL_TOKEN}
    assert secret["stringData"][SecretKey.LABEL_DB_URL].startswith("mysql+pymysql://")
    config = dataclasses.replace(
        CONFIG, label_store_secret=load_config(operator_env).label_store_secret
    )
    pod = build_deployment(_mdep(), config, "7")["spec"]["template"]["spec"]["containers"][0]
    assert _secret_refs(pod) == {
        Env.LABEL_DB: (secret_name, SecretKey.LABEL_DB_URL),
        Env.LABEL_TOKEN: (secret_name, SecretKey.LABEL_TOKEN),
    }
    job = build_retraining_job(_mdep(), config, TRIGGER)["spec"]["template"]["spec"]
    assert _secret_refs(job["containers"][0]) == {
        Env.LABEL_DB: (secret_name, SecretKey.LABEL_DB_URL)
    }
    # and what the pod reads from them
    env = {**_env(pod), Env.LABEL_DB: secret["stringData"][SecretKey.LABEL_DB_URL]}
    assert load_settings(env).label_db == secret["stringData"][SecretKey.LABEL_DB_URL]
