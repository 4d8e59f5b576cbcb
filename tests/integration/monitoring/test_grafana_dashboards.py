"""The Grafana dashboards in dashboards/grafana: valid dashboard models whose every PromQL
expression parses in a real Prometheus, selects only metrics the running services export, and
shows data after real traffic.

Grafana itself is not installable here (not a Debian package): the JSON model is checked for
what Grafana relies on (ids, grid positions, the datasource variable, defined template
variables), the queries by the Prometheus of :mod:`prometheus_fixtures` (the repository's
configuration scraping the real API and drift monitor).
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from .prometheus_fixtures import (
    REPO,
    MonitoringStack,
    exported_names,
    promql_metric_names,
)

GRAFANA = REPO / "dashboards" / "grafana"
DASHBOARDS = sorted(GRAFANA.glob("*.json"))
EXPECTED = {
    "fmnist-service-health",
    "fmnist-model-quality",
    "fmnist-drift",
    "fmnist-ab-experiment",
    "fmnist-cost",
}
DATASOURCE = {"type": "prometheus", "uid": "${DS_PROMETHEUS}"}
PANEL_TYPES = {
    "row",
    "text",
    "stat",
    "gauge",
    "bargauge",
    "timeseries",
    "heatmap",
    "table",
    "state-timeline",
    "piechart",
}
BUILTIN_VARIABLES = {
    "__rate_interval": "1m",
    "__interval": "15s",
    "__interval_ms": "15000",
    "__range": "1h",
    "__range_s": "3600",
    "__range_ms": "3600000",
}
"""Grafana's own variables, with the values a query is tried with."""
PROMETHEUS_SERIES = {"up", "ALERTS", "ALERTS_FOR_STATE"}
"""Series Prometheus makes itself (scrape health, alert states of the repository's rules)."""
_VARIABLE = re.compile(r"\$\{(\w+)(?::[\w-]+)?\}|\$(\w+)|\[\[(\w+)\]\]")
_LABEL_VALUES = re.compile(r"^\s*label_values\((.*),\s*[A-Za-z_]\w*\s*\)\s*$", re.DOTALL)
_QUERY_RESULT = re.compile(r"^\s*query_result\((.*)\)\s*$", re.DOTALL)


def _load(path: Path) -> dict[str, Any]:
    board: dict[str, Any] = json.loads(path.read_text())
    return board


def all_panels(panels: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """Every panel, those nested in (collapsed) rows included."""
    for panel in panels:
        yield panel
        yield from all_panels(panel.get("panels", []))


def variable_values(board: dict[str, Any]) -> dict[str, str]:
    """Each template variable's default value as a query uses it ('All': its allValue)."""
    values = dict(BUILTIN_VARIABLES)
    for variable in board["templating"]["list"]:
        current = variable.get("current", {}).get("value")
        if isinstance(current, list):
            current = "|".join(current)
        if current == "$__all":
            current = variable.get("allValue") or ".*"
        if not current and variable["type"] in {"constant", "textbox"}:
            current = variable["query"]
        assert current, f"{board['uid']}: variable {variable['name']} has no default value"
        values[variable["name"]] = str(current)
    return values


def substitute(text: str, values: dict[str, str], where: str) -> str:
    """``text`` with ``$var``, ``${var}``, ``${var:format}`` and ``[[var]]`` replaced."""

    def value(match: re.Match[str]) -> str:
        name = next(group for group in match.groups() if group)
        assert name in values, f"{where}: undefined variable ${name}"
        return values[name]

    return _VARIABLE.sub(value, text)


def expressions(board: dict[str, Any]) -> list[tuple[str, str]]:
    """(where, PromQL) for every panel target and every query variable, variables replaced."""
    values = variable_values(board)
    found = []
    for panel in all_panels(board["panels"]):
        for target in panel.get("targets", []):
            where = f"{board['uid']} / {panel['title']} / {target['refId']}"
            found.append((where, substitute(target["expr"], values, where)))
    for variable in board["templating"]["list"]:
        if variable["type"] != "query":
            continue
        query = variable["query"]
        query = query["query"] if isinstance(query, dict) else query
        match = _LABEL_VALUES.match(query) or _QUERY_RESULT.match(query)
        if match is not None:
            where = f"{board['uid']} / variable {variable['name']}"
            found.append((where, substitute(match.group(1), values, where)))
    return found


def test_the_five_dashboards_exist() -> None:
    uids = [_load(path)["uid"] for path in DASHBOARDS]
    assert sorted(uids) == sorted(EXPECTED)
    assert {path.stem for path in DASHBOARDS} == EXPECTED  # file name = uid
    assert len({_load(path)["title"] for path in DASHBOARDS}) == len(DASHBOARDS)


def _overlap(a: dict[str, int], b: dict[str, int]) -> bool:
    return (
        a["x"] < b["x"] + b["w"]
        and b["x"] < a["x"] + a["w"]
        and a["y"] < b["y"] + b["h"]
        and b["y"] < a["y"] + a["h"]
    )


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.stem)
def test_dashboard_is_a_grafana_model(path: Path) -> None:
    board = _load(path)
    assert board["schemaVersion"] == 39
    assert board["id"] is None  # provisioned or imported: Grafana assigns it
    assert "fmnist" in board["tags"] and board["description"]
    variables = {v["name"]: v for v in board["templating"]["list"]}
    source = variables["DS_PROMETHEUS"]
    assert (source["type"], source["query"]) == ("datasource", "prometheus")
    panels = list(all_panels(board["panels"]))
    ids = [panel["id"] for panel in panels]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    placed: list[dict[str, int]] = []
    for panel in panels:
        assert panel["type"] in PANEL_TYPES, panel["type"]
        grid = panel["gridPos"]
        assert grid["x"] >= 0 and grid["w"] > 0 and grid["x"] + grid["w"] <= 24, panel["title"]
        assert grid["h"] > 0 and grid["y"] >= 0
        assert all(not _overlap(grid, other) for other in placed), f"overlap: {panel['title']}"
        placed.append(grid)
        if panel["type"] in {"row", "text"}:
            continue
        assert panel["datasource"] == DATASOURCE, panel["title"]
        assert panel["targets"], f"{panel['title']} has no query"
        refs = [target["refId"] for target in panel["targets"]]
        assert len(refs) == len(set(refs))
        for target in panel["targets"]:
            assert target["datasource"] == DATASOURCE and target["expr"].strip()
    values = variable_values(board)
    for panel in panels:  # titles may use variables too
        substitute(panel["title"], values, f"{board['uid']} / {panel['title']}")
    assert expressions(board)


