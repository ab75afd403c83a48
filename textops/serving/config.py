"""Serving settings from the environment, resolved in one place (pure).

- ``TEXTOPS_MODEL_URI`` (required): the pinned ``models:/NAME/VERSION`` to serve; an alias
  (``models:/NAME@champion``) is accepted and resolved once at start-up, but a pinned version
  is what rollouts should use, so that every pod serves the same thing.
- ``TEXTOPS_MAX_TEXTS`` (64): texts per ``/predict`` request.
- ``TEXTOPS_MAX_TEXT_CHARS`` (2000): characters per text; longer reviews are refused, not cut.
- ``TEXTOPS_MAX_BATCH_SIZE`` (64): most texts in one classifier call (micro-batching).
- ``TEXTOPS_MAX_LATENCY_MS`` (10): longest a request waits for others to join its batch when
  the classifier is idle; under load batches fill while the previous one runs.
- ``TEXTOPS_VALUE_PER_ACCEPTED`` (1.0): business value credited per accepted prediction.
- ``TEXTOPS_RECENT_PREDICTIONS`` (10000): predictions kept in memory for ``/feedback``.
- ``TEXTOPS_DRIFT_WINDOW`` (1000): texts in the sliding drift window (thresholds in the
  profile are calibrated for 200–2,000).
- ``TEXTOPS_DRIFT_INTERVAL_S`` (15): how often the window is evaluated and the drift gauges
  updated — on a timer, never per request.
- ``TEXTOPS_CAPTURE_BELOW_CONFIDENCE`` (0.7): predictions less confident than this are queued
  for labelling; ``0`` turns uncertainty capture off.
- ``TEXTOPS_CAPTURE_QUEUE`` (1000): captures waiting for the label store; when full the newest
  is dropped and counted, a prediction never waits.
- ``TEXTOPS_DRIFT_MONITORING`` (on): ``off`` keeps no drift window and runs no drift timer (the
  drift gauges and drift captures go with it); what that saves is what monitoring costs.
- ``TEXTOPS_DRIFT_SAMPLES_PER_S`` (50): at most this many texts per second (bursts up to one
  second's worth) enter the drift window, so its cost is bounded under load; ``0`` observes
  every text. A 1,000-text window evaluated every 15 s then spans at least the last 20 s.
- ``TEXTOPS_REQUEST_TIMEOUT_S`` (10): a request not answered by then gets 504 (see
  :func:`request_timeout_s`).
- ``TEXTOPS_TIMEOUT_MIDDLEWARE`` (``textops``): which middleware enforces it — ours, which
  lets a request go once answered (:mod:`textops.serving.timeout`), or ``bentoml``'s own,
  which keeps every request's timer for the whole timeout; there to measure the difference
  (benchmarks/README.md).
- ``TEXTOPS_ACCESS_LOG`` (off): ``on`` makes BentoML log one line per request; off by default
  because the access-log middleware and its line took about 7% of the worker's event loop in
  a profile under load, and every request is counted in ``textops_requests_total`` anyway
  (errors are always logged).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from textops.contracts import Env
from textops.errors import TextopsError


@dataclass(frozen=True)
class Limits:
    """What one request may carry; beyond it the request is refused with a 4xx."""

    max_texts: int = 64
    max_text_chars: int = 2000


@dataclass(frozen=True)
class ServingConfig:
    model_uri: str
    limits: Limits
    max_batch_size: int = 64
    max_latency_ms: int = 10
    value_per_accepted: float = 1.0
    recent_capacity: int = 10_000
    drift_window: int = 1000
    drift_interval_s: float = 15.0
    capture_below_confidence: float = 0.7
    capture_queue: int = 1000
    drift_monitoring: bool = True
    drift_samples_per_s: float = 50.0
    # every prediction written to the label database, so feedback reaches it from any replica
    prediction_log: bool = True
    prediction_log_queue: int = 10_000
    prediction_retention_h: float = 168.0


def _positive_int(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise TextopsError(f"{name} must be a positive integer, got {raw!r}") from None
    if value < 1:
        raise TextopsError(f"{name} must be a positive integer, got {raw!r}")
    return value


def _non_negative(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise TextopsError(f"{name} must be a number, got {raw!r}") from None
    if not value >= 0:  # also refuses nan
        raise TextopsError(f"{name} must be zero or more, got {raw!r}")
    return value


def switch(env: Mapping[str, str], name: str, default: bool) -> bool:
    """``on``/``off`` (also true/false, 1/0, yes/no); unset or blank is ``default``."""
    raw = (env.get(name) or "").strip().lower()
    if not raw:
        return default
    if raw in ("on", "true", "1", "yes"):
        return True
    if raw in ("off", "false", "0", "no"):
        return False
    raise TextopsError(f"{name} must be on or off, got {env.get(name)!r}")


def serving_workers(env: Mapping[str, str] | None = None) -> int:
    """``TEXTOPS_WORKERS``: worker processes of the service (BentoML's ``workers``), each
    with its own model, batcher and drift window; feedback reaches any of them through the
    prediction log. Read when the service class is defined."""
    return _positive_int(os.environ if env is None else env, Env.WORKERS, 1)


def access_log_enabled(env: Mapping[str, str] | None = None) -> bool:
    """Read when the service class is defined (BentoML takes it as service configuration)."""
    return switch(os.environ if env is None else env, Env.ACCESS_LOG, False)


def bentoml_timeout_middleware(env: Mapping[str, str] | None = None) -> bool:
    """Whether ``TEXTOPS_TIMEOUT_MIDDLEWARE`` asks for BentoML's own timeout middleware."""
    value = (os.environ if env is None else env).get(Env.TIMEOUT_MIDDLEWARE, "textops")
    if value.strip().lower() not in ("textops", "bentoml"):
        raise TextopsError(f"TEXTOPS_TIMEOUT_MIDDLEWARE must be textops or bentoml, got {value!r}")
    return value.strip().lower() == "bentoml"


REQUEST_TIMEOUT_S = 10.0


def request_timeout_s(env: Mapping[str, str] | None = None) -> float:
    """BentoML's per-request timeout, read when the service class is defined.

    BentoML's own timeout middleware armed one timer per request and never cancelled it, so a
    long timeout kept every request's objects alive (at 300 requests/s and 30 s, ~9,000 of
    each; full garbage collections of 30-120 ms). The service replaces it
    (:mod:`textops.serving.timeout`); 10 s still covers a full batch of long texts through a
    sentence encoder.
    """
    e = os.environ if env is None else env
    value = _non_negative(e, Env.REQUEST_TIMEOUT_S, REQUEST_TIMEOUT_S)
    if value <= 0:
        raise TextopsError("TEXTOPS_REQUEST_TIMEOUT_S must be above 0")
    return value


def load_serving_config(env: Mapping[str, str] | None = None) -> ServingConfig:
    e = os.environ if env is None else env
    uri = (e.get(Env.MODEL_URI) or "").strip()
    if not uri:
        raise TextopsError(f"{Env.MODEL_URI} is not set: give the models:/NAME/VERSION to serve")
    return ServingConfig(
        model_uri=uri,
        limits=Limits(
            max_texts=_positive_int(e, Env.MAX_TEXTS, Limits.max_texts),
            max_text_chars=_positive_int(e, Env.MAX_TEXT_CHARS, Limits.max_text_chars),
        ),
        max_batch_size=_positive_int(e, Env.MAX_BATCH_SIZE, ServingConfig.max_batch_size),
        max_latency_ms=_positive_int(e, Env.MAX_LATENCY_MS, ServingConfig.max_latency_ms),
        value_per_accepted=_non_negative(
            e, Env.VALUE_PER_ACCEPTED, ServingConfig.value_per_accepted
        ),
        recent_capacity=_positive_int(e, Env.RECENT_PREDICTIONS, ServingConfig.recent_capacity),
        drift_window=_positive_int(e, Env.DRIFT_WINDOW, ServingConfig.drift_window),
        drift_interval_s=_non_negative(e, Env.DRIFT_INTERVAL_S, ServingConfig.drift_interval_s),
        capture_below_confidence=_non_negative(
            e, Env.CAPTURE_BELOW_CONFIDENCE, ServingConfig.capture_below_confidence
        ),
        capture_queue=_positive_int(e, Env.CAPTURE_QUEUE, ServingConfig.capture_queue),
        drift_monitoring=switch(e, Env.DRIFT_MONITORING, ServingConfig.drift_monitoring),
        drift_samples_per_s=_non_negative(
            e, Env.DRIFT_SAMPLES_PER_S, ServingConfig.drift_samples_per_s
        ),
        prediction_log=switch(e, Env.PREDICTION_LOG, ServingConfig.prediction_log),
        prediction_log_queue=_positive_int(
            e, Env.PREDICTION_LOG_QUEUE, ServingConfig.prediction_log_queue
        ),
        prediction_retention_h=_non_negative(
            e, Env.PREDICTION_RETENTION_H, ServingConfig.prediction_retention_h
        ),
    )
