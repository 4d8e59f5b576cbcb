"""PNG plots of evaluation results: confusion matrix and reliability diagram.

Figures are drawn with matplotlib's object-oriented API on an explicit Agg canvas (no pyplot, so
no global backend switch, no display needed and no figures kept alive), rendered to bytes and
written with :func:`~fmnist.atomic.atomic_write_bytes`.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from fmnist.atomic import atomic_write_bytes
from fmnist.evaluation.calibration import (
    check_scores_and_labels,
    expected_calibration_error,
    reliability_curve,
    rescale_probabilities,
)

_DPI = 120


def _save(fig: Figure, path: Path) -> Path:
    FigureCanvasAgg(fig)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=_DPI)
    atomic_write_bytes(path, buffer.getvalue())
    return path


def confusion_matrix_png(
    confusion: Sequence[Sequence[int]] | npt.ArrayLike,
    class_names: Sequence[str],
    path: Path,
    title: str = "Confusion matrix",
) -> Path:
    """Draw a ``(K, K)`` confusion matrix (rows true, columns predicted) to a PNG at ``path``.

    Cells show counts and are coloured by the row-normalised share (recall on the diagonal).
    """
    counts = np.asarray(confusion, dtype=np.int64)
    k = len(class_names)
    if counts.shape != (k, k):
        raise ValueError(f"confusion must have shape ({k}, {k}), got {counts.shape}")
    totals = counts.sum(axis=1, keepdims=True)
    share = np.divide(counts, totals, out=np.zeros(counts.shape), where=totals > 0)

    fig = Figure(figsize=(1.0 + 0.75 * k, 0.5 + 0.7 * k), layout="constrained")
    ax = fig.add_subplot()
    image = ax.imshow(share, cmap="Blues", vmin=0.0, vmax=1.0)
    colorbar = fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    colorbar.set_label("share of the true class")
    ax.set_xticks(range(k), labels=list(class_names), rotation=45, ha="right")
    ax.set_yticks(range(k), labels=list(class_names))
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    ax.set_title(f"{title} (n={int(counts.sum())})")
    font = 9 if k <= 10 else 7
    for i in range(k):
        for j in range(k):
            colour = "white" if share[i, j] > 0.5 else "black"
            ax.text(j, i, str(counts[i, j]), ha="center", va="center", fontsize=font, color=colour)
    return _save(fig, path)


def reliability_diagram_png(
    probs: npt.ArrayLike,
    labels: npt.ArrayLike,
    path: Path,
    temperature: float | None = None,
    title: str = "Reliability diagram",
    n_bins: int = 15,
) -> Path:
    """Draw accuracy per confidence bin against the diagonal, with the ECE in the title.

    ``probs`` are the model's raw probabilities. With ``temperature``, the scaled probabilities
    (``softmax(log(probs) / T)``) are drawn next to them and both ECEs are shown. A lower panel
    shows how many samples fall in each bin.
    """
    p, y = check_scores_and_labels(probs, labels)
    series = [("before" if temperature is not None else "model", p, "tab:red")]
    if temperature is not None:
        series.append(
            (f"after (T={temperature:.2f})", rescale_probabilities(p, temperature), "tab:blue")
        )

    edges = np.linspace(0.0, 1.0, n_bins + 1)
    width = (edges[1] - edges[0]) / len(series)
    fig = Figure(figsize=(6.5, 7.0), layout="constrained")
    top, bottom = fig.subplots(2, 1, sharex=True, height_ratios=(3, 1))
    top.plot([0, 1], [0, 1], linestyle="--", color="grey", label="perfect calibration")
    eces = []
    for index, (name, scores, colour) in enumerate(series):
        _, accuracy, count = reliability_curve(scores, y, n_bins)
        ece = expected_calibration_error(scores, y, n_bins)
        eces.append(ece)
        left = edges[:-1] + index * width
        filled = count > 0
        top.bar(
            left[filled],
            accuracy[filled],
            width=width,
            align="edge",
            color=colour,
            alpha=0.75,
            edgecolor="black",
            linewidth=0.5,
            label=f"{name}: ECE {ece:.3f}",
        )
        bottom.bar(left, count, width=width, align="edge", color=colour, alpha=0.75)
    top.set_xlim(0.0, 1.0)
    top.set_ylim(0.0, 1.0)
    top.set_ylabel("accuracy")
    top.legend(loc="upper left")
    top.grid(alpha=0.3)
    bottom.set_yscale("log")
    bottom.set_xlabel("confidence (top-1 probability)")
    bottom.set_ylabel("samples")
    bottom.grid(alpha=0.3)
    ece_text = " → ".join(f"{e:.3f}" for e in eces)
    top.set_title(f"{title}\nECE {ece_text} (n={y.size}, {n_bins} bins)")
    return _save(fig, path)
