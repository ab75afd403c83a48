"""The ModelDeployment custom resource as frozen, typed Python (pure).

The CRD (``manifests/crd/modeldeployments.textops.io.yaml``) is the contract; these dataclasses
mirror it field for field so that handlers, builders and policies get typed values instead of
nested dicts. Each field's default equals the schema default, so a spec parses the same whether
or not the API server already filled the defaults in (older objects, unit tests); a unit test
walks schema and classes side by side and fails when they drift apart. JSON keys are the
camelCase of the field name unless the field's metadata names the key (``for``).

Parsing checks what the schema cannot express (cron syntax) and raises :class:`SpecError`
with the path of the bad field; the handler turns that into a permanent error.
"""

from __future__ import annotations

import dataclasses
import types
from collections.abc import Mapping
from dataclasses import field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, TypeVar, Union, get_args, get_origin, get_type_hints

from textops.contracts import GROUP, Annotation
from textops.operator.cron import parse_schedule
from textops.operator.durations import format_duration, parse_duration

VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"
KIND = "ModelDeployment"
PLURAL = "modeldeployments"

QualityMetric = Literal["accuracy", "macro_f1"]
PromotionMetric = Literal["macro_f1", "accuracy", "log_loss", "calibration_error"]
Phase = Literal["Pending", "Serving", "Retraining", "Promoting", "Degraded", "Failed"]
TriggerKind = Literal["drift", "quality", "schedule", "manual"]
JobResult = Literal["Running", "Succeeded", "Failed"]
GateDecision = Literal["promoted", "rejected"]
HistoryEvent = Literal[
    "RolledOut",
    "RolledBack",
    "RetrainingStarted",
    "RetrainingSucceeded",
    "RetrainingFailed",
    "Promoted",
    "Rejected",
]
ConditionStatus = Literal["True", "False", "Unknown"]

T = TypeVar("T")


class SpecError(ValueError):
    """A ModelDeployment that cannot be served as written; the message names the field."""


# Field metadata: the JSON key when it is a Python keyword; a Kubernetes quantity, which the
# schema admits as a string or a number (``cpu: 1``) and the model keeps as a string.
FOR = {"key": "for"}
QUANTITY = {"quantity": True}


def json_key(f: dataclasses.Field[Any]) -> str:
    """The JSON key of a dataclass field: metadata ``key`` or the camelCase of its name."""
    explicit = f.metadata.get("key")
    if explicit:
        return str(explicit)
    head, *rest = f.name.split("_")
    return head + "".join(word.capitalize() for word in rest)


# --------------------------------------------------------------------------- spec


@dataclasses.dataclass(frozen=True)
class ModelRef:
    """The registered model and the alias it follows or the version it pins."""

    name: str
    alias: str | None = None
    version: str | None = None

    def __post_init__(self) -> None:
        if (self.alias is None) == (self.version is None):
            raise SpecError("exactly one of spec.model.alias or spec.model.version must be set")

    @property
    def target(self) -> str:
        """ "@champion" or "7", for messages and status."""
        return f"@{self.alias}" if self.alias is not None else str(self.version)


@dataclasses.dataclass(frozen=True)
class ServingRequests:
    cpu: str | None = field(default="250m", metadata=QUANTITY)
    memory: str | None = field(default="512Mi", metadata=QUANTITY)


@dataclasses.dataclass(frozen=True)
class ServingLimits:
    cpu: str | None = field(default=None, metadata=QUANTITY)
    memory: str | None = field(default="1Gi", metadata=QUANTITY)


@dataclasses.dataclass(frozen=True)
class ServingResources:
    requests: ServingRequests = field(default_factory=ServingRequests)
    limits: ServingLimits = field(default_factory=ServingLimits)


@dataclasses.dataclass(frozen=True)
class Batching:
    max_batch_size: int = 32
    max_latency_ms: int = 20


