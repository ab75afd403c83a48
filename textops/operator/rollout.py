"""Rollout decisions (pure): which version the Deployment should run, and what status says.

Inputs are plain data: the resource (spec and last status), the version the registry resolves
the spec to, and what the live Deployment reports. The output is the version to build the
Deployment with, the new status and the Events to post. Nothing here is remembered in memory:
"the last good version" is ``status.servingVersion`` (set only once a version is available),
"the version being rolled out" is the Deployment's own pod-template label, and "a version that
was rolled back" is the newest ``RolledBack`` history record while the ``RolledBack`` condition
is true. So an operator restarted at any point reaches the same decision.

A rolled-back version is not retried until the alias moves to another version or the spec
changes (a new ``metadata.generation``): retrying by itself would just fail again.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from textops.contracts import Label
from textops.operator.builders import model_uri
from textops.operator.spec import Condition, ModelDeployment, Status
from textops.operator.status import (
    DEGRADED,
    READY,
    ROLLED_BACK,
    append_history,
    find,
    last_event,
    phase_of,
    set_condition,
)

DEADLINE_REASON = "ProgressDeadlineExceeded"
EventType = Literal["Normal", "Warning"]


@dataclass(frozen=True)
class Event:
    """A Kubernetes Event to post on the ModelDeployment."""

    type: EventType
    reason: str
    message: str


@dataclass(frozen=True)
class DeploymentState:
    """What the serving Deployment reports about itself."""

    version: str | None
    generation: int = 0
    observed_generation: int = 0
    replicas: int = 1
    updated: int = 0
    available: int = 0
    total: int = 0
    deadline_exceeded: bool = False

    @property
    def observed(self) -> bool:
        """The controller has seen the newest template (its conditions are about it)."""
        return self.observed_generation >= self.generation

    @property
    def complete(self) -> bool:
        """Every wanted pod runs the newest template and is available; no old pods left."""
        return (
            self.observed
            and self.updated == self.replicas
            and self.available >= self.replicas
            and self.total == self.replicas
        )


def deployment_state(body: Mapping[str, Any]) -> DeploymentState:
    """Read a Deployment as the API returns it (camelCase dict)."""
    meta = body.get("metadata") or {}
    spec, status = body.get("spec") or {}, body.get("status") or {}
    template_labels = ((spec.get("template") or {}).get("metadata") or {}).get("labels") or {}
    conditions = status.get("conditions") or []
    return DeploymentState(
        version=template_labels.get(Label.MODEL_VERSION),
        generation=int(meta.get("generation") or 0),
        observed_generation=int(status.get("observedGeneration") or 0),
        replicas=1 if spec.get("replicas") is None else int(spec["replicas"]),
        updated=int(status.get("updatedReplicas") or 0),
        available=int(status.get("availableReplicas") or 0),
        total=int(status.get("replicas") or 0),
        deadline_exceeded=any(
            c.get("type") == "Progressing"
            and c.get("status") == "False"
            and c.get("reason") == DEADLINE_REASON
            for c in conditions
        ),
    )


@dataclass(frozen=True)
class RolloutPlan:
    """``version``: what the Deployment must be built with (None: nothing can be served)."""

    version: str | None
    status: Status
    events: tuple[Event, ...] = ()


class _Draft:
    """Accumulates condition changes, history and Events for one decision."""

    def __init__(self, mdep: ModelDeployment, now: datetime, history_limit: int) -> None:
        self.mdep, self.now, self.limit = mdep, now, history_limit
        self.conditions: tuple[Condition, ...] = mdep.status.conditions
        self.history = mdep.status.history
        self.events: list[Event] = []

    def condition(
        self,
        type_: str,
        status: Literal["True", "False", "Unknown"],
        reason: str,
        message: str,
        event: EventType | None = None,
        event_reason: str | None = None,
    ) -> None:
        """Set a condition; post an Event of type ``event`` only when it transitions."""
        self.conditions, changed = set_condition(
            self.conditions, type_, status, reason, message, self.now, self.mdep.generation
        )
        if changed and event is not None:
            self.events.append(Event(event, event_reason or reason, message))


def blocked_version(mdep: ModelDeployment) -> str | None:
    """The version rolled back from, while that still stands (see the module docstring)."""
    cond = find(mdep.status.conditions, ROLLED_BACK)
    if cond is None or cond.status != "True":
        return None
    if (
        cond.observed_generation is not None
        and mdep.generation is not None
        and mdep.generation > cond.observed_generation
    ):
        return None
    record = last_event(mdep.status.history, "RolledBack")
    return record.version if record is not None else None


def plan_rollout(
    mdep: ModelDeployment,
    target: str,
    deployment: DeploymentState | None,
    now: datetime,
    history_limit: int,
) -> RolloutPlan:
    """Decide the Deployment's version and the status, given the resolved ``target``."""
    draft = _Draft(mdep, now, history_limit)
    serving = mdep.status.serving_version
    name = mdep.spec.model.name
    blocked = blocked_version(mdep)
    if blocked is not None and target != blocked:
        blocked = None
    if blocked is None and find(draft.conditions, ROLLED_BACK) is not None:
        draft.condition(ROLLED_BACK, "False", "NewTarget", f"rolling out version {target}")
    desired = serving if blocked is not None and serving else target
    stuck = ""

    version: str | None = desired
    rolling_out = True
    if deployment is not None and deployment.version == desired and deployment.observed:
        if deployment.complete:
            rolling_out = False
            if serving != desired:
                message = f"version {desired} of {name} is available"
                draft.history = append_history(
                    draft.history, history_limit, now, "RolledOut", desired, message=message
                )
                draft.events.append(Event("Normal", "RolledOut", message))
                serving = desired
            draft.condition(
                READY,
                "True",
                "Available",
                f"{deployment.available}/{deployment.replicas} pods of version {desired} ready",
            )
        elif deployment.deadline_exceeded:
            deadline = mdep.spec.rollout.progress_deadline_seconds
            failed = f"version {desired} did not become available within {deadline}s"
            if serving and serving != desired and mdep.spec.rollout.auto_rollback:
                message = f"{failed}; rolled back to version {serving}"
                draft.history = append_history(
                    draft.history, history_limit, now, "RolledBack", desired, message=message
                )
                draft.condition(
                    ROLLED_BACK, "True", DEADLINE_REASON, message, "Warning", "RolledBack"
                )
                version = serving
            else:
                stuck = failed
                rolling_out = False
    if stuck:
        draft.condition(DEGRADED, "True", DEADLINE_REASON, stuck, "Warning")
        if serving is None:
            draft.condition(READY, "False", DEADLINE_REASON, stuck)
    else:
        draft.condition(
            DEGRADED, "False", "AsExpected", f"{name} {mdep.spec.model.target} is version {target}"
        )
        ready = find(draft.conditions, READY)
        if rolling_out and (ready is None or ready.status != "True"):
            message = f"rolling out version {desired} of {name}"
            draft.condition(READY, "False", "RollingOut", message)

    status = dataclasses.replace(
        mdep.status,
        observed_generation=mdep.generation,
        serving_version=serving,
        model_uri=model_uri(name, serving) if serving else None,
        conditions=draft.conditions,
        history=draft.history,
        # a Deployment catching up with the version already served (more replicas, new pod
        # settings) is no promotion: only a change of version reads Promoting
        phase=phase_of(draft.conditions, serving, rolling_out and desired != serving),
    )
    return RolloutPlan(version, status, tuple(draft.events))


