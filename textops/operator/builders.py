"""Bodies of the objects a ModelDeployment owns: Deployment, Service, retraining Job (pure).

Each builder is a function of the typed resource, the operator's configuration and the one
decision it depends on (the version to serve, the retraining trigger), and returns a plain dict
ready for the API. Names are deterministic, so a handler that runs twice finds what it created
the first time (a 409 on create means "already done"). Owner references are included (the
ModelDeployment is the controller), so deleting the resource collects everything it made.

Pods are hardened the same way everywhere: non-root, read-only root filesystem with an
``emptyDir`` on ``/tmp`` (the only place the code writes: TEXTOPS_HOME, matplotlib, pip
caches), all capabilities dropped, no privilege escalation, the runtime's default seccomp
profile, and no API token (neither serving nor training talks to Kubernetes).
"""

from __future__ import annotations

from typing import Any

from textops.contracts import Annotation, Env, Label, SecretKey
from textops.operator.config import Config
from textops.operator.policy import Trigger
from textops.operator.spec import (
    API_VERSION,
    KIND,
    ModelDeployment,
    ServingResources,
    TrainingResources,
    dump,
)

PORT = 3000
PORT_NAME = "http"
DRAIN_SECONDS = 5  # preStop pause of a serving pod: endpoint removal reaches kube-proxy
RUN_AS_USER = 10001  # the uid created in the serving and training images
TMP_SIZE = "1Gi"
MAX_NAME = 63
JOB_INFIX = "-retrain-"
JOB_ID_CHARS = 10

Body = dict[str, Any]


def model_uri(name: str, version: str) -> str:
    """The pinned registry URI the pods load: never an alias, so every rollout is explicit."""
    return f"models:/{name}/{version}"


def deployment_name(mdep: ModelDeployment) -> str:
    return mdep.name


def service_name(mdep: ModelDeployment) -> str:
    return mdep.name


def job_name(mdep: ModelDeployment, trigger: Trigger) -> str:
    """``<name>-retrain-<10 hex of the trigger id>``, the name cut so the whole fits 63."""
    keep = MAX_NAME - len(JOB_INFIX) - JOB_ID_CHARS
    return f"{mdep.name[:keep].rstrip('-')}{JOB_INFIX}{trigger.id[:JOB_ID_CHARS]}"


def selector_labels(mdep: ModelDeployment, component: str) -> dict[str, str]:
    """The stable labels a selector may use (a Deployment selector is immutable)."""
    return {
        Label.NAME: "textops-model",
        Label.INSTANCE: mdep.name,
        Label.COMPONENT: component,
    }


def labels(mdep: ModelDeployment, component: str) -> dict[str, str]:
    return {
        **selector_labels(mdep, component),
        Label.PART_OF: "textops",
        Label.MANAGED_BY: "textops-operator",
        Label.MODEL: mdep.spec.model.name,
    }


def owner_references(mdep: ModelDeployment) -> list[Body]:
    """The ModelDeployment as controller; empty when its uid is unknown (not yet created)."""
    if not mdep.uid:
        return []
    return [
        {
            "apiVersion": API_VERSION,
            "kind": KIND,
            "name": mdep.name,
            "uid": mdep.uid,
            "controller": True,
            "blockOwnerDeletion": True,
        }
    ]


def _metadata(mdep: ModelDeployment, name: str, component: str, **extra: Any) -> Body:
    meta: Body = {
        "name": name,
        "namespace": mdep.namespace,
        "labels": labels(mdep, component),
        **extra,
    }
    refs = owner_references(mdep)
    if refs:
        meta["ownerReferences"] = refs
    return meta


def _resources(resources: ServingResources | TrainingResources) -> Body:
    return {k: v for k, v in dump(resources).items() if v}


def _env(values: dict[str, str | None]) -> list[Body]:
    return [{"name": k, "value": v} for k, v in values.items() if v is not None]


def _env_from(mdep: ModelDeployment) -> list[Body]:
    secret = mdep.spec.credentials_secret
    return [{"secretRef": {"name": secret}}] if secret else []