def test_provisioning_points_at_the_dashboards_datasource() -> None:
    provisioning = GRAFANA / "provisioning"
    sources = yaml.safe_load((provisioning / "datasources.yml").read_text())
    assert sources["apiVersion"] == 1
    (prometheus,) = [s for s in sources["datasources"] if s["type"] == "prometheus"]
    for path in DASHBOARDS:
        variables = {v["name"]: v for v in _load(path)["templating"]["list"]}
        assert variables["DS_PROMETHEUS"]["current"]["value"] == prometheus["uid"]
    providers = yaml.safe_load((provisioning / "dashboards.yml").read_text())
    assert providers["apiVersion"] == 1
    (provider,) = providers["providers"]
    assert provider["type"] == "file" and provider["options"]["path"]


@pytest.mark.parametrize(
    ("expr", "names"),
    [
        (
            'histogram_quantile(0.95, sum by (job, le) (rate(x_bucket{route="/v1/a"}[5m]))) > 0.1',
            {"x_bucket"},
        ),
        ('up{job=~"a|b"} == 0', {"up"}),
        ("a * on (model_version) group_left (arm) b offset 5m", {"a", "b"}),
        ("sum without (instance) (x) / ignoring(arm) y and bool z", {"x", "y", "z"}),
        ('1e-9 * foo + 0.5 - {__name__="bar"}', {"foo", "bar"}),
        ('count(ALERTS{alertstate="firing", x="rate(y)"}) or vector(0)', {"ALERTS"}),
        ("time() - max(t) by (le) # comment with_name", {"t"}),
        ("rate(x[5m:1m] @ end())", {"x"}),
    ],
)
def test_metric_names_are_extracted_from_promql(expr: str, names: set[str]) -> None:
    assert promql_metric_names(expr) == names


def _all_expressions() -> list[tuple[str, str]]:
    return [found for path in DASHBOARDS for found in expressions(_load(path))]


@pytest.mark.network
@pytest.mark.agnostic  # a real Prometheus: make test-agnostic
def test_every_expression_parses_in_prometheus(monitoring_stack: MonitoringStack) -> None:
    errors = []
    for where, expr in _all_expressions():
        response = httpx.get(
            f"{monitoring_stack.prometheus}/api/v1/query",
            params={"query": expr},
            trust_env=False,
        )
        if response.status_code != 200:  # 400 bad_data: a parse or type error
            errors.append(f"{where}: {response.json().get('error')}\n    {expr}")
    assert not errors, "\n".join(errors)


@pytest.mark.network
@pytest.mark.agnostic  # a real Prometheus: make test-agnostic
def test_every_metric_is_exported_by_the_services(monitoring_stack: MonitoringStack) -> None:
    exported = set()
    for base in (monitoring_stack.api, monitoring_stack.monitor):
        exported |= exported_names(httpx.get(f"{base}/metrics", trust_env=False).text)
    used: dict[str, set[str]] = {}
    for where, expr in _all_expressions():
        for name in promql_metric_names(expr):
            used.setdefault(name, set()).add(where.split(" / ")[0])
    missing = {name: sorted(where) for name, where in used.items() if name not in exported}
    assert set(missing) <= PROMETHEUS_SERIES, missing
    per_board = {uid for boards in used.values() for uid in boards}
    assert per_board == EXPECTED  # every dashboard queries metrics
    assert {"fmnist_drift_p_value", "fmnist_rollout_predictions_total"} <= set(used)


@pytest.mark.network
@pytest.mark.agnostic  # a real Prometheus: make test-agnostic
def test_every_panel_shows_data_after_real_traffic(monitoring_stack: MonitoringStack) -> None:
    def empty() -> list[str]:
        return [where for where, expr in _all_expressions() if not monitoring_stack.query(expr)]

    # rate() needs two scrapes in its window: a panel may be empty for a second or two.
    deadline = time.monotonic() + 20
    while (without_data := empty()) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not without_data, without_data
