"""pytest plugin: a real Kubernetes control plane for the tests that ask for one.

One job: start one dev cluster per test session (only if some selected test uses the
`k8s_cluster` fixture), hand out API clients and throw-away namespaces, attach every
component's log to the report of a failed test, and stop all processes at the end, also when
the run is interrupted (Ctrl-C, SIGTERM) or killed (the daemons die with this process).

Register with `pytest_plugins = ("tests.plugins.cluster",)` in tests/conftest.py.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Generator, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

from textops.devcluster import Cluster, ClusterStartError, ToolsMissing, access, find, start_cluster
from textops.devcluster.access import REAL_NODE_TOLERATION
from textops.devcluster.cluster import RealNode
from textops.packaging import images

T = TypeVar("T")
_CLUSTER_KEY = pytest.StashKey[Cluster]()

__all__ = ["REAL_NODE_TOLERATION", "port_forward", "wait_until"]


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "cluster: needs the dev Kubernetes cluster (its real node)")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, Any, None]:
    outcome = yield
    report: pytest.TestReport = outcome.get_result()
    if not report.failed:
        return
    cluster = item.config.stash.get(_CLUSTER_KEY, None)
    if cluster is None or "k8s_cluster" not in getattr(item, "fixturenames", ()):
        return
    report.sections.append(("dev cluster logs (tails)", cluster.logs_text(6000)))


@pytest.fixture(scope="session")
def k8s_cluster(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    built_images: dict[str, images.Built],
) -> Iterator[Cluster]:
    """A ready cluster: etcd, kube-apiserver, controller-manager, scheduler and the real node
    (the project's images imported; tainted, as a dedicated node pool would be: pods need
    REAL_NODE_TOLERATION, which the chart's placement values and the operator's workload
    settings give).

    Every pod of the suite runs on that node. Env TEXTOPS_TEST_NODES adds kwok fake nodes
    (default 0: only the operator's scale benchmark needs more nodes than one machine has).
    At the end the cluster must leave nothing on the machine (no process, mount, device,
    iptables chain, cgroup).
    """
    problem = ""
    try:
        tools = find()
    except ToolsMissing as exc:
        problem = str(exc)
    if problem:
        pytest.fail(problem, pytrace=False)
    nodes = int(os.environ.get("TEXTOPS_TEST_NODES", "0"))
    workdir = tmp_path_factory.mktemp("k8s")
    previous = _sigterm_as_interrupt()
    t0 = time.monotonic()
    try:
        real_node = RealNode(
            images=tuple(tuple(b.tags) for b in built_images.values()), tainted=True
        )
        cluster = start_cluster(
            workdir, nodes=nodes, real_node=real_node, tools=tools, die_with_parent=True
        )
    except ClusterStartError as exc:
        problem = str(exc)
    if problem:
        _restore_sigterm(previous)
        pytest.fail(problem, pytrace=False)
    print(f"\n[k8s_cluster] ready in {time.monotonic() - t0:.1f}s at {cluster.server}")
    request.config.stash[_CLUSTER_KEY] = cluster
    try:
        yield cluster
    finally:
        left = cluster.stop()
        del request.config.stash[_CLUSTER_KEY]
        _restore_sigterm(previous)
    assert not left, f"the dev cluster left behind: {left}"


def _sigterm_as_interrupt() -> Any:
    """Make SIGTERM end the session cleanly so fixture teardown runs (main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        return None

    def handler(signum: int, frame: object) -> None:
        pytest.exit(f"interrupted by signal {signum}", returncode=128 + signum)

    return signal.signal(signal.SIGTERM, handler)


def _restore_sigterm(previous: Any) -> None:
    if previous is not None and threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, previous)


@pytest.fixture(scope="session")
def kube_api(k8s_cluster: Cluster) -> Iterator[Any]:
    """A `kubernetes.client.ApiClient` authenticated as cluster admin."""
    from kubernetes import config

    client = config.new_client_from_config(config_file=str(k8s_cluster.kubeconfig))
    try:
        yield client
    finally:
        client.close()


@pytest.fixture
def k8s_namespace(k8s_cluster: Cluster, kube_api: Any) -> Iterator[str]:
    """A fresh namespace whose `default` ServiceAccount exists; deleted afterwards."""
    from kubernetes import client

    core = client.CoreV1Api(kube_api)
    name = f"t-{uuid.uuid4().hex[:10]}"
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    # Pods are refused by admission until the ServiceAccount controller made `default`.
    wait_until(
        f"ServiceAccount {name}/default",
        lambda: exists(lambda: core.read_namespaced_service_account("default", name)),
        timeout=60,
    )
    try:
        yield name
    finally:
        core.delete_namespace(name)


def exists(read: Callable[[], object]) -> bool:
    """Whether the object ``read`` fetches exists: 404 is "no", any other API error raises."""
    from kubernetes.client.exceptions import ApiException

    try:
        read()
    except ApiException as exc:
        if exc.status == 404:
            return False
        raise
    return True


def gone(read: Callable[[], object]) -> bool:
    """The object ``read`` fetches is deleted (404); any other API error raises."""
    return not exists(read)


def wait_until(what: str, probe: Callable[[], T], timeout: float = 60, interval: float = 0.2) -> T:
    """Poll `probe` until it returns something truthy, else fail after `timeout` seconds."""
    try:
        return access.wait_for(what, probe, timeout, interval)
    except access.ClusterAccessError as exc:
        pytest.fail(str(exc), pytrace=False)


@pytest.fixture(scope="session")
def kubectl(k8s_cluster: Cluster) -> Callable[..., subprocess.CompletedProcess[str]]:
    """Run our own kubectl against the cluster: kubectl("get", "nodes", check=True).

    Session-scoped (it holds no state) so module fixtures, such as one applying a CRD, can
    use it too."""
    binary = Path(k8s_cluster.tools.kubectl)
    env = k8s_cluster.env()

    def run(
        *args: str, check: bool = False, timeout: float = 60
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(binary), *args],
            env=env,
            capture_output=True,
            text=True,
            check=check,
            timeout=timeout,
        )

    return run


@contextlib.contextmanager
def port_forward(cluster: Cluster, namespace: str, target: str, port: int) -> Iterator[str]:
    """``kubectl port-forward TARGET`` from a free loopback port (textops.devcluster.access);
    one that never listens fails the test."""
    try:
        with access.port_forward(cluster, namespace, target, port) as url:
            yield url
    except access.ClusterAccessError as exc:
        pytest.fail(str(exc), pytrace=False)
