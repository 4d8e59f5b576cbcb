"""Training loaders: the whole split held as tensors in memory, batches by index.

Fashion-MNIST fits in memory many times over, so a ``DataLoader`` with worker processes only adds
overhead here. :class:`TensorBatches` shuffles with its own seeded generator, normalises on the
fly and applies batch augmentations, which keeps an epoch reproducible and fast.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt
import torch

from fmnist.data.augment import Augmentation

PIXEL_MEAN = 0.2860
"""Mean of the training pixels scaled to [0, 1] (measured by ``fmnist data validate``)."""
PIXEL_STD = 0.3530
"""Standard deviation of the training pixels scaled to [0, 1]."""


def to_tensor(images: npt.NDArray[np.uint8]) -> torch.Tensor:
    """uint8 ``(N, 28, 28)`` to normalised float32 ``(N, 1, 28, 28)``."""
    x = torch.from_numpy(np.ascontiguousarray(images)).to(torch.float32).div_(255.0)
    return x.sub_(PIXEL_MEAN).div_(PIXEL_STD).unsqueeze(1)


@dataclass
class TensorBatches:
    """An iterable of ``(images, labels)`` batches over in-memory tensors.

    ``images`` stay uint8 until a batch is drawn, so memory is one byte per pixel.
    """

    images: npt.NDArray[np.uint8]
    labels: npt.NDArray[np.integer]
    batch_size: int = 256
    shuffle: bool = False
    seed: int = 0
    augmentation: Augmentation | None = None
    drop_last: bool = False
    epoch: int = 0
    _images: torch.Tensor = field(init=False, repr=False)
    _labels: torch.Tensor = field(init=False, repr=False)

    def __post_init__(self) -> None:
        """Wrap the arrays as tensors (no copy for contiguous input)."""
        if len(self.images) != len(self.labels):
            raise ValueError(f"{len(self.images)} images but {len(self.labels)} labels")
        if self.batch_size <= 0:
            raise ValueError(f"batch_size must be positive, got {self.batch_size}")
        self._images = torch.from_numpy(np.ascontiguousarray(self.images))
        self._labels = torch.from_numpy(self.labels.astype(np.int64))

    def __len__(self) -> int:
        """Number of batches per epoch."""
        n = len(self._labels)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch, which determines the shuffle order and augmentation draws."""
        self.epoch = epoch

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Yield normalised float batches for the current epoch."""
        generator = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)
        n = len(self._labels)
        order = torch.randperm(n, generator=generator) if self.shuffle else torch.arange(n)
        for i in range(len(self)):
            idx = order[i * self.batch_size : (i + 1) * self.batch_size]
            x = self._images[idx].to(torch.float32).div_(255.0).unsqueeze(1)
            if self.augmentation is not None:
                x = self.augmentation(x, generator)
            yield x.sub_(PIXEL_MEAN).div_(PIXEL_STD), self._labels[idx]
