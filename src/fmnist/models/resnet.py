"""A small pre-activation residual network for 28x28 grayscale images."""

from __future__ import annotations

from torch import Tensor, nn

from fmnist.errors import ConfigError


class PreActBlock(nn.Module):
    """A pre-activation basic block: ``BN-ReLU-conv3x3-BN-ReLU-conv3x3`` plus a shortcut.

    The shortcut is the identity when shape is kept, otherwise a strided 1x1 convolution of the
    pre-activated input (He et al., 2016, "Identity Mappings in Deep Residual Networks").
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1) -> None:
        """Build a block mapping ``in_channels`` to ``out_channels`` with ``stride`` (1 or 2)."""
        super().__init__()
        self.bn1 = nn.BatchNorm2d(in_channels)
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False)
        self.relu = nn.ReLU(inplace=True)
        self.shortcut: nn.Module | None = None
        if stride != 1 or in_channels != out_channels:
            self.shortcut = nn.Conv2d(in_channels, out_channels, 1, stride, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        """The block's output, same batch, ``out_channels`` and side divided by ``stride``."""
        pre = self.relu(self.bn1(x))
        skip = x if self.shortcut is None else self.shortcut(pre)
        out: Tensor = self.conv1(pre)
        out = self.conv2(self.relu(self.bn2(out)))
        return out + skip


class PreActResNet(nn.Module):
    """A pre-activation ResNet: a 3x3 stem, stages of :class:`PreActBlock`, a pooled head.

    Stage ``i`` has ``widths[i]`` channels and ``blocks_per_stage`` blocks (an int for all
    stages or one count per stage); every stage after the first halves the side with a
    stride-2 first block, so three stages take 28 -> 14 -> 7 pixels. The head is BN-ReLU,
    global average pooling, dropout and a linear classifier. Keep widths multiples of 32:
    bf16 convolutions on CPU are far slower for other widths.
    """

    def __init__(
        self,
        widths: tuple[int, ...] = (32, 64, 128),
        blocks_per_stage: int | tuple[int, ...] = 2,
        dropout: float = 0.1,
        num_classes: int = 10,
    ) -> None:
        """Build the network; see the class docstring for the options."""
        super().__init__()
        if not widths or any(w < 1 for w in widths):
            raise ConfigError(f"resnet widths must be positive channel counts, got {widths!r}")
        blocks = (
            (blocks_per_stage,) * len(widths)
            if isinstance(blocks_per_stage, int)
            else tuple(blocks_per_stage)
        )
        if len(blocks) != len(widths) or any(b < 1 for b in blocks):
            raise ConfigError(
                f"resnet blocks_per_stage must be a positive int or one per stage "
                f"({len(widths)}), got {blocks_per_stage!r}"
            )
        self.stem = nn.Conv2d(1, widths[0], 3, padding=1, bias=False)
        layers: list[nn.Module] = []
        channels = widths[0]
        for stage, (width, count) in enumerate(zip(widths, blocks, strict=True)):
            for index in range(count):
                stride = 2 if stage > 0 and index == 0 else 1
                layers.append(PreActBlock(channels, width, stride))
                channels = width
        self.stages = nn.Sequential(*layers)
        self.head = nn.Sequential(
            nn.BatchNorm2d(channels),
            nn.ReLU(inplace=True),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
            nn.Dropout(dropout),
            nn.Linear(channels, num_classes),
        )
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x: Tensor) -> Tensor:
        """Logits for a batch ``(N, 1, 28, 28)`` of normalised images."""
        out: Tensor = self.head(self.stages(self.stem(x)))
        return out
