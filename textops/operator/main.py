"""Run the operator: register the handlers and hand control to Kopf.

``python -m textops.operator`` (or ``textops operator``) uses the in-cluster ServiceAccount
when it runs in a pod and the current kubeconfig otherwise. Without ``--namespace`` it
watches every namespace (what the ClusterRole in ``manifests/rbac/`` grants); with one or more
it watches only those.
"""

from __future__ import annotations

import argparse
import logging
import os
from collections.abc import Sequence

import kopf

import textops.operator.handlers  # noqa: F401  (importing registers the handlers)


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
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    # A handler must not hang for minutes on a dead MLflow: the client retries 7 times by default.
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "2")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "30")
    kopf.configure(verbose=args.verbose)
    if not args.verbose:
        # Kopf logs every successful timer run at INFO: every few seconds per resource.
        logging.getLogger("kopf.objects").setLevel(logging.WARNING)
    kopf.run(
        clusterwide=not args.namespace,
        namespaces=args.namespace,
        standalone=True,
        liveness_endpoint=args.liveness,
    )
