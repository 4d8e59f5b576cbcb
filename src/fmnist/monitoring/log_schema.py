"""The prediction log's storage layout: SQLite tables, the Arrow/Parquet schema, conversions.

A record lives in SQLite (table ``predictions``) until its day is compacted into Parquet; both
hold the same columns, and ``segment_index`` maps each compacted request id to its day, so a
lookup by id reads one partition (and an unknown id none). Times are UTC: SQLite keeps
microseconds since the epoch (``ts_us``) for range queries beside the producer's ISO 8601 text
(``timestamp``, returned unchanged); Parquet keeps a ``ts`` timestamp column. Probabilities
are little-endian float64 blobs in SQLite and ``list<double>`` in Arrow.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from fmnist import CLASS_NAMES, IMAGE_SIZE
from fmnist.monitoring.errors import MonitoringError
from fmnist.monitoring.records import PredictionRecord

SCHEMA_VERSION = 1
DDL = """
CREATE TABLE IF NOT EXISTS predictions (
    seq INTEGER PRIMARY KEY,
    request_id TEXT NOT NULL UNIQUE,
    timestamp TEXT NOT NULL,
    ts_us INTEGER NOT NULL,
    model_name TEXT NOT NULL,
    model_version INTEGER NOT NULL,
    model_alias TEXT NOT NULL,
    arm TEXT NOT NULL,
    input_kind TEXT NOT NULL,
    input_digest TEXT NOT NULL,
    pixels BLOB NOT NULL,
    probabilities BLOB NOT NULL,
    predicted_class TEXT NOT NULL,
    confidence REAL NOT NULL,
    latency_ms REAL NOT NULL,
    client_id TEXT NOT NULL,
    photo_flags TEXT NOT NULL,
    route TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS predictions_ts ON predictions (ts_us);
CREATE TABLE IF NOT EXISTS feedback (
    request_id TEXT PRIMARY KEY,
    label INTEGER,
    unknown INTEGER NOT NULL,
    timestamp TEXT NOT NULL,
    ts_us INTEGER NOT NULL,
    prediction_ts_us INTEGER NOT NULL,
    model_name TEXT NOT NULL,
    model_version INTEGER NOT NULL,
    predicted_class TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS feedback_prediction_ts ON feedback (prediction_ts_us);
CREATE TABLE IF NOT EXISTS segment_index (
    request_id TEXT PRIMARY KEY,
    day TEXT NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS segment_index_day ON segment_index (day);
"""

COLUMNS: tuple[str, ...] = (
    "seq",
    "request_id",
    "timestamp",
    "ts_us",
    "model_name",
    "model_version",
    "model_alias",
    "arm",
    "input_kind",
    "input_digest",
    "pixels",
    "probabilities",
    "predicted_class",
    "confidence",
    "latency_ms",
    "client_id",
    "photo_flags",
    "route",
)
"""The ``predictions`` columns in ``SELECT`` order."""

SELECT_COLUMNS = ", ".join(COLUMNS)
ARRAY_COLUMNS: tuple[str, ...] = (
    "seq",
    "request_id",
    "ts",
    "model_version",
    "input_kind",
    "pixels",
    "probabilities",
    "predicted_class",
)
"""The columns :func:`table_to_arrays` reads."""
INSERT_SQL = (
    f"INSERT OR IGNORE INTO predictions ({', '.join(COLUMNS[1:])}) "  # noqa: S608 - constant
    f"VALUES ({', '.join('?' * (len(COLUMNS) - 1))})"
)

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

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_US = timedelta(microseconds=1)
_DAY_US = 86_400_000_000
_CLASS_INDEX = {name: i for i, name in enumerate(CLASS_NAMES)}


def to_us(moment: datetime) -> int:
    """Microseconds since the epoch; a naive ``moment`` is taken as UTC."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return (moment - _EPOCH) // _US


def day_start_us(day: date) -> int:
    """Microseconds since the epoch at 00:00 UTC of ``day``."""
    return (day - _EPOCH.date()).days * _DAY_US


def day_of_us(ts_us: int) -> date:
    """The UTC day holding the instant ``ts_us``."""
    return _EPOCH.date() + timedelta(days=ts_us // _DAY_US)


def timestamp_us(record: PredictionRecord) -> int:
    """The record's ISO 8601 timestamp in microseconds (naive text is taken as UTC)."""
    try:
        return to_us(datetime.fromisoformat(record.timestamp))
    except (TypeError, ValueError) as exc:
        raise MonitoringError(
            f"record {record.request_id!r}: timestamp {record.timestamp!r} is not ISO 8601"
        ) from exc


def pack_probabilities(probabilities: Sequence[float] | bytes) -> bytes:
    """Probabilities as the log stores them: little-endian f64 (bytes pass unchanged)."""
    if isinstance(probabilities, bytes):
        return probabilities
    if isinstance(probabilities, np.ndarray):
        return np.asarray(probabilities, dtype="<f8").tobytes()
    return struct.pack(f"<{len(probabilities)}d", *probabilities)


def make_row(
    *,
    request_id: str,
    timestamp: str,
    ts_us: int,
    model_name: str,
    model_version: int,
    model_alias: str,
    arm: str,
    input_kind: str,
    input_digest: str,
    pixels: bytes,
    probabilities: Sequence[float] | bytes,
    predicted_class: str,
    confidence: float,
    latency_ms: float,
    client_id: str,
    photo_flags: Mapping[str, Any] | str,
    route: str,
) -> tuple[Any, ...]:
    """The values :data:`INSERT_SQL` binds (every column but ``seq``, in column order).

    ``probabilities`` may come packed (:func:`pack_probabilities`) and ``photo_flags`` as JSON
    text (:func:`flags_json`), as the journal reads them."""
    return (
        request_id,
        timestamp,
        ts_us,
        model_name,
        int(model_version),
        model_alias,
        arm,
        input_kind,
        input_digest,
        bytes(pixels),
        pack_probabilities(probabilities),
        predicted_class,
        float(confidence),
        float(latency_ms),
        client_id,
        photo_flags if isinstance(photo_flags, str) else flags_json(photo_flags),
        route,
    )


def to_row(record: PredictionRecord) -> tuple[Any, ...]:
    """The values :data:`INSERT_SQL` binds for ``record`` (every column but ``seq``)."""
    return make_row(
        request_id=record.request_id,
        timestamp=record.timestamp,
        ts_us=timestamp_us(record),
        model_name=record.model_name,
        model_version=record.model_version,
        model_alias=record.model_alias,
        arm=record.arm,
        input_kind=record.input_kind,
        input_digest=record.input_digest,
        pixels=record.pixels,
        probabilities=record.probabilities,
        predicted_class=record.predicted_class,
        confidence=record.confidence,
        latency_ms=record.latency_ms,
        client_id=record.client_id,
        photo_flags=record.photo_flags,
        route=record.route,
    )


def flags_json(flags: Mapping[str, Any]) -> str:
    """Photo-pipeline flags as the log stores them: compact JSON, ``{}`` when empty."""
    return _JSON.encode(dict(flags)) if flags else "{}"


_JSON = json.JSONEncoder(separators=(",", ":"))


KEY_COLUMNS: tuple[str, ...] = ("seq", "request_id", "ts")
"""Columns every window table carries (ordering and de-duplication need them)."""


def sql_columns(names: Sequence[str]) -> str:
    """The ``SELECT`` list of SQLite columns for Arrow column ``names``."""
    return ", ".join("ts_us" if name == "ts" else name for name in names)


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
        (_CLASS_INDEX.get(name, -1) for name in table.column("predicted_class").to_pylist()),
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