def _label_store_env(config: Config, with_token: bool) -> list[Body]:
    """The installation's label store (and the labelling API's token) by Secret reference: the
    URL holds a password, so it never appears in the spec."""
    secret = config.label_store_secret
    if not secret:
        return []
    keys = [(Env.LABEL_DB, SecretKey.LABEL_DB_URL)]
    if with_token:
        keys.append((Env.LABEL_TOKEN, SecretKey.LABEL_TOKEN))
    return [
        {"name": name, "valueFrom": {"secretKeyRef": {"name": secret, "key": key}}}
        for name, key in keys
    ]


def _s3_env(config: Config) -> dict[str, str | None]:
    return {Env.S3_ENDPOINT: config.s3_endpoint, Env.MLFLOW_S3_ENDPOINT_URL: config.s3_endpoint}


def _container_security() -> Body:
    return {
        "runAsNonRoot": True,
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def _pod_security() -> Body:
    return {
        "runAsNonRoot": True,
        "runAsUser": RUN_AS_USER,
        "runAsGroup": RUN_AS_USER,
        "fsGroup": RUN_AS_USER,
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def _tmp_volume() -> Body:
    return {"name": "tmp", "emptyDir": {"sizeLimit": TMP_SIZE}}


def _tmp_mount() -> Body:
    return {"name": "tmp", "mountPath": "/tmp"}


def _placement(config: Config) -> Body:
    """The cluster admin's nodeSelector and tolerations for model workloads (if any)."""
    placement: Body = {}
    if config.workload_node_selector:
        placement["nodeSelector"] = dict(config.workload_node_selector)
    if config.workload_tolerations:
        placement["tolerations"] = [dict(t) for t in config.workload_tolerations]
    return placement


def build_deployment(mdep: ModelDeployment, config: Config, version: str) -> Body:
    """The serving Deployment pinned to registered ``version`` of the model."""
    spec = mdep.spec
    uri = model_uri(spec.model.name, version)
    pod_labels = {**labels(mdep, "serving"), Label.MODEL_VERSION: version}
    probe_common = {"periodSeconds": 10, "timeoutSeconds": 3}
    container: Body = {
        "name": "model",
        "image": spec.serving.image or config.serving_image,
        "imagePullPolicy": config.image_pull_policy,
        "ports": [{"name": PORT_NAME, "containerPort": PORT, "protocol": "TCP"}],
        "env": _env(
            {
                Env.MODEL_URI: uri,
                Env.MODEL_NAME: spec.model.name,
                Env.MLFLOW_TRACKING_URI: config.tracking_uri,
                Env.MAX_BATCH_SIZE: str(spec.serving.batching.max_batch_size),
                Env.MAX_LATENCY_MS: str(spec.serving.batching.max_latency_ms),
                Env.WORKERS: str(spec.serving.workers),
                Env.BENTOML_PORT: str(PORT),  # where `bentoml serve` listens (probes, Service)
                Env.HOME: "/tmp/textops",
                "HOME": "/tmp",
                **_s3_env(config),
            }
        )
        + _label_store_env(config, with_token=True),
        "envFrom": _env_from(mdep),
        "resources": _resources(spec.serving.resources),
        # Loading a model can take minutes; the startup probe holds liveness off meanwhile.
        "startupProbe": {
            "httpGet": {"path": "/livez", "port": PORT_NAME},
            "periodSeconds": 5,
            "failureThreshold": 60,
        },
        "readinessProbe": {"httpGet": {"path": "/readyz", "port": PORT_NAME}, **probe_common},
        "livenessProbe": {
            "httpGet": {"path": "/livez", "port": PORT_NAME},
            **probe_common,
            "failureThreshold": 3,
        },
        # A deleted pod still gets new connections until its endpoint has left every
        # kube-proxy: it keeps answering that long before the server is told to stop.
        "lifecycle": {"preStop": {"sleep": {"seconds": DRAIN_SECONDS}}},
        "securityContext": _container_security(),
        "volumeMounts": [_tmp_mount()],
    }
    if not container["envFrom"]:
        del container["envFrom"]
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": _metadata(
            mdep,
            deployment_name(mdep),
            "serving",
            annotations={Annotation.MODEL_URI: uri},
        ),
        "spec": {
            "replicas": spec.serving.replicas,
            "selector": {"matchLabels": selector_labels(mdep, "serving")},
            "progressDeadlineSeconds": spec.rollout.progress_deadline_seconds,
            "revisionHistoryLimit": 5,
            # Never below the wanted capacity during a rollout: one extra pod at a time.
            "strategy": {
                "type": "RollingUpdate",
                "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0},
            },
            "template": {
                "metadata": {
                    "labels": pod_labels,
                    "annotations": {
                        "prometheus.io/scrape": "true",
                        "prometheus.io/port": str(PORT),
                        "prometheus.io/path": "/metrics",
                        Annotation.MODEL_URI: uri,
                    },
                },
                "spec": {
                    "automountServiceAccountToken": False,
                    "enableServiceLinks": False,
                    "securityContext": _pod_security(),
                    "terminationGracePeriodSeconds": DRAIN_SECONDS + 30,
                    "containers": [container],
                    "volumes": [_tmp_volume()],
                    **_placement(config),
                },
            },
        },
    }