@dataclasses.dataclass(frozen=True)
class Serving:
    replicas: int = 1
    workers: int = 1  # worker processes per pod (TEXTOPS_WORKERS)
    image: str | None = None  # None: the operator's TEXTOPS_SERVING_IMAGE
    resources: ServingResources = field(default_factory=ServingResources)
    batching: Batching = field(default_factory=Batching)


@dataclasses.dataclass(frozen=True)
class DriftThreshold:
    # a multiple of the thresholds calibrated at training time: the pods' own verdict is > 1.0
    threshold: float = 1.0
    for_: timedelta = field(default=timedelta(minutes=10), metadata=FOR)


@dataclasses.dataclass(frozen=True)
class Quality:
    metric: QualityMetric = "accuracy"
    min: float = 0.8
    min_samples: int = 200
    window: timedelta = timedelta(hours=24)
    for_: timedelta = field(default=timedelta(minutes=10), metadata=FOR)


@dataclasses.dataclass(frozen=True)
class Monitoring:
    prometheus: str | None = None  # None: the operator's TEXTOPS_PROMETHEUS_URL
    interval: timedelta = timedelta(minutes=1)
    feature_drift: DriftThreshold = field(default_factory=DriftThreshold)
    prediction_drift: DriftThreshold = field(default_factory=DriftThreshold)
    quality: Quality = field(default_factory=Quality)


@dataclasses.dataclass(frozen=True)
class Triggers:
    on_drift: bool = True
    on_quality_drop: bool = True
    schedule: str | None = None
    manual: bool = True

    def __post_init__(self) -> None:
        if self.schedule is not None:
            try:
                parse_schedule(self.schedule)
            except ValueError as exc:
                raise SpecError(f"spec.retraining.triggers.schedule: {exc}") from exc


@dataclasses.dataclass(frozen=True)
class TrainingRequests:
    cpu: str | None = field(default="1", metadata=QUANTITY)
    memory: str | None = field(default="2Gi", metadata=QUANTITY)


@dataclasses.dataclass(frozen=True)
class TrainingLimits:
    cpu: str | None = field(default=None, metadata=QUANTITY)
    memory: str | None = field(default="4Gi", metadata=QUANTITY)


@dataclasses.dataclass(frozen=True)
class TrainingResources:
    requests: TrainingRequests = field(default_factory=TrainingRequests)
    limits: TrainingLimits = field(default_factory=TrainingLimits)


@dataclasses.dataclass(frozen=True)
class Retraining:
    image: str | None = None  # None: the operator's TEXTOPS_TRAINING_IMAGE
    dataset: str | None = None  # None: the operator's TEXTOPS_DATA_URI
    triggers: Triggers = field(default_factory=Triggers)
    cooldown: timedelta = timedelta(hours=6)
    min_new_labels: int = 100
    # served texts the new version's drift reference is profiled on (0: the holdout)
    reference_traffic: int = 2000
    resources: TrainingResources = field(default_factory=TrainingResources)
    backoff_limit: int = 1
    active_deadline_seconds: int = 7200
    ttl_seconds_after_finished: int = 86400


@dataclasses.dataclass(frozen=True)
class Promotion:
    metric: PromotionMetric = "macro_f1"
    min_improvement: float = 0.0
    max_recall_drop: float = 0.05


@dataclasses.dataclass(frozen=True)
class Rollout:
    progress_deadline_seconds: int = 600
    auto_rollback: bool = True


@dataclasses.dataclass(frozen=True)
class ModelDeploymentSpec:
    model: ModelRef
    serving: Serving = field(default_factory=Serving)
    monitoring: Monitoring = field(default_factory=Monitoring)
    retraining: Retraining = field(default_factory=Retraining)
    promotion: Promotion = field(default_factory=Promotion)
    rollout: Rollout = field(default_factory=Rollout)
    credentials_secret: str | None = None


# --------------------------------------------------------------------------- status


