"""Classification metrics of a model's predicted probabilities, as one serialisable report."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict, Field
from sklearn.metrics import precision_recall_fscore_support

from fmnist import CLASS_NAMES
from fmnist.evaluation.calibration import (
    check_scores_and_labels,
    expected_calibration_error,
    negative_log_likelihood,
    softmax,
)

_Unit = Field(ge=0.0, le=1.0)


class ClassMetrics(BaseModel):
    """Precision, recall, F1 and support of one class (0 where undefined, e.g. no support)."""

    model_config = ConfigDict(extra="forbid")

    name: str
    precision: float = _Unit
    recall: float = _Unit
    f1: float = _Unit
    support: int = Field(ge=0)


class EvaluationReport(BaseModel):
    """Metrics of one model on one labelled set; ``confusion`` rows are true, columns predicted.

    ``ece`` and ``nll`` describe the probabilities that were evaluated (after temperature
    scaling when ``temperature`` is set; ``ece_before_temperature`` is then the raw model's ECE).
    ``recall_disparity`` is max minus min recall over classes present in the labels.
    """

    model_config = ConfigDict(extra="forbid")

    n: int = Field(ge=1)
    accuracy: float = _Unit
    top2_accuracy: float = _Unit
    macro_f1: float = _Unit
    per_class: list[ClassMetrics]
    confusion: list[list[int]]
    ece: float = _Unit
    nll: float = Field(ge=0.0)
    recall_disparity: float = _Unit
    ece_before_temperature: float | None = None
    temperature: float | None = Field(None, gt=0.0)
    robustness: dict[str, float] | None = None


def evaluate_probabilities(
    probs: npt.ArrayLike,
    labels: npt.ArrayLike,
    class_names: Sequence[str] = CLASS_NAMES,
    n_bins: int = 15,
) -> EvaluationReport:
    """Evaluate ``(N, K)`` class probabilities against ``(N,)`` integer labels.

    ``class_names`` must have ``K`` entries; ``n_bins`` is the number of ECE bins.
    """
    p, y = check_scores_and_labels(probs, labels)
    k = p.shape[1]
    if len(class_names) != k:
        raise ValueError(f"got {len(class_names)} class names for {k} probability columns")
    pred = p.argmax(axis=1)
    confusion = np.bincount(y * k + pred, minlength=k * k).reshape(k, k)
    precision, recall, f1, support = precision_recall_fscore_support(
        y, pred, labels=np.arange(k), zero_division=0
    )
    top2 = np.argsort(-p, axis=1, kind="stable")[:, :2]
    present = np.asarray(support) > 0
    per_class = [
        ClassMetrics(
            name=name,
            precision=float(precision[i]),
            recall=float(recall[i]),
            f1=float(f1[i]),
            support=int(support[i]),
        )
        for i, name in enumerate(class_names)
    ]
    return EvaluationReport(
        n=int(y.size),
        accuracy=float((pred == y).mean()),
        top2_accuracy=float((top2 == y[:, None]).any(axis=1).mean()),
        macro_f1=float(np.mean(f1)),
        per_class=per_class,
        confusion=confusion.tolist(),
        ece=expected_calibration_error(p, y, n_bins),
        nll=negative_log_likelihood(p, y),
        recall_disparity=float(recall[present].max() - recall[present].min()),
    )


def evaluate_logits(
    logits: npt.ArrayLike,
    labels: npt.ArrayLike,
    temperature: float | None = None,
    class_names: Sequence[str] = CLASS_NAMES,
    n_bins: int = 15,
) -> EvaluationReport:
    """Evaluate logits, optionally temperature-scaled (``temperature`` fitted on other data).

    With a temperature, ``ece``/``nll`` are after scaling and ``ece_before_temperature`` is the
    unscaled ECE; accuracy is unchanged by scaling.
    """
    z, y = check_scores_and_labels(logits, labels, what="logits")
    if temperature is None:
        return evaluate_probabilities(softmax(z), y, class_names, n_bins)
    report = evaluate_probabilities(softmax(z, temperature), y, class_names, n_bins)
    before = expected_calibration_error(softmax(z), y, n_bins)
    return report.model_copy(
        update={"ece_before_temperature": before, "temperature": float(temperature)}
    )
