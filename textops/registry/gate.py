"""The promotion gate (I/O): evaluate challenger and champion, decide, move the alias, record.

Both versions are loaded as pyfuncs and scored on the pinned holdout rows of one dataset version
(the newest by default), so the comparison is fair even when they were trained on different
versions. The decision and its numbers are written as tags on the challenger's version; the
``champion`` alias moves only when the policy passes. Model stages are never used.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import mlflow.pyfunc
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from textops.contracts import Alias, Tag
from textops.data.split import split_indices
from textops.data.store import open_store
from textops.errors import RegistryError
from textops.model.evaluation import Evaluation, evaluate
from textops.model.pyfunc import TEXT_COLUMN, proba_from_frame
from textops.registry.promotion import Decision, PromotionPolicy, decide
from textops.registry.tracking import connect, is_missing
from textops.settings import Settings


@dataclass
class GateResult:
    model_name: str
    challenger: str
    champion_before: str | None
    champion_after: str | None
    dataset_id: str
    decision: Decision
    challenger_eval: Evaluation
    champion_eval: Evaluation | None

    def summary(self) -> dict[str, Any]:
        return {
            "model": self.model_name,
            "challenger": self.challenger,
            "champion_before": self.champion_before,
            "champion_after": self.champion_after,
            "decision": self.decision.outcome,
            "reason": self.decision.reason,
            "dataset": self.dataset_id,
            "metric": self.decision.metric,
            "challenger_value": round(self.decision.candidate, 4),
            "champion_value": None
            if self.decision.champion is None
            else round(self.decision.champion, 4),
        }


def alias_version(client: MlflowClient, name: str, alias: str) -> str | None:
    """The version ``alias`` points at; None when MLflow says there is none (an outage
    raises: it must not read as "no champion yet", which would promote without a gate)."""
    try:
        return str(client.get_model_version_by_alias(name, alias).version)
    except MlflowException as exc:
        if not is_missing(exc):
            raise
        return None


def promote(
    settings: Settings,
    policy: PromotionPolicy,
    dataset_id: str = "latest",
    candidate: str | None = None,
) -> GateResult:
    """Gate version ``candidate`` against @champion, moving the alias if it wins.

    A retraining Job names the version it trained: the global @challenger alias is moved by
    every training of the model, so two trainings at once would gate each other's version.
    Without ``candidate`` (a person at the CLI) the @challenger version is gated.
    """
    client = connect(settings)
    name = settings.model_name
    challenger = _candidate(client, name, candidate)
    champion = alias_version(client, name, Alias.CHAMPION)
    dataset = open_store(settings.data_uri, settings).get(dataset_id)
    _, holdout = split_indices(dataset.texts)
    texts = [dataset.texts[i] for i in holdout]
    truth = [dataset.labels[i] for i in holdout]
    challenger_eval = _score(name, challenger, texts, truth)
    champion_eval = None
    if champion == challenger:
        decision = Decision(
            False,
            f"version {challenger} is already {Alias.CHAMPION}",
            policy.metric,
            challenger_eval.metrics()[policy.metric],
            challenger_eval.metrics()[policy.metric],
        )
    else:
        if champion is not None:
            champion_eval = _score(name, champion, texts, truth)
        decision = decide(
            challenger_eval.metrics(), champion_eval.metrics() if champion_eval else None, policy
        )
    _record(client, name, challenger, champion, dataset.id, policy, decision)
    if decision.promote:
        client.set_registered_model_alias(name, Alias.CHAMPION, challenger)
    return GateResult(
        model_name=name,
        challenger=challenger,
        champion_before=champion,
        champion_after=challenger if decision.promote else champion,
        dataset_id=dataset.id,
        decision=decision,
        challenger_eval=challenger_eval,
        champion_eval=champion_eval,
    )


def _candidate(client: MlflowClient, name: str, version: str | None) -> str:
    if version is None:
        found = alias_version(client, name, Alias.CHALLENGER)
        if found is None:
            raise RegistryError(
                f"model {name!r} has no '{Alias.CHALLENGER}' version: run 'textops train'"
            )
        return found
    if not version.isdigit():
        raise RegistryError(f"a model version is a number, not {version!r}")
    try:
        client.get_model_version(name, version)
    except MlflowException as exc:
        if not is_missing(exc):
            raise
        raise RegistryError(f"model {name!r} has no version {version}") from None
    return version


def _score(name: str, version: str, texts: list[str], truth: list[str]) -> Evaluation:
    import pandas as pd

    model = mlflow.pyfunc.load_model(f"models:/{name}/{version}")
    proba, classes = proba_from_frame(model.predict(pd.DataFrame({TEXT_COLUMN: texts})))
    return evaluate(truth, proba, classes)


def _record(
    client: MlflowClient,
    name: str,
    challenger: str,
    champion: str | None,
    dataset_id: str,
    policy: PromotionPolicy,
    decision: Decision,
) -> None:
    for key, value in gate_tags(champion, dataset_id, policy, decision).items():
        client.set_model_version_tag(name, challenger, key, value)


def gate_tags(
    champion: str | None, dataset_id: str, policy: PromotionPolicy, decision: Decision
) -> dict[str, str]:
    """The verdict as model-version tags (read back by textops.operator.retraining)."""
    tags = {
        Tag.GATE_DECISION: decision.outcome,
        Tag.GATE_REASON: decision.reason,
        Tag.GATE_METRIC: policy.metric,
        Tag.GATE_MIN_IMPROVEMENT: str(policy.min_improvement),
        Tag.GATE_MAX_RECALL_DROP: str(policy.max_recall_drop),
        Tag.GATE_CHALLENGER_VALUE: f"{decision.candidate:.6f}",
        Tag.GATE_CHAMPION_VALUE: "" if decision.champion is None else f"{decision.champion:.6f}",
        Tag.GATE_CHAMPION_VERSION: champion or "",
        Tag.GATE_DATASET: dataset_id,
        Tag.GATE_AT: datetime.now(UTC).isoformat(timespec="seconds"),
    }
    if decision.recall_drops:
        tags[Tag.GATE_RECALL_DROPS] = ",".join(
            f"{k}:{v:.4f}" for k, v in sorted(decision.recall_drops.items())
        )
    return tags
