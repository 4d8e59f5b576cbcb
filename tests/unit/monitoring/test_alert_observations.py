"""Observations from the API's real /metrics exposition (ServingMetrics)."""

from __future__ import annotations

import pytest

from fmnist.monitoring.alert_observations import histogram_quantile, observations_from_metrics
from fmnist.serving.metrics import ServingMetrics


def _text(metrics: ServingMetrics) -> str:
    return metrics.render()[0].decode()


def _traffic(metrics: ServingMetrics, ok: int, errors: int, seconds: float) -> None:
    for _ in range(ok):
        metrics.observe_request("/v1/predict", "POST", 200, seconds)
    for _ in range(errors):
        metrics.observe_request("/v1/predict", "POST", 500, seconds)


def test_rates_over_the_whole_life_without_a_previous_scrape() -> None:
    metrics = ServingMetrics()
    metrics.set_model("fmnist-classifier", 3)
    _traffic(metrics, ok=90, errors=10, seconds=0.0015)
    for _ in range(50):  # not API routes: ignored by the error rate
        metrics.observe_request("/metrics", "GET", 500, 0.001)
        metrics.observe_request("/healthz", "GET", 200, 0.001)
    metrics.observe_request("/v1/explain", "POST", 200, 5.0)  # not the latency route
    metrics.observe_predictions(3, ["unknown"] * 25 + ["Trouser"] * 75, [0.3] * 25 + [0.9] * 75)
    obs = observations_from_metrics(_text(metrics))
    assert obs.requests == 101
    assert obs.error_rate == pytest.approx(10 / 101)
    # 100 requests in the (0.001, 0.002] bucket: p95 interpolates to 0.001 + 0.001 * 0.95
    assert obs.latency_p95_s == pytest.approx(0.00195)
    assert (obs.predictions, obs.unknown_rate) == (100, 0.25)
    assert obs.model_version == 3
    assert obs.drift_detected is None and obs.live_accuracy is None


def test_rates_between_two_scrapes() -> None:
    metrics = ServingMetrics()
    _traffic(metrics, ok=1000, errors=0, seconds=0.001)
    before = _text(metrics)
    _traffic(metrics, ok=80, errors=20, seconds=0.2)
    obs = observations_from_metrics(_text(metrics), previous=before)
    assert (obs.requests, obs.error_rate) == (100, 0.2)
    assert obs.latency_p95_s == pytest.approx(0.1 + 0.15 * 0.95)  # (0.1, 0.25] bucket
    # Nothing new: no rate at all rather than a misleading zero.
    quiet = observations_from_metrics(_text(metrics), previous=_text(metrics))
    assert (quiet.requests, quiet.error_rate, quiet.latency_p95_s) == (0, None, None)
    assert quiet.unknown_rate is None


def test_a_restarted_api_counts_from_zero() -> None:
    old = ServingMetrics()
    _traffic(old, ok=1000, errors=500, seconds=0.5)
    restarted = ServingMetrics()
    _traffic(restarted, ok=10, errors=0, seconds=0.001)
    obs = observations_from_metrics(_text(restarted), previous=_text(old))
    assert (obs.requests, obs.error_rate) == (10, 0.0)
    assert obs.latency_p95_s is not None and obs.latency_p95_s <= 0.001


def test_live_accuracy_of_the_served_version_is_read_when_exported() -> None:
    text = (
        "# TYPE fmnist_model_version gauge\n"
        'fmnist_model_version{model="fmnist-classifier"} 4\n'
        "# TYPE fmnist_live_accuracy gauge\n"
        'fmnist_live_accuracy{model_version="3"} 0.95\n'
        'fmnist_live_accuracy{model_version="4"} 0.81\n'
    )
    assert observations_from_metrics(text).live_accuracy == 0.81


def test_histogram_quantile_matches_prometheus_rules() -> None:
    inf = float("inf")
    assert histogram_quantile(0.5, {0.1: 0, 1.0: 10, inf: 10}) == pytest.approx(0.55)
    assert histogram_quantile(0.5, {0.1: 10, inf: 10}) == pytest.approx(0.05)  # from zero
    assert histogram_quantile(0.95, {0.1: 0, 1.0: 0, inf: 10}) == 1.0  # +Inf: largest bound
    assert histogram_quantile(0.95, {0.1: 0, inf: 0}) is None
    assert histogram_quantile(0.95, {}) is None
