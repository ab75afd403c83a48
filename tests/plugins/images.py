"""Pytest plugin: the project's images, built by the project's own builder (or reused).

`built_images` runs `textops.packaging.images.build_all()` once a session: an unchanged tree
reuses the images of the same input digest (in Docker or as saved tars in the cache), a fresh
machine builds them all (several minutes; `make images` shows the progress first when run
through `make test`). It needs Debian's docker.io and mmdebstrap (make system-deps).
"""

from __future__ import annotations

import pytest

from textops.packaging import images


@pytest.fixture(scope="session")
def built_images() -> dict[str, images.Built]:
    """{image name: Built} for every image of recipes.IMAGES."""
    return {built.name: built for built in images.build_all()}
