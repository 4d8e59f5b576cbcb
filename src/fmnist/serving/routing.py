"""Which model answers which input: photos go to ``serving.photo_model``, the rest to the default.

An uploaded image that preprocessing treated as a photo (not a 28x28 Fashion-MNIST-like image)
takes the *photo* path: it is answered by ``serving.photo_model`` (default
``fmnist-photos@champion``, a model adapted to real photos with its own calibrated unknown
thresholds) when that model is registered, else by the default model, and the response says so
(``fallback``). Pixel instances and Fashion-MNIST-like images take the *fashion-mnist* path
(the default model), at no extra cost. An explicit ``?model=`` answers every input.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
from starlette.concurrency import run_in_threadpool

from fmnist.serving.inputs import ModelInputs
from fmnist.serving.model_store import LoadedModel, ModelStore
from fmnist.serving.predictor import FASHION_MNIST_PATH, PHOTO_PATH, Predictor, input_path

logger = logging.getLogger("fmnist.serving")

MIXED_PATH = "mixed"
"""The request path of a batch with inputs of both paths."""


def subset(inputs: ModelInputs, rows: list[int]) -> ModelInputs:
    """The inputs at ``rows``, in that order."""
    return ModelInputs(
        np.ascontiguousarray(inputs.pixels[rows]),
        [inputs.details[i] for i in rows],
        inputs.return_image,
    )


class PhotoRouter:
    """Sends photos to the photo model (see the module docstring)."""

    def __init__(self, store: ModelStore, photo_ref: str | None, retry_s: float = 30.0) -> None:
        """Route photos to ``photo_ref`` (None: no photo model; the default answers them)."""
        self.store = store
        self.photo_ref = photo_ref
        self.retry_s = retry_s if retry_s > 0 else 30.0

    def load(self) -> LoadedModel | None:
        """Resolve and load the photo model now, if it is registered (blocking; start-up)."""
        if self.photo_ref is None:
            return None
        return self.store.resolve_optional(self.photo_ref, self.retry_s)

    async def photo_model(self) -> tuple[LoadedModel | None, str | None]:
        """The photo model, or None and the reason the default model answers photos instead."""
        if self.photo_ref is None:
            return None, None
        model = self.store.cached(self.photo_ref)
        if model is not None:
            return model, None
        try:
            model = await run_in_threadpool(
                self.store.resolve_optional, self.photo_ref, self.retry_s
            )
        except Exception as exc:  # registry down, unreadable file: keep answering photos
            logger.warning("photo model %r could not be loaded: %s", self.photo_ref, exc)
            return None, (
                f"photo model {self.photo_ref!r} could not be loaded ({type(exc).__name__}); "
                "the default model answered"
            )
        if model is None:
            return (
                None,
                f"photo model {self.photo_ref!r} is not registered; the default model answered",
            )
        return model, None

    async def predict(
        self, predictor: Predictor, default: LoadedModel, inputs: ModelInputs, *, route: bool
    ) -> tuple[list[dict[str, Any]], LoadedModel, str, str | None]:
        """Predictions in input order, the model that answered, the path and any fallback.

        With ``route`` false (an explicit ``?model=``) ``default`` answers every input.
        """
        paths = [input_path(d) for d in inputs.details]
        photo_rows = [i for i, p in enumerate(paths) if p == PHOTO_PATH]
        if not photo_rows:
            return await predictor.predict(default, inputs), default, FASHION_MNIST_PATH, None
        path = PHOTO_PATH if len(photo_rows) == len(paths) else MIXED_PATH
        photo_model, fallback = (await self.photo_model()) if route else (None, None)
        if photo_model is None or photo_model.key == default.key:
            return await predictor.predict(default, inputs), default, path, fallback
        if path == PHOTO_PATH:
            return await predictor.predict(photo_model, inputs), photo_model, path, None
        other_rows = [i for i, p in enumerate(paths) if p != PHOTO_PATH]
        photo_answers = await predictor.predict(photo_model, subset(inputs, photo_rows))
        other_answers = await predictor.predict(default, subset(inputs, other_rows))
        predictions: list[dict[str, Any]] = [{} for _ in paths]
        for rows, answers in ((photo_rows, photo_answers), (other_rows, other_answers)):
            for i, answer in zip(rows, answers, strict=True):
                predictions[i] = answer
        return predictions, default, path, None
