"""The colour model of a photo's background, and the foreground mask it gives.

Photos are framed on the garment, so the border ring shows the background. Its pixels are
clustered (k-means, a few colours, each with its own per-channel spread) and every pixel is
scored by its distance to the nearest background cluster, in units of that cluster's spread.
The score is thresholded with Otsu's method (with a floor) and hysteresis, helped by the colours
of the picture's centre, then the mask is cleaned: opening, closing, specks dropped, holes filled.
Features are luminance and two opponent colour channels (red-green, yellow-blue), or luminance
alone for a grey image. k-means and Otsu are OpenCV's, started and binned deterministically.
"""

from __future__ import annotations

from typing import TypeVar

import numpy as np
import numpy.typing as npt

from fmnist.imaging.masks import closing, grow_from_seeds, keep_components, opening
from fmnist.imaging.opencv import cv2

BoolArray = npt.NDArray[np.bool_]
FloatArray = npt.NDArray[np.float32]
IntArray = npt.NDArray[np.intp]
Scalar = TypeVar("Scalar", bound=np.generic)

_CLUSTERS = 3  # background colour clusters
_MIN_CLUSTER_SHARE = 0.1  # smaller border clusters are the garment touching the edge
_NOISE_FLOOR = 4.0  # minimum spread of a background cluster per channel, in grey levels
_MIN_THRESHOLD = 2.5  # minimum distance (in cluster spreads) that counts as foreground
_KMEANS_POINTS = 1024  # clusters are fitted on at most this many (evenly spaced) points
_KMEANS_ITERATIONS = 8
_OTSU_BINS = 128
_CENTRE_SHARE = 0.5  # a border cluster covering this share of the central box is the garment
_MAX_GARMENT_BORDER_SHARE = 0.4  # ... unless it covers at least this share of the border
_HYSTERESIS = 0.6  # weak foreground (this share of the Otsu threshold) joins strong neighbours
_GARMENT_LOW = 1.5  # a pixel nearer a garment colour than the background needs only this
_GARMENT_MIN_SHARE = 0.15  # garment colours: clusters of at least this share of the centre
_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)


