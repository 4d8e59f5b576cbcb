"""The inputs of the real-photo harness: the model it opens and the photos as the model sees them.

:func:`open_model` opens a ``.onnx`` file or a registry reference with the thresholds the server
would apply with it; :func:`prepare` reads and preprocesses one photo (GrabCut, colour or the
naive squash a client that knows nothing about the model would send), timing it. Used by
:mod:`fmnist.realworld.experiment`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import numpy as np
import numpy.typing as npt
from PIL import Image
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from fmnist import IMAGE_SIZE
from fmnist.errors import FmnistError, InvalidImageError
from fmnist.evaluation.unknown import energy_threshold_from_metadata
from fmnist.imaging.decode import DEFAULT_MAX_PIXELS, decode_image
from fmnist.imaging.preprocess import preprocess_bytes
from fmnist.realworld.abstention import META_FMNIST_ENERGY_THRESHOLD, META_MIN_CONFIDENCE
from fmnist.realworld.photos import LabelledPhoto

if TYPE_CHECKING:
    from fmnist.platform.services import Services
    from fmnist.registry.onnx_runtime import OnnxClassifier

UInt8Array = npt.NDArray[np.uint8]
Preprocessing = Literal["grabcut", "colour", "naive"]
PREPROCESSINGS: tuple[Preprocessing, ...] = ("grabcut", "colour", "naive")


class ExperimentError(FmnistError):
    """The experiment cannot run (model not found, unreadable photo, bad option)."""


@dataclass(frozen=True)
class ModelHandle:
    """An opened model: where it came from and what the server would apply with it."""

    name: str
    version: int | None
    reference: str
    path: Path
    classifier: OnnxClassifier
    temperature: float
    energy_threshold: float | None
    min_confidence: float | None
    """From the model's metadata (a calibrated floor), else None."""
    fmnist_energy_threshold: float | None
    """The energy threshold from Fashion-MNIST validation (``ood.fmnist_energy_threshold`` of a
    photo-calibrated model, else ``ood.energy_threshold``)."""


@dataclass(frozen=True)
class Prepared:
    """One photo as the model saw it."""

    pixels: UInt8Array
    foreground_fraction: float
    bbox: tuple[int, int, int, int] | None
    wall_ms: float
    cpu_ms: float


def open_model(services: Services, reference: str) -> ModelHandle:
    """A ``.onnx`` file, or a registry reference as ``?model=`` takes it (``champion``, ``3``,
    ``fmnist-photos``, ``fmnist-photos@champion``). Raises :class:`ExperimentError`."""
    from fmnist.registry.onnx_runtime import OnnxClassifier

    path = Path(reference)
    if path.suffix == ".onnx":
        if not path.is_file():
            raise ExperimentError(f"model file not found: {path}")
        classifier = OnnxClassifier(path)
        name, version = classifier.metadata.get("run_id", path.stem), None
    else:
        from fmnist.registry.references import MODEL_FILE, download_version, resolve_reference

        settings = services.settings
        try:
            registry, info = resolve_reference(services.registry, reference)
            root = services.settings.home / "serving" / "models"
            folder = download_version(registry, info.version, root / info.name / str(info.version))
        except FmnistError as exc:
            raise ExperimentError(f"model {reference!r}: {exc}") from exc
        path = folder / MODEL_FILE
        classifier = OnnxClassifier(path, intra_op_threads=settings.serving.intra_op_threads)
        name, version = info.name, info.version
    floor = classifier.metadata.get(META_MIN_CONFIDENCE)
    fmnist_energy = classifier.metadata.get(META_FMNIST_ENERGY_THRESHOLD)
    return ModelHandle(
        name=name,
        version=version,
        reference=reference,
        path=path,
        classifier=classifier,
        temperature=classifier.temperature or 1.0,
        energy_threshold=energy_threshold_from_metadata(classifier.metadata),
        min_confidence=float(floor) if floor is not None else None,
        fmnist_energy_threshold=(
            float(fmnist_energy)
            if fmnist_energy is not None
            else energy_threshold_from_metadata(classifier.metadata)
        ),
    )


def naive_input(data: bytes) -> UInt8Array:
    """Grayscale and squash to 28x28: what a client that knows nothing about the model sends."""
    image = decode_image(data, max_pixels=DEFAULT_MAX_PIXELS)
    pixels: UInt8Array = np.asarray(
        image.resize((IMAGE_SIZE, IMAGE_SIZE), Image.Resampling.BOX), dtype=np.uint8
    )
    return pixels


def prepare(photo: LabelledPhoto, preprocessing: Preprocessing) -> Prepared:
    """Read and preprocess one photo, timing the preprocessing (decoding included)."""
    data = photo.path.read_bytes()
    wall, cpu = time.perf_counter(), time.thread_time()
    try:
        if preprocessing == "naive":
            pixels, fraction, bbox = naive_input(data), 1.0, None
        else:
            result = preprocess_bytes(data, segmentation=preprocessing)
            pixels, fraction, bbox = result.pixels, result.foreground_fraction, result.bbox
    except InvalidImageError as exc:
        raise ExperimentError(f"{photo.path}: {exc}") from exc
    return Prepared(
        pixels,
        fraction,
        bbox,
        (time.perf_counter() - wall) * 1e3,
        (time.thread_time() - cpu) * 1e3,
    )


def prepare_all(
    photos: list[LabelledPhoto], preprocessing: Preprocessing, *, show_progress: bool = True
) -> list[Prepared]:
    """:func:`prepare` every photo, with a progress bar."""
    out: list[Prepared] = []
    with Progress(
        TextColumn(f"[bold]{preprocessing}[/bold]"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        disable=not show_progress,
    ) as progress:
        task = progress.add_task("photos", total=len(photos))
        for photo in photos:
            out.append(prepare(photo, preprocessing))
            progress.advance(task)
    return out
