"""Bootstrap confidence intervals of accuracy, macro F1 and ECE, vectorised over resamples.

Test images are drawn with replacement ``resamples`` times (seeded); each metric is computed on
every resample with ``numpy.bincount`` over (resample, class) or (resample, bin) cells, and the
interval is the percentile interval of the resampled values. ECE is biased upwards under
resampling (every resample adds noise to the bin gaps), so its interval can sit above the point
estimate; the report keeps both as measured.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict, Field

from fmnist.evaluation.calibration import check_scores_and_labels, expected_calibration_error

FloatArray = npt.NDArray[np.float64]

_CELLS_PER_CHUNK = 2_000_000
"""Resampled indices held in memory at once (16 MB of int64)."""


class Interval(BaseModel):
    """A point estimate on the full set and its bootstrap interval."""

    model_config = ConfigDict(extra="forbid")

    estimate: float
    low: float
    high: float


class BootstrapIntervals(BaseModel):
    """Percentile intervals of the headline metrics (``confidence`` e.g. 0.95)."""

    model_config = ConfigDict(extra="forbid")

    n: int = Field(ge=1)
    resamples: int = Field(ge=1)
    confidence: float
    seed: int
    accuracy: Interval
    macro_f1: Interval
    ece: Interval


def resampled_metrics(
    probs: npt.ArrayLike,
    labels: npt.ArrayLike,
    *,
    resamples: int = 1000,
    seed: int = 0,
    n_bins: int = 15,
) -> dict[str, FloatArray]:
    """Accuracy, macro F1 (all ``K`` classes) and top-1 ECE on each of ``resamples`` resamples.

    Returns arrays of length ``resamples`` keyed ``accuracy``, ``macro_f1`` and ``ece``; the
    same seed gives the same values.
    """
    p, y = check_scores_and_labels(probs, labels)
    if resamples < 1:
        raise ValueError(f"resamples must be >= 1, got {resamples}")
    n, k = p.shape
    pred = p.argmax(axis=1)
    confidence = p.max(axis=1)
    correct = (pred == y).astype(np.float64)
    if n_bins < 1:
        raise ValueError(f"n_bins must be >= 1, got {n_bins}")
    # The bins of fmnist.evaluation.calibration: bin i holds (i/n, (i+1)/n], 0 goes to bin 0.
    bins = np.digitize(confidence, np.linspace(0.0, 1.0, n_bins + 1)[1:-1], right=True)
    rng = np.random.default_rng(seed)
    out = {name: np.empty(resamples) for name in ("accuracy", "macro_f1", "ece")}
    chunk = max(1, _CELLS_PER_CHUNK // n)
    for start in range(0, resamples, chunk):
        b = min(chunk, resamples - start)
        idx = rng.integers(0, n, size=(b, n))
        hit = correct[idx]
        rows = np.arange(b)[:, None]
        out["accuracy"][start : start + b] = hit.mean(axis=1)

        class_cells = (rows * k + y[idx]).ravel()
        true_count = np.bincount(class_cells, minlength=b * k).reshape(b, k)
        tp = np.bincount(class_cells, weights=hit.ravel(), minlength=b * k).reshape(b, k)
        pred_count = np.bincount((rows * k + pred[idx]).ravel(), minlength=b * k).reshape(b, k)
        denominator = true_count + pred_count
        f1 = np.divide(2.0 * tp, denominator, out=np.zeros((b, k)), where=denominator > 0)
        out["macro_f1"][start : start + b] = f1.mean(axis=1)

        bin_cells = (rows * n_bins + bins[idx]).ravel()
        conf_sum = np.bincount(bin_cells, weights=confidence[idx].ravel(), minlength=b * n_bins)
        acc_sum = np.bincount(bin_cells, weights=hit.ravel(), minlength=b * n_bins)
        gaps = np.abs(acc_sum - conf_sum).reshape(b, n_bins)
        out["ece"][start : start + b] = gaps.sum(axis=1) / n
    return out


def bootstrap_intervals(
    probs: npt.ArrayLike,
    labels: npt.ArrayLike,
    *,
    resamples: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
    n_bins: int = 15,
) -> BootstrapIntervals:
    """Point estimates and percentile bootstrap intervals of accuracy, macro F1 and ECE."""
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    p, y = check_scores_and_labels(probs, labels)
    values = resampled_metrics(p, y, resamples=resamples, seed=seed, n_bins=n_bins)
    pred = p.argmax(axis=1)
    k = p.shape[1]
    true_count = np.bincount(y, minlength=k)
    pred_count = np.bincount(pred, minlength=k)
    tp = np.bincount(y[pred == y], minlength=k)
    denominator = true_count + pred_count
    f1 = np.divide(2.0 * tp, denominator, out=np.zeros(k), where=denominator > 0)
    estimates = {
        "accuracy": float((pred == y).mean()),
        "macro_f1": float(f1.mean()),
        "ece": expected_calibration_error(p, y, n_bins),
    }
    tail = (1.0 - confidence) / 2.0
    intervals = {
        name: Interval(
            estimate=estimates[name],
            low=float(np.quantile(values[name], tail)),
            high=float(np.quantile(values[name], 1.0 - tail)),
        )
        for name in estimates
    }
    return BootstrapIntervals(
        n=int(y.size), resamples=resamples, confidence=confidence, seed=seed, **intervals
    )
