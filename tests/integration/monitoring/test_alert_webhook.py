"""The alert webhook against a real HTTP server on 127.0.0.1: retries, signature, body."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from pydantic import SecretStr

from fmnist.config import AlertSettings
from fmnist.monitoring.alert_delivery import send_webhook, verify_signature
from fmnist.monitoring.alert_state import default_state_path, read_state
from fmnist.monitoring.alerts import Delivery, Observations, deliver, evaluate_alerts

pytestmark = pytest.mark.network
SECRET = "webhook-secret"
NOW = datetime(2025, 1, 1, 12, 0, tzinfo=UTC)


@dataclass
class Receiver:
    """Answers the scripted statuses first, then 200; remembers every request."""

    url: str
    statuses: list[int] = field(default_factory=list)
    received: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        receiver = self.server.receiver
        with receiver.lock:
            receiver.received.append((dict(self.headers.items()), body))
            status = receiver.statuses.pop(0) if receiver.statuses else 200
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        """Keep the test output quiet."""


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    receiver: Receiver


@pytest.fixture
def receiver(monkeypatch: pytest.MonkeyPatch) -> Iterator[Receiver]:
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    server = _Server(("127.0.0.1", 0), _Handler)
    server.receiver = Receiver(f"http://127.0.0.1:{server.server_address[1]}/alerts")
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield server.receiver
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def _settings(receiver: Receiver, **extra: object) -> AlertSettings:
    values: dict[str, object] = {
        "webhook_url": receiver.url,
        "webhook_secret": SecretStr(SECRET),
        "webhook_retries": 3,
        "webhook_backoff_s": 0.01,
        "webhook_timeout_s": 5.0,
        **extra,
    }
    return AlertSettings(**values)


def _firing(settings: AlertSettings, state: Path) -> list[Delivery]:
    obs = Observations(requests=500, error_rate=0.3, model_version=3)
    return evaluate_alerts(obs, settings, state, now=NOW)


def test_503_twice_then_accepted(receiver: Receiver, tmp_path: Path) -> None:
    receiver.statuses = [503, 503]
    settings = _settings(receiver)
    state = default_state_path(tmp_path)
    deliveries = _firing(settings, state)
    reports = deliver(deliveries, settings, state)
    (webhook,) = [r for r in reports if r.channel == "webhook"]
    assert (webhook.ok, webhook.attempts, webhook.status) == (True, 3, 200)
    assert len(receiver.received) == 3
    bodies = {body for _, body in receiver.received}
    assert len(bodies) == 1  # the same bytes on every retry
    headers, body = receiver.received[-1]
    assert headers["Content-Type"] == "application/json"
    assert headers["X-Fmnist-Timestamp"] == str(int(NOW.timestamp()))
    assert headers["X-Fmnist-Signature"].startswith("sha256=")
    assert verify_signature(body, headers["X-Fmnist-Signature"], SECRET)
    assert not verify_signature(body, headers["X-Fmnist-Signature"], "wrong-secret")
    payload = json.loads(body)
    assert payload["alert"] == "error_rate_high"
    assert payload["severity"] == "critical"
    assert payload["state"] == "firing"
    assert payload["dedup_key"] == "fmnist:error_rate_high"
    assert payload["timestamp"] == NOW.isoformat()
    assert payload["summary"] == "5xx rate 0.3 above limit 0.05"
    assert payload["observations"]["error_rate"] == 0.3
    assert payload["observations"]["model_version"] == 3
    assert not read_state(state)["fmnist:error_rate_high"].pending


def test_4xx_is_not_retried_and_is_owed(receiver: Receiver, tmp_path: Path) -> None:
    receiver.statuses = [400]
    settings = _settings(receiver)
    state = default_state_path(tmp_path)
    reports = deliver(_firing(settings, state), settings, state)
    (webhook,) = [r for r in reports if r.channel == "webhook"]
    assert (webhook.ok, webhook.attempts, webhook.status) == (False, 1, 400)
    assert len(receiver.received) == 1
    assert read_state(state)["fmnist:error_rate_high"].pending


def test_5xx_until_the_retries_run_out(receiver: Receiver, tmp_path: Path) -> None:
    receiver.statuses = [500] * 10
    settings = _settings(receiver, webhook_retries=2)
    state = default_state_path(tmp_path)
    (delivery,) = _firing(settings, state)
    waits: list[float] = []
    report = send_webhook(
        delivery, _settings(receiver, webhook_retries=2, webhook_backoff_s=0.5), sleep=waits.append
    )
    assert (report.ok, report.attempts, report.status) == (False, 3, 500)
    assert waits == [0.5, 1.0]  # exponential backoff
    assert len(receiver.received) == 3


def test_resolution_is_delivered_once(receiver: Receiver, tmp_path: Path) -> None:
    settings = _settings(receiver)
    state = default_state_path(tmp_path)
    deliver(_firing(settings, state), settings, state)
    healthy = Observations(requests=500, error_rate=0.0)
    for minute in (1, 2, 3):
        moment = NOW.replace(minute=minute)
        deliver(evaluate_alerts(healthy, settings, state, now=moment), settings, state)
    states = [json.loads(body)["state"] for _, body in receiver.received]
    assert states == ["firing", "resolved"]


def test_unsigned_without_a_secret(receiver: Receiver, tmp_path: Path) -> None:
    settings = _settings(receiver, webhook_secret=None)
    state = default_state_path(tmp_path)
    deliver(_firing(settings, state), settings, state)
    headers, _ = receiver.received[0]
    assert "X-Fmnist-Signature" not in headers
