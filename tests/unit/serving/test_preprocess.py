"""Decoding, preprocessing and instance validation of fmnist.serving.preprocess."""

from __future__ import annotations

import gzip
import io
import math
import pickle
import struct
import time
import tracemalloc
import zlib
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
from PIL import Image, ImageDraw
from scipy import ndimage

from fmnist.errors import FmnistError, InvalidImageError
from fmnist.serving.preprocess import (
    PreprocessResult,
    decode_image,
    pixels_from_instance,
    png_bytes,
    preprocess_bytes,
    preprocess_image,
)

WORKSPACE = Path(__file__).resolve().parents[3].parent
PHOTOS = WORKSPACE / "shared/data/clothing-photos"
FASHION_MNIST_DIRS = (
    Path("/usr/share/datasets/fashion-mnist"),
    WORKSPACE / "shared/data/fashion-mnist",
)
MAX = 40_000_000


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


def centre_offset(pixels: npt.NDArray[np.uint8]) -> float:
    """Distance of the intensity centroid from the frame centre, in pixels."""
    cy, cx = ndimage.center_of_mass(pixels.astype(np.float64))
    return math.hypot(cy - 13.5, cx - 13.5)


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


# --- real photos ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def photo_results() -> list[tuple[Path, PreprocessResult]]:
    """The first two validation photos of every class, preprocessed."""
    root = PHOTOS / "validation"
    if not root.is_dir():
        pytest.skip(f"clothing photos not found at {root} (see ../shared/README.md)")
    files = [f for d in sorted(root.iterdir()) for f in sorted(d.glob("*.jpg"))[:2]]
    return [(f, preprocess_bytes(f.read_bytes())) for f in files]


def test_photos_become_centred_light_garments_on_black(
    photo_results: list[tuple[Path, PreprocessResult]],
) -> None:
    assert len(photo_results) == 20
    offsets, light = [], []
    for path, result in photo_results:
        assert result.pixels.dtype == np.uint8 and result.pixels.shape == (28, 28), path
        assert result.mode == "photo"
        assert result.foreground_fraction > 0, f"no garment found in {path}"
        assert result.bbox is not None
        offsets.append(centre_offset(result.pixels))
        light.append(is_light_on_dark(result.pixels))
        # The garment's bounding box is centred (as in Fashion-MNIST) and touches two sides.
        rows = np.flatnonzero(result.pixels.any(axis=1))
        cols = np.flatnonzero(result.pixels.any(axis=0))
        assert abs((rows[0] + rows[-1]) / 2 - 13.5) <= 1.0, path
        assert abs((cols[0] + cols[-1]) / 2 - 13.5) <= 1.0, path
        assert max(rows[-1] - rows[0], cols[-1] - cols[0]) >= 26, path
    assert np.median(offsets) <= 1.5
    assert np.mean(np.array(offsets) <= 2.5) >= 0.85, offsets
    assert np.mean(light) >= 0.9, light


def test_photo_bbox_lies_in_the_source_image(
    photo_results: list[tuple[Path, PreprocessResult]],
) -> None:
    for path, result in photo_results:
        with Image.open(path) as image:
            width, height = image.size
        assert result.bbox is not None
        left, top, right, bottom = result.bbox
        assert 0 <= left < right <= width and 0 <= top < bottom <= height, (path, result.bbox)


def test_mass_centering_puts_the_centroid_in_the_middle(
    photo_results: list[tuple[Path, PreprocessResult]],
) -> None:
    path = photo_results[0][0]
    result = preprocess_bytes(path.read_bytes(), centering="mass")
    assert centre_offset(result.pixels) <= 1.5


# --- synthetic images -----------------------------------------------------------------------


def test_dark_garment_on_light_background_is_inverted() -> None:
    result = preprocess_image(garment())
    assert result.inverted
    assert result.background_level > 180
    assert is_light_on_dark(result.pixels)
    assert 0.2 < result.foreground_fraction < 0.6


def test_light_garment_on_dark_background_is_not_inverted() -> None:
    result = preprocess_image(garment(background=(30, 28, 35), colour=(230, 225, 210)))
    assert not result.inverted
    assert result.background_level < 60
    assert is_light_on_dark(result.pixels)


