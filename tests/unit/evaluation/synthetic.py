"""Synthetic model outputs with known properties, shared by the evaluation tests."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from fmnist import NUM_CLASSES


def overconfident_logits(
    n: int, seed: int = 0, scale: float = 4.0
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.int64]]:
    """Logits of a model that is right about 80% of the time but far too sure of itself.

    The well-calibrated logits are ``3 * onehot + N(0, 1.5)``; multiplying them by ``scale``
    keeps every prediction and makes the model overconfident, so the ideal temperature is
    about ``scale``.
    """
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, NUM_CLASSES, size=n)
    logits = rng.normal(0.0, 1.5, size=(n, NUM_CLASSES))
    logits[np.arange(n), labels] += 3.0
    return scale * logits, labels
