"""Stateful alerting: deduplication, cooldown, resolution, owed deliveries, restarts."""

from __future__ import annotations

import json
import logging
import socket
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from fmnist.config import AlertSettings
from fmnist.monitoring.alert_state import default_state_path, read_state
from fmnist.monitoring.alerts import Delivery, Observations, deliver, evaluate_alerts

T0 = datetime(2025, 1, 1, 12, 0, tzinfo=UTC)
FAILING = Observations(requests=1000, error_rate=0.2)
OK = Observations(requests=1000, error_rate=0.0)
THIN = Observations(requests=3, error_rate=1.0)


def _at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


@pytest.fixture
def state(tmp_path: Path) -> Path:
    return default_state_path(tmp_path)


def _run(obs: Observations, state: Path, minutes: float, **settings: object) -> list[Delivery]:
    return evaluate_alerts(obs, AlertSettings(cooldown_s=3600, **settings), state, now=_at(minutes))


def _summary(deliveries: list[Delivery]) -> list[tuple[str, str, bool]]:
    return [(d.alert, d.state, d.repeat) for d in deliveries]


def test_state_lives_under_home(tmp_path: Path) -> None:
    assert default_state_path(tmp_path) == tmp_path / "monitoring" / "alerts" / "state.json"


def test_firing_is_delivered_once_per_cooldown_and_resolution_once(state: Path) -> None:
    assert _summary(_run(FAILING, state, 0)) == [("error_rate_high", "firing", False)]
    assert _run(FAILING, state, 1) == []  # deduplicated
    assert _run(FAILING, state, 59) == []
    assert _summary(_run(FAILING, state, 60)) == [("error_rate_high", "firing", True)]
    assert _run(FAILING, state, 61) == []
    assert _summary(_run(OK, state, 70)) == [("error_rate_high", "resolved", False)]
    assert _run(OK, state, 71) == []
    assert _run(OK, state, 500) == []
    # A new incident after the resolution is delivered at once.
    assert _summary(_run(FAILING, state, 501)) == [("error_rate_high", "firing", False)]


def test_unknown_checks_change_nothing(state: Path) -> None:
    _run(FAILING, state, 0)
    assert _run(THIN, state, 5) == []
    assert _run(Observations(), state, 6) == []
    assert read_state(state)["fmnist:error_rate_high"].state == "firing"
    assert _summary(_run(OK, state, 7)) == [("error_rate_high", "resolved", False)]
    assert _run(THIN, state, 8) == []  # thin traffic does not re-open it either


def test_restart_does_not_resend(state: Path) -> None:
    _run(FAILING, state, 0)
    before = state.read_text()
    # A new process: nothing in memory, only the file.
    assert _run(FAILING, state, 10) == []
    assert state.read_text() == before
    entry = json.loads(before)["alerts"]["fmnist:error_rate_high"]
    assert entry["state"] == "firing" and entry["since"] == _at(0).isoformat()


def test_delivery_carries_the_contract(state: Path) -> None:
    (d,) = _run(FAILING, state, 0, source="prod-eu")
    assert d.dedup_key == "prod-eu:error_rate_high"
    assert (d.severity, d.value, d.threshold) == ("critical", 0.2, 0.05)
    assert d.runbook_url == "docs/runbooks.md#high-error-rate"
    payload = json.loads(d.body())
    assert payload["observations"]["error_rate"] == 0.2
    assert payload["timestamp"] == _at(0).isoformat()
    assert payload["state"] == "firing" and payload["summary"].startswith("5xx rate 0.2 above")
    assert d.unix_time == int(_at(0).timestamp())


def test_several_alerts_are_independent(state: Path) -> None:
    both = Observations(requests=1000, error_rate=0.2, latency_p95_s=0.5, drift_detected=True)
    assert {d.alert for d in _run(both, state, 0)} == {
        "error_rate_high",
        "latency_p95_high",
        "drift_detected",
    }
    latency_fixed = Observations(
        requests=1000, error_rate=0.2, latency_p95_s=0.01, drift_detected=True
    )
    assert _summary(_run(latency_fixed, state, 1)) == [("latency_p95_high", "resolved", False)]


def test_log_delivery_is_one_structured_line(state: Path, caplog: pytest.LogCaptureFixture) -> None:
    deliveries = _run(FAILING, state, 0)
    with caplog.at_level(logging.INFO, logger="fmnist.alerts"):
        reports = deliver(deliveries, AlertSettings(), state)
    assert [(r.channel, r.ok) for r in reports] == [("log", True)]
    (record,) = caplog.records
    assert record.levelno == logging.ERROR  # critical
    assert record.getMessage().startswith(
        'alert alert="error_rate_high" state="firing" severity="critical" '
        'dedup_key="fmnist:error_rate_high" value=0.2 threshold=0.05'
    )
    assert record.alert["dedup_key"] == "fmnist:error_rate_high"  # type: ignore[attr-defined]


def test_failed_webhook_is_owed_and_sent_on_the_next_check(state: Path) -> None:
    with socket.socket() as probe:  # a port nothing listens on: every attempt is refused
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    settings = AlertSettings(
        cooldown_s=3600,
        webhook_url=f"http://127.0.0.1:{port}/hook",
        webhook_retries=1,
        webhook_backoff_s=0.0,
    )
    first = evaluate_alerts(FAILING, settings, state, now=_at(0))
    reports = deliver(first, settings, state)
    webhook = [r for r in reports if r.channel == "webhook"]
    assert [(r.ok, r.attempts) for r in webhook] == [(False, 2)]
    assert "ConnectError" in (webhook[0].error or "")
    assert read_state(state)["fmnist:error_rate_high"].pending
    # Within the cooldown, the owed message comes again (not as a repeat: it was never received).
    again = evaluate_alerts(FAILING, settings, state, now=_at(1))
    assert _summary(again) == [("error_rate_high", "firing", False)]
    assert not read_state(state)["fmnist:error_rate_high"].pending
    assert evaluate_alerts(FAILING, settings, state, now=_at(2)) == []


def test_corrupt_state_is_set_aside(state: Path, caplog: pytest.LogCaptureFixture) -> None:
    state.parent.mkdir(parents=True)
    state.write_text("{not json")
    with caplog.at_level(logging.ERROR):
        assert _summary(_run(FAILING, state, 0)) == [("error_rate_high", "firing", False)]
    assert any(p.name.startswith("state.json.corrupt-") for p in state.parent.iterdir())
    assert "unreadable" in caplog.text
