"""Data validation on the real data and on real data with injected problems."""

from __future__ import annotations

import numpy as np
import pytest

from fmnist.config import ValidationSettings
from fmnist.data.sources import RawDataset
from fmnist.data.validation import ValidationReport, content_ids, validate_splits
from helpers import image_set

N_TRAIN, N_TEST = 5_000, 1_000
Pair = tuple[np.ndarray, np.ndarray]


@pytest.fixture
def train_pair(raw_dataset: RawDataset) -> Pair:
    """A writable copy of the first 5,000 real training images."""
    return image_set(raw_dataset.train_images[:N_TRAIN], raw_dataset.train_labels[:N_TRAIN])


@pytest.fixture
def test_pair(raw_dataset: RawDataset) -> Pair:
    """A writable copy of the first 1,000 real test images."""
    return image_set(raw_dataset.test_images[:N_TEST], raw_dataset.test_labels[:N_TEST])


def validate(train: Pair, test: Pair, **thresholds: float) -> ValidationReport:
    return validate_splits({"train": train, "test": test}, ValidationSettings(**thresholds), "t")


def failed(report: ValidationReport) -> set[str]:
    return {c.name for c in report.failures}


def check(report: ValidationReport, name: str) -> float:
    return next(c.value for c in report.checks if c.name == name)


def test_real_data_passes(raw_dataset: RawDataset) -> None:
    report = validate_splits(
        {
            "train": (raw_dataset.train_images, raw_dataset.train_labels),
            "test": (raw_dataset.test_images, raw_dataset.test_labels),
        },
        ValidationSettings(),
        raw_dataset.content_hash,
    )

    assert report.passed, report.failures
    assert report.dataset == raw_dataset.content_hash
    assert [c.name for c in report.checks] == [
        "schema",
        *(
            f"{split}.{name}"
            for split in ("train", "test")
            for name in (
                "invalid_labels",
                "class_imbalance",
                "blank_fraction",
                "saturated_fraction",
                "duplicate_fraction",
                "conflicting_label_fraction",
            )
        ),
        "test.leakage_fraction",
    ]
    assert report.splits["train"].class_counts == [6_000] * 10
    assert report.splits["test"].class_counts == [1_000] * 10
    assert report.splits["train"].count == 60_000
    assert 70 < report.splits["train"].pixel_mean < 75  # 0.286 * 255
    assert report.leakage[0].leaked_images == 0


def test_subset_passes(train_pair: Pair, test_pair: Pair) -> None:
    report = validate(train_pair, test_pair)
    assert report.passed, report.failures
    assert report.splits["train"].count == N_TRAIN


def test_duplicates_in_train(train_pair: Pair, test_pair: Pair) -> None:
    images, labels = train_pair
    dup = (np.concatenate([images, images[:400]]), np.concatenate([labels, labels[:400]]))

    report = validate(dup, test_pair)

    assert failed(report) == {"train.duplicate_fraction"}
    assert report.splits["train"].duplicate_extra_copies == 400
    assert report.splits["train"].duplicate_groups == 400
    assert check(report, "train.duplicate_fraction") == pytest.approx(400 / 5_400)


def test_leakage_from_test_into_train(train_pair: Pair, test_pair: Pair) -> None:
    images, labels = train_pair
    test_images, test_labels = test_pair
    leaky = (
        np.concatenate([images, test_images[:100]]),
        np.concatenate([labels, test_labels[:100]]),
    )

    report = validate(leaky, test_pair)

    assert failed(report) == {"test.leakage_fraction"}
    leak = report.leakage[0]
    assert leak.split == "test"
    assert leak.leaked_images == 100
    assert leak.leaked_fraction == pytest.approx(0.1)
    assert leak.leaked_with_other_label == 0


def test_leakage_with_other_labels_counts_each_test_image_once(
    train_pair: Pair, test_pair: Pair
) -> None:
    images, labels = train_pair
    relabelled = (test_pair[1][:30] + 1) % 10
    leaky = (np.concatenate([images, test_pair[0][:30]]), np.concatenate([labels, relabelled]))

    leak = validate(leaky, test_pair).leakage[0]

    assert leak.leaked_images == 30
    assert leak.leaked_with_other_label == 30


