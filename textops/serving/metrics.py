"""Every Prometheus metric of the serving side, defined in one place.

Names follow the Prometheus conventions (``textops_`` prefix, base units, ``_total`` on
counters); every series carries ``model`` and ``version`` so a canary and the stable version
are told apart, and ``class`` where a per-class view matters. BentoML serves them on
``/metrics`` next to its own ``bentoml_*`` series: under ``bentoml serve`` prometheus_client
runs in multiprocess mode, which is why this module is imported only inside the worker (after
``PROMETHEUS_MULTIPROC_DIR`` is set) and why the gauges declare how workers combine.

Online accuracy is also a gauge for convenience; across several workers the exact figure is
``sum(textops_feedback_total{outcome="correct"}) / sum(textops_feedback_total)``.
"""

from __future__ import annotations

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram

from textops.contracts import Metric
from textops.monitoring.reference import NON_CHINESE_EDGES
from textops.registry.lineage import SERVING_LINEAGE_LABELS
from textops.serving.quality import TextQuality

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
CONFIDENCE_BUCKETS = (0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99, 1.0)
LENGTH_BUCKETS = (5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000)
UNSEEN_BUCKETS = (0, 1, 2, 5, 10, 20, 50)
# the profile's bins, so a dashboard compares like with like (0 gets a bucket of its own)
NON_CHINESE_BUCKETS = tuple(sorted({0.0, *NON_CHINESE_EDGES[1:]}))

BASE = ("model", "version")


def batch_buckets(max_batch_size: int) -> tuple[float, ...]:
    """Powers of two up to the declared maximum batch size (inclusive)."""
    buckets = [1.0]
    while buckets[-1] < max_batch_size:
        buckets.append(min(buckets[-1] * 2, float(max_batch_size)))
    return tuple(buckets)


