"""Where classes differ: per-class recall with intervals, the spread, the most confused pairs."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict, Field

from fmnist.evaluation.metrics import EvaluationReport
from fmnist.evaluation.slices import wilson_interval


class ConfusedPair(BaseModel):
    """Two classes and how often each was taken for the other (symmetric count ``total``)."""

    model_config = ConfigDict(extra="forbid")

    first: str
    second: str
    first_as_second: int = Field(ge=0, description="true first, predicted second")
    second_as_first: int = Field(ge=0, description="true second, predicted first")
    total: int = Field(ge=0)
    share: float = Field(ge=0.0, le=1.0, description="total / images of the two classes")


def most_confused_pairs(
    confusion: Sequence[Sequence[int]] | npt.ArrayLike, class_names: Sequence[str], top: int = 5
) -> list[ConfusedPair]:
    """The ``top`` unordered class pairs with the most errors between them, most first.

    ``confusion`` is ``(K, K)`` with rows true and columns predicted; the count of a pair is
    ``C[i, j] + C[j, i]``. Pairs without errors are left out; ties keep class order.
    """
    counts = np.asarray(confusion, dtype=np.int64)
    k = len(class_names)
    if counts.shape != (k, k):
        raise ValueError(f"confusion must have shape ({k}, {k}), got {counts.shape}")
    support = counts.sum(axis=1)
    symmetric = counts + counts.T
    i_upper, j_upper = np.triu_indices(k, 1)
    totals = symmetric[i_upper, j_upper]
    order = np.argsort(-totals, kind="stable")
    pairs = []
    for index in order[:top]:
        i, j = int(i_upper[index]), int(j_upper[index])
        total = int(totals[index])
        if total == 0:
            break
        pairs.append(
            ConfusedPair(
                first=class_names[i],
                second=class_names[j],
                first_as_second=int(counts[i, j]),
                second_as_first=int(counts[j, i]),
                total=total,
                share=total / max(int(support[i] + support[j]), 1),
            )
        )
    return pairs


class ClassRecall(BaseModel):
    """One class's recall with its Wilson interval."""

    model_config = ConfigDict(extra="forbid")

    name: str
    recall: float = Field(ge=0.0, le=1.0)
    low: float = Field(ge=0.0, le=1.0)
    high: float = Field(ge=0.0, le=1.0)
    support: int = Field(ge=0)


class ClassDisparity(BaseModel):
    """How unequal the classes are: recall per class (with intervals), spread and extremes."""

    model_config = ConfigDict(extra="forbid")

    confidence: float
    recalls: list[ClassRecall]
    recall_disparity: float = Field(ge=0.0, le=1.0, description="max - min recall")
    f1_disparity: float = Field(ge=0.0, le=1.0, description="max - min F1")
    worst_class: str
    best_class: str
    below_mean: list[str] = Field(
        description="classes whose whole recall interval lies below the mean recall"
    )


def class_disparity(report: EvaluationReport, confidence: float = 0.95) -> ClassDisparity:
    """Per-class recall intervals and disparity figures of an evaluation report.

    Classes without test samples are left out of every figure.
    """
    diagonal = np.diag(np.asarray(report.confusion, dtype=np.int64))
    kept = [i for i, m in enumerate(report.per_class) if m.support > 0]
    if not kept:
        raise ValueError("the report has no class with test samples")
    present = [report.per_class[i] for i in kept]
    hits = diagonal[kept]
    support = np.array([m.support for m in present])
    low, high = wilson_interval(hits, support, confidence)
    recalls = [
        ClassRecall(name=m.name, recall=m.recall, low=float(lo), high=float(hi), support=m.support)
        for m, lo, hi in zip(present, low, high, strict=True)
    ]
    mean_recall = float(np.mean([r.recall for r in recalls]))
    worst = min(recalls, key=lambda r: r.recall)
    best = max(recalls, key=lambda r: r.recall)
    f1 = [m.f1 for m in present]
    return ClassDisparity(
        confidence=confidence,
        recalls=recalls,
        recall_disparity=best.recall - worst.recall,
        f1_disparity=max(f1) - min(f1),
        worst_class=worst.name,
        best_class=best.name,
        below_mean=[r.name for r in recalls if r.high < mean_recall],
    )
