"""The registry of architectures: one name, one constructor with keyword options."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from torch import nn

from fmnist.errors import ConfigError
from fmnist.models.cnn import MLP, FashionCNN
from fmnist.models.resnet import PreActResNet
from fmnist.models.vit import VisionTransformer

ARCHITECTURES: dict[str, Callable[..., nn.Module]] = {
    "cnn": FashionCNN,
    "mlp": MLP,
    "resnet": PreActResNet,
    "vit": VisionTransformer,
}
"""Architecture name -> constructor; ``fmnist train --model NAME`` selects from these.

Ensembles are assembled from trained members with :func:`fmnist.models.build_ensemble`.
"""


def build_model(name: str, **options: Any) -> nn.Module:
    """Instantiate architecture ``name`` with ``options``.

    List values (as read from JSON or YAML configs) become tuples. Unknown names and unknown
    options raise :class:`ConfigError` listing the valid ones.
    """
    try:
        factory = ARCHITECTURES[name]
    except KeyError:
        valid = ", ".join(sorted(ARCHITECTURES))
        raise ConfigError(f"unknown model {name!r}; choose one of: {valid}") from None
    accepted = inspect.signature(factory).parameters
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        raise ConfigError(
            f"model {name!r} has no option(s) {', '.join(unknown)}; "
            f"valid options: {', '.join(accepted)}"
        )
    options = {k: tuple(v) if isinstance(v, list) else v for k, v in options.items()}
    return factory(**options)


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
