"""The operator's own Prometheus metrics (docs/dashboards.md, "Operator metrics").

Two parts. :func:`first_sight` and :func:`read` are pure: a ModelDeployment body in, the
gauge values and the events to count out, so every mapping is unit-tested without a registry.
:class:`Exporter` owns a dedicated :class:`~prometheus_client.CollectorRegistry` (nothing
else of the process leaks onto ``/metrics``), applies a reading after each status write,
forgets a resource's label sets when it is deleted, and :func:`serve` starts the endpoint.

Counters are keyed on the history records already in status, ``(time, event, job, version)``:
a pass that writes nothing new counts nothing, however often the timer runs. Label values
come from the status alone (the serving version's lineage from the history records of that
version), never from MLflow: a label the status cannot fill stays empty.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
from collections.abc import Mapping
from datetime import datetime
from typing import Any, Literal, get_args

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

from textops.operator.spec import (
    ConditionStatus,
    HistoryRecord,
    Phase,
    SpecError,
    Status,
    TriggerKind,
    parse,
)

log = logging.getLogger(__name__)

PHASES: tuple[str, ...] = get_args(Phase)
CONDITION_STATUSES: tuple[str, ...] = get_args(ConditionStatus)
TRIGGERS: tuple[str, ...] = get_args(TriggerKind)
DURATION_BUCKETS = (60.0, 120.0, 300.0, 600.0, 900.0, 1800.0, 3600.0, 7200.0)

Kind = Literal["retraining", "promotion", "rollout"]
# history event -> (what it counts, the outcome/decision label value)
COUNTED: dict[str, tuple[Kind, str]] = {
    "RetrainingSucceeded": ("retraining", "succeeded"),
    "RetrainingFailed": ("retraining", "failed"),
    "Promoted": ("promotion", "promoted"),
    "Rejected": ("promotion", "rejected"),
    "RolledOut": ("rollout", "rolled_out"),
    "RolledBack": ("rollout", "rolled_back"),
}
OUTCOMES: dict[Kind, tuple[str, ...]] = {
    kind: tuple(value for k, value in COUNTED.values() if k == kind)
    for kind in ("retraining", "promotion", "rollout")
}

HistoryKey = tuple[datetime, str, str, str]


# --------------------------------------------------------------------------- pure part


@dataclasses.dataclass(frozen=True)
class Memory:
    """What the operator remembers of one resource between passes (in memory only).

    ``counted``: the keys of the history records already counted (or taken as baseline).
    ``triggers``: the trigger of each retraining Job seen in ``status.lastRetraining``, which
    holds only the newest Job; the history records do not carry it.
    """

    counted: frozenset[HistoryKey] = frozenset()
    triggers: Mapping[str, str] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True)
class Count:
    """One event to count: ``value`` is the outcome or decision label."""

    kind: Kind
    value: str
    trigger: str = ""  # retraining only
    duration: float | None = None  # retraining only: finishedAt - startedAt


@dataclasses.dataclass(frozen=True)
class Serving:
    """The serving version and its lineage (empty string: the status does not say)."""

    version: str
    run_id: str = ""
    dataset: str = ""
    trigger: str = ""


@dataclasses.dataclass(frozen=True)
class Reading:
    """Everything one pass exports for one ModelDeployment."""

    namespace: str
    name: str
    model: str
    running: bool
    phase: str | None
    conditions: tuple[tuple[str, str], ...]  # (type, status)
    serving: Serving | None
    counts: tuple[Count, ...]
    memory: Memory


def identity(body: Mapping[str, Any]) -> tuple[str, str, str]:
    """(namespace, name, model) of a body; the model read leniently (the spec may be invalid)."""
    meta = body.get("metadata") or {}
    model = ((body.get("spec") or {}).get("model") or {}).get("name")
    return meta.get("namespace") or "default", meta["name"], model if isinstance(model, str) else ""


def status_of(body: Mapping[str, Any]) -> Status | None:
    """The parsed status; None when it cannot be parsed (edited by hand, say)."""
    try:
        return parse(Status, body.get("status") or {}, "status")
    except SpecError:
        return None


def key(record: HistoryRecord) -> HistoryKey:
    return (record.time, record.event, record.job or "", record.version or "")


def first_sight(body: Mapping[str, Any]) -> Memory:
    """The memory of a resource the operator has not exported before: a baseline.

    The history records already in its status are taken as counted: after an operator
    restart the previous process counted them, and Prometheus keeps those counts. Its
    ``increase()`` reads the restart's drop to 0 as a counter reset and adds whatever follows,
    so counting the old records again (a jump from 0 to their number) would report every past
    retraining, promotion and rollout a second time after each restart. The cost: events a
    crashed operator wrote but never exported are not counted.
    """
    st = status_of(body) or Status()
    return _remember(Memory(frozenset(key(h) for h in st.history)), st)


def _remember(memory: Memory, st: Status) -> Memory:
    """``memory`` with the newest Job's trigger added and Jobs no record names dropped."""
    triggers = dict(memory.triggers)
    last = st.last_retraining
    if last.job and last.trigger:
        triggers[last.job] = last.trigger
    jobs = {h.job for h in st.history} | {last.job}
    return Memory(memory.counted, {j: t for j, t in triggers.items() if j in jobs})


