"""A strict reader for the IDX format used by (Fashion-)MNIST.

IDX layout: two zero bytes, a type code, the number of dimensions, then one big-endian uint32 per
dimension, then the data in C order. Every structural problem raises
:class:`~fmnist.errors.DataFormatError` naming the file.
"""

from __future__ import annotations

import gzip
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from fmnist import IMAGE_SIZE, NUM_CLASSES
from fmnist.errors import DataFormatError
from fmnist.identity import digest_bytes

GZIP_MAGIC = b"\x1f\x8b"

_IDX_DTYPES: dict[int, np.dtype[np.generic]] = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}


@dataclass(frozen=True)
class RawFile:
    """The decompressed bytes of one data file and their SHA-256."""

    path: Path
    content: bytes
    sha256: str


def read_raw(path: Path) -> RawFile:
    """Read a file, gunzipping it when it starts with the gzip magic, and hash the content."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise DataFormatError(f"{path}: cannot read ({exc.strerror})") from exc
    if data[:2] == GZIP_MAGIC:
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError, zlib.error) as exc:
            raise DataFormatError(f"{path}: corrupt or truncated gzip stream ({exc})") from exc
    return RawFile(path, data, digest_bytes(data))


def parse_idx(content: bytes, name: str = "<bytes>") -> npt.NDArray[np.generic]:
    """Parse IDX bytes into a numpy array (native byte order), checking header and length."""
    if len(content) < 4:
        raise DataFormatError(f"{name}: too short for an IDX header ({len(content)} bytes)")
    zero_a, zero_b, type_code, ndim = content[:4]
    if zero_a != 0 or zero_b != 0 or type_code not in _IDX_DTYPES or ndim == 0:
        raise DataFormatError(
            f"{name}: bad IDX magic number 0x{content[:4].hex()} "
            "(expected 0x0000 + a type code + number of dimensions)"
        )
    header_len = 4 + 4 * ndim
    if len(content) < header_len:
        raise DataFormatError(f"{name}: truncated IDX header ({ndim} dimensions declared)")
    dims = tuple(int(d) for d in np.frombuffer(content, dtype=">u4", count=ndim, offset=4))
    dtype = _IDX_DTYPES[type_code]
    expected = int(np.prod(dims, dtype=np.int64)) * dtype.itemsize
    actual = len(content) - header_len
    if actual < expected:
        raise DataFormatError(
            f"{name}: truncated: header declares shape {dims} ({expected} data bytes), "
            f"found {actual}"
        )
    if actual > expected:
        raise DataFormatError(
            f"{name}: {actual - expected} unexpected trailing bytes after shape {dims}"
        )
    array = np.frombuffer(content, dtype=dtype, offset=header_len).reshape(dims)
    return array.astype(dtype.newbyteorder("="), copy=False)


def check_pair(
    images: npt.NDArray[np.generic],
    labels: npt.NDArray[np.generic],
    images_name: str,
    labels_name: str,
) -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.uint8]]:
    """Check an images/labels pair is Fashion-MNIST shaped and consistent; return uint8 arrays."""
    if images.dtype != np.uint8 or images.ndim != 3 or images.shape[1:] != (IMAGE_SIZE,) * 2:
        raise DataFormatError(
            f"{images_name}: expected uint8 images of shape (N, {IMAGE_SIZE}, {IMAGE_SIZE}), "
            f"got {images.dtype} {images.shape}"
        )
    if labels.dtype != np.uint8 or labels.ndim != 1:
        raise DataFormatError(
            f"{labels_name}: expected a 1-D uint8 label vector, got {labels.dtype} {labels.shape}"
        )
    if images.shape[0] != labels.shape[0]:
        raise DataFormatError(
            f"{images_name} has {images.shape[0]} images but {labels_name} has "
            f"{labels.shape[0]} labels"
        )
    label_values = labels.astype(np.int64)
    if label_values.size and int(label_values.max()) >= NUM_CLASSES:
        bad = int(np.flatnonzero(label_values >= NUM_CLASSES)[0])
        raise DataFormatError(
            f"{labels_name}: label {int(labels[bad])} at index {bad} is outside 0-{NUM_CLASSES - 1}"
        )
    return images.astype(np.uint8, copy=False), labels.astype(np.uint8, copy=False)


def write_idx(array: npt.NDArray[np.generic], path: Path, *, compress: bool = False) -> None:
    """Write an array as IDX (optionally gzipped); used for tests and exports."""
    codes = {np.dtype(dt).newbyteorder("="): code for code, dt in _IDX_DTYPES.items()}
    dtype = array.dtype.newbyteorder("=")
    if dtype not in codes:
        raise DataFormatError(f"{path}: dtype {array.dtype} has no IDX type code")
    code = codes[dtype]
    header = bytes([0, 0, code, array.ndim]) + np.asarray(array.shape, dtype=">u4").tobytes()
    body = np.ascontiguousarray(array).astype(_IDX_DTYPES[code], copy=False).tobytes()
    payload = header + body
    path.write_bytes(gzip.compress(payload, compresslevel=6) if compress else payload)
