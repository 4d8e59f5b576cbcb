"""The 28x28 model input helpers of fmnist.imaging.model_input: PNG encoding, JSON instances."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from fmnist.errors import InvalidImageError
from fmnist.imaging.model_input import pixels_from_instance, png_bytes
from synthetic_images import fashion_mnist_image

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
