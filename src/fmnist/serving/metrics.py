"""Prometheus metrics of one app instance (its own registry, so tests can build several apps)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest

LATENCY_BUCKETS = (
    0.0005,
    0.001,
    0.002,
    0.005,
    0.01,
    0.02,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    10.0,
)
CONFIDENCE_BUCKETS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99, 1.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)


class ServingMetrics:
    """Request, prediction and model metrics; label children are cached per label set."""

    def __init__(self) -> None:
        """Create the collectors in a fresh registry."""
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter(
            "fmnist_http_requests",
            "HTTP requests by route, method and status code.",
            ["route", "method", "status"],
            registry=r,
        )
        self.latency = Histogram(
            "fmnist_http_request_duration_seconds",
            "HTTP request latency (until the response is sent) by route and status code.",
            ["route", "method", "status"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.predictions = Counter(
            "fmnist_predictions",
            "Predictions by served model version and predicted label ('unknown' included).",
            ["model_version", "label"],
            registry=r,
        )
        self.confidence = Histogram(
            "fmnist_prediction_confidence",
            "Calibrated top-class probability of each prediction.",
            buckets=CONFIDENCE_BUCKETS,
            registry=r,
        )
        self.unknown = Counter(
            "fmnist_unknown_reasons",
            "Why predictions were answered 'unknown'.",
            ["reason"],
            registry=r,
        )
        self.batch_size = Histogram(
            "fmnist_inference_batch_size",
            "Images per model call (micro-batches and batch requests).",
            buckets=BATCH_BUCKETS,
            registry=r,
        )
        self.model_version = Gauge(
            "fmnist_model_version",
            "Version of the default (served) model.",
            ["model"],
            registry=r,
        )
        self.model_info = Info("fmnist_model", "The default (served) model.", registry=r)
        self.reloads = Counter(
            "fmnist_model_reloads",
            "Registry checks for a new default model, by outcome.",
            ["outcome"],
            registry=r,
        )
        self.invalid_inputs = Counter(
            "fmnist_invalid_inputs",
            "Rejected prediction requests (4xx; never logged as predictions) by route and kind.",
            ["route", "kind"],
            registry=r,
        )
        self.feedback = Counter(
            "fmnist_feedback",
            "Feedback requests by outcome: created, unchanged, conflict, unknown_request, invalid.",
            ["outcome"],
            registry=r,
        )
        self.live_accuracy = Gauge(
            "fmnist_live_accuracy",
            "Accuracy of the labelled predictions (feedback) by model and version.",
            ["model", "model_version"],
            registry=r,
        )
        self.labelled = Gauge(
            "fmnist_labelled_predictions",
            "Predictions with feedback (a label, not 'unknown') by model and version.",
            ["model", "model_version"],
            registry=r,
        )
        self._request_children: dict[tuple[str, str, int], tuple[Any, Any]] = {}
        self._prediction_children: dict[tuple[int, str], Any] = {}

    def observe_request(self, route: str, method: str, status: int, seconds: float) -> None:
        """Count one request and record its latency."""
        key = (route, method, status)
        children = self._request_children.get(key)
        if children is None:
            labels = (route, method, str(status))
            children = (self.requests.labels(*labels), self.latency.labels(*labels))
            self._request_children[key] = children
        children[0].inc()
        children[1].observe(seconds)

    def observe_predictions(
        self, version: int, labels: Sequence[str], confidences: Sequence[float]
    ) -> None:
        """Count predictions by label and record their confidences."""
        for label, confidence in zip(labels, confidences, strict=True):
            key = (version, label)
            child = self._prediction_children.get(key)
            if child is None:
                child = self._prediction_children[key] = self.predictions.labels(
                    str(version), label
                )
            child.inc()
            self.confidence.observe(confidence)

    def set_model(self, name: str, version: int) -> None:
        """Record the default model."""
        self.model_version.clear()
        self.model_version.labels(name).set(version)
        self.model_info.info({"name": name, "version": str(version)})

    def render(self) -> tuple[bytes, str]:
        """The exposition text and its content type."""
        return generate_latest(self.registry), CONTENT_TYPE_LATEST