def test_garment_of_background_brightness_is_found_by_colour() -> None:
    # Same luminance (about 128), different hue: only the colour tells them apart.
    result = preprocess_image(garment(background=(150, 120, 130), colour=(60, 140, 190)))
    assert 0.2 < result.foreground_fraction < 0.6
    assert is_light_on_dark(result.pixels)


def test_bbox_maps_back_to_the_source() -> None:
    result = preprocess_image(garment(size=(600, 800)))
    assert result.bbox is not None
    left, top, right, bottom = result.bbox
    # The polygon spans x 0.1-0.9 and y 0.2-0.85 of 600x800.
    assert abs(left - 60) <= 6 and abs(right - 540) <= 6
    assert abs(top - 160) <= 6 and abs(bottom - 680) <= 6


def test_grey_image_works_like_colour() -> None:
    result = preprocess_image(garment().convert("L"))
    assert result.inverted and is_light_on_dark(result.pixels)


def test_uniform_image_gives_a_blank_result() -> None:
    for image in (Image.new("RGB", (300, 200), (120, 130, 140)), Image.new("L", (1, 1), 7)):
        result = preprocess_image(image)
        assert result.pixels.shape == (28, 28) and not result.pixels.any()
        assert result.foreground_fraction == 0.0 and result.bbox is None


def test_exif_orientation_is_applied() -> None:
    # Stored landscape 300x150 with the object on the left; orientation 6 means "rotate 90
    # degrees clockwise to display", so it is shown 150x300 with the object at the top.
    stored = Image.new("RGB", (300, 150), (220, 220, 215))
    ImageDraw.Draw(stored).rectangle((30, 40, 129, 109), fill=(30, 30, 40))
    exif = Image.Exif()
    exif[0x0112] = 6
    data = encode(stored, "JPEG", exif=exif, quality=95)

    assert decode_image(data, max_pixels=MAX).size == (150, 300)
    result = preprocess_bytes(data)
    assert result.bbox is not None
    left, top, right, bottom = result.bbox
    assert bottom <= 150 and abs(top - 30) <= 4 and abs(bottom - 130) <= 4
    assert abs(left - 40) <= 4 and abs(right - 110) <= 4
    rows = np.flatnonzero(result.pixels.any(axis=1))
    cols = np.flatnonzero(result.pixels.any(axis=0))
    assert rows[-1] - rows[0] > cols[-1] - cols[0]  # taller than wide once oriented


# --- Fashion-MNIST pass-through ---------------------------------------------------------------


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


def test_fashion_mnist_image_passes_through_unchanged() -> None:
    pixels = fashion_mnist_image()
    for result in (
        preprocess_image(Image.fromarray(pixels)),
        preprocess_bytes(encode(Image.fromarray(pixels), "PNG")),
        preprocess_bytes(encode(Image.fromarray(pixels).convert("RGB"), "PNG")),
    ):
        assert result.mode == "fashion_mnist" and not result.inverted
        np.testing.assert_array_equal(result.pixels, pixels)
        assert result.foreground_fraction > 0.2 and result.bbox is not None


def test_inverted_28x28_image_is_treated_as_a_photo() -> None:
    pixels = 255 - fashion_mnist_image()
    result = preprocess_image(Image.fromarray(pixels))
    assert result.mode == "photo" and result.inverted
    assert result.pixels[0, 0] == 0


# --- formats ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fmt", "mode"),
    [
        ("PNG", "RGB"),
        ("JPEG", "RGB"),
        ("JPEG", "CMYK"),
        ("WEBP", "RGB"),
        ("GIF", "P"),
        ("BMP", "RGB"),
        ("TIFF", "RGB"),
        ("PNG", "I;16"),
        ("PNG", "LA"),
        ("PNG", "1"),
    ],
)
def test_common_formats_and_modes_decode(fmt: str, mode: str) -> None:
    source = garment()
    if mode == "I;16":
        wide = np.asarray(source.convert("L")).astype(np.uint16) * 257
        image = Image.fromarray(wide)
        assert image.mode == "I;16"
    else:
        image = source.convert(mode)
    data = encode(image, fmt)
    decoded = decode_image(data, max_pixels=MAX)
    assert decoded.mode == "L" and decoded.size == source.size
    grey = np.asarray(decoded)
    assert grey.min() < 80 and grey.max() > 170  # 16-bit values scaled, not clipped
    result = preprocess_bytes(data)
    assert result.inverted and 0.2 < result.foreground_fraction < 0.6
    assert is_light_on_dark(result.pixels)


