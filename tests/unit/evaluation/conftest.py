"""Fixtures shared by the evaluation tests."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pytest


@pytest.fixture
def blob_images() -> npt.NDArray[np.uint8]:
    """Four 28x28 images, each a bright asymmetric blob well inside the frame."""
    rng = np.random.default_rng(1)
    images = np.zeros((4, 28, 28), dtype=np.uint8)
    for i in range(4):
        y, x = 10 + i, 9 + 2 * i
        images[i, y : y + 6, x : x + 4] = rng.integers(120, 255, size=(6, 4))
        images[i, y + 6 : y + 8, x : x + 8] = 200
    return images
