"""Rollout decisions and status helpers without a cluster: first rollout, alias move, rollback
on a missed deadline, no retry of a rolled-back version, registry failures, merge patches."""

from __future__ import annotations

import ast
import dataclasses
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from textops.operator.rollout import (
    DeploymentState,
    blocked_version,
    deployment_state,
    plan_invalid,
    plan_rollout,
    plan_unresolved,
    spec_unserved,
)
from textops.operator.spec import ModelDeployment, Status
from textops.operator.status import find, set_condition, status_patch

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
ROOT = Path(__file__).resolve().parents[2]


def _mdep(status: Status | None = None, generation: int = 1, **spec: Any) -> ModelDeployment:
    body = {
        "metadata": {"name": "reviews", "namespace": "ml", "uid": "u1", "generation": generation},
        "spec": {"model": {"name": "m", "alias": "champion"}, **spec},
    }
    mdep = ModelDeployment.from_body(body)
    return dataclasses.replace(mdep, status=status or Status())


def _ready(version: str) -> DeploymentState:
    return DeploymentState(version, 2, 2, 1, 1, 1, 1)


def _apply(mdep: ModelDeployment, status: Status) -> ModelDeployment:
    return dataclasses.replace(mdep, status=status)


def test_first_rollout_then_available() -> None:
    mdep = _mdep()
    plan = plan_rollout(mdep, "1", None, NOW, 20)
    assert plan.version == "1"
    assert plan.status.phase == "Pending" and plan.status.serving_version is None
    assert find(plan.status.conditions, "Ready").reason == "RollingOut"

    done = plan_rollout(_apply(mdep, plan.status), "1", _ready("1"), NOW, 20)
    assert done.status.serving_version == "1" and done.status.model_uri == "models:/m/1"
    assert done.status.phase == "Serving" and done.status.observed_generation == 1
    assert [h.event for h in done.status.history] == ["RolledOut"]
    assert [e.reason for e in done.events] == ["RolledOut"]
    again = plan_rollout(_apply(mdep, done.status), "1", _ready("1"), NOW, 20)
    assert again.events == () and again.status == done.status  # steady state: no writes


def _serving(version: str) -> ModelDeployment:
    mdep = _mdep()
    first = plan_rollout(mdep, version, None, NOW, 20)
    done = plan_rollout(_apply(mdep, first.status), version, _ready(version), NOW, 20)
    return _apply(mdep, done.status)


def test_alias_move_rolls_out_while_the_old_version_keeps_serving() -> None:
    mdep = _serving("1")
    plan = plan_rollout(mdep, "2", _ready("1"), NOW, 20)
    assert plan.version == "2"
    assert plan.status.phase == "Promoting" and plan.status.serving_version == "1"
    progressing = DeploymentState("2", 3, 3, 1, 1, 1, 2)  # old pod still there
    assert plan_rollout(_apply(mdep, plan.status), "2", progressing, NOW, 20).version == "2"


def test_scaling_the_served_version_is_not_a_promotion() -> None:
    """Three replicas of the version already served, one available so far: still Serving and
    Ready (it read Promoting in ``kubectl get`` during a mere scale-up)."""
    mdep = _serving("1")
    scaling = DeploymentState("1", 3, 3, 3, 3, 1, 3)
    plan = plan_rollout(mdep, "1", scaling, NOW, 20)
    assert plan.version == "1" and plan.events == ()
    assert plan.status.phase == "Serving"
    assert find(plan.status.conditions, "Ready").status == "True"
    moving = plan_rollout(mdep, "2", scaling, NOW, 20)
    assert moving.status.phase == "Promoting"


def test_missed_deadline_rolls_back_once_and_does_not_retry() -> None:
    mdep = _serving("1")
    stuck = DeploymentState("2", 3, 3, 1, 0, 1, 1, deadline_exceeded=True)
    plan = plan_rollout(mdep, "2", stuck, NOW, 20)
    assert plan.version == "1"
    rolled = find(plan.status.conditions, "RolledBack")
    assert rolled is not None and rolled.status == "True"
    assert rolled.reason == "ProgressDeadlineExceeded" and "version 2" in rolled.message
    assert [(e.type, e.reason) for e in plan.events] == [("Warning", "RolledBack")]
    assert plan.status.history[-1].event == "RolledBack"
    assert plan.status.history[-1].version == "2"

    after = _apply(mdep, plan.status)
    assert blocked_version(after) == "2"
    back = plan_rollout(after, "2", _ready("1"), NOW, 20)
    assert back.version == "1" and back.events == ()
    assert back.status.phase == "Degraded"  # serving, but a rollout was rolled back

    moved = plan_rollout(_apply(after, back.status), "3", _ready("1"), NOW, 20)
    assert moved.version == "3"
    cleared = find(moved.status.conditions, "RolledBack")
    assert cleared is not None and cleared.status == "False"

    edited = dataclasses.replace(after, generation=2)  # a spec change allows a retry
    assert blocked_version(edited) is None
    assert plan_rollout(edited, "2", _ready("1"), NOW, 20).version == "2"


