"""The label store: captured samples waiting for a label, the labels people give, and skips.

One SQL schema on two engines: SQLite for the embedded default and MariaDB/MySQL (through
``pymysql``) in a cluster, chosen by the URL in ``TEXTOPS_LABEL_DB``. The schema is created and
upgraded by numbered migrations recorded in ``textops_schema_version``, so every replica and
every restart agree on it.

Rules that protect annotators' work:
- submitting a label is one transaction (the label row and the sample's status together);
- the same annotator submitting the same label again is idempotent (no second row);
- a different label for an already labelled sample is kept beside the first and reported as a
  conflict — never a silent overwrite; export decides what to do with conflicts;
- capturing the same sample id twice keeps the first capture (a retried request is harmless).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError, OperationalError

from textops.errors import TextopsError
from textops.labelling.config import QueueConfig, load_queue_config
from textops.labelling.live_queue import DriftMeasure, Pending, Placed, QueueCache
from textops.labelling.schema import (
    exports,
    labels,
    migrate,
    now,
    open_engine,
    redact,
    run_transaction,
    samples,
    skips,
)

QUEUED, LABELLED, SKIPPED = "queued", "labelled", "skipped"
# captures made from user feedback that named the true label: a random, not a ranked, sample
FEEDBACK_REASON = "feedback"
FEEDBACK_ANNOTATOR = "user-feedback"
IN_CHUNK = 500  # ids per IN (...) list when reading many samples
LOOKUP_CHUNK = 500  # ids per IN (...) look-up: well below every database's parameter limit
T = TypeVar("T")


@dataclass(frozen=True)
class CapturedSample:
    """A prediction worth a person's look, as the serving side captures it."""

    id: str
    text: str
    model_name: str
    model_version: str
    predicted_label: str
    confidence: float
    probabilities: dict[str, float]
    reason: str
    score: float = 0.0
    score_parts: dict[str, float] = field(default_factory=dict)
    # the true label when the capture arrives with one (a user's feedback named it): stored as
    # a label by ``FEEDBACK_ANNOTATOR`` so it feeds the next dataset version like any other
    label: str | None = None


@dataclass(frozen=True)
class QueueItem:
    """A sample as listed to annotators. For queued samples ``score``/``score_parts`` are the
    ranking's, ``why`` says it in words and ``position`` is the 0-based place in the queue;
    ``reason`` stays what triggered the capture ("uncertain", "drift")."""

    id: str
    text: str
    predicted_label: str
    confidence: float
    probabilities: dict[str, float]
    reason: str
    score: float
    score_parts: dict[str, float]
    status: str
    model_version: str
    why: str = ""
    position: int | None = None
    duplicate_of: str | None = None


@dataclass(frozen=True)
class LabelResult:
    sample_id: str
    label: str
    created: bool  # False: this annotator had already given this label (idempotent retry)
    conflict: bool  # True: the sample now holds different labels
    labels: list[str]  # every distinct label the sample has, oldest first


@dataclass(frozen=True)
class StoredLabel:
    id: int
    sample_id: str
    text: str
    label: str
    annotator: str
    created_at: datetime
    reason: str = ""  # why the sample was captured: "uncertain", "drift", "feedback", ...


class UnknownSampleError(TextopsError):
    """No captured sample has that id."""


