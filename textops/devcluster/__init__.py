"""A throw-away Kubernetes control plane (etcd, apiserver, controller-manager, scheduler, kwok).

Used by the test suite (`tests/plugins/cluster.py`) and by people (`make cluster-up`). The
binaries are built from Go modules by scripts/build-k8s-tools.sh; see docs/cluster.md.
"""

from .cluster import (
    Cluster,
    ClusterStartError,
    default_workdir,
    start_cluster,
    status,
    stop_cluster,
)
from .tools import Tools, ToolsMissing, find

__all__ = [
    "Cluster",
    "ClusterStartError",
    "Tools",
    "ToolsMissing",
    "default_workdir",
    "find",
    "start_cluster",
    "status",
    "stop_cluster",
]
