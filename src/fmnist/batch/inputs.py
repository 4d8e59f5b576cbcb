"""What a batch reader hands the runner: row ranges of images as :class:`InputChunk`.

Every reader (:mod:`fmnist.batch.readers`) is a :class:`BatchInput`: it knows its number of rows
and a fingerprint (what identifies it for resuming), and reads a row range as pixels ``(n, 28,
28)`` plus the input references as an Arrow string array, so arrays flow through without
per-row Python. The runner and the writer depend on this contract only, not on the formats.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from fmnist import IMAGE_SIZE
from fmnist.batch.errors import BatchInputError

PIXELS = IMAGE_SIZE * IMAGE_SIZE

InputKind = Literal["folder", "idx", "npy", "npz", "parquet"]
INPUT_KINDS: tuple[InputKind, ...] = ("folder", "idx", "npy", "npz", "parquet")

Pixels = npt.NDArray[np.uint8] | npt.NDArray[np.float32]


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


def file_fingerprint(kind: InputKind, path: Path, **extra: Any) -> dict[str, Any]:
    """Kind, absolute path, size and modification time of ``path``, plus ``extra``."""
    stat = path.stat()
    return {
        "kind": kind,
        "path": str(path.resolve()),
        "size": stat.st_size,
        "mtime_ns": stat.st_mtime_ns,
        **extra,
    }


def index_refs(start: int, stop: int) -> pa.Array:
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