@pytest.mark.parametrize(("mode", "scale"), [("F", 1 / 255), ("F", 1.0), ("I", 257.0)])
def test_wide_grey_images_are_scaled(mode: str, scale: float) -> None:
    grey = np.asarray(garment().convert("L")).astype(np.float64) * scale
    image = Image.fromarray(grey.astype(np.float32 if mode == "F" else np.int32))
    assert image.mode == mode
    result = preprocess_image(image)
    assert result.inverted and 0.2 < result.foreground_fraction < 0.6
    assert result.background_level > 180


def test_decode_can_keep_colour() -> None:
    data = encode(garment(), "PNG")
    assert decode_image(data, max_pixels=MAX, color=True).mode == "RGB"
    assert (
        decode_image(encode(garment().convert("L"), "PNG"), max_pixels=MAX, color=True).mode == "L"
    )


@pytest.mark.parametrize(("colour", "inverted"), [((240, 240, 235), False), ((20, 20, 30), True)])
def test_transparent_background_is_composited_on_a_contrasting_colour(
    colour: tuple[int, int, int], inverted: bool
) -> None:
    rgba = np.zeros((200, 160, 4), dtype=np.uint8)
    rgba[30:170, 40:120] = (*colour, 255)
    data = encode(Image.fromarray(rgba), "PNG")
    assert decode_image(data, max_pixels=MAX).mode == "L"
    result = preprocess_bytes(data)
    assert result.inverted is inverted
    assert result.bbox is not None
    left, top, right, bottom = result.bbox
    assert abs(left - 40) <= 2 and abs(right - 120) <= 2
    assert abs(top - 30) <= 2 and abs(bottom - 170) <= 2
    assert is_light_on_dark(result.pixels)


def test_gif_uses_the_first_frame() -> None:
    first = garment().convert("P")
    blank = Image.new("RGB", first.size, (225, 215, 200)).convert("P")
    data = encode(first, "GIF", save_all=True, append_images=[blank], duration=100)
    assert preprocess_bytes(data).foreground_fraction > 0.2


# --- rejected inputs -------------------------------------------------------------------------


def test_decompression_bomb_is_rejected_from_the_header() -> None:
    data = png_header_only(30_000, 30_000)
    assert len(data) < 200
    tracemalloc.start()
    start = time.perf_counter()
    with pytest.raises(InvalidImageError) as caught:
        preprocess_bytes(data)
    elapsed = time.perf_counter() - start
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert caught.value.kind == "too_large"
    assert "30000x30000 = 900,000,000 pixels" in str(caught.value)
    assert elapsed < 0.5 and peak < 5_000_000


def test_pixel_limit_message_is_precise() -> None:
    with pytest.raises(InvalidImageError) as caught:
        decode_image(png_header_only(10_000, 10_000), max_pixels=MAX)
    assert caught.value.kind == "too_large"
    assert str(caught.value) == (
        "image is 10000x10000 = 100,000,000 pixels, above the limit of 40,000,000"
    )
    with pytest.raises(InvalidImageError, match="above the limit of 784"):
        decode_image(encode(garment(), "PNG"), max_pixels=784)
    # A limit above Pillow's own: Pillow's refusal is reported with its limit.
    with pytest.raises(InvalidImageError, match="above Pillow's decompression-bomb limit of"):
        decode_image(png_header_only(30_000, 30_000), max_pixels=10**10)


def test_corrupt_image_data() -> None:
    png = encode(garment(), "PNG")
    jpeg = encode(garment(), "JPEG")
    for data in (png[:300], jpeg[:400], b"\xff\xd8\xff\xe0" + bytes(range(256)) * 4):
        with pytest.raises(InvalidImageError) as caught:
            preprocess_bytes(data)
        assert caught.value.kind == "corrupt"
        assert ("JPEG" in str(caught.value)) or ("PNG" in str(caught.value))


