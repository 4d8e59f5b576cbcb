"""The real-photo experiment harness (``fmnist experiment real-world``).

For one model version and one preprocessing configuration, every photo of a labelled folder is
preprocessed, classified and judged by the unknown rule, and compared with the mapping:

* **accuracy on mappable photos**: the model's top class is in the photo class's mapped set
  (the headline figure); also the accuracy of the photos it answers, and the share it answers
  correctly;
* **abstention** on photos whose class maps to no Fashion-MNIST class (the right answer is
  unknown) and on mappable photos (an answer withheld that could have been given);
* a confusion matrix (photo class x answer, unknown included), per-class results, the
  preprocessing time per photo and, when a data snapshot exists, the model's Fashion-MNIST test
  accuracy.

The thresholds of the unknown rule are the model's own (what the server applies: the
``abstention.min_confidence`` and ``ood.energy_threshold`` in its metadata, else
``serving.min_confidence``), explicit values, or calibrated on another folder's calibration fold
(:func:`fmnist.realworld.abstention.calibrate`). :mod:`fmnist.realworld.harness_inputs` opens
the model and prepares the photos; :mod:`fmnist.realworld.report` writes the report folder;
:func:`run_experiment` also tracks the run in MLflow.
"""

from __future__ import annotations

import re
import statistics
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict, Field

from fmnist import CLASS_NAMES
from fmnist.errors import FmnistError
from fmnist.evaluation.calibration import energy_score
from fmnist.evaluation.unknown import UNKNOWN, Verdict, decide
from fmnist.realworld.abstention import (
    DEFAULT_MAX_MAPPABLE_ABSTENTION,
    AbstentionCalibration,
    calibrate,
)
from fmnist.realworld.harness_inputs import (
    ModelHandle,
    Prepared,
    Preprocessing,
    UInt8Array,
    open_model,
    prepare_all,
)
from fmnist.realworld.mapping import ClassMapping
from fmnist.realworld.photos import LabelledPhoto, calibration_photos, scan_folder
from fmnist.realworld.scoring import MappingScore, check_same_classes, score_mappings

if TYPE_CHECKING:
    from fmnist.platform.services import Services

TARGETS: dict[str, tuple[str, float]] = {
    "mappable_accuracy": (">=", 0.75),
    "unmappable_abstention": (">=", 0.60),
    "mappable_abstention": ("<=", 0.15),
}
"""The issue's targets on held-out photos: metric -> (comparison, value)."""


class HarnessConfig(BaseModel):
    """What one experiment measures: the model, the preprocessing and the unknown thresholds."""

    model_config = ConfigDict(extra="forbid", protected_namespaces=())

    model: str = Field("champion", description="registry reference or a .onnx file")
    preprocessing: Preprocessing = "grabcut"
    min_confidence: float | None = Field(None, ge=0, le=1, description="override")
    energy_threshold: float | None = Field(None, description="override")
    no_energy_rule: bool = False
    fmnist_thresholds: bool = Field(
        False,
        description="the thresholds the model got from Fashion-MNIST (serving.min_confidence and "
        "the 95th percentile of validation energies), not photo-calibrated ones",
    )
    calibrate_on: Path | None = Field(None, description="calibrate on this folder's fold")
    max_mappable_abstention: float = Field(DEFAULT_MAX_MAPPABLE_ABSTENTION, ge=0, lt=1)
    limit: int | None = Field(None, ge=1, description="photos per class")


def _limit(photos: list[LabelledPhoto], per_class: int | None) -> list[LabelledPhoto]:
    if per_class is None:
        return photos
    seen: Counter[str] = Counter()
    kept = []
    for photo in photos:
        if seen[photo.photo_class] < per_class:
            kept.append(photo)
            seen[photo.photo_class] += 1
    return kept


def _scores(handle: ModelHandle, pixels: UInt8Array) -> tuple[npt.NDArray[Any], npt.NDArray[Any]]:
    logits, probabilities = handle.classifier.run(pixels)
    return logits, probabilities


def calibrate_thresholds(
    handle: ModelHandle,
    folder: Path,
    mapping: ClassMapping,
    config: HarnessConfig,
    *,
    show_progress: bool = True,
) -> AbstentionCalibration:
    """Calibrate the unknown thresholds on ``folder``'s calibration fold for this model."""
    photos = calibration_photos(folder, mapping)
    prepared = prepare_all(photos, config.preprocessing, show_progress=show_progress)
    logits, probabilities = _scores(handle, np.stack([p.pixels for p in prepared]))
    return calibrate(
        probabilities.max(axis=1),
        energy_score(logits, handle.temperature),
        [mapping.is_mappable(p.photo_class) for p in photos],
        foreground_fraction=[p.foreground_fraction for p in prepared],
        max_mappable_abstention=config.max_mappable_abstention,
    )


