"""The chart installed on the dev cluster's real node, shared by the tests that need the stack.

``helm install`` with ``charts/textops/values-dev.yaml`` (the project's images and the
stand-ins, pull policy Never) plus the overlay a user with a dedicated, tainted node pool
writes: every component and every workload the operator creates tolerates the real node's
taint and selects the node. The operator watches
only the release's namespace (other tests run operators of their own).

What a test reaches from the host goes through ``kubectl port-forward`` to 127.0.0.1 or a
Service's ClusterIP (kube-proxy's rules on the node): nothing else.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from kubernetes import client

from tests.cluster.test_chart import helm
from textops.demo.in_cluster import Installation, instant_query
from textops.devcluster import Cluster, node
from textops.devcluster.access import CHART, dev_values
from textops.operator.spec import GROUP, PLURAL, VERSION

__all__ = ["Stack", "delete_when_done", "install", "instant_query", "uninstall"]


@dataclass(frozen=True)
class Stack(Installation):
    """One release of the chart on the real node, and what tests read from it (as admin)."""

    def pods(self, selector: str) -> list[Any]:
        core = client.CoreV1Api(self.api)
        return list(core.list_namespaced_pod(self.namespace, label_selector=selector).items)

    def mdep(self, name: str) -> dict[str, Any]:
        custom = client.CustomObjectsApi(self.api)
        body = custom.get_namespaced_custom_object(GROUP, VERSION, self.namespace, PLURAL, name)
        return cast(dict[str, Any], body)

    def operator_log(self, lines: int = 200) -> str:
        """The last lines of the in-cluster operator's log (for a failing test's message)."""
        selector = f"app.kubernetes.io/instance={self.release},app.kubernetes.io/component=operator"
        core = client.CoreV1Api(self.api)
        return "\n".join(
            core.read_namespaced_pod_log(p.metadata.name, self.namespace, tail_lines=lines)
            for p in self.pods(selector)
        )

    def kill_container(self, status: Any) -> None:
        """SIGKILL the container of a pod's container status through the node's containerd:
        a crash, with no chance to drain (the kubelet restarts it)."""
        container_id = status.container_id.removeprefix("containerd://")
        node.ctr(
            self.cluster.node_paths,
            self.cluster.tools,
            "tasks",
            "kill",
            "-s",
            "SIGKILL",
            container_id,
        )


def install(cluster: Cluster, api: Any, workdir: Path, content_tags: dict[str, str]) -> Stack:
    """A new namespace and release of the images ``content_tags`` name (as ``make
    cluster-demo`` installs them); returns once ``helm install --wait`` did."""
    namespace = f"stack-{uuid.uuid4().hex[:6]}"
    client.CoreV1Api(api).create_namespace(
        client.V1Namespace(metadata=client.V1ObjectMeta(name=namespace))
    )
    release = f"s{uuid.uuid4().hex[:5]}"
    helm(
        cluster,
        "install",
        release,
        str(CHART),
        "--namespace",
        namespace,
        *dev_values(workdir, namespace, 2, content_tags),
        "--take-ownership",  # the CRD other modules of this session applied
        "--force-conflicts",
        "--wait",
        "--timeout=12m",
        timeout=900,
    )
    return Stack(cluster=cluster, api=api, namespace=namespace, release=release)


def uninstall(stack: Stack) -> None:
    helm(
        stack.cluster,
        "uninstall",
        stack.release,
        "--namespace",
        stack.namespace,
        "--wait",
        timeout=300,
    )
    client.CoreV1Api(stack.api).delete_namespace(stack.namespace)


@contextlib.contextmanager
def delete_when_done(stack: Stack, name: str) -> Iterator[None]:
    """Yield, then delete ModelDeployment ``name`` (its children go with it)."""
    try:
        yield
    finally:
        custom = client.CustomObjectsApi(stack.api)
        try:
            custom.delete_namespaced_custom_object(GROUP, VERSION, stack.namespace, PLURAL, name)
        except client.ApiException as exc:
            if exc.status != 404:
                raise
