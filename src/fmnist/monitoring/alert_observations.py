"""Observations for the alert rules from the API's Prometheus ``/metrics`` text.

The counters are totals since the API started; given the text of the previous scrape, the rates
are computed over the interval between the two (what PromQL's ``increase`` does, counter resets
included), so an alert reflects recent traffic and resolves when it recovers. The routes and the
quantile follow ``monitoring/prometheus/rules/fmnist-alerts.yml``.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass, field

from prometheus_client.parser import text_string_to_metric_families

from fmnist.monitoring.alert_rules import Observations

API_ROUTE_PREFIX = "/v1/"
"""Requests counted in the error rate: the API's routes (not /metrics, /healthz, the UI)."""
LATENCY_ROUTES = frozenset({"/v1/predict"})
"""Routes whose latency the p95 rule watches (single predictions, the latency contract)."""
UNKNOWN_LABEL = "unknown"


@dataclass
class _Totals:
    requests: float = 0.0
    errors: float = 0.0
    buckets: dict[float, float] = field(default_factory=lambda: defaultdict(float))
    predictions: float = 0.0
    unknown: float = 0.0
    model_version: int | None = None
    live_accuracy: dict[str, float] = field(default_factory=dict)


def _totals(text: str) -> _Totals:
    totals = _Totals()
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = sample.labels
            route = labels.get("route", "")
            if sample.name == "fmnist_http_requests_total" and route.startswith(API_ROUTE_PREFIX):
                totals.requests += sample.value
                if labels.get("status", "").startswith("5"):
                    totals.errors += sample.value
            elif (
                sample.name == "fmnist_http_request_duration_seconds_bucket"
                and route in LATENCY_ROUTES
            ):
                totals.buckets[float(labels["le"])] += sample.value
            elif sample.name == "fmnist_predictions_total":
                totals.predictions += sample.value
                if labels.get("label") == UNKNOWN_LABEL:
                    totals.unknown += sample.value
            elif sample.name == "fmnist_model_version":
                totals.model_version = int(sample.value)
            elif sample.name == "fmnist_live_accuracy":
                totals.live_accuracy[labels.get("model_version", "")] = sample.value
    return totals


def _increase(now: float, before: float | None) -> float:
    """Like PromQL ``increase``: a counter that went down was reset and counts from zero."""
    if before is None or now < before:
        return now
    return now - before


def histogram_quantile(q: float, buckets: dict[float, float]) -> float | None:
    """The ``q`` quantile of cumulative ``buckets`` (upper bound -> count), as Prometheus does.

    Linear interpolation inside the bucket holding the rank (the first bucket starts at 0); a
    rank in the ``+Inf`` bucket answers the largest finite bound. ``None`` without observations.
    """
    bounds = sorted(buckets)
    if not bounds or not math.isinf(bounds[-1]):
        return None
    total = buckets[bounds[-1]]
    if total <= 0:
        return None
    rank = q * total
    lower, below = 0.0, 0.0
    for bound in bounds:
        count = buckets[bound]
        if count >= rank:
            if math.isinf(bound):
                return lower if len(bounds) > 1 else None
            if count == below:
                return bound
            return lower + (bound - lower) * (rank - below) / (count - below)
        lower, below = bound, count
    return None


def observations_from_metrics(text: str, previous: str | None = None) -> Observations:
    """Error rate, p95 latency and unknown rate from ``/metrics`` text (since ``previous``).

    ``requests`` and ``predictions`` carry the counts behind the rates (the rules' minimums);
    ``live_accuracy`` is the served version's ``fmnist_live_accuracy`` when the API exports it.
    ``drift_detected`` stays ``None``: the monitor sets it from its own verdict.
    """
    now = _totals(text)
    before = _totals(previous) if previous is not None else None
    requests = _increase(now.requests, before.requests if before else None)
    errors = _increase(now.errors, before.errors if before else None)
    predictions = _increase(now.predictions, before.predictions if before else None)
    unknown = _increase(now.unknown, before.unknown if before else None)
    reset = before is not None and any(
        count < before.buckets.get(bound, 0.0) for bound, count in now.buckets.items()
    )
    buckets = {
        bound: _increase(count, None if before is None or reset else before.buckets.get(bound))
        for bound, count in now.buckets.items()
    }
    version = now.model_version
    accuracy = now.live_accuracy.get(str(version)) if version is not None else None
    return Observations(
        live_accuracy=accuracy,
        requests=int(requests),
        error_rate=errors / requests if requests > 0 else None,
        latency_p95_s=histogram_quantile(0.95, buckets),
        predictions=int(predictions),
        unknown_rate=unknown / predictions if predictions > 0 else None,
        model_version=version,
    )
