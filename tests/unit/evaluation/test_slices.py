"""Image-property slices, Wilson intervals, most confused pairs and class disparity."""

from __future__ import annotations

import numpy as np
import pytest

from fmnist import CLASS_NAMES
from fmnist.evaluation.disparity import class_disparity, most_confused_pairs
from fmnist.evaluation.metrics import evaluate_probabilities
from fmnist.evaluation.slices import (
    FEATURES,
    image_features,
    macro_f1_present,
    quantile_bins,
    slice_report,
    wilson_interval,
)


def _canvas(n: int = 1) -> np.ndarray:
    return np.zeros((n, 28, 28), dtype=np.uint8)


def test_features_of_hand_made_images() -> None:
    images = _canvas(4)
    images[0, 4:24, 10:18] = 200  # a centred 20 x 8 rectangle: tall, symmetric
    images[1, 10:14, 2:26] = 100  # a centred 4 x 24 bar: wide, symmetric, darker
    images[2, 0:28, 0:14] = 255  # the left half only: no mirror symmetry at all
    # image 3 stays blank
    f = image_features(images)
    assert set(f) == set(FEATURES)
    assert f["brightness"].tolist() == pytest.approx([200.0, 100.0, 255.0, 0.0])
    assert f["area"].tolist() == pytest.approx([160 / 784, 96 / 784, 392 / 784, 0.0])
    assert f["aspect_ratio"].tolist() == pytest.approx([20 / 8, 4 / 24, 28 / 14, 1.0])
    assert f["symmetry"].tolist() == pytest.approx([1.0, 1.0, 0.0, 1.0])


def test_features_of_an_off_centre_block_with_background_noise() -> None:
    image = _canvas()
    image[0, 10:18, 6:14] = 120  # 8 x 8 block left of the centre line (columns 6..13)
    image[0, 10:18, 14:18] = 120  # its mirror covers columns 14..21: half of it is here
    image[0, 0, 0] = 5  # background noise below the threshold of 10
    f = image_features(image)
    assert f["brightness"][0] == pytest.approx(120.0)
    assert f["area"][0] == pytest.approx(96 / 784)
    assert f["aspect_ratio"][0] == pytest.approx(8 / 12)
    # symmetry is measured on all pixels (the noise pixel included), against the mirror image
    x = image[0].astype(float)
    expected = 1 - np.abs(x - x[:, ::-1]).sum() / (x + x[:, ::-1]).sum()
    assert f["symmetry"][0] == pytest.approx(expected)
    assert 0.0 < f["symmetry"][0] < 1.0


def test_image_features_reject_other_dtypes() -> None:
    with pytest.raises(ValueError, match="uint8"):
        image_features(np.zeros((1, 28, 28), dtype=np.float32))


def test_quantile_bins_are_balanced_and_merge_ties() -> None:
    values = np.arange(100, dtype=float)
    ids, lows, highs = quantile_bins(values, 4)
    assert np.bincount(ids).tolist() == [25, 25, 25, 25]
    assert lows.tolist() == [0, 25, 50, 75] and highs.tolist() == [24, 49, 74, 99]
    ids, lows, highs = quantile_bins(np.array([1.0] * 90 + [2.0] * 10), 4)
    assert np.bincount(ids).tolist() == [100]  # every quartile is 1.0: one bin
    ids, lows, highs = quantile_bins(np.array([1.0] * 50 + [2.0] * 50), 4)
    assert np.bincount(ids).tolist() == [50, 50]  # the empty bin between the cuts is dropped
    assert lows.tolist() == [1.0, 2.0] and highs.tolist() == [1.0, 2.0]


def test_wilson_interval_known_values() -> None:
    low, high = wilson_interval(np.array([50, 0, 10]), np.array([100, 10, 10]), 0.95)
    assert low[0] == pytest.approx(0.4038, abs=1e-4)
    assert high[0] == pytest.approx(0.5962, abs=1e-4)
    assert low[1] == 0.0 and 0.0 < high[1] < 0.35  # never zero-width at 0 or 1
    assert 0.65 < low[2] < 1.0 and high[2] == 1.0


