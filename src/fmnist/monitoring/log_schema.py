"""The prediction log's storage layout: SQLite tables and rows (Arrow/Parquet: :mod:`.log_arrow`).

A record lives in SQLite (table ``predictions``) until its day is compacted into Parquet; both
hold the same columns, and ``segment_index`` maps each compacted request id to its day, so a
lookup by id reads one partition (and an unknown id none). ``purged_clients`` remembers each
purged client (:mod:`.erasure`) and a trigger drops any of its records dated before the purge
that a journal replay would bring back. Times are UTC: SQLite keeps
microseconds since the epoch (``ts_us``) for range queries beside the producer's ISO 8601 text
(``timestamp``, returned unchanged); Parquet keeps a ``ts`` timestamp column. Probabilities
are little-endian float64 blobs in SQLite and ``list<double>`` in Arrow.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any

import numpy as np

from fmnist import CLASS_NAMES
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
CREATE TABLE IF NOT EXISTS purged_clients (
    client_id TEXT PRIMARY KEY,
    purged_us INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TRIGGER IF NOT EXISTS purged_stay_purged BEFORE INSERT ON predictions
WHEN NEW.client_id != '' AND EXISTS (
    SELECT 1 FROM purged_clients p WHERE p.client_id = NEW.client_id AND NEW.ts_us <= p.purged_us
)
BEGIN SELECT RAISE(IGNORE); END;
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

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_US = timedelta(microseconds=1)
_DAY_US = 86_400_000_000
CLASS_INDEX = {name: i for i, name in enumerate(CLASS_NAMES)}


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


RECORD_COLUMNS: tuple[str, ...] = tuple(c for c in COLUMNS if c not in ("seq", "ts_us"))
"""The columns :func:`record_of_row` reads, in ``SELECT`` order."""


def record_of_row(row: Sequence[Any]) -> PredictionRecord:
    """The record of a SQLite row selected as :data:`RECORD_COLUMNS` (no pyarrow needed)."""
    values = dict(zip(RECORD_COLUMNS, row, strict=True))
    blob = values["probabilities"]
    values["probabilities"] = struct.unpack(f"<{len(blob) // 8}d", blob)
    values["photo_flags"] = json.loads(values["photo_flags"])
    return PredictionRecord(**values)


def flags_json(flags: Mapping[str, Any]) -> str:
    """Photo-pipeline flags as the log stores them: compact JSON, ``{}`` when empty."""
    return _JSON.encode(dict(flags)) if flags else "{}"


_JSON = json.JSONEncoder(separators=(",", ":"))


KEY_COLUMNS: tuple[str, ...] = ("seq", "request_id", "ts")
"""Columns every window table carries (ordering and de-duplication need them)."""


def sql_columns(names: Sequence[str]) -> str:
    """The ``SELECT`` list of SQLite columns for Arrow column ``names``."""
    return ", ".join("ts_us" if name == "ts" else name for name in names)