@dataclasses.dataclass(frozen=True)
class DriftStatus:
    feature: float | None = None
    prediction: float | None = None
    observed_at: datetime | None = None
    feature_above_since: datetime | None = None
    prediction_above_since: datetime | None = None


@dataclasses.dataclass(frozen=True)
class QualityStatus:
    value: float | None = None
    samples: int | None = None
    observed_at: datetime | None = None
    below_since: datetime | None = None


@dataclasses.dataclass(frozen=True)
class RetrainingStatus:
    job: str | None = None
    trigger: TriggerKind | None = None
    trigger_id: str | None = None
    reason: str | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    result: JobResult | None = None
    candidate_version: str | None = None
    decision: GateDecision | None = None


@dataclasses.dataclass(frozen=True)
class HistoryRecord:
    """One event; a retraining's outcome also carries the candidate's lineage and verdict.

    Lineage (run, dataset, code) is on ``RetrainingSucceeded``, ``Promoted`` and ``Rejected``;
    the gate's decision and numbers on ``Promoted`` and ``Rejected``. Each comes from the
    candidate version's MLflow tags and is left out when the tag is missing.
    """

    time: datetime
    event: HistoryEvent
    version: str | None = None
    job: str | None = None
    message: str | None = None
    run_id: str | None = None
    dataset_id: str | None = None
    dataset_sha256: str | None = None
    dataset_parent: str | None = None
    labels_added: int | None = None
    git_commit: str | None = None
    code_sha256: str | None = None
    decision: GateDecision | None = None
    metric: str | None = None
    candidate_value: float | None = None
    champion_value: float | None = None
    champion_version: str | None = None


@dataclasses.dataclass(frozen=True)
class Condition:
    """A Kubernetes condition (metav1.Condition)."""

    type: str
    status: ConditionStatus
    last_transition_time: datetime
    reason: str
    message: str
    observed_generation: int | None = None


@dataclasses.dataclass(frozen=True)
class Status:
    phase: Phase | None = None
    observed_generation: int | None = None
    serving_version: str | None = None
    model_uri: str | None = None
    drift: DriftStatus = field(default_factory=DriftStatus)
    quality: QualityStatus = field(default_factory=QualityStatus)
    last_retraining: RetrainingStatus = field(default_factory=RetrainingStatus)
    last_schedule_time: datetime | None = None
    last_manual_request: str | None = None
    history: tuple[HistoryRecord, ...] = ()
    conditions: tuple[Condition, ...] = ()


# --------------------------------------------------------------------------- the resource


@dataclasses.dataclass(frozen=True)
class ModelDeployment:
    """One ModelDeployment: identity, spec and the operator's last status."""

    name: str
    namespace: str
    spec: ModelDeploymentSpec
    status: Status = field(default_factory=Status)
    uid: str | None = None
    generation: int | None = None
    created_at: datetime | None = None
    annotations: Mapping[str, str] = dataclasses.field(default_factory=dict)

    @property
    def retrain_request(self) -> str | None:
        """The value of the manual retraining annotation, if set."""
        return self.annotations.get(Annotation.RETRAIN) or None

    @classmethod
    def from_body(cls, body: Mapping[str, Any]) -> ModelDeployment:
        """Parse the object as the API server returns it (defaults applied or not)."""
        meta = body.get("metadata") or {}
        name = meta.get("name")
        if not name:
            raise SpecError("metadata.name is missing")
        created = meta.get("creationTimestamp")
        return cls(
            name=name,
            namespace=meta.get("namespace") or "default",
            spec=parse(ModelDeploymentSpec, body.get("spec") or {}, "spec"),
            status=parse(Status, body.get("status") or {}, "status"),
            uid=meta.get("uid"),
            generation=meta.get("generation"),
            created_at=parse_time(created, "metadata.creationTimestamp") if created else None,
            annotations=dict(meta.get("annotations") or {}),
        )


# --------------------------------------------------------------------------- parse and dump


