"""Prediction-log records for the monitoring tests (importable as ``prediction_records``)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np

from fmnist import CLASS_NAMES
from fmnist.monitoring.records import UNKNOWN, PredictionRecord

BASE = datetime(2024, 5, 1, tzinfo=UTC)
"""The first record's time in :func:`records` (a Wednesday, 00:00 UTC)."""


def record(
    i: int,
    when: datetime,
    *,
    predicted: int | None = None,
    model_name: str = "fmnist-classifier",
    model_version: int = 1,
    request_id: str | None = None,
) -> PredictionRecord:
    """Record ``i`` at ``when``: pixels all equal to ``i % 256``, class ``predicted`` (default
    ``i % 10``; -1 means unknown) with probability 0.55 and 0.05 for the others."""
    cls = i % 10 if predicted is None else predicted
    probs = np.full(10, 0.05)
    probs[max(cls, 0)] = 0.55
    return PredictionRecord(
        request_id=request_id or f"req-{i:05d}",
        timestamp=when.isoformat(),
        model_name=model_name,
        model_version=model_version,
        model_alias="champion",
        arm="",
        input_kind="json" if i % 2 else "upload",
        input_digest=f"{i:064x}",
        pixels=bytes([i % 256]) * 784,
        probabilities=tuple(float(p) for p in probs),
        predicted_class=UNKNOWN if cls < 0 else CLASS_NAMES[cls],
        confidence=0.55,
        latency_ms=1.5,
        client_id="c" * 64,
        photo_flags={"segmented": True} if i % 3 == 0 else {},
        route="/v1/predict",
    )


def records(
    n: int, *, step: timedelta = timedelta(hours=1), start: int = 0
) -> list[PredictionRecord]:
    """``n`` records ``step`` apart from :data:`BASE` (numbered from ``start``)."""
    return [record(start + i, BASE + (start + i) * step) for i in range(n)]
