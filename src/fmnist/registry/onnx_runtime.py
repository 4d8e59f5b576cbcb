"""Serving-side inference on an exported ONNX classifier, without PyTorch.

This module imports only numpy and onnxruntime (plus the torch-free :mod:`fmnist` package root),
so a serving image needs neither torch nor onnx. The exported graph (see
:mod:`fmnist.registry.onnx_export`) takes pixels in [0, 1] and normalises them itself; callers
pass raw uint8 images or their ``/255`` float version and never re-implement preprocessing.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import onnxruntime as ort

from fmnist import CLASS_NAMES, IMAGE_SIZE

INPUT_NAME = "image"
"""Name of the graph input: float32 ``(N, 1, 28, 28)`` pixels in [0, 1]."""
LOGITS = "logits"
"""Name of the raw-logits output ``(N, classes)``."""
PROBABILITIES = "probabilities"
"""Name of the output ``softmax(logits / temperature)``."""

META_PREFIX = "fmnist."
META_TEMPERATURE = "fmnist.temperature"
META_CLASS_NAMES = "fmnist.class_names"
META_INPUT = "fmnist.input"
META_OUTPUTS = "fmnist.outputs"
META_NORMALIZATION = "fmnist.normalization"
META_FORMAT_VERSION = "fmnist.format_version"
META_QUANTIZATION = "fmnist.quantization"
INPUT_DESCRIPTION = "float32 [N,1,28,28] in [0,1]"

FloatArray = npt.NDArray[np.float32]


def to_model_input(images: npt.ArrayLike) -> FloatArray:
    """Convert images to the graph input: float32 ``(N, 1, 28, 28)`` in [0, 1].

    Accepts uint8 pixels (divided by 255, exactly as in training) or floats already in [0, 1],
    shaped ``(N, 28, 28)``, ``(N, 1, 28, 28)`` or a single ``(28, 28)`` image. Raises
    ``TypeError`` for other dtypes and ``ValueError`` for other shapes or out-of-range floats.
    """
    a = np.asarray(images)
    if a.ndim == 2:
        a = a[None]
    if a.ndim == 3:
        a = a[:, None]
    if a.ndim != 4 or a.shape[1:] != (1, IMAGE_SIZE, IMAGE_SIZE):
        raise ValueError(
            f"expected images shaped (N, {IMAGE_SIZE}, {IMAGE_SIZE}) or "
            f"(N, 1, {IMAGE_SIZE}, {IMAGE_SIZE}), got {np.shape(images)}"
        )
    if a.dtype == np.uint8:
        return np.ascontiguousarray(a.astype(np.float32) / np.float32(255.0))
    if not np.issubdtype(a.dtype, np.floating):
        raise TypeError(f"expected uint8 or floating-point images, got dtype {a.dtype}")
    x = np.ascontiguousarray(a, dtype=np.float32)
    if x.size and not (np.isfinite(x).all() and x.min() >= 0.0 and x.max() <= 1.0):
        raise ValueError(
            "float images must be finite pixel values in [0, 1] (raw / 255, not normalised); "
            f"got range [{np.nanmin(x):.4g}, {np.nanmax(x):.4g}]"
        )
    return x


class OnnxClassifier:
    """An exported Fashion-MNIST classifier run by ONNX Runtime on the CPU.

    ``session.run`` is thread-safe, so one instance can serve concurrent requests. Inputs larger
    than ``batch_size`` are split into batches to bound memory.
    """

    def __init__(
        self,
        path: str | Path,
        *,
        intra_op_threads: int = 1,
        inter_op_threads: int = 1,
        batch_size: int = 1024,
    ) -> None:
        """Load the model at ``path`` into an optimising CPU inference session."""
        self.path = Path(path)
        if not self.path.is_file():
            raise FileNotFoundError(f"ONNX model not found: {self.path}")
        if batch_size <= 0:
            raise ValueError(f"batch_size must be positive, got {batch_size}")
        if intra_op_threads <= 0 or inter_op_threads <= 0:
            raise ValueError("thread counts must be positive")
        self.batch_size = batch_size
        options = ort.SessionOptions()
        options.intra_op_num_threads = intra_op_threads
        options.inter_op_num_threads = inter_op_threads
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.log_severity_level = 3  # errors only: keep serving logs clean
        self.session = ort.InferenceSession(
            str(self.path), sess_options=options, providers=["CPUExecutionProvider"]
        )
        inputs = self.session.get_inputs()
        outputs = {o.name: o for o in self.session.get_outputs()}
        if len(inputs) != 1 or LOGITS not in outputs or PROBABILITIES not in outputs:
            raise ValueError(
                f"{self.path} is not an fmnist classifier: inputs "
                f"{[i.name for i in inputs]}, outputs {sorted(outputs)} (expected one image input "
                f"and outputs {LOGITS!r}, {PROBABILITIES!r})"
            )
        self.input_name: str = inputs[0].name
        meta: dict[str, str] = dict(self.session.get_modelmeta().custom_metadata_map)
        self.metadata = meta
        temperature = meta.get(META_TEMPERATURE)
        self.temperature: float | None = None if temperature is None else float(temperature)
        names = meta.get(META_CLASS_NAMES)
        self.class_names: tuple[str, ...] = (
            tuple(str(n) for n in json.loads(names)) if names else CLASS_NAMES
        )
        width = outputs[LOGITS].shape[-1]
        self.num_classes: int = width if isinstance(width, int) else len(self.class_names)
        if len(self.class_names) != self.num_classes:
            raise ValueError(
                f"{self.path}: {len(self.class_names)} class names for {self.num_classes} outputs"
            )

    def __repr__(self) -> str:
        """Show the file and the recorded temperature."""
        return f"OnnxClassifier({str(self.path)!r}, temperature={self.temperature})"

    def _run(self, images: npt.ArrayLike, names: list[str]) -> list[FloatArray]:
        x = to_model_input(images)
        if len(x) == 0:
            return [np.empty((0, self.num_classes), dtype=np.float32) for _ in names]
        parts: list[list[Any]] = [[] for _ in names]
        for start in range(0, len(x), self.batch_size):
            batch = x[start : start + self.batch_size]
            for part, out in zip(
                parts, self.session.run(names, {self.input_name: batch}), strict=True
            ):
                part.append(out)
        return [np.concatenate(p).astype(np.float32, copy=False) for p in parts]

    def run(self, images: npt.ArrayLike) -> tuple[FloatArray, FloatArray]:
        """Logits and probabilities ``(N, classes)`` from one pass over the images."""
        logits, probabilities = self._run(images, [LOGITS, PROBABILITIES])
        return logits, probabilities

    def predict_logits(self, images: npt.ArrayLike) -> FloatArray:
        """Raw logits ``(N, classes)`` for uint8 or [0, 1] float images."""
        return self._run(images, [LOGITS])[0]

    def predict_proba(self, images: npt.ArrayLike) -> FloatArray:
        """Temperature-scaled class probabilities ``(N, classes)``; rows sum to 1."""
        return self._run(images, [PROBABILITIES])[0]

    def predict(self, images: npt.ArrayLike) -> npt.NDArray[np.int64]:
        """Predicted class ids ``(N,)``."""
        ids: npt.NDArray[np.int64] = self.predict_logits(images).argmax(axis=1).astype(np.int64)
        return ids