def plan_unresolved(
    mdep: ModelDeployment,
    reason: str,
    message: str,
    now: datetime,
    *,
    permanent: bool,
) -> RolloutPlan:
    """The registry could not say which version to serve.

    ``permanent`` (unknown model or version): Ready=False, phase Failed, until it appears.
    Otherwise (registry unreachable): Degraded=True; pods keep serving what they serve.
    """
    draft = _Draft(mdep, now, 1)
    if permanent:
        draft.condition(READY, "False", reason, message, "Warning")
    else:
        draft.condition(DEGRADED, "True", reason, message, "Warning")
    status = dataclasses.replace(
        mdep.status,
        observed_generation=mdep.generation,
        conditions=draft.conditions,
        phase="Failed" if permanent else "Degraded",
    )
    return RolloutPlan(mdep.status.serving_version, status, tuple(draft.events))


def plan_invalid(status: Status, generation: int | None, message: str, now: datetime) -> Status:
    """A spec the operator cannot act on: phase Failed with Ready=False/InvalidSpec."""
    conditions, _ = set_condition(
        status.conditions, READY, "False", "InvalidSpec", message, now, generation
    )
    return dataclasses.replace(
        status, observed_generation=generation, conditions=conditions, phase="Failed"
    )


def spec_unserved(body: Mapping[str, Any]) -> bool:
    """Whether the resource's current spec has not been acted on: its ``generation`` is newer
    than the status' ``observedGeneration`` (a new resource has neither), and it is not being
    deleted."""
    meta = body.get("metadata") or {}
    if meta.get("deletionTimestamp"):
        return False
    observed = (body.get("status") or {}).get("observedGeneration") or 0
    return int(meta.get("generation") or 1) > int(observed)
