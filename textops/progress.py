"""Visible progress for long commands: numbered stages with their durations, on stderr.

Stages are also collected so a command can print a summary of where its time went.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TextIO


@dataclass
class Progress:
    """Prints ``[i/n] stage ...`` when a stage starts and its duration when it ends."""

    total: int
    stream: TextIO = field(default_factory=lambda: sys.stderr)
    quiet: bool = False
    timings: dict[str, float] = field(default_factory=dict)
    _done: int = 0

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        self._done += 1
        self.say(f"[{self._done}/{self.total}] {name} ...")
        start = time.perf_counter()
        try:
            yield
        finally:
            elapsed = time.perf_counter() - start
            self.timings[name] = self.timings.get(name, 0.0) + elapsed  # a repeated stage adds up
            self.say(f"[{self._done}/{self.total}] {name}: {elapsed:.1f}s")

    def say(self, message: str) -> None:
        if not self.quiet:
            print(message, file=self.stream, flush=True)
