"""The promotion policy (pure): should the challenger replace the champion?

A challenger is promoted when, on the same pinned holdout, its metric beats the champion's by
at least ``min_improvement`` (for loss-like metrics, lower is better) and no class's recall
drops by more than ``max_recall_drop`` — an average can hide a class that got much worse.
With no champion, the first challenger is promoted.
"""

from __future__ import annotations

from dataclasses import dataclass, field

LOWER_IS_BETTER = {"log_loss", "calibration_error"}
METRICS = ("macro_f1", "accuracy", "log_loss", "calibration_error")


@dataclass(frozen=True)
class PromotionPolicy:
    metric: str = "macro_f1"
    min_improvement: float = 0.0
    max_recall_drop: float = 0.05

    def __post_init__(self) -> None:
        if self.metric not in METRICS:
            raise ValueError(f"unknown promotion metric {self.metric!r}; use one of {METRICS}")
        if self.max_recall_drop < 0:
            raise ValueError("max_recall_drop must be >= 0")


@dataclass(frozen=True)
class Decision:
    promote: bool
    reason: str
    metric: str
    candidate: float
    champion: float | None
    recall_drops: dict[str, float] = field(default_factory=dict)

    @property
    def outcome(self) -> str:
        return "promoted" if self.promote else "rejected"


def decide(
    candidate: dict[str, float],
    champion: dict[str, float] | None,
    policy: PromotionPolicy,
) -> Decision:
    """Metrics are flat dicts as produced by ``Evaluation.metrics()``."""
    value = candidate[policy.metric]
    if champion is None:
        return Decision(True, "no champion yet", policy.metric, value, None)
    current = champion[policy.metric]
    gain = current - value if policy.metric in LOWER_IS_BETTER else value - current
    drops = {
        key.removeprefix("recall."): round(champion[key] - candidate.get(key, 0.0), 6)
        for key in champion
        if key.startswith("recall.") and champion[key] - candidate.get(key, 0.0) > 0
    }
    worst = max(drops.items(), key=lambda kv: kv[1], default=None)
    if worst is not None and worst[1] > policy.max_recall_drop:
        reason = (
            f"recall of class {worst[0]!r} drops by {worst[1]:.4f} (> {policy.max_recall_drop})"
        )
        return Decision(False, reason, policy.metric, value, current, drops)
    if gain < policy.min_improvement:
        reason = (
            f"{policy.metric} {value:.4f} vs champion {current:.4f}: improvement "
            f"{gain:+.4f} is below the required {policy.min_improvement:+.4f}"
        )
        return Decision(False, reason, policy.metric, value, current, drops)
    reason = f"{policy.metric} {value:.4f} vs champion {current:.4f} ({gain:+.4f})"
    return Decision(True, reason, policy.metric, value, current, drops)
