"""Evaluation beyond accuracy, for the model card: intervals, disparity, slices, behaviour.

:func:`responsible_evaluation` runs after the headline metrics in
:func:`fmnist.evaluation.run.evaluate_and_register`, on the same test images and probabilities,
writes its results (``responsible.json``, ``classwise_reliability.png``, ``slices.png``,
``explanation_<i>.png``) next to the other evaluation files and returns what the model card,
the run's metrics and the version's tags need. It is reported, never gated.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import numpy.typing as npt

from fmnist.atomic import atomic_write_bytes, atomic_write_text
from fmnist.config import EvaluationSettings
from fmnist.evaluation.behavioural import behavioural_tests
from fmnist.evaluation.bootstrap import bootstrap_intervals
from fmnist.evaluation.card_data import CardDetails, CardImage
from fmnist.evaluation.card_figures import classwise_reliability_png, slices_png
from fmnist.evaluation.classwise import classwise_ece
from fmnist.evaluation.disparity import class_disparity, most_confused_pairs
from fmnist.evaluation.explanations import explanation_examples
from fmnist.evaluation.metrics import EvaluationReport
from fmnist.evaluation.slices import slice_report

RESULTS_FILE = "responsible.json"


@dataclass
class ResponsibleEvaluation:
    """What :func:`responsible_evaluation` measured and wrote."""

    details: CardDetails
    artifacts: dict[str, Path] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0
    timings: dict[str, float] = field(default_factory=dict)
    """Seconds per part: bootstrap, slices, behavioural, calibration, figures, explanations."""


def _figure(path: Path, caption: str, png: bytes | None = None) -> CardImage:
    """A card figure from PNG bytes (written to ``path``) or from the file at ``path``."""
    if png is None:
        png = path.read_bytes()
    else:
        atomic_write_bytes(path, png)
    return CardImage(caption, png, path.name)


def responsible_evaluation(
    settings: EvaluationSettings,
    *,
    images: npt.NDArray[np.uint8],
    labels: npt.NDArray[np.integer],
    probs: npt.ArrayLike,
    predict: Callable[[npt.NDArray[np.uint8]], npt.ArrayLike],
    report: EvaluationReport,
    class_names: Sequence[str],
    out: Path,
    reference: tuple[npt.NDArray[np.uint8], npt.NDArray[np.integer]] | None = None,
    model_folder: Path | None = None,
    figures: Mapping[str, Path] | None = None,
    data_counts: Mapping[str, int] | None = None,
    data_source: str | None = None,
) -> ResponsibleEvaluation:
    """Measure intervals, disparity, confused pairs, slices, behaviour and per-class calibration.

    ``probs`` are the evaluated (temperature-scaled) probabilities of ``images``; ``predict``
    maps uint8 images to class ids (the served model); ``reference`` (the validation split)
    defines the clear examples of the minimum functionality test; ``model_folder`` holds the
    PyTorch weights for the explanation examples; ``figures`` are PNGs already written
    (``confusion_matrix``, ``reliability_diagram``) to show in the card.
    """
    started = time.perf_counter()
    timings: dict[str, float] = {}
    clock = [started]

    def lap(name: str) -> None:
        now = time.perf_counter()
        timings[name] = now - clock[0]
        clock[0] = now

    p = np.asarray(probs, dtype=np.float64)
    y = np.asarray(labels, dtype=np.int64)
    predicted = p.argmax(axis=1)
    level = settings.confidence_level

    intervals = bootstrap_intervals(
        p,
        y,
        resamples=settings.bootstrap_resamples,
        confidence=level,
        seed=settings.bootstrap_seed,
    )
    lap("bootstrap")
    disparity = class_disparity(report, level)
    pairs = most_confused_pairs(report.confusion, class_names, settings.confused_pairs)
    slices = slice_report(
        images,
        y,
        predicted,
        num_classes=len(class_names),
        n_bins=settings.slice_bins,
        confidence=level,
        min_size=settings.min_slice_size,
        worst=settings.worst_slices,
    )
    lap("slices")
    behavioural = behavioural_tests(
        predict,
        images,
        y,
        settings,
        reference_images=reference[0] if reference else None,
        reference_labels=reference[1] if reference else None,
        class_names=class_names,
    )
    lap("behavioural")
    eces = dict(zip(class_names, classwise_ece(p, y).tolist(), strict=True))
    lap("calibration")

    card_figures: dict[str, CardImage] = {}
    captions = {
        "confusion_matrix": "Confusion matrix on the test set (rows: true class).",
        "reliability_diagram": "Top-1 reliability diagram before and after temperature scaling.",
    }
    for key, path in (figures or {}).items():
        card_figures[key] = _figure(path, captions.get(key, key))
    card_figures["classwise_reliability"] = _figure(
        out / "classwise_reliability.png",
        "Per-class reliability diagrams (one-vs-rest, calibrated probabilities).",
        classwise_reliability_png(p, y, class_names),
    )
    card_figures["slices"] = _figure(
        out / "slices.png",
        "Accuracy per quantile slice of each image property; red: the weakest slices.",
        slices_png(slices),
    )

    lap("figures")
    explanations: list[CardImage] = []
    note: str | None = "not available: no model weights given"
    if model_folder is not None:
        explanations, note = explanation_examples(
            model_folder,
            images,
            y,
            p,
            class_names,
            per_kind=settings.explanation_examples,
            method=settings.explanation_method,
        )
    for image in explanations:
        atomic_write_bytes(out / image.file_name, image.png)
    lap("explanations")

    results = {
        "bootstrap": intervals.model_dump(),
        "disparity": disparity.model_dump(),
        "confused_pairs": [pair.model_dump() for pair in pairs],
        "slices": slices.model_dump(),
        "behavioural": behavioural.model_dump(),
        "classwise_ece": eces,
        "explanations": {"captions": [e.caption for e in explanations], "note": note},
        "seconds": timings,
    }
    results_path = out / RESULTS_FILE
    atomic_write_text(results_path, json.dumps(results, indent=2))

    artifacts = {
        "responsible": results_path,
        "classwise_reliability": out / "classwise_reliability.png",
        "slices": out / "slices.png",
        **{f"explanation_{i + 1}": out / e.file_name for i, e in enumerate(explanations)},
    }
    worst = slices.worst_slices()
    metrics = {
        "test_accuracy_ci_low": intervals.accuracy.low,
        "test_accuracy_ci_high": intervals.accuracy.high,
        "test_macro_f1_ci_low": intervals.macro_f1.low,
        "test_macro_f1_ci_high": intervals.macro_f1.high,
        "test_ece_ci_low": intervals.ece.low,
        "test_ece_ci_high": intervals.ece.high,
        "test_f1_disparity": disparity.f1_disparity,
        "classwise_ece_max": max(eces.values()),
        "worst_slice_gap": worst[0].gap if worst else 0.0,
        **{f"behavioural_{r.name}_change_rate": r.change_rate for r in behavioural.invariance},
    }
    if behavioural.functionality is not None:
        metrics["behavioural_mft_pass_rate"] = behavioural.functionality.pass_rate
    failed = behavioural.failed()
    details = CardDetails(
        intervals=intervals,
        disparity=disparity,
        confused_pairs=pairs,
        slices=slices,
        behavioural=behavioural,
        classwise_ece=eces,
        figures=card_figures,
        explanations=explanations,
        explanations_note=note,
        data_counts=data_counts,
        data_source=data_source,
    )
    seconds = time.perf_counter() - started
    metrics["responsible_eval_seconds"] = seconds
    return ResponsibleEvaluation(
        details=details,
        artifacts=artifacts,
        metrics=metrics,
        tags={"behavioural": "passed" if not failed else "failed: " + ", ".join(failed)},
        seconds=seconds,
        timings=timings,
    )
