"""One reconciliation pass per ModelDeployment: read the world, decide (pure), write (I/O).

The Kopf handlers (``handlers.py``) call these functions; they hold no logic of their own.
Each pass re-reads the resource from the API first (a handler's ``body`` may be older than the
status another pass just wrote) and runs under a per-resource lock, so the create/update
handler and the timer never interleave their writes within one operator process. Everything a
later pass needs is written to the resource's status or to the children, never kept here.
Every status write also updates the operator's metrics (``metrics.py``) from the resource as
written, so they follow each pass, failed ones included.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from textops.operator import metrics, prometheus_io, registry_io
from textops.operator.builders import (
    build_deployment,
    build_retraining_job,
    build_service,
    deployment_name,
    selector_labels,
)
from textops.operator.config import Config
from textops.operator.kube_io import Kube
from textops.operator.policy import Observation
from textops.operator.retraining import job_state, plan_retraining, unrecorded_success
from textops.operator.rollout import (
    Event,
    RolloutPlan,
    deployment_state,
    plan_invalid,
    plan_rollout,
    plan_unresolved,
)
from textops.operator.spec import ModelDeployment, SpecError, Status, parse
from textops.operator.status import status_patch

log = logging.getLogger(__name__)
_warned: dict[str, str] = {}  # only to keep the log quiet: the same warning once per outage
_locks: dict[str, threading.Lock] = {}
_locks_guard = threading.Lock()


class InvalidSpec(Exception):
    """The spec cannot be acted on; the status says why (a permanent error)."""


class RegistryDown(Exception):
    """The registry did not answer; the status says so (retry later)."""


@dataclass(frozen=True)
class World:
    """What a pass talks to: the cluster and the operator's configuration."""

    kube: Kube
    config: Config


def lock_for(namespace: str, name: str) -> threading.Lock:
    with _locks_guard:
        return _locks.setdefault(f"{namespace}/{name}", threading.Lock())


def now() -> datetime:
    return datetime.now(UTC)


def converge(world: World, namespace: str, name: str) -> None:
    """Serve the version the spec names: resolve it, build and apply the children, report.

    Raises :class:`InvalidSpec` or :class:`RegistryDown` after recording them in status.
    """
    with lock_for(namespace, name):
        body = world.kube.read_mdep(namespace, name)
        if body is None or _deleting(body):
            return
        _converge(world, body)


def tick(world: World, namespace: str, name: str) -> None:
    """The timer's pass: converge, then observe (:func:`_observe`), reading the resource once.

    Under one lock, so the status ``observe`` starts from is the one ``converge`` just wrote
    (the patch response), not a second read of the API. Raises as :func:`converge` does, and
    then does not observe.
    """
    with lock_for(namespace, name):
        body = world.kube.read_mdep(namespace, name)
        if body is None or _deleting(body):
            return
        _observe(world, _converge(world, body))


FORGET_WAIT_SECONDS = 5.0


def forget(namespace: str, name: str) -> None:
    """The resource is gone: drop its metrics' label sets.

    Under its lock when it can be had soon, so a pass in flight cannot put them back afterwards
    (later passes find the resource gone or deleting and stop before writing); a pass stuck on
    a slow registry must not hold up the event handler, so after a few seconds they are
    dropped anyway.
    """
    lock = lock_for(namespace, name)
    locked = lock.acquire(timeout=FORGET_WAIT_SECONDS)
    try:
        metrics.EXPORTER.forget(namespace, name)
    finally:
        if locked:
            lock.release()


def _converge(world: World, body: dict[str, Any]) -> dict[str, Any]:
    """One rollout pass over ``body``; the resource as it is after the status write."""
    meta = body["metadata"]
    namespace = meta["namespace"]
    mdep = _parse_or_fail(world, body)
    live = world.kube.read_deployment(namespace, deployment_name(mdep))
    try:
        target = registry_io.resolve(world.config.tracking_uri, mdep.spec.model)
    except registry_io.NotFound as exc:
        plan = plan_unresolved(mdep, exc.reason, str(exc), now(), permanent=True)
        return _write(world, body, mdep.status, plan)
    except registry_io.Unavailable as exc:
        plan = plan_unresolved(mdep, "RegistryUnavailable", str(exc), now(), permanent=False)
        _write(world, body, mdep.status, plan)
        raise RegistryDown(str(exc)) from exc
    state = deployment_state(live) if live is not None else None
    plan = plan_rollout(mdep, target, state, now(), world.config.history_limit)
    if plan.version is not None:
        world.kube.apply_deployment(build_deployment(mdep, world.config, plan.version), live)
        world.kube.ensure_service(build_service(mdep, world.config), check_first=live is not None)
    return _write(world, body, mdep.status, plan)


