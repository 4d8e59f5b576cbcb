"""The inputs of the batch job: image folders, IDX, NPY, NPZ and Parquet files.

:func:`open_input` recognises the input by its content (a folder, the NumPy, zip, Parquet or
gzip magic bytes, the IDX header), falling back to the extension only to phrase errors. Every
reader hands out row ranges as :class:`InputChunk` (pixels as an ``(n, 28, 28)`` array, the
input references as an Arrow string array), so arrays flow through without per-row Python.
Problems with the input as a whole raise :class:`BatchInputError` naming the file (and the row
or entry); an unreadable photo in a folder becomes an error row instead.
"""

from __future__ import annotations

import bisect
import gzip
import hashlib
import os
import zipfile
import zlib
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from fmnist import IMAGE_SIZE
from fmnist.data.idx import GZIP_MAGIC, parse_idx
from fmnist.errors import DataFormatError, FmnistError, InvalidImageError

PIXELS = IMAGE_SIZE * IMAGE_SIZE
IMAGE_EXTENSIONS = frozenset(
    {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".jfif", ".pgm", ".ppm"}
)
"""File name endings (case-insensitive) collected from an image folder."""

InputKind = Literal["folder", "idx", "npy", "npz", "parquet"]
INPUT_KINDS: tuple[InputKind, ...] = ("folder", "idx", "npy", "npz", "parquet")

Pixels = npt.NDArray[np.uint8] | npt.NDArray[np.float32]


class BatchInputError(FmnistError):
    """The batch input cannot be used; the message names the file (and the row or entry)."""


@dataclass(frozen=True)
class InputChunk:
    """A range of input rows ready for the model.

    ``pixels`` is ``(n, 28, 28)``: uint8, or float32 holding 0-255 values. ``errors`` (``None``
    when every row is fine) holds a message for each row that could not be read; those rows'
    pixels are zeros and must not be predicted. ``foreground`` is the share of foreground pixels
    of photos (``None`` for arrays, NaN for error rows). ``progress_reported`` is True when the
    reader already counted the rows as done (photos count when decoded, the slow part).
    """

    refs: pa.Array
    pixels: Pixels
    errors: list[str | None] | None = None
    foreground: npt.NDArray[np.float64] | None = None
    progress_reported: bool = False

    def __len__(self) -> int:
        """Number of rows."""
        return len(self.pixels)

    @property
    def valid(self) -> npt.NDArray[np.bool_] | None:
        """Mask of the rows to predict, or ``None`` when all are."""
        if self.errors is None:
            return None
        return np.array([e is None for e in self.errors], dtype=bool)

    @property
    def error_count(self) -> int:
        """Number of rows that could not be read."""
        return 0 if self.errors is None else sum(e is not None for e in self.errors)


class BatchInput(ABC):
    """A source of rows for the batch job, read in ranges (possibly from another thread)."""

    kind: InputKind
    path: Path
    num_rows: int
    default_shard_size: int = 65_536
    warnings: tuple[str, ...] = ()

    @abstractmethod
    def fingerprint(self) -> dict[str, Any]:
        """What identifies this input for resuming (path, size, mtime, selected entry...)."""

    @abstractmethod
    def read(
        self, start: int, stop: int, progress: Callable[[int], None] | None = None
    ) -> InputChunk:
        """Rows ``start`` to ``stop`` (exclusive); readers that are slow per row may report
        rows read to ``progress`` (and say so in the chunk)."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release files and threads."""

    def __enter__(self) -> BatchInput:
        """Use as a context manager that closes the input."""
        return self

    def __exit__(self, *exc: object) -> None:
        """Close the input."""
        self.close()


def _file_fingerprint(kind: InputKind, path: Path, **extra: Any) -> dict[str, Any]:
    stat = path.stat()
    return {
        "kind": kind,
        "path": str(path.resolve()),
        "size": stat.st_size,
        "mtime_ns": stat.st_mtime_ns,
        **extra,
    }


def _index_refs(start: int, stop: int) -> pa.Array:
    """Row numbers as strings, computed by Arrow (no per-row Python)."""
    return pc.cast(pa.array(np.arange(start, stop, dtype=np.int64)), pa.string())


