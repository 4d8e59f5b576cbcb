"""Alert rules: pure checks of one snapshot of observations against the configured thresholds.

A rule answers ``True`` (the condition holds: firing), ``False`` (it does not: resolved) or
``None`` (not enough data to tell, which changes nothing). The stateful part (deduplication,
cooldown, resolution) lives in :mod:`fmnist.monitoring.alerts`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from fmnist.config import AlertSettings

Severity = Literal["critical", "warning", "info"]
SEVERITIES: tuple[Severity, ...] = ("critical", "warning", "info")
RUNBOOKS = "docs/runbooks.md"
RUNBOOK_ANCHORS = {
    "drift_detected": "drift-detected",
    "live_accuracy_low": "live-accuracy-low",
    "error_rate_high": "high-error-rate",
    "latency_p95_high": "latency-p95-high",
    "unknown_rate_high": "unknown-rate-high",
}
"""Section of :data:`RUNBOOKS` per rule (the Prometheus rules link the same sections)."""


@dataclass(frozen=True)
class Observations:
    """What the monitor saw in one check; ``None`` means "not observed".

    ``requests`` (API requests behind ``error_rate`` and ``latency_p95_s``), ``predictions``
    (behind ``unknown_rate``) and ``labelled`` (feedback behind ``live_accuracy``) gate the rates:
    below the configured minimum a rate is treated as unknown. A count left ``None`` means the
    caller vouches for the rate.
    """

    drift_detected: bool | None = None
    live_accuracy: float | None = None
    labelled: int | None = None
    requests: int | None = None
    error_rate: float | None = None
    latency_p95_s: float | None = None
    predictions: int | None = None
    unknown_rate: float | None = None
    model_version: int | None = None
    details: Mapping[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready copy (what the webhook and the log carry); NaN becomes ``None``."""
        data = {key: None if _nan(value) else value for key, value in asdict(self).items()}
        data["details"] = dict(self.details)
        return data


@dataclass(frozen=True)
class Check:
    """The outcome of one rule: ``firing`` is ``True``, ``False`` or ``None`` (unknown)."""

    firing: bool | None
    value: float | None
    threshold: float | None
    summary: str


@dataclass(frozen=True)
class AlertRule:
    """One named condition with its severity."""

    name: str
    severity: Severity
    description: str
    check: Callable[[Observations], Check]

    @property
    def runbook_url(self) -> str:
        """The rule's section of the runbooks (a repository-relative link)."""
        return f"{RUNBOOKS}#{RUNBOOK_ANCHORS[self.name]}"


def _nan(value: object) -> bool:
    return isinstance(value, float) and math.isnan(value)


def _enough(count: int | None, minimum: int) -> bool:
    return count is None or count >= minimum


def _drift(obs: Observations) -> Check:
    detected = obs.drift_detected
    if detected is None:
        return Check(None, None, None, "no drift verdict")
    value = 1.0 if detected else 0.0
    summary = "drift detected in recent traffic" if detected else "no drift detected"
    return Check(detected, value, None, summary)


def _above(
    label: str, value: float | None, threshold: float, enough: bool, unit: str = ""
) -> Check:
    if value is None or _nan(value) or not enough:
        return Check(None, value, threshold, f"{label}: not enough data")
    firing = value > threshold
    relation = "above" if firing else "within"
    return Check(
        firing, value, threshold, f"{label} {value:.4g}{unit} {relation} limit {threshold:g}{unit}"
    )


def build_rules(settings: AlertSettings) -> list[AlertRule]:
    """The enabled rules with the thresholds, minimum counts and severities of ``settings``."""
    s = settings
    rules: list[AlertRule] = []
    if s.drift.enabled:
        rules.append(
            AlertRule("drift_detected", s.drift.severity, "label-free drift detected", _drift)
        )
    if s.live_accuracy.enabled:
        floor = s.live_accuracy.threshold

        def live_accuracy(obs: Observations) -> Check:
            value = obs.live_accuracy
            if value is None or _nan(value) or not _enough(obs.labelled, s.min_labelled):
                return Check(None, value, floor, "live accuracy: not enough feedback")
            firing = value < floor
            relation = "below" if firing else "at or above"
            return Check(
                firing, value, floor, f"live accuracy {value:.4g} {relation} floor {floor:g}"
            )

        rules.append(
            AlertRule(
                "live_accuracy_low",
                s.live_accuracy.severity,
                "accuracy on labelled traffic below the floor",
                live_accuracy,
            )
        )
    if s.error_rate.enabled:
        limit = s.error_rate.threshold
        rules.append(
            AlertRule(
                "error_rate_high",
                s.error_rate.severity,
                "share of 5xx answers above the limit",
                lambda o: _above(
                    "5xx rate", o.error_rate, limit, _enough(o.requests, s.min_requests)
                ),
            )
        )
    if s.latency_p95.enabled:
        p95_limit = s.latency_p95.threshold
        rules.append(
            AlertRule(
                "latency_p95_high",
                s.latency_p95.severity,
                "p95 prediction latency above the limit",
                lambda o: _above(
                    "p95 latency",
                    o.latency_p95_s,
                    p95_limit,
                    _enough(o.requests, s.min_requests),
                    " s",
                ),
            )
        )
    if s.unknown_rate.enabled:
        unknown_limit = s.unknown_rate.threshold
        rules.append(
            AlertRule(
                "unknown_rate_high",
                s.unknown_rate.severity,
                "share of 'unknown' answers above the limit",
                lambda o: _above(
                    "unknown rate",
                    o.unknown_rate,
                    unknown_limit,
                    _enough(o.predictions, s.min_predictions),
                ),
            )
        )
    return rules
