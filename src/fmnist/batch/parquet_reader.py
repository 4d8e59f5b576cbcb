"""Parquet input of the batch job: the snapshot layout or any column of 784 numbers per row."""

from __future__ import annotations

import bisect
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from fmnist import IMAGE_SIZE
from fmnist.batch.errors import BatchInputError
from fmnist.batch.inputs import (
    PIXELS,
    BatchInput,
    InputChunk,
    check_pixel_values,
    file_fingerprint,
    index_refs,
)


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
        return file_fingerprint("parquet", self.path, column=self.column, id_column=self.id_column)

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
            return InputChunk(index_refs(0, 0), np.zeros((0, IMAGE_SIZE, IMAGE_SIZE), np.uint8))
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
            refs = index_refs(start, stop)
        return InputChunk(refs, pixels)