def _first_bad_row(bad: npt.NDArray[np.bool_]) -> int:
    return int(np.flatnonzero(bad.reshape(len(bad), -1).any(axis=1))[0])


def check_pixel_values(values: np.ndarray, name: str, row_offset: int) -> Pixels:
    """Return ``values`` (``(n, 28, 28)``) as uint8 or float32 0-255 pixels, or raise naming the
    first row whose values are not finite numbers in 0-255."""
    if values.dtype == np.uint8:
        return values
    if values.dtype.kind in "iu":
        bad = (values < 0) | (values > 255)
        if bad.any():
            row = _first_bad_row(bad)
            found = values[row][bad[row]].flat[0]
            raise BatchInputError(
                f"{name}: row {row_offset + row}: pixel value {found} is outside 0-255"
            )
        return values.astype(np.uint8)
    if values.dtype.kind == "f":
        pixels = values.astype(np.float32, copy=False)
        with np.errstate(invalid="ignore"):
            bad = ~((pixels >= 0) & (pixels <= 255))  # NaN compares False: caught here too
        if bad.any():
            row = _first_bad_row(bad)
            found = pixels[row][bad[row]].flat[0]
            raise BatchInputError(
                f"{name}: row {row_offset + row}: pixel value {found:g} is not a number in 0-255"
            )
        return pixels
    raise BatchInputError(f"{name}: pixel values of dtype {values.dtype} are not numbers")


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
        return _file_fingerprint(self.kind, self.path, **extra)

    def read(
        self, start: int, stop: int, progress: Callable[[int], None] | None = None
    ) -> InputChunk:
        """A slice of the array, checked to hold 0-255 pixel values."""
        values = self.array[start:stop]
        if isinstance(values, np.memmap):  # read the pages here, in the reader thread
            values = np.array(values)
        return InputChunk(_index_refs(start, stop), check_pixel_values(values, self.name, start))

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
    except ValueError as exc:  # object arrays need pickle; corrupt headers
        raise BatchInputError(f"{path}: not a readable numeric .npy array ({exc})") from exc
    except OSError as exc:
        raise BatchInputError(f"{path}: cannot read ({exc})") from exc
    return ArrayInput("npy", path, array, str(path))


def _npz_input(path: Path, key: str | None) -> ArrayInput:
    try:
        archive = np.load(path, allow_pickle=False)
    except (OSError, ValueError, zipfile.BadZipFile) as exc:
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


def _list_values_to_numpy(column: pa.Array, name: str, offset: int) -> np.ndarray:
    """Flatten a (fixed-size) list column of 784 numbers per row into ``(n, 784)``."""
    if column.null_count:
        row = int(np.flatnonzero(column.is_null().to_numpy(zero_copy_only=False))[0])
        raise BatchInputError(f"{name}: row {offset + row}: the image is null")
    lengths = pc.list_value_length(column).to_numpy(zero_copy_only=False)
    wrong = np.flatnonzero(lengths != PIXELS)
    if wrong.size:
        row = int(wrong[0])
        raise BatchInputError(
            f"{name}: row {offset + row}: the image has {lengths[row]} values, expected {PIXELS}"
        )
    values = column.flatten()
    if values.null_count:
        row = int(np.flatnonzero(values.is_null().to_numpy(zero_copy_only=False))[0]) // PIXELS
        raise BatchInputError(f"{name}: row {offset + row}: the image holds a null pixel")
    flat: np.ndarray = values.to_numpy(zero_copy_only=False)
    return flat.reshape(len(column), PIXELS)


def _binary_to_numpy(column: pa.Array, name: str, offset: int) -> npt.NDArray[np.uint8]:
    """A fixed_size_binary[784] column as ``(n, 784)`` uint8 without copying."""
    if column.null_count:
        row = int(np.flatnonzero(column.is_null().to_numpy(zero_copy_only=False))[0])
        raise BatchInputError(f"{name}: row {offset + row}: the image is null")
    buffer = column.buffers()[1]
    begin = column.offset * PIXELS
    flat = np.frombuffer(buffer, dtype=np.uint8)[begin : begin + len(column) * PIXELS]
    return flat.reshape(len(column), PIXELS)


