"""Say "unknown" instead of a confident wrong class.

An answer is ``unknown`` when the preprocessed image is blank, when the calibrated top probability
is below ``min_confidence`` (``ServingSettings.min_confidence``), or when the energy score
``-T * logsumexp(logits / T)`` is above the out-of-distribution threshold recorded in the model's
metadata (the 95th percentile of the validation energies, see :mod:`fmnist.training.run`).
Imports only numpy and the torch-free parts of :mod:`fmnist`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from fmnist import CLASS_NAMES
from fmnist.evaluation.calibration import energy_score

UNKNOWN = "unknown"
"""The label of an answer withheld."""
META_OOD_ENERGY_THRESHOLD = "ood.energy_threshold"
"""ONNX metadata key of the energy threshold (same as ``fmnist.training.run``, without torch)."""
BLANK_FOREGROUND_FRACTION = 0.002
"""An image whose garment covers less than this share of it is blank (1 pixel of 784 is 0.0013)."""


@dataclass(frozen=True)
class Verdict:
    """The answer for one image: a class, or ``unknown`` with the reasons why.

    ``confidence`` is the calibrated top probability and ``energy`` the temperature-scaled
    energy score, reported whether or not the answer is withheld.
    """

    class_id: int | None
    label: str
    confidence: float
    energy: float
    reasons: tuple[str, ...] = ()

    @property
    def is_unknown(self) -> bool:
        """True when no class is given."""
        return self.class_id is None


def energy_threshold_from_metadata(metadata: Mapping[str, str]) -> float | None:
    """The OOD energy threshold stored in an exported model's metadata, or None if absent."""
    raw = metadata.get(META_OOD_ENERGY_THRESHOLD)
    if raw is None:
        return None
    value = float(raw)
    return value if math.isfinite(value) else None


def decide(
    probabilities: npt.ArrayLike,
    logits: npt.ArrayLike,
    *,
    temperature: float,
    energy_threshold: float | None,
    min_confidence: float,
    foreground_fraction: npt.ArrayLike | None = None,
    class_names: Sequence[str] = CLASS_NAMES,
) -> list[Verdict]:
    """One :class:`Verdict` per row of ``(N, K)`` calibrated probabilities and raw logits.

    Unknown when the image was blank (``foreground_fraction`` below
    :data:`BLANK_FOREGROUND_FRACTION`), when the top probability is below ``min_confidence``, or
    when the energy (with ``temperature``) is above ``energy_threshold`` (skipped when None).
    Non-finite model outputs are unknown too. Raises ``ValueError`` for mismatched shapes.
    """
    p = np.asarray(probabilities, dtype=np.float64)
    z = np.asarray(logits, dtype=np.float64)
    if p.ndim != 2 or p.shape != z.shape:
        raise ValueError(
            f"probabilities and logits must have the same (N, K) shape, got {p.shape} and {z.shape}"
        )
    if p.shape[1] != len(class_names):
        raise ValueError(f"{p.shape[1]} outputs for {len(class_names)} class names")
    if not (temperature > 0 and math.isfinite(temperature)):
        raise ValueError(f"temperature must be a positive finite number, got {temperature}")
    n = p.shape[0]
    fraction: npt.NDArray[np.float64] | None = None
    if foreground_fraction is not None:
        fraction = np.asarray(foreground_fraction, dtype=np.float64).reshape(-1)
        if fraction.shape != (n,):
            raise ValueError(f"foreground_fraction must have shape ({n},), got {fraction.shape}")
    with np.errstate(invalid="ignore", over="ignore"):
        energies = energy_score(z, temperature) if n else np.empty(0)
    verdicts: list[Verdict] = []
    for i in range(n):
        row = p[i]
        finite = bool(np.isfinite(row).all() and np.isfinite(z[i]).all())
        top = int(np.argmax(row)) if finite else 0
        confidence = float(row[top]) if finite else float("nan")
        energy = float(energies[i])
        reasons: list[str] = []
        if fraction is not None and fraction[i] < BLANK_FOREGROUND_FRACTION:
            reasons.append("blank image")
        if not finite:
            reasons.append("non-finite model output")
        else:
            if confidence < min_confidence:
                reasons.append(f"low confidence {confidence:.2f} < {min_confidence:.2f}")
            if energy_threshold is not None and energy > energy_threshold:
                reasons.append(
                    f"out of distribution: energy {energy:.2f} > threshold {energy_threshold:.2f}"
                )
        if reasons:
            verdicts.append(Verdict(None, UNKNOWN, confidence, energy, tuple(reasons)))
        else:
            verdicts.append(Verdict(top, class_names[top], confidence, energy, ()))
    return verdicts
