"""Command line for people: `python -m textops.devcluster up|down|status|logs|env`.

One job: start a cluster that outlives the command (for `make cluster-up`), stop it from the
recorded pids (`make cluster-down`) and show where it is. The cluster lives in
`$TEXTOPS_HOME/cluster` (TEXTOPS_HOME defaults to ./.textops).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import time
from pathlib import Path

from textops.processes import log_tail

from .cluster import (
    ClusterStartError,
    ClusterStopError,
    RealNode,
    default_workdir,
    load_state,
    node_paths,
    start_cluster,
    status,
    stop_cluster,
)
from .tools import ToolsMissing, find


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m textops.devcluster", description=__doc__)
    parser.add_argument("command", choices=("up", "down", "status", "logs", "env"))
    parser.add_argument(
        "--workdir", type=Path, default=None, help="cluster folder (default: $TEXTOPS_HOME/cluster)"
    )
    parser.add_argument(
        "--kwok-nodes", type=int, default=0, help="fake kwok nodes beside the real one"
    )
    parser.add_argument(
        "--no-real-node", action="store_true", help="control plane and kwok nodes only"
    )
    parser.add_argument(
        "--no-images", action="store_true", help="do not build/import the project's images"
    )
    args = parser.parse_args(argv)
    workdir: Path = (args.workdir or default_workdir()).resolve()

    if args.command == "up":
        current = status(workdir)
        if current["running"]:
            print(f"cluster already running: {current['server']}")
            if not args.no_images and (load_state(workdir) or {}).get("real_node"):
                return _refresh_images(workdir)
            print(f"export KUBECONFIG={current['kubeconfig']}")
            return 0
        try:
            tools = find()
        except ToolsMissing as exc:
            print(exc, file=sys.stderr)
            return 2
        t0 = time.monotonic()
        real_node = None
        if not args.no_real_node:
            images = () if args.no_images else _built_images()
            if images is None:
                return 1
            real_node = RealNode(images=images)
        try:
            cluster = start_cluster(
                workdir, nodes=args.kwok_nodes, real_node=real_node, tools=tools
            )
        except ClusterStartError as exc:
            print(exc, file=sys.stderr)
            return 1
        print(f"cluster ready in {time.monotonic() - t0:.1f}s: {cluster.server}")
        print(f"logs: {cluster.log_dir}")
        print(f"export KUBECONFIG={cluster.kubeconfig}")
        print(f"export PATH={':'.join(str(p) for p in tools.bin_dirs)}:$PATH")
        return 0
    if args.command == "down":
        try:
            stopped = stop_cluster(workdir)
        except ClusterStopError as exc:
            print(exc, file=sys.stderr)
            return 1
        print("stopped: " + (", ".join(stopped) if stopped else "nothing was running"))
        return 0
    if args.command == "status":
        current = status(workdir)
        print(json.dumps(current, indent=2))
        return 0
    if args.command == "logs":
        for log in sorted((workdir / "logs").glob("*.log")):
            print(f"===== {log} =====\n{log_tail(log)}")
        return 0
    # env: lines to eval in a shell
    print(f"export KUBECONFIG={workdir / 'kubeconfig'}")
    with contextlib.suppress(ToolsMissing):
        print(f"export PATH={':'.join(str(p) for p in find().bin_dirs)}:$PATH")
    return 0


def _built_images() -> tuple[tuple[str, ...], ...] | None:
    """Each image's tags after building them (unchanged ones are reused); None, after saying
    why, when a build fails."""
    from textops.packaging.images import BuildError, build_all

    try:
        return tuple(tuple(built.tags) for built in build_all())
    except BuildError as exc:
        print(exc, file=sys.stderr)
        return None


def _refresh_images(workdir: Path) -> int:
    """Build the images and import the new builds into the running node, so pods started from
    now on run the checkout as it is; running pods keep what they run."""
    from . import node

    built = _built_images()
    if built is None:
        return 1
    imported = node.import_from_docker(node_paths(workdir), find(), built)
    print("images imported into the node: " + (", ".join(imported) or "none changed"))
    print(f"export KUBECONFIG={workdir / 'kubeconfig'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
