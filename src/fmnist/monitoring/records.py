"""The records of the prediction log: one per prediction served, plus ground-truth feedback.

These types are the contract between the producers (the online API, the UI, the batch job), the
log's storage engine, the exporters (JSON Lines, Parquet) and the consumers (drift monitor, live
accuracy, retraining, A/B readouts, the analytics port).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

InputKind = Literal["upload", "json", "photo", "batch"]
"""How the input arrived: an uploaded 28x28-like image, a JSON pixel instance, a photo that went
through the photo pipeline, or a row of the offline batch job."""

UNKNOWN = "unknown"
"""``predicted_class`` of an input the model refused to classify."""


@dataclass(frozen=True)
class PredictionRecord:
    """One served prediction.

    ``pixels`` is the preprocessed 28x28 input the model saw (784 bytes, row-major uint8);
    ``probabilities`` the calibrated softmax over the ten classes; ``predicted_class`` a class
    name or :data:`UNKNOWN`; ``client_id`` the SHA-256 of the client's id header (never the raw
    value); ``photo_flags`` the photo pipeline's flags (segmentation, inversion, fallback) when a
    photo was used.
    """

    request_id: str
    timestamp: str  # ISO 8601, UTC
    model_name: str
    model_version: int
    model_alias: str
    arm: str
    input_kind: InputKind
    input_digest: str
    pixels: bytes
    probabilities: Sequence[float]
    predicted_class: str
    confidence: float
    latency_ms: float
    client_id: str = ""
    photo_flags: Mapping[str, Any] = field(default_factory=dict)
    route: str = ""


@dataclass(frozen=True)
class FeedbackRecord:
    """The true label of a logged prediction (``unknown``: the item is outside the ten
    classes, and ``label`` is None)."""

    request_id: str
    label: int | None
    unknown: bool
    timestamp: str
