"""The BentoML service: one pinned model version behind /predict, /feedback and a small page.

Life cycle (as in KServe): load -> ready -> predict. ``__init__`` starts loading the model in
a thread, so ``/livez`` answers at once while ``/readyz`` stays 503 until the pyfunc and its
reference profile are in memory; a failed load makes ``/livez`` fail too, so Kubernetes
restarts the pod and the log says why.

The public endpoints are FastAPI class views on this service (mounted with
``bentoml.asgi_app``) reading raw bodies, because BentoML's own pydantic parsing answers bad
input with its own messages; :mod:`textops.serving.validation` gives every case a clear 4xx.
Concurrent /predict requests share classifier calls through
:class:`~textops.serving.batching.MicroBatcher` (why not BentoML's batching: see there), and
the per-text bookkeeping (ids, metrics, quality, drift window, captures) runs in the same
worker thread as the classifier, once per batch, so the event loop only parses and answers.
POST /predict itself bypasses FastAPI (:mod:`textops.serving.asgi`: FastAPI's per-request
machinery cost more than the classification); the FastAPI view remains for the OpenAPI schema.
Bad input and a broken model look different to the caller: 4xx with a ``reason`` versus 503
(not ready) or 500 (a bug, logged).
"""

from __future__ import annotations

import asyncio
import dataclasses
import gc
import json
import logging
import os
import threading
import time
from collections.abc import Awaitable, Callable
from datetime import timedelta
from importlib import resources
from typing import Any

import bentoml
from fastapi import FastAPI
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response

from textops.contracts import Env
from textops.errors import TextopsError
from textops.labelling.live_queue import DriftMeasure, serving_drift
from textops.labelling.predictions import (
    FeedbackConflict,
    PredictionLog,
    ServedPrediction,
    UnknownPrediction,
)
from textops.labelling.schema import now
from textops.labelling.store import (
    FEEDBACK_REASON,
    CapturedSample,
    LabelStore,
    UnknownSampleError,
    text_sha256,
)
from textops.monitoring.drift import DriftMonitor
from textops.monitoring.emerging import EmergingGrams, emerging_grams
from textops.serving import labelling_api, timeout, validation
from textops.serving.asgi import DirectRoutes, Handler
from textops.serving.batching import MicroBatcher
from textops.serving.capture import StoreWriter, capture_queue
from textops.serving.config import (
    access_log_enabled,
    bentoml_timeout_middleware,
    load_serving_config,
    request_timeout_s,
    serving_workers,
)
from textops.serving.feedback import FeedbackDesk
from textops.serving.model_loader import LoadedModel, load, parse_model_uri, resolve
from textops.serving.quality import QualityMeter
from textops.serving.recent import FeedbackTally, RecentPredictions, StoredPrediction
from textops.serving.sampling import ObservationBudget
from textops.serving.schemas import (
    ErrorResponse,
    FeedbackRequest,
    FeedbackResponse,
    FeedbackSummary,
    PredictRequest,
    PredictResponse,
)
from textops.serving.validation import RequestRejected
from textops.settings import load_settings

logger = logging.getLogger("textops.serving")

PAGE = resources.files("textops.serving").joinpath("static/index.html").read_text("utf-8")
LABELLING_PAGE = (
    resources.files("textops.serving").joinpath("static/labelling.html").read_text("utf-8")
)

# BentoML's request timeout without its per-request timer leak (see textops.serving.timeout)
if not bentoml_timeout_middleware():
    timeout.install()
web = FastAPI(title="textops classifier", docs_url=None, redoc_url=None, openapi_url=None)
# filled by the service instance of this worker process; until then FastAPI answers everything
DIRECT_ROUTES: dict[tuple[str, str], Handler] = {}
web.add_middleware(DirectRoutes, routes=DIRECT_ROUTES)


def _json(content: Any) -> bytes:
    """What starlette's JSONResponse renders, without building a response object."""
    return json.dumps(content, ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode()


def _body_schema(model: type[Any]) -> dict[str, Any]:
    """An OpenAPI request body for a handler that parses the raw body itself."""
    schema = model.model_json_schema()
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": schema}}}}


_ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorResponse} for code in (400, 404, 409, 413, 415, 422, 503)
}


