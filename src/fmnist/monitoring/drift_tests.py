"""The two-sample tests of the drift monitor, on plain numpy arrays.

Each test compares a window of traffic with the reference and returns a :class:`TestResult`
with its statistic and a valid p-value under "no shift"; :mod:`fmnist.monitoring.drift`
combines them into one verdict. The choice follows "Failing Loudly" (Rabanser et al., NeurIPS
2019): black-box shift detection (per-class Kolmogorov-Smirnov on the softmax outputs) and MMD
on reduced representations were the strongest detectors there.
"""

from __future__ import annotations

import functools
import math
from typing import Any

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, Field
from scipy import stats
from threadpoolctl import ThreadpoolController

Array = npt.NDArray[Any]


class TestResult(BaseModel):
    """One test: its statistic, p-value, the threshold it was held to and whether it fired.

    ``p_value`` is None for a test that could not run (too little data) or is informational;
    such a test never enters the verdict (``in_verdict`` false). ``threshold`` and ``fired``
    are set by the verdict's multiple-testing correction.
    """

    __test__ = False  # not a pytest test class

    name: str
    statistic: float | None
    p_value: float | None
    threshold: float | None = None
    fired: bool = False
    in_verdict: bool = True
    details: dict[str, Any] = Field(default_factory=dict)


def _finite(x: Array) -> npt.NDArray[np.float64]:
    a = np.asarray(x, dtype=np.float64).ravel()
    return a[np.isfinite(a)]


EXACT_KS_MAX = 100
"""Up to this many rows in the smaller sample KS p-values are exact (``scipy.stats.ks_2samp``);
above it they come from the limiting Kolmogorov distribution (``scipy.stats.kstwobign``) of
``sqrt(nm / (n + m)) * D``, which is accurate there and hundreds of times faster than scipy's
own "asymp" method (an exact one-sample distribution at n = nm / (n + m))."""


def ks_statistic(reference: Array, window: Array) -> float:
    """The two-sample KS distance ``sup |F_ref - F_win|`` of two 1-D samples."""
    ref, win = np.sort(reference), np.sort(window)
    values = np.concatenate([ref, win])
    f_ref = np.searchsorted(ref, values, side="right") / len(ref)
    f_win = np.searchsorted(win, values, side="right") / len(win)
    return float(np.abs(f_ref - f_win).max())


def ks_2samp(reference: Array, window: Array) -> tuple[float, float]:
    """Two-sided two-sample KS test of 1-D samples: ``(D, p-value)``."""
    ref, win = _finite(reference), _finite(window)
    n, m = len(ref), len(win)
    if min(n, m) <= EXACT_KS_MAX:
        result = stats.ks_2samp(ref, win, method="exact")
        return float(result.statistic), float(result.pvalue)
    d = ks_statistic(ref, win)
    return d, float(min(1.0, stats.kstwobign.sf(np.sqrt(n * m / (n + m)) * d)))


def ks_test(name: str, reference: Array, window: Array, **details: Any) -> TestResult:
    """Two-sample Kolmogorov-Smirnov test (two-sided, see :func:`ks_2samp`)."""
    ref, win = _finite(reference), _finite(window)
    if len(ref) < 2 or len(win) < 2:
        return TestResult(name=name, statistic=None, p_value=None, in_verdict=False)
    d, p = ks_2samp(ref, win)
    return TestResult(
        name=name,
        statistic=d,
        p_value=p,
        details={
            "reference_mean": float(ref.mean()),
            "window_mean": float(win.mean()),
            **details,
        },
    )


def bbsd_ks(
    reference_probs: Array, window_probs: Array, class_names: list[str] | None = None
) -> TestResult:
    """Black-box shift detection: KS per softmax column, Bonferroni over the classes.

    The p-value is ``min(1, classes * min_k p_k)``; the statistic is the largest KS distance.
    """
    ref = np.asarray(reference_probs, dtype=np.float64)
    win = np.asarray(window_probs, dtype=np.float64)
    k = ref.shape[1]
    names = class_names or [str(i) for i in range(k)]
    per_class = [ks_2samp(ref[:, j], win[:, j]) for j in range(k)]
    d = [r[0] for r in per_class]
    p = [r[1] for r in per_class]
    worst = int(np.argmin(p))
    return TestResult(
        name="bbsd_ks",
        statistic=max(d),
        p_value=min(1.0, k * min(p)),
        details={
            "correction": f"Bonferroni over {k} classes",
            "most_shifted_class": names[worst],
            "per_class": {names[j]: {"statistic": d[j], "p_value": p[j]} for j in range(k)},
        },
    )


