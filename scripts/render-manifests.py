#!/usr/bin/env python3
"""Generate the plain manifests under manifests/ from the Helm chart charts/textops.

The chart is the single source of the CRD, the operator's RBAC and its Deployment; people
who do not use Helm apply the generated files with `kubectl apply -f`. This script renders
the chart with `helm template` (release "textops" in namespace "textops-system", the rest of
the stack switched off) one template at a time, drops the two Helm-only labels
(helm.sh/chart, app.kubernetes.io/managed-by: Helm) and writes each file with a header
naming its source. Comments in the templates are kept.

    python scripts/render-manifests.py           # rewrite manifests/{crd,rbac,operator}
    python scripts/render-manifests.py --check   # exit 1 with a diff when they are stale

Helm: $HELM if set, else the pinned build of the dev cluster
(~/.cache/textops/tools-v1/helm-<version>/helm, `make cluster-tools`), else `helm` on PATH.
tests/unit/test_chart_render.py runs the check.
"""

from __future__ import annotations

import argparse
import difflib
import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CHART = ROOT / "charts" / "textops"
RELEASE, NAMESPACE = "textops", "textops-system"

# Values of the plain rendering: only the operator and its CRD, the namespace as an object,
# and the operator's URLs at its own defaults (textops/operator/config.py) since no MLflow or
# Prometheus of this chart exists to point at.
VALUES = [
    "createNamespace=true",
    "mlflow.enabled=false",
    "mysql.enabled=false",
    "minio.enabled=false",
    "prometheus.enabled=false",
    "grafana.enabled=false",
    "labelStore.enabled=false",  # no database here: see docs/install.md
    "operator.config.mlflowTrackingUri=http://mlflow.mlflow.svc:5000",
    "operator.config.prometheusUrl=http://prometheus.monitoring.svc:9090",
]

# manifests/<file> <- charts/textops/templates/<template>
OUTPUTS = {
    "crd/modeldeployments.textops.io.yaml": "crd/modeldeployments.textops.io.yaml",
    "rbac/namespace.yaml": "operator/namespace.yaml",
    "rbac/serviceaccount.yaml": "operator/serviceaccount.yaml",
    "rbac/clusterrole.yaml": "operator/clusterrole.yaml",
    "rbac/clusterrolebinding.yaml": "operator/clusterrolebinding.yaml",
    "operator/deployment.yaml": "operator/deployment.yaml",
}

HELM_ONLY_LABELS = ("helm.sh/chart:", "app.kubernetes.io/managed-by: Helm")


def find_helm() -> str:
    """The helm binary: $HELM, the dev cluster's pinned build, or helm on PATH."""
    if os.environ.get("HELM"):
        return os.environ["HELM"]
    sys.path.insert(0, str(ROOT))
    from textops.devcluster.tools import cache_root, versions

    pinned = cache_root() / f"helm-{versions()['HELM_VERSION']}" / "helm"
    if pinned.is_file():
        return str(pinned)
    found = shutil.which("helm")
    if not found:
        sys.exit("helm not found: run `make cluster-tools`, or set HELM=/path/to/helm")
    return found


def render(helm: str, template: str) -> str:
    """One template of the chart as the text of a plain manifest."""
    argv = [helm, "template", RELEASE, str(CHART), "--namespace", NAMESPACE]
    argv += [arg for value in VALUES for arg in ("--set", value)]
    argv += ["--show-only", f"templates/{template}"]
    out = subprocess.run(argv, capture_output=True, text=True, check=False)
    if out.returncode != 0:
        sys.exit(f"helm template failed for {template}:\n{out.stderr}")
    lines = [
        line
        for line in out.stdout.splitlines()
        if line.strip() != "---"
        and not line.startswith("# Source: ")
        and not line.strip().startswith(HELM_ONLY_LABELS)
    ]
    header = (
        f"# GENERATED from charts/textops/templates/{template} by scripts/render-manifests.py;\n"
        "# edit the template, then run `python scripts/render-manifests.py`.\n"
    )
    return header + "\n".join(lines).strip("\n") + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--check", action="store_true", help="compare instead of writing; exit 1 when stale"
    )
    args = parser.parse_args(argv)
    helm = find_helm()
    stale = []
    for target, template in OUTPUTS.items():
        path = ROOT / "manifests" / target
        wanted = render(helm, template)
        current = path.read_text(encoding="utf-8") if path.exists() else ""
        if current == wanted:
            continue
        if args.check:
            stale.append(target)
            sys.stdout.writelines(
                difflib.unified_diff(
                    current.splitlines(keepends=True),
                    wanted.splitlines(keepends=True),
                    f"manifests/{target}",
                    f"rendered from templates/{template}",
                )
            )
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(wanted, encoding="utf-8")
            print(f"wrote manifests/{target}")
    if stale:
        print(
            "\nstale: " + ", ".join(stale) + "\nrun `python scripts/render-manifests.py`",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