# how long the prediction log's writer gathers predictions before one transaction writes
# them (well inside the time feedback from another replica waits for an unknown id)
PREDICTION_LOG_LINGER_S = 0.2
# how often the label store's gauges (queue, labels not yet in a dataset) are refreshed
LABEL_GAUGES_EVERY_S = 10.0
# how often predictions past their retention are deleted from the prediction log
PRUNE_EVERY_S = 600.0


class ModelNotReady(Exception):
    """The model is still loading (or failed to): answer 503, not 500."""


class LabelStoreUnavailable(Exception):
    """The label store did not answer: answer 503, not 500."""


@bentoml.service(
    name="textops-classifier",
    resources={"cpu": "1", "memory": "1Gi"},
    traffic={"timeout": request_timeout_s()},
    workers=serving_workers(),
    logging={"access": {"enabled": access_log_enabled()}},
)
@bentoml.asgi_app(web, path="/")
class TextClassifierService:
    """Serves the registered version named by ``TEXTOPS_MODEL_URI``."""

    def __init__(self) -> None:
        from textops.serving.metrics import ServingMetrics  # after the worker's multiproc setup

        self.config = load_serving_config()
        self.settings = load_settings()
        ref = parse_model_uri(self.config.model_uri)
        if not ref.pinned:  # an alias is resolved once, then the version is fixed
            ref = resolve(self.settings, ref.uri)
        self.ref = ref
        self.metrics = ServingMetrics(ref.name, str(ref.version), self.config.max_batch_size)
        self.recent = RecentPredictions(self.config.recent_capacity)
        self.tally = FeedbackTally(self.config.value_per_accepted)
        self.model: LoadedModel | None = None
        self.quality: QualityMeter | None = None
        self.drift: DriftMonitor | None = None
        # the n-grams of a shift in recent traffic, from the last drift evaluation that found
        # drift; the labelling queue puts the captures that carry them first
        self.emerging: EmergingGrams | None = None
        self.drift_budget = ObservationBudget(self.config.drift_samples_per_s)
        self.label_token = os.environ.get(Env.LABEL_TOKEN) or None
        # one label store (one engine, migrated once) for this worker's writers and requests
        self._labels: LabelStore | None = None
        self._labels_lock = threading.Lock()
        self.capture = capture_queue(
            self._label_store, self.config.capture_queue, on_drop=self.metrics.capture_dropped
        )
        self.prediction_log: StoreWriter[ServedPrediction] | None = None
        if self.config.prediction_log:
            self.prediction_log = StoreWriter(
                "prediction-log",
                self._label_store,
                lambda store, batch: PredictionLog(store.engine).record(batch),
                self.config.prediction_log_queue,
                on_drop=self.metrics.prediction_log_drop,
                linger_s=PREDICTION_LOG_LINGER_S,
            )
        self.feedback_desk = FeedbackDesk(
            self.recent,
            ref.name,
            str(ref.version),
            (lambda: PredictionLog(self._label_store().engine))
            if self.config.prediction_log
            else None,
        )
        self.load_error: str | None = None
        self.batcher = MicroBatcher(
            self._classify,
            self.config.max_batch_size,
            self.config.max_latency_ms,
            on_batch=self.metrics.batch,
        )
        threading.Thread(target=self._load, name="textops-model-load", daemon=True).start()
        DIRECT_ROUTES[("POST", "/predict")] = self.predict_body

    def _load(self) -> None:
        started = time.perf_counter()
        try:
            model = load(self.settings, self.ref)
        except Exception as exc:
            self.load_error = f"{type(exc).__name__}: {exc}"
            logger.error("loading %s failed: %s", self.ref.uri, self.load_error)
            return
        self.quality = QualityMeter(model.profile)
        if self.config.drift_monitoring:
            self.drift = DriftMonitor(model.profile, window=self.config.drift_window)
            self.emerging = None
        self.model = model
        self.metrics.loaded(self.ref.uri, model.lineage)
        # the model, its profile and the drift reference are long-lived objects: keep the
        # cyclic GC from walking them on every full collection (pauses of 70-270 ms were
        # logged under load, a suspect for the latency tail)
        gc.freeze()
        threading.Thread(target=self._watch_labels, name="textops-labels", daemon=True).start()
        if self.drift is not None and self.config.drift_interval_s > 0:
            threading.Thread(target=self._watch_drift, name="textops-drift", daemon=True).start()
        logger.info("loaded %s in %.1fs", self.ref.uri, time.perf_counter() - started)

    @bentoml.on_shutdown
    def flush_label_writes(self) -> None:
        """A worker stopping (a pod deleted, a rollout) writes its queued captures and
        predictions first, so feedback for what it answered still finds them."""
        if self.prediction_log is not None:
            self.prediction_log.close(timeout=10)
        self.capture.close(timeout=10)

    def _watch_labels(self) -> None:
        """On a timer, the label store's upkeep: the queue's size and the labels of this model
        not yet in a dataset version (the operator's ``minNewLabels``: labels given on the
        labelling page or by feedback, at any replica, count alike); now and then, the
        predictions past their retention (every replica may prune; twice is harmless)."""
        kept = timedelta(hours=self.config.prediction_retention_h)
        pruned_at = -PRUNE_EVERY_S
        while True:
            try:
                store = self._label_store()
                self.metrics.unexported_labels(store.unexported_labels(self.ref.name))
                self.metrics.queue_size(store.stats(self.ref.name)["queued"])
                if (
                    self.prediction_log is not None
                    and time.monotonic() - pruned_at >= PRUNE_EVERY_S
                ):
                    pruned_at = time.monotonic()
                    PredictionLog(store.engine).prune(now() - kept)
            except Exception as exc:  # the store may be down; the gauges keep their values
                logger.warning("label store upkeep skipped: %s", exc)
            time.sleep(LABEL_GAUGES_EVERY_S)

    def _watch_drift(self) -> None:
        """On a timer, not per request: evaluate the window, publish it, queue its suspects."""
        while True:
            time.sleep(self.config.drift_interval_s)
            try:
                self._publish_drift()
            except Exception:  # a bad evaluation must not stop the next one
                logger.exception("drift evaluation failed")

    def _publish_drift(self) -> None:
        model, drift = self.model, self.drift
        if model is None or drift is None:
            return
        report = drift.evaluate()
        self.metrics.drift_report(report.gauges())
        self.emerging = (
            emerging_grams(drift.reference.char_ngrams, drift.recent_texts())
            if report.drifted
            else None
        )
        if not report.drifted or not report.suspects:
            return
        # observed with their probabilities: classify again only what lacks them (a text
        # classified here, in the timer's thread, would compete with requests for the GIL)
        missing = [s.text for s in report.suspects if s.proba is None]
        fresh = iter(self._predict_rows(missing)[0] if missing else [])
        rows = [list(s.proba) if s.proba is not None else next(fresh) for s in report.suspects]
        for suspect, row in zip(report.suspects, rows, strict=True):
            sample_id = "drift-" + text_sha256(suspect.text)[:32]  # same text, same capture
            self._offer(model, sample_id, suspect.text, row, "drift", suspect.rarity)

    def _offer(
        self,
        model: LoadedModel,
        sample_id: str,
        text: str,
        row: list[float],
        reason: str,
        score: float,
        drift: float | None = None,
    ) -> None:
        best = max(range(len(row)), key=row.__getitem__)
        parts = {reason: round(float(score), 6)}
        if drift is not None:
            parts["drift"] = round(float(drift), 6)
        sample = CapturedSample(
            id=sample_id,
            text=text,
            model_name=model.name,
            model_version=model.version,
            predicted_label=model.classes[best],
            confidence=row[best],
            probabilities=dict(zip(model.classes, row, strict=True)),
            reason=reason,
            score=round(float(score), 6),
            score_parts=parts,
        )
        if self.capture.offer(sample):
            self.metrics.captured(reason)

    def __is_ready__(self) -> bool:
        return self.model is not None and self.quality is not None

    def __is_alive__(self) -> bool:
        return self.load_error is None

    def _ready(self) -> tuple[LoadedModel, QualityMeter]:
        if self.model is None or self.quality is None:
            state = f"failed to load: {self.load_error}" if self.load_error else "still loading"
            raise ModelNotReady(f"model {self.ref.uri} is {state}")
        return self.model, self.quality

    def _predict_rows(self, texts: list[str]) -> tuple[list[list[float]], Any]:
        """Class probabilities (in the model's class order) for many texts in one call, and
        the sentence embeddings the model computed on the way (None without an encoder): the
        drift window reuses them, no second encoding."""
        model, _ = self._ready()
        proba, embeddings = model.predict_proba_with_embeddings(texts)
        # float64 before rounding: float32 values print as 0.8044700026512146
        rows: list[list[float]] = proba.astype(float).round(6).tolist()
        return rows, embeddings

    @web.post(
        "/predict",
        response_model=PredictResponse,
        responses=_ERRORS,
        openapi_extra=_body_schema(PredictRequest),
        summary="Classify texts",
    )
    async def predict(self, request: Request) -> Response:
        """Label, confidence and class probabilities per text, with an id for feedback."""
        # normally answered by DirectRoutes before FastAPI; this view documents the endpoint
        status, body = await self.predict_body(
            await request.body(), request.headers.get("content-type")
        )
        return Response(body, status_code=status, media_type="application/json")

    async def predict_body(self, body: bytes, content_type: str | None) -> tuple[int, bytes]:
        """All of /predict: the raw body in, the status and the JSON answer out."""
        started = time.perf_counter()
        try:
            payload = validation.parse_json_object(
                body, content_type, validation.max_body_bytes(self.config.limits)
            )
            texts = validation.validate_texts(payload, self.config.limits)
            model, _ = self._ready()
            predictions = await self.batcher.submit(texts)
        except Exception as exc:
            status, answer = self._failure_body("predict", exc, started)
            return status, _json(answer)
        self.metrics.request("predict", "ok", time.perf_counter() - started)
        return 200, _json(
            {"model": model.name, "version": model.version, "predictions": predictions}
        )

    def _classify(self, texts: list[str]) -> list[dict[str, Any]]:
        """One batch, in the batcher's thread: classify, then remember, measure and capture.

        Returns one ``Prediction`` (as a dict) per text. Bookkeeping happens before the
        answer leaves, so feedback on an answered id always finds it.
        """
        model, quality = self._ready()
        drift, budget, log = self.drift, self.drift_budget, self.prediction_log
        rows, embeddings = self._predict_rows(texts)
        classes = model.classes
        threshold = self.config.capture_below_confidence
        # 128 random bits per id, one system call per batch (it was one per text)
        ids = os.urandom(16 * len(texts)).hex()
        predictions = []
        for i, (text, row) in enumerate(zip(texts, rows, strict=True)):
            probabilities = dict(zip(classes, row, strict=True))
            best = max(range(len(row)), key=row.__getitem__)
            label, confidence = classes[best], row[best]
            prediction_id = ids[32 * i : 32 * i + 32]
            self.recent.add(prediction_id, StoredPrediction(label, probabilities, text))
            if log is not None:
                log.offer(
                    ServedPrediction(
                        prediction_id, model.name, model.version, text, label, probabilities
                    )
                )
            self.metrics.prediction(label, confidence, quality.measure(text))
            if drift is not None and budget.take():
                drift.observe(text, row, None if embeddings is None else embeddings[i])
            if confidence < threshold:
                # how unlike the training texts it is, so the queue can prefer the drifted
                rarity = drift.reference.rarity(text)[0] if drift is not None else None
                self._offer(model, prediction_id, text, row, "uncertain", 1.0 - confidence, rarity)
            predictions.append(
                {
                    "id": prediction_id,
                    "label": label,
                    "confidence": confidence,
                    "probabilities": probabilities,
                }
            )
        return predictions

    @web.post(
        "/feedback",
        response_model=FeedbackResponse,
        responses=_ERRORS,
        openapi_extra=_body_schema(FeedbackRequest),
        summary="Say whether a prediction was right",
    )
    async def feedback(self, request: Request) -> Response:
        """Record the true label (or accepted: true/false) of an earlier prediction."""
        return await self._respond("feedback", lambda: self._feedback(request))

    async def _feedback(self, request: Request) -> dict[str, Any]:
        payload = validation.parse_json_object(
            await request.body(), request.headers.get("content-type")
        )
        model, _ = self._ready()
        given = validation.validate_feedback(payload, model.classes)
        try:
            claim = await self.feedback_desk.claim(given)
        except UnknownPrediction as exc:
            raise RequestRejected(404, validation.UNKNOWN_ID, str(exc)) from None
        except FeedbackConflict as exc:
            raise RequestRejected(409, validation.DUPLICATE_FEEDBACK, str(exc)) from None
        served, verdict = claim.prediction, claim.verdict
        if claim.first:  # a repeat is answered again, never counted again
            self.tally.record(verdict.correct)
            gained = self.config.value_per_accepted if verdict.correct else 0.0
            self.metrics.feedback_given(
                served.predicted_label,
                verdict.correct,
                verdict.truth,
                self.tally.accuracy,
                gained,
                version=served.model_version if served.model_name == model.name else None,
            )
            if verdict.truth is not None:  # the labelled sample is kept for training
                await asyncio.to_thread(self._keep_feedback_label, served, verdict.truth)
        answer = FeedbackResponse(
            id=given.prediction_id,
            predicted=served.predicted_label,
            correct=verdict.correct,
            recorded=claim.first,
            summary=FeedbackSummary(
                count=self.tally.total,
                accuracy=self.tally.accuracy,
                business_value=self.tally.value,
            ),
        )
        return answer.model_dump()

    def _keep_feedback_label(self, served: ServedPrediction, truth: str) -> None:
        """Store the text with its true label now; if the label store is down, hand it to the
        capture queue, which retries until the store is back (a label is never just dropped
        while the store is up)."""
        sample = CapturedSample(
            id=f"feedback-{served.id}",
            text=served.text,
            model_name=served.model_name,
            model_version=served.model_version,
            predicted_label=served.predicted_label,
            confidence=max(served.probabilities.values()),
            probabilities=dict(served.probabilities),
            reason=FEEDBACK_REASON,
            label=truth,
        )
        try:
            self._label_store().add_samples([sample])
        except Exception as exc:
            logger.warning("feedback label not stored yet (%s); queued for retry", exc)
            if not self.capture.offer(sample):
                return
        self.metrics.captured(FEEDBACK_REASON)

    def _label_store(self) -> LabelStore:
        """Opened on first use (it may be down at start-up; then the next use tries again)."""
        with self._labels_lock:
            if self._labels is None:
                self._labels = LabelStore(self.settings.label_db)
            return self._labels

    async def _respond(
        self, endpoint: str, answer: Callable[[], Awaitable[dict[str, Any]]]
    ) -> Response:
        """The one place an endpoint's outcome becomes a response and a count: the answer
        as JSON with 200, or the failure mapped by :meth:`_failure_body`."""
        started = time.perf_counter()
        try:
            result = await answer()
        except Exception as exc:
            status, body = self._failure_body(endpoint, exc, started)
            return JSONResponse(body, status_code=status)
        self.metrics.request(endpoint, "ok", time.perf_counter() - started)
        return JSONResponse(result)

    async def _in_label_store(self, work: Callable[[LabelStore], dict[str, Any]]) -> dict[str, Any]:
        """``work(store)`` off the event loop; the store's own errors keep their meaning (an
        unknown sample is a 404, an unreachable store a 503)."""
        try:
            return await asyncio.to_thread(lambda: work(self._label_store()))
        except UnknownSampleError as exc:
            raise RequestRejected(404, validation.UNKNOWN_ID, str(exc)) from None
        except TextopsError as exc:
            raise LabelStoreUnavailable(str(exc)) from exc

    def _queue_drift(self) -> DriftMeasure | None:
        """Drift as the serving model sees it now, so the queue puts first what is new to
        *it* in *today's* traffic."""
        model, drift, emerging = self.model, self.drift, self.emerging
        if model is None or drift is None:
            return None
        return serving_drift(f"{model.name}/{model.version}", drift.reference, emerging)

    @web.get("/labelling/", include_in_schema=False)
    async def labelling_page(self) -> HTMLResponse:
        """The annotator's page: the ranked queue, one sample at a time, keys 1..N and s."""
        return HTMLResponse(LABELLING_PAGE)

    @web.get("/labelling/api/queue", summary="The labelling queue, best first (token required)")
    async def labelling_queue(self, request: Request) -> Response:
        async def answer() -> dict[str, Any]:
            labelling_api.check_token(request.headers, self.label_token)
            limit, offset = labelling_api.page(request.query_params)
            return await self._in_label_store(
                lambda store: {
                    "items": [
                        dataclasses.asdict(i)
                        for i in store.queue(
                            limit, offset, drift=self._queue_drift(), model_name=self.ref.name
                        )
                    ],
                    "limit": limit,
                    "offset": offset,
                }
            )

        return await self._respond("labelling_queue", answer)

    @web.post("/labelling/api/labels", summary="Label a queued sample (token required)")
    async def labelling_label(self, request: Request) -> Response:
        return await self._labelling_submit(request, "labelling_label", skip=False)

    @web.post("/labelling/api/skips", summary="Skip a queued sample (token required)")
    async def labelling_skip(self, request: Request) -> Response:
        return await self._labelling_submit(request, "labelling_skip", skip=True)

    @web.get("/labelling/api/stats", summary="Queue and label counts (token required)")
    async def labelling_stats(self, request: Request) -> Response:
        async def answer() -> dict[str, Any]:
            labelling_api.check_token(request.headers, self.label_token)
            return await self._in_label_store(lambda store: store.stats(self.ref.name))

        return await self._respond("labelling_stats", answer)

    async def _labelling_submit(self, request: Request, endpoint: str, skip: bool) -> Response:
        async def answer() -> dict[str, Any]:
            labelling_api.check_token(request.headers, self.label_token)
            payload = validation.parse_json_object(
                await request.body(), request.headers.get("content-type")
            )
            model, _ = self._ready()
            given = labelling_api.submission(payload, model.classes, skip)

            def work(store: LabelStore) -> dict[str, Any]:
                if given.label is None:
                    store.skip(given.sample_id, given.annotator)
                    return {"id": given.sample_id, "skipped": True}
                return dataclasses.asdict(
                    store.submit_label(given.sample_id, given.label, given.annotator)
                )

            return await self._in_label_store(work)

        return await self._respond(endpoint, answer)

    def _failure_body(
        self, endpoint: str, exc: Exception, started: float
    ) -> tuple[int, dict[str, Any]]:
        """Every endpoint's one mapping of a failure to a status, a body and a count: a
        refusal 4xx, the model or the label store not answering 503, anything else (a bug,
        logged) 500."""
        if isinstance(exc, RequestRejected):
            self.metrics.reject(endpoint, exc.reason)
            outcome, status, body = "rejected", exc.status, exc.body()
        elif isinstance(exc, ModelNotReady):
            outcome, status = "unavailable", 503
            body = {"error": str(exc), "reason": "not_ready"}
        elif isinstance(exc, LabelStoreUnavailable):
            outcome, status = "unavailable", 503
            body = {"error": str(exc), "reason": "label_store"}
        else:
            logger.exception("%s failed", endpoint)
            outcome, status = "error", 500
            body = {"error": "internal error, see the server log", "reason": "internal"}
        self.metrics.request(endpoint, outcome, time.perf_counter() - started)
        return status, body

    @web.get("/", include_in_schema=False)
    async def page(self) -> HTMLResponse:
        """A page for people: paste texts, see labels, mark predictions right or wrong."""
        return HTMLResponse(PAGE)
