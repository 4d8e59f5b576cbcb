"""Say "unknown" instead of a confident wrong class: the one rule of the API and the batch job.

An answer is ``unknown`` when the preprocessed image is blank, when the model output is not
finite, when the calibrated top probability is below ``min_confidence``
(``ServingSettings.min_confidence``), or when the energy score ``-T * logsumexp(logits / T)`` is
above the out-of-distribution threshold recorded in the exported model's metadata (the 95th
percentile of the validation energies, see :mod:`fmnist.training.run`).

It lives in evaluation, next to :mod:`fmnist.evaluation.calibration` that computes the energy
score and the threshold, so the online API (:mod:`fmnist.serving`), the batch job
(:mod:`fmnist.batch`) and the real-photo harness import one rule without importing each other.
:func:`decide` gives one :class:`Verdict` with reasons per row (the online API);
:func:`decide_arrays` gives the same verdicts as arrays, without a Python object per row (the
batch job). Imports only numpy and the torch-free parts of :mod:`fmnist`.
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


@dataclass(frozen=True)
class Verdicts:
    """Vectorised verdicts for ``n`` rows: class id (-1 when unknown) and top probability."""

    class_id: npt.NDArray[np.int32]
    confidence: npt.NDArray[np.float32]

    @property
    def unknown(self) -> npt.NDArray[np.bool_]:
        """Rows answered ``unknown``."""
        return self.class_id < 0


def energy_threshold_from_metadata(metadata: Mapping[str, str]) -> float | None:
    """The OOD energy threshold stored in an exported model's metadata, or None if absent."""
    raw = metadata.get(META_OOD_ENERGY_THRESHOLD)
    if raw is None:
        return None
    value = float(raw)
    return value if math.isfinite(value) else None


@dataclass(frozen=True)
class _Assessment:
    """Each test of the rule as a mask over the rows (the reasons of :func:`decide`)."""

    top: npt.NDArray[np.intp]
    confidence: npt.NDArray[np.float64]  # NaN where the output is not finite
    energy: npt.NDArray[np.float64] | None
    blank: npt.NDArray[np.bool_]
    non_finite: npt.NDArray[np.bool_]
    low_confidence: npt.NDArray[np.bool_]
    out_of_distribution: npt.NDArray[np.bool_]

    @property
    def unknown(self) -> npt.NDArray[np.bool_]:
        """Rows that fail any test."""
        return self.blank | self.non_finite | self.low_confidence | self.out_of_distribution


def _assess(
    p: npt.NDArray[np.float64],
    z: npt.NDArray[np.float64],
    *,
    temperature: float,
    energy_threshold: float | None,
    min_confidence: float,
    foreground_fraction: npt.NDArray[np.float64] | None,
    with_energy: bool,
) -> _Assessment:
    """Apply the rule to ``(N, K)`` float64 probabilities and logits (energy computed only when
    ``with_energy`` or a threshold needs it)."""
    n = len(p)
    finite = np.asarray(np.isfinite(p).all(axis=1) & np.isfinite(z).all(axis=1), dtype=np.bool_)
    top = p.argmax(axis=1) if n else np.zeros(0, dtype=np.intp)
    confidence = np.where(finite, p[np.arange(n), top], np.nan)
    none = np.zeros(n, dtype=bool)
    energy: npt.NDArray[np.float64] | None = None
    with np.errstate(invalid="ignore", over="ignore"):
        if with_energy or energy_threshold is not None:
            energy = energy_score(z, temperature) if n else np.empty(0)
        low = finite & (confidence < min_confidence)
        ood = (
            none
            if energy is None or energy_threshold is None
            else finite & (energy > energy_threshold)
        )
        blank: npt.NDArray[np.bool_] = (
            none if foreground_fraction is None else foreground_fraction < BLANK_FOREGROUND_FRACTION
        )
    return _Assessment(top, confidence, energy, blank, ~finite, low, ood)


def decide_arrays(
    probabilities: npt.NDArray[np.float32],
    logits: npt.NDArray[np.float32],
    *,
    temperature: float,
    energy_threshold: float | None,
    min_confidence: float,
    foreground_fraction: npt.NDArray[np.float64] | None = None,
) -> Verdicts:
    """The verdicts of :func:`decide` for whole arrays at once (no checks, no reasons)."""
    found = _assess(
        probabilities.astype(np.float64),
        logits.astype(np.float64),
        temperature=temperature,
        energy_threshold=energy_threshold,
        min_confidence=min_confidence,
        foreground_fraction=foreground_fraction,
        with_energy=False,
    )
    class_id = np.where(found.unknown, -1, found.top).astype(np.int32)
    return Verdicts(class_id, found.confidence.astype(np.float32))


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
    found = _assess(
        p,
        z,
        temperature=temperature,
        energy_threshold=energy_threshold,
        min_confidence=min_confidence,
        foreground_fraction=fraction,
        with_energy=True,
    )
    energies = found.energy if found.energy is not None else np.full(n, np.nan)
    verdicts: list[Verdict] = []
    for i in range(n):
        confidence, energy = float(found.confidence[i]), float(energies[i])
        reasons: list[str] = []
        if found.blank[i]:
            reasons.append("blank image")
        if found.non_finite[i]:
            reasons.append("non-finite model output")
        if found.low_confidence[i]:
            reasons.append(f"low confidence {confidence:.2f} < {min_confidence:.2f}")
        if found.out_of_distribution[i]:
            reasons.append(
                f"out of distribution: energy {energy:.2f} > threshold {energy_threshold:.2f}"
            )
        if reasons:
            verdicts.append(Verdict(None, UNKNOWN, confidence, energy, tuple(reasons)))
        else:
            top = int(found.top[i])
            verdicts.append(Verdict(top, class_names[top], confidence, energy, ()))
    return verdicts
