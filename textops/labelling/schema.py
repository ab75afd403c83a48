"""The label store's schema on SQLite or MariaDB/MySQL, its migrations, and transactions
that survive the database breaking a lock conflict.

Shared by the label store (captured samples, labels, skips) and the prediction log (every
served prediction and its feedback), which live in one database so every replica and every
retraining Job of an installation reads one truth.
"""

from __future__ import annotations

import contextlib
import random
import time
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError, OperationalError

from textops.errors import TextopsError

RETRIES = 5  # attempts for a transaction the database aborted to break a lock conflict
LOCK_CONFLICT_CODES = (1205, 1213, 1305)  # lock wait timeout, deadlock, savepoint rolled back
T = TypeVar("T")

metadata = sa.MetaData()
schema_version = sa.Table(
    "textops_schema_version",
    metadata,
    sa.Column("version", sa.Integer, primary_key=True),
    sa.Column("applied_at", sa.DateTime, nullable=False),
)
samples = sa.Table(
    "label_samples",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),  # the prediction id
    sa.Column("text", sa.Text, nullable=False),
    sa.Column("text_sha256", sa.String(64), nullable=False, index=True),
    sa.Column("model_name", sa.String(255), nullable=False),
    sa.Column("model_version", sa.String(64), nullable=False),
    sa.Column("predicted_label", sa.String(255), nullable=False),
    sa.Column("confidence", sa.Float, nullable=False),
    sa.Column("probabilities", sa.Text, nullable=False),  # JSON {class: p}
    sa.Column("reason", sa.String(64), nullable=False),  # why it was captured
    sa.Column("score", sa.Float, nullable=False, default=0.0),
    sa.Column("score_parts", sa.Text, nullable=False, default="{}"),  # JSON
    sa.Column("status", sa.String(16), nullable=False, index=True),
    sa.Column("created_at", sa.DateTime, nullable=False),
)
labels = sa.Table(
    "label_labels",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column(
        "sample_id", sa.String(64), sa.ForeignKey("label_samples.id"), nullable=False, index=True
    ),
    sa.Column("label", sa.String(255), nullable=False),
    sa.Column("annotator", sa.String(255), nullable=False),
    sa.Column("created_at", sa.DateTime, nullable=False),
    sa.UniqueConstraint("sample_id", "annotator", "label", name="uq_label_once"),
)
skips = sa.Table(
    "label_skips",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("sample_id", sa.String(64), sa.ForeignKey("label_samples.id"), nullable=False),
    sa.Column("annotator", sa.String(255), nullable=False),
    sa.Column("created_at", sa.DateTime, nullable=False),
)

predictions = sa.Table(
    "served_predictions",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),  # the id /predict answered with
    sa.Column("model_name", sa.String(255), nullable=False),
    sa.Column("model_version", sa.String(64), nullable=False),
    sa.Column("text", sa.Text, nullable=False),
    sa.Column("predicted_label", sa.String(255), nullable=False),
    sa.Column("probabilities", sa.Text, nullable=False),  # JSON {class: p}
    sa.Column("created_at", sa.DateTime, nullable=False, index=True),
    # the feedback, once: whether it was right and the true class when known ("" if not)
    sa.Column("feedback_correct", sa.Boolean, nullable=True),
    sa.Column("feedback_label", sa.String(255), nullable=True),
    sa.Column("feedback_at", sa.DateTime, nullable=True),
)

exports = sa.Table(
    "label_exports",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("model_name", sa.String(255), nullable=False, index=True),
    sa.Column("dataset_id", sa.String(64), nullable=False),
    sa.Column("parent_id", sa.String(64), nullable=False),
    # every label of the model up to this id is in dataset_id: what "new labels" counts from
    sa.Column("last_label_id", sa.Integer, nullable=False),
    sa.Column("labels_added", sa.Integer, nullable=False),
    sa.Column("created_at", sa.DateTime, nullable=False),
)

# Each migration creates what it introduces; never edit one that has shipped, add the next.
MIGRATIONS: list[Sequence[sa.Table]] = [
    [schema_version, samples, labels, skips],
    [predictions],  # feedback for any replica's prediction, before or after a restart
    [exports],  # which labels are in which dataset version, per model
]


