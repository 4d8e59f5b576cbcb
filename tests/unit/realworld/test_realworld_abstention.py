"""Calibration of the unknown rule on labelled photos."""

from __future__ import annotations

import numpy as np
import pytest

from fmnist.evaluation.unknown import decide
from fmnist.realworld.abstention import abstains, calibrate


def test_calibration_refuses_most_unmappable_within_the_budget() -> None:
    rng = np.random.default_rng(0)
    n_map, n_un = 400, 100
    # Mappable photos: confident and low energy; unmappable ones: unsure and high energy.
    confidence = np.concatenate([rng.uniform(0.5, 1.0, n_map), rng.uniform(0.2, 0.7, n_un)])
    energy = np.concatenate([rng.normal(-6, 1, n_map), rng.normal(-3, 1, n_un)])
    mappable = np.arange(n_map + n_un) < n_map
    result = calibrate(confidence, energy, mappable, max_mappable_abstention=0.1)
    refused = abstains(
        confidence,
        energy,
        min_confidence=result.min_confidence,
        energy_threshold=result.energy_threshold,
    )
    assert result.mappable_abstention == pytest.approx(refused[mappable].mean())
    assert result.unmappable_abstention == pytest.approx(refused[~mappable].mean())
    assert result.mappable_abstention <= 0.1
    assert result.unmappable_abstention >= 0.8
    assert (result.mappable, result.unmappable) == (n_map, n_un)
    # A tighter budget can only refuse fewer unmappable photos.
    tight = calibrate(confidence, energy, mappable, max_mappable_abstention=0.02)
    assert tight.unmappable_abstention <= result.unmappable_abstention
    assert tight.mappable_abstention <= 0.02


def test_blank_photos_are_always_refused_and_count_against_the_budget() -> None:
    confidence = np.array([0.9, 0.9, 0.9, 0.3])
    energy = np.array([-5.0, -5.0, -5.0, -1.0])
    mappable = np.array([True, True, True, False])
    fraction = np.array([0.5, 0.0, 0.5, 0.5])  # the second is blank
    result = calibrate(
        confidence, energy, mappable, foreground_fraction=fraction, max_mappable_abstention=0.4
    )
    assert result.mappable_abstention == pytest.approx(1 / 3)
    assert result.unmappable_abstention == 1.0


def test_abstains_matches_the_serving_rule() -> None:
    rng = np.random.default_rng(1)
    logits = rng.normal(0, 3, (200, 10))
    probabilities = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    fraction = rng.uniform(0, 0.01, 200)
    verdicts = decide(
        probabilities,
        logits,
        temperature=1.0,
        energy_threshold=-3.0,
        min_confidence=0.6,
        foreground_fraction=fraction,
    )
    energy = np.array([v.energy for v in verdicts])
    refused = abstains(
        probabilities.max(axis=1),
        energy,
        min_confidence=0.6,
        energy_threshold=-3.0,
        foreground_fraction=fraction,
    )
    assert refused.tolist() == [v.is_unknown for v in verdicts]


def test_calibration_needs_both_kinds_of_photos() -> None:
    with pytest.raises(ValueError, match="mappable and of unmappable"):
        calibrate([0.9, 0.8], [-5, -4], [True, True])
    with pytest.raises(ValueError, match="max_mappable_abstention"):
        calibrate([0.9, 0.8], [-5, -4], [True, False], max_mappable_abstention=1.5)
