"""The registry of architectures: one name, one constructor with keyword options."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from torch import nn

from fmnist.errors import ConfigError
from fmnist.models.cnn import MLP, FashionCNN

ARCHITECTURES: dict[str, Callable[..., nn.Module]] = {
    "cnn": FashionCNN,
    "mlp": MLP,
}
"""Architecture name -> constructor; ``fmnist train --model NAME`` selects from these."""


def build_model(name: str, **options: Any) -> nn.Module:
    """Instantiate architecture ``name`` with ``options``; unknown names list the valid ones."""
    try:
        factory = ARCHITECTURES[name]
    except KeyError:
        valid = ", ".join(sorted(ARCHITECTURES))
        raise ConfigError(f"unknown model {name!r}; choose one of: {valid}") from None
    if "widths" in options:
        options = {**options, "widths": tuple(options["widths"])}
    return factory(**options)


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
