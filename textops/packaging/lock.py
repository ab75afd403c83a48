"""Read uv.lock, the one lock of the project's Python environment.

Why this exists: the venv, CI and every image install exactly what uv.lock says (through
`uv export`, which needs uv). Two things need the lock before uv is there or without uv:
bootstrapping uv itself at its locked version and hashes, and comparing what an image or a
venv holds with the lock. Standard library only, so the system Python can run it before any
venv exists: `python3 -m textops.packaging.lock uv-requirement`.
"""

from __future__ import annotations

import argparse
import re
import sys
import tomllib
from collections.abc import Mapping
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LOCK_FILE = ROOT / "uv.lock"
PYPROJECT = ROOT / "pyproject.toml"
PROJECT = "textops"
_REQUIREMENT = re.compile(
    r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(?:\[[^\]]*\])?\s*([^;]*?)\s*(?:;.*)?$"
)


def canonical(name: str) -> str:
    """PEP 503 normalised name: `PyMySQL` and `pymysql`, `ruamel_yaml` and `ruamel-yaml` agree."""
    return re.sub(r"[-_.]+", "-", name).lower()


def read(path: Path = LOCK_FILE) -> dict:
    with path.open("rb") as f:
        return tomllib.load(f)


def versions(lock: Mapping) -> dict[str, str]:
    """{canonical name: version} of every registry package in the lock (not the project)."""
    return {
        canonical(p["name"]): p["version"]
        for p in lock.get("package", [])
        if "registry" in p.get("source", {})
    }


def requirement_with_hashes(lock: Mapping, name: str) -> str:
    """`NAME==VERSION --hash=sha256:...` for one locked package, for `pip --require-hashes`."""
    for p in lock.get("package", []):
        if canonical(p["name"]) == canonical(name):
            hashes = [w["hash"] for w in p.get("wheels", [])]
            if "sdist" in p:
                hashes.append(p["sdist"]["hash"])
            if not hashes:
                raise KeyError(f"{name} is in the lock without any file hash")
            return " ".join([f"{p['name']}=={p['version']}", *(f"--hash={h}" for h in hashes)])
    raise KeyError(f"{name} is not in the lock")


Requirement = tuple[str, str, frozenset[str]]
"""(group: "" for the main dependencies, the extra's or the dependency group's name,
canonical package name, specifier parts)."""


def _specifier(text: str) -> frozenset[str]:
    return frozenset(part.replace(" ", "") for part in text.split(",") if part.strip())


def declared(pyproject: Mapping) -> set[Requirement]:
    """What pyproject.toml asks for: main dependencies, each extra and each dependency group."""
    project = pyproject["project"]
    groups: dict[str, list[str]] = {"": project.get("dependencies", [])}
    for extra, reqs in project.get("optional-dependencies", {}).items():
        groups[f"extra:{extra}"] = reqs
    for group, reqs in pyproject.get("dependency-groups", {}).items():
        groups[f"group:{group}"] = [r for r in reqs if isinstance(r, str)]
    out: set[Requirement] = set()
    for group, reqs in groups.items():
        for req in reqs:
            match = _REQUIREMENT.match(req)
            if not match:
                raise ValueError(f"cannot read the requirement {req!r} in pyproject.toml")
            out.add((group, canonical(match[1]), _specifier(match[2])))
    return out


def recorded(lock: Mapping) -> set[Requirement]:
    """What the lock was resolved for: the project's requires-dist and requires-dev."""
    project = next(p for p in lock.get("package", []) if p["name"] == PROJECT)
    metadata = project.get("metadata", {})
    out: set[Requirement] = set()
    for req in metadata.get("requires-dist", []):
        marker = req.get("marker", "")
        extra = re.fullmatch(r"extra == '([^']+)'", marker)
        if marker and not extra:
            raise ValueError(f"unexpected marker {marker!r} on {req['name']} in the lock")
        group = f"extra:{extra[1]}" if extra else ""
        out.add((group, canonical(req["name"]), _specifier(req.get("specifier", ""))))
    for group, reqs in metadata.get("requires-dev", {}).items():
        for req in reqs:
            out.add(
                (f"group:{group}", canonical(req["name"]), _specifier(req.get("specifier", "")))
            )
    return out


def stale_reasons(pyproject: Mapping, lock: Mapping) -> list[str]:
    """Why the lock no longer answers pyproject.toml (empty: it does). Offline, no resolution."""

    def show(r: Requirement) -> str:
        where = r[0] or "dependencies"
        return f"{r[1]}{','.join(sorted(r[2]))} in {where}"

    want, have = declared(pyproject), recorded(lock)
    reasons = []
    python = pyproject["project"].get("requires-python", "")
    if _specifier(python) != _specifier(lock.get("requires-python", "")):
        reasons.append(
            f"requires-python is {python!r}, the lock has {lock.get('requires-python')!r}"
        )
    reasons += [
        f"pyproject.toml asks for {show(r)}, the lock was not resolved for it"
        for r in sorted(want - have, key=show)
    ]
    reasons += [
        f"the lock was resolved for {show(r)}, which pyproject.toml no longer asks for"
        for r in sorted(have - want, key=show)
    ]
    return reasons


def version_changes(old: Mapping[str, str], new: Mapping[str, str]) -> list[str]:
    """Readable lines for a reviewer: added, removed and changed packages, sorted by name."""
    lines = []
    for name in sorted(set(old) | set(new)):
        before, after = old.get(name), new.get(name)
        if before == after:
            continue
        if before is None:
            lines.append(f"+ {name} {after}")
        elif after is None:
            lines.append(f"- {name} {before}")
        else:
            lines.append(f"~ {name} {before} -> {after}")
    return lines


def pinned(requirements: str) -> dict[str, str]:
    """{canonical name: version} of the `NAME==VERSION` lines of a requirements text."""
    out = {}
    for line in requirements.splitlines():
        match = re.match(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*==\s*([^\s;\\]+)", line)
        if match:
            out[canonical(match[1])] = match[2]
    return out


def differences(installed: Mapping[str, str], locked: Mapping[str, str]) -> list[str]:
    """Installed packages whose version is not the lock's, or that the lock does not hold.

    `installed` is {name: version} as `pip list` reports it; names are normalised here.
    """
    out = []
    for name, version in sorted(installed.items()):
        want = locked.get(canonical(name))
        if want is None:
            out.append(f"{name} {version} is not in the lock")
        elif want != version:
            out.append(f"{name} {version} but the lock has {want}")
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m textops.packaging.lock")
    sub = parser.add_subparsers(dest="command", required=True)
    req = sub.add_parser("requirement", help="print NAME==VERSION with its hashes from uv.lock")
    req.add_argument("name")
    diff = sub.add_parser("diff", help="print version changes between two lock files")
    diff.add_argument("old", type=Path)
    diff.add_argument("new", type=Path, nargs="?", default=LOCK_FILE)
    sub.add_parser("check", help="fail when pyproject.toml changed and uv.lock was not refreshed")
    args = parser.parse_args(argv)
    if args.command == "check":
        with PYPROJECT.open("rb") as f:
            reasons = stale_reasons(tomllib.load(f), read())
        for reason in reasons:
            print(f"uv.lock is stale: {reason}", file=sys.stderr)
        if reasons:
            print("refresh it with `make lock` and commit uv.lock", file=sys.stderr)
        return 1 if reasons else 0
    if args.command == "requirement":
        print(requirement_with_hashes(read(), args.name))
        return 0
    old = versions(read(args.old)) if args.old.stat().st_size else {}
    changes = version_changes(old, versions(read(args.new)))
    print("\n".join(changes) if changes else "no version changed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
