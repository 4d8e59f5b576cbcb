"""Behavioural tests in the style of CheckList (Ribeiro et al., 2020), for image classifiers.

* **Invariance (INV)**: a perturbation that keeps the garment what it is must not change the
  predicted class. Each test perturbs a fixed, seeded sample of test images and measures the
  *class-change rate*: the share of (image, variant) pairs whose prediction differs from the
  prediction on the unperturbed image, right or wrong. It passes at or below its threshold.
  Tests: shifts by 1 and by 2 pixels (up, down, left, right: four variants each), brightness
  scaling (each factor of ``brightness_factors``, clipped at 255) and the horizontal flip.
* **Minimum functionality (MFT)**: the model must classify *clear* examples correctly. Clear is
  defined without the evaluated model: a nearest-class-mean classifier is built from reference
  images (the validation split), and per class the test images it assigns to their own label
  with the widest margin (distance to the nearest other class mean minus distance to their own
  class mean, in pixel space) are kept. These are the most typical, least ambiguous images of
  each class; the test passes when the share classified correctly reaches ``min_mft_pass_rate``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict, Field

from fmnist.config import EvaluationSettings
from fmnist.evaluation.robustness import shift

UInt8Array = npt.NDArray[np.uint8]
IntArray = npt.NDArray[np.int64]
Predict = Callable[[UInt8Array], npt.ArrayLike]
"""Maps uint8 images ``(N, H, W)`` to predicted class ids ``(N,)``."""

_DIRECTIONS = ((-1, 0), (1, 0), (0, -1), (0, 1))


@dataclass(frozen=True)
class Perturbation:
    """An invariance test: how to make the variants of a batch, and the allowed change rate."""

    name: str
    description: str
    variants: Callable[[UInt8Array], list[UInt8Array]]
    max_change_rate: float


def _shifts(pixels: int) -> Callable[[UInt8Array], list[UInt8Array]]:
    def make(images: UInt8Array) -> list[UInt8Array]:
        return [shift(images, dy * pixels, dx * pixels) for dy, dx in _DIRECTIONS]

    return make


def _brightness(factors: Sequence[float]) -> Callable[[UInt8Array], list[UInt8Array]]:
    def make(images: UInt8Array) -> list[UInt8Array]:
        x = images.astype(np.float64)
        return [np.clip(np.rint(x * f), 0, 255).astype(np.uint8) for f in factors]

    return make


def _flip(images: UInt8Array) -> list[UInt8Array]:
    return [np.ascontiguousarray(images[:, :, ::-1])]


def invariance_perturbations(settings: EvaluationSettings) -> list[Perturbation]:
    """The invariance tests with their thresholds from ``settings``, in report order."""
    factors = ", ".join(f"x{f:g}" for f in settings.brightness_factors)
    return [
        Perturbation(
            "shift_1px",
            "shift by 1 px up, down, left and right (zero fill)",
            _shifts(1),
            settings.max_shift_1px_change_rate,
        ),
        Perturbation(
            "shift_2px",
            "shift by 2 px up, down, left and right (zero fill)",
            _shifts(2),
            settings.max_shift_2px_change_rate,
        ),
        Perturbation(
            "brightness",
            f"pixel values scaled by {factors} (clipped at 255)",
            _brightness(settings.brightness_factors),
            settings.max_brightness_change_rate,
        ),
        Perturbation(
            "hflip", "horizontal flip (mirror image)", _flip, settings.max_flip_change_rate
        ),
    ]


class InvarianceResult(BaseModel):
    """The outcome of one invariance test."""

    model_config = ConfigDict(extra="forbid")

    name: str
    description: str
    n_images: int = Field(ge=1)
    n_variants: int = Field(ge=1, description="perturbed copies per image")
    changed: int = Field(ge=0, description="(image, variant) pairs whose class changed")
    change_rate: float = Field(ge=0.0, le=1.0)
    max_change_rate: float = Field(ge=0.0, le=1.0)
    passed: bool


class FunctionalityResult(BaseModel):
    """The outcome of the minimum functionality test on clear examples."""

    model_config = ConfigDict(extra="forbid")

    name: str = "clear_examples"
    description: str
    n: int = Field(ge=0)
    correct: int = Field(ge=0)
    pass_rate: float = Field(ge=0.0, le=1.0)
    min_pass_rate: float = Field(ge=0.0, le=1.0)
    passed: bool
    per_class: dict[str, float] = Field(description="pass rate per class")
    failures: list[int] = Field(description="test-set indices of the clear images missed")


class BehaviouralReport(BaseModel):
    """Every behavioural test of one model; ``passed`` when all of them passed."""

    model_config = ConfigDict(extra="forbid")

    sample_size: int = Field(ge=1)
    seed: int
    invariance: list[InvarianceResult]
    functionality: FunctionalityResult | None
    passed: bool

    def failed(self) -> list[str]:
        """Names of the failed tests."""
        names = [r.name for r in self.invariance if not r.passed]
        if self.functionality is not None and not self.functionality.passed:
            names.append(self.functionality.name)
        return names


def _predict(predict: Predict, images: UInt8Array) -> IntArray:
    pred = np.asarray(predict(images))
    if pred.shape != (images.shape[0],):
        raise ValueError(f"predict returned shape {pred.shape}, expected ({images.shape[0]},)")
    return pred.astype(np.int64)


def invariance_test(
    predict: Predict,
    images: UInt8Array,
    perturbation: Perturbation,
    base: npt.ArrayLike | None = None,
) -> InvarianceResult:
    """Measure how often ``perturbation`` changes the predicted class of ``images``.

    ``base`` are the predictions on the unperturbed images (computed when not given). All
    variants are classified in one call.
    """
    if images.ndim != 3 or images.shape[0] == 0 or images.dtype != np.uint8:
        raise ValueError(f"images must be uint8 (N, H, W) with N >= 1, got {images.shape}")
    reference = _predict(predict, images) if base is None else np.asarray(base, dtype=np.int64)
    variants = perturbation.variants(images)
    predicted = _predict(predict, np.concatenate(variants)).reshape(len(variants), -1)
    changed = int((predicted != reference[None, :]).sum())
    rate = changed / predicted.size
    return InvarianceResult(
        name=perturbation.name,
        description=perturbation.description,
        n_images=int(images.shape[0]),
        n_variants=len(variants),
        changed=changed,
        change_rate=rate,
        max_change_rate=perturbation.max_change_rate,
        passed=rate <= perturbation.max_change_rate,
    )


def clear_examples(
    images: npt.ArrayLike,
    labels: npt.ArrayLike,
    reference_images: npt.ArrayLike,
    reference_labels: npt.ArrayLike,
    per_class: int,
    num_classes: int = 10,
) -> IntArray:
    """Indices of the clearest ``per_class`` images of each class, class by class.

    Clear: a nearest-class-mean classifier built on the reference images assigns the image to
    its own label, with the widest margin (Euclidean distance in pixel space to the nearest
    other class mean minus the distance to its own class mean). A class may get fewer images
    when fewer qualify, or none when the reference set has no image of it.
    """
    x = np.asarray(images).reshape(len(np.asarray(images)), -1).astype(np.float64)
    y = np.asarray(labels, dtype=np.int64)
    ref = np.asarray(reference_images)
    r = ref.reshape(len(ref), -1).astype(np.float64)
    ry = np.asarray(reference_labels, dtype=np.int64)
    if x.shape[0] != y.size or r.shape[0] != ry.size or x.shape[1] != r.shape[1]:
        raise ValueError("images/labels and reference images/labels do not match in shape")
    has_reference = np.bincount(ry, minlength=num_classes) > 0
    centroids = np.zeros((num_classes, x.shape[1]))
    np.add.at(centroids, ry, r)
    centroids[has_reference] /= np.bincount(ry, minlength=num_classes)[has_reference, None]
    squared = (
        (x**2).sum(axis=1)[:, None] - 2.0 * x @ centroids.T + (centroids**2).sum(axis=1)[None, :]
    )
    distances = np.sqrt(np.maximum(squared, 0.0))
    distances[:, ~has_reference] = np.inf
    rows = np.arange(y.size)
    own = distances[rows, y]
    others = distances.copy()
    others[rows, y] = np.inf
    margin = others.min(axis=1) - own
    chosen: list[IntArray] = []
    for c in range(num_classes):
        if not has_reference[c]:
            continue
        candidates = np.flatnonzero((y == c) & (margin > 0))
        order = np.argsort(-margin[candidates], kind="stable")
        chosen.append(candidates[order[:per_class]])
    return np.concatenate(chosen) if chosen else np.empty(0, dtype=np.int64)


def functionality_test(
    predict: Predict,
    images: npt.ArrayLike,
    labels: npt.ArrayLike,
    indices: npt.ArrayLike,
    min_pass_rate: float,
    class_names: Sequence[str],
) -> FunctionalityResult:
    """Classify the clear examples ``images[indices]``; pass at ``min_pass_rate`` or above."""
    idx = np.asarray(indices, dtype=np.int64)
    imgs = np.asarray(images)
    y = np.asarray(labels, dtype=np.int64)[idx]
    description = (
        "clearest test images per class by a nearest-class-mean rule on the validation split "
        "(independent of the model)"
    )
    if idx.size == 0:
        return FunctionalityResult(
            description=description,
            n=0,
            correct=0,
            pass_rate=0.0,
            min_pass_rate=min_pass_rate,
            passed=False,
            per_class={},
            failures=[],
        )
    right = _predict(predict, imgs[idx]) == y
    per_class = {class_names[c]: float(right[y == c].mean()) for c in np.unique(y).tolist()}
    rate = float(right.mean())
    return FunctionalityResult(
        description=description,
        n=int(idx.size),
        correct=int(right.sum()),
        pass_rate=rate,
        min_pass_rate=min_pass_rate,
        passed=rate >= min_pass_rate,
        per_class=per_class,
        failures=idx[~right].tolist(),
    )


def behavioural_tests(
    predict: Predict,
    images: npt.ArrayLike,
    labels: npt.ArrayLike,
    settings: EvaluationSettings,
    *,
    reference_images: npt.ArrayLike | None = None,
    reference_labels: npt.ArrayLike | None = None,
    class_names: Sequence[str],
) -> BehaviouralReport:
    """Run every invariance test on a seeded sample and, with reference data, the MFT.

    The sample holds ``settings.behavioural_sample`` images (all of them when fewer), drawn
    without replacement with ``settings.behavioural_seed``.
    """
    imgs = np.asarray(images)
    if imgs.ndim != 3 or imgs.shape[0] == 0 or imgs.dtype != np.uint8:
        raise ValueError(f"images must be uint8 (N, H, W) with N >= 1, got {imgs.shape}")
    y = np.asarray(labels, dtype=np.int64)
    rng = np.random.default_rng(settings.behavioural_seed)
    size = min(settings.behavioural_sample, imgs.shape[0])
    sample = imgs[np.sort(rng.choice(imgs.shape[0], size=size, replace=False))]
    base = _predict(predict, sample)
    invariance = [
        invariance_test(predict, sample, p, base) for p in invariance_perturbations(settings)
    ]
    functionality = None
    if reference_images is not None and reference_labels is not None:
        indices = clear_examples(
            imgs,
            y,
            reference_images,
            reference_labels,
            settings.mft_per_class,
            num_classes=len(class_names),
        )
        functionality = functionality_test(
            predict, imgs, y, indices, settings.min_mft_pass_rate, class_names
        )
    passed = all(r.passed for r in invariance) and (functionality is None or functionality.passed)
    return BehaviouralReport(
        sample_size=size,
        seed=settings.behavioural_seed,
        invariance=invariance,
        functionality=functionality,
        passed=passed,
    )
