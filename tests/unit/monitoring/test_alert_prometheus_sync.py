"""The Prometheus rules, the in-process rules and the runbooks agree with each other."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from fmnist.config import AlertSettings
from fmnist.monitoring.alert_rules import RUNBOOK_ANCHORS, RUNBOOKS, build_rules

ROOT = Path(__file__).resolve().parents[3]
RULES = ROOT / "monitoring" / "prometheus" / "rules" / "fmnist-alerts.yml"
# Prometheus alert -> (settings section, comparison, in-process rule)
PAIRS = {
    "FmnistDriftDetected": ("drift", "==", "drift_detected"),
    "FmnistLiveAccuracyLow": ("live_accuracy", "<", "live_accuracy_low"),
    "FmnistHighErrorRate": ("error_rate", ">", "error_rate_high"),
    "FmnistLatencyP95High": ("latency_p95", ">", "latency_p95_high"),
    "FmnistUnknownRateHigh": ("unknown_rate", ">", "unknown_rate_high"),
}


def _prometheus_rules() -> dict[str, dict[str, object]]:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return {rule["alert"]: rule for group in groups for rule in group["rules"]}


def _anchors() -> set[str]:
    text = (ROOT / RUNBOOKS).read_text()
    headings = re.findall(r"^## (.+)$", text, flags=re.MULTILINE)
    return {re.sub(r"[^a-z0-9 -]", "", h.lower()).replace(" ", "-") for h in headings}


def test_prometheus_thresholds_and_severities_are_the_settings_defaults() -> None:
    settings = AlertSettings()
    prometheus = _prometheus_rules()
    in_process = {rule.name: rule for rule in build_rules(settings)}
    for alert, (section, op, name) in PAIRS.items():
        rule = prometheus[alert]
        configured = getattr(settings, section)
        labels = rule["labels"]
        assert isinstance(labels, dict)
        assert labels["severity"] == configured.severity == in_process[name].severity, alert
        threshold = getattr(configured, "threshold", 1)
        assert f"{op} {threshold:g}" in str(rule["expr"]), alert
        annotations = rule["annotations"]
        assert isinstance(annotations, dict)
        assert annotations["runbook_url"] == in_process[name].runbook_url, alert


def test_every_alert_has_a_runbook_section_and_annotations() -> None:
    anchors = _anchors()
    assert set(RUNBOOK_ANCHORS.values()) <= anchors
    for alert, rule in _prometheus_rules().items():
        annotations = rule["annotations"]
        assert isinstance(annotations, dict)
        assert {"summary", "description", "runbook_url"} <= set(annotations), alert
        assert str(annotations["runbook_url"]).startswith(f"{RUNBOOKS}#"), alert
        assert str(annotations["runbook_url"]).split("#")[1] in anchors, alert
        assert "for" in rule, alert
