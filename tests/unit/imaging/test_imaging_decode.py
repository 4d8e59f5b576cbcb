"""Decoding of fmnist.imaging.decode: formats, modes, transparency, and rejected inputs."""

from __future__ import annotations

import io
import pickle
import time
import tracemalloc

import numpy as np
import pytest
from PIL import Image

from fmnist.errors import FmnistError, InvalidImageError
from fmnist.imaging.decode import decode_image, header_info
from fmnist.imaging.preprocess import preprocess_bytes, preprocess_image
from synthetic_images import MAX, encode, garment, is_light_on_dark, png_header_only

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


# --- the PNG header read without Pillow ------------------------------------------------------


@pytest.mark.parametrize(
    ("mode", "options"),
    [
        ("L", {}),
        ("RGB", {}),
        ("LA", {}),
        ("RGBA", {}),
        ("P", {}),
        ("1", {}),  # bit depth 1, colour type 0: left to Pillow
        ("I;16", {}),  # 16-bit: left to Pillow
        ("L", {"optimize": True}),
    ],
)
def test_png_header_fast_path_agrees_with_pillow(mode: str, options: dict[str, object]) -> None:
    data = encode(Image.new(mode, (37, 19)), "PNG", **options)
    opened = Image.open(io.BytesIO(data))
    assert header_info(data) == (37, 19, opened.mode)


def test_png_exif_orientation_is_still_applied() -> None:
    stored = Image.new("L", (40, 20), 0)
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    data = encode(stored, "PNG", exif=exif)
    assert decode_image(data, max_pixels=10**6).size == (20, 40)
