"""Status helpers (pure): conditions with Kubernetes semantics, bounded history, the phase.

Conditions follow metav1.Condition: one entry per ``type``, and ``lastTransitionTime`` moves
only when ``status`` changes, so ``kubectl wait --for=condition=Ready`` and alerting on
transitions work. A change of status or reason is a *transition* worth an Event; re-asserting
the same condition is not, which keeps a timer from flooding the namespace with Events.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from textops.operator.spec import (
    Condition,
    ConditionStatus,
    HistoryEvent,
    HistoryRecord,
    Phase,
    Status,
    dump,
)

READY = "Ready"
DRIFTING = "Drifting"
QUALITY_LOW = "QualityLow"
RETRAINING = "Retraining"
ROLLED_BACK = "RolledBack"
DEGRADED = "Degraded"


def find(conditions: Iterable[Condition], type_: str) -> Condition | None:
    """The condition of ``type_``, if present."""
    return next((c for c in conditions if c.type == type_), None)


def is_true(conditions: Iterable[Condition], type_: str) -> bool:
    found = find(conditions, type_)
    return found is not None and found.status == "True"


def set_condition(
    conditions: Sequence[Condition],
    type_: str,
    status: ConditionStatus,
    reason: str,
    message: str,
    now: datetime,
    generation: int | None = None,
) -> tuple[tuple[Condition, ...], bool]:
    """Conditions with ``type_`` set; and whether status or reason changed (a transition)."""
    old = find(conditions, type_)
    changed = old is None or old.status != status or old.reason != reason
    since = old.last_transition_time if old is not None and old.status == status else now
    new = Condition(type_, status, since, reason, message, generation)
    if old is not None and old == new:
        return tuple(conditions), False
    out = [new if c.type == type_ else c for c in conditions]
    if old is None:
        out.append(new)
    return tuple(out), changed


def append_history(
    history: Sequence[HistoryRecord],
    limit: int,
    time: datetime,
    event: HistoryEvent,
    version: str | None = None,
    job: str | None = None,
    message: str | None = None,
    **details: Any,
) -> tuple[HistoryRecord, ...]:
    """History with one record added at the end, keeping the newest ``limit``.

    ``details`` are further :class:`HistoryRecord` fields (a candidate's lineage and verdict).
    """
    record = HistoryRecord(time, event, version, job, message, **details)
    return (*history, record)[-limit:]


def last_event(history: Sequence[HistoryRecord], event: HistoryEvent) -> HistoryRecord | None:
    """The newest record of ``event``."""
    return next((h for h in reversed(history) if h.event == event), None)


def phase_of(
    conditions: Sequence[Condition], serving_version: str | None, rolling_out: bool
) -> Phase:
    """The one-word summary, most urgent first: Failed, Retraining, Promoting, Degraded."""
    ready = find(conditions, READY)
    if ready is not None and ready.status == "False" and ready.reason in FAILED_REASONS:
        return "Failed"
    if is_true(conditions, RETRAINING):
        return "Retraining"
    if rolling_out:
        return "Promoting" if serving_version else "Pending"
    if serving_version is None:
        return "Pending"
    if any(is_true(conditions, t) for t in (DRIFTING, QUALITY_LOW, ROLLED_BACK, DEGRADED)):
        return "Degraded"
    if ready is not None and ready.status != "True":
        return "Degraded"
    return "Serving"


# Ready=False reasons that mean "cannot serve until a person acts".
FAILED_REASONS = frozenset({"InvalidSpec", "ModelNotFound", "VersionNotFound"})


def status_patch(old: Status, new: Status) -> dict[str, Any]:
    """The JSON merge patch turning ``old`` into ``new`` (empty when nothing changed)."""
    patch = _diff(dump(old), dump(new))
    return patch if isinstance(patch, dict) else {}


def _diff(old: Any, new: Any) -> Any:
    if isinstance(old, dict) and isinstance(new, dict):
        out: dict[str, Any] = {}
        for key in old.keys() | new.keys():
            if key not in new:
                out[key] = None
            elif key not in old:
                out[key] = new[key]
            elif old[key] != new[key]:
                out[key] = _diff(old[key], new[key])
        return out
    return new
