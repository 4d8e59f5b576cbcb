"""Binary mask operations with OpenCV: morphology, connected components, hole filling.

Connectivity is 4 (the 3x3 cross) throughout, and pixels outside the image count as background,
so a mask that touches the edge is eroded there too (the conventions of ``scipy.ndimage``, which
these functions replaced with identical results).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from fmnist.imaging.opencv import cv2

BoolArray = npt.NDArray[np.bool_]
IntArray = npt.NDArray[np.intp]
UInt8Array = npt.NDArray[np.uint8]

KEEP_RELATIVE = 0.2
"""Components at least this share of the largest are kept (pairs of shoes)."""
MIN_COMPONENT_SHARE = 0.002
"""Components smaller than this share of the image are specks."""

_CROSS = cv2.getStructuringElement(cv2.MORPH_CROSS, (3, 3))


def _u8(mask: BoolArray) -> UInt8Array:
    return np.ascontiguousarray(mask, dtype=np.uint8)


def _morphology(op: int, mask: BoolArray, iterations: int) -> BoolArray:
    out = cv2.morphologyEx(
        _u8(mask),
        op,
        _CROSS,
        iterations=iterations,
        borderType=cv2.BORDER_CONSTANT,
        borderValue=0,
    )
    return np.asarray(out) > 0


def erode(mask: BoolArray, iterations: int = 1) -> BoolArray:
    """``mask`` eroded ``iterations`` times by the 3x3 cross."""
    return _morphology(cv2.MORPH_ERODE, mask, iterations)


def opening(mask: BoolArray, iterations: int = 1) -> BoolArray:
    """``mask`` eroded then dilated ``iterations`` times: thin parts and specks removed."""
    return _morphology(cv2.MORPH_OPEN, mask, iterations)


def closing(mask: BoolArray, iterations: int = 1) -> BoolArray:
    """``mask`` dilated then eroded ``iterations`` times: narrow gaps bridged."""
    return _morphology(cv2.MORPH_CLOSE, mask, iterations)


def components(mask: BoolArray) -> tuple[IntArray, IntArray]:
    """The 4-connected components of ``mask``: labels (0 is background, then 1, 2, ... in
    raster order) and the pixel count of each component (entry ``i`` is label ``i + 1``)."""
    count, labels, stats, _ = cv2.connectedComponentsWithStats(_u8(mask), connectivity=4)
    sizes = np.asarray(stats, dtype=np.intp)[1:count, cv2.CC_STAT_AREA]
    return np.asarray(labels, dtype=np.intp), sizes


def fill_holes(mask: BoolArray) -> BoolArray:
    """``mask`` with every background region that does not reach the image edge filled."""
    h, w = mask.shape
    outside = np.zeros((h + 2, w + 2), dtype=np.uint8)
    outside[1:-1, 1:-1] = mask
    cv2.floodFill(outside, None, (0, 0), 1, flags=4)  # the frame reaches all the edge background
    filled: BoolArray = mask | (outside[1:-1, 1:-1] == 0)
    return filled


def grow_from_seeds(weak: BoolArray, strong: BoolArray) -> BoolArray:
    """The components of ``weak`` that hold at least one ``strong`` pixel (hysteresis)."""
    labels, sizes = components(weak)
    seeded = np.zeros(len(sizes) + 1, dtype=bool)
    seeded[labels[strong]] = True
    seeded[0] = False
    grown: BoolArray = seeded[labels]
    return grown


def keep_components(mask: BoolArray) -> BoolArray:
    """``mask`` without specks and components much smaller than the largest, holes filled.

    A component is kept when it has at least :data:`KEEP_RELATIVE` of the largest one's pixels
    and :data:`MIN_COMPONENT_SHARE` of the image.
    """
    labels, sizes = components(mask)
    if len(sizes) == 0:
        return mask
    floor = max(KEEP_RELATIVE * float(sizes.max()), MIN_COMPONENT_SHARE * mask.size)
    kept = np.concatenate([[False], sizes >= floor])
    return fill_holes(kept[labels])
