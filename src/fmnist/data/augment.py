"""Batch augmentations in plain torch (torchvision does not work with this torch build).

Each function takes a float batch ``(N, 1, H, W)`` and a ``torch.Generator`` and is vectorised
over the batch: no Python loop per image.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F  # noqa: N812


def random_crop(x: torch.Tensor, padding: int, generator: torch.Generator) -> torch.Tensor:
    """Pad by ``padding`` (zeros) and crop back to the original size at a random offset."""
    if padding <= 0:
        return x
    n, _, h, w = x.shape
    padded = F.pad(x, (padding, padding, padding, padding))
    dy = torch.randint(0, 2 * padding + 1, (n,), generator=generator, device=x.device)
    dx = torch.randint(0, 2 * padding + 1, (n,), generator=generator, device=x.device)
    rows = (dy[:, None] + torch.arange(h, device=x.device)[None, :])[:, None, :, None]
    cols = (dx[:, None] + torch.arange(w, device=x.device)[None, :])[:, None, None, :]
    batch = torch.arange(n, device=x.device)[:, None, None, None]
    channel = torch.arange(x.shape[1], device=x.device)[None, :, None, None]
    return padded[batch, channel, rows, cols]


def random_hflip(x: torch.Tensor, p: float, generator: torch.Generator) -> torch.Tensor:
    """Mirror each image left-right with probability ``p``."""
    if p <= 0:
        return x
    flip = torch.rand(x.shape[0], generator=generator, device=x.device) < p
    return torch.where(flip[:, None, None, None], x.flip(-1), x)


def random_erasing(
    x: torch.Tensor,
    p: float,
    generator: torch.Generator,
    scale: tuple[float, float] = (0.02, 0.2),
    value: float = 0.0,
) -> torch.Tensor:
    """Blank a random rectangle (area share within ``scale``) with probability ``p``."""
    if p <= 0:
        return x
    n, _, h, w = x.shape
    area = torch.empty(n, device=x.device).uniform_(*scale, generator=generator) * h * w
    aspect = torch.exp(
        torch.empty(n, device=x.device).uniform_(-1.1, 1.1, generator=generator)
    )  # log-uniform in [1/3, 3]
    eh = torch.sqrt(area * aspect).round().clamp(1, h).long()
    ew = torch.sqrt(area / aspect).round().clamp(1, w).long()
    top = (torch.rand(n, generator=generator, device=x.device) * (h - eh + 1)).long()
    left = (torch.rand(n, generator=generator, device=x.device) * (w - ew + 1)).long()
    ys = torch.arange(h, device=x.device)[None, :]
    xs = torch.arange(w, device=x.device)[None, :]
    in_rows = (ys >= top[:, None]) & (ys < (top + eh)[:, None])
    in_cols = (xs >= left[:, None]) & (xs < (left + ew)[:, None])
    apply = torch.rand(n, generator=generator, device=x.device) < p
    mask = (in_rows[:, :, None] & in_cols[:, None, :]) & apply[:, None, None]
    return x.masked_fill(mask[:, None, :, :], value)


@dataclass(frozen=True)
class Augmentation:
    """A configured pipeline: random crop, horizontal flip, random erasing, in that order."""

    crop_padding: int = 2
    hflip_p: float = 0.5
    erasing_p: float = 0.0

    def __call__(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """Augment a batch."""
        x = random_crop(x, self.crop_padding, generator)
        x = random_hflip(x, self.hflip_p, generator)
        return random_erasing(x, self.erasing_p, generator)
