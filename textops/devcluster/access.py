"""How the host reaches a running dev cluster: helm, ``kubectl port-forward``, placement.

Shared by ``make cluster-demo`` and the cluster tests, so both install the chart and reach
its Services the same way a user would: through the pinned helm and kubectl, to 127.0.0.1.
"""

from __future__ import annotations

import contextlib
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import yaml

from textops.devservers.ports import LOOPBACK, free_port, port_open
from textops.errors import TextopsError

from .cluster import REAL_NODE_TAINT, Cluster, load_state, recorded_processes, status
from .node_config import NODE_NAME
from .tools import find

T = TypeVar("T")

CHART = Path(__file__).resolve().parents[2] / "charts" / "textops"

# What a pod needs to run on the real node when it is tainted (the test session's node).
REAL_NODE_TOLERATION = {**REAL_NODE_TAINT, "operator": "Equal"}
# The chart's components that place pods (grafana is off in the dev values).
CHART_COMPONENTS = ("operator", "mlflow", "mysql", "minio", "prometheus")


class ClusterAccessError(TextopsError):
    """helm or kubectl failed, or what was awaited did not happen in time."""


def attach(workdir: Path) -> Cluster:
    """The cluster ``make cluster-up`` started in ``workdir``; a clear error when none runs."""
    state = load_state(workdir)
    if state is None or not status(workdir)["running"]:
        raise ClusterAccessError(
            f"no dev cluster is running in {workdir}: start it with `make cluster-up`"
        )
    return Cluster(
        workdir=workdir,
        server=str(state["server"]),
        kubeconfig=Path(state["kubeconfig"]),
        tools=find(),
        daemons=recorded_processes(state),
        nodes=list(state.get("nodes", [])),
        real_node=bool(state.get("real_node")),
    )


def wait_for(what: str, probe: Callable[[], T], timeout: float, interval: float = 0.5) -> T:
    """Poll ``probe`` until it returns something truthy; raise after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise ClusterAccessError(
                f"timed out after {timeout}s waiting for {what} (last: {value!r})"
            )
        time.sleep(interval)


def helm(cluster: Cluster, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """Run the pinned helm against the cluster; raise with its output when it fails."""
    done = subprocess.run(
        [str(cluster.tools.helm), *args],
        env=cluster.env(),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if done.returncode != 0:
        raise ClusterAccessError(f"helm {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
    return done


def placement_values(namespace: str, reconcile_seconds: int) -> dict[str, Any]:
    """Values that tolerate and select the real node everywhere (also the workloads the
    operator creates), watch only ``namespace`` and reconcile every ``reconcile_seconds``."""
    tolerations = [REAL_NODE_TOLERATION]
    selector = {"kubernetes.io/hostname": NODE_NAME}
    values: dict[str, Any] = {
        c: {"tolerations": tolerations, "nodeSelector": selector} for c in CHART_COMPONENTS
    }
    values["operator"].update(
        watchNamespaces=[namespace],
        config={
            "workloadTolerations": tolerations,
            "workloadNodeSelector": selector,
            "reconcileSeconds": reconcile_seconds,
        },
    )
    return values


# Where the chart names each image built here (docs/images.md): a component's image tag, or
# the image the operator gives its serving pods and Jobs.
IMAGE_TAG_VALUES = {
    "operator": ("operator", "image", "tag"),
    "mlflow": ("mlflow", "image", "tag"),
    "mariadb-standin": ("mysql", "image", "tag"),
    "s3-standin": ("minio", "image", "tag"),
    "prometheus-standin": ("prometheus", "image", "tag"),
}
WORKLOAD_IMAGE_VALUES = {
    "serving": ("operator", "config", "servingImage"),
    "training": ("operator", "config", "trainingImage"),
}


def image_values(content_tags: dict[str, str]) -> dict[str, Any]:
    """Values naming exactly these builds (``{name: "textops/NAME:in-DIGEST"}``).

    The release tag (0.1.0) stays the same across rebuilds, so a ``helm upgrade`` with it
    leaves running pods on the old build; with the content tags a rebuilt image changes the
    pod template (and the operator's workload images), and Kubernetes rolls what runs it.
    """
    values: dict[str, Any] = {}
    for name, ref in sorted(content_tags.items()):
        if name in IMAGE_TAG_VALUES:
            path, value = IMAGE_TAG_VALUES[name], ref.rsplit(":", 1)[1]
        elif name in WORKLOAD_IMAGE_VALUES:
            path, value = WORKLOAD_IMAGE_VALUES[name], ref
        else:
            continue
        node = values
        for key in path[:-1]:
            node = node.setdefault(key, {})
        node[path[-1]] = value
    return values


def dev_values(
    workdir: Path, namespace: str, reconcile_seconds: int, content_tags: dict[str, str]
) -> list[str]:
    """The ``--values`` arguments of an install on the dev cluster: values-dev.yaml, then the
    placement overlay (``placement_values``) and these builds (``image_values``), the two
    overlays written into ``workdir``."""
    workdir.mkdir(parents=True, exist_ok=True)
    overlays = {
        "placement.yaml": placement_values(namespace, reconcile_seconds),
        "images.yaml": image_values(content_tags),
    }
    args = ["--values", str(CHART / "values-dev.yaml")]
    for name, values in overlays.items():
        (workdir / name).write_text(yaml.safe_dump(values), encoding="utf-8")
        args += ["--values", str(workdir / name)]
    return args


@contextlib.contextmanager
def port_forward(cluster: Cluster, namespace: str, target: str, port: int) -> Iterator[str]:
    """``kubectl port-forward TARGET`` (``svc/NAME``, ``pod/NAME``) from a free loopback port.

    Yields the base URL ("http://127.0.0.1:N") once kubectl listens; the caller awaits its own
    readiness probe through it. The kubectl process is stopped on exit.
    """
    local = free_port()
    log = cluster.log_dir / f"port-forward-{namespace}-{target.replace('/', '-')}-{local}.log"
    with log.open("wb") as out:
        forward = subprocess.Popen(
            [
                str(cluster.tools.kubectl),
                "port-forward",
                "-n",
                namespace,
                target,
                f"{local}:{port}",
                "--address",
                LOOPBACK,
            ],
            env=cluster.env(),
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_for(
            f"kubectl port-forward {target} listening",
            lambda: forward.poll() is None and port_open(LOOPBACK, local),
            timeout=30,
            interval=0.2,
        )
        yield f"http://{LOOPBACK}:{local}"
    finally:
        forward.terminate()
        try:
            forward.wait(timeout=30)
        except subprocess.TimeoutExpired:
            forward.kill()
            forward.wait(timeout=30)
