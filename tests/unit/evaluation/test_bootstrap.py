"""Bootstrap intervals (vectorised) and per-class, one-vs-rest calibration."""

from __future__ import annotations

import numpy as np
import pytest

from fmnist import CLASS_NAMES
from fmnist.evaluation.bootstrap import bootstrap_intervals, resampled_metrics
from fmnist.evaluation.calibration import expected_calibration_error, softmax
from fmnist.evaluation.card_figures import classwise_reliability_png
from fmnist.evaluation.classwise import classwise_ece, classwise_reliability
from fmnist.evaluation.metrics import evaluate_probabilities

from .synthetic import overconfident_logits


def _probs(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    logits, labels = overconfident_logits(n, seed=seed, scale=1.0)
    return softmax(logits), labels


def test_vectorised_resamples_equal_the_metrics_of_each_resample() -> None:
    """The bincount formulation gives exactly the metrics module's numbers per resample."""
    probs, labels = _probs(300)
    values = resampled_metrics(probs, labels, resamples=5, seed=3)
    idx = np.random.default_rng(3).integers(0, 300, size=(5, 300))
    for b in range(5):
        report = evaluate_probabilities(probs[idx[b]], labels[idx[b]])
        assert values["accuracy"][b] == pytest.approx(report.accuracy)
        assert values["macro_f1"][b] == pytest.approx(report.macro_f1)
        assert values["ece"][b] == pytest.approx(
            expected_calibration_error(probs[idx[b]], labels[idx[b]])
        )


def test_intervals_hold_the_estimate_and_narrow_with_n() -> None:
    widths = []
    for n in (500, 8000):
        probs, labels = _probs(n)
        iv = bootstrap_intervals(probs, labels, resamples=400, seed=0)
        report = evaluate_probabilities(probs, labels)
        assert iv.accuracy.estimate == pytest.approx(report.accuracy)
        assert iv.macro_f1.estimate == pytest.approx(report.macro_f1)
        assert iv.ece.estimate == pytest.approx(report.ece)
        for interval in (iv.accuracy, iv.macro_f1):
            assert interval.low <= interval.estimate <= interval.high
        assert iv.ece.low < iv.ece.high
        widths.append([iv.accuracy.high - iv.accuracy.low, iv.macro_f1.high - iv.macro_f1.low])
    # sampling error shrinks like 1/sqrt(n): 16x the images, about a quarter of the width
    assert widths[1][0] < widths[0][0] / 2
    assert widths[1][1] < widths[0][1] / 2


def test_bootstrap_is_seeded_and_chunked_consistently(monkeypatch: pytest.MonkeyPatch) -> None:
    probs, labels = _probs(400)
    first = resampled_metrics(probs, labels, resamples=50, seed=7)
    again = resampled_metrics(probs, labels, resamples=50, seed=7)
    for name in first:
        np.testing.assert_array_equal(first[name], again[name])
    other = resampled_metrics(probs, labels, resamples=50, seed=8)
    assert not np.array_equal(first["accuracy"], other["accuracy"])
    monkeypatch.setattr("fmnist.evaluation.bootstrap._CELLS_PER_CHUNK", 400 * 7)  # 7 per chunk
    chunked = resampled_metrics(probs, labels, resamples=50, seed=7)
    for name in first:
        np.testing.assert_allclose(chunked[name], first[name], rtol=0, atol=1e-12)


def test_wider_intervals_at_higher_confidence() -> None:
    probs, labels = _probs(1000)
    narrow = bootstrap_intervals(probs, labels, resamples=300, confidence=0.8)
    wide = bootstrap_intervals(probs, labels, resamples=300, confidence=0.99)
    assert wide.accuracy.high - wide.accuracy.low > narrow.accuracy.high - narrow.accuracy.low


def test_classwise_ece_is_zero_for_a_calibrated_model_and_large_for_an_overconfident_one() -> None:
    rng = np.random.default_rng(0)
    n = 20_000
    probs = rng.dirichlet(np.ones(10), size=n)
    labels = np.array([rng.choice(10, p=row) for row in probs])  # calibrated by construction
    calibrated = classwise_ece(probs, labels)
    assert calibrated.shape == (10,)
    assert calibrated.max() < 0.01
    logits, y = overconfident_logits(n, scale=4.0)
    assert classwise_ece(softmax(logits), y).min() > 3 * calibrated.max()


def test_classwise_reliability_counts_every_image_once_per_class() -> None:
    probs, labels = _probs(500)
    mean_prob, frequency, count = classwise_reliability(probs, labels, n_bins=10)
    assert count.shape == (10, 10) and (count.sum(axis=1) == 500).all()
    filled = count > 0
    assert ((mean_prob[filled] >= 0) & (mean_prob[filled] <= 1)).all()
    assert np.isnan(frequency[~filled]).all()


def test_classwise_reliability_png() -> None:
    probs, labels = _probs(500)
    png = classwise_reliability_png(probs, labels, CLASS_NAMES)
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(ValueError, match="class names"):
        classwise_reliability_png(probs, labels, CLASS_NAMES[:3])
