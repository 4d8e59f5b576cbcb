"""The strict IDX reader against files crafted with ``write_idx`` and by hand."""

from __future__ import annotations

import gzip
import hashlib
import re
import struct
from pathlib import Path

import numpy as np
import pytest

from fmnist.data.idx import check_pair, parse_idx, read_raw, write_idx
from fmnist.errors import DataFormatError


def idx_bytes(type_code: int, dims: tuple[int, ...], body: bytes) -> bytes:
    """Hand-made IDX content: magic, big-endian dimensions, body."""
    return bytes([0, 0, type_code, len(dims)]) + struct.pack(f">{len(dims)}I", *dims) + body


@pytest.mark.parametrize("compress", [False, True], ids=["plain", "gzip"])
@pytest.mark.parametrize(
    "dtype", [np.uint8, np.int8, np.int16, np.int32, np.float32, np.float64], ids=str
)
def test_round_trip(tmp_path: Path, dtype: type, compress: bool) -> None:
    rng = np.random.default_rng(0)
    array = (rng.normal(size=(3, 4, 5)) * 50).astype(dtype)
    path = tmp_path / "array.idx"
    write_idx(array, path, compress=compress)

    assert (path.read_bytes()[:2] == b"\x1f\x8b") is compress
    raw = read_raw(path)
    parsed = parse_idx(raw.content, str(path))

    assert parsed.dtype == np.dtype(dtype)
    assert parsed.dtype.isnative
    np.testing.assert_array_equal(parsed, array)
    assert raw.sha256 == hashlib.sha256(raw.content).hexdigest()


def test_plain_and_gzip_have_the_same_content_hash(tmp_path: Path) -> None:
    array = np.arange(2 * 28 * 28, dtype=np.uint8).reshape(2, 28, 28)
    write_idx(array, tmp_path / "a", compress=False)
    write_idx(array, tmp_path / "a.gz", compress=True)
    assert read_raw(tmp_path / "a").sha256 == read_raw(tmp_path / "a.gz").sha256


def test_hand_written_file_is_big_endian(tmp_path: Path) -> None:
    path = tmp_path / "hand.idx"
    path.write_bytes(idx_bytes(0x0B, (2,), struct.pack(">2h", 258, -2)))
    np.testing.assert_array_equal(parse_idx(read_raw(path).content), [258, -2])


def test_write_rejects_dtype_without_type_code(tmp_path: Path) -> None:
    with pytest.raises(DataFormatError, match="int64 has no IDX type code"):
        write_idx(np.zeros(3, dtype=np.int64), tmp_path / "x.idx")


@pytest.mark.parametrize(
    "header",
    [b"\x01\x00\x08\x01", b"\x00\x01\x08\x01", b"\x00\x00\x07\x01", b"\x00\x00\x08\x00"],
    ids=["first-byte", "second-byte", "unknown-type-code", "zero-dimensions"],
)
def test_bad_magic(header: bytes) -> None:
    with pytest.raises(DataFormatError, match=rf"crafted: bad IDX magic number 0x{header.hex()}"):
        parse_idx(header + b"\x00\x00\x00\x01" + b"\x00", "crafted")


def test_too_short_for_a_header() -> None:
    with pytest.raises(DataFormatError, match=r"tiny: too short for an IDX header \(3 bytes\)"):
        parse_idx(b"\x00\x00\x08", "tiny")


def test_truncated_header() -> None:
    content = bytes([0, 0, 8, 3]) + struct.pack(">I", 10)  # 3 dimensions declared, 1 present
    with pytest.raises(DataFormatError, match=r"truncated IDX header \(3 dimensions declared\)"):
        parse_idx(content, "short-header")


def test_truncated_data_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "train-images-idx3-ubyte"
    write_idx(np.ones((4, 28, 28), dtype=np.uint8), path)
    path.write_bytes(path.read_bytes()[:-10])

    with pytest.raises(DataFormatError) as info:
        parse_idx(read_raw(path).content, str(path))
    message = str(info.value)
    assert "truncated" in message
    assert str(path) in message
    assert "(4, 28, 28)" in message
    assert f"found {4 * 28 * 28 - 10}" in message


def test_trailing_bytes() -> None:
    content = idx_bytes(0x08, (2,), b"\x01\x02") + b"xyz"
    with pytest.raises(DataFormatError, match=r"labels: 3 unexpected trailing bytes after shape"):
        parse_idx(content, "labels")


def test_corrupt_gzip_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "labels.gz"
    stream = bytearray(gzip.compress(bytes(range(256)) * 40))
    stream[len(stream) // 2] ^= 0xFF
    path.write_bytes(bytes(stream))
    with pytest.raises(
        DataFormatError, match=re.escape(f"{path}: corrupt or truncated gzip stream")
    ):
        read_raw(path)


def test_truncated_gzip(tmp_path: Path) -> None:
    path = tmp_path / "cut.gz"
    path.write_bytes(gzip.compress(bytes(range(256)) * 40)[:50])
    with pytest.raises(DataFormatError, match="corrupt or truncated gzip stream"):
        read_raw(path)


def test_unreadable_file(tmp_path: Path) -> None:
    missing = tmp_path / "missing.idx"
    with pytest.raises(DataFormatError, match=re.escape(f"{missing}: cannot read")):
        read_raw(missing)


def images_and_labels(n: int = 5) -> tuple[np.ndarray, np.ndarray]:
    return np.zeros((n, 28, 28), dtype=np.uint8), np.arange(n, dtype=np.uint8) % 10


def test_check_pair_accepts_a_valid_pair() -> None:
    images, labels = images_and_labels()
    checked_images, checked_labels = check_pair(images, labels, "img", "lbl")
    assert checked_images.dtype == np.uint8
    assert checked_labels.dtype == np.uint8
    np.testing.assert_array_equal(checked_labels, labels)


def test_check_pair_mismatched_counts() -> None:
    images, _ = images_and_labels(5)
    _, labels = images_and_labels(4)
    with pytest.raises(DataFormatError, match="img has 5 images but lbl has 4 labels"):
        check_pair(images, labels, "img", "lbl")


@pytest.mark.parametrize(
    "images",
    [
        np.zeros((5, 28, 27), dtype=np.uint8),
        np.zeros((5, 784), dtype=np.uint8),
        np.zeros((5, 28, 28), dtype=np.float32),
    ],
    ids=["28x27", "flat", "float"],
)
def test_check_pair_wrong_image_shape(images: np.ndarray) -> None:
    _, labels = images_and_labels(5)
    with pytest.raises(DataFormatError, match=r"img: expected uint8 images of shape \(N, 28, 28\)"):
        check_pair(images, labels, "img", "lbl")


def test_check_pair_wrong_label_shape() -> None:
    images, _ = images_and_labels(5)
    with pytest.raises(DataFormatError, match="lbl: expected a 1-D uint8 label vector"):
        check_pair(images, np.zeros((5, 1), dtype=np.uint8), "img", "lbl")


def test_check_pair_label_out_of_range_names_the_index() -> None:
    images, labels = images_and_labels(5)
    labels[3] = 10
    with pytest.raises(DataFormatError, match=r"lbl: label 10 at index 3 is outside 0-9"):
        check_pair(images, labels, "img", "lbl")
