"""The alert rules: thresholds, minimum counts and severities come from the settings."""

from __future__ import annotations

from dataclasses import replace

import pytest

from fmnist.config import AlertSettings, Settings, load_settings
from fmnist.monitoring.alert_rules import Observations, build_rules


def _checks(obs: Observations, settings: AlertSettings | None = None) -> dict[str, bool | None]:
    return {rule.name: rule.check(obs).firing for rule in build_rules(settings or AlertSettings())}


HEALTHY = Observations(
    drift_detected=False,
    live_accuracy=0.93,
    labelled=500,
    requests=1000,
    error_rate=0.001,
    latency_p95_s=0.002,
    predictions=1000,
    unknown_rate=0.04,
)


def test_healthy_traffic_fires_nothing() -> None:
    assert _checks(HEALTHY) == {
        "drift_detected": False,
        "live_accuracy_low": False,
        "error_rate_high": False,
        "latency_p95_high": False,
        "unknown_rate_high": False,
    }


@pytest.mark.parametrize(
    ("change", "alert"),
    [
        ({"drift_detected": True}, "drift_detected"),
        ({"live_accuracy": 0.80}, "live_accuracy_low"),
        ({"error_rate": 0.06}, "error_rate_high"),
        ({"latency_p95_s": 0.25}, "latency_p95_high"),
        ({"unknown_rate": 0.35}, "unknown_rate_high"),
    ],
)
def test_each_condition_fires_its_alert_only(change: dict[str, object], alert: str) -> None:
    checks = _checks(replace(HEALTHY, **change))  # type: ignore[arg-type]
    assert [name for name, firing in checks.items() if firing] == [alert]


def test_thresholds_are_strict_and_at_the_default_levels() -> None:
    at_limit = Observations(
        live_accuracy=0.85, error_rate=0.05, latency_p95_s=0.1, unknown_rate=0.2
    )
    checks = _checks(at_limit)
    assert not any(checks[name] for name in checks if name != "drift_detected")


def test_missing_observations_and_thin_traffic_are_unknown() -> None:
    assert set(_checks(Observations()).values()) == {None}
    thin = Observations(
        live_accuracy=0.1,
        labelled=49,
        requests=99,
        error_rate=1.0,
        latency_p95_s=9.0,
        predictions=99,
        unknown_rate=1.0,
    )
    checks = _checks(thin)
    assert checks["live_accuracy_low"] is None
    assert checks["error_rate_high"] is None
    assert checks["latency_p95_high"] is None
    assert checks["unknown_rate_high"] is None
    nan = float("nan")
    assert set(_checks(Observations(error_rate=nan, live_accuracy=nan)).values()) == {None}
    assert Observations(error_rate=nan).as_dict()["error_rate"] is None
    # A rate whose count is not given is taken as it is.
    assert _checks(Observations(error_rate=0.5))["error_rate_high"] is True


def test_settings_change_thresholds_severities_minimums_and_enabled(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("FMNIST_ALERTS__ERROR_RATE__THRESHOLD", "0.5")
    monkeypatch.setenv("FMNIST_ALERTS__LATENCY_P95__SEVERITY", "critical")
    monkeypatch.setenv("FMNIST_ALERTS__UNKNOWN_RATE__ENABLED", "false")
    monkeypatch.setenv("FMNIST_ALERTS__MIN_REQUESTS", "10")
    settings = load_settings().settings.alerts
    assert settings.error_rate.severity == "critical"  # an override keeps the other defaults
    rules = {rule.name: rule for rule in build_rules(settings)}
    assert "unknown_rate_high" not in rules
    assert rules["latency_p95_high"].severity == "critical"
    obs = Observations(requests=20, error_rate=0.3)
    assert rules["error_rate_high"].check(obs).firing is False
    assert rules["error_rate_high"].check(Observations(requests=20, error_rate=0.6)).firing


def test_default_severities() -> None:
    severities = {rule.name: rule.severity for rule in build_rules(Settings().alerts)}
    assert severities == {
        "drift_detected": "warning",
        "live_accuracy_low": "critical",
        "error_rate_high": "critical",
        "latency_p95_high": "warning",
        "unknown_rate_high": "warning",
    }


def test_check_summary_names_value_and_limit() -> None:
    rule = next(r for r in build_rules(AlertSettings()) if r.name == "latency_p95_high")
    check = rule.check(Observations(latency_p95_s=0.25))
    assert (check.firing, check.value, check.threshold) == (True, 0.25, 0.1)
    assert check.summary == "p95 latency 0.25 s above limit 0.1 s"
