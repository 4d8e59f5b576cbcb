"""The batch job's inputs: recognise a path and open it as a ``BatchInput``.

:func:`open_input` recognises the input by its content (a folder, the NumPy, zip, Parquet or
gzip magic bytes, the IDX header), falling back to the extension only to phrase errors. Arrays
(IDX, NPY, NPZ) are read here; Parquet files in :mod:`fmnist.batch.parquet_reader` and photo
folders in :mod:`fmnist.batch.photo_reader`. Problems with the input as a whole raise
:class:`~fmnist.batch.errors.BatchInputError` naming the file (and the row or entry); an
unreadable photo in a folder becomes an error row instead.
"""

from __future__ import annotations

import gzip
import tokenize
import zipfile
import zlib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from fmnist import IMAGE_SIZE
from fmnist.batch.errors import BatchInputError
from fmnist.batch.inputs import (
    PIXELS,
    BatchInput,
    InputChunk,
    InputKind,
    check_pixel_values,
    file_fingerprint,
    index_refs,
)
from fmnist.batch.parquet_reader import ParquetInput
from fmnist.batch.photo_reader import IMAGE_EXTENSIONS, FolderInput, PreprocessFn
from fmnist.data.idx import GZIP_MAGIC, parse_idx
from fmnist.errors import DataFormatError


class ArrayInput(BatchInput):
    """An in-memory or memory-mapped array of images ``(N, 28, 28)`` or ``(N, 784)``."""

    def __init__(
        self,
        kind: InputKind,
        path: Path,
        array: np.ndarray,
        name: str,
        *,
        entry: str | None = None,
        on_close: Callable[[], None] | None = None,
    ) -> None:
        """Wrap ``array`` read from ``path``; ``name`` is how errors refer to it."""
        self.kind, self.path, self.name, self.entry = kind, path, name, entry
        self._on_close = on_close
        if array.ndim == 2 and array.shape[1] == PIXELS:
            array = array.reshape(len(array), IMAGE_SIZE, IMAGE_SIZE)
        if array.ndim != 3 or array.shape[1:] != (IMAGE_SIZE, IMAGE_SIZE):
            raise BatchInputError(
                f"{name}: expected images shaped (N, {IMAGE_SIZE}, {IMAGE_SIZE}) or "
                f"(N, {PIXELS}), got {array.dtype} {array.shape}"
            )
        if array.dtype.kind not in "uif":
            raise BatchInputError(f"{name}: pixel values of dtype {array.dtype} are not numbers")
        self.array = array
        self.num_rows = len(array)
        if array.dtype.kind == "f" and self.num_rows:
            sample = np.asarray(array[: min(self.num_rows, 1024)])
            if np.nanmax(sample) <= 1.0:
                self.warnings = (
                    f"{name}: float pixels read as 0-255 values, but the first rows are all "
                    "<= 1 (scaled to [0, 1]? multiply by 255)",
                )

    def fingerprint(self) -> dict[str, Any]:
        """Path, size and modification time, plus the NPZ entry."""
        extra = {"entry": self.entry} if self.entry is not None else {}
        return file_fingerprint(self.kind, self.path, **extra)

    def read(
        self, start: int, stop: int, progress: Callable[[int], None] | None = None
    ) -> InputChunk:
        """A slice of the array, checked to hold 0-255 pixel values."""
        values = self.array[start:stop]
        if isinstance(values, np.memmap):  # read the pages here, in the reader thread
            values = np.array(values)
        return InputChunk(index_refs(start, stop), check_pixel_values(values, self.name, start))

    def close(self) -> None:
        """Close the NPZ archive (if any)."""
        if self._on_close is not None:
            self._on_close()
            self._on_close = None


def _idx_input(path: Path) -> ArrayInput:
    try:
        content = path.read_bytes()
    except OSError as exc:
        raise BatchInputError(f"{path}: cannot read ({exc.strerror})") from exc
    if content[:2] == GZIP_MAGIC:  # as fmnist.data.idx.read_raw, without the unused SHA-256
        try:
            content = gzip.decompress(content)
        except (OSError, EOFError, zlib.error) as exc:
            raise BatchInputError(f"{path}: corrupt or truncated gzip stream ({exc})") from exc
    try:
        array = parse_idx(content, str(path))
    except DataFormatError as exc:
        raise BatchInputError(str(exc)) from exc
    if array.ndim == 1:
        raise BatchInputError(
            f"{path}: holds a 1-D IDX array of {len(array)} values (a label file?), not images"
        )
    return ArrayInput("idx", path, array, str(path))


def _npy_input(path: Path) -> ArrayInput:
    try:
        array = np.load(path, mmap_mode="r", allow_pickle=False)
    except (ValueError, SyntaxError, tokenize.TokenError, EOFError) as exc:
        # object arrays need pickle; a corrupt header fails numpy's header parser
        raise BatchInputError(f"{path}: not a readable numeric .npy array ({exc})") from exc
    except OSError as exc:
        raise BatchInputError(f"{path}: cannot read ({exc})") from exc
    return ArrayInput("npy", path, array, str(path))


