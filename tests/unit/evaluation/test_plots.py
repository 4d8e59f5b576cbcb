"""Tests that the plots render to readable PNG files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from fmnist import CLASS_NAMES
from fmnist.evaluation.calibration import softmax
from fmnist.evaluation.plots import confusion_matrix_png, reliability_diagram_png

from .synthetic import overconfident_logits

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def png_size(path: Path) -> tuple[int, int]:
    header = path.read_bytes()[:24]
    assert header[:8] == PNG_SIGNATURE
    return int.from_bytes(header[16:20], "big"), int.from_bytes(header[20:24], "big")


def test_confusion_matrix_png(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    confusion = rng.integers(0, 50, size=(10, 10)) + np.diag(np.full(10, 900))
    out = confusion_matrix_png(confusion, CLASS_NAMES, tmp_path / "plots" / "confusion.png")
    assert out == tmp_path / "plots" / "confusion.png"
    width, height = png_size(out)
    assert 600 <= width <= 2000 and 600 <= height <= 2000
    assert 20_000 < out.stat().st_size < 2_000_000
    assert [p.name for p in out.parent.iterdir()] == ["confusion.png"]  # no temporary left


def test_confusion_matrix_shape_must_match_names(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="shape"):
        confusion_matrix_png(np.zeros((3, 3)), CLASS_NAMES, tmp_path / "c.png")


@pytest.mark.parametrize("temperature", [None, 4.0])
def test_reliability_diagram_png(tmp_path: Path, temperature: float | None) -> None:
    logits, labels = overconfident_logits(500, seed=1)
    out = reliability_diagram_png(
        softmax(logits), labels, tmp_path / "reliability.png", temperature=temperature
    )
    width, height = png_size(out)
    assert 500 <= width <= 1500 and 500 <= height <= 1500
    assert out.stat().st_size > 20_000


def test_plots_overwrite_atomically(tmp_path: Path) -> None:
    path = tmp_path / "c.png"
    path.write_bytes(b"old")
    confusion_matrix_png(np.eye(2, dtype=int), ("a", "b"), path)
    assert path.read_bytes().startswith(PNG_SIGNATURE)
