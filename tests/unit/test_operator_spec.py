"""The typed ModelDeployment model against the CRD it mirrors, and its parsing rules.

The schema walk is the guard against drift: every property of the CRD must be a field of the
matching dataclass and the other way round, with the same required-ness, default, enum and
JSON type, and a description for `kubectl explain`.
"""

from __future__ import annotations

import dataclasses
import functools
import re
import types
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin, get_type_hints

import pytest
import yaml

from textops.operator import spec as spec_module
from textops.operator.cron import parse_schedule
from textops.operator.durations import format_duration, parse_duration
from textops.operator.spec import (
    ModelDeployment,
    ModelDeploymentSpec,
    SpecError,
    Status,
    dump,
    json_key,
    parse,
)
from textops.registry.promotion import METRICS

ROOT = Path(__file__).resolve().parents[2]
CRD_PATH = ROOT / "manifests" / "crd" / "modeldeployments.textops.io.yaml"
EXAMPLES = ROOT / "manifests" / "examples"
MINIMAL = {"model": {"name": "reviews-sentiment", "alias": "champion"}}


@functools.cache
def _crd() -> dict[str, Any]:
    return yaml.safe_load(CRD_PATH.read_text(encoding="utf-8"))


def _root_schema() -> dict[str, Any]:
    (version,) = _crd()["spec"]["versions"]
    return version["schema"]["openAPIV3Schema"]


def _strip_optional(hint: Any) -> Any:
    if get_origin(hint) in (Union, types.UnionType):
        inner = [a for a in get_args(hint) if a is not type(None)]
        assert len(inner) == 1
        return inner[0]
    return hint


def _python_default(f: dataclasses.Field[Any]) -> Any:
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return dataclasses.MISSING


def _walk(schema: dict[str, Any], cls: type, path: str, seen: list[str]) -> None:
    hints = get_type_hints(cls)
    by_key = {json_key(f): f for f in dataclasses.fields(cls)}
    props = schema["properties"]
    assert set(props) == set(by_key), f"{path}: schema {sorted(props)} vs model {sorted(by_key)}"
    required = set(schema.get("required", []))
    for key, sub in props.items():
        where = f"{path}.{key}"
        seen.append(where)
        f = by_key[key]
        hint = _strip_optional(hints[f.name])
        assert sub.get("description"), f"{where} has no description"
        default = _python_default(f)
        assert (key in required) == (default is dataclasses.MISSING), f"{where}: required-ness"
        # the JSON type
        if sub.get("x-kubernetes-int-or-string"):
            assert f.metadata.get("quantity"), f"{where}: int-or-string must be a quantity field"
        elif sub["type"] == "object":
            assert dataclasses.is_dataclass(hint), f"{where}: object needs a dataclass"
            _walk(sub, hint, where, seen)
        elif sub["type"] == "array":
            assert get_origin(hint) is tuple, where
            (item,) = [a for a in get_args(hint) if a is not Ellipsis]
            _walk(sub["items"], item, f"{where}[]", seen)
        else:
            expected = {
                "integer": (int,),
                "number": (float,),
                "boolean": (bool,),
                "string": (str, timedelta, datetime),
            }[sub["type"]]
            base = str if get_origin(hint) is Literal else hint
            assert base in expected, f"{where}: {sub['type']} vs {hint}"
            if hint is datetime:
                assert sub.get("format") == "date-time", where
        # the enum
        if "enum" in sub:
            assert get_origin(hint) is Literal, f"{where}: enum needs a Literal type"
            assert list(get_args(hint)) == sub["enum"], where
        else:
            assert get_origin(hint) is not Literal, f"{where}: Literal without an enum"
        # the default
        if "default" in sub:
            if sub["default"] == {}:
                assert f.default_factory is hint, f"{where}: `default: {{}}` needs a factory"
            else:
                shown = (
                    str(sub["default"]).lower()
                    if isinstance(sub["default"], bool)
                    else sub["default"]
                )
                assert f"Default: {shown}." in sub["description"], f"{where}: default not described"
                parsed = spec_module._value(hints[f.name], sub["default"], where)
                assert parsed == default, f"{where}: schema {sub['default']!r} vs {default!r}"
        elif default is not dataclasses.MISSING and not dataclasses.is_dataclass(hint):
            assert default in (None, ()), f"{where}: Python default {default!r} not in schema"