def parse(cls: type[T], data: Any, path: str) -> T:
    """Build dataclass ``cls`` from a JSON-like mapping, applying the field defaults."""
    if not isinstance(data, Mapping):
        raise SpecError(f"{path}: expected an object, got {type(data).__name__}")
    hints = get_type_hints(cls)
    values: dict[str, Any] = {}
    for f in dataclasses.fields(cls):  # type: ignore[arg-type]
        name = json_key(f)
        if name in data and data[name] is not None:
            where = f"{path}.{name}"
            raw = data[name]
            if f.metadata.get("quantity"):
                values[f.name] = _quantity(raw, where)
            else:
                values[f.name] = _value(hints[f.name], raw, where)
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise SpecError(f"{path}.{name} is required")
    try:
        return cls(**values)
    except SpecError:
        raise
    except (TypeError, ValueError) as exc:
        raise SpecError(f"{path}: {exc}") from exc


def _value(hint: Any, raw: Any, path: str) -> Any:
    origin = get_origin(hint)
    if origin in (Union, types.UnionType):
        inner = [a for a in get_args(hint) if a is not type(None)]
        return _value(inner[0], raw, path)
    if origin is Literal:
        if raw not in get_args(hint):
            raise SpecError(f"{path}: {raw!r} is not one of {list(get_args(hint))}")
        return raw
    if origin is tuple:
        if not isinstance(raw, list):
            raise SpecError(f"{path}: expected a list")
        return tuple(_value(get_args(hint)[0], item, f"{path}[{i}]") for i, item in enumerate(raw))
    if dataclasses.is_dataclass(hint):
        return parse(hint, raw, path)  # type: ignore[arg-type]
    if hint is timedelta:
        try:
            return parse_duration(raw)
        except ValueError as exc:
            raise SpecError(f"{path}: {exc}") from exc
    if hint is datetime:
        return parse_time(raw, path)
    if hint is bool:
        if not isinstance(raw, bool):
            raise SpecError(f"{path}: expected true or false")
        return raw
    if hint is int:
        if isinstance(raw, bool) or not isinstance(raw, int):
            raise SpecError(f"{path}: expected an integer")
        return raw
    if hint is float:
        if isinstance(raw, bool) or not isinstance(raw, int | float):
            raise SpecError(f"{path}: expected a number")
        return float(raw)
    if hint is str:
        if not isinstance(raw, str):
            raise SpecError(f"{path}: expected a string")
        return raw
    raise TypeError(f"{path}: no parser for {hint!r}")  # a bug in this module, not in the spec


def _quantity(raw: Any, path: str) -> str:
    if isinstance(raw, bool) or not isinstance(raw, str | int | float):
        raise SpecError(f"{path}: expected a quantity such as '250m' or 1")
    return str(raw)


def parse_time(raw: Any, path: str) -> datetime:
    """RFC 3339 time as Kubernetes writes it ("2026-11-26T17:49:29Z") to an aware datetime."""
    if not isinstance(raw, str):
        raise SpecError(f"{path}: expected an RFC 3339 time")
    try:
        value = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError as exc:
        raise SpecError(f"{path}: {exc}") from exc
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def format_time(value: datetime) -> str:
    """An aware datetime as Kubernetes writes times: UTC, whole seconds, "Z"."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def dump(obj: Any) -> Any:
    """A dataclass back to JSON-like data (camelCase keys, None left out): for status patches."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        out = {}
        for f in dataclasses.fields(obj):
            value = getattr(obj, f.name)
            if value is not None:
                out[json_key(f)] = dump(value)
        return out
    if isinstance(obj, tuple | list):
        return [dump(item) for item in obj]
    if isinstance(obj, timedelta):
        return format_duration(obj)
    if isinstance(obj, datetime):
        return format_time(obj)
    if isinstance(obj, Mapping):
        return {k: dump(v) for k, v in obj.items()}
    return obj