def colour_features(pixels: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Luminance ``(h, w)`` and the feature planes ``(c, h, w)`` of a grey or RGB float image:
    luminance, red-green and yellow-blue for colour, luminance alone for grey."""
    if pixels.ndim == 2:
        return pixels, pixels[None]
    lum: FloatArray = pixels @ _LUMA
    r, g, b = pixels[..., 0], pixels[..., 1], pixels[..., 2]
    return lum, np.stack([lum, r - g, (r + g) / 2 - b])


def border_ring(a: npt.NDArray[Scalar], width: int) -> npt.NDArray[Scalar]:
    """The values within ``width`` of the image edge of ``(..., h, w)``, as ``(..., n)``."""
    lead = a.shape[:-2]
    parts = (
        a[..., :width, :],
        a[..., -width:, :],
        a[..., width:-width, :width],
        a[..., width:-width, -width:],
    )
    return np.concatenate([p.reshape(*lead, -1) for p in parts], axis=-1)


def kmeans(
    points: FloatArray, k: int, iterations: int = _KMEANS_ITERATIONS
) -> tuple[FloatArray, IntArray]:
    """k-means of ``(c, n)`` points (OpenCV), started deterministically: no random restarts.

    The initial centres are the points at the ``(j + 0.5) / k`` quantiles of the first channel
    (lightness); OpenCV runs up to ``iterations`` Lloyd steps from the labels they induce.
    Returns the centres ``(k, c)`` and each point's cluster.
    """
    data = np.ascontiguousarray(points.T, dtype=np.float32)
    n = data.shape[0]
    order = np.argsort(data[:, 0], kind="stable")
    initial = data[order[((np.arange(k) + 0.5) / k * n).astype(np.intp)]]
    squared = ((data[:, None, :] - initial[None, :, :]) ** 2).sum(axis=2)
    labels = squared.argmin(axis=1).astype(np.int32).reshape(-1, 1)
    criteria = (cv2.TERM_CRITERIA_MAX_ITER | cv2.TERM_CRITERIA_EPS, iterations, 0.0)
    _, labels_out, centres = cv2.kmeans(data, k, labels, criteria, 1, cv2.KMEANS_USE_INITIAL_LABELS)
    return (
        np.asarray(centres, dtype=np.float32),
        np.asarray(labels_out, dtype=np.intp).reshape(-1),
    )


def otsu_threshold(values: FloatArray, bins: int = _OTSU_BINS) -> float:
    """Otsu's threshold of ``values`` on a ``bins``-bin histogram of their range (OpenCV).

    The values are binned like ``np.histogram(values, bins)`` and OpenCV picks the bin that
    maximises the between-class variance; its upper edge is returned, so the upper class is
    ``values > threshold``. ``bins`` is at most 256.
    """
    low, high = float(values.min()), float(values.max())
    if not high > low:
        return high
    scaled = (values.astype(np.float64) - low) * (bins / (high - low))
    levels = np.minimum(scaled, bins - 1).astype(np.uint8).reshape(1, -1)
    level, _ = cv2.threshold(levels, 0, 255, cv2.THRESH_BINARY | cv2.THRESH_OTSU)
    return low + (float(level) + 1.0) * (high - low) / bins


def clusters(points: FloatArray, k: int) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Colour clusters of ``(c, n)`` points: centres ``(k, c)``, per-channel spreads ``(k, c)``
    (with a noise floor) and the share of points in each; fitted on at most 1024 points."""
    step = max(1, points.shape[1] // _KMEANS_POINTS)
    sample = points[:, ::step]
    k = min(k, sample.shape[1])
    centres, assign = kmeans(sample, k)
    share = (np.bincount(assign, minlength=k) / sample.shape[1]).astype(np.float32)
    spreads = np.full(centres.shape, _NOISE_FLOOR, dtype=np.float32)
    for j in range(k):
        members = sample[:, assign == j]
        if members.shape[1] > 1:
            spreads[j] = np.maximum(members.std(axis=1), _NOISE_FLOOR)
    return centres, spreads, share


def distance_to(
    points: FloatArray, centres: FloatArray, spreads: FloatArray, which: IntArray
) -> tuple[FloatArray, IntArray]:
    """Per point of ``(c, n)``: distance to the nearest of the ``which`` clusters in units of its
    per-channel spreads (RMS over channels, so a typical member is at about 1), and its index."""
    channels, n = points.shape
    best = np.full(n, np.inf, dtype=np.float32)
    nearest = np.zeros(n, dtype=np.intp)
    for j in which:
        d2 = np.zeros(n, dtype=np.float32)
        for ch in range(channels):
            t = (points[ch] - centres[j, ch]) * np.float32(1.0 / spreads[j, ch])
            d2 += t * t
        closer = d2 < best
        best[closer] = d2[closer]
        nearest[closer] = j
    distance: FloatArray = np.sqrt(best / np.float32(channels))
    return distance, nearest


def foreground_mask(features: FloatArray, ring_width: int) -> BoolArray:
    """Pixels of ``(c, h, w)`` features unlike the background modelled from the border ring of
    ``ring_width`` pixels, cleaned up (see the module docstring)."""
    c, h, w = features.shape
    flat = features.reshape(c, -1)
    centres, spreads, share = clusters(border_ring(features, ring_width), _CLUSTERS)
    k = len(centres)
    # A border cluster that also fills the centre of the picture is the garment touching the
    # edge (photos are tightly framed), not background: drop it, unless it dominates the border.
    cy, cx = h // 2, w // 2
    centre = features[:, cy - h // 6 : cy + h // 6 + 1, cx - w // 6 : cx + w // 6 + 1].reshape(
        c, -1
    )
    c_dist, c_nearest = distance_to(centre, centres, spreads, np.arange(k))
    centre_share = np.bincount(c_nearest[c_dist < _MIN_THRESHOLD], minlength=k) / centre.shape[1]
    garment_like = (centre_share >= _CENTRE_SHARE) & (share < _MAX_GARMENT_BORDER_SHARE)
    keep = (share >= _MIN_CLUSTER_SHARE) & ~garment_like
    if not keep.any():
        keep = share == share.max()
    background = np.flatnonzero(keep)
    distance = distance_to(flat, centres, spreads, background)[0].reshape(h, w)
    top = float(np.percentile(distance, 99.5))
    if top <= _MIN_THRESHOLD:
        return np.zeros((h, w), dtype=bool)
    high = max(otsu_threshold(np.minimum(distance, top).ravel()), _MIN_THRESHOLD)
    strong = distance > high
    weak = distance > max(_HYSTERESIS * high, _MIN_THRESHOLD)
    # Garment colours: clusters of the central box that are not background. A pixel nearer to
    # them than to the background is foreground even when it is close to a background colour.
    g_centres, g_spreads, g_share = clusters(centre, _CLUSTERS)
    g_background = distance_to(g_centres.T, centres, spreads, background)[0]
    garment = np.flatnonzero((g_share >= _GARMENT_MIN_SHARE) & (g_background >= _MIN_THRESHOLD))
    if len(garment):
        d_garment = distance_to(flat, g_centres, g_spreads, garment)[0].reshape(h, w)
        weak |= (distance > _GARMENT_LOW) & (d_garment < distance)
        strong |= (d_garment < 1.0) & (distance > _MIN_THRESHOLD)
    mask = opening(grow_from_seeds(weak, strong), iterations=2)
    mask = closing(mask, iterations=2) | mask
    return keep_components(mask)