def text_sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class LabelStore:
    """All reads and writes of labelling data; safe to share between threads."""

    def __init__(self, url: str, queue_config: QueueConfig | None = None) -> None:
        self.url = url
        self._ranked = QueueCache(queue_config or load_queue_config())
        self.engine: Engine = open_engine(url)
        try:
            self.migrate()
        except OperationalError as exc:
            raise TextopsError(f"label store {redact(url)} is unreachable: {exc.orig}") from exc

    def migrate(self) -> int:
        """Apply the migrations not yet recorded; returns the schema version."""
        return migrate(self.engine)

    def add_samples(self, captured: Iterable[CapturedSample]) -> int:
        """Queue samples; ids already present are kept as they are. Returns how many were new.

        One look-up and one multi-row insert per batch: the serving process hands over
        hundreds of captures a second under load, and four statements per sample (look-up,
        savepoint, insert, release) cost a fifth of its CPU. Only when another replica
        captured one of the same ids in between does it fall back to one savepoint per row.
        """
        batch = list(captured)

        def work(conn: Connection) -> int:
            present: set[str] = set()
            ids = list(dict.fromkeys(s.id for s in batch))
            for lo in range(0, len(ids), LOOKUP_CHUNK):
                chunk = ids[lo : lo + LOOKUP_CHUNK]
                found = conn.execute(sa.select(samples.c.id).where(samples.c.id.in_(chunk)))
                present.update(found.scalars())
            fresh: dict[str, CapturedSample] = {}
            for s in batch:  # the first capture of an id wins, as in the store
                if s.id not in present:
                    fresh.setdefault(s.id, s)
            if not fresh:
                return 0
            try:
                with conn.begin_nested():
                    conn.execute(samples.insert(), [_sample_row(s) for s in fresh.values()])
                return len(fresh)
            except IntegrityError:
                pass  # another replica captured some of them meanwhile: row by row
            added = 0
            for s in fresh.values():
                try:
                    with conn.begin_nested():
                        conn.execute(samples.insert().values(**_sample_row(s)))
                    added += 1
                except IntegrityError:
                    pass
            return added

        added = self._transaction(work)
        for s in batch:  # idempotent: the same label again is a no-op
            if s.label is not None:
                self.submit_label(s.id, s.label, FEEDBACK_ANNOTATOR)
        return added

    def queue(
        self,
        limit: int = 20,
        offset: int = 0,
        status: str = QUEUED,
        drift: DriftMeasure | None = None,
        model_name: str | None = None,
    ) -> list[QueueItem]:
        """Samples in the given status (of ``model_name``'s predictions, when given: one
        queue per model, whatever else shares the store). Queued ones in the ranked order of
        :mod:`textops.labelling.live_queue` (drift measured by ``drift``, the serving model's
        reference, when given); others by capture score (ties: oldest first)."""
        capture_order = (samples.c.score.desc(), samples.c.created_at, samples.c.id)
        of_model = _of_model(model_name)
        if status != QUEUED:
            query = (
                sa.select(samples)
                .where(samples.c.status == status, *of_model)
                .order_by(*capture_order)
                .limit(limit)
                .offset(offset)
            )
            with self.engine.connect() as conn:
                return [_item(row._mapping) for row in conn.execute(query)]
        queued = (
            sa.select(samples.c.id)
            .where(samples.c.status == QUEUED, *of_model)
            .order_by(*capture_order)
        )
        with self.engine.connect() as conn:
            ids: list[str] = list(conn.execute(queued).scalars())
        ranked = self._ranked.get(ids, self._pending, drift)
        placed = ranked.page(offset, limit)
        wanted = [p.sample.id for p in placed]
        with self.engine.connect() as conn:
            found = conn.execute(sa.select(samples).where(samples.c.id.in_(wanted)))
            rows = {row.id: row._mapping for row in found}
        return [_ranked_item(rows[p.sample.id], p) for p in placed if p.sample.id in rows]

    def _pending(self, ids: Sequence[str]) -> list[Pending]:
        """What the ranking needs of the samples ``ids``."""
        found: list[tuple[str, str, str, str, str]] = []
        with self.engine.connect() as conn:
            for start in range(0, len(ids), IN_CHUNK):
                query = sa.select(
                    samples.c.id,
                    samples.c.text,
                    samples.c.predicted_label,
                    samples.c.probabilities,
                    samples.c.score_parts,
                ).where(samples.c.id.in_(ids[start : start + IN_CHUNK]))
                found.extend((r[0], r[1], r[2], r[3], r[4]) for r in conn.execute(query))
        # one JSON document for all rows: a single decoder call instead of one per value
        decoded = json.loads("[" + ",".join(f"{r[3]},{r[4]}" for r in found) + "]")
        return [
            Pending(sample_id, text, predicted, decoded[2 * k], decoded[2 * k + 1])
            for k, (sample_id, text, predicted, _, _) in enumerate(found)
        ]

    def submit_label(self, sample_id: str, label: str, annotator: str) -> LabelResult:
        label, annotator = label.strip(), annotator.strip() or "anonymous"
        if not label:
            raise TextopsError("a label must not be empty")

        def work(conn: Connection) -> tuple[bool, list[str]]:
            self._require(conn, sample_id)
            created = True
            try:
                with conn.begin_nested():
                    conn.execute(
                        labels.insert().values(
                            sample_id=sample_id, label=label, annotator=annotator, created_at=now()
                        )
                    )
            except IntegrityError:
                created = False  # the same annotator gave the same label before
            conn.execute(samples.update().where(samples.c.id == sample_id).values(status=LABELLED))
            given = conn.execute(
                sa.select(labels.c.label)
                .where(labels.c.sample_id == sample_id)
                .order_by(labels.c.id)
            )
            return created, [r[0] for r in given]

        created, given = self._transaction(work)
        distinct = list(dict.fromkeys(given))
        return LabelResult(sample_id, label, created, len(distinct) > 1, distinct)

    def _transaction(self, work: Callable[[Connection], T]) -> T:
        return run_transaction(self.engine, work)

    def skip(self, sample_id: str, annotator: str) -> None:
        def work(conn: Connection) -> None:
            self._require(conn, sample_id)
            who = annotator.strip() or "anonymous"
            conn.execute(
                skips.insert().values(sample_id=sample_id, annotator=who, created_at=now())
            )
            conn.execute(
                samples.update()
                .where(samples.c.id == sample_id, samples.c.status == QUEUED)
                .values(status=SKIPPED)
            )

        self._transaction(work)

    def labels_after(self, last_id: int = 0, model_name: str | None = None) -> list[StoredLabel]:
        """Every label with an id above ``last_id`` (of samples ``model_name`` predicted, when
        given), oldest first."""
        query = (
            sa.select(
                labels.c.id,
                labels.c.sample_id,
                samples.c.text,
                labels.c.label,
                labels.c.annotator,
                labels.c.created_at,
                samples.c.reason,
            )
            .join(samples, samples.c.id == labels.c.sample_id)
            .where(labels.c.id > last_id)
            .order_by(labels.c.id)
        )
        if model_name is not None:
            query = query.where(samples.c.model_name == model_name)
        with self.engine.connect() as conn:
            return [StoredLabel(*row) for row in conn.execute(query)]

    def record_export(
        self, model_name: str, dataset_id: str, parent_id: str, last_label_id: int, added: int
    ) -> None:
        """Say that ``dataset_id`` holds every label of ``model_name`` up to ``last_label_id``."""
        with self.engine.begin() as conn:
            conn.execute(
                exports.insert().values(
                    model_name=model_name,
                    dataset_id=dataset_id,
                    parent_id=parent_id,
                    last_label_id=last_label_id,
                    labels_added=added,
                    created_at=now(),
                )
            )

    def unexported_labels(self, model_name: str) -> int:
        """Labels of ``model_name``'s samples given since its newest export: what the next
        retraining would add (``minNewLabels`` counts these)."""
        with self.engine.connect() as conn:
            done = conn.execute(
                sa.select(sa.func.max(exports.c.last_label_id)).where(
                    exports.c.model_name == model_name
                )
            ).scalar()
            query = (
                sa.select(sa.func.count())
                .select_from(labels.join(samples, samples.c.id == labels.c.sample_id))
                .where(samples.c.model_name == model_name, labels.c.id > (done or 0))
            )
            return int(conn.execute(query).scalar_one())

    def stats(self, model_name: str | None = None) -> dict[str, int]:
        """Counts of samples by status, labels, skips and conflicting samples (of
        ``model_name``'s samples, when given)."""
        of_model = _of_model(model_name)
        labelled = labels.join(samples, samples.c.id == labels.c.sample_id)
        with self.engine.connect() as conn:
            by_status: dict[str, int] = dict(
                conn.execute(
                    sa.select(samples.c.status, sa.func.count())
                    .where(*of_model)
                    .group_by(samples.c.status)
                ).all()
            )
            n_labels = conn.execute(
                sa.select(sa.func.count()).select_from(labelled).where(*of_model)
            ).scalar_one()
            n_skips = conn.execute(
                sa.select(sa.func.count())
                .select_from(skips.join(samples, samples.c.id == skips.c.sample_id))
                .where(*of_model)
            ).scalar_one()
            conflicted = conn.execute(
                sa.select(sa.func.count()).select_from(
                    sa.select(labels.c.sample_id)
                    .select_from(labelled)
                    .where(*of_model)
                    .group_by(labels.c.sample_id)
                    .having(sa.func.count(sa.distinct(labels.c.label)) > 1)
                    .subquery()
                )
            ).scalar_one()
        return {
            "queued": int(by_status.get(QUEUED, 0)),
            "labelled": int(by_status.get(LABELLED, 0)),
            "skipped": int(by_status.get(SKIPPED, 0)),
            "labels": int(n_labels),
            "skips": int(n_skips),
            "conflicts": int(conflicted),
        }

    @staticmethod
    def _require(conn: Connection, sample_id: str) -> None:
        found = conn.execute(sa.select(samples.c.id).where(samples.c.id == sample_id)).first()
        if found is None:
            raise UnknownSampleError(f"no captured sample with id {sample_id!r}")


