"""The drift monitor's Prometheus gauges, in the exposition text and over HTTP."""

from __future__ import annotations

import math
import time

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from fmnist.monitoring.drift import DriftResult, ReferenceSummary, WindowInfo
from fmnist.monitoring.drift_tests import TestResult
from fmnist.monitoring.metrics import DriftMetrics
from helpers import closed_port


def _result(detected: bool) -> DriftResult:
    return DriftResult(
        drift_detected=detected,
        alpha=0.05,
        correction="Holm over 2 tests",
        tests=[
            TestResult(name="bbsd_ks", statistic=0.3, p_value=1e-9, threshold=0.025, fired=True),
            TestResult(name="mmd", statistic=0.01, p_value=0.2, threshold=0.05, fired=False),
            TestResult(name="photo_share", statistic=None, p_value=None, in_verdict=False),
        ],
        window=WindowInfo(size=1000),
        reference=ReferenceSummary(
            model_name="m", model_version=7, n=6000, embedding_kind="penultimate", embedding_note=""
        ),
    )


def _samples(text: str) -> dict[tuple[str, str], float]:
    return {
        (s.name, s.labels.get("test", "")): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_gauges_follow_the_last_check() -> None:
    metrics = DriftMetrics()
    metrics.update(_result(True), 1_700_000_000.0)
    samples = _samples(metrics.exposition().decode())
    assert samples[("fmnist_drift_detected", "")] == 1.0
    assert samples[("fmnist_drift_statistic", "bbsd_ks")] == pytest.approx(0.3)
    assert samples[("fmnist_drift_p_value", "mmd")] == pytest.approx(0.2)
    assert samples[("fmnist_drift_test_fired", "bbsd_ks")] == 1.0
    assert math.isnan(samples[("fmnist_drift_p_value", "photo_share")])
    assert samples[("fmnist_drift_window_size", "")] == 1000
    assert samples[("fmnist_drift_reference_version", "")] == 7
    metrics.update(_result(False), 1_700_000_300.0)
    samples = _samples(metrics.exposition().decode())
    assert samples[("fmnist_drift_detected", "")] == 0.0
    assert samples[("fmnist_drift_last_check_timestamp_seconds", "")] == 1_700_000_300.0


@pytest.mark.network
def test_gauges_are_served_over_http() -> None:
    metrics = DriftMetrics()
    metrics.update(_result(True), time.time())
    port = closed_port()
    server = metrics.serve(port)
    try:
        response = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5)
    finally:
        server.shutdown()
    assert response.status_code == 200
    assert _samples(response.text)[("fmnist_drift_detected", "")] == 1.0