def read(body: Mapping[str, Any], memory: Memory) -> Reading:
    """The gauges of ``body`` and the history records not yet counted (see module docstring)."""
    namespace, name, model = identity(body)
    parsed = status_of(body)
    st = parsed or Status()
    if parsed is None:  # export nothing of it, and keep what was counted for the next pass
        return Reading(namespace, name, model, False, None, (), None, (), memory)
    memory = _remember(memory, st)
    fresh = [h for h in st.history if key(h) not in memory.counted]
    counts = tuple(c for c in (_count(h, st, memory.triggers) for h in fresh) if c is not None)
    return Reading(
        namespace=namespace,
        name=name,
        model=model,
        running=st.last_retraining.result == "Running",
        phase=st.phase,
        conditions=tuple((c.type, c.status) for c in st.conditions),
        serving=serving_of(st, memory.triggers),
        counts=counts,
        memory=Memory(frozenset(key(h) for h in st.history), memory.triggers),
    )


def _count(record: HistoryRecord, st: Status, triggers: Mapping[str, str]) -> Count | None:
    counted = COUNTED.get(record.event)
    if counted is None:
        return None
    kind, value = counted
    if kind != "retraining":
        return Count(kind, value)
    job = record.job or ""
    return Count(kind, value, triggers.get(job, ""), _duration(record, st))


def _duration(record: HistoryRecord, st: Status) -> float | None:
    """The Job's run time: from ``lastRetraining`` when it is this Job (the usual case: the
    record is counted in the pass that wrote it), else from its ``RetrainingStarted`` record."""
    last = st.last_retraining
    if last.job == record.job and last.started_at and last.finished_at:
        start, end = last.started_at, last.finished_at
    else:
        matching = [
            h.time for h in st.history if h.event == "RetrainingStarted" and h.job == record.job
        ]
        if not record.job or not matching:
            return None
        start, end = matching[-1], record.time
    return max(0.0, (end - start).total_seconds())


def serving_of(st: Status, triggers: Mapping[str, str]) -> Serving | None:
    """The serving version with the lineage its newest Promoted/RetrainingSucceeded record
    carries; a version the operator did not see being trained (the seed) has empty lineage."""
    version = st.serving_version
    if version is None:
        return None
    records = [
        h
        for h in reversed(st.history)
        if h.version == version and h.event in ("Promoted", "RetrainingSucceeded")
    ]
    record = next((h for h in records if h.run_id or h.dataset_id), None)
    if record is None:
        return Serving(version)
    return Serving(
        version,
        run_id=record.run_id or "",
        dataset=record.dataset_id or "",
        trigger=triggers.get(record.job or "", ""),
    )


# Gauge samples as data: metric -> label values (after namespace, name[, model]) -> value.
Samples = dict[tuple[str, tuple[str, ...]], float]


def gauge_samples(reading: Reading) -> Samples:
    """Every gauge series of ``reading`` with its value (full label values, in label order)."""
    ident = (reading.namespace, reading.name, reading.model)
    out: Samples = {("retraining_running", ident): 1.0 if reading.running else 0.0}
    for phase in PHASES:
        out["phase", (*ident, phase)] = 1.0 if reading.phase == phase else 0.0
    for type_, current in reading.conditions:
        for status in CONDITION_STATUSES:
            labels = (reading.namespace, reading.name, type_, status)
            out["condition", labels] = 1.0 if current == status else 0.0
    if reading.serving is not None:
        s = reading.serving
        out["serving_version_info", (*ident, s.version, s.run_id, s.dataset, s.trigger)] = 1.0
    return out


# --------------------------------------------------------------------------- the registry


