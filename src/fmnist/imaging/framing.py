"""Frame a segmented garment like Fashion-MNIST: crop, resize, centre, stretch the contrast.

Fashion-MNIST trimmed each product photo to the object, resized its longest side to 28 px and
centred the object's bounding box on a 28x28 canvas (measured on its test set); MNIST centres the
intensity centroid instead (``centering="mass"``). The garment's 99th percentile is then
stretched to 255. The resize is Pillow's Lanczos, antialiased when it shrinks: OpenCV's Lanczos
is not (it aliases a 256 px crop shrunk to 28 px) and its area filter is a box, not Lanczos.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import numpy.typing as npt
from PIL import Image

from fmnist import IMAGE_SIZE
from fmnist.imaging.opencv import cv2

BoolArray = npt.NDArray[np.bool_]
FloatArray = npt.NDArray[np.float32]
UInt8Array = npt.NDArray[np.uint8]
Centering = Literal["bbox", "mass"]
Box = tuple[int, int, int, int]

STRETCH_PERCENTILE = 99.0
"""The garment's grey level at this percentile is stretched to 255."""


def bounding_box(mask: BoolArray) -> Box | None:
    """The ``(left, top, right, bottom)`` box (right and bottom exclusive) of ``mask``, or None
    when it is empty."""
    left, top, width, height = cv2.boundingRect(np.ascontiguousarray(mask, dtype=np.uint8))
    if width == 0 or height == 0:
        return None
    return (left, top, left + width, top + height)


def _resize_float(a: FloatArray, size: tuple[int, int]) -> FloatArray:
    """Resize a float image to ``size`` (width, height) with Lanczos (antialiased)."""
    image = Image.fromarray(np.ascontiguousarray(a, dtype=np.float32))
    out: FloatArray = np.asarray(image.resize(size, Image.Resampling.LANCZOS), dtype=np.float32)
    return out


def _place(
    crop: FloatArray, crop_mask: FloatArray, centering: Centering
) -> tuple[FloatArray, FloatArray]:
    """Resize so the longest side is 28 and pad to 28x28, centred as asked."""
    ch, cw = crop.shape
    scale = IMAGE_SIZE / max(ch, cw)
    nw, nh = max(1, round(cw * scale)), max(1, round(ch * scale))
    small = np.clip(_resize_float(crop, (nw, nh)), 0.0, 255.0)
    small_mask = np.clip(_resize_float(crop_mask, (nw, nh)), 0.0, 1.0)
    top, left = (IMAGE_SIZE - nh) // 2, (IMAGE_SIZE - nw) // 2
    moments = cv2.moments(small) if centering == "mass" else {"m00": 0.0}
    if moments["m00"] > 0:
        cy, cx = moments["m01"] / moments["m00"], moments["m10"] / moments["m00"]
        centre = (IMAGE_SIZE - 1) / 2
        top = int(np.clip(round(centre - cy), 0, IMAGE_SIZE - nh))
        left = int(np.clip(round(centre - cx), 0, IMAGE_SIZE - nw))
    out = np.zeros((IMAGE_SIZE, IMAGE_SIZE), dtype=np.float32)
    out_mask = np.zeros_like(out)
    out[top : top + nh, left : left + nw] = small
    out_mask[top : top + nh, left : left + nw] = small_mask
    return out, out_mask


def frame_garment(value: FloatArray, mask: BoolArray, box: Box, centering: Centering) -> UInt8Array:
    """The 28x28 uint8 input from the garment's grey levels ``value`` (light on dark) inside
    ``mask``, whose bounding box is ``box``: background 0, garment framed as in the module
    docstring."""
    left, top, right, bottom = box
    crop_mask = mask[top:bottom, left:right].astype(np.float32)
    crop = value[top:bottom, left:right] * crop_mask
    out, out_mask = _place(crop, crop_mask, centering)
    garment = out[out_mask > 0.5]
    high = float(np.percentile(garment, STRETCH_PERCENTILE)) if garment.size else 0.0
    if high > 0:
        out = out * (255.0 / high)
    pixels: UInt8Array = np.clip(np.rint(out), 0, 255).astype(np.uint8)
    return pixels
