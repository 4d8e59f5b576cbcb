"""The prediction log as Arrow: the window/Parquet schema and conversions from SQLite rows.

Kept apart from :mod:`fmnist.monitoring.log_schema` so that writing the log (the serving path)
needs no pyarrow; reading windows, compaction and exports do.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from fmnist import CLASS_NAMES, IMAGE_SIZE
from fmnist.monitoring.errors import MonitoringError
from fmnist.monitoring.log_schema import CLASS_INDEX
from fmnist.monitoring.records import PredictionRecord

TS_TYPE = pa.timestamp("us", tz="UTC")
ARROW_SCHEMA = pa.schema(
    [
        ("seq", pa.int64()),
        ("request_id", pa.string()),
        ("timestamp", pa.string()),
        ("ts", TS_TYPE),
        ("model_name", pa.string()),
        ("model_version", pa.int64()),
        ("model_alias", pa.string()),
        ("arm", pa.string()),
        ("input_kind", pa.string()),
        ("input_digest", pa.string()),
        ("pixels", pa.binary()),
        ("probabilities", pa.list_(pa.float64())),
        ("predicted_class", pa.string()),
        ("confidence", pa.float64()),
        ("latency_ms", pa.float64()),
        ("client_id", pa.string()),
        ("photo_flags", pa.string()),
        ("route", pa.string()),
    ]
)
"""Columns of a window as Arrow, and of a Parquet segment (plus its ``date`` partition)."""


def _probability_lists(blobs: Sequence[bytes]) -> pa.Array:
    lengths = np.fromiter((len(b) // 8 for b in blobs), dtype=np.int32, count=len(blobs))
    offsets = np.zeros(len(blobs) + 1, dtype=np.int32)
    np.cumsum(lengths, out=offsets[1:])
    values = np.frombuffer(b"".join(blobs), dtype="<f8")
    return pa.ListArray.from_arrays(pa.array(offsets), pa.array(values))


def rows_to_table(
    rows: Sequence[tuple[Any, ...]], names: Sequence[str] = ARROW_SCHEMA.names
) -> pa.Table:
    """SQLite rows selected with :func:`sql_columns` of ``names`` as an Arrow table with those
    columns of :data:`ARROW_SCHEMA`."""
    target = pa.schema([ARROW_SCHEMA.field(name) for name in names])
    if not rows:
        return target.empty_table()
    columns = list(zip(*rows, strict=True))
    arrays: list[pa.Array] = []
    for field, values in zip(target, columns, strict=True):
        if field.name == "probabilities":
            arrays.append(_probability_lists(values))
        elif field.name == "ts":
            arrays.append(pa.array(np.asarray(values, dtype=np.int64)).cast(TS_TYPE))
        else:
            arrays.append(pa.array(values, type=field.type))
    return pa.Table.from_arrays(arrays, schema=target)


def table_to_records(table: pa.Table) -> list[PredictionRecord]:
    """The rows of a window table as :class:`PredictionRecord` objects, in table order."""
    records = []
    for row in table.select([n for n in ARROW_SCHEMA.names if n not in ("seq", "ts")]).to_pylist():
        row["probabilities"] = tuple(row["probabilities"])
        row["photo_flags"] = json.loads(row["photo_flags"])
        records.append(PredictionRecord(**row))
    return records


@dataclass(frozen=True)
class LogArrays:
    """A window as numpy arrays for the drift monitor (row ``i`` of each is one prediction).

    ``predicted`` holds class indices, -1 for ``unknown``; ``timestamps`` are UTC
    ``datetime64[us]``; ``pixels`` rows of a record logged without its input are zeros.
    """

    request_ids: npt.NDArray[np.str_]
    timestamps: npt.NDArray[np.datetime64]
    pixels: npt.NDArray[np.uint8]
    probabilities: npt.NDArray[np.float32]
    predicted: npt.NDArray[np.int16]
    input_kinds: npt.NDArray[np.str_]
    model_versions: npt.NDArray[np.int64]

    def __len__(self) -> int:
        """The number of predictions."""
        return int(self.predicted.shape[0])


def _pixels(column: pa.ChunkedArray) -> npt.NDArray[np.uint8]:
    size = IMAGE_SIZE * IMAGE_SIZE
    n = len(column)
    out = np.zeros((n, IMAGE_SIZE, IMAGE_SIZE), dtype=np.uint8)
    if n == 0:
        return out
    array = column.combine_chunks()
    if array.null_count == 0:  # one contiguous buffer: copy it without Python objects
        offsets = np.frombuffer(array.buffers()[1], dtype=np.int32)[
            array.offset : array.offset + n + 1
        ]
        if np.all(np.diff(offsets) == size):
            data = np.frombuffer(array.buffers()[2], dtype=np.uint8)[offsets[0] : offsets[-1]]
            out[:] = data.reshape(n, IMAGE_SIZE, IMAGE_SIZE)
            return out
    blobs: list[bytes | None] = array.to_pylist()
    for i, blob in enumerate(blobs):
        if blob is not None and len(blob) == size:
            out[i] = np.frombuffer(blob, dtype=np.uint8).reshape(IMAGE_SIZE, IMAGE_SIZE)
    return out


def _probabilities(column: pa.ChunkedArray) -> npt.NDArray[np.float32]:
    n = len(column)
    flat = pc.list_flatten(column).to_numpy(zero_copy_only=False).astype(np.float32)
    if n and flat.size != n * len(CLASS_NAMES):
        raise MonitoringError(f"logged probabilities are not {len(CLASS_NAMES)} per record")
    probabilities: npt.NDArray[np.float32] = flat.reshape(n, len(CLASS_NAMES))
    return probabilities


def table_to_arrays(table: pa.Table) -> LogArrays:
    """The numpy view (:class:`LogArrays`) of a window table."""
    predicted = np.fromiter(
        (CLASS_INDEX.get(name, -1) for name in table.column("predicted_class").to_pylist()),
        dtype=np.int16,
        count=table.num_rows,
    )
    timestamps = table.column("ts").cast(pa.int64()).to_numpy().astype("datetime64[us]")
    return LogArrays(
        request_ids=np.asarray(table.column("request_id").to_pylist(), dtype=np.str_),
        timestamps=timestamps,
        pixels=_pixels(table.column("pixels")),
        probabilities=_probabilities(table.column("probabilities")),
        predicted=predicted,
        input_kinds=np.asarray(table.column("input_kind").to_pylist(), dtype=np.str_),
        model_versions=table.column("model_version").to_numpy().astype(np.int64),
    )
