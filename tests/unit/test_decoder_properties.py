"""Property tests: whatever bytes or JSON arrive, every decoder answers with its own clean
error (a 4xx in the API, a named error in the CLI), never an unexpected exception.

Inputs are arbitrary bytes and, more usefully, valid PNG/JPEG/WebP/IDX/NPY files with bytes
overwritten or cut off (where parsers crash). Derandomized, so CI always runs the same cases.
"""

from __future__ import annotations

import io
import struct
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from fmnist.batch.errors import BatchInputError
from fmnist.batch.readers import open_input
from fmnist.data.idx import parse_idx
from fmnist.errors import DataFormatError, InvalidImageError
from fmnist.imaging.decode import decode_image
from fmnist.imaging.model_input import pixels_from_instance
from fmnist.imaging.preprocess import preprocess_bytes

SETTINGS = settings(
    max_examples=150,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


def _encoded(fmt: str) -> bytes:
    rng = np.random.default_rng(0)
    image = Image.fromarray(rng.integers(0, 256, (40, 30, 3), dtype=np.uint8))
    buffer = io.BytesIO()
    image.save(buffer, format=fmt)
    return buffer.getvalue()


VALID = {fmt: _encoded(fmt) for fmt in ("PNG", "JPEG", "WEBP", "GIF", "BMP", "TIFF")}


@st.composite
def damaged(draw: st.DrawFn, originals: dict[str, bytes]) -> bytes:
    """A valid file with a few bytes overwritten, then maybe cut short."""
    data = bytearray(originals[draw(st.sampled_from(sorted(originals)))])
    for _ in range(draw(st.integers(0, 8))):
        position = draw(st.integers(0, len(data) - 1))
        data[position] = draw(st.integers(0, 255))
    cut = draw(st.integers(1, len(data)))
    return bytes(data[:cut])


IMAGE_BYTES = st.one_of(st.binary(max_size=512), damaged(VALID))


@SETTINGS
@given(IMAGE_BYTES)
def test_image_decoding_fails_only_with_invalid_image_errors(data: bytes) -> None:
    try:
        image = decode_image(data, max_pixels=4_000_000)
    except InvalidImageError as exc:
        assert exc.kind and str(exc)
    else:
        assert image.size[0] > 0 and image.size[1] > 0


@SETTINGS
@given(IMAGE_BYTES)
def test_photo_preprocessing_fails_only_with_invalid_image_errors(data: bytes) -> None:
    try:
        result = preprocess_bytes(data, max_pixels=4_000_000, segmentation="colour")
    except InvalidImageError:
        return
    assert result.pixels.shape == (28, 28) and result.pixels.dtype == np.uint8


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=30) | st.dictionaries(st.text(max_size=4), inner),
    max_leaves=900,
)


@SETTINGS
@given(
    st.one_of(
        JSON, st.lists(st.lists(st.floats(), min_size=28, max_size=28), min_size=28, max_size=28)
    )
)
def test_json_instances_fail_only_with_invalid_image_errors(instance: object) -> None:
    try:
        pixels = pixels_from_instance(instance, index=0)
    except InvalidImageError as exc:
        assert exc.kind == "invalid_instance"
    else:
        assert pixels.shape == (28, 28) and pixels.dtype == np.uint8


def _idx(shape: tuple[int, ...]) -> bytes:
    header = bytes([0, 0, 0x08, len(shape)]) + b"".join(struct.pack(">I", n) for n in shape)
    return header + bytes(int(np.prod(shape)))


VALID_IDX = {"images": _idx((3, 28, 28)), "labels": _idx((3,))}


@SETTINGS
@given(st.one_of(st.binary(max_size=256), damaged(VALID_IDX)))
def test_idx_parsing_fails_only_with_data_format_errors(data: bytes) -> None:
    try:
        array = parse_idx(data)
    except DataFormatError as exc:
        assert "<bytes>" in str(exc)
    else:
        assert array.size >= 0


def _npy() -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, np.zeros((2, 28, 28), dtype=np.uint8))
    return buffer.getvalue()


def _npz() -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, images=np.zeros((2, 28, 28), dtype=np.uint8))
    return buffer.getvalue()


def _parquet() -> bytes:
    import pyarrow as pa
    import pyarrow.parquet as pq

    buffer = io.BytesIO()
    table = pa.table({"image": pa.array([bytes(784)] * 2, type=pa.binary(784))})
    pq.write_table(table, buffer)
    return buffer.getvalue()


@pytest.mark.parametrize("suffix", [".npy", ".idx", ".parquet", ".npz"])
def test_batch_inputs_fail_only_with_batch_input_errors(suffix: str, tmp_path: Path) -> None:
    originals = {
        "npy": _npy(),
        "npz": _npz(),
        "parquet": _parquet(),
        "idx": VALID_IDX["images"],
    }

    @SETTINGS
    @given(st.one_of(st.binary(max_size=256), damaged(originals)))
    def check(data: bytes) -> None:
        path = tmp_path / f"input{suffix}"
        path.write_bytes(data)
        try:
            with open_input(path) as source:
                chunk = source.read(0, source.num_rows)
        except (BatchInputError, DataFormatError) as exc:
            assert str(path.name) in str(exc) or str(exc)
        else:
            assert chunk.pixels.shape[1:] == (28, 28)

    check()
