"""Probability calibration: softmax, temperature scaling, ECE and reliability curves.

All functions work on numpy arrays of shape ``(N, K)`` (probabilities or logits) and integer
labels of shape ``(N,)``; computations are done in float64.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

TEMPERATURE_BOUNDS: tuple[float, float] = (0.05, 20.0)
"""Range searched by :func:`fit_temperature`."""

_LOG_EPS = 1e-12


def check_scores_and_labels(
    scores: npt.ArrayLike, labels: npt.ArrayLike, what: str = "probs"
) -> tuple[FloatArray, IntArray]:
    """Validate ``(N, K)`` finite scores and ``(N,)`` labels in ``[0, K)``; return float64/int64."""
    s = np.asarray(scores, dtype=np.float64)
    y = np.asarray(labels)
    if s.ndim != 2 or s.shape[0] == 0 or s.shape[1] < 2:
        raise ValueError(f"{what} must have shape (N, K) with N >= 1 and K >= 2, got {s.shape}")
    if y.shape != (s.shape[0],):
        raise ValueError(f"labels must have shape ({s.shape[0]},), got {y.shape}")
    if not np.issubdtype(y.dtype, np.integer):
        raise ValueError(f"labels must be integers, got dtype {y.dtype}")
    if not np.all(np.isfinite(s)):
        raise ValueError(f"{what} contain NaN or infinite values")
    y64 = y.astype(np.int64)
    if y64.min() < 0 or y64.max() >= s.shape[1]:
        raise ValueError(f"labels must lie in [0, {s.shape[1]}), got [{y64.min()}, {y64.max()}]")
    return s, y64


def log_softmax(logits: npt.ArrayLike, temperature: float = 1.0) -> FloatArray:
    """Row-wise ``log(softmax(logits / temperature))``, computed stably in float64."""
    if not temperature > 0 or not math.isfinite(temperature):
        raise ValueError(f"temperature must be a positive finite number, got {temperature}")
    z = np.asarray(logits, dtype=np.float64) / temperature
    z = z - z.max(axis=-1, keepdims=True)
    out: FloatArray = z - np.log(np.exp(z).sum(axis=-1, keepdims=True))
    return out


def softmax(logits: npt.ArrayLike, temperature: float = 1.0) -> FloatArray:
    """Row-wise ``softmax(logits / temperature)`` (max-subtracted, so large logits are safe)."""
    return np.exp(log_softmax(logits, temperature))


def _nll(logits: FloatArray, labels: IntArray, temperature: float) -> float:
    logp = log_softmax(logits, temperature)
    return float(-logp[np.arange(labels.size), labels].mean())


def fit_temperature(logits: npt.ArrayLike, labels: npt.ArrayLike) -> float:
    """Temperature ``T`` minimising the NLL of ``softmax(logits / T)``; ``T`` in [0.05, 20].

    A bounded scalar search over ``log T``; deterministic for the same inputs. ``T > 1`` softens
    an overconfident model, ``T < 1`` sharpens an underconfident one.
    """
    z, y = check_scores_and_labels(logits, labels, what="logits")
    lo, hi = (math.log(b) for b in TEMPERATURE_BOUNDS)
    from scipy.optimize import minimize_scalar  # fitting only; serving reads the result

    result = minimize_scalar(
        lambda log_t: _nll(z, y, math.exp(log_t)),
        bounds=(lo, hi),
        method="bounded",
        options={"xatol": 1e-6},
    )
    return float(math.exp(float(result.x)))


def _bin_index(confidence: FloatArray, n_bins: int) -> IntArray:
    """Equal-width bins over [0, 1]; bin ``i`` holds ``(i/n, (i+1)/n]`` (0 goes to bin 0)."""
    if n_bins < 1:
        raise ValueError(f"n_bins must be >= 1, got {n_bins}")
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    return np.digitize(confidence, edges[1:-1], right=True).astype(np.int64)


def reliability_curve(
    probs: npt.ArrayLike, labels: npt.ArrayLike, n_bins: int = 15
) -> tuple[FloatArray, FloatArray, IntArray]:
    """Per confidence bin: mean top-1 confidence, top-1 accuracy and sample count.

    Arrays have length ``n_bins``; empty bins hold NaN confidence and accuracy and count 0.
    """
    p, y = check_scores_and_labels(probs, labels)
    confidence = p.max(axis=1)
    correct = (p.argmax(axis=1) == y).astype(np.float64)
    bins = _bin_index(confidence, n_bins)
    count = np.bincount(bins, minlength=n_bins).astype(np.int64)
    conf_sum = np.bincount(bins, weights=confidence, minlength=n_bins)
    acc_sum = np.bincount(bins, weights=correct, minlength=n_bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        bin_conf = np.where(count > 0, conf_sum / count, np.nan)
        bin_acc = np.where(count > 0, acc_sum / count, np.nan)
    return bin_conf, bin_acc, count


def expected_calibration_error(
    probs: npt.ArrayLike, labels: npt.ArrayLike, n_bins: int = 15
) -> float:
    """Top-1 expected calibration error with ``n_bins`` equal-width confidence bins.

    ``sum_b |accuracy_b - confidence_b| * n_b / N``; 0 is perfectly calibrated.
    """
    bin_conf, bin_acc, count = reliability_curve(probs, labels, n_bins)
    filled = count > 0
    gaps = np.abs(bin_acc[filled] - bin_conf[filled]) * count[filled]
    return float(gaps.sum() / count.sum())


def negative_log_likelihood(probs: npt.ArrayLike, labels: npt.ArrayLike) -> float:
    """Mean ``-log p(true class)``; probabilities are clipped at 1e-12 so the value stays finite."""
    p, y = check_scores_and_labels(probs, labels)
    return float(-np.log(np.clip(p[np.arange(y.size), y], _LOG_EPS, None)).mean())


def rescale_probabilities(probs: npt.ArrayLike, temperature: float) -> FloatArray:
    """Apply temperature scaling to probabilities: ``softmax(log(probs) / temperature)``.

    Equal to scaling the original logits, since ``log(probs)`` differs from them by a per-row
    constant, for every probability that did not underflow to exactly 0 (those are clipped at
    the smallest positive float64 first).
    """
    p = np.asarray(probs, dtype=np.float64)
    return softmax(np.log(np.clip(p, np.finfo(np.float64).tiny, None)), temperature)


def energy_score(logits: npt.ArrayLike, temperature: float = 1.0) -> FloatArray:
    """Free energy ``-T * logsumexp(logits / T)`` per row: high values suggest an input unlike
    the training data (Liu et al., 2020, energy-based out-of-distribution detection)."""
    z = np.asarray(logits, dtype=np.float64) / temperature
    top = z.max(axis=1, keepdims=True)
    lse = top[:, 0] + np.log(np.exp(z - top).sum(axis=1))
    result: FloatArray = -temperature * lse
    return result


def energy_threshold(logits: npt.ArrayLike, temperature: float, quantile: float) -> float:
    """The energy below which ``quantile`` of in-distribution (validation) samples fall."""
    if not 0.0 < quantile < 1.0:
        raise ValueError(f"quantile must be in (0, 1), got {quantile}")
    return float(np.quantile(energy_score(logits, temperature), quantile))
