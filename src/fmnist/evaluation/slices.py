"""Slices of a test set by image properties, metrics per slice and the weakest slices.

Four properties are computed from the uint8 pixels alone (vectorised over the batch), so slices
never depend on the model. The *foreground* is every pixel brighter than ``threshold``:

* ``brightness``: mean value of the foreground pixels (0-255; 0 for a blank image);
* ``area``: share of the frame covered by the foreground (0-1);
* ``aspect_ratio``: height / width of the foreground's bounding box (1 for a blank image);
* ``symmetry``: left-right mirror symmetry about the frame's vertical centre line,
  ``1 - sum|x - mirror(x)| / sum(x + mirror(x))`` (1 = identical halves, 1 for a blank image).

Each property is cut into quantile bins; every bin (a slice) gets its size, accuracy with a Wilson
interval, macro F1 over the classes present in it and its gap to the overall accuracy.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from statistics import NormalDist

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict, Field

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

FOREGROUND_THRESHOLD = 10
"""Pixels above this value (0-255) are garment; Fashion-MNIST backgrounds are 0."""

FEATURES: Mapping[str, str] = {
    "brightness": "mean value of the garment's pixels (0-255)",
    "area": "share of the 28x28 frame covered by the garment",
    "aspect_ratio": "height / width of the garment's bounding box",
    "symmetry": "left-right mirror symmetry (1 = identical halves)",
}
"""The image properties, in report order, with a one-line description each."""


def _check_images(images: npt.ArrayLike) -> npt.NDArray[np.uint8]:
    arr = np.asarray(images)
    if arr.ndim != 3 or arr.shape[0] == 0:
        raise ValueError(f"images must have shape (N, H, W) with N >= 1, got {arr.shape}")
    if arr.dtype != np.uint8:
        raise ValueError(f"images must be uint8, got dtype {arr.dtype}")
    return arr


def image_features(
    images: npt.ArrayLike, threshold: int = FOREGROUND_THRESHOLD
) -> dict[str, FloatArray]:
    """The properties of :data:`FEATURES` for each image of a uint8 batch ``(N, H, W)``."""
    imgs = _check_images(images)
    _, h, w = imgs.shape
    x = imgs.astype(np.float32)
    foreground = imgs > threshold
    count = foreground.sum(axis=(1, 2))
    present = count > 0
    safe_count = np.maximum(count, 1)
    brightness = np.where(present, (x * foreground).sum(axis=(1, 2)) / safe_count, 0.0)
    rows = foreground.sum(axis=2) > 0  # (N, H): rows holding garment pixels
    cols = foreground.sum(axis=1) > 0  # (N, W)
    height = h - rows.argmax(axis=1) - rows[:, ::-1].argmax(axis=1)
    width = w - cols.argmax(axis=1) - cols[:, ::-1].argmax(axis=1)
    aspect = np.where(present, height / np.maximum(width, 1), 1.0)
    mirror = x[:, :, ::-1]
    total = (x + mirror).sum(axis=(1, 2))
    difference = np.abs(x - mirror).sum(axis=(1, 2))
    symmetry = np.where(total > 0, 1.0 - difference / np.maximum(total, 1.0), 1.0)
    return {
        "brightness": brightness.astype(np.float64),
        "area": (count / (h * w)).astype(np.float64),
        "aspect_ratio": aspect.astype(np.float64),
        "symmetry": symmetry.astype(np.float64),
    }


def quantile_bins(values: npt.ArrayLike, n_bins: int) -> tuple[IntArray, FloatArray, FloatArray]:
    """Assign each value to one of up to ``n_bins`` quantile bins.

    Returns the bin id of each value and each bin's smallest and largest value. Cuts fall at the
    ``1/n_bins`` quantiles and a value equal to a cut goes to the upper bin. Repeated quantiles
    (many equal values) leave fewer, unequal bins; empty bins are dropped and ids renumbered, so
    every bin holds at least one value.
    """
    v = np.asarray(values, dtype=np.float64)
    if v.ndim != 1 or v.size == 0:
        raise ValueError(f"values must be a non-empty 1-d array, got shape {v.shape}")
    if n_bins < 1:
        raise ValueError(f"n_bins must be >= 1, got {n_bins}")
    cuts = np.unique(np.quantile(v, np.linspace(0.0, 1.0, n_bins + 1)[1:-1]))
    raw = np.searchsorted(cuts, v, side="right")
    used, ids = np.unique(raw, return_inverse=True)
    lows = np.full(used.size, np.inf)
    highs = np.full(used.size, -np.inf)
    np.minimum.at(lows, ids, v)
    np.maximum.at(highs, ids, v)
    return ids.astype(np.int64), lows, highs


def wilson_interval(
    successes: npt.ArrayLike, n: npt.ArrayLike, confidence: float = 0.95
) -> tuple[FloatArray, FloatArray]:
    """Wilson score interval of a proportion ``successes / n`` (element-wise; ``n >= 1``)."""
    k = np.asarray(successes, dtype=np.float64)
    total = np.asarray(n, dtype=np.float64)
    if np.any(total < 1) or np.any(k < 0) or np.any(k > total):
        raise ValueError("wilson_interval needs 0 <= successes <= n and n >= 1")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    z = NormalDist().inv_cdf(0.5 + confidence / 2.0)  # the standard library: no SciPy to serve
    p = k / total
    denominator = 1.0 + z**2 / total
    centre = (p + z**2 / (2.0 * total)) / denominator
    half = z * np.sqrt(p * (1.0 - p) / total + z**2 / (4.0 * total**2)) / denominator
    # The interval always holds p; min/max only undo rounding at p = 0 or 1.
    low: FloatArray = np.clip(np.minimum(centre - half, p), 0.0, 1.0)
    high: FloatArray = np.clip(np.maximum(centre + half, p), 0.0, 1.0)
    return low, high


def macro_f1_present(predicted: npt.ArrayLike, labels: npt.ArrayLike, num_classes: int) -> float:
    """Macro F1 averaged over the classes present in ``labels`` (F1 = 2TP / (true + predicted))."""
    pred = np.asarray(predicted, dtype=np.int64)
    y = np.asarray(labels, dtype=np.int64)
    true_count = np.bincount(y, minlength=num_classes)
    pred_count = np.bincount(pred, minlength=num_classes)
    tp = np.bincount(y[pred == y], minlength=num_classes)
    present = true_count > 0
    if not present.any():
        return 0.0
    f1 = 2.0 * tp[present] / (true_count[present] + pred_count[present])
    return float(f1.mean())


class SliceMetrics(BaseModel):
    """One quantile bin of one image property and the model's metrics on it."""

    model_config = ConfigDict(extra="forbid")

    feature: str
    bin: int = Field(ge=0)
    n_bins: int = Field(ge=1)
    low: float = Field(description="smallest value of the property in the slice")
    high: float = Field(description="largest value of the property in the slice")
    n: int = Field(ge=1)
    accuracy: float = Field(ge=0.0, le=1.0)
    accuracy_low: float = Field(ge=0.0, le=1.0)
    accuracy_high: float = Field(ge=0.0, le=1.0)
    macro_f1: float = Field(ge=0.0, le=1.0)
    gap: float = Field(description="accuracy minus the overall accuracy")

    @property
    def name(self) -> str:
        """A readable label, e.g. ``brightness 1/4 [94.2, 121.5]``."""
        return f"{self.feature} {self.bin + 1}/{self.n_bins} [{self.low:.3g}, {self.high:.3g}]"

    @property
    def significantly_below(self) -> bool:
        """True when the whole interval lies below the overall accuracy."""
        return self.accuracy_high < self.accuracy - self.gap


