"""A/B statistics: the tests against hand-computed values, and their error rates by simulation."""

from __future__ import annotations

import math

import numpy as np
import pytest

from fmnist.rollout.ab_stats import (
    MIN_PER_ARM,
    always_valid_p_values,
    decide,
    msprt_lambda,
    sample_size_per_arm,
    simulate,
    two_proportion_z,
)


def test_the_z_test_matches_the_textbook_formula() -> None:
    # 900/1000 against 930/1000: pooled 0.915, se sqrt(0.915 * 0.085 * 2 / 1000).
    z, p = two_proportion_z(900, 1000, 930, 1000)
    se = math.sqrt(0.915 * 0.085 * 2 / 1000)
    assert z == pytest.approx(0.03 / se)
    assert p == pytest.approx(math.erfc(abs(z) / math.sqrt(2)))
    assert two_proportion_z(0, 0, 5, 10) == (0.0, 1.0)
    assert two_proportion_z(10, 10, 10, 10) == (0.0, 1.0)  # no variance


def test_the_sample_size_matches_the_textbook_formula() -> None:
    # (1.959964 + 0.841621)^2 * (0.9 * 0.1 + 0.92 * 0.08) / 0.02^2 = 3210.4 -> 3211
    assert sample_size_per_arm(0.9, 0.02, 0.05, 0.8) == 3211
    assert sample_size_per_arm(0.9, -0.02, 0.05, 0.8) == sample_size_per_arm(0.88, 0.02, 0.05, 0.8)
    with pytest.raises(ValueError, match="effect"):
        sample_size_per_arm(0.9, 0.0, 0.05, 0.8)


def test_the_msprt_ratio_waits_for_data_and_grows_with_the_difference() -> None:
    small = MIN_PER_ARM - 1
    assert msprt_lambda(small, small, 0, small, 0.02)[()] == 1.0
    n = 2000
    same, apart = msprt_lambda([1800, 1800], [n, n], [1800, 1900], [n, n], 0.02)
    assert same < 1 < apart
    assert always_valid_p_values([0.5, 4.0, 2.0, 30.0]).tolist() == [1.0, 0.25, 0.25, 1 / 30]


def test_decisions() -> None:
    assert decide(0.01, 0.02, 500, 5000, 0.05) == "ship"
    assert decide(0.01, -0.02, 500, 5000, 0.05) == "stop"
    assert decide(0.30, 0.01, 500, 5000, 0.05) == "continue"
    assert decide(0.30, 0.01, 5000, 5000, 0.05) == "stop"


def test_simulation_peeking_stays_under_alpha_and_has_power() -> None:
    result = simulate(1000, seed=3)
    assert result.experiments == 1000 and result.planned_n_per_arm == 3211
    assert result.false_positive_rate <= 0.05
    assert result.false_positive_rate_peeking_z_test > 0.15  # why the always-valid test exists
    assert abs(result.false_positive_rate_fixed_z_test - 0.05) < 0.025
    assert abs(result.power_fixed_z_test - 0.8) < 0.05
    assert 0.3 < result.power < result.power_fixed_z_test
    assert result.sequential_n_per_arm is not None
    assert result.planned_n_per_arm < result.sequential_n_per_arm <= 3 * result.planned_n_per_arm
    assert result.to_dict()["false_positive_rate"] == result.false_positive_rate
    assert np.isfinite(result.median_stopping_n_per_arm or 0)
