"""The shifts of the drift benchmark: pixel corruptions, label-prior changes and real photos.

A pixel shift maps uint8 ``(N, 28, 28)`` images to shifted ones (seeded); a prior shift draws
the indices of a window from labelled test images. Intensities are chosen so that the middle
one of each family is a "medium" shift (the issue's goals: rotation 15 degrees, brightness
x0.6, 50% photos, the class prior restricted to 3 classes).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy import ndimage

Images = npt.NDArray[np.uint8]
PixelShift = Callable[[Images, float, np.random.Generator], Images]


def _clip(a: npt.NDArray[np.floating]) -> Images:
    return np.clip(np.rint(a), 0, 255).astype(np.uint8)


def brightness(images: Images, factor: float, rng: np.random.Generator) -> Images:
    """Every pixel times ``factor`` (dimmer below 1)."""
    return _clip(images.astype(np.float32) * factor)


def contrast(images: Images, factor: float, rng: np.random.Generator) -> Images:
    """Pixels pulled towards each image's mean by ``factor`` (lower contrast below 1)."""
    x = images.astype(np.float32)
    mean = x.mean(axis=(1, 2), keepdims=True)
    return _clip(mean + (x - mean) * factor)


def rotation(images: Images, degrees: float, rng: np.random.Generator) -> Images:
    """Each image rotated by ``degrees``, clockwise or anticlockwise at random (bilinear)."""
    out = np.empty_like(images)
    signs = rng.choice([-1.0, 1.0], len(images))
    for i, (image, sign) in enumerate(zip(images, signs, strict=True)):
        rotated = ndimage.rotate(image.astype(np.float32), sign * degrees, reshape=False, order=1)
        out[i] = _clip(rotated)
    return out


def gaussian_noise(images: Images, sigma: float, rng: np.random.Generator) -> Images:
    """Independent Gaussian noise of ``sigma`` grey levels on every pixel (clipped)."""
    return _clip(images.astype(np.float32) + rng.normal(0.0, sigma, images.shape))


def blur(images: Images, sigma: float, rng: np.random.Generator) -> Images:
    """Gaussian blur of ``sigma`` pixels."""
    x = images.astype(np.float32)
    return _clip(ndimage.gaussian_filter(x, sigma=(0, sigma, sigma)))


def translation(images: Images, pixels: float, rng: np.random.Generator) -> Images:
    """Each image moved by ``pixels`` along both axes, each direction at random (zero fill)."""
    k = int(pixels)
    out = np.zeros_like(images)
    dy, dx = rng.choice([-k, k], len(images)), rng.choice([-k, k], len(images))
    for i, (image, y, x) in enumerate(zip(images, dy, dx, strict=True)):
        src = image[max(0, -y) : 28 - max(0, y), max(0, -x) : 28 - max(0, x)]
        out[i, max(0, y) : max(0, y) + src.shape[0], max(0, x) : max(0, x) + src.shape[1]] = src
    return out


@dataclass(frozen=True)
class ShiftFamily:
    """One kind of shift at several intensities; ``medium`` is the goal's intensity."""

    name: str
    unit: str
    intensities: tuple[float, ...]
    medium: float
    pixels: PixelShift | None = None
    """None: a prior shift (windows are drawn differently) or photos."""


FAMILIES: tuple[ShiftFamily, ...] = (
    ShiftFamily("brightness", "factor", (0.8, 0.6, 0.4), 0.6, brightness),
    ShiftFamily("contrast", "factor", (0.8, 0.6, 0.4), 0.6, contrast),
    ShiftFamily("rotation", "degrees", (5.0, 15.0, 30.0), 15.0, rotation),
    ShiftFamily("gaussian_noise", "sigma (grey levels)", (8.0, 16.0, 32.0), 16.0, gaussian_noise),
    ShiftFamily("blur", "sigma (pixels)", (0.5, 1.0, 1.5), 1.0, blur),
    ShiftFamily("translation", "pixels per axis", (1.0, 2.0, 3.0), 2.0, translation),
    ShiftFamily("class_prior", "share of the window from 3 classes", (0.25, 0.5, 1.0), 1.0),
    ShiftFamily("class_removal", "classes removed", (1.0, 2.0, 5.0), 2.0),
    ShiftFamily("photos", "share of real photos", (0.1, 0.25, 0.5), 0.5),
)
GOAL_CELLS: dict[str, float] = {
    "rotation": 15.0,
    "brightness": 0.6,
    "photos": 0.5,
    "class_prior": 1.0,
}
"""The issue's medium shifts: power >= 0.9 at window 1,000."""


def prior_window(
    labels: npt.NDArray[np.integer], size: int, share: float, rng: np.random.Generator
) -> npt.NDArray[np.intp]:
    """Indices of a window with ``share`` of it drawn from 3 random classes, the rest from all."""
    classes = rng.choice(10, 3, replace=False)
    focused = np.flatnonzero(np.isin(labels, classes))
    k = round(share * size)
    picked = rng.choice(focused, k, replace=False)
    rest = rng.choice(np.setdiff1d(np.arange(len(labels)), picked), size - k, replace=False)
    return np.concatenate([picked, rest])


def removal_window(
    labels: npt.NDArray[np.integer], size: int, removed: float, rng: np.random.Generator
) -> npt.NDArray[np.intp]:
    """Indices of a window drawn from the test images of all but ``removed`` random classes."""
    gone = rng.choice(10, int(removed), replace=False)
    kept = np.flatnonzero(~np.isin(labels, gone))
    return rng.choice(kept, size, replace=False)
