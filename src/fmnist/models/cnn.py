"""Convolutional classifiers for 28x28 grayscale images."""

from __future__ import annotations

from typing import Literal

from torch import Tensor, nn


def conv_bn_relu(in_channels: int, out_channels: int) -> nn.Sequential:
    """A 3x3 convolution (same padding, no bias) followed by batch norm and ReLU."""
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
    )


class FashionCNN(nn.Module):
    """VGG-style CNN: stages of ``convs_per_stage`` conv-BN-ReLU layers, each ending in a 2x2
    max-pool, then dropout and a linear classifier over the flattened final map (``flatten``,
    the default: it keeps where features are, worth about half a point here) or over globally
    averaged channels (``gap``).

    ``widths`` sets the channels per stage; three stages take 28 -> 14 -> 7 -> 3 pixels.
    """

    def __init__(
        self,
        widths: tuple[int, ...] = (32, 64, 128),
        convs_per_stage: int = 2,
        dropout: float = 0.2,
        num_classes: int = 10,
        head: Literal["gap", "flatten"] = "flatten",
    ) -> None:
        """Build the network; ``head`` pools globally (``gap``) or keeps the final map."""
        super().__init__()
        layers: list[nn.Module] = []
        channels = 1
        for width in widths:
            for _ in range(convs_per_stage):
                layers.append(conv_bn_relu(channels, width))
                channels = width
            layers.append(nn.MaxPool2d(2))
        self.features = nn.Sequential(*layers)
        side = 28 >> len(widths)
        pool: list[nn.Module] = [nn.AdaptiveAvgPool2d(1)] if head == "gap" else []
        features = channels if head == "gap" else channels * side * side
        self.head = nn.Sequential(
            *pool,
            nn.Flatten(),
            nn.Dropout(dropout),
            nn.Linear(features, num_classes),
        )

    def forward(self, x: Tensor) -> Tensor:
        """Logits for a batch ``(N, 1, 28, 28)`` of normalised images."""
        out: Tensor = self.head(self.features(x))
        return out


class MLP(nn.Module):
    """A two-hidden-layer perceptron: the reference floor of the model zoo."""

    def __init__(self, hidden: int = 512, dropout: float = 0.2, num_classes: int = 10) -> None:
        """Build the network."""
        super().__init__()
        self.net = nn.Sequential(
            nn.Flatten(),
            nn.Linear(28 * 28, hidden),
            nn.ReLU(inplace=True),
            nn.Dropout(dropout),
            nn.Linear(hidden, hidden // 2),
            nn.ReLU(inplace=True),
            nn.Dropout(dropout),
            nn.Linear(hidden // 2, num_classes),
        )

    def forward(self, x: Tensor) -> Tensor:
        """Logits for a batch ``(N, 1, 28, 28)`` of normalised images."""
        out: Tensor = self.net(x)
        return out
