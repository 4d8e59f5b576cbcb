"""In-memory batches and batch augmentations."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fmnist.data.augment import Augmentation, random_crop, random_erasing, random_hflip
from fmnist.data.loaders import PIXEL_MEAN, PIXEL_STD, TensorBatches, to_tensor
from fmnist.data.sources import RawDataset

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def images(raw_dataset: RawDataset) -> np.ndarray:
    # A writable copy: torch warns about wrapping the read-only arrays of the raw dataset.
    return raw_dataset.train_images[:1_000].copy()


@pytest.fixture(scope="module")
def labels(raw_dataset: RawDataset) -> np.ndarray:
    return raw_dataset.train_labels[:1_000].copy()


def batch(n: int = 8, seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.rand((n, 1, 28, 28), generator=generator) + 0.5  # no zeros inside the image


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def collect(batches: TensorBatches) -> list[tuple[torch.Tensor, torch.Tensor]]:
    return list(batches)


def test_to_tensor_normalises(images: np.ndarray) -> None:
    x = to_tensor(images[:4])
    assert x.shape == (4, 1, 28, 28)
    assert x.dtype == torch.float32
    expected = (images[:4].astype(np.float32) / 255.0 - PIXEL_MEAN) / PIXEL_STD
    np.testing.assert_allclose(x[:, 0].numpy(), expected, rtol=1e-5, atol=1e-5)


def test_length_and_shapes(images: np.ndarray, labels: np.ndarray) -> None:
    batches = TensorBatches(images, labels, batch_size=300)
    out = collect(batches)

    assert len(batches) == 4
    assert [len(y) for _, y in out] == [300, 300, 300, 100]
    x, y = out[0]
    assert x.shape == (300, 1, 28, 28)
    assert x.dtype == torch.float32
    assert y.dtype == torch.int64


def test_drop_last(images: np.ndarray, labels: np.ndarray) -> None:
    batches = TensorBatches(images, labels, batch_size=300, drop_last=True)
    assert len(batches) == 3
    assert [len(y) for _, y in batches] == [300, 300, 300]


def test_unshuffled_batches_are_in_order_and_normalised(
    images: np.ndarray, labels: np.ndarray
) -> None:
    x, y = next(iter(TensorBatches(images, labels, batch_size=64)))
    torch.testing.assert_close(x, to_tensor(images[:64]))
    np.testing.assert_array_equal(y.numpy(), labels[:64])
    whole = torch.cat([xb for xb, _ in TensorBatches(images, labels, batch_size=500)])
    pixels = whole * PIXEL_STD + PIXEL_MEAN
    assert pixels.min().item() == pytest.approx(0.0, abs=1e-5)
    assert pixels.max().item() == pytest.approx(1.0, abs=1e-5)
    assert abs(whole.mean().item()) < 0.1  # the training statistics centre the data


def test_shuffle_is_deterministic_per_seed_and_epoch(
    images: np.ndarray, labels: np.ndarray
) -> None:
    def labels_of(seed: int, epoch: int) -> torch.Tensor:
        batches = TensorBatches(images, labels, batch_size=100, shuffle=True, seed=seed)
        batches.set_epoch(epoch)
        return torch.cat([y for _, y in batches])

    first = labels_of(seed=1, epoch=0)
    assert torch.equal(first, labels_of(seed=1, epoch=0))
    assert not torch.equal(first, labels_of(seed=1, epoch=1))
    assert not torch.equal(first, labels_of(seed=2, epoch=0))
    assert sorted(first.tolist()) == sorted(labels.tolist())  # a permutation


def test_augmented_batches_are_reproducible(images: np.ndarray, labels: np.ndarray) -> None:
    augmentation = Augmentation(crop_padding=2, hflip_p=0.5, erasing_p=0.5)

    def first_batch(epoch: int) -> torch.Tensor:
        batches = TensorBatches(
            images, labels, batch_size=128, shuffle=True, seed=5, augmentation=augmentation
        )
        batches.set_epoch(epoch)
        return next(iter(batches))[0]

    assert torch.equal(first_batch(0), first_batch(0))
    assert not torch.equal(first_batch(0), first_batch(1))


def test_invalid_arguments(images: np.ndarray, labels: np.ndarray) -> None:
    with pytest.raises(ValueError, match="1000 images but 999 labels"):
        TensorBatches(images, labels[:-1])
    with pytest.raises(ValueError, match="batch_size must be positive, got 0"):
        TensorBatches(images, labels, batch_size=0)


def test_crop_without_padding_is_identity() -> None:
    x = batch()
    assert random_crop(x, 0, gen()) is x


def test_crop_moves_content_by_at_most_padding() -> None:
    padding = 3
    x = batch(16)
    out = random_crop(x, padding, gen(1))

    assert out.shape == x.shape
    padded = torch.nn.functional.pad(x, (padding,) * 4)
    shifts = set()
    for i in range(len(x)):
        matches = [
            (dy, dx)
            for dy in range(2 * padding + 1)
            for dx in range(2 * padding + 1)
            if torch.equal(out[i], padded[i, :, dy : dy + 28, dx : dx + 28])
        ]
        assert len(matches) == 1, f"image {i} is not a shifted window of its input"
        shifts.add(matches[0])
    assert len(shifts) > 1  # offsets are drawn per image


def test_hflip_with_p_one_flips_everything() -> None:
    x = batch()
    assert torch.equal(random_hflip(x, 1.0, gen()), x.flip(-1))
    assert random_hflip(x, 0.0, gen()) is x


def test_random_erasing_zeroes_one_rectangle_within_bounds() -> None:
    x = batch(64)
    scale = (0.02, 0.2)
    out = random_erasing(x, 1.0, gen(2), scale=scale)

    assert out.shape == x.shape
    for i in range(len(x)):
        erased = out[i, 0] == 0
        rows = torch.nonzero(erased.any(dim=1)).flatten()
        cols = torch.nonzero(erased.any(dim=0)).flatten()
        assert rows.numel() and cols.numel(), f"image {i} was not erased"
        top, bottom = rows.min().item(), rows.max().item() + 1
        left, right = cols.min().item(), cols.max().item() + 1
        assert erased[top:bottom, left:right].all(), f"image {i}: not a rectangle"
        area = int(erased.sum())
        assert area == (bottom - top) * (right - left)
        # Rounding each side to whole pixels can move the area a little outside the scale.
        assert 0.5 * scale[0] * 784 <= area <= 1.25 * scale[1] * 784
        kept = ~erased
        assert torch.equal(out[i, 0][kept], x[i, 0][kept])


def test_random_erasing_disabled() -> None:
    x = batch()
    assert random_erasing(x, 0.0, gen()) is x


def test_augmentation_composes_in_order() -> None:
    x = batch(8)
    augmentation = Augmentation(crop_padding=2, hflip_p=1.0, erasing_p=1.0)
    g1, g2 = gen(7), gen(7)
    expected = random_erasing(random_hflip(random_crop(x, 2, g2), 1.0, g2), 1.0, g2)
    assert torch.equal(augmentation(x, g1), expected)


def test_default_augmentation_keeps_shape_and_range() -> None:
    x = batch(32) - 0.5  # values in [0, 1)
    out = Augmentation()(x, gen(3))
    assert out.shape == x.shape
    assert out.min() >= 0
    assert out.max() < 1
