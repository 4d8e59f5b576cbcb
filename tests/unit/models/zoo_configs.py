"""Small option sets of every architecture, sized for fast single-thread tests."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from fmnist.models import build_model

SMALL: dict[str, dict[str, Any]] = {
    "cnn": {"widths": (16, 32), "convs_per_stage": 1, "dropout": 0.0},
    "mlp": {"hidden": 128, "dropout": 0.0},
    "resnet": {"widths": (32, 64), "blocks_per_stage": 1, "dropout": 0.0},
    "vit": {"patch_size": 7, "dim": 64, "depth": 2, "heads": 4, "dropout": 0.0, "drop_path": 0.0},
}
"""Architecture name -> options of a small, dropout-free instance."""


def small_model(name: str, *, seed: int = 0, **overrides: Any) -> nn.Module:
    """A seeded small instance of architecture ``name``."""
    torch.manual_seed(seed)
    return build_model(name, **{**SMALL[name], **overrides})


def make_nontrivial(model: nn.Module, batches: list[torch.Tensor], logit_std: float = 3.0) -> None:
    """Give ``model`` BN running statistics from ``batches`` and logits of spread ``logit_std``.

    Runs train-mode forward passes (updating batch-norm statistics), then rescales the last
    linear layer so that eval-mode logits on the first batch have standard deviation
    ``logit_std`` (untrained heads give near-uniform probabilities, which hide differences).
    Leaves the model in eval mode.
    """
    model.train()
    with torch.no_grad():
        for x in batches:
            model(x)
        model.eval()
        head = [m for m in model.modules() if isinstance(m, nn.Linear)][-1]
        std = float(model(batches[0]).std())
        head.weight.mul_(logit_std / std)
        head.bias.mul_(logit_std / std)