def _of_model(model_name: str | None) -> tuple[Any, ...]:
    """The WHERE clause that keeps ``model_name``'s samples (none: every sample)."""
    return () if model_name is None else (samples.c.model_name == model_name,)


def _sample_row(s: CapturedSample) -> dict[str, Any]:
    return {
        "id": s.id,
        "text": s.text,
        "text_sha256": text_sha256(s.text),
        "model_name": s.model_name,
        "model_version": s.model_version,
        "predicted_label": s.predicted_label,
        "confidence": float(s.confidence),
        "probabilities": json.dumps(s.probabilities, ensure_ascii=False),
        "reason": s.reason,
        "score": float(s.score),
        "score_parts": json.dumps(s.score_parts, ensure_ascii=False),
        "status": QUEUED,
        "created_at": now(),
    }


def _item(row: Any) -> QueueItem:
    return QueueItem(
        id=row["id"],
        text=row["text"],
        predicted_label=row["predicted_label"],
        confidence=float(row["confidence"]),
        probabilities=json.loads(row["probabilities"]),
        reason=row["reason"],
        score=float(row["score"]),
        score_parts=json.loads(row["score_parts"]),
        status=row["status"],
        model_version=row["model_version"],
    )


def _ranked_item(row: Any, placed: Placed) -> QueueItem:
    ranked = placed.ranked
    return dataclasses.replace(
        _item(row),
        score=round(ranked.score, 6),
        score_parts={name: round(value, 6) for name, value in ranked.parts.items()},
        why=ranked.reason,
        position=placed.position,
        duplicate_of=ranked.duplicate_of,
    )
