"""The demo's HTTP side: what a client application and an annotator would send.

Predictions go in small batches from a few concurrent connections (as several client
processes would); drift is read from ``/metrics`` exactly as Prometheus would scrape it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

from textops.contracts import Metric
from textops.errors import TextopsError


@dataclass(frozen=True)
class DriftReading:
    """One scrape of the overall drift gauges: statistic, threshold, window size per kind."""

    feature: float
    feature_threshold: float
    prediction: float
    prediction_threshold: float
    samples: int

    @property
    def feature_ratio(self) -> float:
        return self.feature / self.feature_threshold if self.feature_threshold else 0.0

    @property
    def prediction_ratio(self) -> float:
        return self.prediction / self.prediction_threshold if self.prediction_threshold else 0.0

    @property
    def drifted(self) -> bool:
        return self.feature_ratio > 1.0 or self.prediction_ratio > 1.0


class ServiceClient:
    """Calls one running service; every non-2xx answer raises with the service's message."""

    def __init__(self, url: str, label_token: str | None = None, connections: int = 4) -> None:
        self.url = url
        self.connections = connections
        headers = {"Authorization": f"Bearer {label_token}"} if label_token else {}
        self._http = httpx.Client(base_url=url, timeout=60, headers=headers)

    def close(self) -> None:
        self._http.close()

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self._http.request(method, path, **kwargs)
        if response.status_code >= 400:
            raise TextopsError(f"{method} {path}: HTTP {response.status_code}: {response.text}")
        return (
            response.json() if "json" in response.headers.get("content-type", "") else response.text
        )

    def predict_all(
        self,
        texts: Sequence[str],
        batch: int = 16,
        on_batch: Callable[[int], None] | None = None,
    ) -> list[dict[str, Any]]:
        """Predictions for every text, in order; batches sent over ``connections`` threads."""
        chunks = [list(texts[i : i + batch]) for i in range(0, len(texts), batch)]

        def send(chunk: list[str]) -> list[dict[str, Any]]:
            answer = self._call("POST", "/predict", json={"texts": chunk})
            if on_batch:
                on_batch(len(chunk))
            return list(answer["predictions"])

        with ThreadPoolExecutor(self.connections) as pool:
            return [p for part in pool.map(send, chunks) for p in part]

    def feedback(self, prediction_id: str, label: str) -> dict[str, Any]:
        return dict(self._call("POST", "/feedback", json={"id": prediction_id, "label": label}))

    def metrics(self) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        """Every sample of ``/metrics`` keyed by (name, sorted labels)."""
        text = self._call("GET", "/metrics")
        out: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
        for family in text_string_to_metric_families(text):
            for s in family.samples:
                out[(s.name, tuple(sorted(s.labels.items())))] = float(s.value)
        return out

    def drift(self) -> DriftReading | None:
        """The overall drift gauges, or None before the first window was evaluated."""
        values = {
            name: value
            for (name, labels), value in self.metrics().items()
            if (Metric.STATISTIC, Metric.OVERALL) in labels
        }
        try:
            return DriftReading(
                feature=values[Metric.drift("feature", "statistic")],
                feature_threshold=values[Metric.drift("feature", "threshold")],
                prediction=values[Metric.drift("prediction", "statistic")],
                prediction_threshold=values[Metric.drift("prediction", "threshold")],
                samples=int(values[Metric.drift("feature", "window_samples")]),
            )
        except KeyError:
            return None

    def queue(self, limit: int, offset: int = 0) -> list[dict[str, Any]]:
        answer = self._call(
            "GET", "/labelling/api/queue", params={"limit": limit, "offset": offset}
        )
        return list(answer["items"])

    def label(self, sample_id: str, label: str, annotator: str) -> dict[str, Any]:
        body = {"id": sample_id, "label": label, "annotator": annotator}
        return dict(self._call("POST", "/labelling/api/labels", json=body))

    def labelling_stats(self) -> dict[str, Any]:
        return dict(self._call("GET", "/labelling/api/stats"))
