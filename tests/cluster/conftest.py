"""Fixtures of the cluster tests that share one installation of the chart (stack.py)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.cluster.stack import Stack, install, uninstall
from textops.devcluster import Cluster
from textops.packaging import images


@pytest.fixture(scope="session")
def chart_stack(
    k8s_cluster: Cluster,
    kube_api: Any,
    built_images: dict[str, images.Built],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Stack]:
    """The chart with the dev values on the real node (``--wait``: every Deployment Available).

    Session-scoped: installing takes minutes on two cores. Tests give their ModelDeployments
    names of their own and delete them when done.
    """
    # imported into the node's containerd by k8s_cluster; the release names their builds
    content_tags = {name: built.content_tag for name, built in built_images.items()}
    stack = install(k8s_cluster, kube_api, tmp_path_factory.mktemp("stack"), content_tags)
    try:
        yield stack
    finally:
        uninstall(stack)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Run the tests on the installed chart last and together, so its pods (MLflow, MariaDB,
    Prometheus, ...) do not load the 2-core node while the other cluster tests run."""
    del config
    items.sort(key=lambda item: "chart_stack" in getattr(item, "fixturenames", ()))
