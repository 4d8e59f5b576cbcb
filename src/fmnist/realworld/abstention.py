"""Calibrate the "unknown" decision on labelled photos: a confidence floor and an energy ceiling.

The serving rule (:func:`fmnist.evaluation.unknown.decide`) refuses an answer when the image is
blank, when the calibrated top probability is below ``min_confidence``, or when the energy score
is above ``energy_threshold``. On photos, the thresholds a model gets from Fashion-MNIST (a
confidence of 0.5, the 95th percentile of validation energies) refuse most photos of every
class. :func:`calibrate` picks the pair that refuses the most photos of classes that map to no
Fashion-MNIST class while refusing at most ``max_mappable_abstention`` of the mappable ones.

Calibrate on photos the model was not trained on (the calibration fold of the training folder,
see :mod:`fmnist.realworld.photos`) and measure on another folder (``validation/``).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from fmnist.evaluation.unknown import BLANK_FOREGROUND_FRACTION

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]

META_MIN_CONFIDENCE = "abstention.min_confidence"
"""ONNX metadata key of a calibrated confidence floor (read by the server instead of
``serving.min_confidence``)."""
META_FMNIST_ENERGY_THRESHOLD = "ood.fmnist_energy_threshold"
"""ONNX metadata key of the energy threshold from Fashion-MNIST validation, kept beside the
photo-calibrated ``ood.energy_threshold``."""
META_CALIBRATION = "abstention.calibration"
"""ONNX metadata key of a JSON summary of the calibration (data, budget, rates reached)."""
DEFAULT_MAX_MAPPABLE_ABSTENTION = 0.10
"""Abstention allowed on mappable calibration photos (the target on held-out photos is 15%)."""
CONFIDENCE_GRID: tuple[float, ...] = tuple(round(0.05 * i, 2) for i in range(20))


@dataclass(frozen=True)
class AbstentionCalibration:
    """Thresholds chosen by :func:`calibrate` and what they did on the calibration photos."""

    min_confidence: float
    energy_threshold: float | None
    """None: the energy rule is off."""
    mappable_abstention: float
    unmappable_abstention: float
    mappable: int
    unmappable: int
    max_mappable_abstention: float

    def to_dict(self) -> dict[str, Any]:
        """A JSON-friendly view."""
        return asdict(self)


def abstains(
    confidence: npt.ArrayLike,
    energy: npt.ArrayLike,
    *,
    min_confidence: float,
    energy_threshold: float | None,
    foreground_fraction: npt.ArrayLike | None = None,
) -> BoolArray:
    """Where the serving rule answers unknown for these scores (vectorised :func:`decide`)."""
    conf = np.asarray(confidence, dtype=np.float64)
    refused = ~np.isfinite(conf) | (conf < min_confidence)
    if energy_threshold is not None:
        e = np.asarray(energy, dtype=np.float64)
        refused |= ~np.isfinite(e) | (e > energy_threshold)
    if foreground_fraction is not None:
        refused |= np.asarray(foreground_fraction, dtype=np.float64) < BLANK_FOREGROUND_FRACTION
    result: BoolArray = refused
    return result


def calibrate(
    confidence: npt.ArrayLike,
    energy: npt.ArrayLike,
    mappable: npt.ArrayLike,
    *,
    foreground_fraction: npt.ArrayLike | None = None,
    max_mappable_abstention: float = DEFAULT_MAX_MAPPABLE_ABSTENTION,
) -> AbstentionCalibration:
    """The ``(min_confidence, energy_threshold)`` pair that refuses the most unmappable photos
    while refusing at most ``max_mappable_abstention`` of the mappable ones.

    Candidates: confidence floors 0, 0.05, ..., 0.95 and energy ceilings at the percentiles of
    the photos' energies (or none). Ties go to fewer refused mappable photos, then to the
    higher confidence floor. Raises ``ValueError`` without mappable or unmappable photos.
    """
    conf = np.asarray(confidence, dtype=np.float64)
    e = np.asarray(energy, dtype=np.float64)
    is_mappable = np.asarray(mappable, dtype=bool)
    if not is_mappable.any() or is_mappable.all():
        raise ValueError("calibration needs photos of mappable and of unmappable classes")
    if not 0.0 <= max_mappable_abstention < 1.0:
        raise ValueError(
            f"max_mappable_abstention must be in [0, 1), got {max_mappable_abstention}"
        )
    finite = e[np.isfinite(e)]
    ceilings: list[float | None] = [None]
    if finite.size:
        ceilings += sorted({float(v) for v in np.percentile(finite, np.arange(1, 100))})
    best: tuple[tuple[float, float, float], float, float | None, float, float] | None = None
    for floor in CONFIDENCE_GRID:
        for ceiling in ceilings:
            refused = abstains(
                conf,
                e,
                min_confidence=floor,
                energy_threshold=ceiling,
                foreground_fraction=foreground_fraction,
            )
            on_mappable = float(refused[is_mappable].mean())
            if on_mappable > max_mappable_abstention + 1e-12:
                continue
            on_unmappable = float(refused[~is_mappable].mean())
            score = (on_unmappable, -on_mappable, floor)
            if best is None or score > best[0]:
                best = (score, floor, ceiling, on_mappable, on_unmappable)
    if best is None:  # even no rule at all refuses too many (blank images): keep the loosest
        refused = abstains(
            conf,
            e,
            min_confidence=0.0,
            energy_threshold=None,
            foreground_fraction=foreground_fraction,
        )
        best = (
            (0.0, 0.0, 0.0),
            0.0,
            None,
            float(refused[is_mappable].mean()),
            float(refused[~is_mappable].mean()),
        )
    _, floor, ceiling, on_mappable, on_unmappable = best
    return AbstentionCalibration(
        min_confidence=floor,
        energy_threshold=None if ceiling is None or math.isinf(ceiling) else ceiling,
        mappable_abstention=on_mappable,
        unmappable_abstention=on_unmappable,
        mappable=int(is_mappable.sum()),
        unmappable=int((~is_mappable).sum()),
        max_mappable_abstention=max_mappable_abstention,
    )
