"""The dashboards' panel queries as data, for the tests that prove each one returns data.

Shared by tests/unit/test_dashboards_json.py, tests/unit/test_alert_rules.py,
tests/integration/test_dashboards.py and tests/cluster/test_full_loop.py: load the Grafana JSON
under charts/textops/dashboards, list every panel target, substitute Grafana's template
variables the way Grafana would for the default selection ("All" is the variable's allValue,
".*") or for values resolved from the data, say which test proves which panel (the routes),
and read the `promql_expr_test` entries of the promtool unit-test files next to this module.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
DASHBOARDS = ROOT / "charts" / "textops" / "dashboards"
RULES = ROOT / "charts" / "textops" / "rules"
RULE_TESTS = Path(__file__).resolve().parent

# Grafana's built-in interval variables, fixed: a 5-minute rate window covers the whole traffic
# of the integration test; `$__range` and `$__interval` stand for a 1-hour dashboard range/bar
BUILTINS = {"__rate_interval": "5m", "__range": "1h", "__interval": "1h"}
_VARIABLE = re.compile(r"\$\{(\w+)(?::\w+)?\}|\$(\w+)")

# Panels not proven by tests/integration/test_dashboards.py (the served model under traffic),
# by (dashboard uid, panel title), and why. PROMTOOL_ROUTE: promtool unit data in
# tests/rules/dashboards.test.yaml; E2E_ROUTE: evaluated against a real Prometheus scraping the
# real operator at the end of tests/cluster/test_full_loop.py.
CLUSTER = "cAdvisor / kube-state-metrics series: only a real cluster has them"
OPERATOR = (
    "operator series: evaluated against a real Prometheus scraping the real operator in "
    "tests/cluster/test_full_loop.py"
)
PROMTOOL_ROUTE: dict[tuple[str, str], str] = {
    ("textops-lifecycle", "Retraining Jobs (kube-state-metrics)"): CLUSTER,
    ("textops-platform", "Available vs desired replicas"): CLUSTER,
    ("textops-platform", "Serving containers ready"): CLUSTER,
    ("textops-platform", "Container restarts"): CLUSTER,
    ("textops-platform", "Last termination reason"): CLUSTER,
    ("textops-platform", "CPU per serving pod"): CLUSTER,
    ("textops-platform", "Memory per serving pod"): CLUSTER,
    ("textops-platform", "CPU throttling"): CLUSTER,
    ("textops-platform", "CPU per model version"): CLUSTER,
    ("textops-platform", "Memory per model version"): CLUSTER,
    ("textops-platform", "CPU of retraining Jobs"): CLUSTER,
    ("textops-platform", "Memory of retraining Jobs"): CLUSTER,
}
E2E_ROUTE: dict[tuple[str, str], str] = {
    ("textops-lifecycle", "Serving version per ModelDeployment (operator)"): OPERATOR,
    ("textops-lifecycle", "Retrainings in range"): OPERATOR,
    ("textops-lifecycle", "Retrainings by trigger and outcome"): OPERATOR,
    ("textops-lifecycle", "Retraining running"): OPERATOR,
    ("textops-lifecycle", "Retraining duration"): OPERATOR,
    ("textops-lifecycle", "Promotion gate decisions"): OPERATOR,
    ("textops-lifecycle", "Rollouts and rollbacks"): OPERATOR,
    ("textops-lifecycle", "ModelDeployment phase"): OPERATOR,
}


@dataclass(frozen=True)
class Target:
    """One query of one panel."""

    dashboard: str  # the dashboard's uid
    panel: str  # the panel's title
    ref: str  # the target's refId
    expr: str  # PromQL with Grafana variables

    @property
    def key(self) -> str:
        return f"{self.dashboard}/{self.panel}/{self.ref}"


def dashboards() -> dict[str, dict[str, Any]]:
    """Every dashboard JSON in the chart, by uid."""
    out = {}
    for path in sorted(DASHBOARDS.glob("*.json")):
        board = json.loads(path.read_text("utf-8"))
        out[board["uid"]] = board
    return out


def panels(board: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
    """The panels of a dashboard, rows' collapsed children included, rows themselves not."""
    for panel in board["panels"]:
        if panel["type"] == "row":
            yield from panel.get("panels", [])
        else:
            yield panel


def targets() -> list[Target]:
    return [
        Target(uid, panel["title"], target["refId"], target["expr"])
        for uid, board in dashboards().items()
        for panel in panels(board)
        for target in panel.get("targets", [])
    ]


def default_values(board: Mapping[str, Any]) -> dict[str, str]:
    """What Grafana substitutes by default: "All" (allValue) or the current custom value."""
    values = dict(BUILTINS)
    for var in board["templating"]["list"]:
        if var["type"] == "query":
            values[var["name"]] = var["allValue"]
        elif var["type"] == "custom":
            values[var["name"]] = var["current"]["value"]
    return values


def substitute(expr: str, values: Mapping[str, str]) -> str:
    """`expr` with `$name` / `${name}` replaced; an unknown variable is an error, except `$1`
    and the like (label_replace's capture groups, which Grafana leaves alone too)."""

    def one(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2)
        if name.isdigit():
            return match.group(0)
        if name not in values:
            raise KeyError(f"unknown variable ${name} in {expr!r}")
        return values[name]

    return _VARIABLE.sub(one, expr)


def resolved_values(
    query: Callable[[str], list[dict[str, Any]]], board: Mapping[str, Any]
) -> dict[str, str]:
    """Grafana's variable values: a query variable takes its first value from the data (as a
    person picking the model would), or "All" (.*) when the data has no such label.

    ``query`` is an instant query returning Prometheus' result vector.
    """
    values = default_values(board)
    for var in board["templating"]["list"]:
        if var["type"] != "query":
            continue
        inner = var["definition"].removeprefix("label_values(").removesuffix(")")
        selector, label = (part.strip() for part in inner.rsplit(",", 1))
        found = sorted(
            r["metric"][label]
            for r in query(f"group by ({label}) ({substitute(selector, values)})")
            if label in r["metric"]
        )
        if found:
            values[var["name"]] = found[0]
    return values


def normalise(expr: str) -> str:
    return " ".join(expr.split())


def promql_expr_tests() -> dict[str, list[dict[str, Any]]]:
    """Every `promql_expr_test` of tests/rules/*.test.yaml: normalised expr -> its samples."""
    out: dict[str, list[dict[str, Any]]] = {}
    for path in sorted(RULE_TESTS.glob("*.test.yaml")):
        for test in yaml.safe_load(path.read_text("utf-8"))["tests"]:
            for case in test.get("promql_expr_test", []):
                out.setdefault(normalise(case["expr"]), []).extend(case.get("exp_samples", []))
    return out
