"""Kopf handlers of the ModelDeployment resource: thin on purpose.

Each handler names the keyword arguments it uses and hands over to ``reconcile.py`` (read the
world, decide with the pure modules, write), logging its two expected failures, which ``reconcile``
has already written to status: a spec the operator cannot act on (the status and an Event say
why; no retry storm), an unreachable registry (the next upkeep pass retries; the pods keep
serving what they serve).

Handlers are synchronous: the kubernetes and MLflow clients block, so Kopf runs them in its
thread pool. The level-triggered safety net is ``upkeep.py``, started with the operator: it
re-converges every resource every ``TEXTOPS_RECONCILE_SECONDS`` (default 10) and also reads
Prometheus and decides retraining. No handler needs a finalizer, so Kopf puts none on the
resources and a deletion never waits for the operator.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable
from typing import Any

import kopf
from kubernetes import client, config

from textops.contracts import Env
from textops.operator import reconcile
from textops.operator.config import load_config
from textops.operator.kube_io import Kube
from textops.operator.rollout import spec_unserved
from textops.operator.spec import GROUP, PLURAL, VERSION
from textops.operator.upkeep import Upkeep

RECONCILE_SECONDS = float(os.environ.get(Env.RECONCILE_SECONDS) or 10)
# Threads running the (blocking) handlers. Each pass mostly waits on the API server and MLflow,
# so more threads than cores keep a burst of new resources moving
# (benchmarks/operator_convergence.py).
WORKERS = 16
FINALIZER = f"{GROUP}/operator"
RESOURCE = (GROUP, VERSION, PLURAL)
# The namespaces the operator watches (main.py sets them before Kopf starts); empty: all.
WATCHED_NAMESPACES: list[str] = []


@kopf.on.startup()
def configure(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
    """All operator settings in one place, and the clients every handler shares."""
    # Should Kopf ever keep progress or a last-handled spec (no handler of ours makes it), in
    # annotations under our own prefix: the structural CRD schema would prune ``status.kopf``.
    settings.persistence.finalizer = FINALIZER
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=GROUP)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix=GROUP, key="last-handled-configuration"
    )
    settings.posting.level = logging.WARNING  # our own Events say what happened
    settings.posting.reporting_component = "textops-operator"
    settings.scanning.disabled = True  # no CRD watching: least privilege (see manifests/rbac)
    settings.peering.standalone = True  # one replica (the Deployment uses Recreate)
    settings.watching.server_timeout = 270  # reconnect before proxies cut idle watches
    settings.execution.max_workers = WORKERS
    memo.world = reconcile.World(kube=Kube(_api_client()), config=load_config())


@kopf.on.startup()
async def start_upkeep(memo: kopf.Memo, **_: Any) -> None:
    """The periodic pass over every resource (upkeep.py), for as long as the operator runs."""
    world = memo.world
    upkeep = Upkeep(
        list_keys=lambda: world.kube.list_mdeps(WATCHED_NAMESPACES),
        tick=lambda namespace, name: _tick(world, namespace, name),
        interval=RECONCILE_SECONDS,
        workers=WORKERS,
    )
    memo.upkeep, memo.upkeep_stop = upkeep, asyncio.Event()
    memo.upkeep_task = asyncio.create_task(upkeep.run(memo.upkeep_stop))


@kopf.on.cleanup()
async def stop_upkeep(memo: kopf.Memo, **_: Any) -> None:
    memo.upkeep_stop.set()
    await memo.upkeep_task
    memo.upkeep.shutdown()


def _api_client() -> client.ApiClient:
    settings = client.Configuration()
    try:
        config.load_incluster_config(client_configuration=settings)
    except config.ConfigException:
        config.load_kube_config(client_configuration=settings)
    settings.connection_pool_maxsize = WORKERS  # one connection per handler thread
    return client.ApiClient(settings)


@kopf.on.event(*RESOURCE)
def on_event(name: str, namespace: str | None, memo: Any, **kwargs: Any) -> None:
    """Every watch event of a ModelDeployment: react at once to a spec the operator has not
    served yet; drop the metrics of one that is gone.

    A watch-event handler rather than ``on.create``/``on.update``/``on.resume``: those make
    Kopf write its last-handled configuration into an annotation after each one, a fifth API
    write per new resource that a burst of them queues behind (the status' own
    ``observedGeneration`` says the same thing). Events of the operator's own status writes,
    and of a restart's initial listing of resources already served, ask nothing: their
    generation is observed; the upkeep pass looks at those anyway. Failures are recorded in
    status by ``reconcile``; the next upkeep pass retries (no Kopf retry state either). No
    handler needs a finalizer, and the children go with the garbage collector.
    """
    assert namespace is not None  # the CRD is namespaced
    event, body = kwargs.get("type"), kwargs.get("body") or {}
    if event == "DELETED":
        reconcile.forget(namespace, name)
        return
    if spec_unserved(body):
        _logging_failures(reconcile.converge, memo.world, namespace, name)


def _tick(world: reconcile.World, namespace: str, name: str) -> None:
    """Level-triggered upkeep of one resource: follow the alias, finish rollouts, observe,
    retrain."""
    _logging_failures(reconcile.tick, world, namespace, name)  # converge, then observe


def _logging_failures(
    step: Callable[[reconcile.World, str, str], None],
    world: reconcile.World,
    namespace: str,
    name: str,
) -> None:
    """Run a reconcile step; its two expected failures are already in status, so they are
    only logged (the next upkeep pass retries)."""
    try:
        step(world, namespace, name)
    except (reconcile.InvalidSpec, reconcile.RegistryDown) as exc:
        logging.getLogger("textops.operator").info("%s/%s not converged: %s", namespace, name, exc)