def psi(reference_counts: Array, window_counts: Array, epsilon: float = 1e-4) -> float:
    """Population stability index of two count vectors (shares floored at ``epsilon``)."""
    r = np.asarray(reference_counts, dtype=np.float64)
    w = np.asarray(window_counts, dtype=np.float64)
    pr = np.maximum(r / r.sum(), epsilon)
    pw = np.maximum(w / w.sum(), epsilon)
    return float(((pw - pr) * np.log(pw / pr)).sum())


def prediction_shift(
    reference_pred: Array, window_pred: Array, classes: int, class_names: list[str] | None = None
) -> TestResult:
    """Chi-square test of homogeneity on predicted-class counts (reference against window).

    Classes predicted in neither sample are dropped; the PSI is reported in the details (0.1:
    moderate, 0.25: large shift, by the usual rule of thumb).
    """
    names = class_names or [str(i) for i in range(classes)]
    ref = np.bincount(np.asarray(reference_pred, dtype=np.int64), minlength=classes)[:classes]
    win = np.bincount(np.asarray(window_pred, dtype=np.int64), minlength=classes)[:classes]
    used = (ref + win) > 0
    details: dict[str, Any] = {
        "psi": psi(ref, win),
        "reference_share": {n: float(c) / ref.sum() for n, c in zip(names, ref, strict=True)},
        "window_share": {n: float(c) / max(win.sum(), 1) for n, c in zip(names, win, strict=True)},
    }
    if win.sum() < 2 or used.sum() < 2:
        return TestResult(
            name="prediction_chi2", statistic=None, p_value=None, in_verdict=False, details=details
        )
    result = stats.chi2_contingency(np.stack([ref[used], win[used]]), correction=False)
    details["dof"] = int(result.dof)
    return TestResult(
        name="prediction_chi2",
        statistic=float(result.statistic),
        p_value=float(result.pvalue),
        details=details,
    )


def proportion_test(name: str, successes: int, n: int, expected: float) -> TestResult:
    """Exact two-sided binomial test of an observed share against ``expected``."""
    if n == 0:
        return TestResult(name=name, statistic=None, p_value=None, in_verdict=False)
    result = stats.binomtest(successes, n, expected)
    return TestResult(
        name=name,
        statistic=successes / n,
        p_value=float(result.pvalue),
        details={"observed": successes / n, "expected": expected, "n": n},
    )


def accuracy_test(correct: int, n: int, reference_accuracy: float, min_n: int) -> TestResult:
    """One-sided exact binomial test: is live accuracy below the reference accuracy?"""
    details: dict[str, Any] = {"labelled": n, "reference_accuracy": reference_accuracy}
    if n < min_n:
        details["reason"] = f"{n} labelled predictions, fewer than {min_n}"
        return TestResult(
            name="live_accuracy", statistic=None, p_value=None, in_verdict=False, details=details
        )
    result = stats.binomtest(correct, n, reference_accuracy, alternative="less")
    interval = result.proportion_ci(confidence_level=0.95, method="wilson")
    details |= {"ci95": [float(interval.low), float(interval.high)]}
    return TestResult(
        name="live_accuracy",
        statistic=correct / n,
        p_value=float(result.pvalue),
        details=details,
    )


# --------------------------------------------------------------------------------------------
# maximum mean discrepancy


@functools.cache
def _blas_controller() -> ThreadpoolController:
    """The loaded BLAS libraries, found once (a lookup per call cost about 25 ms)."""
    return ThreadpoolController()


