"""CheckList-style behavioural tests on synthetic models whose invariances are known."""

from __future__ import annotations

import numpy as np
import pytest

from fmnist import CLASS_NAMES
from fmnist.config import EvaluationSettings
from fmnist.evaluation.behavioural import (
    BehaviouralReport,
    InvarianceResult,
    Predict,
    behavioural_tests,
    clear_examples,
    functionality_test,
    invariance_perturbations,
    invariance_test,
)


def blobs(n: int, seed: int = 0) -> np.ndarray:
    """Bright rectangles of random size and place, at least 3 px from every border."""
    rng = np.random.default_rng(seed)
    images = np.zeros((n, 28, 28), dtype=np.uint8)
    for i in range(n):
        h, w = rng.integers(3, 10, size=2)
        y, x = rng.integers(3, 25 - h), rng.integers(3, 25 - w)
        images[i, y : y + h, x : x + w] = rng.integers(60, 200)
    return images


def mass_model(images: np.ndarray) -> np.ndarray:
    """Class from the total pixel mass: blind to flips and to shifts that lose no pixel."""
    return np.asarray((images.astype(np.int64).sum(axis=(1, 2)) // 1000) % 10)


def side_model(images: np.ndarray) -> np.ndarray:
    """Class 1 when the right half holds more mass than the left, else 0: a flip swaps them."""
    x = images.astype(np.int64)
    return np.asarray(x[:, :, 14:].sum(axis=(1, 2)) > x[:, :, :14].sum(axis=(1, 2)), np.int64)


SETTINGS = EvaluationSettings(behavioural_sample=200, max_flip_change_rate=0.05)


def _run(model: Predict) -> tuple[dict[str, InvarianceResult], BehaviouralReport]:
    images = blobs(300)
    labels = np.zeros(300, dtype=np.int64)
    report = behavioural_tests(model, images, labels, SETTINGS, class_names=CLASS_NAMES)
    assert report.sample_size == 200
    return {r.name: r for r in report.invariance}, report


def test_a_flip_invariant_model_passes_the_flip_and_shift_tests() -> None:
    results, report = _run(mass_model)
    for name in ("hflip", "shift_1px", "shift_2px"):
        assert results[name].change_rate == 0.0 and results[name].passed
    assert results["brightness"].change_rate > 0.5 and not results["brightness"].passed
    assert report.failed() == ["brightness"] and not report.passed
    assert report.functionality is None  # no reference images given


def test_a_side_sensitive_model_fails_the_flip_test() -> None:
    results, report = _run(side_model)
    flip = results["hflip"]
    assert flip.n_images == 200 and flip.n_variants == 1
    assert flip.change_rate > 0.9 and not flip.passed
    assert "hflip" in report.failed()
    assert results["brightness"].change_rate == 0.0
    assert 0 < results["shift_1px"].change_rate <= results["shift_2px"].change_rate


def test_change_rate_counts_every_variant() -> None:
    images = blobs(10)
    perturbation = next(p for p in invariance_perturbations(SETTINGS) if p.name == "shift_2px")
    result = invariance_test(side_model, images, perturbation)
    assert result.n_variants == 4
    base = side_model(images)
    changed = sum(int((side_model(v) != base).sum()) for v in perturbation.variants(images))
    assert result.changed == changed
    assert result.change_rate == pytest.approx(changed / 40)


def test_the_thresholds_come_from_the_settings() -> None:
    settings = EvaluationSettings(max_shift_1px_change_rate=0.5, brightness_factors=[0.5])
    by_name = {p.name: p for p in invariance_perturbations(settings)}
    assert by_name["shift_1px"].max_change_rate == 0.5
    assert "x0.5" in by_name["brightness"].description
    assert len(by_name["brightness"].variants(blobs(3))) == 1


def class_images(n_per_class: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Class c is a bright square in cell c of a 4x3 grid, with noise."""
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(10), n_per_class)
    images = rng.integers(0, 40, size=(labels.size, 28, 28)).astype(np.uint8)
    for i, c in enumerate(labels):
        y, x = 2 + 8 * (c // 4), 1 + 7 * (c % 4)
        images[i, y : y + 6, x : x + 6] = rng.integers(150, 255)
    return images, labels


def position_model(images: np.ndarray) -> np.ndarray:
    """Knows where each class's square lies: the brightest grid cell."""
    masses = []
    for c in range(10):
        y, x = 2 + 8 * (c // 4), 1 + 7 * (c % 4)
        masses.append(images[:, y : y + 6, x : x + 6].astype(np.int64).sum(axis=(1, 2)))
    return np.asarray(np.argmax(np.stack(masses, axis=1), axis=1))


def test_clear_examples_are_typical_and_do_not_depend_on_the_model() -> None:
    reference, reference_labels = class_images(30, seed=1)
    images, labels = class_images(20, seed=2)
    # An ambiguous image labelled 0: the squares of classes 0 and 1 at once.
    images[0, 9:15, 8:14] = images[0, 2:8, 1:7]
    chosen = clear_examples(images, labels, reference, reference_labels, per_class=5)
    assert chosen.size == 50
    assert np.bincount(labels[chosen]).tolist() == [5] * 10
    assert 0 not in chosen.tolist()
    assert (np.diff(labels[chosen]) >= 0).all()  # class by class


def test_minimum_functionality_passes_a_good_model_and_fails_a_constant_one() -> None:
    reference, reference_labels = class_images(30, seed=1)
    images, labels = class_images(20, seed=2)
    chosen = clear_examples(images, labels, reference, reference_labels, per_class=5)
    good = functionality_test(position_model, images, labels, chosen, 0.98, CLASS_NAMES)
    assert good.passed and good.pass_rate == 1.0 and good.failures == []
    constant = functionality_test(
        lambda x: np.zeros(len(x), dtype=np.int64), images, labels, chosen, 0.98, CLASS_NAMES
    )
    assert not constant.passed and constant.pass_rate == pytest.approx(0.1)
    assert constant.per_class["T-shirt/top"] == 1.0 and constant.per_class["Bag"] == 0.0
    assert len(constant.failures) == 45
    report = behavioural_tests(
        position_model,
        images,
        labels,
        EvaluationSettings(mft_per_class=5),
        reference_images=reference,
        reference_labels=reference_labels,
        class_names=CLASS_NAMES,
    )
    assert report.functionality is not None and report.functionality.n == 50


def test_a_predict_of_the_wrong_shape_is_refused() -> None:
    with pytest.raises(ValueError, match="predict returned shape"):
        behavioural_tests(
            lambda x: np.zeros(3),
            blobs(20),
            np.zeros(20, np.int64),
            SETTINGS,
            class_names=CLASS_NAMES,
        )
