"""The 28x28 model input outside photos: JSON pixel instances in, PNG ("what the model saw") out.

A JSON instance is 28 rows of 28 numbers or 784 numbers, each in 0-255; anything else is refused
with an :class:`~fmnist.errors.InvalidImageError` (kind ``invalid_instance``) that names the
instance and the offending place.
"""

from __future__ import annotations

import io
import math

import numpy as np
import numpy.typing as npt
from PIL import Image

from fmnist import IMAGE_SIZE
from fmnist.errors import InvalidImageError

UInt8Array = npt.NDArray[np.uint8]


def png_bytes(pixels: npt.ArrayLike) -> bytes:
    """Encode a 2-D uint8 image (the 28x28 model input) as PNG, for "show what the model saw"."""
    a = np.asarray(pixels)
    if a.ndim != 2 or a.dtype != np.uint8:
        raise ValueError(f"expected a 2-D uint8 image, got shape {a.shape} and dtype {a.dtype}")
    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(a)).save(buffer, format="PNG")
    return buffer.getvalue()


def _check_value(value: object, where: str, prefix: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
        shown = repr(value) if len(repr(value)) <= 30 else f"a {type(value).__name__}"
        raise InvalidImageError(
            "invalid_instance", f"{prefix}{where}: expected a number in 0-255, got {shown}"
        )
    number = float(value)
    if math.isnan(number):
        raise InvalidImageError("invalid_instance", f"{prefix}{where}: expected a number, got NaN")
    if not 0.0 <= number <= 255.0:
        raise InvalidImageError(
            "invalid_instance", f"{prefix}{where}: {value!r} is outside the pixel range 0-255"
        )
    return number


def _instance_values(instance: object, prefix: str) -> list[float]:
    """The 784 values of a flat or nested instance, with a precise error for anything else."""
    expected = f"expected {IMAGE_SIZE * IMAGE_SIZE} values or {IMAGE_SIZE} rows of {IMAGE_SIZE}"
    if isinstance(instance, np.ndarray):
        instance = instance.tolist()
    if not isinstance(instance, list | tuple):
        raise InvalidImageError(
            "invalid_instance", f"{prefix}{expected}, got a {type(instance).__name__}"
        )
    if instance and all(isinstance(row, list | tuple) for row in instance):
        if len(instance) != IMAGE_SIZE:
            raise InvalidImageError(
                "invalid_instance", f"{prefix}{expected}, got {len(instance)} rows"
            )
        values: list[float] = []
        for r, row in enumerate(instance):
            if len(row) != IMAGE_SIZE:
                raise InvalidImageError(
                    "invalid_instance",
                    f"{prefix}{expected}, got {len(row)} values in row {r}",
                )
            values.extend(
                _check_value(v, f"row {r}, column {c}", prefix) for c, v in enumerate(row)
            )
        return values
    if any(isinstance(row, list | tuple) for row in instance):
        raise InvalidImageError(
            "invalid_instance", f"{prefix}{expected}, got a mix of rows and single values"
        )
    if len(instance) != IMAGE_SIZE * IMAGE_SIZE:
        raise InvalidImageError(
            "invalid_instance", f"{prefix}{expected}, got {len(instance)} values"
        )
    return [_check_value(v, f"value {i}", prefix) for i, v in enumerate(instance)]


def _has_bool(instance: object) -> bool:
    """Whether a list (of lists) holds booleans, which numpy would silently turn into 0/1."""
    if not isinstance(instance, list | tuple):
        return False
    for item in instance:
        if isinstance(item, list | tuple):
            if any(isinstance(v, bool | np.bool_) for v in item):
                return True
        elif isinstance(item, bool | np.bool_):
            return True
    return False


def pixels_from_instance(instance: object, *, index: int | None = None) -> UInt8Array:
    """Validate a JSON instance (28 rows of 28, or 784 numbers, in 0-255) into uint8 28x28.

    Floats are rounded to the nearest integer. Raises :class:`InvalidImageError` (kind
    ``invalid_instance``) naming the instance ``index`` (when given) and the offending place.
    """
    prefix = f"instance {index}: " if index is not None else "instance: "
    a = None
    try:
        a = np.asarray(instance)
    except (ValueError, TypeError):
        a = None
    if (
        a is not None
        and a.shape in ((IMAGE_SIZE * IMAGE_SIZE,), (IMAGE_SIZE, IMAGE_SIZE))
        and a.dtype.kind in "iuf"
        and bool(np.isfinite(a).all())
        and float(a.min()) >= 0.0
        and float(a.max()) <= 255.0
        and not _has_bool(instance)
    ):
        values: npt.NDArray[np.generic] = a
    else:  # the slow path finds and names the problem
        values = np.asarray(_instance_values(instance, prefix), dtype=np.float64)
    pixels: UInt8Array = np.rint(values).astype(np.uint8).reshape(IMAGE_SIZE, IMAGE_SIZE)
    return pixels
