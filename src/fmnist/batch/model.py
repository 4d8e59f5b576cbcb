"""The classifier of a batch job: an exported ONNX model, from a file or from the registry."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from fmnist.batch.errors import BatchJobError
from fmnist.evaluation.unknown import energy_threshold_from_metadata
from fmnist.identity import digest_file
from fmnist.registry.onnx_runtime import LOGITS, PROBABILITIES, OnnxClassifier

if TYPE_CHECKING:
    from fmnist.platform.registry import ModelRegistry


@dataclass(frozen=True)
class BatchModel:
    """The classifier of a job and what identifies it in the output and the manifest."""

    classifier: OnnxClassifier
    name: str
    version: str
    sha256: str
    energy_threshold: float | None

    @property
    def temperature(self) -> float:
        """The calibration temperature recorded in the model (1 when absent)."""
        return self.classifier.temperature or 1.0

    def identity(self) -> dict[str, Any]:
        """Name, version and file hash (the manifest's ``model`` entry)."""
        return {"name": self.name, "version": self.version, "sha256": self.sha256}


@dataclass(frozen=True)
class Prediction:
    """Model outputs of the valid rows of a chunk (in order)."""

    logits: npt.NDArray[np.float32]
    probabilities: npt.NDArray[np.float32]


def load_onnx_model(
    path: Path,
    *,
    name: str | None = None,
    version: str | None = None,
    threads: int = 2,
    batch_size: int = 1024,
) -> BatchModel:
    """Load an exported ONNX classifier; name and version default to the file name and
    ``sha256:<first 12 hex digits>``."""
    if not path.is_file():
        raise BatchJobError(f"{path}: ONNX model file not found")
    try:
        classifier = OnnxClassifier(path, intra_op_threads=threads, batch_size=batch_size)
    except ValueError as exc:
        raise BatchJobError(str(exc)) from exc
    except Exception as exc:  # onnxruntime raises its own exception types for unreadable files
        raise BatchJobError(f"{path}: not a loadable ONNX model ({exc})") from exc
    sha = digest_file(path)
    energy = energy_threshold_from_metadata(classifier.metadata)
    _warm_up(classifier, batch_size)
    return BatchModel(classifier, name or path.name, version or f"sha256:{sha[:12]}", sha, energy)


def load_registered_model(
    registry: ModelRegistry, ref: str, *, threads: int = 2, batch_size: int = 1024
) -> BatchModel:
    """Download version or alias ``ref`` from ``registry`` and load it; the alias is resolved
    once, so the whole job uses one version."""
    info = registry.get(ref)
    with tempfile.TemporaryDirectory(prefix="fmnist-batch-model-") as tmp:
        folder = registry.download(str(info.version), Path(tmp))
        return load_onnx_model(
            folder / "model.onnx",
            name=info.name,
            version=str(info.version),
            threads=threads,
            batch_size=batch_size,
        )


def _warm_up(classifier: OnnxClassifier, batch_size: int) -> None:
    """One call at full batch size, so the timed job does not pay for arena allocation."""
    x = np.zeros((batch_size, 1, 28, 28), dtype=np.float32)
    classifier.session.run([LOGITS, PROBABILITIES], {classifier.input_name: x})