@pytest.mark.parametrize(
    ("data", "looks_like"),
    [
        (b"name,label\nshirt,6\n", "text"),
        (b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n", "PDF"),
        (b'<svg xmlns="http://www.w3.org/2000/svg"></svg>', "SVG"),
        (b"\x00\x01\x02\x03\x04\x05garbage\xfe", "binary data"),
    ],
)
def test_non_images_are_unsupported(data: bytes, looks_like: str) -> None:
    with pytest.raises(InvalidImageError) as caught:
        decode_image(data, max_pixels=MAX)
    assert caught.value.kind == "unsupported"
    assert looks_like in str(caught.value) and "accepted formats are JPEG" in str(caught.value)


def test_empty_data() -> None:
    with pytest.raises(InvalidImageError) as caught:
        preprocess_bytes(b"")
    assert caught.value.kind == "empty" and "0 bytes" in str(caught.value)


def test_invalid_image_error_is_a_pickleable_fmnist_error() -> None:
    error = InvalidImageError("too_large", "image is too large")
    assert isinstance(error, FmnistError) and error.exit_code == 2
    copy = pickle.loads(pickle.dumps(error))
    assert copy.kind == "too_large" and str(copy) == "image is too large"


# --- model input helpers ---------------------------------------------------------------------


def test_png_bytes_round_trip() -> None:
    pixels = fashion_mnist_image()
    data = png_bytes(pixels)
    assert data.startswith(b"\x89PNG")
    with Image.open(io.BytesIO(data)) as image:
        assert image.mode == "L"
        np.testing.assert_array_equal(np.asarray(image), pixels)
    with pytest.raises(ValueError, match="uint8"):
        png_bytes(pixels.astype(np.float32))


def test_instances_in_both_layouts() -> None:
    pixels = fashion_mnist_image()
    nested = pixels.tolist()
    flat = pixels.ravel().tolist()
    np.testing.assert_array_equal(pixels_from_instance(nested), pixels)
    np.testing.assert_array_equal(pixels_from_instance(flat), pixels)
    floats = [[v + 0.4 if v < 255 else 255.0 for v in row] for row in nested]
    result = pixels_from_instance(floats)
    assert result.dtype == np.uint8 and result.shape == (28, 28)
    np.testing.assert_array_equal(result, pixels)


def good_rows() -> list[list[object]]:
    return [[0] * 28 for _ in range(28)]


def bad_value(value: object) -> list[list[object]]:
    rows = good_rows()
    rows[2][5] = value
    return rows


@pytest.mark.parametrize(
    ("instance", "message"),
    [
        ([[0] * 28] * 27, "instance 3: expected 784 values or 28 rows of 28, got 27 rows"),
        ([0] * 783, "instance 3: expected 784 values or 28 rows of 28, got 783 values"),
        (
            [[0] * 28] * 27 + [[0] * 27],
            "instance 3: expected 784 values or 28 rows of 28, got 27 values in row 27",
        ),
        ("abc", "instance 3: expected 784 values or 28 rows of 28, got a str"),
        ({"pixels": []}, "instance 3: expected 784 values or 28 rows of 28, got a dict"),
        ([[0] * 28] + [0] * 27, "got a mix of rows and single values"),
        (bad_value(float("nan")), "instance 3: row 2, column 5: expected a number, got NaN"),
        (bad_value(256), "instance 3: row 2, column 5: 256 is outside the pixel range 0-255"),
        (bad_value(-0.5), "row 2, column 5: -0.5 is outside the pixel range 0-255"),
        (bad_value(float("inf")), "row 2, column 5: inf is outside the pixel range 0-255"),
        (bad_value("7"), "row 2, column 5: expected a number in 0-255, got '7'"),
        (bad_value(True), "row 2, column 5: expected a number in 0-255, got True"),
        (bad_value(None), "row 2, column 5: expected a number in 0-255, got None"),
        ([0] * 100 + ["x"] + [0] * 683, "instance 3: value 100: expected a number"),
    ],
)
def test_invalid_instances_are_named_precisely(instance: object, message: str) -> None:
    with pytest.raises(InvalidImageError) as caught:
        pixels_from_instance(instance, index=3)
    assert caught.value.kind == "invalid_instance"
    assert message in str(caught.value)


def test_instance_message_without_index() -> None:
    with pytest.raises(InvalidImageError, match=r"^instance: expected 784 values"):
        pixels_from_instance([])
