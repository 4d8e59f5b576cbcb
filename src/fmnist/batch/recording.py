"""Rows of the batch job in the durable prediction log (``input_kind="batch"``).

Each predicted row becomes one :class:`~fmnist.monitoring.records.PredictionRecord` whose id is
``batch-<job>:<row>`` (``<job>`` from the job's manifest), appended in one transaction per shard
on the writer thread. A resumed job writes the same ids again, and the log keeps the first copy.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

import numpy as np

from fmnist.identity import digest_array, digest_bytes
from fmnist.monitoring.records import UNKNOWN, PredictionRecord

if TYPE_CHECKING:
    from fmnist.batch.inputs import InputChunk
    from fmnist.batch.model import BatchModel, Prediction
    from fmnist.evaluation.unknown import Verdicts
    from fmnist.monitoring.prediction_log import PredictionLog


class BatchRecorder:
    """Appends a job's predicted rows to ``log``."""

    def __init__(self, log: PredictionLog, model: BatchModel, manifest: bytes) -> None:
        """Record for the job whose manifest is ``manifest``."""
        self.log = log
        self.model = model
        self.job = digest_bytes(manifest, length=12)
        self.version = int(model.version) if str(model.version).isdigit() else 0

    def record(
        self, first_row: int, chunk: InputChunk, prediction: Prediction, verdicts: Verdicts
    ) -> int:
        """Log the valid rows of ``chunk`` (rows ``first_row``...); returns how many were new."""
        valid = chunk.valid
        rows = np.arange(first_row, first_row + len(chunk.pixels))
        pixels = chunk.pixels
        if valid is not None:
            rows, pixels = rows[valid], pixels[valid]
        pixels = np.clip(np.rint(pixels), 0, 255).astype(np.uint8)
        names = self.model.classifier.class_names
        probabilities = np.round(prediction.probabilities.astype(np.float64), 6).tolist()
        now = datetime.now(UTC).isoformat()
        records = [
            PredictionRecord(
                request_id=f"batch-{self.job}:{int(row)}",
                timestamp=now,
                model_name=self.model.name,
                model_version=self.version,
                model_alias="",
                arm="",
                input_kind="batch",
                input_digest=digest_array(pixels[i], length=32),
                pixels=pixels[i].tobytes(),
                probabilities=probabilities[i],
                predicted_class=UNKNOWN if class_id < 0 else names[class_id],
                confidence=float(verdicts.confidence[i]),
                latency_ms=0.0,
                route="batch",
            )
            for i, (row, class_id) in enumerate(zip(rows, verdicts.class_id.tolist(), strict=True))
        ]
        return self.log.append(records)
