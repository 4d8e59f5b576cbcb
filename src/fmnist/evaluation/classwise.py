"""Calibration per class, one-vs-rest: is "P(class c) = 0.8" right 80% of the time, for each c?

For class ``c`` every test image contributes the probability the model gives to ``c`` and
whether ``c`` is its true class. These pairs are binned by probability (equal-width bins over
[0, 1], as for the top-1 ECE) and the class's ECE is ``sum_b |freq_b - conf_b| * n_b / N``.
Most probabilities of a class are near 0, so the per-class ECE is dominated by how well the
model says "not this class"; the reliability diagrams show every bin with its count.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from fmnist.evaluation.calibration import check_scores_and_labels

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


def classwise_reliability(
    probs: npt.ArrayLike, labels: npt.ArrayLike, n_bins: int = 15
) -> tuple[FloatArray, FloatArray, IntArray]:
    """Per class and bin: mean probability, observed frequency and count, each ``(K, n_bins)``.

    Empty bins hold NaN probability and frequency and count 0.
    """
    p, y = check_scores_and_labels(probs, labels)
    if n_bins < 1:
        raise ValueError(f"n_bins must be >= 1, got {n_bins}")
    k = p.shape[1]
    bins = np.digitize(p, np.linspace(0.0, 1.0, n_bins + 1)[1:-1], right=True)  # (N, K)
    cells = (np.arange(k)[None, :] * n_bins + bins).ravel()
    is_class = (y[:, None] == np.arange(k)[None, :]).astype(np.float64)
    count = np.bincount(cells, minlength=k * n_bins).reshape(k, n_bins).astype(np.int64)
    prob_sum = np.bincount(cells, weights=p.ravel(), minlength=k * n_bins).reshape(k, n_bins)
    hit_sum = np.bincount(cells, weights=is_class.ravel(), minlength=k * n_bins).reshape(k, n_bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_prob = np.where(count > 0, prob_sum / count, np.nan)
        frequency = np.where(count > 0, hit_sum / count, np.nan)
    return mean_prob, frequency, count


def classwise_ece(probs: npt.ArrayLike, labels: npt.ArrayLike, n_bins: int = 15) -> FloatArray:
    """One-vs-rest expected calibration error of each class, shape ``(K,)``."""
    mean_prob, frequency, count = classwise_reliability(probs, labels, n_bins)
    gaps = np.where(count > 0, np.abs(np.nan_to_num(frequency) - np.nan_to_num(mean_prob)), 0.0)
    result: FloatArray = (gaps * count).sum(axis=1) / count.sum(axis=1)
    return result
