"""Attribution maps drawn over the 28x28 image they explain (numpy and Pillow only).

Signed attributions use a diverging red/blue map centred on zero (red: pushes towards the
explained class, blue: away from it); the colour is blended over the grey input (drawn at
reduced contrast) with an opacity that grows with the magnitude, so pixels without attribution
show the image itself. The scale is the 99th percentile of the absolute values, so a few
extreme pixels do not wash out the map.
Upscaling is nearest-neighbour: one input pixel is one ``scale`` x ``scale`` block.
"""

from __future__ import annotations

import io

import numpy as np
import numpy.typing as npt
from PIL import Image

from fmnist import IMAGE_SIZE

DEFAULT_SCALE = 8
"""Pixels per input pixel in a heatmap (224x224 for a 28x28 image)."""
MAX_ALPHA = 0.9
"""Opacity of the colour at the largest absolute attribution."""
CLIP_PERCENTILE = 99.0
"""Attributions are scaled by this percentile of their absolute values (larger ones clip), so
a few extreme pixels do not wash out the rest of the map."""
BASE_CONTRAST = 0.6
"""The grey image is drawn at this share of its contrast, so the colours stand out on it."""

_NEGATIVE = np.array([33, 102, 172], dtype=np.float32)  # ColorBrewer RdBu end points
_CENTRE = np.array([247, 247, 247], dtype=np.float32)
_POSITIVE = np.array([178, 24, 43], dtype=np.float32)


def diverging_colors(values: npt.NDArray[np.floating]) -> npt.NDArray[np.float32]:
    """RGB colours (float 0-255, shape ``values.shape + (3,)``) of values in [-1, 1]."""
    v = np.clip(np.asarray(values, dtype=np.float32), -1.0, 1.0)[..., None]
    towards = np.where(v >= 0, _POSITIVE, _NEGATIVE)
    return _CENTRE + (towards - _CENTRE) * np.abs(v)


def normalise(
    attributions: npt.NDArray[np.floating], percentile: float = CLIP_PERCENTILE
) -> npt.NDArray[np.float32]:
    """``attributions`` in [-1, 1]: divided by the ``percentile`` of their absolute values
    (or by the largest one when that percentile is 0) and clipped; all zeros stay zeros."""
    a = np.nan_to_num(np.asarray(attributions, dtype=np.float32), nan=0.0)
    magnitude = np.abs(a)
    peak = float(np.percentile(magnitude, percentile)) if a.size else 0.0
    if peak <= 0:
        peak = float(magnitude.max()) if a.size else 0.0
    return np.clip(a / peak, -1.0, 1.0) if peak > 0 else np.zeros_like(a)


def heatmap_rgb(
    image: npt.NDArray[np.uint8], attributions: npt.NDArray[np.floating], scale: int = DEFAULT_SCALE
) -> npt.NDArray[np.uint8]:
    """The overlay as an RGB array ``(28 * scale, 28 * scale, 3)``."""
    shape = (IMAGE_SIZE, IMAGE_SIZE)
    pixels = np.asarray(image)
    a = np.asarray(attributions)
    if pixels.shape != shape or a.shape != shape:
        raise ValueError(
            f"heatmap needs a {shape} image and {shape} attributions, got {pixels.shape} and "
            f"{a.shape}"
        )
    if not 1 <= scale <= 64:
        raise ValueError(f"scale must be 1-64, got {scale}")
    v = normalise(a)
    grey = np.repeat(pixels.astype(np.float32)[..., None], 3, axis=-1) * BASE_CONTRAST
    alpha = (np.abs(v) * MAX_ALPHA)[..., None]
    blended = grey * (1 - alpha) + diverging_colors(v) * alpha
    rgb = np.clip(np.rint(blended), 0, 255).astype(np.uint8)
    return np.repeat(np.repeat(rgb, scale, axis=0), scale, axis=1)


def heatmap_png(
    image: npt.NDArray[np.uint8], attributions: npt.NDArray[np.floating], scale: int = DEFAULT_SCALE
) -> bytes:
    """A PNG of ``attributions (28, 28)`` overlaid on ``image`` (uint8 ``(28, 28)``).

    Red pixels push the model towards the explained class, blue ones away from it; the
    strongest colour marks the top 1 % of this map's absolute attributions.
    """
    buffer = io.BytesIO()
    Image.fromarray(heatmap_rgb(image, attributions, scale), mode="RGB").save(
        buffer, format="PNG", optimize=False, compress_level=6
    )
    return buffer.getvalue()
