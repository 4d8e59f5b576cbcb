"""Mask operations of fmnist.imaging.masks (OpenCV) against scipy.ndimage as the oracle."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pytest
from scipy import ndimage

from fmnist.imaging.masks import (
    closing,
    components,
    erode,
    fill_holes,
    grow_from_seeds,
    keep_components,
    opening,
)


def random_masks(count: int = 40) -> list[npt.NDArray[np.bool_]]:
    """Blobby masks of various sizes, some touching the edges, some with holes."""
    rng = np.random.default_rng(0)
    masks = []
    for _ in range(count):
        h, w = (int(v) for v in rng.integers(5, 90, 2))
        smooth = ndimage.gaussian_filter(rng.random((h, w)), rng.uniform(0.5, 3.0))
        masks.append(smooth > rng.uniform(0.35, 0.65))
    return masks


@pytest.mark.parametrize("iterations", [1, 2])
def test_morphology_matches_scipy_including_the_edges(iterations: int) -> None:
    for mask in random_masks():
        np.testing.assert_array_equal(
            erode(mask, iterations), ndimage.binary_erosion(mask, iterations=iterations)
        )
        np.testing.assert_array_equal(
            opening(mask, iterations), ndimage.binary_opening(mask, iterations=iterations)
        )
        np.testing.assert_array_equal(
            closing(mask, iterations), ndimage.binary_closing(mask, iterations=iterations)
        )


def test_components_and_hole_filling_match_scipy() -> None:
    for mask in random_masks():
        labels, sizes = components(mask)
        expected, count = ndimage.label(mask)
        np.testing.assert_array_equal(labels, expected)
        assert sizes.tolist() == np.bincount(expected.ravel(), minlength=count + 1)[1:].tolist()
        np.testing.assert_array_equal(fill_holes(mask), ndimage.binary_fill_holes(mask))


def test_holes_are_filled_but_bays_open_to_the_edge_are_not() -> None:
    mask = np.zeros((12, 12), dtype=bool)
    mask[2:9, 2:9] = True
    mask[4:7, 4:7] = False  # a hole
    mask[0:5, 10] = True
    filled = fill_holes(mask)
    assert filled[4:7, 4:7].all()
    assert not filled[0, 0] and not filled[11, 11]


def test_grow_from_seeds_keeps_only_seeded_components() -> None:
    weak = np.zeros((10, 10), dtype=bool)
    weak[1:4, 1:4] = True
    weak[6:9, 6:9] = True
    strong = np.zeros_like(weak)
    strong[2, 2] = True
    grown = grow_from_seeds(weak, strong)
    assert grown[1:4, 1:4].all() and not grown[6:9, 6:9].any()
    assert not grow_from_seeds(weak, np.zeros_like(weak)).any()


def test_keep_components_of_an_empty_mask_is_empty() -> None:
    empty = np.zeros((20, 20), dtype=bool)
    assert not keep_components(empty).any()