def _sq_distances(z: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    sq = (z * z).sum(axis=1)
    d: npt.NDArray[np.float64] = np.maximum(sq[:, None] + sq[None, :] - 2.0 * (z @ z.T), 0.0)
    np.fill_diagonal(d, 0.0)
    return d


MEDIAN_PAIRS = 100_000
"""Pairs behind the median heuristic; larger samples use this many random pairs."""


def median_bandwidth(sq_distances: npt.NDArray[np.float64], seed: int = 0) -> float:
    """Median of the off-diagonal squared distances (the Gaussian kernel's ``2 sigma^2``).

    Exact up to :data:`MEDIAN_PAIRS` pairs, else over that many seeded random pairs (the
    heuristic needs no more; the permutation test stays exact for any fixed bandwidth).
    """
    n = len(sq_distances)
    if n * (n - 1) // 2 <= MEDIAN_PAIRS:
        values = sq_distances[np.triu_indices(n, k=1)]
    else:
        rng = np.random.default_rng(seed)
        i, j = rng.integers(0, n, MEDIAN_PAIRS), rng.integers(0, n, MEDIAN_PAIRS)
        values = sq_distances[i[i != j], j[i != j]]
    median = float(np.median(values))
    return median if median > 0 else 1.0


def mmd2_unbiased(kernel: npt.NDArray[np.floating], n: int) -> float:
    """Unbiased MMD^2 of the first ``n`` points against the rest, from the pooled kernel."""
    k = np.asarray(kernel, dtype=np.float64)
    m = len(k) - n
    kxx, kyy, kxy = k[:n, :n], k[n:, n:], k[:n, n:]
    sxx = (kxx.sum() - np.trace(kxx)) / (n * (n - 1))
    syy = (kyy.sum() - np.trace(kyy)) / (m * (m - 1))
    return float(sxx + syy - 2.0 * kxy.mean())


def mmd_permutation_test(
    reference: Array,
    window: Array,
    *,
    permutations: int = 200,
    seed: int = 0,
) -> TestResult:
    """MMD two-sample test with a Gaussian kernel and a permutation p-value.

    The bandwidth is the median heuristic on the pooled sample (``k(x, y) = exp(-|x-y|^2 /
    median |x-y|^2)``), which permuting leaves unchanged, so the test stays exact. All
    permutations are evaluated at once: with ``E`` the ``(B, N)`` 0/1 matrix of first-sample
    membership and ``K0`` the kernel with a zero diagonal, ``(E @ K0) * E`` gives every
    permutation's within-sample sums in one matrix product. The p-value is
    ``(1 + #{perm >= observed}) / (1 + B)``.
    """
    x = np.asarray(reference, dtype=np.float64)
    y = np.asarray(window, dtype=np.float64)
    n, m = len(x), len(y)
    if n < 2 or m < 2:
        return TestResult(name="mmd", statistic=None, p_value=None, in_verdict=False)
    # One BLAS thread: a multi-threaded OpenBLAS busy-waits, and slowed this test ten-fold
    # when another process held the second core.
    with _blas_controller().limit(limits=1, user_api="blas"):
        observed, null, bandwidth = _mmd_permutations(x, y, permutations, seed)
    p_value = (1.0 + float((null >= observed).sum())) / (1.0 + permutations)
    return TestResult(
        name="mmd",
        statistic=observed,
        p_value=p_value,
        details={
            "kernel": "gaussian, median heuristic",
            "bandwidth": bandwidth,
            "permutations": permutations,
            "reference_size": n,
            "window_size": m,
            "dims": int(x.shape[1]),
            "min_p_value": 1.0 / (1.0 + permutations),
        },
    )


def _mmd_permutations(
    x: npt.NDArray[np.float64], y: npt.NDArray[np.float64], permutations: int, seed: int
) -> tuple[float, npt.NDArray[np.float64], float]:
    """Observed MMD^2, the ``permutations`` null values and the bandwidth."""
    n, m = len(x), len(y)
    z = np.concatenate([x, y])
    d2 = _sq_distances(z)
    bandwidth = median_bandwidth(d2, seed)
    k0 = np.exp(-d2 / bandwidth).astype(np.float32)
    np.fill_diagonal(k0, 0.0)
    total = float(k0.sum(dtype=np.float64))
    rng = np.random.default_rng(seed)
    members = np.zeros((permutations + 1, n + m), dtype=np.float32)
    members[0, :n] = 1.0  # row 0: the observed split
    for b in range(1, permutations + 1):
        members[b, rng.permutation(n + m)[:n]] = 1.0
    ke = members @ k0
    sxx = (ke * members).sum(axis=1, dtype=np.float64)
    sxy = ke.sum(axis=1, dtype=np.float64) - sxx
    syy = total - sxx - 2.0 * sxy
    mmd2: npt.NDArray[np.float64] = sxx / (n * (n - 1)) + syy / (m * (m - 1)) - 2.0 * sxy / (n * m)
    return float(mmd2[0]), mmd2[1:], bandwidth


def holm(p_values: list[float], alpha: float) -> tuple[list[float], list[bool]]:
    """Holm's step-down thresholds and rejections for ``p_values`` at family-wise ``alpha``.

    Threshold of the test ranked ``i`` (0-based, by ascending p): ``alpha / (K - i)``; tests
    are rejected in that order until the first one above its threshold.
    """
    k = len(p_values)
    order = sorted(range(k), key=lambda i: p_values[i])
    thresholds = [math.nan] * k
    fired = [False] * k
    rejecting = True
    for rank, i in enumerate(order):
        thresholds[i] = alpha / (k - rank)
        rejecting = rejecting and p_values[i] <= thresholds[i]
        fired[i] = rejecting
    return thresholds, fired