def test_schema_and_model_agree_field_by_field() -> None:
    root = _root_schema()
    seen: list[str] = []
    _walk(root["properties"]["spec"], ModelDeploymentSpec, "spec", seen)
    _walk(root["properties"]["status"], Status, "status", seen)
    assert len(seen) > 80  # the walk really went everywhere


def test_history_bound_matches_the_config() -> None:
    from textops.operator.config import MAX_HISTORY

    assert (
        _root_schema()["properties"]["status"]["properties"]["history"]["maxItems"] == MAX_HISTORY
    )


def test_enums_match_the_promotion_policy() -> None:
    promotion = _root_schema()["properties"]["spec"]["properties"]["promotion"]
    assert tuple(promotion["properties"]["metric"]["enum"]) == METRICS


def _apply_schema_defaults(schema: dict[str, Any], value: dict[str, Any]) -> dict[str, Any]:
    """What the API server does: fill defaults, then recurse (also into filled defaults)."""
    out = dict(value)
    for key, sub in schema.get("properties", {}).items():
        if key not in out and "default" in sub:
            out[key] = sub["default"]
        if key in out and sub.get("type") == "object" and isinstance(out[key], dict):
            out[key] = _apply_schema_defaults(sub, out[key])
    return out


def test_python_defaults_equal_what_the_api_server_fills_in() -> None:
    schema = _root_schema()["properties"]["spec"]
    filled = _apply_schema_defaults(schema, MINIMAL)
    assert filled["serving"]["resources"]["requests"]["cpu"] == "250m"
    assert parse(ModelDeploymentSpec, filled, "spec") == parse(ModelDeploymentSpec, MINIMAL, "spec")


def test_crd_identity_and_columns() -> None:
    crd = _crd()
    assert crd["metadata"]["name"] == f"{spec_module.PLURAL}.{spec_module.GROUP}"
    names = crd["spec"]["names"]
    assert names["kind"] == spec_module.KIND and "mdep" in names["shortNames"]
    (version,) = crd["spec"]["versions"]
    assert version["name"] == spec_module.VERSION
    assert version["subresources"] == {"status": {}}
    columns = [c["name"] for c in version["additionalPrinterColumns"]]
    assert columns[:1] == ["Model"] and {"Serving", "Phase", "Drift", "Age"} <= set(columns)


@pytest.mark.parametrize("example", sorted(EXAMPLES.glob("*.yaml")), ids=lambda p: p.name)
def test_examples_parse_and_round_trip(example: Path) -> None:
    body = yaml.safe_load(example.read_text(encoding="utf-8"))
    mdep = ModelDeployment.from_body(body)
    assert parse(ModelDeploymentSpec, dump(mdep.spec), "spec") == mdep.spec


def test_full_example_values() -> None:
    body = yaml.safe_load((EXAMPLES / "full.yaml").read_text(encoding="utf-8"))
    spec = ModelDeployment.from_body(body).spec
    assert spec.serving.replicas == 2
    assert spec.serving.resources.requests.cpu == "500m"
    assert spec.retraining.resources.requests.cpu == "2"
    assert spec.monitoring.quality.for_ == timedelta(minutes=30)
    assert spec.retraining.triggers.schedule == "0 3 * * 0"
    assert spec.credentials_secret == "textops-credentials"


