"""Image corruptions (OpenCV and numpy) and the accuracy of a model under each of them.

Every corruption maps a uint8 batch ``(N, H, W)`` to a new uint8 batch of the same shape, is
deterministic for a given seed and has three severities. Random choices (noise, the direction of
a rotation or shift) are drawn per image from ``numpy.random.default_rng(seed)``.

Geometry and filtering are OpenCV's (:mod:`fmnist.imaging.opencv`, one thread): rotation
(bilinear) and shift (nearest) are ``cv2.warpAffine`` with a constant-0 border, one call per
image (``warpAffine`` gives wrong results beyond 4 channels, and stacking 4 images per call
barely pays); the blur is ``cv2.GaussianBlur`` on float32, up to 128 images (OpenCV 5's channel
limit) per call as channels. Against the float64 numpy code this replaced, the shift is
bit-identical, while OpenCV's 1/32-pixel sampling grid and fixed-point weights (rotation) and
float32 arithmetic (blur) change fewer than one pixel in 40,000 by one grey level.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable

import numpy as np
import numpy.typing as npt

from fmnist.imaging.opencv import cv2

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
_MAX_CHANNELS = 128  # the most channels one OpenCV 5 image may have


def _check_images(images: npt.ArrayLike) -> UInt8Array:
    arr = np.asarray(images)
    if arr.ndim != 3:
        raise ValueError(f"images must have shape (N, H, W), got {arr.shape}")
    if arr.dtype != np.uint8:
        raise ValueError(f"images must be uint8, got dtype {arr.dtype}")
    return arr


def _to_uint8(x: FloatArray) -> UInt8Array:
    return np.clip(np.rint(x), 0, 255).astype(np.uint8)


def _warp_affine(
    imgs: UInt8Array, matrices: Iterable[npt.ArrayLike], interpolation: int
) -> UInt8Array:
    """Warp image ``i`` by the 2x3 matrix ``matrices[i]`` (input to output), zero border."""
    n, h, w = imgs.shape
    out = np.empty_like(imgs)
    for i, matrix in zip(range(n), matrices, strict=True):
        out[i] = cv2.warpAffine(
            imgs[i],
            np.asarray(matrix, dtype=np.float64),
            (w, h),
            flags=interpolation,
            borderMode=cv2.BORDER_CONSTANT,
            borderValue=0,
        )
    return out


def shift(images: npt.ArrayLike, dy: int | npt.ArrayLike, dx: int | npt.ArrayLike) -> UInt8Array:
    """Translate each image by ``(dy, dx)`` whole pixels (down/right positive), filling zeros.

    ``dy``/``dx`` are scalars or per-image integer arrays of length ``N``.
    """
    imgs = _check_images(images)
    n = imgs.shape[0]
    dys = np.broadcast_to(np.asarray(dy, dtype=np.int64), (n,))
    dxs = np.broadcast_to(np.asarray(dx, dtype=np.int64), (n,))
    matrices = ([[1.0, 0.0, x], [0.0, 1.0, y]] for y, x in zip(dys, dxs, strict=True))
    return _warp_affine(imgs, matrices, cv2.INTER_NEAREST)


def rotate(images: npt.ArrayLike, degrees: float | npt.ArrayLike) -> UInt8Array:
    """Rotate each image counter-clockwise (as displayed) about its centre, bilinear, zero fill.

    ``degrees`` is a scalar or a per-image array of length ``N``. The centre is
    ``((W - 1) / 2, (H - 1) / 2)``, so 90 degrees is :func:`numpy.rot90` on square images.
    """
    imgs = _check_images(images)
    n, h, w = imgs.shape
    angles = np.broadcast_to(np.asarray(degrees, dtype=np.float64), (n,))
    centre = ((w - 1) / 2.0, (h - 1) / 2.0)
    matrices = (cv2.getRotationMatrix2D(centre, float(a), 1.0) for a in angles)
    return _warp_affine(imgs, matrices, cv2.INTER_LINEAR)


def gaussian_blur(images: npt.ArrayLike, sigma: float) -> UInt8Array:
    """Gaussian blur (kernel radius ``ceil(3 sigma)``, edge pixels replicated), rounded to uint8."""
    imgs = _check_images(images)
    if sigma <= 0:
        return imgs.copy()
    size = 2 * max(1, math.ceil(3 * sigma)) + 1
    n, h, w = imgs.shape
    planes = imgs.transpose(1, 2, 0).astype(np.float32)  # (H, W, N): the images as channels
    out = np.empty_like(imgs)
    for start in range(0, n, _MAX_CHANNELS):
        stop = start + _MAX_CHANNELS
        blurred = cv2.GaussianBlur(
            np.ascontiguousarray(planes[:, :, start:stop]),
            (size, size),
            sigma,
            sigmaY=sigma,
            borderType=cv2.BORDER_REPLICATE,
        )
        as_float = np.asarray(blurred, dtype=np.float64).reshape(h, w, -1)
        out[start:stop] = _to_uint8(as_float.transpose(2, 0, 1))
    return out


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