class ServingMetrics:
    """The metrics of one served model version, with its labels already bound."""

    def __init__(
        self,
        model: str,
        version: str,
        max_batch_size: int = 64,
        registry: CollectorRegistry = REGISTRY,
    ) -> None:
        self.model, self.version = model, version
        r = registry
        self.requests = Counter(
            "textops_requests",
            "Requests by endpoint and outcome (ok, rejected, unavailable, error).",
            [*BASE, "endpoint", "outcome"],
            registry=r,
        )
        self.latency = Histogram(
            "textops_request_duration_seconds",
            "Time from request to response, by endpoint.",
            [*BASE, "endpoint"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.rejected = Counter(
            "textops_rejected_requests",
            "Requests refused with a 4xx, by endpoint and reason.",
            [*BASE, "endpoint", "reason"],
            registry=r,
        )
        self.batch_size = Histogram(
            "textops_inference_batch_size",
            "Texts per call of the batched classifier (after adaptive batching).",
            BASE,
            buckets=batch_buckets(max_batch_size),
            registry=r,
        )
        self.predictions = Counter(
            "textops_predictions",
            "Texts classified, by predicted class.",
            [*BASE, "class"],
            registry=r,
        )
        self.confidence = Histogram(
            "textops_prediction_confidence",
            "Probability of the predicted class, by predicted class.",
            [*BASE, "class"],
            buckets=CONFIDENCE_BUCKETS,
            registry=r,
        )
        self.text_length = Histogram(
            "textops_text_length_characters",
            "Characters per classified text.",
            BASE,
            buckets=LENGTH_BUCKETS,
            registry=r,
        )
        self.non_chinese = Histogram(
            "textops_text_non_chinese_ratio",
            "Share of non-whitespace characters per text that are not Chinese ideographs.",
            BASE,
            buckets=NON_CHINESE_BUCKETS,
            registry=r,
        )
        self.unseen = Histogram(
            "textops_text_unseen_characters",
            "Characters per text that never occurred in the training data.",
            BASE,
            buckets=UNSEEN_BUCKETS,
            registry=r,
        )
        self.feedback = Counter(
            Metric.FEEDBACK,
            "Feedback received, by predicted class and outcome (correct, wrong).",
            [*BASE, "class", Metric.OUTCOME],
            registry=r,
        )
        self.feedback_labels = Counter(
            Metric.FEEDBACK_LABELS,
            "Feedback by predicted and true class: the confusion matrix the operator reads "
            "macro-F1 from (actual is empty for a prediction marked wrong with no class given).",
            [*BASE, Metric.PREDICTED, Metric.ACTUAL],
            registry=r,
        )
        self.accuracy = Gauge(
            "textops_online_accuracy_ratio",
            "Share of predictions with feedback that were correct (this worker).",
            BASE,
            multiprocess_mode="mostrecent",
            registry=r,
        )
        self.value = Counter(
            "textops_business_value",
            "Business value of accepted predictions (TEXTOPS_VALUE_PER_ACCEPTED each).",
            BASE,
            registry=r,
        )
        self.info = Gauge(
            "textops_model_info",
            "The served model version and its lineage: run, dataset, code, image, trigger (1).",
            [*BASE, "uri", *SERVING_LINEAGE_LABELS],
            multiprocess_mode="max",
            registry=r,
        )
        # drift: the statistic, its threshold and the window's size published separately
        docs = (
            "the window's statistic",
            "the threshold it is compared with",
            "texts in the window",
            "1 when the statistic is above its threshold",
        )
        self.drift = {
            Metric.drift(kind, part): Gauge(
                Metric.drift(kind, part),
                f"{kind.capitalize()} drift: {doc} (statistic='overall' is the verdict).",
                [*BASE, Metric.STATISTIC],
                multiprocess_mode="max",
                registry=r,
            )
            for kind in Metric.DRIFT_KINDS
            for part, doc in zip(Metric.DRIFT_PARTS, docs, strict=True)
        }
        self.captures = Counter(
            "textops_labelling_captures",
            "Samples queued for labelling, by why they were captured.",
            [*BASE, "reason"],
            registry=r,
        )
        self.captures_dropped = Counter(
            "textops_labelling_captures_dropped",
            "Captures dropped because the hand-off queue to the label store was full.",
            BASE,
            registry=r,
        )
        self.prediction_log_dropped = Counter(
            "textops_prediction_log_dropped",
            "Predictions not written to the prediction log because its hand-off queue was "
            "full (feedback for them is accepted only by the replica that made them).",
            BASE,
            registry=r,
        )
        self.labels_unexported = Gauge(
            Metric.LABELS_UNEXPORTED,
            "Labels of this model's samples in the label store that no dataset version holds "
            "yet (what the next retraining adds; the operator's minNewLabels counts these).",
            BASE,
            multiprocess_mode="max",
            registry=r,
        )
        self.labelling_queue = Gauge(
            "textops_labelling_queue_samples",
            "Samples in the label store waiting for a label.",
            BASE,
            multiprocess_mode="max",
            registry=r,
        )
        self._bound = {"model": model, "version": version}
        # ``labels()`` costs more than the increment itself: bind the hot series once
        self._text_length = self.text_length.labels(**self._bound)
        self._non_chinese = self.non_chinese.labels(**self._bound)
        self._unseen = self.unseen.labels(**self._bound)
        self._batch = self.batch_size.labels(**self._bound)
        self._per_class: dict[str, tuple[Counter, Histogram]] = {}
        self._per_request: dict[tuple[str, str], tuple[Counter, Histogram]] = {}

    def drift_report(self, gauges: list[tuple[str, dict[str, str], float]]) -> None:
        for name, labels, value in gauges:
            self.drift[name].labels(**labels, **self._bound).set(value)

    def captured(self, reason: str) -> None:
        self.captures.labels(reason=reason, **self._bound).inc()

    def capture_dropped(self) -> None:
        self.captures_dropped.labels(**self._bound).inc()

    def prediction_log_drop(self) -> None:
        self.prediction_log_dropped.labels(**self._bound).inc()

    def unexported_labels(self, count: int) -> None:
        self.labels_unexported.labels(**self._bound).set(count)

    def queue_size(self, queued: int) -> None:
        self.labelling_queue.labels(**self._bound).set(queued)

    def loaded(self, uri: str, lineage: dict[str, str] | None = None) -> None:
        known = lineage or {}
        labels = {label: known.get(label, "") for label in SERVING_LINEAGE_LABELS}
        self.info.labels(uri=uri, **labels, **self._bound).set(1)

    def request(self, endpoint: str, outcome: str, seconds: float) -> None:
        bound = self._per_request.get((endpoint, outcome))
        if bound is None:
            bound = (
                self.requests.labels(endpoint=endpoint, outcome=outcome, **self._bound),
                self.latency.labels(endpoint=endpoint, **self._bound),
            )
            self._per_request[(endpoint, outcome)] = bound
        bound[0].inc()
        bound[1].observe(seconds)

    def reject(self, endpoint: str, reason: str) -> None:
        self.rejected.labels(endpoint=endpoint, reason=reason, **self._bound).inc()

    def batch(self, size: int) -> None:
        self._batch.observe(size)

    def prediction(self, label: str, confidence: float, quality: TextQuality) -> None:
        bound = self._per_class.get(label)
        if bound is None:
            bound = (
                self.predictions.labels(**{"class": label}, **self._bound),
                self.confidence.labels(**{"class": label}, **self._bound),
            )
            self._per_class[label] = bound
        bound[0].inc()
        bound[1].observe(confidence)
        self._text_length.observe(quality.length)
        self._non_chinese.observe(quality.non_chinese_share)
        self._unseen.observe(quality.unseen_chars)

    def feedback_given(
        self,
        predicted: str,
        correct: bool,
        truth: str | None,
        accuracy: float | None,
        value_gained: float,
        version: str | None = None,
    ) -> None:
        """One feedback: ``truth`` is the true class when known (None: marked wrong only).

        ``version`` is the version that made the prediction when it was not this one (the
        feedback for an older version's prediction arrived after a rollout): the feedback
        series count it there, so each version's quality is its own.
        """
        outcome = Metric.CORRECT if correct else Metric.WRONG
        made_by = {**self._bound, "version": version or self.version}
        self.feedback.labels(**{"class": predicted, Metric.OUTCOME: outcome}, **made_by).inc()
        confusion = {Metric.PREDICTED: predicted, Metric.ACTUAL: truth or ""}
        self.feedback_labels.labels(**confusion, **made_by).inc()
        if accuracy is not None:
            self.accuracy.labels(**self._bound).set(accuracy)
        if value_gained > 0:
            self.value.labels(**self._bound).inc(value_gained)