def build_service(mdep: ModelDeployment, config: Config) -> Body:
    """A ClusterIP Service in front of the serving pods (port 3000, named ``http``)."""
    del config  # same signature as the other builders; nothing configurable yet
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _metadata(mdep, service_name(mdep), "serving"),
        "spec": {
            "type": "ClusterIP",
            "selector": selector_labels(mdep, "serving"),
            "ports": [
                {"name": PORT_NAME, "port": PORT, "targetPort": PORT_NAME, "protocol": "TCP"}
            ],
        },
    }


def build_retraining_job(
    mdep: ModelDeployment,
    config: Config,
    trigger: Trigger,
    serving_version: str | None = None,
) -> Body:
    """The Job that trains on the newest dataset version, registers it and runs the gate.

    The training image's entry point (``training/entrypoint.sh``) reads everything from the
    environment: the dataset store, the model name, the tracking server, the promotion policy,
    and the lineage of this run (which resource and trigger started it, the image).
    """
    spec = mdep.spec
    retraining, promotion = spec.retraining, spec.promotion
    image = retraining.image or config.training_image
    name = job_name(mdep, trigger)
    env = _env(
        {
            Env.DATA_URI: retraining.dataset or config.data_uri,
            Env.DATASET: "latest",
            Env.MODEL_NAME: spec.model.name,
            Env.MLFLOW_TRACKING_URI: config.tracking_uri,
            Env.PROMOTION_METRIC: promotion.metric,
            Env.MIN_IMPROVEMENT: repr(promotion.min_improvement),
            Env.MAX_RECALL_DROP: repr(promotion.max_recall_drop),
            Env.IMAGE_TAG: image,
            Env.TRIGGER: trigger.kind,
            Env.TRIGGER_ID: trigger.id,
            Env.TRIGGER_REASON: trigger.reason,
            Env.MODELDEPLOYMENT: f"{mdep.namespace}/{mdep.name}",
            Env.SERVING_VERSION: serving_version,
            Env.REFERENCE_TRAFFIC: str(retraining.reference_traffic),
            Env.HOME: "/tmp/textops",
            "MPLCONFIGDIR": "/tmp/matplotlib",
            "HOME": "/tmp",
            **_s3_env(config),
        }
    ) + _label_store_env(config, with_token=False)
    container: Body = {
        "name": "train",
        "image": image,
        "imagePullPolicy": config.image_pull_policy,
        "env": env,
        "resources": _resources(retraining.resources),
        "securityContext": _container_security(),
        "volumeMounts": [_tmp_mount()],
    }
    env_from = _env_from(mdep)
    if env_from:
        container["envFrom"] = env_from
    annotations = {
        Annotation.TRIGGER: trigger.kind,
        Annotation.TRIGGER_ID: trigger.id,
        Annotation.TRIGGER_REASON: trigger.reason,
    }
    job_labels = {**labels(mdep, "retraining"), Label.TRIGGER: trigger.kind}
    pod_spec: Body = {
        "restartPolicy": "Never",
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        "securityContext": _pod_security(),
        "containers": [container],
        "volumes": [_tmp_volume()],
        **_placement(config),
    }
    if config.training_service_account:
        pod_spec["serviceAccountName"] = config.training_service_account
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": _metadata(mdep, name, "retraining", annotations=annotations),
        "spec": {
            "backoffLimit": retraining.backoff_limit,
            "activeDeadlineSeconds": retraining.active_deadline_seconds,
            "ttlSecondsAfterFinished": retraining.ttl_seconds_after_finished,
            "template": {
                "metadata": {"labels": job_labels, "annotations": annotations},
                "spec": pod_spec,
            },
        },
    }
