"""Synthetic test images for the imaging tests (importable as ``synthetic_images``)."""

from __future__ import annotations

import gzip
import io
import struct
import zlib
from pathlib import Path

import numpy as np
import numpy.typing as npt
from PIL import Image, ImageDraw

from data_paths import PHOTOS_ROOT

WORKSPACE = Path(__file__).resolve().parents[1].parent
PHOTOS = PHOTOS_ROOT
FASHION_MNIST_DIRS = (
    Path("/usr/share/datasets/fashion-mnist"),
    WORKSPACE / "shared/data/fashion-mnist",
)
MAX = 40_000_000
"""The pixel limit the tests decode with (the serving default)."""


def encode(image: Image.Image, fmt: str, **options: object) -> bytes:
    """The image saved in ``fmt``."""
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def garment(
    size: tuple[int, int] = (240, 320),
    background: tuple[int, int, int] = (225, 215, 200),
    colour: tuple[int, int, int] = (40, 45, 60),
    seed: int = 0,
) -> Image.Image:
    """A T-shirt-shaped garment with some shading and sensor noise on a plain background."""
    w, h = size
    image = Image.new("RGB", size, background)
    draw = ImageDraw.Draw(image)
    body = [(0.3, 0.2), (0.7, 0.2), (0.9, 0.35), (0.8, 0.45), (0.7, 0.4), (0.7, 0.85)]
    body += [(0.3, 0.85), (0.3, 0.4), (0.2, 0.45), (0.1, 0.35)]
    draw.polygon([(x * w, y * h) for x, y in body], fill=colour)
    pixels = np.asarray(image, dtype=np.float64)
    rng = np.random.default_rng(seed)
    shade = np.linspace(-12, 12, w)[None, :, None]
    noisy = pixels + shade * (pixels.mean(axis=2, keepdims=True) != np.mean(background))
    noisy += rng.normal(0, 3, pixels.shape)
    return Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8))


def is_light_on_dark(pixels: npt.NDArray[np.uint8]) -> bool:
    """Dark corners and border, bright garment."""
    p = pixels.astype(np.float64)
    ring = np.concatenate([p[0], p[-1], p[:, 0], p[:, -1]])
    corners = [p[:2, :2], p[:2, -2:], p[-2:, :2], p[-2:, -2:]]
    garment_mean = p[p > 0].mean()
    return bool(
        max(c.mean() for c in corners) <= 10
        and ring.mean() < 0.3 * garment_mean
        and garment_mean > 100
    )


def png_header_only(width: int, height: int) -> bytes:
    """A tiny valid PNG whose header declares ``width`` x ``height`` grey pixels."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\x00" * 1024))
        + chunk(b"IEND", b"")
    )


def fashion_mnist_image() -> npt.NDArray[np.uint8]:
    """The first Fashion-MNIST test image, or a synthetic look-alike if the data is absent."""
    for folder in FASHION_MNIST_DIRS:
        path = folder / "t10k-images-idx3-ubyte.gz"
        if path.is_file():
            with gzip.open(path) as f:
                raw = f.read(16 + 784)
            return np.frombuffer(raw[16:], dtype=np.uint8).reshape(28, 28).copy()
    image = np.zeros((28, 28), dtype=np.uint8)
    image[2:26, 8:20] = np.linspace(80, 220, 12, dtype=np.uint8)[None, :]
    return image
