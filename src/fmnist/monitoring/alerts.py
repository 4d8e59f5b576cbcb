"""Alerting: evaluate the rules on a snapshot of observations, then deliver what is due.

The monitor calls, on each check::

    deliveries = evaluate_alerts(observations, settings.alerts, state_path)
    deliver(deliveries, settings.alerts, state_path)

with ``state_path = default_state_path(settings.home)``. Per alert (deduplication key
``<source>:<alert>``): the first firing check delivers a ``firing`` message; while the alert keeps
firing it is delivered again at most once per ``cooldown_s`` (``repeat: true``); the first check
where the condition no longer holds delivers ``resolved`` once. A check without enough data
changes nothing. The state is saved by :func:`evaluate_alerts` (so a restarted monitor does not
re-send); a webhook that still fails after its retries is marked as owed by :func:`deliver` and
sent again on the next check that sees the same state.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import httpx

from fmnist.monitoring.alert_delivery import Delivery, DeliveryReport, log_delivery, send_webhook
from fmnist.monitoring.alert_rules import Check, Observations, build_rules
from fmnist.monitoring.alert_state import AlertEntry, AlertState, default_state_path, locked_state

if TYPE_CHECKING:
    from fmnist.config import AlertSettings

__all__ = [
    "Delivery",
    "DeliveryReport",
    "Observations",
    "default_state_path",
    "deliver",
    "evaluate_alerts",
]


def dedup_key(source: str, alert: str) -> str:
    """The deduplication key of ``alert`` raised by ``source``."""
    return f"{source}:{alert}"


def _elapsed_s(since: str | None, now: datetime) -> float:
    if since is None:
        return float("inf")
    return (now - datetime.fromisoformat(since)).total_seconds()


def _transition(
    entry: AlertEntry | None, check: Check, now: datetime, cooldown_s: float
) -> tuple[AlertEntry | None, AlertState | None, bool]:
    """The new entry, the state to deliver (or ``None``) and whether it is a repeat."""
    stamp = now.isoformat()
    if check.firing is None:
        return entry, None, False
    if check.firing:
        if entry is None or entry.state == "resolved":
            return AlertEntry("", "firing", since=stamp, last_sent=stamp), "firing", False
        if entry.pending or _elapsed_s(entry.last_sent, now) >= cooldown_s:
            repeat = not entry.pending or entry.last_sent != entry.since
            entry.last_sent, entry.pending = stamp, False
            return entry, "firing", repeat
        return entry, None, False
    if entry is not None and (entry.state == "firing" or entry.pending):
        if entry.state == "firing":
            entry.state, entry.since = "resolved", stamp
        entry.last_sent, entry.pending = stamp, False
        return entry, "resolved", False
    return entry, None, False


def evaluate_alerts(
    observations: Observations,
    settings: AlertSettings,
    state_path: Path,
    *,
    now: datetime | None = None,
) -> list[Delivery]:
    """Check every enabled rule, save the new state and return what is due for delivery."""
    moment = (now or datetime.now(UTC)).astimezone(UTC)
    snapshot = observations.as_dict()
    deliveries: list[Delivery] = []
    with locked_state(state_path) as entries:
        for rule in build_rules(settings):
            check = rule.check(observations)
            key = dedup_key(settings.source, rule.name)
            entry, state, repeat = _transition(entries.get(key), check, moment, settings.cooldown_s)
            if entry is not None:
                entry.alert = rule.name
                entries[key] = entry
            if state is None:
                continue
            deliveries.append(
                Delivery(
                    alert=rule.name,
                    severity=rule.severity,
                    state=state,
                    summary=check.summary,
                    description=rule.description,
                    dedup_key=key,
                    source=settings.source,
                    timestamp=moment.isoformat(),
                    value=check.value,
                    threshold=check.threshold,
                    observations=snapshot,
                    runbook_url=rule.runbook_url,
                    repeat=repeat,
                )
            )
    return deliveries


def deliver(
    deliveries: Sequence[Delivery],
    settings: AlertSettings,
    state_path: Path,
    *,
    client: httpx.Client | None = None,
) -> list[DeliveryReport]:
    """Log every delivery and POST it to the webhook when one is configured.

    A webhook delivery that fails after its retries is marked as owed in ``state_path``, so the
    next :func:`evaluate_alerts` that sees the same state returns it again.
    """
    reports: list[DeliveryReport] = []
    for delivery in deliveries:
        reports.append(log_delivery(delivery))
        if settings.webhook_url:
            reports.append(send_webhook(delivery, settings, client=client))
    failed = [report.delivery for report in reports if not report.ok]
    if failed:
        with locked_state(state_path) as entries:
            for delivery in failed:
                entry = entries.get(delivery.dedup_key)
                if entry is not None and entry.state == delivery.state:
                    entry.pending = True
    return reports
