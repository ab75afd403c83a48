"""The Prometheus rules of the chart: `promtool check rules`, `promtool test rules`, coverage.

Every alert in charts/textops/rules/ must be unit-tested in tests/rules/*.test.yaml both firing
and silent, carry a severity and the annotations people need; every recording rule must be
evaluated by a `promql_expr_test`. promtool comes with Debian's prometheus package
(`make system-deps`).
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.rules.panels import RULE_TESTS, RULES

SEVERITIES = {"critical", "warning", "info"}
ANNOTATIONS = {"summary", "description", "runbook", "dashboard"}


def _promtool() -> str:
    found = shutil.which("promtool")
    assert found, "promtool is missing: make system-deps installs Debian's prometheus package"
    return found


def _rule_files() -> list[Path]:
    return sorted(RULES.glob("*.yaml"))


def _test_files() -> list[Path]:
    return sorted(RULE_TESTS.glob("*.test.yaml"))


def _rules() -> list[dict[str, Any]]:
    return [
        rule
        for path in _rule_files()
        for group in yaml.safe_load(path.read_text("utf-8"))["groups"]
        for rule in group["rules"]
    ]


def _unit_tests() -> list[dict[str, Any]]:
    return [
        test for path in _test_files() for test in yaml.safe_load(path.read_text("utf-8"))["tests"]
    ]


def test_promtool_check_rules() -> None:
    files = _rule_files()
    assert files, f"no rule files in {RULES}"
    done = subprocess.run(
        [_promtool(), "check", "rules", *map(str, files)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "WARNING" not in done.stdout + done.stderr, done.stdout + done.stderr


@pytest.mark.parametrize("path", _test_files(), ids=lambda p: p.name)
def test_promtool_test_rules(path: Path) -> None:
    done = subprocess.run(
        [_promtool(), "test", "rules", path.name],
        cwd=path.parent,  # rule_files are relative to the test file
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS" in done.stdout, done.stdout


def test_every_alert_is_unit_tested_firing_and_silent() -> None:
    firing: set[str] = set()
    silent: set[str] = set()
    for test in _unit_tests():
        for case in test.get("alert_rule_test", []):
            (firing if case.get("exp_alerts") else silent).add(case["alertname"])
    alerts = {rule["alert"] for rule in _rules() if "alert" in rule}
    assert alerts, "no alerts found"
    assert not alerts - firing, f"alerts never shown firing: {sorted(alerts - firing)}"
    assert not alerts - silent, f"alerts never shown silent: {sorted(alerts - silent)}"
    assert not (firing | silent) - alerts, "unit tests of alerts that do not exist"


def test_every_recording_rule_is_evaluated_in_a_unit_test() -> None:
    exprs = " ".join(
        case["expr"]
        for test in _unit_tests()
        for case in test.get("promql_expr_test", [])
        if case.get("exp_samples")
    )
    records = {rule["record"] for rule in _rules() if "record" in rule}
    assert records
    assert not {r for r in records if r not in exprs}, "recording rules without a unit test"


@pytest.mark.parametrize(
    "rule", [r for r in _rules() if "alert" in r], ids=lambda r: str(r["alert"])
)
def test_alert_has_severity_and_annotations(rule: dict[str, Any]) -> None:
    assert rule["alert"].startswith("Textops")
    assert rule.get("labels", {}).get("severity") in SEVERITIES
    annotations = rule.get("annotations", {})
    assert set(annotations) >= ANNOTATIONS, f"missing {ANNOTATIONS - set(annotations)}"
    assert annotations["dashboard"].startswith("/d/textops-")
    assert f"docs/dashboards.md#{rule['alert'].lower()}" in annotations["runbook"]
    docs = (RULES.parents[2] / "docs" / "dashboards.md").read_text("utf-8")
    assert f"### {rule['alert']}" in docs, "every alert has a section in docs/dashboards.md"