def _deleting(body: dict[str, Any]) -> bool:
    """Being deleted: the garbage collector removes the children; nothing to converge."""
    return bool((body.get("metadata") or {}).get("deletionTimestamp"))


def _parse_or_fail(world: World, body: dict[str, Any]) -> ModelDeployment:
    try:
        return ModelDeployment.from_body(body)
    except SpecError as exc:
        try:
            old = parse(Status, body.get("status") or {}, "status")
        except SpecError:
            old = Status()
        generation = (body.get("metadata") or {}).get("generation")
        new = plan_invalid(old, generation, str(exc), now())
        events: tuple[Event, ...] = ()
        if old.phase != "Failed" or old.observed_generation != generation:
            events = (Event("Warning", "InvalidSpec", str(exc)),)
        _write(world, body, old, RolloutPlan(None, new, events))
        raise InvalidSpec(str(exc)) from exc


def _write(world: World, body: dict[str, Any], old: Status, plan: RolloutPlan) -> dict[str, Any]:
    """Patch the status (when it changed), post the Events, export the metrics; the resource
    after the write."""
    meta = body["metadata"]
    patch = status_patch(old, plan.status)
    written = world.kube.patch_status(meta["namespace"], meta["name"], patch) if patch else None
    for event in plan.events:
        log.info("%s/%s %s: %s", meta["namespace"], meta["name"], event.reason, event.message)
        world.kube.post_event(body, event.type, event.reason, event.message)
    after = written if written is not None else body
    metrics.EXPORTER.update(after, before=body)
    return after


def _observe(world: World, body: dict[str, Any]) -> None:
    """Read drift and quality when due, book-keep retraining Jobs, start one when decided."""
    try:
        mdep = ModelDeployment.from_body(body)
    except SpecError:
        return  # converge() reported it
    namespace, name = mdep.namespace, mdep.name
    t = now()
    url = mdep.spec.monitoring.prometheus or world.config.prometheus_url
    observation, labels = _read_prometheus(mdep, url, t)
    selector = selector_labels(mdep, "retraining")
    jobs = [job_state(j) for j in world.kube.list_jobs(namespace, selector)]
    done = unrecorded_success(mdep, jobs)
    found = None
    if done is not None and done.trigger_id:
        try:
            found = registry_io.candidate(
                world.config.tracking_uri, mdep.spec.model.name, done.trigger_id
            )
        except registry_io.Unavailable as exc:
            log.warning("%s/%s: cannot read the Job's candidate: %s", namespace, name, exc)
            return  # record the outcome once the registry answers
    plan = plan_retraining(mdep, observation, jobs, found, labels, t, world.config.history_limit)
    if plan.start is not None:
        job = build_retraining_job(plan.mdep, world.config, plan.start, mdep.status.serving_version)
        created = world.kube.create_job(job)
        log.info(
            "%s/%s: Job %s %s",
            namespace,
            name,
            job["metadata"]["name"],
            "created" if created else "already exists",
        )
    _write(world, body, mdep.status, RolloutPlan(None, plan.mdep.status, plan.events))


def _read_prometheus(
    mdep: ModelDeployment, url: str, t: datetime
) -> tuple[Observation | None, int]:
    """The reading when one is due (None otherwise or on failure) and the new-label count."""
    st, mon = mdep.status, mdep.spec.monitoring
    version = st.serving_version
    due = st.drift.observed_at is None or t - st.drift.observed_at >= mon.interval
    if version is None or not due:
        return None, 0
    since = st.last_retraining.started_at or mdep.created_at or t
    try:
        observation = prometheus_io.observe(
            url,
            mdep.spec.model.name,
            version,
            mon.quality.window,
            mdep.namespace,
            mdep.name,
            mon.quality.metric,
        )
        labels = prometheus_io.new_labels(url, mdep.spec.model.name, t - since)
    except prometheus_io.Unavailable as exc:
        _warn_once(f"{mdep.namespace}/{mdep.name}", str(exc))
        return None, 0
    _warned.pop(f"{mdep.namespace}/{mdep.name}", None)
    return observation, labels


def _warn_once(key: str, message: str) -> None:
    """Log a warning when it is new for ``key``; repeats go to debug (a timer runs often)."""
    if _warned.get(key) == message:
        log.debug("%s: %s", key, message)
        return
    _warned[key] = message
    log.warning("%s: %s", key, message)
