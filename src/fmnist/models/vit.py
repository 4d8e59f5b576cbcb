"""A small Vision Transformer for 28x28 grayscale images, written in plain PyTorch."""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F  # noqa: N812
from torch import Tensor, nn

from fmnist.errors import ConfigError

IMAGE_SIDE = 28


class DropPath(nn.Module):
    """Stochastic depth: in training, zero a sample's residual branch with probability ``p``.

    Kept branches are scaled by ``1 / (1 - p)``; in eval mode this is the identity.
    """

    def __init__(self, p: float = 0.0) -> None:
        """Drop each sample's branch with probability ``p`` in ``[0, 1)``."""
        super().__init__()
        if not 0.0 <= p < 1.0:
            raise ConfigError(f"drop path probability must be in [0, 1), got {p}")
        self.p = p

    def forward(self, x: Tensor) -> Tensor:
        """``x`` with whole samples zeroed (training) or unchanged (eval, or ``p == 0``)."""
        if not self.training or self.p == 0.0:
            return x
        keep = 1.0 - self.p
        mask = x.new_empty((x.shape[0],) + (1,) * (x.ndim - 1)).bernoulli_(keep)
        return x * mask / keep


class Attention(nn.Module):
    """Multi-head self-attention over ``(N, tokens, dim)`` with scaled dot-product attention."""

    def __init__(
        self, dim: int, heads: int, attn_dropout: float = 0.0, dropout: float = 0.0
    ) -> None:
        """``dim`` must be divisible by ``heads``."""
        super().__init__()
        if dim % heads:
            raise ConfigError(f"vit dim {dim} is not divisible by heads {heads}")
        self.heads = heads
        self.attn_dropout = attn_dropout
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.proj_drop = nn.Dropout(dropout)

    def forward(self, x: Tensor) -> Tensor:
        """Attend over the tokens of ``x`` ``(N, T, dim)``; returns the same shape."""
        n, t, d = x.shape
        qkv = self.qkv(x).reshape(n, t, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        q, k, v = qkv.unbind(0)
        out = F.scaled_dot_product_attention(
            q, k, v, dropout_p=self.attn_dropout if self.training else 0.0
        )
        out = out.transpose(1, 2).reshape(n, t, d)
        result: Tensor = self.proj_drop(self.proj(out))
        return result


class TransformerBlock(nn.Module):
    """A pre-norm transformer block: ``x + attn(LN(x))`` then ``x + MLP(LN(x))`` (GELU MLP)."""

    def __init__(
        self,
        dim: int,
        heads: int,
        mlp_ratio: float = 2.0,
        dropout: float = 0.0,
        attn_dropout: float = 0.0,
        drop_path: float = 0.0,
    ) -> None:
        """Build one block; ``drop_path`` is its stochastic-depth probability."""
        super().__init__()
        hidden = int(dim * mlp_ratio)
        self.norm1 = nn.LayerNorm(dim)
        self.attn = Attention(dim, heads, attn_dropout, dropout)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(
            nn.Linear(dim, hidden),
            nn.GELU(),
            nn.Dropout(dropout),
            nn.Linear(hidden, dim),
            nn.Dropout(dropout),
        )
        self.drop_path = DropPath(drop_path)

    def forward(self, x: Tensor) -> Tensor:
        """Transform tokens ``(N, T, dim)``; returns the same shape."""
        x = x + self.drop_path(self.attn(self.norm1(x)))
        out: Tensor = x + self.drop_path(self.mlp(self.norm2(x)))
        return out


def conv_stem(dim: int, patch_size: int) -> nn.Sequential:
    """A convolutional patch embedding: 3x3 convolutions, each halving the side, then a 1x1.

    The "early convolutions" stem of Xiao et al. (2021), in place of one strided
    ``patch_size`` x ``patch_size`` convolution: same token grid, much better optimisation
    (ViTs with it train faster and less sensitively to the learning rate). ``patch_size`` must
    be a power of two: one stride-2 convolution per halving.
    """
    halvings = patch_size.bit_length() - 1
    if patch_size < 2 or patch_size != 1 << halvings:
        raise ConfigError(f"a conv stem needs a power-of-two patch_size, got {patch_size}")
    layers: list[nn.Module] = []
    channels = 1
    for i in range(halvings):
        out = max(dim >> (halvings - i), 16)
        layers += [
            nn.Conv2d(channels, out, 3, stride=2, padding=1, bias=False),
            nn.BatchNorm2d(out),
            nn.GELU(),
        ]
        channels = out
    layers.append(nn.Conv2d(channels, dim, 1))
    return nn.Sequential(*layers)


class VisionTransformer(nn.Module):
    """A ViT: a patch embedding, learned positions, pre-norm transformer blocks, linear head.

    ``patch_size`` must divide 28 (4 gives 7x7 = 49 tokens, 7 gives 16). ``stem="patch"`` embeds
    non-overlapping patches with one strided convolution (the original ViT); ``stem="conv"``
    uses :func:`conv_stem` (power-of-two ``patch_size``). ``pool="cls"``
    classifies a prepended class token, ``"mean"`` the average of the patch tokens. Stochastic
    depth rises linearly from 0 in the first block to ``drop_path`` in the last; ``dropout``
    applies after the embedding, inside the MLPs and before the head.
    """

    def __init__(
        self,
        patch_size: int = 4,
        dim: int = 128,
        depth: int = 6,
        heads: int = 4,
        mlp_ratio: float = 2.0,
        pool: Literal["cls", "mean"] = "cls",
        stem: Literal["patch", "conv"] = "patch",
        dropout: float = 0.1,
        attn_dropout: float = 0.0,
        drop_path: float = 0.1,
        num_classes: int = 10,
    ) -> None:
        """Build the network; see the class docstring for the options."""
        super().__init__()
        if patch_size < 1 or IMAGE_SIDE % patch_size:
            raise ConfigError(f"vit patch_size must divide {IMAGE_SIDE}, got {patch_size}")
        if pool not in ("cls", "mean"):
            raise ConfigError(f"vit pool must be 'cls' or 'mean', got {pool!r}")
        if stem not in ("patch", "conv"):
            raise ConfigError(f"vit stem must be 'patch' or 'conv', got {stem!r}")
        if depth < 1 or dim < 1 or heads < 1:
            raise ConfigError("vit depth, dim and heads must be positive")
        self.pool = pool
        tokens = (IMAGE_SIDE // patch_size) ** 2
        self.patch_embed: nn.Module = (
            conv_stem(dim, patch_size)
            if stem == "conv"
            else nn.Conv2d(1, dim, patch_size, stride=patch_size)
        )
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim)) if pool == "cls" else None
        self.pos_embed = nn.Parameter(torch.zeros(1, tokens + (pool == "cls"), dim))
        self.embed_drop = nn.Dropout(dropout)
        rates = [drop_path * i / max(depth - 1, 1) for i in range(depth)]
        self.blocks = nn.Sequential(
            *(
                TransformerBlock(dim, heads, mlp_ratio, dropout, attn_dropout, rate)
                for rate in rates
            )
        )
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(dim, num_classes))
        self._init_weights()

    def no_weight_decay(self) -> set[str]:
        """Parameters the optimiser must not decay: the position embedding and class token."""
        return {"pos_embed", "cls_token"}

    def _init_weights(self) -> None:
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        if self.cls_token is not None:
            nn.init.trunc_normal_(self.cls_token, std=0.02)
        for module in self.modules():
            if isinstance(module, nn.Linear):
                nn.init.trunc_normal_(module.weight, std=0.02)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)

    def forward(self, x: Tensor) -> Tensor:
        """Logits for a batch ``(N, 1, 28, 28)`` of normalised images."""
        tokens = self.patch_embed(x).flatten(2).transpose(1, 2)  # (N, T, dim)
        if self.cls_token is not None:
            tokens = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), tokens], dim=1)
        tokens = self.embed_drop(tokens + self.pos_embed)
        tokens = self.norm(self.blocks(tokens))
        pooled = tokens[:, 0] if self.pool == "cls" else tokens.mean(dim=1)
        out: Tensor = self.head(pooled)
        return out
