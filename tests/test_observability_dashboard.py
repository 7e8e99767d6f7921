"""The Grafana dashboard: valid JSON, the required views, and only metrics that exist."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

DEPLOY = Path(__file__).resolve().parents[1] / "deploy"
EXPORTED = {
    "guardrail_responses_total",
    "guardrail_refusals_total",
    "guardrail_actions_total",
    "guardrail_retries_total",
    "guardrail_retry_attempts_total",
    "guardrail_retry_budget_exhausted_total",
    "guardrail_classifier_seconds_bucket",
    "guardrail_overhead_seconds_bucket",
    "guardrail_skipped_total",
    "guardrail_policy_reloads_total",
}


@pytest.fixture(scope="module")
def dashboard() -> dict[str, Any]:
    data: dict[str, Any] = json.loads((DEPLOY / "grafana" / "guardrail-dashboard.json").read_text())
    return data


def _exprs(dashboard: dict[str, Any]) -> dict[str, list[str]]:
    return {p["title"]: [t["expr"] for t in p["targets"]] for p in dashboard["panels"]}


def test_panels_have_unique_ids_and_non_overlapping_rows(dashboard: dict[str, Any]) -> None:
    """Panel ids are unique and every panel fits the 24-column grid."""
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    cells = set()
    for panel in dashboard["panels"]:
        pos = panel["gridPos"]
        assert pos["x"] + pos["w"] <= 24
        for x in range(pos["x"], pos["x"] + pos["w"]):
            for y in range(pos["y"], pos["y"] + pos["h"]):
                assert (x, y) not in cells, f"{panel['title']} overlaps another panel"
                cells.add((x, y))


def test_required_views_are_present(dashboard: dict[str, Any]) -> None:
    """Refusal rate by route/kind/category, retries, actions, latency quantiles and skips."""
    exprs = _exprs(dashboard)
    joined = "\n".join(e for es in exprs.values() for e in es)
    assert "route:guardrail_refusal_rate:ratio_rate5m" in exprs["Refusal rate by route"][0]
    assert "kind:guardrail_refusal_rate:ratio_rate5m" in exprs["Refusal rate by kind"][0]
    assert "sum by (category)" in exprs["Refusals by category"][0]
    assert "sum by (outcome) (rate(guardrail_retries_total" in exprs["Retries by outcome"][0]
    assert "guardrail:retry_recovered:ratio_rate1h" in joined
    assert "sum by (rule, action)" in exprs["Actions by rule"][0]
    assert [e.split(",")[0] for e in exprs["Classifier latency"]] == [
        "histogram_quantile(0.5",
        "histogram_quantile(0.99",
    ]
    assert "sum by (reason) (rate(guardrail_skipped_total" in exprs["Skips by reason"][0]


def test_queries_use_only_exported_metrics_and_recorded_series(dashboard: dict[str, Any]) -> None:
    """Every metric name in a query is exported by guardrail or recorded by rules.yml."""
    rules = yaml.safe_load((DEPLOY / "prometheus" / "rules.yml").read_text())
    recorded = {r["record"] for g in rules["groups"] for r in g["rules"] if "record" in r}
    for title, exprs in _exprs(dashboard).items():
        for expr in exprs:
            names = set(re.findall(r"(?<![\w:])[a-z_:]*guardrail[a-z_:0-9]*", expr))
            assert names, f"{title}: no guardrail metric in {expr}"
            assert names <= EXPORTED | recorded, f"{title}: unknown {names - EXPORTED - recorded}"


def test_datasource_and_route_variables(dashboard: dict[str, Any]) -> None:
    """Panels use the datasource variable; a route variable filters the per-route panels."""
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["query"] == "prometheus"
    assert variables["route"]["allValue"] == ".*"
    for panel in dashboard["panels"]:
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
