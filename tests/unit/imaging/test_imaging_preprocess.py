"""The photo preprocessing of fmnist.imaging.preprocess: real photos, synthetic garments and the
Fashion-MNIST pass-through."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
from PIL import Image, ImageDraw
from scipy import ndimage

from data_paths import require_dir
from fmnist.imaging.decode import decode_image
from fmnist.imaging.preprocess import PreprocessResult, preprocess_bytes, preprocess_image
from synthetic_images import (
    MAX,
    PHOTOS,
    encode,
    fashion_mnist_image,
    garment,
    is_light_on_dark,
)


def centre_offset(pixels: npt.NDArray[np.uint8]) -> float:
    """Distance of the intensity centroid from the frame centre, in pixels (scipy as oracle)."""
    cy, cx = ndimage.center_of_mass(pixels.astype(np.float64))
    return math.hypot(cy - 13.5, cx - 13.5)


# --- real photos ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def photo_results() -> list[tuple[Path, PreprocessResult]]:
    """The first two validation photos of every class, preprocessed."""
    root = require_dir(PHOTOS / "validation")
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