def test_missed_deadline_without_a_good_version_is_degraded() -> None:
    mdep = _mdep()
    stuck = DeploymentState("1", 1, 1, 1, 0, 0, 1, deadline_exceeded=True)
    plan = plan_rollout(mdep, "1", stuck, NOW, 20)
    assert plan.version == "1"
    ready = find(plan.status.conditions, "Ready")
    assert ready is not None and ready.status == "False"
    assert ready.reason == "ProgressDeadlineExceeded"
    assert [e.reason for e in plan.events] == ["ProgressDeadlineExceeded"]


def test_no_rollback_when_disabled() -> None:
    mdep = _serving("1")
    mdep = dataclasses.replace(
        mdep,
        spec=dataclasses.replace(
            mdep.spec, rollout=dataclasses.replace(mdep.spec.rollout, auto_rollback=False)
        ),
    )
    stuck = DeploymentState("2", 3, 3, 1, 0, 1, 1, deadline_exceeded=True)
    plan = plan_rollout(mdep, "2", stuck, NOW, 20)
    assert plan.version == "2" and plan.status.phase == "Degraded"


def test_registry_problems() -> None:
    missing = plan_unresolved(_mdep(), "ModelNotFound", "no model", NOW, permanent=True)
    assert missing.status.phase == "Failed" and [e.reason for e in missing.events] == [
        "ModelNotFound"
    ]
    repeat = plan_unresolved(
        _apply(_mdep(), missing.status), "ModelNotFound", "no model", NOW, permanent=True
    )
    assert repeat.events == ()  # one Event per transition

    down = plan_unresolved(_serving("1"), "RegistryUnavailable", "down", NOW, permanent=False)
    assert down.version == "1" and down.status.phase == "Degraded"
    assert down.status.serving_version == "1"

    # the model appears: the Failed state clears as soon as the rollout starts
    recovering = plan_rollout(_apply(_mdep(), missing.status), "1", None, NOW, 20)
    assert recovering.status.phase == "Pending"


def test_invalid_spec_status() -> None:
    status = plan_invalid(Status(), 3, "spec.x: bad", NOW)
    assert status.phase == "Failed" and status.observed_generation == 3
    assert status.conditions[0].reason == "InvalidSpec"


def test_deployment_state_reads_the_api_shape() -> None:
    body = {
        "metadata": {"generation": 4},
        "spec": {
            "replicas": 2,
            "template": {"metadata": {"labels": {"textops.io/model-version": "7"}}},
        },
        "status": {
            "observedGeneration": 4,
            "replicas": 2,
            "updatedReplicas": 2,
            "availableReplicas": 2,
            "conditions": [{"type": "Progressing", "status": "True", "reason": "X"}],
        },
    }
    state = deployment_state(body)
    assert state.version == "7" and state.complete and not state.deadline_exceeded
    body["status"]["conditions"] = [
        {"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded"}
    ]
    assert deployment_state(body).deadline_exceeded


def test_conditions_keep_transition_time_and_patch_deletes() -> None:
    conds, changed = set_condition((), "Ready", "True", "Available", "ok", NOW)
    assert changed
    later = NOW + timedelta(minutes=5)
    conds2, changed2 = set_condition(conds, "Ready", "True", "Available", "ok, 2 pods", later)
    assert not changed2 and conds2[0].last_transition_time == NOW
    old = Status(serving_version="1", conditions=conds)
    new = dataclasses.replace(old, serving_version=None, conditions=conds2)
    patch = status_patch(old, new)
    assert patch["servingVersion"] is None and patch["conditions"][0]["message"] == "ok, 2 pods"
    assert status_patch(old, old) == {}


@pytest.mark.parametrize("module", ["rollout", "retraining", "status"])
def test_planners_import_no_io_libraries(module: str) -> None:
    """The I/O half's decisions stay pure too (as the pure half's, test_operator_spec.py)."""
    source = (ROOT / "textops" / "operator" / f"{module}.py").read_text(encoding="utf-8")
    imported: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            imported.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            imported.add(node.module.split(".")[0])
    assert not imported & {"kopf", "kubernetes", "mlflow"}, imported


@pytest.mark.parametrize(
    ("metadata", "status", "unserved"),
    [
        ({"generation": 1}, {}, True),  # new: the operator never wrote status
        ({}, {}, True),  # no generation yet: a new resource
        ({"generation": 1}, {"observedGeneration": 1}, False),  # its own status write's event
        ({"generation": 3}, {"observedGeneration": 2}, True),  # the spec changed
        ({"generation": 2, "deletionTimestamp": "2026-12-07T00:00:00Z"}, {}, False),
    ],
)
def test_a_watch_event_asks_for_a_rollout_only_for_a_spec_not_yet_served(
    metadata: dict[str, Any], status: dict[str, Any], unserved: bool
) -> None:
    body = {"metadata": {"name": "m", **metadata}, "status": status}
    assert spec_unserved(body) is unserved
