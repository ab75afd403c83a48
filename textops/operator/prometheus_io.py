"""Reading drift and quality of one served version from Prometheus' HTTP API (I/O).

The metric names are the serving side's contract (``textops/serving/metrics.py`` and the drift
monitor): every series carries ``model`` and ``version``, drift series also ``statistic``. The
scrape configuration adds target labels (``charts/textops/templates/prometheus/configmap.yaml``):
``namespace`` and ``modeldeployment`` (the pod's ``app.kubernetes.io/instance``), with ``pod``
and ``model_version``. :func:`observe` matches all four of ``namespace``, ``modeldeployment``,
``model`` and ``version``, so two ModelDeployments serving the same version (staging and
production, a canary) never read each other's drift or quality. A
query that returns nothing is "no data" (None), which the policy treats as the end of an
episode; a Prometheus that does not answer raises :class:`Unavailable`, and the operator keeps
the previous episodes instead of ending them.
"""

from __future__ import annotations

import json
import math
import urllib.error
import urllib.parse
import urllib.request
from datetime import timedelta
from typing import Any

from textops.contracts import Metric, Target, counter_total
from textops.operator.policy import Observation
from textops.operator.quality import UNKNOWN_TRUTH, quality_value
from textops.operator.spec import QualityMetric

TIMEOUT_S = 10


class Unavailable(ConnectionError):
    """Prometheus did not answer, or refused the query."""


def query(base_url: str, expr: str) -> float | None:
    """The value of an instant query that yields one sample (None: no data, or NaN)."""
    result = query_vector(base_url, expr)
    if not result:
        return None
    value = float(result[0]["value"][1])
    return None if math.isnan(value) else value


def query_vector(base_url: str, expr: str) -> list[dict[str, Any]]:
    """The samples of an instant query (``metric`` labels and ``value``), as Prometheus sends."""
    url = f"{base_url.rstrip('/')}/api/v1/query?{urllib.parse.urlencode({'query': expr})}"
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT_S) as response:
            body = json.load(response)
    except urllib.error.HTTPError as exc:
        raise Unavailable(f"Prometheus {base_url} refused {expr!r}: {exc.read()[:300]!r}") from exc
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise Unavailable(f"Prometheus {base_url} is unreachable: {exc}") from exc
    if body.get("status") != "success":
        raise Unavailable(f"Prometheus {base_url} answered {body.get('error')!r} to {expr!r}")
    result: list[dict[str, Any]] = body["data"]["result"]
    return result


def _selector(model: str, version: str | None, **extra: str) -> str:
    labels = {"model": model, **({"version": version} if version else {}), **extra}
    return ",".join(f"{k}={json.dumps(v)}" for k, v in labels.items())


def _range(window: timedelta) -> str:
    return f"{max(int(window.total_seconds()), 1)}s"


def observe(
    base_url: str,
    model: str,
    version: str,
    quality_window: timedelta,
    namespace: str,
    modeldeployment: str,
    quality_metric: QualityMetric = "accuracy",
) -> Observation:
    """Feature and prediction drift, the quality metric over its window and the feedback it
    counted, for one version served by one ModelDeployment (``namespace``/``modeldeployment``:
    its pods' target labels).

    A drift score counts only when its window holds samples (an empty window scores 0 or NaN).
    Quality comes from counter increases summed over the pods (see textops.operator.quality),
    never from a per-pod ratio.
    """
    scope = {Target.NAMESPACE: namespace, Target.MODELDEPLOYMENT: modeldeployment}
    base = _selector(model, version, **scope)
    scores: dict[str, float | None] = {}
    for kind in Metric.DRIFT_KINDS:
        sel = _selector(model, version, **scope, **{Metric.STATISTIC: Metric.OVERALL})
        value = query(base_url, f"max({Metric.drift(kind, 'statistic')}{{{sel}}})")
        samples = query(base_url, f"sum({Metric.drift(kind, 'window_samples')}{{{base}}})")
        scores[kind] = None if samples is not None and samples <= 0 else value
    window = _range(quality_window)
    feedback_total = counter_total(Metric.FEEDBACK)
    feedback = query(base_url, f"sum(increase({feedback_total}{{{base}}}[{window}]))")
    correct: float | None = None
    confusion: dict[tuple[str, str], float] = {}
    if quality_metric == "accuracy":
        right = _selector(model, version, **scope, **{Metric.OUTCOME: Metric.CORRECT})
        correct = query(base_url, f"sum(increase({feedback_total}{{{right}}}[{window}]))")
    else:
        pair = f"{Metric.PREDICTED}, {Metric.ACTUAL}"
        labelled = counter_total(Metric.FEEDBACK_LABELS)
        for sample in query_vector(
            base_url, f"sum by ({pair}) (increase({labelled}{{{base}}}[{window}]))"
        ):
            labels = sample["metric"]
            key = (labels.get(Metric.PREDICTED, ""), labels.get(Metric.ACTUAL, UNKNOWN_TRUTH))
            value = float(sample["value"][1])
            confusion[key] = 0.0 if math.isnan(value) else value
    return Observation(
        feature_drift=scores["feature"],
        prediction_drift=scores["prediction"],
        quality=quality_value(quality_metric, correct, feedback, confusion),
        quality_samples=None if feedback is None else round(feedback),
    )


def new_labels(base_url: str, model: str, since: timedelta) -> int:
    """Labels of ``model``'s samples that no dataset version holds yet.

    Counted in the installation's label store and published by every serving pod of the
    model (``textops_labels_unexported``, the same count from each: the largest is taken).
    Serving pods without the shared store publish no such gauge; then the feedback to any
    version and deployment of the model over the last ``since`` stands in.
    """
    counted = query(base_url, f"max({Metric.LABELS_UNEXPORTED}{{{_selector(model, None)}}})")
    if counted is not None:
        return round(counted)
    value = query(
        base_url,
        f"sum(increase({counter_total(Metric.FEEDBACK)}{{{_selector(model, None)}}}"
        f"[{_range(since)}]))",
    )
    return 0 if value is None else round(value)
