"""Domain adaptation pieces: the set-valued loss, outlier exposure, photo-like augmentations,
and the preprocessed photo set."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from data_paths import PHOTOS_TRAIN, require_dir
from fmnist import CLASS_NAMES
from fmnist.data.photo_batch_augment import PhotoBatchAugmentation
from fmnist.imaging.photo_augment import augment_photo
from fmnist.realworld.adaptation import (
    AdaptOptions,
    prepare_photo_set,
    set_nll,
    target_matrix,
    uniform_ce,
)
from fmnist.realworld.mapping import load_mapping
from fmnist.realworld.photos import LabelledPhoto, scan_folder

REPO = Path(__file__).resolve().parents[3]
MAPPING = REPO / "config/real-world/clothing-small.yaml"
TRAIN = PHOTOS_TRAIN


def test_set_nll_is_cross_entropy_for_one_class_and_log_of_the_set_sum_otherwise() -> None:
    logits = torch.tensor([[2.0, 0.5, -1.0, 0.0], [0.1, 0.2, 0.3, 0.4]])
    one = torch.tensor([[False, True, False, False], [True, False, False, False]])
    expected = torch.nn.functional.cross_entropy(logits, torch.tensor([1, 0]), reduction="none")
    assert torch.allclose(set_nll(logits, one), expected)
    several = torch.tensor([[True, True, False, False], [False, False, True, True]])
    p = torch.softmax(logits, dim=1)
    expected = -torch.log(torch.stack([p[0, :2].sum(), p[1, 2:].sum()]))
    assert torch.allclose(set_nll(logits, several), expected, atol=1e-6)


def test_set_nll_lets_the_model_choose_within_the_set() -> None:
    """Once the set holds all the probability, moving it between members costs nothing."""
    targets = torch.tensor([[False, True, True]])
    a = set_nll(torch.tensor([[-20.0, 10.0, 0.0]]), targets)
    b = set_nll(torch.tensor([[-20.0, 0.0, 10.0]]), targets)
    assert float(a) == pytest.approx(float(b), abs=1e-6) and float(a) < 1e-6


def test_uniform_ce_is_smallest_for_a_uniform_answer() -> None:
    flat = uniform_ce(torch.zeros(1, 10))
    sure = uniform_ce(torch.tensor([[8.0] + [0.0] * 9]))
    assert float(flat) == pytest.approx(math.log(10))
    assert float(sure) > float(flat)


def test_batch_augmentation_keeps_shape_range_and_is_seeded() -> None:
    x = torch.rand(16, 1, 28, 28)
    augment = PhotoBatchAugmentation()
    a = augment(x, torch.Generator().manual_seed(3))
    b = augment(x, torch.Generator().manual_seed(3))
    assert a.shape == x.shape and float(a.min()) >= 0.0 and float(a.max()) <= 1.0
    assert torch.equal(a, b)
    assert not torch.equal(a, x)


def test_photo_augmentation_changes_the_photo_reproducibly() -> None:
    rgb = np.random.default_rng(0).integers(0, 256, (120, 90, 3), dtype=np.uint8)
    a = augment_photo(rgb, np.random.default_rng(5))
    b = augment_photo(rgb, np.random.default_rng(5))
    assert a.dtype == np.uint8 and a.ndim == 3 and a.shape[2] == 3
    assert a.shape[0] <= 120 and a.shape[1] <= 90
    assert np.array_equal(a, b)


def test_target_matrix_follows_the_mapping(tmp_path: Path) -> None:
    mapping = load_mapping(MAPPING)
    photos = [LabelledPhoto(tmp_path / "x.jpg", c) for c in ("shoes", "hat", "pants")]
    targets = target_matrix(photos, mapping)
    assert [CLASS_NAMES[i] for i in np.flatnonzero(targets[0])] == [
        "Sandal",
        "Sneaker",
        "Ankle boot",
    ]
    assert not targets[1].any()
    assert np.flatnonzero(targets[2]).tolist() == [CLASS_NAMES.index("Trouser")]


def test_photo_set_of_real_photos_is_cached(tmp_path: Path) -> None:
    require_dir(TRAIN)
    mapping = load_mapping(MAPPING)
    photos = [p for p in scan_folder(TRAIN, mapping) if p.photo_class in ("pants", "hat")][::60]
    options = AdaptOptions(variants=2)
    first = prepare_photo_set(photos, mapping, options, cache_dir=tmp_path, show_progress=False)
    assert first.images.shape == (2 * len(photos), 28, 28)
    assert first.variant.tolist() == [0, 1] * len(photos)
    assert first.mappable.tolist() == [
        mapping.is_mappable(p.photo_class) for p in photos for _ in range(2)
    ]
    assert (first.images.reshape(len(first.images), -1).max(axis=1) > 0).all()
    cached = list(tmp_path.glob("photos-*.npz"))
    assert len(cached) == 1
    again = prepare_photo_set(photos, mapping, options, cache_dir=tmp_path, show_progress=False)
    assert np.array_equal(first.images, again.images)
