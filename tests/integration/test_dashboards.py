"""Every dashboard panel returns data: the real service under traffic, scraped by a real Prometheus.

A small model is trained and promoted on embedded defaults, served by `textops serve` (BentoML,
for real), and scraped every second by a real Prometheus that also loads the chart's rule files.
Traffic: in-distribution texts, newspaper sentences (a domain shift), feedback (right and
wrong) and rejected requests. Once Prometheus has seen it all and the drift timer has
evaluated the window, every query of every panel whose series the service produces is
evaluated through `/api/v1/query`, with the template variables substituted as Grafana would
(the model and version variables resolved from the data); each must return at least one finite
sample: an empty panel fails.

Panels on series only a real cluster has (cAdvisor, kube-state-metrics) are listed in
PROMTOOL_ROUTE: they are proven by `promtool test rules` on tests/rules/dashboards.test.yaml
instead. Panels on the operator's metrics are listed in E2E_ROUTE: tests/cluster/test_full_loop.py
evaluates them against a real Prometheus scraping the real operator after a whole retraining
story. `test_every_panel_is_covered_by_one_route` checks that every panel is on exactly one
route and that each PROMTOOL_ROUTE query has expected samples there. Grafana itself cannot run
here: tests/unit/test_dashboards_json.py checks the JSON's structure and data-source
references (the route tables live in tests/rules/panels.py).
"""

from __future__ import annotations

import json
import math
import os
import signal
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.rules.panels import (
    E2E_ROUTE,
    PROMTOOL_ROUTE,
    RULES,
    Target,
    dashboards,
    default_values,
    normalise,
    promql_expr_tests,
    resolved_values,
    substitute,
    targets,
)
from tests.served_model import serve_champion
from tests.synthetic import make_rows
from textops.data.sources import news_sentences
from textops.devservers.prometheus import PrometheusServer, start_prometheus
from textops.processes import (
    StartupError,
    wait_until,
)

pytestmark = pytest.mark.integration

MODEL = "reviews-sentiment"
MAX_CHARS = 50
FEEDBACK = 20

SERVED = [t for t in targets() if (t.dashboard, t.panel) not in PROMTOOL_ROUTE | E2E_ROUTE]


@dataclass
class Stack:
    url: str
    home: Path
    prometheus: PrometheusServer


