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

from .cluster import ClusterStartError, default_workdir, start_cluster, status, stop_cluster
from .processes import tail
from .tools import ToolsMissing, find


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m textops.devcluster", description=__doc__)
    parser.add_argument("command", choices=("up", "down", "status", "logs", "env"))
    parser.add_argument(
        "--workdir", type=Path, default=None, help="cluster folder (default: $TEXTOPS_HOME/cluster)"
    )
    parser.add_argument("--nodes", type=int, default=1, help="number of kwok fake nodes")
    args = parser.parse_args(argv)
    workdir: Path = (args.workdir or default_workdir()).resolve()

    if args.command == "up":
        current = status(workdir)
        if current["running"]:
            print(f"cluster already running: {current['server']}")
            print(f"export KUBECONFIG={current['kubeconfig']}")
            return 0
        try:
            tools = find()
        except ToolsMissing as exc:
            print(exc, file=sys.stderr)
            return 2
        t0 = time.monotonic()
        try:
            cluster = start_cluster(workdir, nodes=args.nodes, tools=tools)
        except ClusterStartError as exc:
            print(exc, file=sys.stderr)
            return 1
        print(f"cluster ready in {time.monotonic() - t0:.1f}s: {cluster.server}")
        print(f"logs: {cluster.log_dir}")
        print(f"export KUBECONFIG={cluster.kubeconfig}")
        print(f"export PATH={':'.join(str(p) for p in tools.bin_dirs)}:$PATH")
        return 0
    if args.command == "down":
        stopped = stop_cluster(workdir)
        print("stopped: " + (", ".join(stopped) if stopped else "nothing was running"))
        return 0
    if args.command == "status":
        current = status(workdir)
        print(json.dumps(current, indent=2))
        return 0
    if args.command == "logs":
        for log in sorted((workdir / "logs").glob("*.log")):
            print(f"===== {log} =====\n{tail(log)}")
        return 0
    # env: lines to eval in a shell
    print(f"export KUBECONFIG={workdir / 'kubeconfig'}")
    with contextlib.suppress(ToolsMissing):
        print(f"export PATH={':'.join(str(p) for p in find().bin_dirs)}:$PATH")
    return 0


if __name__ == "__main__":
    sys.exit(main())
