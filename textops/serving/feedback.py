"""Feedback for a prediction made by any replica, before or after a restart: claimed once.

The prediction log in the installation's label database is the authority: a feedback claims
its prediction there, so two replicas (or a replica and its restarted self) never count the
same prediction twice, and an identical repeat is answered again without a second count. This
replica's own recent predictions are the fallback: they are written to the log first when
feedback outruns the log's writer, and they alone decide while the database is unreachable
(the label then waits in the capture queue). A prediction made by another replica may still
be on its way to the log when its feedback arrives, so an unknown id is looked up again for a
short, bounded while before it is refused.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from collections.abc import Callable

from sqlalchemy.exc import SQLAlchemyError

from textops.errors import TextopsError
from textops.labelling.predictions import (
    Claim,
    FeedbackConflict,
    PredictionLog,
    ServedPrediction,
    UnknownPrediction,
    judge,
)
from textops.serving.recent import AlreadyJudged, RecentPredictions, StoredPrediction
from textops.serving.validation import Feedback

logger = logging.getLogger("textops.serving.feedback")

# how long an id nobody here knows is looked for in the log (another replica's writer hands
# its predictions over within a batch interval), and how often
UNKNOWN_WAIT_S = 2.0
UNKNOWN_POLL_S = 0.1
ID_PATTERN = re.compile(r"[0-9a-f]{32}")  # what /predict hands out: 128 random bits in hex


class Unreachable(TextopsError):
    """The label database did not answer; this replica's memory decided instead."""


class FeedbackDesk:
    """Turns a validated feedback into a :class:`Claim`, or raises UnknownPrediction,
    FeedbackConflict."""

    def __init__(
        self,
        recent: RecentPredictions,
        model_name: str,
        model_version: str,
        log: Callable[[], PredictionLog] | None,
        unknown_wait_s: float = UNKNOWN_WAIT_S,
    ) -> None:
        self.recent = recent
        self.model_name, self.model_version = model_name, model_version
        self._log = log  # None: no shared log (switched off); memory decides
        self.unknown_wait_s = unknown_wait_s

    async def claim(self, given: Feedback) -> Claim:
        local = self.recent.get(given.prediction_id)
        if self._log is None:
            return self._claim_locally(given)
        known = None if local is None else self._served(given.prediction_id, local)
        # only an id this service could have made is worth waiting for
        wait = (
            self.unknown_wait_s
            if local is None and ID_PATTERN.fullmatch(given.prediction_id)
            else 0.0
        )
        deadline = time.monotonic() + wait
        while True:
            try:
                claim = await asyncio.to_thread(self._claim_in_log, given, known)
            except UnknownPrediction:
                if time.monotonic() >= deadline:
                    raise
                await asyncio.sleep(UNKNOWN_POLL_S)
                continue
            except (SQLAlchemyError, Unreachable) as exc:
                logger.warning("prediction log unreachable (%s); feedback decided here", exc)
                return self._claim_locally(given)
            if local is not None:
                with contextlib.suppress(AlreadyJudged, KeyError):
                    self.recent.claim_feedback(given.prediction_id)
            return claim

    def _claim_in_log(self, given: Feedback, known: ServedPrediction | None) -> Claim:
        assert self._log is not None
        try:
            log = self._log()
        except TextopsError as exc:  # the store could not be opened
            raise Unreachable(str(exc)) from exc
        return log.claim(given.prediction_id, given.accepted, given.label, known)

    def _claim_locally(self, given: Feedback) -> Claim:
        try:
            stored = self.recent.claim_feedback(given.prediction_id)
        except KeyError:
            raise UnknownPrediction(
                f"no prediction has id {given.prediction_id!r} (without the prediction log "
                f"this server keeps only its own last {self.recent.capacity} predictions)"
            ) from None
        except AlreadyJudged:
            raise FeedbackConflict(
                f"feedback for prediction {given.prediction_id!r} was already recorded"
            ) from None
        served = self._served(given.prediction_id, stored)
        return Claim(served, judge(stored.label, given.accepted, given.label), first=True)

    def _served(self, prediction_id: str, stored: StoredPrediction) -> ServedPrediction:
        return ServedPrediction(
            prediction_id,
            self.model_name,
            self.model_version,
            stored.text,
            stored.label,
            dict(stored.proba),
        )
