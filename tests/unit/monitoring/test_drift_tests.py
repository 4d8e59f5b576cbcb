"""The drift monitor's two-sample tests on synthetic data with known answers."""

from __future__ import annotations

import time

import numpy as np
import pytest

from fmnist.monitoring.drift_tests import (
    accuracy_test,
    bbsd_ks,
    holm,
    ks_test,
    median_bandwidth,
    mmd2_unbiased,
    mmd_permutation_test,
    prediction_shift,
    proportion_test,
    psi,
)


def _softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def _naive_mmd2(x: np.ndarray, y: np.ndarray, bandwidth: float) -> float:
    def k(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return np.exp(-((a[:, None, :] - b[None, :, :]) ** 2).sum(-1) / bandwidth)

    n, m = len(x), len(y)
    kxx, kyy, kxy = k(x, x), k(y, y), k(x, y)
    return float(
        (kxx.sum() - np.trace(kxx)) / (n * (n - 1))
        + (kyy.sum() - np.trace(kyy)) / (m * (m - 1))
        - 2 * kxy.mean()
    )


def test_holm_thresholds_and_step_down() -> None:
    thresholds, fired = holm([0.01, 0.04, 0.03, 0.005], 0.05)
    assert thresholds == pytest.approx([0.05 / 3, 0.05 / 1, 0.05 / 2, 0.05 / 4])
    # 0.005 <= 0.0125 and 0.01 <= 0.0167 are rejected; 0.03 > 0.025 stops the procedure.
    assert fired == [True, False, False, True]
    assert holm([], 0.05) == ([], [])


def test_mmd_statistic_matches_the_naive_definition() -> None:
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(40, 3)), rng.normal(0.5, size=(30, 3))
    result = mmd_permutation_test(x, y, permutations=50, seed=1)
    z = np.concatenate([x, y])
    d2 = ((z[:, None] - z[None]) ** 2).sum(-1)
    bandwidth = median_bandwidth(d2)
    assert bandwidth == pytest.approx(np.median(d2[np.triu_indices(70, 1)]))
    assert result.details["bandwidth"] == pytest.approx(bandwidth)
    assert result.statistic == pytest.approx(_naive_mmd2(x, y, bandwidth), rel=1e-4)
    assert mmd2_unbiased(np.exp(-d2 / bandwidth), 40) == pytest.approx(result.statistic, rel=1e-4)


def test_mmd_p_values_are_valid_under_the_null_and_small_under_a_shift() -> None:
    rng = np.random.default_rng(0)
    p_null = [
        mmd_permutation_test(
            rng.normal(size=(80, 4)), rng.normal(size=(60, 4)), permutations=99, seed=s
        ).p_value
        for s in range(200)
    ]
    assert all(p is not None and 0.01 <= p <= 1 for p in p_null)
    rejected = np.mean([p is not None and p <= 0.05 for p in p_null])
    assert rejected <= 0.08
    assert np.mean(p_null) == pytest.approx(0.5, abs=0.08)  # roughly uniform
    shifted = mmd_permutation_test(
        rng.normal(size=(200, 4)), rng.normal(0.5, size=(200, 4)), permutations=99
    )
    assert shifted.p_value == pytest.approx(1 / 100)


def test_mmd_is_fast_enough_for_a_window_of_1000() -> None:
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(1000, 32)), rng.normal(size=(1000, 32))
    mmd_permutation_test(x[:10], y[:10], permutations=5)  # warm-up
    start = time.perf_counter()
    result = mmd_permutation_test(x, y, permutations=200)
    assert time.perf_counter() - start < 1.5  # about 0.1 s on one core
    assert result.details["permutations"] == 200


def test_bbsd_bonferroni_over_classes() -> None:
    rng = np.random.default_rng(0)
    ref = _softmax(rng.normal(size=(3000, 10)))
    same = bbsd_ks(ref, _softmax(rng.normal(size=(500, 10))))
    assert same.p_value is not None and same.p_value > 0.01
    per_class = [c["p_value"] for c in same.details["per_class"].values()]
    assert same.p_value == pytest.approx(min(1.0, 10 * min(per_class)))
    logits = rng.normal(size=(500, 10))
    logits[:, 3] += 1.0  # the model sees much more of class 3
    shifted = bbsd_ks(ref, _softmax(logits), [f"c{i}" for i in range(10)])
    assert shifted.p_value is not None and shifted.p_value < 1e-6
    assert shifted.details["most_shifted_class"] == "c3"


def test_ks_test_and_its_degenerate_case() -> None:
    rng = np.random.default_rng(0)
    result = ks_test("x", rng.normal(size=1000), rng.normal(1.0, size=300), unit="a")
    assert result.p_value is not None and result.p_value < 1e-10
    assert result.details["unit"] == "a"
    empty = ks_test("x", rng.normal(size=1000), np.array([1.0]))
    assert empty.p_value is None and not empty.in_verdict


def test_prediction_shift_chi_square_and_psi() -> None:
    rng = np.random.default_rng(0)
    ref = rng.integers(0, 10, 5000)
    same = prediction_shift(ref, rng.integers(0, 10, 1000), 10)
    assert same.p_value is not None and same.p_value > 0.01
    three = prediction_shift(ref, rng.integers(0, 3, 1000), 10)
    assert three.p_value is not None and three.p_value < 1e-50
    assert three.details["psi"] > 1.0
    assert psi([10, 10], [10, 10]) == 0.0
    assert psi([50, 50], [80, 20]) == pytest.approx(
        0.3 * np.log(0.8 / 0.5) - 0.3 * np.log(0.2 / 0.5)
    )


def test_proportion_and_accuracy_tests() -> None:
    assert proportion_test("photo_share", 5, 100, 0.05).p_value == pytest.approx(1.0)
    share = proportion_test("photo_share", 50, 100, 0.05)
    assert share.p_value is not None and share.p_value < 1e-10
    too_few = accuracy_test(9, 10, 0.9, min_n=30)
    assert too_few.p_value is None and not too_few.in_verdict
    drop = accuracy_test(70, 100, 0.9, min_n=30)
    assert drop.p_value is not None and drop.p_value < 1e-5
    low, high = drop.details["ci95"]
    assert low < 0.7 < high
    better = accuracy_test(98, 100, 0.9, min_n=30)  # one-sided: better is no alarm
    assert better.p_value is not None and better.p_value > 0.5
