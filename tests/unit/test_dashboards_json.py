"""The Grafana dashboards of the chart, checked as data: Grafana itself cannot run here.

What is checked instead: the JSON's structure (unique uids and panel ids, a recent schema,
grid positions inside the 24-column grid and not overlapping), that every panel and query
uses the `${datasource}` Prometheus variable, that units are Grafana unit ids, that every
variable a query uses is defined, and that every query parses (`promtool check rules` on the
queries written as recording rules). Whether each query returns data is proven elsewhere:
tests/integration/test_dashboards.py against a real Prometheus scraping the real service, and
tests/rules/dashboards.test.yaml for cluster and operator series.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from itertools import combinations
from pathlib import Path
from typing import Any

import pytest

from tests.rules.panels import (
    DASHBOARDS,
    dashboards,
    default_values,
    normalise,
    panels,
    promql_expr_tests,
    substitute,
)

DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
# the Grafana unit ids these dashboards may use (a subset of Grafana's unit registry)
UNITS = {"short", "none", "percentunit", "percent", "s", "ms", "bytes", "reqps", "ops"}
PANEL_TYPES = {"timeseries", "stat", "table", "state-timeline"}
BOARDS = dashboards()


def _boards() -> list[dict[str, Any]]:
    return list(BOARDS.values())


def _ids(board: dict[str, Any]) -> str:
    return str(board["uid"])


def test_dashboards_exist_with_unique_uids_and_titles() -> None:
    files = sorted(DASHBOARDS.glob("*.json"))
    assert len(files) >= 3
    uids = [json.loads(f.read_text("utf-8"))["uid"] for f in files]
    assert len(set(uids)) == len(uids)
    assert [f.stem for f in files] == uids, "each file is named after its dashboard's uid"
    titles = [b["title"] for b in _boards()]
    assert len(set(titles)) == len(titles)


@pytest.mark.parametrize("board", _boards(), ids=_ids)
def test_dashboard_header(board: dict[str, Any]) -> None:
    assert re.fullmatch(r"[a-z0-9-]{1,40}", board["uid"])
    assert board["schemaVersion"] >= 36
    assert board["title"].startswith("textops / ") and board["description"]
    assert "textops" in board["tags"]
    assert board.get("id") is None, "provisioned dashboards carry no database id"
    variables = {v["name"]: v for v in board["templating"]["list"]}
    source = variables["datasource"]
    assert source["type"] == "datasource" and source["query"] == "prometheus"
    for var in variables.values():
        if var["type"] == "query":
            assert var["datasource"] == DATASOURCE
            assert var["includeAll"] and var["allValue"] == ".*"
            assert var["query"]["query"] == var["definition"]
            assert re.fullmatch(r"label_values\(.+, \w+\)", var["definition"])


@pytest.mark.parametrize("board", _boards(), ids=_ids)
def test_panels_use_the_datasource_variable_and_have_units_and_descriptions(
    board: dict[str, Any],
) -> None:
    titles = []
    for panel in panels(board):
        where = f"{board['uid']}: {panel.get('title')!r}"
        assert panel["type"] in PANEL_TYPES, where
        assert panel["datasource"] == DATASOURCE, where
        assert panel["title"] and panel.get("description"), where
        titles.append(panel["title"])
        assert panel["targets"], where
        refs = [t["refId"] for t in panel["targets"]]
        assert len(set(refs)) == len(refs), where
        for target in panel["targets"]:
            assert target["datasource"] == DATASOURCE, where
            assert target["expr"].strip(), where
        unit = panel["fieldConfig"]["defaults"].get("unit")
        assert unit in UNITS, f"{where}: unit {unit!r}"
    assert len(set(titles)) == len(titles), "panel titles are unique within a dashboard"


@pytest.mark.parametrize("board", _boards(), ids=_ids)
def test_layout_is_on_the_grid_without_overlaps(board: dict[str, Any]) -> None:
    ids = [p["id"] for p in board["panels"]]
    assert len(set(ids)) == len(ids)
    boxes = []
    for panel in board["panels"]:
        pos = panel["gridPos"]
        assert set(pos) == {"h", "w", "x", "y"}, panel["title"]
        assert pos["w"] > 0 and pos["h"] > 0 and pos["x"] >= 0 and pos["y"] >= 0
        assert pos["x"] + pos["w"] <= 24, panel["title"]
        if panel["type"] == "row":
            assert (pos["w"], pos["h"], pos["x"]) == (24, 1, 0)
        boxes.append((panel["title"], pos))
    for (a, p), (b, q) in combinations(boxes, 2):
        apart = (
            p["x"] + p["w"] <= q["x"]
            or q["x"] + q["w"] <= p["x"]
            or p["y"] + p["h"] <= q["y"]
            or q["y"] + q["h"] <= p["y"]
        )
        assert apart, f"{a!r} overlaps {b!r}"


@pytest.mark.parametrize("board", _boards(), ids=_ids)
def test_every_variable_in_a_query_is_defined(board: dict[str, Any]) -> None:
    values = default_values(board)
    for panel in panels(board):
        for target in panel["targets"]:
            substitute(target["expr"], values)  # raises on an unknown variable
    for var in board["templating"]["list"]:
        if var["type"] == "query":
            substitute(var["definition"], values)


def test_drift_panels_show_the_statistic_against_its_threshold() -> None:
    board = BOARDS["textops-model-quality-drift"]
    found = 0
    for panel in panels(board):
        if "statistic vs threshold" in panel["title"]:
            found += 1
            exprs = [t["expr"] for t in panel["targets"]]
            assert any("_drift_statistic" in e for e in exprs)
            assert any("_drift_threshold" in e for e in exprs)
            # the threshold is drawn as a dashed red line
            [override] = panel["fieldConfig"]["overrides"]
            assert override["matcher"] == {"id": "byFrameRefID", "options": "B"}
    assert found == 2


def test_every_query_parses(tmp_path: Path) -> None:
    """Written as recording rules, the substituted queries go through promtool's parser."""
    rules = [
        {"record": f"panel:query:{i}", "expr": substitute(t["expr"], default_values(board))}
        for board in _boards()
        for i, t in enumerate(
            (t for p in panels(board) for t in p["targets"]), start=len(board["uid"]) * 1000
        )
    ]
    path = tmp_path / "panels.yaml"
    path.write_text(json.dumps({"groups": [{"name": "panels", "rules": rules}]}), "utf-8")
    promtool = shutil.which("promtool")
    assert promtool, "promtool is missing: make system-deps installs Debian's prometheus package"
    done = subprocess.run(
        [promtool, "check", "rules", str(path)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_cluster_and_operator_panels_have_promtool_unit_data() -> None:
    """The fast half of the integration test's coverage check (no servers needed)."""
    from tests.integration.test_dashboards import PROMTOOL_ROUTE

    unit_data = promql_expr_tests()
    listed = 0
    for board in _boards():
        for panel in panels(board):
            if (board["uid"], panel["title"]) not in PROMTOOL_ROUTE:
                continue
            listed += 1
            for target in panel["targets"]:
                expr = normalise(substitute(target["expr"], default_values(board)))
                assert unit_data.get(expr), f"{panel['title']!r} lacks unit data: {expr}"
    assert listed == len(PROMTOOL_ROUTE), "PROMTOOL_ROUTE names panels that do not exist"
