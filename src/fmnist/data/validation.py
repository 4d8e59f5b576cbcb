"""Data validation: schema, class balance, pixel statistics, blanks, duplicates and leakage.

:func:`validate_splits` never raises on bad data: it measures, compares each measure with its
threshold from :class:`~fmnist.config.ValidationSettings`, and returns a report whose ``passed``
flag the CLI and the pipelines turn into an exit code.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel

from fmnist import IMAGE_SIZE, NUM_CLASSES
from fmnist.config import ValidationSettings

TRAIN_SPLITS = ("train",)
"""Splits that a model learns from; any other split is checked for leakage against them."""


class SplitStats(BaseModel):
    """Measurements of one split."""

    count: int
    class_counts: list[int]
    pixel_mean: float
    pixel_std: float
    blank_images: int
    saturated_images: int
    duplicate_groups: int
    duplicate_extra_copies: int
    conflicting_label_images: int
    invalid_labels: int


class LeakageStats(BaseModel):
    """Images of an evaluation split whose exact content also appears in a training split."""

    split: str
    leaked_images: int
    leaked_fraction: float
    leaked_with_other_label: int


class Check(BaseModel):
    """One thresholded check; ``passed`` is ``value <= threshold`` (or a schema truth)."""

    name: str
    value: float
    threshold: float
    passed: bool
    detail: str


class ValidationReport(BaseModel):
    """The full validation result, serialised as the JSON report."""

    dataset: str
    passed: bool
    splits: dict[str, SplitStats]
    leakage: list[LeakageStats]
    checks: list[Check]

    @property
    def failures(self) -> list[Check]:
        """The checks that did not pass."""
        return [c for c in self.checks if not c.passed]


def content_ids(images: npt.NDArray[np.uint8]) -> npt.NDArray[np.int64]:
    """An integer id per image such that two images share an id iff their pixels are equal."""
    flat = np.ascontiguousarray(images.reshape(len(images), int(np.prod(images.shape[1:]))))
    rows = flat.view(np.dtype((np.void, flat.shape[1])))
    _, inverse = np.unique(rows, return_inverse=True)
    return inverse.reshape(-1).astype(np.int64)


def _conflicting(ids: npt.NDArray[np.int64], labels: npt.NDArray[np.integer]) -> int:
    """How many images have an exact copy (same id) that carries a different label."""
    if ids.size == 0:
        return 0
    pairs = np.unique(np.stack([ids, labels.astype(np.int64)], axis=1), axis=0)
    labels_per_id = np.bincount(pairs[:, 0])
    return int(np.sum(labels_per_id[ids] > 1))


def _leaked_with_other_label(
    train_ids: npt.NDArray[np.int64],
    train_labels: npt.NDArray[np.int64],
    leaked_ids: npt.NDArray[np.int64],
    leaked_labels: npt.NDArray[np.integer],
) -> int:
    """How many leaked images have a training copy (same id) that carries a different label."""
    if leaked_ids.size == 0:
        return 0
    pairs = np.unique(np.stack([train_ids, train_labels], axis=1), axis=0)
    labels_per_id = np.bincount(pairs[:, 0], minlength=int(leaked_ids.max()) + 1)
    base = int(max(train_labels.max(), leaked_labels.max())) + 1
    same_label = np.isin(
        leaked_ids * base + leaked_labels.astype(np.int64), pairs[:, 0] * base + pairs[:, 1]
    )
    return int(np.sum(labels_per_id[leaked_ids] > same_label))


def _split_stats(
    images: npt.NDArray[np.uint8],
    labels: npt.NDArray[np.integer],
    ids: npt.NDArray[np.int64],
    settings: ValidationSettings,
) -> SplitStats:
    flat = images.reshape(len(images), IMAGE_SIZE * IMAGE_SIZE)
    valid = (labels >= 0) & (labels < NUM_CLASSES)
    counts = np.bincount(labels[valid].astype(np.int64), minlength=NUM_CLASSES)
    pixel_range = flat.max(axis=1).astype(np.int16) - flat.min(axis=1) if len(flat) else flat
    saturated = (flat == 255).mean(axis=1) >= settings.saturated_pixel_fraction
    _, copies = np.unique(ids, return_counts=True)
    return SplitStats(
        count=len(images),
        class_counts=[int(c) for c in counts[:NUM_CLASSES]],
        pixel_mean=float(flat.mean()) if flat.size else 0.0,
        pixel_std=float(flat.std()) if flat.size else 0.0,
        blank_images=int(np.sum(pixel_range <= settings.blank_range)),
        saturated_images=int(np.sum(saturated)),
        duplicate_groups=int(np.sum(copies > 1)),
        duplicate_extra_copies=int(np.sum(copies[copies > 1] - 1)),
        conflicting_label_images=_conflicting(ids, labels),
        invalid_labels=int(np.sum(~valid)),
    )


def _schema_check(splits: Mapping[str, tuple[np.ndarray, np.ndarray]]) -> Check:
    problems = []
    for name, (images, labels) in splits.items():
        if images.dtype != np.uint8 or images.ndim != 3 or images.shape[1:] != (IMAGE_SIZE,) * 2:
            problems.append(f"{name} images are {images.dtype} {images.shape}")
        if labels.ndim != 1 or len(labels) != len(images):
            problems.append(f"{name} labels have shape {labels.shape} for {len(images)} images")
    return Check(
        name="schema",
        value=float(len(problems)),
        threshold=0.0,
        passed=not problems,
        detail="; ".join(problems) or f"uint8 images {IMAGE_SIZE}x{IMAGE_SIZE}, 1-D labels",
    )


def _threshold(name: str, value: float, threshold: float, detail: str) -> Check:
    return Check(
        name=name, value=value, threshold=threshold, passed=value <= threshold, detail=detail
    )


def validate_splits(
    splits: Mapping[str, tuple[npt.NDArray[np.uint8], npt.NDArray[np.integer]]],
    settings: ValidationSettings,
    dataset: str = "",
) -> ValidationReport:
    """Validate named splits (for example train/test, or train/val/test of a snapshot)."""
    schema = _schema_check(splits)
    if not schema.passed:
        return ValidationReport(
            dataset=dataset, passed=False, splits={}, leakage=[], checks=[schema]
        )

    names = list(splits)
    all_ids = content_ids(np.concatenate([splits[n][0] for n in names]))
    offsets = np.cumsum([0] + [len(splits[n][0]) for n in names])
    ids = {n: all_ids[offsets[i] : offsets[i + 1]] for i, n in enumerate(names)}

    stats = {n: _split_stats(*splits[n], ids[n], settings) for n in names}
    checks = [schema]
    for name, st in stats.items():
        n = max(st.count, 1)
        checks.append(
            _threshold(
                f"{name}.invalid_labels",
                st.invalid_labels,
                0,
                f"{st.invalid_labels} labels outside 0-{NUM_CLASSES - 1}",
            )
        )
        smallest = min(st.class_counts)
        imbalance = max(st.class_counts) / smallest if smallest else float("inf")
        checks += [
            _threshold(
                f"{name}.class_imbalance",
                imbalance,
                settings.max_class_imbalance,
                f"class counts {st.class_counts}",
            ),
            _threshold(
                f"{name}.blank_fraction",
                st.blank_images / n,
                settings.max_blank_fraction,
                f"{st.blank_images} images with pixel range <= {settings.blank_range}",
            ),
            _threshold(
                f"{name}.saturated_fraction",
                st.saturated_images / n,
                settings.max_saturated_fraction,
                f"{st.saturated_images} images with >= "
                f"{settings.saturated_pixel_fraction:.0%} pixels at 255",
            ),
            _threshold(
                f"{name}.duplicate_fraction",
                st.duplicate_extra_copies / n,
                settings.max_duplicate_fraction,
                f"{st.duplicate_extra_copies} extra copies in {st.duplicate_groups} groups",
            ),
            _threshold(
                f"{name}.conflicting_label_fraction",
                st.conflicting_label_images / n,
                settings.max_conflicting_label_fraction,
                f"{st.conflicting_label_images} images whose exact copy has another label",
            ),
        ]

    train_names = [n for n in names if n in TRAIN_SPLITS]
    leakage: list[LeakageStats] = []
    if train_names:
        train_ids = np.concatenate([ids[n] for n in train_names])
        train_labels = np.concatenate([splits[n][1] for n in train_names]).astype(np.int64)
        for name in (n for n in names if n not in TRAIN_SPLITS):
            leaked = np.isin(ids[name], train_ids)
            other_label = _leaked_with_other_label(
                train_ids, train_labels, ids[name][leaked], splits[name][1][leaked]
            )
            count = int(leaked.sum())
            fraction = count / max(len(leaked), 1)
            leakage.append(
                LeakageStats(
                    split=name,
                    leaked_images=count,
                    leaked_fraction=fraction,
                    leaked_with_other_label=other_label,
                )
            )
            checks.append(
                _threshold(
                    f"{name}.leakage_fraction",
                    fraction,
                    settings.max_leakage_fraction,
                    f"{count} {name} images have an exact copy in train",
                )
            )
    return ValidationReport(
        dataset=dataset,
        passed=all(c.passed for c in checks),
        splits=stats,
        leakage=leakage,
        checks=checks,
    )
