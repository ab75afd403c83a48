"""uv.lock is the one lock: it answers pyproject.toml, the venv holds exactly its versions, and
the checks that say so fail when either drifts."""

from __future__ import annotations

import copy
import importlib.metadata
import tomllib
from pathlib import Path

import pytest

from textops.packaging import lock

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def pyproject() -> dict:
    with (ROOT / "pyproject.toml").open("rb") as f:
        return tomllib.load(f)


@pytest.fixture(scope="module")
def locked() -> dict:
    return lock.read()


def test_the_committed_lock_answers_pyproject(pyproject: dict, locked: dict) -> None:
    assert lock.stale_reasons(pyproject, locked) == []


def test_a_changed_range_makes_the_lock_stale(pyproject: dict, locked: dict) -> None:
    changed = copy.deepcopy(pyproject)
    deps = changed["project"]["dependencies"]
    deps[:] = ["numpy>=2.0,<3" if d.startswith("numpy") else d for d in deps]
    reasons = lock.stale_reasons(changed, locked)
    assert any("numpy" in r and "asks for" in r for r in reasons), reasons
    assert any("numpy" in r and "no longer asks" in r for r in reasons), reasons


def test_a_new_extra_a_dropped_group_and_requires_python_are_seen(
    pyproject: dict, locked: dict
) -> None:
    changed = copy.deepcopy(pyproject)
    changed["project"]["optional-dependencies"]["docs"] = ["mkdocs>=1.6"]
    del changed["dependency-groups"]["mlflow-server"]
    changed["project"]["requires-python"] = ">=3.12"
    reasons = "\n".join(lock.stale_reasons(changed, locked))
    assert "mkdocs>=1.6 in extra:docs" in reasons
    assert "in group:mlflow-server, which pyproject.toml no longer asks for" in reasons
    assert "requires-python" in reasons


def test_the_venv_holds_exactly_the_locked_versions(locked: dict) -> None:
    """What `make venv` installed: every distribution in this interpreter is the lock's."""
    installed = {
        d.metadata["Name"]: d.version
        for d in importlib.metadata.distributions()
        if d.metadata["Name"] != lock.PROJECT
    }
    assert lock.differences(installed, lock.versions(locked)) == []


def test_uv_is_bootstrapped_from_the_lock_with_every_file_hash(locked: dict) -> None:
    line = lock.requirement_with_hashes(locked, "uv")
    (uv,) = [p for p in locked["package"] if p["name"] == "uv"]
    assert line.startswith(f"uv=={uv['version']} ")
    assert line.count("--hash=sha256:") == len(uv["wheels"]) + ("sdist" in uv)
    with pytest.raises(KeyError, match="not in the lock"):
        lock.requirement_with_hashes(locked, "no-such-package")


def test_version_changes_read_like_a_review() -> None:
    old = {"boto3": "1.44.8", "six": "1.16.0", "gone": "1.0"}
    new = {"boto3": "1.44.18", "six": "1.16.0", "fresh": "2.0"}
    assert lock.version_changes(old, new) == [
        "~ boto3 1.44.8 -> 1.44.18",
        "+ fresh 2.0",
        "- gone 1.0",
    ]


def test_pinned_reads_exported_requirements_and_differences_name_each_mismatch() -> None:
    text = (
        "PyMySQL==1.2.4 ; sys_platform == 'linux' \\\n    --hash=sha256:ab\n"
        "    # via textops\nruamel_yaml==0.18.6\n-e .\n"
    )
    assert lock.pinned(text) == {"pymysql": "1.2.4", "ruamel-yaml": "0.18.6"}
    assert lock.differences({"PyMySQL": "1.2.4", "extra": "1"}, {"pymysql": "1.2.3"}) == [
        "PyMySQL 1.2.4 but the lock has 1.2.3",
        "extra 1 is not in the lock",
    ]
