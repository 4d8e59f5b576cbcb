"""Tests of softmax, temperature fitting, ECE and reliability curves."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.special import softmax as scipy_softmax

from fmnist.evaluation.calibration import (
    expected_calibration_error,
    fit_temperature,
    negative_log_likelihood,
    reliability_curve,
    rescale_probabilities,
    softmax,
)

from .synthetic import overconfident_logits


def test_softmax_matches_scipy_and_survives_huge_logits() -> None:
    logits = np.array([[1.0, 2.0, 3.0], [1000.0, 1001.0, 999.0], [-1e4, 0.0, 1e4]])
    probs = softmax(logits)
    assert np.all(np.isfinite(probs))
    np.testing.assert_allclose(probs.sum(axis=1), 1.0)
    np.testing.assert_allclose(probs[:2], scipy_softmax(logits[:2], axis=1))
    np.testing.assert_allclose(softmax(logits[:1], temperature=2.0), scipy_softmax(logits[:1] / 2))


def test_softmax_rejects_bad_temperature() -> None:
    with pytest.raises(ValueError, match="temperature"):
        softmax(np.zeros((1, 2)), temperature=0.0)


def test_perfect_confident_predictions_have_zero_ece() -> None:
    labels = np.arange(10).repeat(5)
    probs = np.eye(10)[labels]
    assert expected_calibration_error(probs, labels) == pytest.approx(0.0)


def test_ece_of_a_known_case() -> None:
    # Always 0.9 confident, right half the time: ECE = |0.5 - 0.9| = 0.4.
    probs = np.tile([0.9, 0.1], (10, 1))
    labels = np.array([0, 1] * 5)
    assert expected_calibration_error(probs, labels) == pytest.approx(0.4)


def test_reliability_curve_bins() -> None:
    probs = np.array([[0.95, 0.05], [0.95, 0.05], [0.55, 0.45], [0.55, 0.45]])
    labels = np.array([0, 1, 0, 0])
    conf, acc, count = reliability_curve(probs, labels, n_bins=10)
    assert count.tolist() == [0, 0, 0, 0, 0, 2, 0, 0, 0, 2]
    assert conf[9] == pytest.approx(0.95)
    assert acc[9] == pytest.approx(0.5)
    assert acc[5] == pytest.approx(1.0)
    assert np.isnan(acc[0])
    assert np.isnan(conf[0])


def test_temperature_fixes_an_overconfident_model() -> None:
    logits, labels = overconfident_logits(3000, seed=0, scale=4.0)
    temperature = fit_temperature(logits, labels)
    assert 2.5 < temperature < 6.0
    assert fit_temperature(logits, labels) == temperature  # deterministic
    raw, scaled = softmax(logits), softmax(logits, temperature)
    assert expected_calibration_error(scaled, labels) < 0.5 * expected_calibration_error(
        raw, labels
    )
    assert negative_log_likelihood(scaled, labels) < negative_log_likelihood(raw, labels)
    np.testing.assert_array_equal(scaled.argmax(axis=1), raw.argmax(axis=1))
    np.testing.assert_allclose(rescale_probabilities(raw, temperature), scaled, atol=1e-9)


def test_temperature_stays_within_bounds() -> None:
    labels = np.zeros(20, dtype=np.int64)
    always_right = np.tile([1.0, 0.0], (20, 1))  # sharper is always better: T -> lower bound
    assert fit_temperature(always_right, labels) == pytest.approx(0.05, abs=1e-4)
    rng = np.random.default_rng(0)
    noise = rng.normal(size=(200, 10))  # logits unrelated to labels: T -> upper bound
    assert fit_temperature(noise, rng.integers(0, 10, size=200)) == pytest.approx(20.0, abs=1e-3)


@pytest.mark.parametrize(
    ("probs", "labels", "match"),
    [
        (np.ones(3), np.zeros(3, dtype=int), "shape"),
        (np.ones((3, 2)), np.zeros(2, dtype=int), "labels must have shape"),
        (np.ones((3, 2)), np.array([0, 1, 2]), r"\[0, 2\)"),
        (np.full((1, 2), np.nan), np.zeros(1, dtype=int), "NaN"),
        (np.ones((1, 2)), np.zeros(1), "integers"),
    ],
)
def test_bad_inputs_are_rejected(probs: np.ndarray, labels: np.ndarray, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        expected_calibration_error(probs, labels)
