"""Where dev-server binaries come from.

Go-built tools (the S3 gateway) live in a versioned cache outside the work tree, so a fresh
clone or CI run reuses a build and a version bump never picks up a stale one:
`${TEXTOPS_CACHE:-$HOME/.cache/textops}/tools-v1/<tool>-<version>/<binary>`.
Debian packages (MariaDB) are found on PATH or in the sbin directories root's PATH may lack.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from textops.processes import MissingBinaryError

SBIN_DIRS = ("/usr/sbin", "/usr/local/sbin", "/sbin")


def cache_root() -> Path:
    """`${TEXTOPS_CACHE:-$HOME/.cache/textops}/tools-v1`."""
    base = os.environ.get("TEXTOPS_CACHE") or str(Path.home() / ".cache" / "textops")
    return Path(base) / "tools-v1"


def find_binary(name: str, *, tool_dir: str | None = None, hint: str) -> Path:
    """Locate `name`: first in the tool cache's `tool_dir`, then PATH, then the sbin dirs.

    Raises `MissingBinaryError` whose message is `hint` (what to run to get it).
    """
    candidates: list[Path] = []
    if tool_dir is not None:
        candidates.append(cache_root() / tool_dir / name)
    found = shutil.which(name)
    if found:
        candidates.append(Path(found))
    candidates.extend(Path(d) / name for d in SBIN_DIRS)
    for path in candidates:
        if path.is_file() and os.access(path, os.X_OK):
            return path
    looked = ", ".join(str(p) for p in candidates[:1]) or "PATH"
    raise MissingBinaryError(f"{name} not found (looked in {looked}, PATH, sbin): {hint}")