def _npz_input(path: Path, key: str | None) -> ArrayInput:
    try:
        archive = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise BatchInputError(f"{path}: not a readable .npz archive ({exc})") from exc
    try:
        names = list(archive.files)
        if not names:
            raise BatchInputError(f"{path}: the archive holds no arrays")
        if key is None:
            key = names[0]
        elif key not in names:
            raise BatchInputError(
                f"{path}: no array {key!r} in the archive (it holds: {', '.join(names)})"
            )
        try:
            array = archive[key]
        except (ValueError, OSError, zipfile.BadZipFile, zlib.error, EOFError) as exc:
            raise BatchInputError(f"{path}: entry {key!r}: cannot read ({exc})") from exc
        return ArrayInput(
            "npz", path, array, f"{path}: entry {key!r}", entry=key, on_close=archive.close
        )
    except BaseException:
        archive.close()
        raise


_IDX_TYPES = frozenset({0x08, 0x09, 0x0B, 0x0C, 0x0D, 0x0E})


def _is_idx_header(head: bytes) -> bool:
    return len(head) >= 4 and head[:2] == b"\0\0" and head[2] in _IDX_TYPES and head[3] > 0


def detect_kind(path: Path) -> InputKind:
    """Recognise an input by content: folder, NPY, NPZ (zip), Parquet or IDX (gzip or plain)."""
    if path.is_dir():
        return "folder"
    if not path.exists():
        raise BatchInputError(f"{path}: no such file or folder")
    try:
        with path.open("rb") as handle:
            head = handle.read(8)
            if head[:2] == GZIP_MAGIC:
                handle.seek(0)
                with gzip.GzipFile(fileobj=handle) as inner:
                    head = b"gz:" + inner.read(4)
    except (OSError, EOFError, zlib.error) as exc:
        raise BatchInputError(f"{path}: cannot read ({exc})") from exc
    if head.startswith(b"\x93NUMPY"):
        return "npy"
    if head.startswith((b"PK\x03\x04", b"PK\x05\x06")):
        return "npz"
    if head.startswith(b"PAR1"):
        return "parquet"
    if _is_idx_header(head.removeprefix(b"gz:")):
        return "idx"
    if path.suffix.lower() in IMAGE_EXTENSIONS:
        raise BatchInputError(
            f"{path}: a single image; put it in a folder and pass the folder as INPUT"
        )
    what = "gzip stream that is not IDX" if head.startswith(b"gz:") else "file"
    raise BatchInputError(
        f"{path}: unrecognised {what} (expected a folder of images, an IDX file, gzipped or "
        "plain, .npy, .npz or .parquet)"
    )


def open_input(
    path: Path,
    *,
    input_format: InputKind | None = None,
    key: str | None = None,
    column: str | None = None,
    id_column: str | None = None,
    preprocess: PreprocessFn | None = None,
    decode_workers: int | None = None,
) -> BatchInput:
    """Open ``path`` as a batch input (kind detected unless ``input_format``).

    ``key`` picks an NPZ entry (default: the first); ``column`` and ``id_column`` pick the
    Parquet image column and the column used as input reference (default: the row number).
    ``preprocess`` turns photo bytes into 28x28 pixels and a foreground share (folders only).
    """
    kind = input_format or detect_kind(path)
    if kind != "folder" and not path.is_file():
        raise BatchInputError(f"{path}: not a file (expected {kind} input)")
    _check_options(kind, path, key=key, column=column, id_column=id_column)
    if kind == "folder":
        if not path.is_dir():
            raise BatchInputError(f"{path}: not a folder")
        if preprocess is None:
            raise ValueError("image folders need a preprocess function")
        source = FolderInput(path, preprocess, decode_workers)
        if source.num_rows == 0:
            raise BatchInputError(
                f"{path}: no images found (extensions: {', '.join(sorted(IMAGE_EXTENSIONS))})"
            )
        return source
    if kind == "idx":
        return _idx_input(path)
    if kind == "npy":
        return _npy_input(path)
    if kind == "npz":
        return _npz_input(path, key)
    return ParquetInput(path, column=column, id_column=id_column)


def _check_options(kind: InputKind, path: Path, **options: str | None) -> None:
    applies: dict[str, Sequence[InputKind]] = {
        "key": ("npz",),
        "column": ("parquet",),
        "id_column": ("parquet",),
    }
    for name, value in options.items():
        if value is not None and kind not in applies[name]:
            flag = "--" + name.replace("_", "-")
            raise BatchInputError(
                f"{path}: {flag} applies to {'/'.join(applies[name])} input, not {kind}"
            )
