"""The promotion policy decides from plain metric dicts."""

from __future__ import annotations

import pytest

from textops.registry.promotion import PromotionPolicy, decide

CHAMP = {"macro_f1": 0.85, "log_loss": 0.40, "recall.a": 0.90, "recall.b": 0.80}


def test_first_challenger_is_promoted() -> None:
    d = decide({"macro_f1": 0.5}, None, PromotionPolicy())
    assert d.promote and d.outcome == "promoted" and "no champion" in d.reason


def test_better_metric_promotes_and_worse_rejects() -> None:
    better = {**CHAMP, "macro_f1": 0.86}
    assert decide(better, CHAMP, PromotionPolicy()).promote
    worse = {**CHAMP, "macro_f1": 0.84}
    d = decide(worse, CHAMP, PromotionPolicy())
    assert not d.promote and "below the required" in d.reason


def test_min_improvement_is_required() -> None:
    slightly = {**CHAMP, "macro_f1": 0.855}
    assert not decide(slightly, CHAMP, PromotionPolicy(min_improvement=0.01)).promote
    assert decide(slightly, CHAMP, PromotionPolicy(min_improvement=0.005)).promote


def test_a_class_recall_collapse_blocks_promotion_despite_a_better_average() -> None:
    lopsided = {**CHAMP, "macro_f1": 0.90, "recall.b": 0.70}
    d = decide(lopsided, CHAMP, PromotionPolicy(max_recall_drop=0.05))
    assert not d.promote and "'b'" in d.reason and d.recall_drops == {"b": pytest.approx(0.1)}
    assert decide(lopsided, CHAMP, PromotionPolicy(max_recall_drop=0.2)).promote


def test_loss_metrics_are_lower_is_better() -> None:
    policy = PromotionPolicy(metric="log_loss")
    assert decide({**CHAMP, "log_loss": 0.35}, CHAMP, policy).promote
    assert not decide({**CHAMP, "log_loss": 0.45}, CHAMP, policy).promote


def test_bad_policy_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown promotion metric"):
        PromotionPolicy(metric="auc")
    with pytest.raises(ValueError):
        PromotionPolicy(max_recall_drop=-1)
