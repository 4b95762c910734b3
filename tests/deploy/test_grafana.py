"""deploy/grafana/supportbot.json: valid JSON whose every PromQL query uses metrics the app really
exports (bot/observability.py) or the documented expected ones (deploy/README.md)."""

from __future__ import annotations

import json
import re

import pytest
from prometheus_client import Counter, Histogram

from bot.observability import Metrics
from tests.deploy.conftest import DEPLOY

pytestmark = pytest.mark.deploy

DASHBOARD = json.loads((DEPLOY / "grafana" / "supportbot.json").read_text())
# Metrics the dashboard may use that the app does not export itself (none now).
EXPECTED: dict[str, tuple[str, ...]] = {}
KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and", "or",
            "unless", "offset", "inf", "nan"}
SCRAPE_LABELS = {"instance", "job", "namespace", "pod", "service", "endpoint", "container"}


def exported() -> dict[str, set[str]]:
    """Every series name the app exports, with the labels it may carry."""
    names: dict[str, set[str]] = {}
    for collector in vars(Metrics()).values():
        if isinstance(collector, Counter):
            suffixes, extra = ("_total",), set()
        elif isinstance(collector, Histogram):
            suffixes, extra = ("_bucket", "_sum", "_count"), {"le"}
        else:
            continue
        base = collector._name.removesuffix("_total")  # prometheus_client keeps the family name here
        for suffix in suffixes:
            names[base + suffix] = set(collector._labelnames) | extra
    return names


def known() -> dict[str, set[str]]:
    return {**{name: set(labels) for name, labels in EXPECTED.items()}, **exported()}


def queries() -> list[str]:
    found = []

    def walk(node: object) -> None:
        if isinstance(node, dict):
            if isinstance(node.get("expr"), str):
                found.append(node["expr"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(DASHBOARD["panels"])
    return found


def metric_names(expr: str) -> set[str]:
    """The series names a PromQL expression selects: what is left after strings, label matchers,
    ranges, grouping clauses, functions, keywords and numbers are taken out."""
    expr = re.sub(r'"(?:[^"\\]|\\.)*"', "", expr)
    expr = re.sub(r"\{[^}]*\}", " ", expr)
    expr = re.sub(r"\[[^\]]*\]", " ", expr)
    expr = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", expr)
    names = set()
    for match in re.finditer(r"(?<![\w$.])([A-Za-z_:][A-Za-z0-9_:]*)(\s*\()?", expr):
        if match.group(2) or match.group(1).lower() in KEYWORDS:
            continue
        names.add(match.group(1))
    return names


def used_labels(expr: str) -> set[str]:
    labels = set()
    for group in re.findall(r"\b(?:by|without)\s*\(([^)]*)\)", expr):
        labels |= {x.strip() for x in group.split(",") if x.strip()}
    for matchers in re.findall(r"\{([^}]*)\}", expr):
        labels |= set(re.findall(r"([A-Za-z_][A-Za-z0-9_]*)\s*(?:=~|!~|!=|=)", matchers))
    return labels


def test_dashboard_is_valid_and_importable() -> None:
    assert DASHBOARD["title"] and DASHBOARD["uid"] and DASHBOARD["schemaVersion"] >= 36
    ids = [p["id"] for p in DASHBOARD["panels"]]
    assert len(ids) == len(set(ids))
    variables = {v["name"]: v for v in DASHBOARD["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    for panel in DASHBOARD["panels"]:
        if panel["type"] != "row":
            assert panel["datasource"]["uid"] == "${datasource}", "no hard-coded data source"
            assert panel["targets"], panel["title"]


def test_the_extractor_finds_metrics() -> None:
    quantile = 'histogram_quantile(0.95, sum by (le) (rate(a_bucket{stage="x"}[5m])))'
    assert metric_names(quantile) == {"a_bucket"}
    assert metric_names("sum(rate(a_total[$__rate_interval])) / sum(rate(b_total{x=~\"$v\"}[1m]))") == {
        "a_total", "b_total"}
    assert metric_names("topk(10, sum by (intent) (increase(c_total[$__range])))") == {"c_total"}
    assert used_labels('sum by (le, stage) (rate(a{stage!="total", instance=~"$i"}[1m]))') == {
        "le", "stage", "instance"}


def test_every_metric_used_exists_or_is_documented_as_expected() -> None:
    names = known()
    used: set[str] = set()
    for expr in queries():
        found = metric_names(expr)
        assert found, expr
        unknown = found - set(names)
        assert not unknown, f"{unknown} in {expr!r}: not in bot/observability.py nor documented as expected"
        used |= found
        if len(found) == 1:
            (metric,) = found
            labels = used_labels(expr) - SCRAPE_LABELS
            assert labels <= names[metric], f"{expr!r} uses labels {labels - names[metric]}"
    variable = next(v for v in DASHBOARD["templating"]["list"] if v["name"] == "instance")
    assert re.match(r"label_values\((\w+),", variable["definition"]).group(1) in names
    assert set(EXPECTED) <= used


def test_expected_metrics_are_listed_in_the_deploy_readme() -> None:
    readme = (DEPLOY / "README.md").read_text()
    for name, labels in EXPECTED.items():
        assert f"`{name}{{{','.join(labels)}}}`" in readme, name


def test_the_asked_for_panels_are_there() -> None:
    exprs = queries()
    joined = "\n".join(exprs)
    for quantile in ("0.5", "0.95", "0.99"):
        assert re.search(rf"histogram_quantile\({quantile}, sum by \(le\) "
                         r'\(rate\(supportbot_turn_seconds_bucket\{stage="total"', joined), quantile
    assert any(e.startswith("sum(rate(supportbot_turns_total") for e in exprs), "turns/s"
    assert "sum by (intent) (rate(supportbot_intents_total" in joined
    assert 'supportbot_turns_total{action="faq_answer"' in joined, "FAQ hits"
    assert "sum by (reason) (rate(supportbot_handoffs_total" in joined
    assert "sum by (reason) (rate(supportbot_generation_degraded_total" in joined, "generator fallbacks"
    assert "sum by (channel, code) (rate(supportbot_channel_errors_total" in joined
