"""Delivering an alert: a structured log line, and a signed webhook retried with backoff.

Webhook contract (what a receiver sees): ``POST`` of a JSON object (see
:meth:`Delivery.payload`) with ``Content-Type: application/json``,
``X-Fmnist-Timestamp`` (Unix seconds of the alert) and, when a secret is configured,
``X-Fmnist-Signature: sha256=<hex>``, the HMAC-SHA256 of the raw body with the secret. Check it
with :func:`verify_signature`; the signed body carries ``timestamp`` against replays. The same
alert is sent with the same body on every retry, and ``dedup_key`` names the incident.
Connection errors, timeouts and 5xx answers are retried with exponential backoff; other answers
(4xx: the receiver refuses) are not.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import httpx
from pydantic import SecretStr
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential,
)

from fmnist.monitoring.alert_rules import Severity
from fmnist.monitoring.alert_state import AlertState

if TYPE_CHECKING:
    from fmnist.config import AlertSettings

logger = logging.getLogger("fmnist.alerts")

SIGNATURE_HEADER = "X-Fmnist-Signature"
TIMESTAMP_HEADER = "X-Fmnist-Timestamp"
SIGNATURE_SCHEME = "sha256"
MAX_BACKOFF_S = 30.0
_LOG_LEVELS = {"critical": logging.ERROR, "warning": logging.WARNING, "info": logging.INFO}


def _secret_bytes(secret: SecretStr | str) -> bytes:
    value = secret.get_secret_value() if isinstance(secret, SecretStr) else secret
    return value.encode("utf-8")


def sign(body: bytes, secret: SecretStr | str) -> str:
    """The ``X-Fmnist-Signature`` value of ``body``: ``sha256=<hex HMAC-SHA256>``."""
    digest = hmac.new(_secret_bytes(secret), body, hashlib.sha256).hexdigest()
    return f"{SIGNATURE_SCHEME}={digest}"


def verify_signature(
    body: bytes,
    header: str | None,
    secret: SecretStr | str,
    *,
    max_age_s: float | None = None,
    now: datetime | None = None,
) -> bool:
    """Whether ``header`` is the signature of the raw ``body`` under ``secret`` (constant time).

    With ``max_age_s`` the body's signed ``timestamp`` must also be at most that old (replays).
    """
    if not header or not hmac.compare_digest(header.strip(), sign(body, secret)):
        return False
    if max_age_s is None:
        return True
    try:
        sent = datetime.fromisoformat(json.loads(body)["timestamp"])
    except (ValueError, KeyError, TypeError):
        return False
    age = ((now or datetime.now(UTC)) - sent).total_seconds()
    return -max_age_s <= age <= max_age_s


@dataclass(frozen=True)
class Delivery:
    """One message to deliver: an alert starting, still firing (``repeat``) or resolved."""

    alert: str
    severity: Severity
    state: AlertState
    summary: str
    description: str
    dedup_key: str
    source: str
    timestamp: str  # ISO 8601, UTC
    value: float | None
    threshold: float | None
    observations: dict[str, Any]
    runbook_url: str = ""
    repeat: bool = False

    @property
    def unix_time(self) -> int:
        """``timestamp`` in whole Unix seconds (the ``X-Fmnist-Timestamp`` header)."""
        return int(datetime.fromisoformat(self.timestamp).timestamp())

    def payload(self) -> dict[str, Any]:
        """The JSON object the webhook receives."""
        return {
            "alert": self.alert,
            "severity": self.severity,
            "state": self.state,
            "summary": self.summary,
            "description": self.description,
            "dedup_key": self.dedup_key,
            "source": self.source,
            "timestamp": self.timestamp,
            "value": self.value,
            "threshold": self.threshold,
            "repeat": self.repeat,
            "runbook_url": self.runbook_url,
            "observations": self.observations,
        }

    def body(self) -> bytes:
        """The exact bytes sent and signed (compact, sorted keys)."""
        return json.dumps(self.payload(), sort_keys=True, separators=(",", ":")).encode("utf-8")


@dataclass(frozen=True)
class DeliveryReport:
    """How one delivery went on one channel (``log`` or ``webhook``)."""

    delivery: Delivery
    channel: str
    ok: bool
    attempts: int = 1
    status: int | None = None
    error: str | None = None


def log_delivery(delivery: Delivery) -> DeliveryReport:
    """Write one structured line (``key=value`` pairs, JSON-quoted) to the ``fmnist.alerts`` log.

    Firing alerts log at ERROR (critical), WARNING (warning) or INFO (info); resolutions at INFO.
    The fields are also attached to the record as ``record.alert`` for JSON log handlers.
    """
    payload = delivery.payload()
    level = _LOG_LEVELS[delivery.severity] if delivery.state == "firing" else logging.INFO
    fields = ("alert", "state", "severity", "dedup_key", "value", "threshold", "summary")
    line = " ".join(f"{name}={json.dumps(payload[name])}" for name in fields)
    logger.log(level, "alert %s", line, extra={"alert": payload})
    return DeliveryReport(delivery, "log", ok=True)


def _retryable(exc: BaseException) -> bool:
    if isinstance(exc, httpx.HTTPStatusError):
        return exc.response.status_code >= 500
    return isinstance(exc, httpx.TransportError)


def _log_retry(state: RetryCallState) -> None:
    exc = state.outcome.exception() if state.outcome else None
    wait = state.next_action.sleep if state.next_action else 0.0
    logger.warning(
        "alert webhook attempt %d failed (%s); retrying in %.2fs", state.attempt_number, exc, wait
    )


def send_webhook(
    delivery: Delivery,
    settings: AlertSettings,
    *,
    client: httpx.Client | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> DeliveryReport:
    """POST ``delivery`` to ``settings.webhook_url``; retried as the module doc says."""
    url = settings.webhook_url
    if not url:
        raise ValueError("alerts.webhook_url is not set")
    body = delivery.body()
    headers = {"Content-Type": "application/json", TIMESTAMP_HEADER: str(delivery.unix_time)}
    if settings.webhook_secret is not None:
        headers[SIGNATURE_HEADER] = sign(body, settings.webhook_secret)
    retrying = Retrying(
        stop=stop_after_attempt(settings.webhook_retries + 1),
        wait=wait_exponential(multiplier=settings.webhook_backoff_s, max=MAX_BACKOFF_S),
        retry=retry_if_exception(_retryable),
        before_sleep=_log_retry,
        sleep=sleep,
        reraise=True,
    )
    owned = client is None
    http = client or httpx.Client()
    attempts = 0
    try:
        for attempt in retrying:
            with attempt:
                attempts += 1
                response = http.post(
                    url, content=body, headers=headers, timeout=settings.webhook_timeout_s
                )
                response.raise_for_status()
        return DeliveryReport(
            delivery, "webhook", ok=True, attempts=attempts, status=response.status_code
        )
    except httpx.HTTPStatusError as exc:
        status = exc.response.status_code
        logger.error(
            "alert webhook refused %s: HTTP %d after %d attempt(s)",
            delivery.dedup_key,
            status,
            attempts,
        )
        return DeliveryReport(
            delivery, "webhook", ok=False, attempts=attempts, status=status, error=f"HTTP {status}"
        )
    except httpx.HTTPError as exc:
        logger.error(
            "alert webhook failed %s after %d attempt(s): %s", delivery.dedup_key, attempts, exc
        )
        return DeliveryReport(
            delivery, "webhook", ok=False, attempts=attempts, error=f"{type(exc).__name__}: {exc}"
        )
    finally:
        if owned:
            http.close()
