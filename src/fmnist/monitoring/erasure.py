"""Erasing personal data from the prediction log: one client's records, and old inputs.

:func:`purge_clients` deletes every record of a client (live rows, compacted rows and the
feedback on them); :func:`clear_images` empties the stored 28x28 inputs older than the image
retention, keeping the predictions themselves (their classes, probabilities and feedback still
count for quality and drift-of-output analyses; input drift and retraining skip records without
an input).

Crash safety: SQLite changes are transactions; a Parquet segment is rewritten whole to a synced
temporary file renamed over the old one, so each file is either before or after. A purge
deletes the feedback and index rows first and the segment rows last, so running it again after
a crash finishes the job. Both hold the compaction lock, so no compaction runs meanwhile. A purge
also leaves a tombstone per client (``purged_clients``): records of the client dated before
the purge that are still in a server's journal are dropped when the journal is replayed, so
they cannot come back; the client's later predictions are logged as usual.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from fmnist.monitoring import log_schema as schema
from fmnist.monitoring.log_arrow import ARROW_SCHEMA
from fmnist.monitoring.segments import write_parquet_atomic

if TYPE_CHECKING:
    from fmnist.monitoring.prediction_log import PredictionLog

_CHUNK = 500
_CLEAR_LIVE_SQL = (
    "UPDATE predictions SET pixels = X'' WHERE rowid IN "
    "(SELECT rowid FROM predictions WHERE ts_us < ? AND length(pixels) > 0 LIMIT 2000)"
)
_IMAGES_CLEARED = ".images-cleared"
"""Marker file of a day partition whose inputs were cleared (hidden from readers); only parts
newer than it are looked at again."""


@dataclass(frozen=True)
class PurgeResult:
    """What a purge found (and, unless it was a dry run, deleted)."""

    live_rows: int
    compacted_rows: int
    feedback_rows: int
    segments_rewritten: int
    dry_run: bool

    @property
    def records(self) -> int:
        """Predictions of the client, live and compacted."""
        return self.live_rows + self.compacted_rows


@dataclass(frozen=True)
class ImageClearing:
    """What :func:`clear_images` emptied: live rows and segment files."""

    cutoff: date
    live_rows: int
    segments_rewritten: int


def _chunks(values: Sequence[str]) -> Iterator[Sequence[str]]:
    for start in range(0, len(values), _CHUNK):
        yield values[start : start + _CHUNK]


def _marks(count: int) -> str:
    return ", ".join("?" * count)


def _part_files(log: PredictionLog, days: Sequence[date]) -> Iterator[Path]:
    for day in days:
        yield from sorted(log.segments.partition(day).glob("part-*.parquet"))


def _rewrite(path: Path, transform: Callable[[pa.Table], pa.Table | None]) -> bool:
    """Apply ``transform`` to the segment at ``path``; None means "unchanged". An empty result
    deletes the file. Returns whether the file changed."""
    table = pq.read_table(path, schema=ARROW_SCHEMA)
    changed = transform(table)
    if changed is None:
        return False
    if changed.num_rows == 0:
        path.unlink()
    else:
        write_parquet_atomic(changed, path)
    return True


def _compacted_ids(log: PredictionLog, client_hashes: Sequence[str]) -> list[str]:
    where = pc.field("client_id").isin(list(client_hashes))
    return [str(v) for v in log.segments.read(where, ["request_id"]).column("request_id")]


def _delete_ids(log: PredictionLog, table: str, key: str, ids: Sequence[str]) -> int:
    deleted = 0
    for chunk in _chunks(ids):
        deleted += log.db.write(
            f"DELETE FROM {table} WHERE {key} IN ({_marks(len(chunk))})",  # noqa: S608  # nosec B608 - table, key and placeholders are ours
            list(chunk),
        )
    return deleted


def purge_clients(
    log: PredictionLog, client_hashes: Sequence[str], *, dry_run: bool = False
) -> PurgeResult:
    """Delete every record whose stored client id is one of ``client_hashes`` (see
    :class:`~fmnist.monitoring.client_ids.ClientIdHasher`), with the feedback on it."""
    hashes = [h for h in dict.fromkeys(client_hashes) if h]
    if not hashes:
        return PurgeResult(0, 0, 0, 0, dry_run)
    with log.segments.lock():
        live = [
            str(row[0])
            for row in log.db.query(
                f"SELECT request_id FROM predictions WHERE client_id IN ({_marks(len(hashes))})",  # noqa: S608  # nosec B608 - placeholders only
                hashes,
            )
        ]
        compacted = _compacted_ids(log, hashes)
        ids = [*live, *compacted]
        if dry_run:
            feedback = sum(
                int(
                    log.db.query(
                        f"SELECT count(*) FROM feedback WHERE request_id IN ({_marks(len(c))})",  # noqa: S608  # nosec B608 - placeholders only
                        list(c),
                    )[0][0]
                )
                for c in _chunks(ids)
            )
            return PurgeResult(len(live), len(compacted), feedback, 0, True)
        # first the tombstones: a journal replay cannot bring the deleted records back
        now_us = time.time_ns() // 1000
        log.db.write_many(
            "INSERT OR REPLACE INTO purged_clients (client_id, purged_us) VALUES (?, ?)",
            [(h, now_us) for h in hashes],
        )
        feedback = _delete_ids(log, "feedback", "request_id", ids)
        _delete_ids(log, "segment_index", "request_id", compacted)
        _delete_ids(log, "predictions", "request_id", live)
        rewritten = 0
        if compacted:
            wanted = pa.array(hashes, pa.string())

            def without_client(table: pa.Table) -> pa.Table | None:
                hit = pc.is_in(table.column("client_id"), value_set=wanted)
                if not pc.any(hit).as_py():
                    return None
                return table.filter(pc.invert(hit))

            rewritten = sum(
                _rewrite(path, without_client) for path in _part_files(log, log.segments.days())
            )
    return PurgeResult(len(live), len(compacted), feedback, rewritten, False)


def clear_images(log: PredictionLog, cutoff: date) -> ImageClearing:
    """Empty the stored inputs of predictions dated before ``cutoff`` (UTC)."""
    cutoff_us = schema.day_start_us(cutoff)
    live = 0
    while changed := log.db.write(_CLEAR_LIVE_SQL, [cutoff_us]):
        live += changed
    rewritten = 0
    with log.segments.lock():
        for day in (d for d in log.segments.days() if d < cutoff):
            marker = log.segments.partition(day) / _IMAGES_CLEARED
            # parts written since the last clearing (a late compaction) are the only ones left
            since = marker.stat().st_mtime_ns if marker.exists() else -1
            rewritten += sum(
                _rewrite(path, _without_pixels)
                for path in _part_files(log, [day])
                if path.stat().st_mtime_ns >= since
            )
            marker.touch()
    return ImageClearing(cutoff, live, rewritten)


def _without_pixels(table: pa.Table) -> pa.Table | None:
    column = table.column("pixels")
    if table.num_rows == 0 or not pc.max(pc.binary_length(column)).as_py():
        return None
    empty = pa.array([b""] * table.num_rows, pa.binary())
    return table.set_column(table.schema.get_field_index("pixels"), "pixels", empty)