def test_conflicting_labels(train_pair: Pair, test_pair: Pair) -> None:
    images, labels = train_pair
    other = (labels[:10] + 1) % 10
    conflicting = (np.concatenate([images, images[:10]]), np.concatenate([labels, other]))

    report = validate(conflicting, test_pair)

    assert failed(report) == {"train.conflicting_label_fraction"}
    # Both the original and its copy have a copy carrying another label.
    assert report.splits["train"].conflicting_label_images == 20
    assert report.splits["train"].duplicate_extra_copies == 10


def test_invalid_label(train_pair: Pair, test_pair: Pair) -> None:
    images, labels = train_pair
    labels[7] = 12

    report = validate((images, labels), test_pair)

    assert failed(report) == {"train.invalid_labels"}
    assert report.splits["train"].invalid_labels == 1
    assert sum(report.splits["train"].class_counts) == N_TRAIN - 1


def test_blank_images(train_pair: Pair, test_pair: Pair) -> None:
    images, labels = train_pair
    for i in range(10):
        images[i] = 20 * i  # constant images, distinct from each other
    report = validate((images, labels), test_pair)

    assert failed(report) == {"train.blank_fraction"}
    assert report.splits["train"].blank_images == 10


def test_saturated_images(train_pair: Pair, test_pair: Pair) -> None:
    images, labels = train_pair
    images[:10, :20, :] = 255  # 20 of 28 rows: 71% of the pixels
    report = validate((images, labels), test_pair)

    assert failed(report) == {"train.saturated_fraction"}
    assert report.splits["train"].saturated_images == 10


def test_class_imbalance(train_pair: Pair, test_pair: Pair) -> None:
    images, labels = train_pair
    class0 = np.flatnonzero(labels == 0)
    keep = np.setdiff1d(np.arange(len(labels)), class0[100:])

    report = validate((images[keep], labels[keep]), test_pair)

    assert failed(report) == {"train.class_imbalance"}
    assert report.splits["train"].class_counts[0] == 100
    assert check(report, "train.class_imbalance") == pytest.approx(
        max(report.splits["train"].class_counts) / 100
    )


def test_missing_class_is_infinite_imbalance(train_pair: Pair, test_pair: Pair) -> None:
    images, labels = train_pair
    keep = labels != 3
    report = validate((images[keep], labels[keep]), test_pair)
    assert check(report, "train.class_imbalance") == float("inf")
    assert "train.class_imbalance" in failed(report)


def test_wrong_schema_is_the_only_check(train_pair: Pair, test_pair: Pair) -> None:
    images, labels = train_pair
    report = validate((images.astype(np.float32), labels), test_pair)

    assert [c.name for c in report.checks] == ["schema"]
    assert report.checks[0].passed is False
    assert "train images are float32 (5000, 28, 28)" in report.checks[0].detail
    assert report.passed is False
    assert report.splits == {}


def test_schema_reports_label_shape(train_pair: Pair, test_pair: Pair) -> None:
    images, labels = train_pair
    report = validate((images, labels[:-1]), test_pair)
    assert not report.passed
    assert "train labels have shape (4999,) for 5000 images" in report.checks[0].detail


def test_every_non_train_split_is_checked_for_leakage(train_pair: Pair, test_pair: Pair) -> None:
    val = (train_pair[0][:200], train_pair[1][:200])
    report = validate_splits(
        {"train": train_pair, "val": val, "test": test_pair}, ValidationSettings(), "three-way"
    )
    assert [leak.split for leak in report.leakage] == ["val", "test"]
    assert report.leakage[0].leaked_images == 200
    assert report.leakage[1].leaked_images == 0
    assert "val.leakage_fraction" in failed(report)
    assert "test.leakage_fraction" not in failed(report)


def test_empty_split_is_measured_not_crashed(train_pair: Pair) -> None:
    empty = (np.zeros((0, 28, 28), dtype=np.uint8), np.zeros(0, dtype=np.uint8))
    report = validate(train_pair, empty)

    assert report.splits["test"].count == 0
    assert report.splits["test"].class_counts == [0] * 10
    assert report.leakage[0].leaked_images == 0
    assert report.leakage[0].leaked_fraction == 0.0
    assert failed(report) == {"test.class_imbalance"}


def test_content_ids_identify_equal_images(train_pair: Pair) -> None:
    images = np.concatenate([train_pair[0][:3], train_pair[0][1:2]])
    ids = content_ids(images)
    assert ids[1] == ids[3]
    assert len(set(ids[:3].tolist())) == 3
