"""Export of the prediction log (``fmnist monitor export``): JSON Lines or a Parquet file.

Every line (or row) carries ``request_id``, ``timestamp`` (ISO 8601 UTC, as logged),
``model_name``, ``model_version``, ``model_alias``, ``arm``, ``input_kind``, ``input_digest``,
``predicted_class``, ``probabilities``, ``confidence``, ``latency_ms``, ``client_id``,
``photo_flags`` and ``route``; ``pixels`` (784 bytes, base64 in JSON) only when asked for.
Rows are oldest first and include compacted days.
"""

from __future__ import annotations

import base64
import json
import os
from datetime import datetime
from pathlib import Path
from typing import Literal, TextIO

import pyarrow as pa

from fmnist.monitoring.prediction_log import PredictionLog
from fmnist.monitoring.segments import write_parquet_atomic

ExportFormat = Literal["jsonl", "parquet"]
FORMATS: tuple[ExportFormat, ...] = ("jsonl", "parquet")
EXPORT_FIELDS: tuple[str, ...] = (
    "request_id",
    "timestamp",
    "model_name",
    "model_version",
    "model_alias",
    "arm",
    "input_kind",
    "input_digest",
    "predicted_class",
    "probabilities",
    "confidence",
    "latency_ms",
    "client_id",
    "photo_flags",
    "route",
)


def export_table(
    log: PredictionLog,
    *,
    since: datetime | None = None,
    last: int | None = None,
    with_pixels: bool = False,
) -> pa.Table:
    """The exported columns of the window (``since``, newest ``last``), oldest first."""
    columns = [*EXPORT_FIELDS, *(["pixels"] if with_pixels else [])]
    return log.window_table(last, since=since, columns=columns).select(columns)


def write_jsonl(table: pa.Table, out: TextIO) -> int:
    """Write ``table`` (from :func:`export_table`) to ``out``, one JSON object per line."""
    for batch in table.to_batches(max_chunksize=4096):
        lines = []
        for row in batch.to_pylist():
            row["photo_flags"] = json.loads(row["photo_flags"])
            if "pixels" in row:
                row["pixels"] = base64.b64encode(row["pixels"]).decode("ascii")
            lines.append(json.dumps(row, separators=(",", ":")))
        if lines:
            out.write("\n".join(lines) + "\n")
    return int(table.num_rows)


def export_jsonl(
    log: PredictionLog,
    out: TextIO,
    *,
    since: datetime | None = None,
    last: int | None = None,
    with_pixels: bool = False,
) -> int:
    """Write the window to ``out`` as JSON Lines; return the number of records."""
    return write_jsonl(export_table(log, since=since, last=last, with_pixels=with_pixels), out)


def export_file(
    log: PredictionLog,
    path: Path,
    fmt: ExportFormat,
    *,
    since: datetime | None = None,
    last: int | None = None,
    with_pixels: bool = False,
) -> int:
    """Write the window to ``path`` atomically (a crash leaves the old file or none)."""
    table = export_table(log, since=since, last=last, with_pixels=with_pixels)
    if fmt == "parquet":
        write_parquet_atomic(table, path)
        return int(table.num_rows)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with tmp.open("w", encoding="utf-8") as handle:
            count = write_jsonl(table, handle)
            handle.flush()
            os.fsync(handle.fileno())
        tmp.replace(path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return count
