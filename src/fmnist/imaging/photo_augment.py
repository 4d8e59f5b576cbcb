"""Photo-like variants of a photo, before preprocessing: another camera, room or hand.

:func:`augment_photo` changes a working-size RGB photo by imperfect framing (a crop that cuts
into the margins), exposure, gamma and colour cast, an illumination gradient (a shadow across
the scene), defocus blur (OpenCV's Gaussian blur) and sensor noise. The result goes through the
same preprocessing as a served photo, so the segmentation's own mistakes under those conditions
become training examples too. The 28x28 batch counterpart is
:class:`fmnist.data.photo_batch_augment.PhotoBatchAugmentation`.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

from fmnist.imaging.opencv import cv2

UInt8Array = npt.NDArray[np.uint8]
FloatArray = npt.NDArray[np.float32]


def gaussian_blur(x: FloatArray, sigma: float) -> FloatArray:
    """Blur an ``(h, w)`` or ``(h, w, c)`` float image by ``sigma`` pixels along both axes.

    The kernel reaches 4 sigma and the edges are mirrored (``scipy.ndimage.gaussian_filter``'s
    defaults, which this replaced).
    """
    size = 2 * int(4.0 * sigma + 0.5) + 1
    blurred = cv2.GaussianBlur(
        np.ascontiguousarray(x), (size, size), sigma, sigmaY=sigma, borderType=cv2.BORDER_REFLECT
    )
    return np.asarray(blurred, dtype=np.float32).reshape(x.shape)


def augment_photo(rgb: UInt8Array, rng: np.random.Generator) -> UInt8Array:
    """A photo-like variant of an ``(h, w, 3)`` uint8 photo (see the module docstring)."""
    h, w = rgb.shape[:2]
    if rng.random() < 0.7:  # imperfect framing
        top, bottom = (rng.uniform(0.0, 0.12, 2) * h).astype(int)
        left, right = (rng.uniform(0.0, 0.12, 2) * w).astype(int)
        if h - top - bottom >= 16 and w - left - right >= 16:
            rgb = rgb[top : h - bottom, left : w - right]
            h, w = rgb.shape[:2]
    x = rgb.astype(np.float32) / 255.0
    gamma = math.exp(rng.uniform(math.log(0.7), math.log(1.5)))
    gain = rng.uniform(0.6, 1.3)
    cast = rng.uniform(0.9, 1.1, 3).astype(np.float32)
    x = np.power(x, gamma) * gain * cast
    if rng.random() < 0.5:  # an illumination gradient or a soft shadow across the scene
        angle = rng.uniform(0, 2 * math.pi)
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        ramp = (math.cos(angle) * (xx / w - 0.5) + math.sin(angle) * (yy / h - 0.5)) + 0.5
        low = rng.uniform(0.45, 0.9)
        x = x * (low + (1.0 - low) * np.clip(ramp, 0.0, 1.0))[..., None]
    if rng.random() < 0.4:  # defocus
        x = gaussian_blur(x, rng.uniform(0.5, 1.8))
    if rng.random() < 0.5:  # sensor noise
        x = x + rng.normal(0.0, rng.uniform(0.01, 0.05), x.shape).astype(np.float32)
    out: UInt8Array = np.clip(np.rint(x * 255.0), 0, 255).astype(np.uint8)
    return out