def _timing(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    return {
        "median_ms": statistics.median(values),
        "p95_ms": ordered[int(0.95 * (len(ordered) - 1))],
        "mean_ms": statistics.fmean(values),
    }


def _fashion_mnist_accuracy(services: Services, handle: ModelHandle) -> float | None:
    from fmnist.data.snapshot import load_snapshot

    try:
        snapshot = load_snapshot(services.storage, None)
    except FmnistError:
        return None
    images, labels = snapshot.split("test")
    return float((handle.classifier.predict(images) == labels).mean())


def measure(
    photos: list[LabelledPhoto],
    prepared: list[Prepared],
    verdicts: list[Verdict],
    top1: npt.NDArray[np.intp],
    mapping: ClassMapping,
) -> dict[str, Any]:
    """Per-class results, the summary and the confusion matrices of one experiment."""
    answers = [*CLASS_NAMES, UNKNOWN]
    classes = [c for c in mapping.photo_classes if any(p.photo_class == c for p in photos)]
    confusion = np.zeros((len(classes), len(answers)), dtype=np.int64)
    confusion_top1 = np.zeros((len(classes), len(CLASS_NAMES)), dtype=np.int64)
    per_class: dict[str, dict[str, Any]] = {}
    for r, name in enumerate(classes):
        rows = [i for i, p in enumerate(photos) if p.photo_class == name]
        right_set = mapping.targets(name)
        for i in rows:
            v = verdicts[i]
            confusion[r, answers.index(v.label)] += 1
            confusion_top1[r, int(top1[i])] += 1
        n = len(rows)
        answered = [i for i in rows if not verdicts[i].is_unknown]
        counts = Counter(verdicts[i].label for i in rows)
        row: dict[str, Any] = {
            "n": n,
            "mapped_to": mapping.target_names(name),
            "abstention": (n - len(answered)) / n,
            "answers": {k: c for k, c in counts.most_common()},
        }
        if right_set:
            row |= {
                "accuracy": sum(int(top1[i]) in right_set for i in rows) / n,
                "answered_accuracy": (
                    sum(verdicts[i].class_id in right_set for i in answered) / len(answered)
                    if answered
                    else None
                ),
                "correct_answers": sum(verdicts[i].class_id in right_set for i in answered) / n,
            }
        per_class[name] = row
    mappable = [i for i, p in enumerate(photos) if mapping.is_mappable(p.photo_class)]
    unmappable = [i for i, p in enumerate(photos) if not mapping.is_mappable(p.photo_class)]

    def share(rows: list[int], hit: Any) -> float | None:
        return sum(bool(hit(i)) for i in rows) / len(rows) if rows else None

    def is_right(i: int, cls: int | None) -> bool:
        return cls in mapping.targets(photos[i].photo_class)

    answered_mappable = [i for i in mappable if not verdicts[i].is_unknown]
    summary = {
        "photos": len(photos),
        "mappable_photos": len(mappable),
        "unmappable_photos": len(unmappable),
        "mappable_accuracy": share(mappable, lambda i: is_right(i, int(top1[i]))),
        "mappable_answered_accuracy": share(
            answered_mappable, lambda i: is_right(i, verdicts[i].class_id)
        ),
        "mappable_correct_answers": share(mappable, lambda i: is_right(i, verdicts[i].class_id)),
        "mappable_abstention": share(mappable, lambda i: verdicts[i].is_unknown),
        "mappable_wrong_answers": share(
            mappable,
            lambda i: not verdicts[i].is_unknown and not is_right(i, verdicts[i].class_id),
        ),
        "unmappable_abstention": share(unmappable, lambda i: verdicts[i].is_unknown),
        "blank": share(list(range(len(photos))), lambda i: "blank image" in verdicts[i].reasons),
    }
    return {
        "summary": summary,
        "per_class": per_class,
        "confusion": {"rows": classes, "columns": answers, "counts": confusion.tolist()},
        "confusion_top1": {
            "rows": classes,
            "columns": list(CLASS_NAMES),
            "counts": confusion_top1.tolist(),
        },
        "timing": _timing([p.wall_ms for p in prepared]),
        "cpu_timing": _timing([p.cpu_ms for p in prepared]),
    }


def target_check(summary: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Each of :data:`TARGETS` with the value reached and whether it is met."""
    out: dict[str, dict[str, Any]] = {}
    for key, (op, goal) in TARGETS.items():
        value = summary.get(key)
        met = value is not None and (value >= goal if op == ">=" else value <= goal)
        out[key] = {"target": f"{op} {goal:.0%}", "value": value, "met": met}
    return out


@dataclass
class ExperimentResult:
    """Everything an experiment produced: the report dict and what drew the images."""

    report: dict[str, Any]
    photos: list[LabelledPhoto]
    prepared: list[Prepared]
    verdicts: list[Verdict]
    top1: npt.NDArray[np.intp]
    mappings: tuple[ClassMapping, ...] = ()
    """The report's mapping first, then the others it was scored under."""
    scores: dict[str, MappingScore] = field(default_factory=dict)
    """Per mapping name: its ``mappings`` block and the indices of its wrong photos."""


def run_harness(
    services: Services,
    folder: Path,
    mapping: ClassMapping,
    config: HarnessConfig,
    *,
    name: str | None = None,
    show_progress: bool = True,
    also: Sequence[ClassMapping] = (),
) -> ExperimentResult:
    """Measure ``config`` on the labelled photos under ``folder`` (nothing is written); the
    predictions are also scored under the mappings ``also`` (the ``mappings`` block)."""
    settings = services.settings
    mappings = (mapping, *also)
    for other in also:
        check_same_classes(mapping, other)
    photos = _limit(scan_folder(folder, mapping), config.limit)
    handle = open_model(services, config.model)
    calibration: AbstentionCalibration | None = None
    min_confidence = handle.min_confidence
    energy = handle.energy_threshold
    source = "model" if handle.min_confidence is not None else "model+serving.min_confidence"
    if config.fmnist_thresholds:
        min_confidence, energy = None, handle.fmnist_energy_threshold
        source = "Fashion-MNIST (serving.min_confidence, validation energies)"
    if config.calibrate_on is not None:
        calibration = calibrate_thresholds(
            handle, config.calibrate_on, mapping, config, show_progress=show_progress
        )
        min_confidence, energy = calibration.min_confidence, calibration.energy_threshold
        source = f"calibrated on {config.calibrate_on} (calibration fold)"
    if config.min_confidence is not None:
        min_confidence, source = config.min_confidence, "given"
    if config.energy_threshold is not None:
        energy, source = config.energy_threshold, "given"
    if config.no_energy_rule:
        energy = None
    if min_confidence is None:
        min_confidence = settings.serving.min_confidence
    prepared = prepare_all(photos, config.preprocessing, show_progress=show_progress)
    logits, probabilities = _scores(handle, np.stack([p.pixels for p in prepared]))
    verdicts = decide(
        probabilities,
        logits,
        temperature=handle.temperature,
        energy_threshold=energy,
        min_confidence=min_confidence,
        foreground_fraction=[p.foreground_fraction for p in prepared],
        class_names=handle.classifier.class_names,
    )
    top1 = logits.argmax(axis=1)
    measured = measure(photos, prepared, verdicts, top1, mapping)
    created = datetime.now(UTC)
    report: dict[str, Any] = {
        "name": name or default_name(handle, config),
        "created": created.isoformat(timespec="seconds"),
        "photos_folder": str(folder),
        "mapping": mapping.describe(),
        "model": {
            "reference": handle.reference,
            "name": handle.name,
            "version": handle.version,
            "path": str(handle.path),
            "temperature": handle.temperature,
            "metadata": {
                k: v
                for k, v in handle.classifier.metadata.items()
                if k.startswith(("ood.", "abstention.", "preprocessing.", "photos."))
                or k in ("run_id", "snapshot_id")
            },
        },
        "preprocessing": config.preprocessing,
        "abstention": {
            "min_confidence": min_confidence,
            "energy_threshold": energy,
            "source": source,
            "calibration": calibration.to_dict() if calibration else None,
        },
        "limit_per_class": config.limit,
        "fashion_mnist_test_accuracy": _fashion_mnist_accuracy(services, handle),
        **measured,
    }
    report["targets"] = target_check(report["summary"])
    scores = score_mappings(photos, verdicts, top1, mappings)
    report["mappings"] = {name: score.block for name, score in scores.items()}
    return ExperimentResult(report, photos, prepared, verdicts, top1, mappings, scores)


def default_name(handle: ModelHandle, config: HarnessConfig) -> str:
    """``<model>-v<version>-<preprocessing>[-calibrated]``, safe as a folder name."""
    model = handle.name if handle.version is None else f"{handle.name}-v{handle.version}"
    parts = [model, config.preprocessing]
    if config.calibrate_on is not None:
        parts.append("calibrated")
    elif config.fmnist_thresholds:
        parts.append("fmnist-thresholds")
    return slug("-".join(parts))


def slug(text: str) -> str:
    """``text`` reduced to letters, digits, dots and dashes (at most 80 characters)."""
    return re.sub(r"[^A-Za-z0-9.-]+", "-", text).strip("-")[:80] or "experiment"