def test_minimal_gets_every_default() -> None:
    mdep = ModelDeployment.from_body(
        {"metadata": {"name": "reviews", "namespace": "ml"}, "spec": MINIMAL}
    )
    s = mdep.spec
    assert s.model.target == "@champion"
    assert s.serving.replicas == 1 and s.serving.image is None
    assert s.serving.batching.max_batch_size == 32 and s.serving.batching.max_latency_ms == 20
    assert s.monitoring.feature_drift.for_ == timedelta(minutes=10)
    assert s.monitoring.quality.window == timedelta(hours=24)
    assert s.retraining.cooldown == timedelta(hours=6)
    assert s.retraining.triggers.on_drift and s.retraining.triggers.manual
    assert s.promotion.metric == "macro_f1" and s.promotion.max_recall_drop == 0.05
    assert s.rollout.progress_deadline_seconds == 600
    assert mdep.status == Status() and mdep.retrain_request is None


def test_integer_quantities_become_strings() -> None:
    spec = parse(
        ModelDeploymentSpec,
        {**MINIMAL, "serving": {"resources": {"requests": {"cpu": 1}}}},
        "spec",
    )
    assert spec.serving.resources.requests.cpu == "1"
    assert spec.serving.resources.requests.memory == "512Mi"  # sibling default kept


def test_status_parses_times_and_lists() -> None:
    body = {
        "metadata": {
            "name": "r",
            "namespace": "ml",
            "uid": "u-1",
            "creationTimestamp": "2026-11-26T10:00:00Z",
            "annotations": {"textops.io/retrain": "42"},
        },
        "spec": MINIMAL,
        "status": {
            "phase": "Serving",
            "servingVersion": "7",
            "drift": {"feature": 0.3, "featureAboveSince": "2026-11-26T11:00:00Z"},
            "history": [{"time": "2026-11-26T11:05:00Z", "event": "RolledOut", "version": "7"}],
            "conditions": [
                {
                    "type": "Ready",
                    "status": "True",
                    "lastTransitionTime": "2026-11-26T11:05:00Z",
                    "reason": "RolledOut",
                    "message": "version 7 serves",
                }
            ],
        },
    }
    mdep = ModelDeployment.from_body(body)
    assert mdep.created_at == datetime(2026, 11, 26, 10, tzinfo=UTC)
    assert mdep.retrain_request == "42"
    assert mdep.status.drift.feature_above_since == datetime(2026, 11, 26, 11, tzinfo=UTC)
    assert mdep.status.history[0].event == "RolledOut"
    assert mdep.status.conditions[0].status == "True"
    assert dump(mdep.status)["drift"] == {
        "feature": 0.3,
        "featureAboveSince": "2026-11-26T11:00:00Z",
    }


@pytest.mark.parametrize(
    ("spec", "needle"),
    [
        ({}, "spec.model is required"),
        ({"model": {"alias": "champion"}}, "spec.model.name is required"),
        ({"model": {"name": "m"}}, "exactly one of spec.model.alias or spec.model.version"),
        ({"model": {"name": "m", "alias": "a", "version": "1"}}, "exactly one"),
        ({**MINIMAL, "serving": {"replicas": "2"}}, "spec.serving.replicas: expected an integer"),
        ({**MINIMAL, "serving": {"replicas": True}}, "spec.serving.replicas"),
        ({**MINIMAL, "monitoring": {"interval": "5 minutes"}}, "spec.monitoring.interval"),
        ({**MINIMAL, "promotion": {"metric": "f2"}}, "spec.promotion.metric"),
        ({**MINIMAL, "retraining": {"triggers": {"schedule": "61 * * * *"}}}, "minute 61"),
        ({**MINIMAL, "retraining": {"triggers": {"onDrift": "yes"}}}, "onDrift"),
        ({**MINIMAL, "serving": []}, "spec.serving: expected an object"),
    ],
)
def test_bad_specs_raise_spec_error_naming_the_field(spec: dict[str, Any], needle: str) -> None:
    with pytest.raises(SpecError, match=needle.replace(".", r"\.")):
        ModelDeployment.from_body({"metadata": {"name": "r"}, "spec": spec})


def test_durations() -> None:
    assert parse_duration("1h30m") == timedelta(minutes=90)
    assert parse_duration("1d") == timedelta(days=1)
    assert parse_duration("0s") == timedelta(0)
    assert format_duration(timedelta(days=1, minutes=5)) == "1d5m"
    assert format_duration(timedelta(0)) == "0s"
    for bad in ("", "10", "m", "1.5h", "-1m", "1w"):
        with pytest.raises(ValueError, match="invalid duration"):
            parse_duration(bad)


