"""Model inputs to answers: the model call (micro-batched or direct), unknown detection, JSON.

A single image goes through the :class:`~fmnist.serving.microbatch.MicroBatcher` (when enabled);
several images are one direct call on the inference thread, post-processing included, so a
batch request never holds the event loop.
"""

from __future__ import annotations

import asyncio
import base64
import math
from collections.abc import Sequence
from concurrent.futures import Executor
from typing import Any

import numpy as np
import numpy.typing as npt

from fmnist.config import ServingSettings
from fmnist.evaluation.unknown import Verdict, decide
from fmnist.imaging.model_input import png_bytes
from fmnist.imaging.preprocess import PreprocessResult
from fmnist.serving.inputs import ModelInputs
from fmnist.serving.metrics import ServingMetrics
from fmnist.serving.microbatch import MicroBatcher
from fmnist.serving.model_store import LoadedModel

FloatArray = npt.NDArray[np.float32]
UInt8Array = npt.NDArray[np.uint8]
PROBABILITY_DECIMALS = 6
FASHION_MNIST_PATH = "fashion-mnist"
"""Path of 28x28 Fashion-MNIST-like inputs (pixel instances and pass-through images)."""
PHOTO_PATH = "photo"
"""Path of photos: segmented and answered by ``serving.photo_model`` when it is registered."""


def input_path(detail: PreprocessResult | None) -> str:
    """Which path an input takes: :data:`PHOTO_PATH` for a preprocessed photo, else
    :data:`FASHION_MNIST_PATH`."""
    return PHOTO_PATH if detail is not None and detail.mode == "photo" else FASHION_MNIST_PATH


def run_model(model: LoadedModel, images: UInt8Array) -> tuple[FloatArray, FloatArray]:
    """Logits and calibrated probabilities of ``(N, 28, 28)`` images (blocking)."""
    return model.classifier.run(images)


def _reason_category(reason: str) -> str:
    """The words of a reason before its first number: a bounded metrics label."""
    words = []
    for word in reason.split():
        if word.lstrip("+-")[:1].isdigit():
            break
        words.append(word.rstrip(":"))
    return " ".join(words) or "other"


def _finite(value: float, decimals: int) -> float | None:
    return round(value, decimals) if math.isfinite(value) else None


def _preprocessing(detail: PreprocessResult) -> dict[str, Any]:
    return {
        "mode": detail.mode,
        "segmentation": detail.segmentation,
        "inverted": detail.inverted,
        "bbox": list(detail.bbox) if detail.bbox is not None else None,
        "background_level": round(detail.background_level, 2),
        "foreground_fraction": round(detail.foreground_fraction, 4),
    }


def describe(
    model: LoadedModel,
    inputs: ModelInputs,
    logits: FloatArray,
    probabilities: FloatArray,
    min_confidence: float,
) -> tuple[list[dict[str, Any]], list[Verdict]]:
    """The JSON predictions of a request and the verdicts behind them.

    ``min_confidence`` applies unless the model carries a calibrated floor of its own.
    """
    details = inputs.details
    if model.min_confidence is not None:
        min_confidence = model.min_confidence
    fractions = None
    if any(d is not None for d in details):
        fractions = [d.foreground_fraction if d is not None else 1.0 for d in details]
    verdicts = decide(
        probabilities,
        logits,
        temperature=model.temperature,
        energy_threshold=model.energy_threshold,
        min_confidence=min_confidence,
        foreground_fraction=fractions,
        class_names=model.class_names,
    )
    rounded = np.round(probabilities.astype(np.float64), PROBABILITY_DECIMALS).tolist()
    top = probabilities.argmax(axis=1).tolist()
    names = model.class_names
    predictions: list[dict[str, Any]] = []
    for i, verdict in enumerate(verdicts):
        prediction: dict[str, Any] = {
            "class_id": verdict.class_id,
            "label": verdict.label,
            "probabilities": rounded[i],
            "confidence": _finite(verdict.confidence, PROBABILITY_DECIMALS),
            "energy": _finite(verdict.energy, 4),
            "reasons": list(verdict.reasons),
            "top_class_id": top[i],
            "top_label": names[top[i]],
            "path": input_path(details[i]),
            "model_name": model.name,
            "model_version": model.version,
        }
        detail = details[i]
        if detail is not None:
            prediction["preprocessing"] = _preprocessing(detail)
        if inputs.return_image:
            png = png_bytes(inputs.pixels[i])
            prediction["model_input_png"] = base64.b64encode(png).decode("ascii")
        predictions.append(prediction)
    return predictions, verdicts


class Predictor:
    """Runs requests' inputs through a model and shapes the answers."""

    def __init__(
        self, serving: ServingSettings, metrics: ServingMetrics, executor: Executor
    ) -> None:
        """Use ``executor`` for model calls; micro-batch if ``serving.microbatching``."""
        self.min_confidence = serving.min_confidence
        self.metrics = metrics
        self.executor = executor
        self.batcher: MicroBatcher[LoadedModel] | None = None
        if serving.microbatching:
            self.batcher = MicroBatcher(
                run_model,
                executor,
                max_size=serving.microbatch_max_size,
                max_wait_s=serving.microbatch_max_wait_ms / 1000.0,
                inline_max=serving.microbatch_inline_max,
                on_batch=metrics.batch_size.observe,
            )

    def _run_and_describe(
        self, model: LoadedModel, inputs: ModelInputs
    ) -> tuple[list[dict[str, Any]], list[Verdict]]:
        logits, probabilities = run_model(model, inputs.pixels)
        return describe(model, inputs, logits, probabilities, self.min_confidence)

    async def predict(self, model: LoadedModel, inputs: ModelInputs) -> list[dict[str, Any]]:
        """The JSON predictions for ``inputs`` (one per image, in order)."""
        if len(inputs.pixels) == 1:
            if self.batcher is not None:
                logit_row, probability_row = await self.batcher.predict(model, inputs.pixels[0])
                logits, probabilities = logit_row[None], probability_row[None]
            else:
                self.metrics.batch_size.observe(1)
                loop = asyncio.get_running_loop()
                logits, probabilities = await loop.run_in_executor(
                    self.executor, run_model, model, inputs.pixels
                )
            predictions, verdicts = describe(
                model, inputs, logits, probabilities, self.min_confidence
            )
        else:
            self.metrics.batch_size.observe(len(inputs.pixels))
            loop = asyncio.get_running_loop()
            predictions, verdicts = await loop.run_in_executor(
                self.executor, self._run_and_describe, model, inputs
            )
        self._observe(model, verdicts)
        return predictions

    def _observe(self, model: LoadedModel, verdicts: Sequence[Verdict]) -> None:
        self.metrics.observe_predictions(
            model.version,
            [v.label for v in verdicts],
            [v.confidence if math.isfinite(v.confidence) else 0.0 for v in verdicts],
        )
        for verdict in verdicts:
            for reason in verdict.reasons:
                self.metrics.unknown.labels(_reason_category(reason)).inc()

    async def close(self) -> None:
        """Finish the queued micro-batches."""
        if self.batcher is not None:
            await self.batcher.drain()
