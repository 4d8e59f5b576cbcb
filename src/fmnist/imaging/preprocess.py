"""Turn an uploaded image into the 28x28 uint8 Fashion-MNIST-like input the model expects.

Fashion-MNIST images are light garments on a black background: the product photo (white
background) was trimmed to the object, its longest side resized to 28 px, the canvas extended to
28x28 with the object's bounding box centred, and the intensities negated. A real photo shows a
garment on an ordinary background (bed, floor, wall), so :func:`preprocess_image`:

1. downscales to a working size (longest side ~256 px, area averaging; JPEGs are decoded at a
   reduced DCT scale directly, :mod:`fmnist.imaging.decode`);
2. models the background from the image's border ring and thresholds every pixel's distance to
   it into a cleaned foreground mask (:mod:`fmnist.imaging.colour_model`); with
   ``segmentation="grabcut"`` (the default) that mask initialises a GrabCut segmentation
   (:mod:`fmnist.imaging.segmentation`), ``"colour"`` keeps the colour mask as it is;
3. inverts the luminance when the garment is darker than the background, so it ends up light on
   dark, and sets the background to 0 while keeping the garment's shading;
4. crops to the mask's bounding box, resizes, centres and stretches the contrast like
   Fashion-MNIST (:mod:`fmnist.imaging.framing`).

An image that already looks like Fashion-MNIST (28x28, grey, dark border) passes through
unchanged.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt
from PIL import Image

from fmnist import IMAGE_SIZE
from fmnist.imaging.colour_model import border_ring, colour_features, foreground_mask
from fmnist.imaging.decode import DEFAULT_MAX_PIXELS, flatten, load_oriented, open_checked
from fmnist.imaging.framing import Centering, bounding_box, frame_garment
from fmnist.imaging.segmentation import refine_mask

UInt8Array = npt.NDArray[np.uint8]
Mode = Literal["fashion_mnist", "photo"]
Segmentation = Literal["grabcut", "colour"]
SEGMENTATIONS: tuple[Segmentation, ...] = ("grabcut", "colour")
DEFAULT_SEGMENTATION: Segmentation = "grabcut"
"""GrabCut initialised from the colour model; ``colour`` is the colour model alone."""

WORK_SIZE = 256
"""Longest side of the working image that segmentation runs on."""
DRAFT_MIN_SIZE = 192
"""JPEGs are DCT-decoded at the smallest scale whose longest side is still at least this."""
FASHION_MNIST_BORDER_MAX = 48
"""A 28x28 grey image whose border ring has a median at most this is taken as Fashion-MNIST
(99.9% of its test images have a border median <= 4)."""
BLANK_RANGE = 16
"""Grey levels above the background that count as foreground in a 28x28 pass-through image."""

_BORDER_FRACTION = 0.04  # width of the border ring that models the background


@dataclass(frozen=True)
class PreprocessResult:
    """The model input made from one image, and what preprocessing found out about it.

    ``pixels`` is the uint8 28x28 image (light garment on black). ``bbox`` is the garment's
    ``(left, top, right, bottom)`` box in the oriented source image (None when nothing was found
    or for a Fashion-MNIST pass-through whose image is blank). ``background_level`` is the
    background's grey level (0-255) before any inversion; ``foreground_fraction`` the share of
    the image taken by the garment (0 for a blank image). ``segmentation`` names the method
    that found the garment (``none`` for a pass-through).
    """

    pixels: UInt8Array
    mode: Mode
    inverted: bool
    bbox: tuple[int, int, int, int] | None
    background_level: float
    foreground_fraction: float
    segmentation: str = "none"


def _median(values: UInt8Array) -> float:
    """The median of a short 1-D array (``np.median``'s value, without its overhead)."""
    ordered = np.sort(values)
    middle = len(ordered) // 2
    if len(ordered) % 2:
        return float(ordered[middle])
    return (float(ordered[middle - 1]) + float(ordered[middle])) / 2.0


def _is_fashion_mnist(image: Image.Image) -> tuple[UInt8Array, float] | None:
    """The pixels of a 28x28 grey image with a dark border and the border's median, else
    None."""
    if image.size != (IMAGE_SIZE, IMAGE_SIZE):
        return None
    if image.mode == "RGB":
        rgb = np.asarray(image)
        if not (
            np.array_equal(rgb[..., 0], rgb[..., 1]) and np.array_equal(rgb[..., 1], rgb[..., 2])
        ):
            return None
        gray: UInt8Array = np.ascontiguousarray(rgb[..., 0])
    else:
        gray = np.array(image if image.mode == "L" else image.convert("L"))
    background = _median(border_ring(gray, 1))
    if background > FASHION_MNIST_BORDER_MAX:
        return None
    return gray, background


def _passthrough(gray: UInt8Array, background: float) -> PreprocessResult:
    foreground = gray > background + BLANK_RANGE
    return PreprocessResult(
        pixels=gray,
        mode="fashion_mnist",
        inverted=False,
        bbox=bounding_box(foreground),
        background_level=background,
        foreground_fraction=int(np.count_nonzero(foreground)) / foreground.size,
    )


def _preprocess(
    image: Image.Image,
    source_size: tuple[int, int],
    centering: Centering,
    segmentation: Segmentation = DEFAULT_SEGMENTATION,
) -> PreprocessResult:
    """Preprocess an oriented image whose full-resolution size was ``source_size``."""
    if segmentation not in SEGMENTATIONS:
        raise ValueError(f"segmentation must be one of {SEGMENTATIONS}, got {segmentation!r}")
    flat = flatten(image)
    found = _is_fashion_mnist(flat)
    if found is not None and source_size == (IMAGE_SIZE, IMAGE_SIZE):
        return _passthrough(*found)
    width, height = flat.size
    factor = WORK_SIZE / max(width, height)
    if factor < 1.0:
        work_size = (max(1, round(width * factor)), max(1, round(height * factor)))
        flat = flat.resize(work_size, Image.Resampling.BOX)
    lum, features = colour_features(np.asarray(flat, dtype=np.float32))
    h, w = lum.shape
    ring_width = max(1, round(_BORDER_FRACTION * min(h, w)))
    if min(h, w) > 2 * ring_width:
        mask = foreground_mask(features, ring_width)
        if segmentation == "grabcut":
            rgb = np.asarray(flat.convert("RGB") if flat.mode != "RGB" else flat)
            mask = refine_mask(rgb, mask)
    else:  # too small to have a border and an inside
        mask = np.zeros((h, w), dtype=bool)
    ring_lum = border_ring(lum, ring_width)
    ring_mask = border_ring(mask.astype(np.float32), ring_width) > 0.5
    background_values = ring_lum[~ring_mask] if (~ring_mask).any() else ring_lum
    background = float(np.median(background_values))
    fraction = float(mask.mean())
    box = bounding_box(mask)
    if box is None:
        return PreprocessResult(
            pixels=np.zeros((IMAGE_SIZE, IMAGE_SIZE), dtype=np.uint8),
            mode="photo",
            inverted=False,
            bbox=None,
            background_level=background,
            foreground_fraction=0.0,
            segmentation=segmentation,
        )
    inverted = float(np.median(lum[mask])) < background
    value = 255.0 - lum if inverted else lum
    pixels = frame_garment(value, mask, box, centering)
    left, top, right, bottom = box
    sx, sy = source_size[0] / w, source_size[1] / h
    bbox = (
        math.floor(left * sx),
        math.floor(top * sy),
        min(source_size[0], math.ceil(right * sx)),
        min(source_size[1], math.ceil(bottom * sy)),
    )
    return PreprocessResult(
        pixels=pixels,
        mode="photo",
        inverted=inverted,
        bbox=bbox,
        background_level=background,
        foreground_fraction=fraction,
        segmentation=segmentation,
    )


def preprocess_image(
    image: Image.Image,
    *,
    centering: Centering = "bbox",
    segmentation: Segmentation = DEFAULT_SEGMENTATION,
) -> PreprocessResult:
    """Make the 28x28 model input from an oriented image of any size and mode.

    A 28x28 grey image with a dark border passes through unchanged (mode ``fashion_mnist``);
    anything else is treated as a photo (see the module docstring), segmented with
    ``segmentation``. Never raises for a valid image: a uniform image gives an all-zero result
    with ``foreground_fraction`` 0.
    """
    return _preprocess(image, image.size, centering, segmentation)


def preprocess_bytes(
    data: bytes,
    *,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    centering: Centering = "bbox",
    segmentation: Segmentation = DEFAULT_SEGMENTATION,
) -> PreprocessResult:
    """Decode ``data`` (see :func:`~fmnist.imaging.decode.decode_image`) and preprocess it
    (:func:`preprocess_image`).

    JPEGs are decoded at a reduced scale when they are much larger than the working size.
    Raises :class:`~fmnist.errors.InvalidImageError` for data that is not a usable image.
    """
    image, source_size = load_oriented(open_checked(data, max_pixels), DRAFT_MIN_SIZE)
    return _preprocess(image, source_size, centering, segmentation)
