"""Batch augmentations that imitate photos, on 28x28 model inputs.

:class:`PhotoBatchAugmentation` works on float batches ``(N, 1, 28, 28)`` in [0, 1] like
:class:`fmnist.data.augment.Augmentation`, vectorised over the batch: mirror, a random affine
(scale, shift, small rotation: an imperfect crop and centring), gamma and gain (lighting), blur,
noise and random erasing (a part the segmentation lost). The photo-level counterpart, applied
before preprocessing, is :func:`fmnist.imaging.photo_augment.augment_photo`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F  # noqa: N812

from fmnist.data.augment import random_erasing, random_hflip


def _uniform(n: int, low: float, high: float, generator: torch.Generator) -> torch.Tensor:
    return torch.empty(n).uniform_(low, high, generator=generator)


def random_affine(
    x: torch.Tensor,
    generator: torch.Generator,
    *,
    scale: tuple[float, float] = (0.85, 1.08),
    shift: float = 2.0,
    degrees: float = 8.0,
) -> torch.Tensor:
    """Zoom, shift (pixels) and rotate each image by random amounts (zeros fill the edges)."""
    n, _, h, w = x.shape
    s = _uniform(n, *scale, generator)
    angle = _uniform(n, -degrees, degrees, generator) * (math.pi / 180.0)
    tx = _uniform(n, -shift, shift, generator) * (2.0 / w)
    ty = _uniform(n, -shift, shift, generator) * (2.0 / h)
    cos, sin = torch.cos(angle) / s, torch.sin(angle) / s
    theta = torch.stack(
        [torch.stack([cos, -sin, tx], dim=1), torch.stack([sin, cos, ty], dim=1)], dim=1
    )
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def random_lighting(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Random gamma (0.7-1.4) and gain (0.7-1.1) per image, clipped to [0, 1]."""
    n = x.shape[0]
    gamma = torch.exp(_uniform(n, math.log(0.7), math.log(1.4), generator))[:, None, None, None]
    gain = _uniform(n, 0.7, 1.1, generator)[:, None, None, None]
    return (x.clamp_min(0.0).pow(gamma) * gain).clamp(0.0, 1.0)


def random_blur(x: torch.Tensor, p: float, generator: torch.Generator) -> torch.Tensor:
    """A 3x3 Gaussian blur (sigma 0.8) on each image with probability ``p``."""
    if p <= 0:
        return x
    g = torch.tensor([0.2384, 0.5232, 0.2384])
    kernel = (g[:, None] * g[None, :])[None, None].to(x.dtype)
    blurred = F.conv2d(x, kernel, padding=1)
    pick = torch.rand(x.shape[0], generator=generator) < p
    return torch.where(pick[:, None, None, None], blurred, x)


def random_noise(x: torch.Tensor, p: float, generator: torch.Generator) -> torch.Tensor:
    """Gaussian noise (sigma up to 0.05) on each image with probability ``p``, clipped."""
    if p <= 0:
        return x
    n = x.shape[0]
    sigma = _uniform(n, 0.0, 0.05, generator) * (torch.rand(n, generator=generator) < p)
    noise = torch.randn(x.shape, generator=generator) * sigma[:, None, None, None]
    return (x + noise).clamp(0.0, 1.0)


@dataclass(frozen=True)
class PhotoBatchAugmentation:
    """Photo-like augmentation of ``(N, 1, 28, 28)`` batches in [0, 1] (see the module doc)."""

    hflip_p: float = 0.5
    blur_p: float = 0.3
    noise_p: float = 0.3
    erasing_p: float = 0.25

    def __call__(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """Augment a batch."""
        x = random_hflip(x, self.hflip_p, generator)
        x = random_affine(x, generator)
        x = random_lighting(x, generator)
        x = random_blur(x, self.blur_p, generator)
        x = random_noise(x, self.noise_p, generator)
        return random_erasing(x, self.erasing_p, generator, scale=(0.02, 0.12))
