"""Explanation examples for the model card, made with :mod:`fmnist.explain` when it is there.

The model card takes the examples as plain data (``CardImage``: caption and PNG bytes), so it
does not depend on ``fmnist.explain``. :func:`explanation_examples` picks a few correctly and a
few wrongly classified test images, explains the prediction on each with the trained PyTorch
model and returns heatmap PNGs; when ``fmnist.explain`` cannot be imported, or explaining fails,
it returns no examples and a one-line note saying why, and the evaluation goes on.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt

from fmnist.evaluation.card_data import CardImage

logger = logging.getLogger("fmnist.evaluation")


def pick_examples(
    labels: npt.ArrayLike, probs: npt.ArrayLike, per_kind: int
) -> tuple[list[int], list[int]]:
    """Test indices to explain: ``per_kind`` correct and ``per_kind`` wrong predictions.

    Correct: the first correct image of each class in turn (class 0, 1, ...), so the examples
    show different classes. Wrong: the most confident mistakes, highest probability first.
    """
    y = np.asarray(labels, dtype=np.int64)
    p = np.asarray(probs, dtype=np.float64)
    pred = p.argmax(axis=1)
    confidence = p.max(axis=1)
    correct: list[int] = []
    for c in range(p.shape[1]):
        hits = np.flatnonzero((y == c) & (pred == c))
        if hits.size and len(correct) < per_kind:
            correct.append(int(hits[0]))
    mistakes = np.flatnonzero(pred != y)
    wrong = mistakes[np.argsort(-confidence[mistakes], kind="stable")][:per_kind]
    return correct, [int(i) for i in wrong]


def explanation_examples(
    model_folder: Path,
    images: npt.NDArray[np.uint8],
    labels: npt.ArrayLike,
    probs: npt.ArrayLike,
    class_names: Sequence[str],
    *,
    per_kind: int = 3,
    method: str = "integrated_gradients",
) -> tuple[list[CardImage], str | None]:
    """Explained test images (caption + heatmap PNG) and a note when there are none.

    ``model_folder`` holds the run's ``weights.pt`` (loaded with
    ``fmnist.explain.load_served_model``); ``probs`` are the evaluated model's probabilities on
    ``images``. The explained class is the predicted one.
    """
    if per_kind <= 0:
        return [], "not requested (evaluation.explanation_examples is 0)"
    try:  # imported by name: the package is built in parallel and may be missing
        module = importlib.import_module("fmnist.explain")
        explain = module.explain
        heatmap_png = module.heatmap_png
        load_served_model = module.load_served_model
    except (ImportError, AttributeError) as exc:
        return [], f"not available: fmnist.explain cannot be imported ({exc})"
    y = np.asarray(labels, dtype=np.int64)
    p = np.asarray(probs, dtype=np.float64)
    correct, wrong = pick_examples(y, p, per_kind)
    chosen = correct + wrong
    if not chosen:
        return [], "not available: no test images to explain"
    pred = p.argmax(axis=1)
    try:
        model = load_served_model(model_folder)
        batch = np.ascontiguousarray(images[chosen])
        result = explain(model, batch, method, targets=pred[chosen])
        attributions = np.asarray(result.attributions)
        examples = []
        for row, index in enumerate(chosen):
            kind = "right" if index in correct else "wrong"
            caption = (
                f"test image {index} ({kind}): true {class_names[y[index]]}, predicted "
                f"{class_names[pred[index]]} ({p[index, pred[index]]:.2f}); "
                f"{result.method} for the predicted class"
            )
            png = heatmap_png(batch[row], attributions[row])
            examples.append(CardImage(caption, png, f"explanation_{row + 1}.png", thumbnail=True))
    except Exception as exc:  # an optional section must not stop the evaluation
        logger.warning("explanation examples failed: %s", exc, exc_info=True)
        return [], f"not available: explaining failed ({type(exc).__name__}: {exc})"
    note = f"{len(correct)} correct and {len(wrong)} wrong predictions, {result.seconds:.2f} s"
    return examples, note
