"""Row validation: every bad row is reported with where it came from, before anything is stored.

Pure: takes raw records (line number, bytes or text, label) and returns clean rows or raises
:class:`~textops.errors.InvalidDataError` listing all problems at once, so a person fixes a file
in one pass instead of one error per run.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from textops.data.dataset import Row, normalise_text
from textops.errors import InvalidDataError


@dataclass(frozen=True)
class RawRecord:
    """A row as read from a source: ``where`` is e.g. ``pos.txt:17``."""

    where: str
    text: bytes | str
    label: str
    problem: str | None = None  # set by a reader that could not parse the row at all


@dataclass
class ValidationReport:
    """Clean rows plus what was dropped (only when dropping duplicates was asked for)."""

    rows: list[Row]
    duplicates_dropped: int = 0
    conflicts_dropped: list[str] = field(default_factory=list)

    def summary(self) -> str:
        parts = [f"{len(self.rows)} rows"]
        if self.duplicates_dropped:
            parts.append(f"{self.duplicates_dropped} exact duplicates dropped")
        if self.conflicts_dropped:
            parts.append(
                f"{len(self.conflicts_dropped)} texts labelled differently in different rows "
                "dropped"
            )
        return ", ".join(parts)


def validate_records(
    records: Iterable[RawRecord],
    allowed_labels: set[str] | None = None,
    drop_duplicates: bool = False,
) -> ValidationReport:
    """Check encoding, empty text, unknown labels, duplicates and conflicting labels.

    With ``drop_duplicates`` (for sources known to repeat themselves, like the built-in corpus),
    exact repeats keep their first occurrence and texts with conflicting labels are removed
    entirely — keeping either label would train on a coin flip. Otherwise both are refused.
    """
    problems: list[str] = []
    first_seen: dict[str, tuple[str, str]] = {}  # text -> (label, where)
    conflicted: dict[str, list[str]] = {}
    duplicates = 0
    kept: dict[str, Row] = {}
    for rec in records:
        if rec.problem:
            problems.append(f"{rec.where}: {rec.problem}")
            continue
        text = _decode(rec, problems)
        if text is None:
            continue
        text = normalise_text(text)
        label = rec.label.strip()
        if not text:
            problems.append(f"{rec.where}: empty text")
            continue
        if not label:
            problems.append(f"{rec.where}: empty label")
            continue
        if allowed_labels is not None and label not in allowed_labels:
            allowed = ", ".join(sorted(allowed_labels))
            problems.append(f"{rec.where}: unknown label {label!r} (allowed: {allowed})")
            continue
        seen = first_seen.get(text)
        if seen is None:
            first_seen[text] = (label, rec.where)
            kept[text] = Row(text, label)
        elif seen[0] == label:
            duplicates += 1
            if not drop_duplicates:
                problems.append(f"{rec.where}: duplicate of {seen[1]}")
        else:
            conflicted.setdefault(text, [f"{seen[1]} ({seen[0]})"]).append(f"{rec.where} ({label})")
            if not drop_duplicates:
                problems.append(
                    f"{rec.where}: same text as {seen[1]} but labelled {label!r}, not {seen[0]!r}"
                )
    if problems:
        raise InvalidDataError(f"refused: {len(problems)} bad rows, nothing was stored", problems)
    for text in conflicted:
        kept.pop(text, None)
    return ValidationReport(
        rows=list(kept.values()),
        duplicates_dropped=duplicates,
        conflicts_dropped=[" vs ".join(places) for places in conflicted.values()],
    )


def _decode(rec: RawRecord, problems: list[str]) -> str | None:
    if isinstance(rec.text, str):
        return rec.text
    try:
        return rec.text.decode("utf-8")
    except UnicodeDecodeError as exc:
        problems.append(f"{rec.where}: not valid UTF-8 (byte {exc.start}: {exc.reason})")
        return None
