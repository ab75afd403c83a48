"""Pipeline lineage: which code produced a model, recorded as tags on every run and version.

The git commit (and whether the work tree was dirty) identifies the code in a checkout. A
container has no checkout: its image records the commit its sources come from
(``TEXTOPS_GIT_COMMIT``, ``TEXTOPS_GIT_DIRTY``, set by the image build), a hash of the
package's own source files identifies the code too, and the image tag comes from
``TEXTOPS_IMAGE_TAG``.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
from collections.abc import Mapping
from pathlib import Path

import textops
from textops.contracts import Env, Tag

PACKAGE_DIR = Path(textops.__file__).resolve().parent


def code_hash(root: Path = PACKAGE_DIR) -> str:
    """SHA-256 over the package's Python sources (path and content, sorted)."""
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*.py")):
        digest.update(str(path.relative_to(root)).encode())
        digest.update(b"\x00")
        digest.update(path.read_bytes())
    return digest.hexdigest()


def git_state(
    cwd: Path = PACKAGE_DIR, env: Mapping[str, str] | None = None
) -> tuple[str | None, bool | None]:
    """(commit, dirty) of the checkout holding the package; outside one, what the image
    recorded (``env``: the process environment); (None, None) when neither knows."""
    found = _checkout_state(cwd)
    return found if found[0] else recorded_state(os.environ if env is None else env)


def recorded_state(env: Mapping[str, str]) -> tuple[str | None, bool | None]:
    """(commit, dirty) an image recorded of its sources (textops.packaging.recipes.Revision)."""
    commit = env.get(Env.GIT_COMMIT) or Tag.UNKNOWN
    dirty = {"true": True, "false": False}.get(env.get(Env.GIT_DIRTY) or "")
    return (None, None) if commit == Tag.UNKNOWN else (commit, dirty)


def _checkout_state(cwd: Path) -> tuple[str | None, bool | None]:
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, timeout=10
        )
        if commit.returncode != 0:
            return None, None
        status = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=10,
        )
    except (OSError, subprocess.SubprocessError):
        return None, None
    return commit.stdout.strip(), bool(status.stdout.strip())


# set by the operator on retraining Jobs: why, for which ModelDeployment and while which
# version served a run happened
TRIGGER_ENV = {
    Env.TRIGGER: Tag.TRIGGER,
    Env.TRIGGER_ID: Tag.TRIGGER_ID,
    Env.TRIGGER_REASON: Tag.TRIGGER_REASON,
    Env.MODELDEPLOYMENT: Tag.MODELDEPLOYMENT,
    Env.SERVING_VERSION: Tag.SERVING_VERSION,
}


def lineage_tags(image_tag: str | None, env: dict[str, str] | None = None) -> dict[str, str]:
    """Tags naming the pipeline version and trigger; dataset tags are added by the caller."""
    environ = os.environ if env is None else env
    commit, dirty = git_state(env=environ)
    tags = {
        Tag.PACKAGE_VERSION: textops.__version__,
        Tag.CODE_SHA256: code_hash(),
        Tag.GIT_COMMIT: commit or Tag.UNKNOWN,
        Tag.GIT_DIRTY: Tag.UNKNOWN if dirty is None else str(dirty).lower(),
    }
    if image_tag:
        tags[Tag.IMAGE] = image_tag
    tags.update({tag: environ[var] for var, tag in TRIGGER_ENV.items() if environ.get(var)})
    return tags


# What a serving pod publishes about the version it loaded (``textops_model_info`` labels):
# label -> the version tag holding it. Empty when the version lacks the tag (say, registered
# by hand), so the label set stays the same for every version.
SERVING_LINEAGE_TAGS = {
    "dataset": Tag.DATASET_ID,
    "git_commit": Tag.GIT_COMMIT,
    "image": Tag.IMAGE,
    "trigger": Tag.TRIGGER,
}
SERVING_LINEAGE_LABELS = ("run_id", *SERVING_LINEAGE_TAGS)


def serving_lineage(run_id: str | None, tags: dict[str, str]) -> dict[str, str]:
    """The lineage labels of a registered version: its run and what its tags record."""
    lineage = {label: tags.get(tag, "") for label, tag in SERVING_LINEAGE_TAGS.items()}
    return {"run_id": run_id or "", **lineage}
