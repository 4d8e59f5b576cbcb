"""Explanations of the served model: attribution maps, heatmaps and their faithfulness.

``explain(model, images, method)`` returns one ``(28, 28)`` attribution map per image
(:class:`Explanation`) with one of :data:`METHODS`: ``integrated_gradients`` (the default),
``shap``, ``lime`` or ``occlusion``. ``model`` is the PyTorch form of a registered version,
rebuilt by :func:`load_served_model` from its ``weights.pt`` and checked against its ONNX file,
so what is explained is what is served. :func:`heatmap_png` draws a map over its image;
:mod:`fmnist.explain.faithfulness` measures how faithful each method is.

Importing this package does not import PyTorch: :func:`explain` and :func:`load_served_model`
load it on first use.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from fmnist.explain.core import (
    DEFAULT_METHOD,
    METHODS,
    ExplainError,
    ExplainOptions,
    ExplainTimeoutError,
    ExplainUnavailableError,
    Explanation,
    Method,
    UnknownMethodError,
    check_method,
)
from fmnist.explain.heatmap import heatmap_png

if TYPE_CHECKING:
    from torch import nn

    from fmnist.explain.model import ServedModel


def explain(
    model: nn.Module,
    images: npt.NDArray[np.uint8],
    method: str = DEFAULT_METHOD,
    *,
    targets: npt.NDArray[np.integer] | None = None,
    background: npt.NDArray[np.uint8] | None = None,
    options: ExplainOptions | None = None,
) -> Explanation:
    """Attribution maps ``(N, 28, 28)`` of uint8 ``images (N, 28, 28)`` for ``model``.

    ``targets=None`` explains the predicted class of each image; ``background`` (training
    images) is SHAP's reference set. See :func:`fmnist.explain.methods.explain`.
    """
    from fmnist.explain.methods import explain as run

    return run(model, images, method, targets=targets, background=background, options=options)


def load_served_model(folder: Path, *, verify: bool = True) -> ServedModel:
    """The registered version in ``folder`` (``weights.pt``) as the served PyTorch graph.

    See :func:`fmnist.explain.model.load_served_model`.
    """
    from fmnist.explain.model import load_served_model as load

    return load(folder, verify=verify)


__all__ = [
    "DEFAULT_METHOD",
    "METHODS",
    "ExplainError",
    "ExplainOptions",
    "ExplainTimeoutError",
    "ExplainUnavailableError",
    "Explanation",
    "Method",
    "UnknownMethodError",
    "check_method",
    "explain",
    "heatmap_png",
    "load_served_model",
]