class SliceReport(BaseModel):
    """Metrics per slice of every property; ``worst`` indexes ``slices`` (weakest first)."""

    model_config = ConfigDict(extra="forbid")

    n: int = Field(ge=1)
    overall_accuracy: float = Field(ge=0.0, le=1.0)
    confidence: float
    threshold: int
    features: dict[str, str]
    slices: list[SliceMetrics]
    worst: list[int]

    def worst_slices(self) -> list[SliceMetrics]:
        """The highlighted slices, weakest first."""
        return [self.slices[i] for i in self.worst]


def slice_report(
    images: npt.ArrayLike,
    labels: npt.ArrayLike,
    predicted: npt.ArrayLike,
    *,
    num_classes: int = 10,
    n_bins: int = 4,
    confidence: float = 0.95,
    min_size: int = 50,
    worst: int = 3,
    threshold: int = FOREGROUND_THRESHOLD,
) -> SliceReport:
    """Metrics of ``predicted`` class ids per quantile slice of each image property.

    ``worst`` slices are the ones with the largest accuracy deficit among those with at least
    ``min_size`` images and an accuracy below the overall one (fewer may qualify).
    """
    imgs = _check_images(images)
    y = np.asarray(labels, dtype=np.int64)
    pred = np.asarray(predicted, dtype=np.int64)
    if y.shape != (imgs.shape[0],) or pred.shape != y.shape:
        raise ValueError(
            f"labels and predictions must have shape ({imgs.shape[0]},), "
            f"got {y.shape} and {pred.shape}"
        )
    correct = pred == y
    overall = float(correct.mean())
    slices: list[SliceMetrics] = []
    for feature, values in image_features(imgs, threshold).items():
        ids, lows, highs = quantile_bins(values, n_bins)
        count = np.bincount(ids, minlength=lows.size)
        hits = np.bincount(ids, weights=correct, minlength=lows.size)
        low, high = wilson_interval(hits, count, confidence)
        for b in range(lows.size):
            members = ids == b
            accuracy = float(hits[b] / count[b])
            slices.append(
                SliceMetrics(
                    feature=feature,
                    bin=b,
                    n_bins=int(lows.size),
                    low=float(lows[b]),
                    high=float(highs[b]),
                    n=int(count[b]),
                    accuracy=accuracy,
                    accuracy_low=float(low[b]),
                    accuracy_high=float(high[b]),
                    macro_f1=macro_f1_present(pred[members], y[members], num_classes),
                    gap=accuracy - overall,
                )
            )
    ranked = sorted(
        (i for i, s in enumerate(slices) if s.n >= min_size and s.gap < 0),
        key=lambda i: (slices[i].gap, i),
    )
    return SliceReport(
        n=int(y.size),
        overall_accuracy=overall,
        confidence=confidence,
        threshold=threshold,
        features=dict(FEATURES),
        slices=slices,
        worst=ranked[:worst],
    )


def slices_by_feature(report: SliceReport) -> dict[str, Sequence[SliceMetrics]]:
    """The report's slices grouped by property, in bin order."""
    grouped: dict[str, list[SliceMetrics]] = {name: [] for name in report.features}
    for s in report.slices:
        grouped.setdefault(s.feature, []).append(s)
    return {k: v for k, v in grouped.items() if v}
