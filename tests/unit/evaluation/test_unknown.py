"""The unknown decision of fmnist.evaluation.unknown."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from fmnist import CLASS_NAMES
from fmnist.evaluation.calibration import energy_score, softmax
from fmnist.evaluation.unknown import (
    BLANK_FOREGROUND_FRACTION,
    META_OOD_ENERGY_THRESHOLD,
    UNKNOWN,
    Verdict,
    decide,
    decide_arrays,
    energy_threshold_from_metadata,
)

REPO = Path(__file__).resolve().parents[3]
T = 1.3


def logits_for(top: float, rest: float = 0.0, cls: int = 3) -> npt.NDArray[np.float64]:
    """One row of logits with ``top`` for ``cls`` and ``rest`` elsewhere."""
    z = np.full((1, 10), rest)
    z[0, cls] = top
    return z


def run(
    z: npt.NDArray[np.float64],
    *,
    threshold: float | None = None,
    min_confidence: float = 0.5,
    fraction: list[float] | None = None,
) -> list[Verdict]:
    return decide(
        softmax(z, T),
        z,
        temperature=T,
        energy_threshold=threshold,
        min_confidence=min_confidence,
        foreground_fraction=fraction,
    )


def test_confident_in_distribution_answer_gives_the_class() -> None:
    z = logits_for(12.0)
    [verdict] = run(z, threshold=float(energy_score(z, T)[0]) + 1.0, fraction=[0.4])
    assert verdict.class_id == 3 and verdict.label == CLASS_NAMES[3] == "Dress"
    assert verdict.reasons == () and not verdict.is_unknown
    assert verdict.confidence == pytest.approx(float(softmax(z, T).max()))
    assert verdict.energy == pytest.approx(float(energy_score(z, T)[0]))


def test_low_confidence_is_unknown_with_the_reason() -> None:
    z = logits_for(1.0)  # softmax(z / 1.3) top is about 0.18
    [verdict] = run(z)
    assert verdict.is_unknown and verdict.class_id is None and verdict.label == UNKNOWN
    assert verdict.reasons == (f"low confidence {verdict.confidence:.2f} < 0.50",)
    assert 0.1 < verdict.confidence < 0.3


def test_energy_above_the_threshold_is_unknown() -> None:
    z = logits_for(12.0)
    energy = float(energy_score(z, T)[0])
    [verdict] = run(z, threshold=energy - 0.5)
    assert verdict.is_unknown and verdict.confidence > 0.99
    assert verdict.reasons == (
        f"out of distribution: energy {energy:.2f} > threshold {energy - 0.5:.2f}",
    )
    [kept] = run(z, threshold=None)
    assert kept.class_id == 3


def test_blank_image_is_unknown() -> None:
    z = np.vstack([logits_for(12.0), logits_for(12.0)])
    blank, garment = run(z, fraction=[0.0, 0.3])
    assert blank.is_unknown and blank.reasons == ("blank image",)
    assert garment.class_id == 3
    [tiny] = run(logits_for(12.0), fraction=[BLANK_FOREGROUND_FRACTION / 2])
    assert tiny.is_unknown


def test_all_reasons_are_listed_together() -> None:
    z = logits_for(0.5)
    [verdict] = run(z, threshold=-100.0, fraction=[0.0])
    assert len(verdict.reasons) == 3
    assert verdict.reasons[0] == "blank image"
    assert verdict.reasons[1].startswith("low confidence")
    assert verdict.reasons[2].startswith("out of distribution")


def test_batch_keeps_the_order_and_temperature_matters() -> None:
    z = np.vstack([logits_for(12.0, cls=c) for c in range(10)])
    verdicts = run(z)
    assert [v.class_id for v in verdicts] == list(range(10))
    hot = decide(softmax(z, 50.0), z, temperature=50.0, energy_threshold=None, min_confidence=0.5)
    assert all(v.is_unknown for v in hot)  # a high temperature spreads the probability


def test_non_finite_output_is_unknown() -> None:
    z = logits_for(12.0)
    z[0, 1] = np.nan
    [verdict] = decide(
        np.full((1, 10), np.nan), z, temperature=T, energy_threshold=None, min_confidence=0.5
    )
    assert verdict.is_unknown and "non-finite model output" in verdict.reasons


def test_empty_batch() -> None:
    empty = np.empty((0, 10))
    assert decide(empty, empty, temperature=1.0, energy_threshold=0.0, min_confidence=0.5) == []


def test_shape_errors() -> None:
    z = logits_for(3.0)
    with pytest.raises(ValueError, match="same"):
        decide(z, np.vstack([z, z]), temperature=1.0, energy_threshold=None, min_confidence=0.5)
    with pytest.raises(ValueError, match="foreground_fraction"):
        decide(
            z,
            z,
            temperature=1.0,
            energy_threshold=None,
            min_confidence=0.5,
            foreground_fraction=[0.1, 0.2],
        )
    with pytest.raises(ValueError, match="temperature"):
        decide(z, z, temperature=0.0, energy_threshold=None, min_confidence=0.5)
    with pytest.raises(ValueError, match="class names"):
        decide(z[:, :5], z[:, :5], temperature=1.0, energy_threshold=None, min_confidence=0.5)


def test_threshold_from_metadata() -> None:
    assert energy_threshold_from_metadata({META_OOD_ENERGY_THRESHOLD: "-6.25"}) == -6.25
    assert energy_threshold_from_metadata({}) is None
    assert energy_threshold_from_metadata({META_OOD_ENERGY_THRESHOLD: "nan"}) is None


def test_metadata_key_matches_training() -> None:
    # fmnist.training.run imports torch; the serving side keeps its own copy of the key.
    source = (REPO / "src/fmnist/training/run.py").read_text()
    assert f'META_OOD_ENERGY_THRESHOLD = "{META_OOD_ENERGY_THRESHOLD}"' in source


def test_decide_arrays_agrees_with_decide_row_by_row() -> None:
    rng = np.random.default_rng(0)
    z = rng.normal(0.0, 4.0, size=(500, 10))
    z[7] = np.nan
    z[8, 2] = np.inf
    with np.errstate(invalid="ignore"):  # the NaN row
        p = softmax(z, T)
    fraction = rng.uniform(0.0, 0.01, size=500)
    threshold_e = -6.0  # a constant: a quantile of the data would sit on one row's energy
    for threshold, fg in ((None, None), (threshold_e, None), (threshold_e, fraction)):
        slow = decide(
            p,
            z,
            temperature=T,
            energy_threshold=threshold,
            min_confidence=0.5,
            foreground_fraction=fg,
        )
        fast = decide_arrays(
            p.astype(np.float32),
            z.astype(np.float32),
            temperature=T,
            energy_threshold=threshold,
            min_confidence=0.5,
            foreground_fraction=fg,
        )
        assert fast.class_id.tolist() == [-1 if v.class_id is None else v.class_id for v in slow]
        assert fast.unknown.tolist() == [v.is_unknown for v in slow]
        assert 0 < fast.unknown.sum() < 500
        np.testing.assert_allclose(
            fast.confidence, np.array([v.confidence for v in slow], dtype=np.float32), rtol=1e-6
        )
