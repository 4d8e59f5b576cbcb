"""A real Prometheus, configured from the repository's monitoring/prometheus/prometheus.yml,
scrapes the real API and drift monitor, loads the repository's alert rules and evaluates them
against what the services export (the stack of :mod:`prometheus_fixtures`)."""

from __future__ import annotations

import copy
import subprocess
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from .prometheus_fixtures import (
    API_JOB,
    MONITOR_JOB,
    PROMETHEUS_CONFIG,
    PROMETHEUS_DIR,
    RULE_FILES,
    MonitoringStack,
    exported_names,
    exposition_samples,
    patched_prometheus_config,
    promql_metric_names,
    require_binary,
    total,
    wait_for,
)


def _repo_groups() -> dict[str, list[dict[str, Any]]]:
    """Rule groups of the repository's rule files: name -> rules."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for path in RULE_FILES:
        for group in yaml.safe_load(path.read_text())["groups"]:
            groups[group["name"]] = group["rules"]
    return groups


def test_the_test_configuration_is_the_repository_one_patched(tmp_path: Path) -> None:
    promtool = require_binary("promtool")
    targets = {API_JOB: "127.0.0.1:18000", MONITOR_JOB: "127.0.0.1:19108"}
    patched = patched_prometheus_config(targets)
    path = tmp_path / "prometheus.yml"
    path.write_text(yaml.safe_dump(patched))
    done = subprocess.run(
        [promtool, "check", "config", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    rules = sum(len(rules) for rules in _repo_groups().values())
    assert f"SUCCESS: {rules} rules found" in done.stdout + done.stderr
    # Undo the patch: what is left is the repository's file, key for key.
    original = yaml.safe_load(PROMETHEUS_CONFIG.read_text())
    restored = copy.deepcopy(patched)
    restored["global"] |= {
        k: original["global"][k] for k in ("scrape_interval", "evaluation_interval")
    }
    restored["rule_files"] = [
        str(Path(pattern).relative_to(PROMETHEUS_DIR)) for pattern in patched["rule_files"]
    ]
    for job, before in zip(restored["scrape_configs"], original["scrape_configs"], strict=True):
        assert [s["targets"] for s in job["static_configs"]] == [[targets[job["job_name"]]]]
        job["static_configs"] = before["static_configs"]
    assert restored == original


@pytest.mark.network
@pytest.mark.agnostic  # a real Prometheus: make test-agnostic
def test_prometheus_scrapes_the_api_and_the_monitor(monitoring_stack: MonitoringStack) -> None:
    active = httpx.get(f"{monitoring_stack.prometheus}/api/v1/targets", trust_env=False).json()
    targets = {t["labels"]["job"]: t for t in active["data"]["activeTargets"]}
    jobs = {
        job["job_name"] for job in yaml.safe_load(PROMETHEUS_CONFIG.read_text())["scrape_configs"]
    }
    assert set(targets) == jobs == {API_JOB, MONITOR_JOB}
    assert targets[API_JOB]["scrapeUrl"] == f"{monitoring_stack.api}/metrics"
    assert targets[MONITOR_JOB]["scrapeUrl"] == f"{monitoring_stack.monitor}/metrics"
    assert all(t["health"] == "up" for t in targets.values()), targets

    traffic = monitoring_stack.traffic
    own = exposition_samples(httpx.get(f"{monitoring_stack.api}/metrics", trust_env=False).text)
    assert total(own, "fmnist_predictions_total") == traffic.predictions

    def value(expr: str) -> float:
        (sample,) = monitoring_stack.query(expr)
        return float(sample["value"][1])

    api = f'job="{API_JOB}"'
    assert value(f"sum(fmnist_predictions_total{{{api}}})") == traffic.predictions
    assert traffic.unknown > 0  # the traffic includes noise, answered 'unknown'
    unknown = f'sum(fmnist_predictions_total{{{api}, label="unknown"}})'
    assert value(unknown) == traffic.unknown
    assert value(f'sum(fmnist_feedback_total{{{api}, outcome="created"}})') == traffic.feedback
    arms = monitoring_stack.query(f"sum by (arm) (fmnist_rollout_predictions_total{{{api}}})")
    assert {s["metric"]["arm"]: float(s["value"][1]) for s in arms} == traffic.arms
    assert set(traffic.arms) == {"champion", "challenger"}
    assert value(f"fmnist_model_version{{{api}}}") == monitoring_stack.champion
    monitor = f'job="{MONITOR_JOB}"'
    assert value(f"fmnist_drift_reference_version{{{monitor}}}") == monitoring_stack.champion
    assert value(f"fmnist_drift_window_size{{{monitor}}}") >= 10
    tests = monitoring_stack.query(f"fmnist_drift_p_value{{{monitor}}}")
    assert {"bbsd_ks", "mmd", "prediction_chi2"} <= {s["metric"]["test"] for s in tests}


@pytest.mark.network
@pytest.mark.agnostic  # a real Prometheus: make test-agnostic
def test_the_repository_rules_are_loaded_and_evaluated(monitoring_stack: MonitoringStack) -> None:
    expected = _repo_groups()

    def evaluated() -> list[dict[str, Any]] | None:
        body = httpx.get(f"{monitoring_stack.prometheus}/api/v1/rules", trust_env=False).json()
        groups: list[dict[str, Any]] = body["data"]["groups"]
        rules = [rule for group in groups for rule in group["rules"]]
        return groups if rules and all(r["health"] != "unknown" for r in rules) else None

    groups = wait_for("every rule to be evaluated once", evaluated, timeout_s=30)
    assert {group["name"] for group in groups} == set(expected)
    assert {group["file"] for group in groups} == {str(path) for path in RULE_FILES}
    for group in groups:
        loaded = {rule["name"]: rule for rule in group["rules"]}
        assert list(loaded) == [rule["alert"] for rule in expected[group["name"]]]
        for rule in loaded.values():
            assert rule["type"] == "alerting"
            assert rule["health"] == "ok", (rule["name"], rule.get("lastError"))


@pytest.mark.network
@pytest.mark.agnostic  # a real Prometheus: make test-agnostic
def test_the_rules_use_exported_metrics_and_see_the_services(
    monitoring_stack: MonitoringStack,
) -> None:
    exported = set()
    for base in (monitoring_stack.api, monitoring_stack.monitor):
        exported |= exported_names(httpx.get(f"{base}/metrics", trust_env=False).text)
    used = {
        name
        for rules in _repo_groups().values()
        for rule in rules
        for name in promql_metric_names(rule["expr"])
    }
    assert used - exported == {"up"}  # made by Prometheus itself

    drift = monitoring_stack.query(f'fmnist_drift_detected{{job="{MONITOR_JOB}"}}')
    detected = float(drift[0]["value"][1]) == 1

    def alerts() -> set[str] | None:
        body = httpx.get(f"{monitoring_stack.prometheus}/api/v1/alerts", trust_env=False).json()
        names = {a["labels"]["alertname"] for a in body["data"]["alerts"]}
        return names if ("FmnistDriftDetected" in names) == detected else None

    # The monitor's verdict drives the drift alert (pending: it has `for: 10m`); both targets
    # are up, so FmnistTargetDown stays quiet.
    names = wait_for("the drift alert to follow the monitor", alerts, timeout_s=30)
    assert "FmnistTargetDown" not in names
