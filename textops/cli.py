"""The ``textops`` command line: data versions, training, promotion and the demo.

Expected failures (bad rows, unreachable servers, missing datasets) print one line on stderr and
exit 1; usage errors exit 2. ``--json`` prints machine-readable results on stdout.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from textops.contracts import Env
from textops.errors import InvalidDataError, TextopsError
from textops.settings import Settings, load_settings


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["operator"]:  # its own options (-n, --liveness, -v, --help) go to Kopf's CLI
        from textops.operator.main import main as operator_main

        operator_main(argv[1:])
        return 0
    parser = build_parser()
    args = parser.parse_args(argv)
    settings = load_settings()
    if getattr(args, "data_uri", None):
        settings = replace(settings, data_uri=args.data_uri)
    handler: Callable[[argparse.Namespace, Settings], Any] = args.handler
    try:
        # libraries print chatter on stdout (MLflow's "View run at ..."): keep stdout for results
        with contextlib.redirect_stdout(sys.stderr):
            result = handler(args, settings)
    except InvalidDataError as exc:
        print(f"textops: error: {exc.report()}", file=sys.stderr)
        return 1
    except TextopsError as exc:
        print(f"textops: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("textops: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        from mlflow.exceptions import MlflowException

        if isinstance(exc, MlflowException):
            first = str(exc.message).strip().splitlines()[0] if exc.message else repr(exc)
            print(f"textops: error: MLflow: {first}", file=sys.stderr)
            return 1
        raise
    if result is not None:
        if args.json:
            print(json.dumps(result, ensure_ascii=False, indent=2, default=str))
        else:
            print(_human(result))
    return 0


def build_parser() -> argparse.ArgumentParser:
    # imported here, not above: it needs numpy, which the operator image (where `textops
    # operator` runs) does not hold
    from textops.demo.scenario import DemoSize

    parser = argparse.ArgumentParser(prog="textops", description=__doc__.splitlines()[0])
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--json", action="store_true", help="print the result as JSON")
    common.add_argument(
        "--data-uri",
        help="dataset store (directory or s3://bucket/prefix); "
        "default $TEXTOPS_DATA_URI or $TEXTOPS_HOME/datasets",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    data = sub.add_parser("data", help="dataset versions").add_subparsers(
        dest="data_command", required=True, metavar="ACTION"
    )
    snap = data.add_parser(
        "snapshot", parents=[common], help="validate rows and store an immutable dataset version"
    )
    snap.add_argument(
        "--from",
        dest="source",
        type=Path,
        help="a .jsonl/.csv/.tsv file or a folder of LABEL.txt files "
        "(default: the built-in review corpus)",
    )
    snap.add_argument("--labels", help="comma-separated allowed labels (others are refused)")
    snap.add_argument(
        "--drop-duplicates",
        action="store_true",
        help="drop repeated rows and texts with conflicting labels instead of refusing the file",
    )
    snap.add_argument("--parent", help="dataset id this version derives from")
    snap.set_defaults(handler=_data_snapshot)
    lst = data.add_parser("list", parents=[common], help="list dataset versions, oldest first")
    lst.set_defaults(handler=_data_list)
    show = data.add_parser("show", parents=[common], help="show one version (verifies its hash)")
    show.add_argument("id", help="dataset id, a unique prefix, or 'latest'")
    show.add_argument("--rows", type=int, default=5, help="sample rows to print")
    show.set_defaults(handler=_data_show)

    tr = sub.add_parser(
        "train",
        parents=[common],
        help="train on a dataset version, log to MLflow, register @challenger",
    )
    tr.add_argument("--dataset", default="latest", help="dataset id (default: latest)")
    tr.add_argument("--no-register", action="store_true", help="log the run only")
    tr.add_argument("--n-estimators", type=int, help="XGBoost trees (default 300)")
    tr.add_argument("--max-depth", type=int, help="XGBoost depth (default 4)")
    tr.add_argument(
        "--embeddings-dir",
        default=os.environ.get(Env.EMBEDDINGS_DIR),
        help="local transformer folder whose embeddings are added to the features "
        "(default $TEXTOPS_EMBEDDINGS_DIR; never downloaded)",
    )
    tr.add_argument(
        "--reference-traffic",
        type=int,
        default=int(os.environ.get(Env.REFERENCE_TRAFFIC) or 0),
        metavar="N",
        help="profile the drift reference on the model's N most recently served texts (from "
        "the label store's prediction log) instead of the holdout; 0: the holdout "
        "(default $TEXTOPS_REFERENCE_TRAFFIC or 0)",
    )
    tr.set_defaults(handler=_train)

    pr = sub.add_parser(
        "promote",
        parents=[common],
        help="gate a version (default @challenger) against @champion; move the alias if it wins",
    )
    pr.add_argument(
        "--version",
        help="the version to gate (a retraining Job passes the one it trained: @challenger "
        "moves with every training of the model)",
    )
    _policy_args(pr)
    pr.set_defaults(handler=_promote)

    lab = sub.add_parser("labels", help="the label store").add_subparsers(
        dest="labels_command", required=True, metavar="ACTION"
    )
    exp = lab.add_parser(
        "export",
        parents=[common],
        help="merge every label into a new dataset version derived from the newest one",
    )
    exp.add_argument("--base", default="latest", help="dataset version to derive from")
    exp.set_defaults(handler=_labels_export)
    lab.add_parser("stats", parents=[common], help="queue and label counts").set_defaults(
        handler=_labels_stats
    )

    op = sub.add_parser(
        "operator",
        add_help=False,
        help="run the ModelDeployment operator against the current kubeconfig "
        "(options: -n NAMESPACE, --liveness URL, -v; see 'textops operator --help')",
    )
    op.add_argument("operator_args", nargs=argparse.REMAINDER)  # handled in main()

    sv = sub.add_parser(
        "serve",
        help="serve a registered model version over HTTP (BentoML) until interrupted",
    )
    sv.add_argument(
        "model_uri",
        metavar="MODEL_URI",
        help="models:/NAME/VERSION or models:/NAME@ALIAS (resolved to a version first)",
    )
    sv.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    sv.add_argument("--port", type=int, default=3000, help="port (default 3000)")
    sv.set_defaults(handler=_serve, json=False)

    demo = sub.add_parser(
        "demo",
        parents=[common],
        help="the whole loop: train v1, serve, drift, label, retrain, promote v2, report",
    )
    _policy_args(demo)
    defaults = DemoSize()
    for flag, dest, kind, what in (
        ("--first-training", "first_training", int, "rows of the first training set"),
        ("--in-distribution", "in_distribution", int, "texts of in-distribution traffic"),
        ("--shifted", "shifted", int, "texts of shifted traffic (replayed after retraining)"),
        ("--new-share", "new_share", float, "share of hotel reviews in the shifted traffic"),
        ("--labels", "labels", int, "labels the simulated annotator gives"),
        ("--seed", "seed", int, "seed for the data split and the traffic"),
        (
            "--reference-traffic",
            "reference_traffic",
            int,
            "served texts v2's drift reference is profiled on (0: its holdout)",
        ),
    ):
        demo.add_argument(
            flag,
            dest=dest,
            type=kind,
            default=getattr(defaults, dest),
            help=f"{what} (default {getattr(defaults, dest)})",
        )
    demo.set_defaults(handler=_demo)
    return parser


def _policy_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dataset", default="latest", help="dataset whose holdout is used")
    parser.add_argument(
        "--metric",
        default="macro_f1",
        choices=["macro_f1", "accuracy", "log_loss", "calibration_error"],
    )
    parser.add_argument("--min-improvement", type=float, default=0.0)
    parser.add_argument(
        "--max-recall-drop",
        type=float,
        default=0.05,
        help="refuse if any class's recall drops by more than this",
    )


def _policy(args: argparse.Namespace):  # type: ignore[no-untyped-def]
    from textops.registry.promotion import PromotionPolicy

    try:
        return PromotionPolicy(args.metric, args.min_improvement, args.max_recall_drop)
    except ValueError as exc:
        raise TextopsError(str(exc)) from exc


def _data_snapshot(args: argparse.Namespace, settings: Settings) -> dict[str, Any]:
    from textops.data.snapshot import take_snapshot

    labels = {x.strip() for x in args.labels.split(",") if x.strip()} if args.labels else None
    result = take_snapshot(settings, args.source, labels, args.drop_duplicates, args.parent)
    return {
        **result.dataset.manifest.to_dict(),
        "store": result.store_uri,
        "created": result.created,
        "validation": result.report.summary(),
    }


def _data_list(args: argparse.Namespace, settings: Settings) -> list[dict[str, Any]]:
    from textops.data.store import open_store

    return [m.to_dict() for m in open_store(settings.data_uri, settings).list()]


def _data_show(args: argparse.Namespace, settings: Settings) -> dict[str, Any]:
    from textops.data.store import open_store

    dataset = open_store(settings.data_uri, settings).get(args.id)
    return {
        **dataset.manifest.to_dict(),
        "verified": True,
        "sample": [{"text": r.text, "label": r.label} for r in dataset.rows[: args.rows]],
    }


def _train(args: argparse.Namespace, settings: Settings) -> dict[str, Any]:
    from textops.model.classifier import ClassifierParams, XGBoostParams
    from textops.training.pipeline import train

    xgb = XGBoostParams()
    if args.n_estimators:
        xgb = replace(xgb, n_estimators=args.n_estimators)
    if args.max_depth:
        xgb = replace(xgb, max_depth=args.max_depth)
    params = ClassifierParams(xgb=xgb, embeddings_dir=args.embeddings_dir or None)
    if args.reference_traffic < 0:
        raise TextopsError("--reference-traffic must be 0 or more")
    result = train(
        settings,
        args.dataset,
        params,
        not args.no_register,
        reference_traffic=args.reference_traffic,
    )
    return result.summary()


def _promote(args: argparse.Namespace, settings: Settings) -> dict[str, Any]:
    from textops.registry.gate import promote

    return promote(settings, _policy(args), args.dataset, args.version).summary()


def _labels_export(args: argparse.Namespace, settings: Settings) -> dict[str, Any]:
    from textops.labelling.export import export_labels

    return export_labels(settings, args.base)


def _labels_stats(args: argparse.Namespace, settings: Settings) -> dict[str, Any]:
    from textops.labelling.store import LabelStore

    return LabelStore(settings.label_db).stats()


def _serve(args: argparse.Namespace, settings: Settings) -> None:
    from textops.serving.launcher import serve

    code = serve(settings, args.model_uri, args.host, args.port)
    if code not in (0, -2, -15, 130, 143):  # stopped by Ctrl-C or SIGTERM is a normal end
        raise TextopsError(f"the BentoML server exited with status {code}")


def _demo(args: argparse.Namespace, settings: Settings) -> dict[str, Any]:
    from textops.demo.loop import run_demo
    from textops.demo.scenario import DemoSize

    size = DemoSize(
        first_training=args.first_training,
        in_distribution=args.in_distribution,
        shifted=args.shifted,
        new_share=args.new_share,
        labels=args.labels,
        seed=args.seed,
        reference_traffic=args.reference_traffic,
    )
    return run_demo(settings, _policy(args), size)


def _human(result: Any, indent: int = 0) -> str:
    """A compact, readable rendering of nested dicts and lists."""
    pad = "  " * indent
    if isinstance(result, list):
        return (
            "\n".join(
                _human(item, indent) + ("\n" if isinstance(item, dict) else "") for item in result
            ).rstrip()
            or f"{pad}(none)"
        )
    if isinstance(result, dict):
        lines = []
        for key, value in result.items():
            if isinstance(value, dict | list) and value:
                lines.append(f"{pad}{key}:")
                lines.append(_human(value, indent + 1))
            else:
                lines.append(f"{pad}{key}: {value}")
        return "\n".join(lines)
    return f"{pad}{result}"