class Exporter:
    """The metrics of every ModelDeployment this process reconciles, on one registry."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry(auto_describe=True)
        ident = ["namespace", "name", "model"]
        r = self.registry
        self.retrainings = Counter(
            "textops_operator_retrainings",
            "Retraining Jobs seen finished, by trigger and outcome.",
            [*ident, "trigger", "outcome"],
            registry=r,
        )
        self.duration = Histogram(
            "textops_operator_retraining_duration_seconds",
            "Run time of finished retraining Jobs (finishedAt - startedAt).",
            [*ident, "outcome"],
            buckets=DURATION_BUCKETS,
            registry=r,
        )
        self.promotions = Counter(
            "textops_operator_promotions",
            "Promotion gate decisions on retrained candidates.",
            [*ident, "decision"],
            registry=r,
        )
        self.rollouts = Counter(
            "textops_operator_rollouts",
            "Versions rolled out or rolled back.",
            [*ident, "outcome"],
            registry=r,
        )
        self.gauges: dict[str, Gauge] = {
            "retraining_running": Gauge(
                "textops_operator_retraining_running",
                "1 while a retraining Job runs (lastRetraining.result Running).",
                ident,
                registry=r,
            ),
            "phase": Gauge(
                "textops_operator_phase",
                "1 on the ModelDeployment's status.phase, 0 on the other phases.",
                [*ident, "phase"],
                registry=r,
            ),
            "condition": Gauge(
                "textops_operator_condition",
                "1 on each condition's current status, 0 on the other statuses.",
                ["namespace", "name", "type", "status"],
                registry=r,
            ),
            "serving_version_info": Gauge(
                "textops_operator_serving_version_info",
                "Always 1: the serving version and its lineage as the status records it.",
                [*ident, "version", "run_id", "dataset", "trigger"],
                registry=r,
            ),
        }
        self._lock = threading.Lock()
        self._memory: dict[tuple[str, str], Memory] = {}
        self._gauge_series: dict[tuple[str, str], Samples] = {}
        self._counter_series: dict[tuple[str, str], set[tuple[Any, tuple[str, ...]]]] = {}

    def update(self, after: Mapping[str, Any], before: Mapping[str, Any] | None = None) -> None:
        """Export ``after`` (the resource as a pass left it); ``before`` (as the pass found
        it) is the baseline when the resource is new to this process (:func:`first_sight`)."""
        namespace, name, _ = identity(after)
        resource = (namespace, name)
        with self._lock:
            memory = self._memory.get(resource)
            if memory is None:
                memory = first_sight(before if before is not None else after)
                self._initialise(resource, identity(after))
            reading = read(after, memory)
            self._memory[resource] = reading.memory
            for count in reading.counts:
                self._inc(resource, (namespace, name, reading.model), count)
            samples = gauge_samples(reading)
            for (metric, labels), value in samples.items():
                self.gauges[metric].labels(*labels).set(value)
            for metric, labels in self._gauge_series.get(resource, {}).keys() - samples.keys():
                self.gauges[metric].remove(*labels)
            self._gauge_series[resource] = samples

    def forget(self, namespace: str, name: str) -> None:
        """Remove every label set of a deleted ModelDeployment."""
        resource = (namespace, name)
        with self._lock:
            self._memory.pop(resource, None)
            for metric, labels in self._gauge_series.pop(resource, {}):
                self.gauges[metric].remove(*labels)
            for counter, labels in self._counter_series.pop(resource, set()):
                counter.remove(*labels)

    def _initialise(self, resource: tuple[str, str], ident: tuple[str, str, str]) -> None:
        """Create the counters' series at 0 for the known label values: a series born at 1
        has no earlier sample, and ``increase()`` would not see its first event."""
        for trigger in TRIGGERS:
            for outcome in OUTCOMES["retraining"]:
                self._series(resource, self.retrainings, (*ident, trigger, outcome))
        for outcome in OUTCOMES["retraining"]:
            self._series(resource, self.duration, (*ident, outcome))
        for decision in OUTCOMES["promotion"]:
            self._series(resource, self.promotions, (*ident, decision))
        for outcome in OUTCOMES["rollout"]:
            self._series(resource, self.rollouts, (*ident, outcome))

    def _inc(self, resource: tuple[str, str], ident: tuple[str, str, str], count: Count) -> None:
        if count.kind == "retraining":
            self._series(resource, self.retrainings, (*ident, count.trigger, count.value)).inc()
            if count.duration is not None:
                histogram = self._series(resource, self.duration, (*ident, count.value))
                histogram.observe(count.duration)
        elif count.kind == "promotion":
            self._series(resource, self.promotions, (*ident, count.value)).inc()
        else:
            self._series(resource, self.rollouts, (*ident, count.value)).inc()

    def _series(self, resource: tuple[str, str], metric: Any, labels: tuple[str, ...]) -> Any:
        self._counter_series.setdefault(resource, set()).add((metric, labels))
        return metric.labels(*labels)


EXPORTER = Exporter()


def serve(port: int, addr: str = "0.0.0.0", exporter: Exporter = EXPORTER) -> None:
    """Serve ``/metrics`` of ``exporter`` on ``port`` in a daemon thread (0: do nothing)."""
    if port:
        start_http_server(port, addr=addr, registry=exporter.registry)
        log.info("metrics on http://%s:%d/metrics", addr, port)