def _rule_regex(schema: dict[str, Any]) -> re.Pattern[str]:
    """The regular expression of a field's `self.matches('...')` CEL rule."""
    (rule,) = [r["rule"] for r in schema["x-kubernetes-validations"] if "matches(" in r["rule"]]
    return re.compile(rule.split("matches('", 1)[1].rsplit("')", 1)[0])


def _spec_schema(*path: str) -> dict[str, Any]:
    node = _root_schema()["properties"]["spec"]
    for part in path:
        node = node["properties"][part]
    return node


@pytest.mark.parametrize("text", ["1m", "1h30m", "2d", "0s", "10m", "5x", "1.5h", "", "1 m"])
def test_duration_rule_in_the_crd_agrees_with_the_parser(text: str) -> None:
    accepted = bool(_rule_regex(_spec_schema("monitoring", "interval")).match(text))
    try:
        parse_duration(text)
        parsed = True
    except ValueError:
        parsed = False
    assert accepted == parsed


@pytest.mark.parametrize("text", ["0 3 * * 0", "@weekly", "*/5 1-3 * jan mon-fri", "0 3 * *"])
def test_schedule_rule_in_the_crd_admits_what_the_parser_parses(text: str) -> None:
    schema = _spec_schema("retraining", "triggers", "schedule")
    accepted = bool(_rule_regex(schema).match(text))
    try:
        parse_schedule(text)
        parsed = True
    except ValueError:
        parsed = False
    assert accepted == parsed  # (the parser also checks ranges the rule cannot)


def _t(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


@pytest.mark.parametrize(
    ("expression", "now", "tick"),
    [
        ("0 3 * * 0", "2026-11-26T17:00", "2026-11-22T03:00"),  # Thursday -> last Sunday
        ("0 3 * * sun", "2026-11-22T03:00", "2026-11-22T03:00"),  # at the tick itself
        ("0 3 * * 7", "2026-11-22T02:59", "2026-11-15T03:00"),  # 7 is Sunday too
        ("*/15 * * * *", "2026-11-26T17:44", "2026-11-26T17:30"),
        ("@daily", "2026-11-26T17:44", "2026-11-26T00:00"),
        ("@monthly", "2026-11-26T17:44", "2026-11-01T00:00"),
        ("30 2 1-7 * mon", "2026-11-26T17:44", "2026-11-23T02:30"),  # dom OR dow (Vixie)
        ("0 0 29 feb *", "2026-11-26T17:44", "2024-02-29T00:00"),
        ("0 9-17/4 * jan-dec mon-fri", "2026-11-26T12:00", "2026-11-26T09:00"),
    ],
)
def test_cron_previous_tick(expression: str, now: str, tick: str) -> None:
    assert parse_schedule(expression).previous(_t(now)) == _t(tick)


@pytest.mark.parametrize(
    "expression",
    [
        "* * * *",
        "60 * * * *",
        "* 24 * * *",
        "* * 0 * *",
        "* * * 13 *",
        "5-1 * * * *",
        "*/0 * * * *",
        "@often",
    ],
)
def test_cron_rejects_bad_expressions(expression: str) -> None:
    with pytest.raises(ValueError, match="invalid schedule"):
        parse_schedule(expression)


PURE_MODULES = ("spec", "config", "builders", "policy", "durations", "cron")


@pytest.mark.parametrize("module", PURE_MODULES)
def test_pure_modules_import_no_io_libraries(module: str) -> None:
    """The decisions stay testable without a cluster: no kopf, kubernetes or mlflow here."""
    import ast

    source = (ROOT / "textops" / "operator" / f"{module}.py").read_text(encoding="utf-8")
    imported: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            imported.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            imported.add(node.module.split(".")[0])
    assert not imported & {"kopf", "kubernetes", "mlflow"}, imported
