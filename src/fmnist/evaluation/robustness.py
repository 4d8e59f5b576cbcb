"""Image corruptions in plain numpy and the accuracy of a model under each of them.

Every corruption maps a uint8 batch ``(N, H, W)`` to a new uint8 batch of the same shape, is
deterministic for a given seed and has three severities. Random choices (noise, the direction of
a rotation or shift) are drawn per image from ``numpy.random.default_rng(seed)``.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
UInt8Array = npt.NDArray[np.uint8]

CORRUPTIONS: tuple[str, ...] = (
    "gaussian_noise",
    "blur",
    "brightness",
    "contrast",
    "rotation",
    "shift",
)
"""Names accepted by :func:`corrupt`, in report order."""

# Per-severity parameters (index = severity - 1); pixel values are on the 0..255 scale.
_NOISE_SIGMA = (10.0, 20.0, 32.0)
_BLUR_SIGMA = (0.6, 1.0, 1.5)
_BRIGHTNESS_DELTA = (25.0, 50.0, 80.0)
_CONTRAST_FACTOR = (0.7, 0.5, 0.3)
_ROTATION_DEGREES = (10.0, 15.0, 20.0)
_SHIFT_PIXELS = (2, 3, 4)
_SHIFT_DIRECTIONS = np.array([(-1, 0), (1, 0), (0, -1), (0, 1)], dtype=np.int64)


def _check_images(images: npt.ArrayLike) -> UInt8Array:
    arr = np.asarray(images)
    if arr.ndim != 3:
        raise ValueError(f"images must have shape (N, H, W), got {arr.shape}")
    if arr.dtype != np.uint8:
        raise ValueError(f"images must be uint8, got dtype {arr.dtype}")
    return arr


def _to_uint8(x: FloatArray) -> UInt8Array:
    return np.clip(np.rint(x), 0, 255).astype(np.uint8)


def shift(images: npt.ArrayLike, dy: int | npt.ArrayLike, dx: int | npt.ArrayLike) -> UInt8Array:
    """Translate each image by ``(dy, dx)`` whole pixels (down/right positive), filling zeros.

    ``dy``/``dx`` are scalars or per-image integer arrays of length ``N``.
    """
    imgs = _check_images(images)
    n, h, w = imgs.shape
    dys = np.broadcast_to(np.asarray(dy, dtype=np.int64), (n,))
    dxs = np.broadcast_to(np.asarray(dx, dtype=np.int64), (n,))
    src_y = np.arange(h)[None, :] - dys[:, None]  # (N, H)
    src_x = np.arange(w)[None, :] - dxs[:, None]  # (N, W)
    valid = ((src_y >= 0) & (src_y < h))[:, :, None] & ((src_x >= 0) & (src_x < w))[:, None, :]
    gathered = imgs[
        np.arange(n)[:, None, None],
        np.clip(src_y, 0, h - 1)[:, :, None],
        np.clip(src_x, 0, w - 1)[:, None, :],
    ]
    return np.where(valid, gathered, 0).astype(np.uint8)


def rotate(images: npt.ArrayLike, degrees: float | npt.ArrayLike) -> UInt8Array:
    """Rotate each image counter-clockwise (as displayed) about its centre, bilinear, zero fill.

    ``degrees`` is a scalar or a per-image array of length ``N``.
    """
    imgs = _check_images(images)
    n, h, w = imgs.shape
    theta = np.deg2rad(np.broadcast_to(np.asarray(degrees, dtype=np.float64), (n,)))
    cos, sin = np.cos(theta)[:, None, None], np.sin(theta)[:, None, None]
    cy, cx = (h - 1) / 2.0, (w - 1) / 2.0
    yy, xx = np.meshgrid(np.arange(h) - cy, np.arange(w) - cx, indexing="ij")
    # Inverse mapping: each output pixel samples the input at the point rotated by -theta.
    src_x = cos * xx - sin * yy + cx
    src_y = sin * xx + cos * yy + cy
    return _to_uint8(_bilinear(imgs.astype(np.float64), src_y, src_x))


def _bilinear(images: FloatArray, ys: FloatArray, xs: FloatArray) -> FloatArray:
    """Sample ``images`` (N, H, W) at float coordinates (N, H, W); outside pixels count as 0."""
    n, h, w = images.shape
    y0, x0 = np.floor(ys), np.floor(xs)
    wy, wx = ys - y0, xs - x0
    batch = np.arange(n)[:, None, None]
    out = np.zeros(ys.shape, dtype=np.float64)
    for oy, ox, weight in (
        (0, 0, (1 - wy) * (1 - wx)),
        (0, 1, (1 - wy) * wx),
        (1, 0, wy * (1 - wx)),
        (1, 1, wy * wx),
    ):
        yi = (y0 + oy).astype(np.int64)
        xi = (x0 + ox).astype(np.int64)
        valid = (yi >= 0) & (yi < h) & (xi >= 0) & (xi < w)
        values = images[batch, np.clip(yi, 0, h - 1), np.clip(xi, 0, w - 1)]
        out += np.where(valid, values, 0.0) * weight
    return out


def gaussian_blur(images: npt.ArrayLike, sigma: float) -> UInt8Array:
    """Separable Gaussian blur (kernel radius ``ceil(3 sigma)``, edge padding)."""
    imgs = _check_images(images)
    if sigma <= 0:
        return imgs.copy()
    radius = max(1, math.ceil(3 * sigma))
    taps = np.arange(-radius, radius + 1, dtype=np.float64)
    kernel = np.exp(-0.5 * (taps / sigma) ** 2)
    kernel /= kernel.sum()
    x = imgs.astype(np.float64)
    h, w = x.shape[1:]
    padded = np.pad(x, ((0, 0), (radius, radius), (0, 0)), mode="edge")
    x = sum((k * padded[:, i : i + h, :] for i, k in enumerate(kernel)), np.zeros_like(x))
    padded = np.pad(x, ((0, 0), (0, 0), (radius, radius)), mode="edge")
    x = sum((k * padded[:, :, i : i + w] for i, k in enumerate(kernel)), np.zeros_like(x))
    return _to_uint8(x)


def corrupt(images: npt.ArrayLike, name: str, severity: int = 1, seed: int = 0) -> UInt8Array:
    """Apply corruption ``name`` (one of :data:`CORRUPTIONS`) at ``severity`` 1..3.

    Severities: gaussian_noise sigma 10/20/32, blur sigma 0.6/1.0/1.5, brightness +25/50/80,
    contrast x0.7/0.5/0.3 around each image's mean, rotation 10/15/20 degrees with a random sign
    per image, shift 2/3/4 px in a random axis direction per image. Returns a new uint8 array.
    """
    if name not in CORRUPTIONS:
        raise ValueError(f"unknown corruption {name!r}; valid names: {', '.join(CORRUPTIONS)}")
    if severity not in (1, 2, 3):
        raise ValueError(f"severity must be 1, 2 or 3, got {severity!r}")
    imgs = _check_images(images)
    s = severity - 1
    rng = np.random.default_rng(seed)
    n = imgs.shape[0]
    if name == "gaussian_noise":
        noise = rng.normal(0.0, _NOISE_SIGMA[s], size=imgs.shape)
        return _to_uint8(imgs.astype(np.float64) + noise)
    if name == "blur":
        return gaussian_blur(imgs, _BLUR_SIGMA[s])
    if name == "brightness":
        return _to_uint8(imgs.astype(np.float64) + _BRIGHTNESS_DELTA[s])
    if name == "contrast":
        x = imgs.astype(np.float64)
        mean = x.mean(axis=(1, 2), keepdims=True)
        return _to_uint8(mean + (x - mean) * _CONTRAST_FACTOR[s])
    if name == "rotation":
        signs = rng.choice(np.array([-1.0, 1.0]), size=n)
        return rotate(imgs, signs * _ROTATION_DEGREES[s])
    directions = _SHIFT_DIRECTIONS[rng.integers(0, len(_SHIFT_DIRECTIONS), size=n)]
    return shift(imgs, directions[:, 0] * _SHIFT_PIXELS[s], directions[:, 1] * _SHIFT_PIXELS[s])


def robustness_accuracy(
    predict: Callable[[UInt8Array], npt.ArrayLike],
    images: npt.ArrayLike,
    labels: npt.ArrayLike,
    severity: int = 2,
    seed: int = 0,
) -> dict[str, float]:
    """Accuracy of ``predict`` on the clean images and under each corruption at ``severity``.

    ``predict`` maps uint8 images ``(N, H, W)`` to predicted class ids ``(N,)``. Keys are
    ``"clean"`` followed by :data:`CORRUPTIONS`.
    """
    imgs = _check_images(images)
    y = np.asarray(labels)
    if y.shape != (imgs.shape[0],) or imgs.shape[0] == 0:
        raise ValueError(f"labels must have shape ({imgs.shape[0]},) with N >= 1, got {y.shape}")

    def accuracy(batch: UInt8Array) -> float:
        pred = np.asarray(predict(batch))
        if pred.shape != y.shape:
            raise ValueError(f"predict returned shape {pred.shape}, expected {y.shape}")
        return float((pred == y).mean())

    result = {"clean": accuracy(imgs)}
    for name in CORRUPTIONS:
        result[name] = accuracy(corrupt(imgs, name, severity, seed))
    return result
