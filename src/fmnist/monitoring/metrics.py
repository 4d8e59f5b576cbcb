"""Prometheus gauges of the drift monitor (``fmnist monitor run``), in their own registry."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, Gauge
from prometheus_client.exposition import generate_latest

if TYPE_CHECKING:
    from fmnist.monitoring.drift import DriftResult


class DriftMetrics:
    """``fmnist_drift_detected``, ``fmnist_drift_statistic{test}``, ``fmnist_drift_p_value{test}``
    and the window and time of the last check."""

    def __init__(self) -> None:
        """Create the gauges in a fresh registry."""
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.detected = Gauge(
            "fmnist_drift_detected", "1 when the last drift check detected drift.", registry=r
        )
        self.statistic = Gauge(
            "fmnist_drift_statistic", "Statistic of each drift test.", ["test"], registry=r
        )
        self.p_value = Gauge(
            "fmnist_drift_p_value", "p-value of each drift test.", ["test"], registry=r
        )
        self.fired = Gauge(
            "fmnist_drift_test_fired",
            "1 when the test fired (after correction).",
            ["test"],
            registry=r,
        )
        self.window = Gauge(
            "fmnist_drift_window_size", "Predictions in the last checked window.", registry=r
        )
        self.last_check = Gauge(
            "fmnist_drift_last_check_timestamp_seconds",
            "Unix time of the last completed drift check.",
            registry=r,
        )
        self.reference_version = Gauge(
            "fmnist_drift_reference_version",
            "Model version whose reference the last check used.",
            registry=r,
        )

    def update(self, result: DriftResult, unix_time: float) -> None:
        """Set every gauge from one check (tests without a value keep NaN)."""
        self.detected.set(1.0 if result.drift_detected else 0.0)
        for test in result.tests:
            nan = float("nan")
            self.statistic.labels(test.name).set(nan if test.statistic is None else test.statistic)
            self.p_value.labels(test.name).set(nan if test.p_value is None else test.p_value)
            self.fired.labels(test.name).set(1.0 if test.fired else 0.0)
        self.window.set(result.window.size)
        self.last_check.set(unix_time)
        if result.reference.model_version is not None:
            self.reference_version.set(result.reference.model_version)

    def exposition(self) -> bytes:
        """The registry in the Prometheus text format."""
        data: bytes = generate_latest(self.registry)
        return data

    def serve(self, port: int, addr: str = "127.0.0.1") -> Any:
        """Expose the gauges on ``http://addr:port/metrics`` (a daemon thread); returns the
        server (``.shutdown()`` stops it)."""
        from prometheus_client import start_http_server

        server, _thread = start_http_server(port, addr=addr, registry=self.registry)
        return server