def _is_image_type(kind: pa.DataType) -> bool:
    if pa.types.is_fixed_size_binary(kind):
        return bool(kind.byte_width == PIXELS)
    if pa.types.is_fixed_size_list(kind):
        return bool(kind.list_size == PIXELS) and _is_number(kind.value_type)
    if pa.types.is_list(kind) or pa.types.is_large_list(kind):
        return _is_number(kind.value_type)
    return False


def _is_number(kind: pa.DataType) -> bool:
    return bool(pa.types.is_integer(kind) or pa.types.is_floating(kind))


class ParquetInput(BatchInput):
    """A Parquet file: the snapshot layout (``image`` as fixed_size_binary[784]) or any column
    holding 784 numbers per row as a list; row groups are read as needed."""

    def __init__(
        self, path: Path, *, column: str | None = None, id_column: str | None = None
    ) -> None:
        """Open ``path`` and pick the image column (``column`` or the only candidate)."""
        self.kind, self.path = "parquet", path
        try:
            self.file = pq.ParquetFile(path)
        except (OSError, pa.ArrowException) as exc:
            raise BatchInputError(f"{path}: not a readable Parquet file ({exc})") from exc
        schema = self.file.schema_arrow
        if column is None:
            candidates = [f.name for f in schema if _is_image_type(f.type)]
            if "image" in candidates:
                column = "image"
            elif len(candidates) == 1:
                column = candidates[0]
            elif not candidates:
                raise BatchInputError(
                    f"{path}: no image column (fixed_size_binary[{PIXELS}] or a list of "
                    f"{PIXELS} numbers per row) among: {', '.join(schema.names)}"
                )
            else:
                raise BatchInputError(
                    f"{path}: several possible image columns ({', '.join(candidates)}); "
                    "choose one with --column"
                )
        if column not in schema.names:
            raise BatchInputError(
                f"{path}: no column {column!r} (columns: {', '.join(schema.names)})"
            )
        if not _is_image_type(schema.field(column).type):
            raise BatchInputError(
                f"{path}: column {column!r} is {schema.field(column).type}, not "
                f"fixed_size_binary[{PIXELS}] or a list of {PIXELS} numbers per row"
            )
        if id_column is not None and id_column not in schema.names:
            raise BatchInputError(
                f"{path}: no id column {id_column!r} (columns: {', '.join(schema.names)})"
            )
        self.column, self.id_column = column, id_column
        self.name = f"{path}: column {column!r}"
        meta = self.file.metadata
        self.num_rows = int(meta.num_rows)
        self._starts = [0]
        for i in range(meta.num_row_groups):
            self._starts.append(self._starts[-1] + int(meta.row_group(i).num_rows))
        self._cached: tuple[tuple[int, int], pa.Table] | None = None

    def fingerprint(self) -> dict[str, Any]:
        """Path, size and modification time, plus the columns used."""
        return _file_fingerprint("parquet", self.path, column=self.column, id_column=self.id_column)

    def _row_groups(self, start: int, stop: int) -> tuple[int, pa.Table]:
        first = bisect.bisect_right(self._starts, start) - 1
        last = bisect.bisect_left(self._starts, stop) - 1
        key = (first, last)
        if self._cached is None or self._cached[0] != key:
            columns = [self.column] + ([self.id_column] if self.id_column else [])
            try:
                table = self.file.read_row_groups(list(range(first, last + 1)), columns=columns)
            except (OSError, pa.ArrowException) as exc:
                raise BatchInputError(
                    f"{self.path}: rows {start}-{stop - 1}: cannot read ({exc})"
                ) from exc
            self._cached = (key, table)
        return self._starts[first], self._cached[1]

    def read(
        self, start: int, stop: int, progress: Callable[[int], None] | None = None
    ) -> InputChunk:
        """Rows ``start``-``stop`` as pixels plus ids (row numbers unless ``id_column``)."""
        if start >= stop:
            return InputChunk(_index_refs(0, 0), np.zeros((0, IMAGE_SIZE, IMAGE_SIZE), np.uint8))
        base, table = self._row_groups(start, stop)
        part = table.slice(start - base, stop - start)
        images = part.column(self.column).combine_chunks()
        if pa.types.is_fixed_size_binary(images.type):
            flat: np.ndarray = _binary_to_numpy(images, self.name, start)
        else:
            flat = _list_values_to_numpy(images, self.name, start)
        pixels = check_pixel_values(
            flat.reshape(len(flat), IMAGE_SIZE, IMAGE_SIZE), self.name, start
        )
        if self.id_column:
            refs = pc.cast(part.column(self.id_column).combine_chunks(), pa.string())
        else:
            refs = _index_refs(start, stop)
        return InputChunk(refs, pixels)


