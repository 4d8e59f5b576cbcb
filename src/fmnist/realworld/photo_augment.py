"""Augmentations that imitate photos: on the photo before preprocessing, and on 28x28 batches.

:func:`augment_photo` changes a working-size RGB photo the way another camera, room or hand
would: imperfect framing (a crop that cuts into the margins), exposure, gamma and colour cast,
an illumination gradient (a shadow across the scene), defocus blur and sensor noise. The result
goes through the same preprocessing as a served photo, so the segmentation's own mistakes under
those conditions become training examples too.

:class:`PhotoBatchAugmentation` works on float batches ``(N, 1, 28, 28)`` in [0, 1] like
:class:`fmnist.data.augment.Augmentation`, vectorised over the batch: mirror, a random affine
(scale, shift, small rotation: an imperfect crop and centring), gamma and gain (lighting), blur,
noise and random erasing (a part the segmentation lost).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import torch
import torch.nn.functional as F  # noqa: N812
from scipy import ndimage

from fmnist.data.augment import random_erasing, random_hflip

UInt8Array = npt.NDArray[np.uint8]


def augment_photo(rgb: UInt8Array, rng: np.random.Generator) -> UInt8Array:
    """A photo-like variant of an ``(h, w, 3)`` uint8 photo (see the module docstring)."""
    h, w = rgb.shape[:2]
    if rng.random() < 0.7:  # imperfect framing
        top, bottom = (rng.uniform(0.0, 0.12, 2) * h).astype(int)
        left, right = (rng.uniform(0.0, 0.12, 2) * w).astype(int)
        if h - top - bottom >= 16 and w - left - right >= 16:
            rgb = rgb[top : h - bottom, left : w - right]
            h, w = rgb.shape[:2]
    x = rgb.astype(np.float32) / 255.0
    gamma = math.exp(rng.uniform(math.log(0.7), math.log(1.5)))
    gain = rng.uniform(0.6, 1.3)
    cast = rng.uniform(0.9, 1.1, 3).astype(np.float32)
    x = np.power(x, gamma) * gain * cast
    if rng.random() < 0.5:  # an illumination gradient or a soft shadow across the scene
        angle = rng.uniform(0, 2 * math.pi)
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        ramp = (math.cos(angle) * (xx / w - 0.5) + math.sin(angle) * (yy / h - 0.5)) + 0.5
        low = rng.uniform(0.45, 0.9)
        x = x * (low + (1.0 - low) * np.clip(ramp, 0.0, 1.0))[..., None]
    if rng.random() < 0.4:  # defocus
        sigma = rng.uniform(0.5, 1.8)
        x = ndimage.gaussian_filter(x, sigma=(sigma, sigma, 0))
    if rng.random() < 0.5:  # sensor noise
        x = x + rng.normal(0.0, rng.uniform(0.01, 0.05), x.shape).astype(np.float32)
    out: UInt8Array = np.clip(np.rint(x * 255.0), 0, 255).astype(np.uint8)
    return out


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
