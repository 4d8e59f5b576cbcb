"""Foreground segmentation of a garment photo: GrabCut initialised from the colour model.

:mod:`fmnist.imaging.colour_model` first models the background from the border ring (colour
clusters) and thresholds every pixel's distance to it. That global threshold misses garment parts
whose colour is near a background colour and keeps background patches whose colour is not, and
it has no notion of edges. :func:`refine_mask` turns its mask into a graph-cut segmentation
(OpenCV's GrabCut: Gaussian mixture colour models of foreground and background, five components
each, plus a contrast-sensitive smoothness term, solved by max-flow):

* the colour mask's pixels are *probable foreground*, its eroded core *sure foreground*;
* so is the central box (the middle 60% of each side), because photos are framed on the garment:
  this recovers garments the colour model lost to a background cluster of similar colour (a
  black shoe next to a dark vignetted corner), and GrabCut hands the box's background back;
* the border ring outside the mask is *sure background*, everything else *probable background*;
* when the colour model found (almost) nothing, GrabCut starts from the classical rectangle
  (the central 80% probable foreground);
* it runs at a longest side of :data:`GRABCUT_SIZE` px for :data:`GRABCUT_ITERATIONS` iterations
  (about 5 ms of one core), and the mask is scaled back and cleaned (components smaller than a
  fifth of the largest are dropped, which keeps pairs of shoes; holes are filled:
  :func:`fmnist.imaging.masks.keep_components`).

Why GrabCut: the mixtures model textured and multi-coloured backgrounds (bedding, parquet, tiles)
better than three clusters; the smoothness term follows the garment's edges and bridges prints
and folds; initialised from the colour mask it needs no user input and converges in two
iterations. Watershed needs markers that are exactly what the colour mask already gives, with no
colour model to correct them; a learned matting model is not available offline. The result falls
back to the colour mask when GrabCut cannot run or finds nothing.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from fmnist.imaging.masks import MIN_COMPONENT_SHARE, erode, keep_components
from fmnist.imaging.opencv import cv2

BoolArray = npt.NDArray[np.bool_]
UInt8Array = npt.NDArray[np.uint8]

GRABCUT_SIZE = 96
"""Longest side (px) of the image GrabCut runs on."""
GRABCUT_ITERATIONS = 2
"""GrabCut iterations (each re-fits the colour mixtures and re-solves the cut)."""

_RECT_INIT_BELOW = 0.03  # a colour mask below this share of the image is replaced by a rectangle
_RECT_MARGIN = 0.1  # the rectangle leaves this share of each side out
_CENTRE_MARGIN = 0.2  # the central box (probable foreground) leaves this share of each side out
_RING_FRACTION = 0.04  # width of the sure-background border ring (share of the short side)
_CORE_EROSION = 2  # iterations of erosion that make the sure-foreground core
_GC_BGD, _GC_FGD, _GC_PR_BGD, _GC_PR_FGD = cv2.GC_BGD, cv2.GC_FGD, cv2.GC_PR_BGD, cv2.GC_PR_FGD


def _trimap(initial: BoolArray) -> UInt8Array:
    """GrabCut's initial labels from the colour mask (see the module docstring)."""
    h, w = initial.shape
    ring = max(1, round(_RING_FRACTION * min(h, w)))
    border = np.zeros((h, w), dtype=bool)
    border[:ring], border[-ring:], border[:, :ring], border[:, -ring:] = True, True, True, True
    labels = np.full((h, w), _GC_PR_BGD, dtype=np.uint8)
    if initial.mean() < _RECT_INIT_BELOW:
        my, mx = round(_RECT_MARGIN * h), round(_RECT_MARGIN * w)
        labels[my : h - my, mx : w - mx] = _GC_PR_FGD
        labels[border] = _GC_BGD
        return labels
    labels[initial] = _GC_PR_FGD
    my, mx = round(_CENTRE_MARGIN * h), round(_CENTRE_MARGIN * w)
    labels[my : h - my, mx : w - mx] = _GC_PR_FGD
    labels[erode(initial, iterations=_CORE_EROSION)] = _GC_FGD
    labels[border & ~initial] = _GC_BGD
    return labels


def refine_mask(
    rgb: UInt8Array,
    initial: BoolArray,
    *,
    size: int = GRABCUT_SIZE,
    iterations: int = GRABCUT_ITERATIONS,
) -> BoolArray:
    """The GrabCut segmentation of ``rgb`` ``(h, w, 3)`` started from the mask ``initial``.

    Returns a boolean ``(h, w)`` mask; ``initial`` (cleaned) when GrabCut cannot run or keeps
    almost nothing. Deterministic (OpenCV's k-means initialisation is seeded per call).
    """
    h, w = initial.shape
    factor = min(1.0, size / max(h, w))
    sw, sh = max(1, round(w * factor)), max(1, round(h * factor))
    small = cv2.resize(rgb, (sw, sh), interpolation=cv2.INTER_AREA) if factor < 1 else rgb
    seed = initial
    if factor < 1:
        seed = cv2.resize(initial.astype(np.uint8), (sw, sh), interpolation=cv2.INTER_NEAREST) > 0
    labels = _trimap(seed)
    has_fg = np.isin(labels, (_GC_FGD, _GC_PR_FGD)).any()
    has_bg = np.isin(labels, (_GC_BGD, _GC_PR_BGD)).any()
    if min(sw, sh) < 8 or not (has_fg and has_bg):
        return keep_components(initial)
    background_model = np.zeros((1, 65), dtype=np.float64)
    foreground_model = np.zeros((1, 65), dtype=np.float64)
    cv2.setRNGSeed(0)
    try:
        cv2.grabCut(
            np.ascontiguousarray(small[..., ::-1]),  # OpenCV images are BGR
            labels,
            (0, 0, 0, 0),  # the rectangle is unused when initialising from the mask
            background_model,
            foreground_model,
            iterations,
            cv2.GC_INIT_WITH_MASK,
        )
    except cv2.error:
        return keep_components(initial)
    found = (labels == _GC_FGD) | (labels == _GC_PR_FGD)
    if factor < 1:
        scaled = cv2.resize(found.astype(np.uint8) * 255, (w, h), interpolation=cv2.INTER_LINEAR)
        found = scaled > 127
    mask = keep_components(found)
    if mask.mean() < MIN_COMPONENT_SHARE:
        return keep_components(initial)
    return mask