PreprocessFn = Callable[[bytes], tuple[npt.NDArray[np.uint8], float]]


class FolderInput(BatchInput):
    """A folder of photos (searched recursively; hidden entries skipped), in path order.

    Photos are read, decoded and preprocessed on a thread pool; an unreadable photo becomes an
    error row. The reference of a row is the photo's path relative to the folder.
    """

    default_shard_size = 2_048

    def __init__(self, path: Path, preprocess: PreprocessFn, workers: int | None = None) -> None:
        """List the photos under ``path``; ``preprocess`` turns file bytes into 28x28 pixels."""
        self.kind, self.path = "folder", path
        self.files = _list_images(path)
        self.num_rows = len(self.files)
        self.refs = [f.relative_to(path).as_posix() for f in self.files]
        self._preprocess = preprocess
        self._workers = workers or max(1, len(os.sched_getaffinity(0)))
        self._pool: ThreadPoolExecutor | None = None

    def fingerprint(self) -> dict[str, Any]:
        """Folder path and a hash of every photo's relative path, size and mtime."""
        digest = hashlib.sha256()
        for file, ref in zip(self.files, self.refs, strict=True):
            try:
                stat = file.stat()
                digest.update(f"{ref}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
            except OSError:
                digest.update(f"{ref}\0?\n".encode())
        return {
            "kind": "folder",
            "path": str(self.path.resolve()),
            "files": self.num_rows,
            "listing_sha256": digest.hexdigest(),
        }

    def _load(self, file: Path) -> tuple[npt.NDArray[np.uint8] | None, float, str | None]:
        try:
            data = file.read_bytes()
        except OSError as exc:
            return None, float("nan"), f"cannot read: {exc.strerror or exc}"
        try:
            pixels, foreground = self._preprocess(data)
        except InvalidImageError as exc:
            return None, float("nan"), str(exc)
        return pixels, foreground, None

    def read(
        self, start: int, stop: int, progress: Callable[[int], None] | None = None
    ) -> InputChunk:
        """Decode photos ``start``-``stop`` in parallel; failures become error rows. Each
        decoded photo is reported to ``progress``."""
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self._workers, thread_name_prefix="fmnist-decode")

        def load(file: Path) -> tuple[npt.NDArray[np.uint8] | None, float, str | None]:
            loaded = self._load(file)
            if progress is not None:
                progress(1)
            return loaded

        results = list(self._pool.map(load, self.files[start:stop]))
        n = len(results)
        pixels = np.zeros((n, IMAGE_SIZE, IMAGE_SIZE), dtype=np.uint8)
        foreground = np.full(n, np.nan, dtype=np.float64)
        errors: list[str | None] = []
        for i, (image, fraction, error) in enumerate(results):
            if image is not None:
                pixels[i] = image
                foreground[i] = fraction
            errors.append(error)
        return InputChunk(
            pa.array(self.refs[start:stop], type=pa.string()),
            pixels,
            errors if any(e is not None for e in errors) else None,
            foreground,
            progress_reported=progress is not None,
        )

    def close(self) -> None:
        """Stop the decoding threads."""
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None


def _list_images(root: Path) -> list[Path]:
    found: list[Path] = []
    for folder, dirs, files in os.walk(root, onerror=None):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        base = Path(folder)
        found.extend(
            base / f
            for f in files
            if not f.startswith(".") and Path(f).suffix.lower() in IMAGE_EXTENSIONS
        )
    found.sort(key=lambda p: p.relative_to(root).as_posix())
    return found


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
