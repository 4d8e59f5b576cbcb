"""PNG figures of the model card: per-class reliability diagrams and accuracy per slice.

Drawn like :mod:`fmnist.evaluation.plots` (object-oriented matplotlib on an Agg canvas, no
pyplot) but returned as bytes, so the card can embed them and the caller writes them atomically.
"""

from __future__ import annotations

import io
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from fmnist.evaluation.calibration import check_scores_and_labels
from fmnist.evaluation.classwise import classwise_ece, classwise_reliability
from fmnist.evaluation.slices import SliceReport, slices_by_feature

_DPI = 100


def _png(fig: Figure) -> bytes:
    FigureCanvasAgg(fig)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=_DPI)
    return buffer.getvalue()


def classwise_reliability_png(
    probs: npt.ArrayLike,
    labels: npt.ArrayLike,
    class_names: Sequence[str],
    n_bins: int = 15,
    columns: int = 5,
    few: int = 20,
) -> bytes:
    """A grid of one-vs-rest reliability diagrams, one panel per class, as PNG bytes.

    Each panel draws the observed frequency of the class per probability bin against the
    diagonal; the marker area grows with the log of the bin's count, bins with fewer than
    ``few`` images are hollow, and the title gives the class's ECE.
    """
    p, y = check_scores_and_labels(probs, labels)
    k = p.shape[1]
    if len(class_names) != k:
        raise ValueError(f"got {len(class_names)} class names for {k} probability columns")
    mean_prob, frequency, count = classwise_reliability(p, y, n_bins)
    eces = classwise_ece(p, y, n_bins)
    rows = -(-k // columns)
    fig = Figure(figsize=(2.4 * columns, 2.5 * rows))  # fixed margins: faster than constrained
    fig.subplots_adjust(left=0.06, right=0.99, bottom=0.08, top=0.86, wspace=0.12, hspace=0.45)
    axes = fig.subplots(rows, columns, sharex=True, sharey=True, squeeze=False)
    for c in range(rows * columns):
        ax = axes[c // columns][c % columns]
        if c >= k:
            ax.set_axis_off()
            continue
        filled = count[c] > 0
        solid = count[c] >= few
        ax.plot([0, 1], [0, 1], linestyle="--", color="grey", linewidth=0.8)
        ax.plot(mean_prob[c, filled], frequency[c, filled], color="tab:blue", linewidth=0.8)
        sizes = 8 + 12 * np.log10(np.maximum(count[c], 1))
        ax.scatter(
            mean_prob[c, solid], frequency[c, solid], s=sizes[solid], color="tab:blue", zorder=3
        )
        sparse = filled & ~solid
        ax.scatter(
            mean_prob[c, sparse],
            frequency[c, sparse],
            s=sizes[sparse],
            facecolors="none",
            edgecolors="tab:blue",
            zorder=3,
        )
        ax.set_title(f"{class_names[c]}\nECE {eces[c]:.4f}", fontsize=9)
        ax.set_xlim(0.0, 1.0)
        ax.set_ylim(0.0, 1.0)
        ax.grid(alpha=0.3)
        ax.tick_params(labelsize=7)
    fig.supxlabel("predicted probability of the class", fontsize=9)
    fig.supylabel("observed frequency of the class", fontsize=9)
    fig.suptitle(
        f"Per-class reliability, one-vs-rest (n={y.size}, {n_bins} bins; "
        f"hollow: fewer than {few} images)",
        fontsize=10,
    )
    return _png(fig)


def slices_png(report: SliceReport) -> bytes:
    """Accuracy per slice with its interval, one panel per image property, as PNG bytes.

    The dashed line is the overall accuracy; the highlighted (worst) slices are drawn in red.
    """
    grouped = slices_by_feature(report)
    worst = {(s.feature, s.bin) for s in report.worst_slices()}
    fig = Figure(figsize=(3.0 * len(grouped), 3.2), layout="constrained")
    axes = fig.subplots(1, len(grouped), sharey=True, squeeze=False)[0]
    lowest = min(s.accuracy_low for s in report.slices)
    for ax, (feature, slices) in zip(axes, grouped.items(), strict=True):
        x = np.arange(len(slices))
        accuracy = np.array([s.accuracy for s in slices])
        errors = np.array(
            [
                [s.accuracy - s.accuracy_low for s in slices],
                [s.accuracy_high - s.accuracy for s in slices],
            ]
        )
        colours = ["tab:red" if (s.feature, s.bin) in worst else "tab:blue" for s in slices]
        ax.bar(x, accuracy, color=colours, alpha=0.8, yerr=errors, capsize=3)
        ax.axhline(report.overall_accuracy, color="black", linestyle="--", linewidth=0.8)
        ax.set_xticks(x, labels=[f"{s.low:.3g}-\n{s.high:.3g}" for s in slices], fontsize=7)
        ax.set_title(feature.replace("_", " "), fontsize=10)
        ax.grid(alpha=0.3, axis="y")
    axes[0].set_ylabel("accuracy")
    axes[0].set_ylim(max(0.0, lowest - 0.05), 1.0)
    fig.suptitle(
        f"Accuracy per quantile slice ({report.confidence:.0%} Wilson intervals; "
        f"dashed: overall {report.overall_accuracy:.4f}; red: weakest)",
        fontsize=9,
    )
    return _png(fig)