def _post(url: str, body: bytes | dict[str, Any]) -> tuple[int, dict[str, Any]]:
    data = json.dumps(body, ensure_ascii=False).encode() if isinstance(body, dict) else body
    request = urllib.request.Request(
        url, data=data, method="POST", headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return int(response.status), json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def _api(prometheus: PrometheusServer, path: str) -> Any:
    with urllib.request.urlopen(f"{prometheus.url}{path}", timeout=10) as response:
        return json.load(response)["data"]


def _load_rules(prometheus: PrometheusServer) -> int:
    """Add the chart's rule files to the running Prometheus (SIGHUP reloads its config)."""
    files = sorted(str(p) for p in RULES.glob("*.yaml"))
    config = json.loads(prometheus.config_path.read_text("utf-8"))
    config["rule_files"] = files
    prometheus.config_path.write_text(json.dumps(config, indent=2), "utf-8")
    os.kill(prometheus.process.pid, signal.SIGHUP)
    expected = sum(
        len(group["rules"])
        for path in files
        for group in yaml.safe_load(Path(path).read_text("utf-8"))["groups"]
    )
    wait_until(
        lambda: (
            sum(len(g["rules"]) for g in _api(prometheus, "/api/v1/rules")["groups"]) == expected
        ),
        timeout=30,
        what="waiting for Prometheus to load the chart's rules",
        proc=prometheus.process,
    )
    return expected


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    base = tmp_path_factory.mktemp("dashboards")
    with serve_champion(
        base,
        "textops-serve",
        TEXTOPS_MAX_TEXT_CHARS=str(MAX_CHARS),
        TEXTOPS_DRIFT_WINDOW="200",
        TEXTOPS_DRIFT_INTERVAL_S="1",
        TEXTOPS_DRIFT_SAMPLES_PER_S="0",  # every text: the test sends bursts
        TEXTOPS_CAPTURE_BELOW_CONFIDENCE="0.9",  # plenty of captures for the queue panels
    ) as (url, _):
        # every 2 s (the scrape timeout equals the interval: 1 s is too tight on a busy machine)
        prometheus = start_prometheus(
            base / "prometheus", [url.removeprefix("http://")], interval="2s", die_with_parent=True
        )
        try:
            _load_rules(prometheus)
            yield Stack(url, base / "home", prometheus)
        finally:
            prometheus.stop()


def _value(prometheus: PrometheusServer, expr: str) -> tuple[float] | None:
    """The single value of `expr` as a (truthy) tuple, None without data."""
    result = prometheus.query(expr)
    return (float(result[0]["value"][1]),) if result else None


def _wait(prometheus: PrometheusServer, checks: list[tuple[str, str]]) -> None:
    """Poll each `(expr, what)` until the instant query returns a sample."""
    for expr, what in checks:
        try:
            wait_until(partial(_value, prometheus, expr), timeout=120, what=f"waiting for {what}")
        except StartupError as exc:
            raise AssertionError(f"{exc}\nscrape targets: {prometheus.targets()}") from None


@pytest.fixture(scope="module")
def traffic(stack: Stack) -> Stack:
    """Send every kind of traffic in two rounds and wait until Prometheus has seen it all.

    Two rounds because a counter's first scraped value is its baseline: increments that
    happened before Prometheus first saw a series (the feedback of one burst, say) do not show
    in `rate()` or `increase()`. The first round creates every series, the second one moves
    them while Prometheus watches, as steady traffic would.
    """
    predict, feedback = f"{stack.url}/predict", f"{stack.url}/feedback"
    usual = [t[:MAX_CHARS] for t, _ in make_rows(n_per_class=70, classes=3, seed=11)][:200]
    shifted = news_sentences(120, MAX_CHARS)
    sel = f'model="{MODEL}",version="1"'
    sent = {"texts": 0, "feedback": 0, "rejected": 0}

    def send(texts: list[str], feedback_count: int) -> None:
        ids: list[tuple[str, str]] = []
        for i in range(0, len(texts), 8):
            status, body = _post(predict, {"texts": texts[i : i + 8]})
            assert status == 200, body
            ids += [(p["id"], p["label"]) for p in body["predictions"]]
        for n, (prediction_id, label) in enumerate(ids[:feedback_count]):
            # two in three accepted; every third corrected to another class
            other = next(c for c in ("酒店", "书籍", "电脑") if c != label)
            answer: dict[str, Any] = {"id": prediction_id}
            answer.update({"accepted": True} if n % 3 else {"label": other})
            status, body = _post(feedback, answer)
            assert status == 200, body
        assert _post(predict, {"texts": []})[0] == 422  # rejected: empty list
        assert _post(predict, b'{"texts": [')[0] == 400  # rejected: invalid JSON
        assert _post(predict, {"texts": ["好" * (MAX_CHARS + 1)]})[0] == 413  # too long
        sent["texts"] += len(texts)
        sent["feedback"] += feedback_count
        sent["rejected"] += 3
        _wait(
            stack.prometheus,
            [
                (
                    f"sum(textops_predictions_total{{{sel}}}) >= {sent['texts']}",
                    "the predictions to be scraped",
                ),
                (
                    f'sum(textops_requests_total{{{sel},endpoint="feedback",outcome="ok"}})'
                    f" >= {sent['feedback']}",
                    "the feedback to be scraped",
                ),
                (
                    f"sum(textops_rejected_requests_total{{{sel}}}) >= {sent['rejected']}",
                    "the rejections to be scraped",
                ),
            ],
        )

    send(usual[:60] + shifted[:30], FEEDBACK // 2)
    send(usual[60:] + shifted[30:], FEEDBACK - FEEDBACK // 2)
    _wait(
        stack.prometheus,
        [
            (
                f'max(textops_feature_drift_window_samples{{{sel},statistic="overall"}}) >= 200',
                "the drift timer to evaluate a full window",
            ),
            (
                f'max(textops_prediction_drift_window_samples{{{sel},statistic="overall"}}) >= 200',
                "the prediction drift window",
            ),
            (f"max(textops_labelling_queue_samples{{{sel}}}) > 0", "captures in the label store"),
            (
                f"namespace_model_version:textops_online_accuracy:ratio1h{{{sel}}} >= 0",
                "the recording rules to evaluate",
            ),
        ],
    )
    return stack


def test_model_and_version_variables_list_the_served_model(traffic: Stack) -> None:
    for board in dashboards().values():
        values = resolved_values(traffic.prometheus.query, board)
        assert (values["model"], values["version"]) == (MODEL, "1"), board["uid"]
        assert values["namespace"] == ".*"  # no namespace label outside a cluster: "All"


@pytest.mark.parametrize("target", SERVED, ids=lambda t: t.key)
def test_served_panel_returns_data(traffic: Stack, target: Target) -> None:
    board = dashboards()[target.dashboard]
    expr = substitute(target.expr, resolved_values(traffic.prometheus.query, board))
    result = traffic.prometheus.query(expr)
    assert result, f"empty panel {target.key}: {expr}"
    values = [float(r["value"][1]) for r in result]
    assert any(math.isfinite(v) for v in values), f"{target.key} has only {values}: {expr}"


def test_every_panel_is_covered_by_one_route(traffic: Stack) -> None:
    everything = targets()
    panels = {(t.dashboard, t.panel) for t in everything}
    routed = set(PROMTOOL_ROUTE) | set(E2E_ROUTE)
    assert not set(PROMTOOL_ROUTE) & set(E2E_ROUTE), "a panel on two routes"
    assert routed <= panels, f"stale entries: {routed - panels}"
    assert {(t.dashboard, t.panel) for t in SERVED} | routed == panels
    unit_data = promql_expr_tests()
    boards = dashboards()
    for target in everything:
        if (target.dashboard, target.panel) not in routed:
            continue
        expr = substitute(target.expr, default_values(boards[target.dashboard]))
        if (target.dashboard, target.panel) in PROMTOOL_ROUTE:
            assert unit_data.get(normalise(expr)), f"{target.key} lacks promtool unit data: {expr}"
        # the real engine accepts it too (no cluster or operator here: no data, but no error)
        traffic.prometheus.query(expr)


def test_rules_are_healthy_on_real_series(traffic: Stack) -> None:
    groups = _api(traffic.prometheus, "/api/v1/rules")["groups"]
    rules = [rule for group in groups for rule in group["rules"]]
    assert rules
    broken = [(r["name"], r.get("lastError")) for r in rules if r["health"] != "ok"]
    assert not broken, broken
    for rule in rules:
        if rule["type"] == "recording":
            assert traffic.prometheus.query(rule["name"]), f"{rule['name']} recorded nothing"
