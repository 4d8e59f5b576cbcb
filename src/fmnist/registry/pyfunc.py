"""The MLflow ``pyfunc`` flavour of a registered fmnist model: ONNX Runtime inside.

Loading a registered version with ``mlflow.pyfunc.load_model("models:/NAME@champion")`` gives a
model whose ``predict`` takes pixel arrays ``(N, 28, 28)`` in 0-255 and returns the calibrated
class probabilities ``(N, 10)``. The PyTorch weights travel beside the ONNX file as an artifact.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import numpy.typing as npt
from mlflow.pyfunc.model import PythonModel

# MLflow suggests type hints on predict(); the signature comes from the logged input example.
warnings.filterwarnings("ignore", message=r".*Add type hints to the .predict. method")


class OnnxPyfuncModel(PythonModel):
    """An MLflow PythonModel that serves the version's ONNX file with ONNX Runtime."""

    def load_context(self, context: Any) -> None:
        """Open the ONNX file of the version."""
        from fmnist.registry.onnx_runtime import OnnxClassifier

        self._classifier = OnnxClassifier(context.artifacts["onnx"])

    def predict(self, context, model_input, params=None):  # type: ignore[no-untyped-def]
        """Calibrated probabilities for images with pixel values 0-255."""
        pixels = np.asarray(model_input, dtype=np.float32).reshape(-1, 28, 28) / 255.0
        result: npt.NDArray[Any] = self._classifier.predict_proba(pixels[:, None, :, :])
        return result