def now() -> datetime:
    """UTC without microseconds: what both databases store alike."""
    return datetime.now(UTC).replace(tzinfo=None, microsecond=0)


def open_engine(url: str) -> Engine:
    """An engine for ``url`` with the connection settings each database needs."""
    connect_args: dict[str, Any] = {}
    if url.startswith("sqlite"):
        connect_args = {"check_same_thread": False, "timeout": 30}
        _ensure_sqlite_folder(url)
    elif url.startswith("mysql"):
        connect_args = {"charset": "utf8mb4", "connect_timeout": 10}
    return sa.create_engine(url, pool_pre_ping=True, future=True, connect_args=connect_args)


def migrate(engine: Engine) -> int:
    """Apply the migrations not yet recorded; returns the schema version.

    Replicas starting together on a fresh database race to create the same tables. On MySQL
    they take turns under a named lock (concurrent DDL on one table fails there with 1684 or
    1050); on SQLite the loser's CREATE may fail with "already exists", and a second pass
    finds the table there.
    """
    for attempt in range(RETRIES):
        try:
            with _schema_lock(engine):
                return _migrate(engine)
        except OperationalError as exc:
            if attempt == RETRIES - 1 or "already exists" not in str(exc.orig):
                raise
            time.sleep(random.uniform(0.01, 0.1))
    raise AssertionError("unreachable")


@contextlib.contextmanager
def _schema_lock(engine: Engine, wait_s: int = 60) -> Iterator[None]:
    """A server-side lock per database while migrating (MySQL/MariaDB; nothing elsewhere)."""
    if engine.dialect.name != "mysql":
        yield
        return
    name = f"textops-schema-{engine.url.database}"[:64]
    with engine.connect() as conn:
        got = conn.execute(sa.text("SELECT GET_LOCK(:name, :wait)"), {"name": name, "wait": wait_s})
        if got.scalar() != 1:
            raise TextopsError(f"another process held the schema lock {name!r} for {wait_s}s")
        try:
            yield
        finally:
            conn.execute(sa.text("SELECT RELEASE_LOCK(:name)"), {"name": name})


def _migrate(engine: Engine) -> int:
    with engine.begin() as conn:
        schema_version.create(conn, checkfirst=True)
        done = {row[0] for row in conn.execute(sa.select(schema_version.c.version))}
        for number, tables in enumerate(MIGRATIONS, start=1):
            if number in done:
                continue
            for table in tables:
                table.create(conn, checkfirst=True)
            # another replica may record the same migration at the same moment
            with contextlib.suppress(IntegrityError), conn.begin_nested():
                conn.execute(schema_version.insert().values(version=number, applied_at=now()))
    return len(MIGRATIONS)


def run_transaction(engine: Engine, work: Callable[[Connection], T]) -> T:
    """Run ``work`` in one transaction, again if the database broke a lock conflict.

    InnoDB resolves concurrent inserts into the same unique index by aborting one of them
    (deadlock 1213, lock wait timeout 1205) and SQLite answers "database is locked"; both
    mean "try again", and the retry is safe because the transaction was rolled back. A
    deadlock inside a savepoint rolls back the whole transaction, savepoint included, so
    the driver then reports the savepoint as missing (1305) instead: the same conflict.
    """
    for attempt in range(RETRIES):
        try:
            with engine.begin() as conn:
                return work(conn)
        except OperationalError as exc:
            if attempt == RETRIES - 1 or not _is_lock_conflict(exc):
                raise
            time.sleep(random.uniform(0.01, 0.05) * (attempt + 1))
    raise AssertionError("unreachable")


def _is_lock_conflict(exc: OperationalError) -> bool:
    code = exc.orig.args[0] if exc.orig is not None and exc.orig.args else None
    return code in LOCK_CONFLICT_CODES or "database is locked" in str(exc.orig)


def _ensure_sqlite_folder(url: str) -> None:
    path = url.split("///", 1)[1] if "///" in url else ""
    if path and path != ":memory:":
        Path(path).parent.mkdir(parents=True, exist_ok=True)


def redact(url: str) -> str:
    """The URL without its password, for messages."""
    return sa.engine.make_url(url).render_as_string(hide_password=True)
