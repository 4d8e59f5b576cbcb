"""k-means and Otsu of fmnist.imaging.colour_model (OpenCV, deterministic)."""

from __future__ import annotations

import numpy as np

from fmnist.imaging.colour_model import kmeans, otsu_threshold


def test_otsu_matches_the_between_class_variance_maximum_of_the_histogram() -> None:
    rng = np.random.default_rng(1)
    for _ in range(20):
        values = np.concatenate(
            [rng.normal(3.0, 1.0, 3000), rng.normal(rng.uniform(6, 12), 1.5, 1000)]
        ).astype(np.float32)
        hist, edges = np.histogram(values, bins=128)
        p = hist / hist.sum()
        centres = (edges[:-1] + edges[1:]) / 2
        w0, m0 = np.cumsum(p)[:-1], np.cumsum(p * centres)[:-1]
        total = float((p * centres).sum())
        with np.errstate(divide="ignore", invalid="ignore"):
            between = np.nan_to_num((total * w0 - m0) ** 2 / (w0 * (1 - w0)))
        expected = float(edges[int(np.argmax(between)) + 1])
        assert abs(otsu_threshold(values) - expected) < 1e-4


def test_otsu_of_constant_values_is_that_value() -> None:
    assert otsu_threshold(np.full(50, 7.0, dtype=np.float32)) == 7.0


def test_kmeans_finds_separated_clusters_and_is_deterministic() -> None:
    rng = np.random.default_rng(2)
    means = np.array([[20.0, 0.0], [120.0, 30.0], [220.0, -30.0]], dtype=np.float32)
    points = np.concatenate([rng.normal(m, 3.0, (300, 2)) for m in means]).T.astype(np.float32)
    centres, labels = kmeans(points, 3)
    again, labels_again = kmeans(points, 3)
    np.testing.assert_array_equal(centres, again)
    np.testing.assert_array_equal(labels, labels_again)
    order = np.argsort(centres[:, 0])
    np.testing.assert_allclose(centres[order], means, atol=1.0)
    assert sorted(np.bincount(labels).tolist()) == [300, 300, 300]