def test_macro_f1_present_averages_only_the_present_classes() -> None:
    assert macro_f1_present(np.array([0, 0, 1]), np.array([0, 0, 1]), 10) == 1.0
    # class 1 present and always missed; class 2 predicted but absent: not averaged
    assert macro_f1_present(np.array([0, 2]), np.array([0, 1]), 10) == pytest.approx(0.5)


def test_slice_report_finds_the_slice_where_the_model_fails() -> None:
    rng = np.random.default_rng(0)
    n = 400
    images = np.zeros((n, 28, 28), dtype=np.uint8)
    brightness = rng.integers(20, 255, size=n)
    for i in range(n):
        images[i, 6:22, 8:20] = brightness[i]
    labels = rng.integers(0, 10, size=n)
    predicted = labels.copy()
    dark = brightness < np.quantile(brightness, 0.25)
    predicted[dark] = (labels[dark] + 1) % 10  # wrong on the darkest quarter only
    report = slice_report(images, labels, predicted, n_bins=4, min_size=10, worst=2)
    worst = report.worst_slices()
    assert worst[0].feature == "brightness" and worst[0].bin == 0
    assert worst[0].accuracy == 0.0 and worst[0].significantly_below
    assert worst[0].gap == pytest.approx(-report.overall_accuracy)
    assert report.overall_accuracy == pytest.approx(1 - dark.mean())
    for s in report.slices:
        assert s.accuracy_low <= s.accuracy <= s.accuracy_high
    by_feature = {f: sum(s.n for s in report.slices if s.feature == f) for f in FEATURES}
    assert set(by_feature.values()) == {n}  # every property partitions the images


def test_small_slices_are_never_ranked_worst() -> None:
    images = np.zeros((20, 28, 28), dtype=np.uint8)
    images[:, 5:20, 5:20] = np.arange(20, dtype=np.uint8)[:, None, None] * 10 + 20
    labels = np.zeros(20, dtype=np.int64)
    predicted = labels.copy()
    predicted[:3] = 1
    report = slice_report(images, labels, predicted, n_bins=4, min_size=100)
    assert report.worst == []


def test_most_confused_pairs_counts_both_directions() -> None:
    confusion = np.zeros((10, 10), dtype=int)
    np.fill_diagonal(confusion, 90)
    confusion[6, 0], confusion[0, 6] = 8, 5  # Shirt <-> T-shirt/top: 13
    confusion[2, 4], confusion[4, 2] = 2, 9  # Pullover <-> Coat: 11
    confusion[1, 3] = 1
    pairs = most_confused_pairs(confusion, CLASS_NAMES, top=5)
    assert [(p.first, p.second, p.total) for p in pairs] == [
        ("T-shirt/top", "Shirt", 13),
        ("Pullover", "Coat", 11),
        ("Trouser", "Dress", 1),
    ]
    assert pairs[0].first_as_second == 5 and pairs[0].second_as_first == 8
    assert pairs[0].share == pytest.approx(13 / (95 + 98))


def test_class_disparity_from_a_report() -> None:
    labels = np.repeat(np.arange(10), 100)
    predicted = labels.copy()
    predicted[600:660] = 0  # Shirt recall 0.40, taken for T-shirt/top
    probs = np.full((1000, 10), 0.01)
    probs[np.arange(1000), predicted] = 0.91
    report = evaluate_probabilities(probs, labels)
    d = class_disparity(report, 0.95)
    assert d.worst_class == "Shirt" and d.recall_disparity == pytest.approx(0.6)
    assert d.below_mean == ["Shirt"]
    shirt = next(r for r in d.recalls if r.name == "Shirt")
    assert shirt.low < 0.4 < shirt.high
