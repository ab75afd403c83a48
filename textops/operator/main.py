"""Run the operator: register the handlers and hand control to Kopf.

``python -m textops.operator`` (or ``textops operator``) uses the in-cluster ServiceAccount
when it runs in a pod and the current kubeconfig otherwise. Without ``--namespace`` it
watches every namespace (what the ClusterRole in ``manifests/rbac/`` grants); with one or more
it watches only those. ``--metrics-port`` (``TEXTOPS_METRICS_PORT``) serves the operator's
Prometheus metrics (``metrics.py``); off by default, so that operators started side by side
(tests, benchmarks) do not contend for one port: the Helm chart turns it on (8081).
"""

from __future__ import annotations

import argparse
import faulthandler
import logging
import os
import signal
from collections.abc import Sequence

import kopf

from textops.contracts import Env
from textops.operator import (
    handlers,  # importing registers the handlers
    metrics,
)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m textops.operator",
        description="The textops operator: serves, watches and retrains ModelDeployments.",
    )
    parser.add_argument(
        "-n",
        "--namespace",
        action="append",
        default=[],
        help="watch only this namespace (repeatable); default: all namespaces",
    )
    parser.add_argument(
        "--liveness",
        default=None,
        metavar="URL",
        help="serve a liveness probe, e.g. http://0.0.0.0:8080/healthz",
    )
    parser.add_argument(
        "--metrics-port",
        type=int,
        default=int(os.environ.get(Env.METRICS_PORT) or 0),
        metavar="PORT",
        help="serve Prometheus metrics at :PORT/metrics (env TEXTOPS_METRICS_PORT); 0: off",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    kopf.configure(verbose=args.verbose)
    if not args.verbose:
        # Kopf logs every successful timer run at INFO: every few seconds per resource.
        logging.getLogger("kopf.objects").setLevel(logging.WARNING)
    # `kill -USR1 <pid>` writes every thread's stack to stderr: what a stuck pass is waiting on
    faulthandler.register(signal.SIGUSR1, all_threads=True)
    metrics.serve(args.metrics_port)  # before Kopf: a taken port fails the start, not later
    handlers.WATCHED_NAMESPACES[:] = args.namespace
    kopf.run(
        clusterwide=not args.namespace,
        namespaces=args.namespace,
        standalone=True,
        liveness_endpoint=args.liveness,
    )
