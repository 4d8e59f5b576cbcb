"""Compaction of closed days into Parquet segments, and retention.

Crash safety of :func:`compact`: a day's rows are written to segments first (each one durable
before the next step) and deleted from SQLite only afterwards. A crash in between leaves rows in
both places; readers return such a row once, and the next compaction writes only the rows its
day's segments lack, then deletes the rest. One compaction runs at a time (a file lock).
Deletes run in small transactions (each also indexes the deleted ids to their day, see
``segment_index``) so that appends never wait long for the write lock.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import pyarrow.compute as pc

from fmnist.monitoring import log_schema as schema
from fmnist.monitoring.errors import MonitoringError
from fmnist.monitoring.log_arrow import rows_to_table

if TYPE_CHECKING:
    from fmnist.monitoring.prediction_log import PredictionLog

DELETE_CHUNK = 2_000
_DAY_US = 86_400_000_000


@dataclass(frozen=True)
class CompactionResult:
    """What one compaction did: the days it closed, rows written to and deleted from SQLite."""

    days: tuple[date, ...]
    rows_written: int
    rows_deleted: int
    segments: tuple[Path, ...]


@dataclass(frozen=True)
class RetentionResult:
    """What retention deleted: live rows, feedback rows and whole day partitions; and the
    inputs it cleared (see :func:`fmnist.monitoring.erasure.clear_images`)."""

    cutoff: date
    rows_deleted: int
    feedback_deleted: int
    partitions_deleted: int
    images_cleared: int = 0
    image_segments_rewritten: int = 0


def _delete_chunked(
    log: PredictionLog, table: str, where: str, params: list[object], key: str = "rowid"
) -> int:
    sql = (
        f"DELETE FROM {table} WHERE {key} IN "  # noqa: S608 - table, key and where are ours  # nosec B608
        f"(SELECT {key} FROM {table} WHERE {where} LIMIT {DELETE_CHUNK})"
    )
    total = 0
    while changed := log.db.write(sql, params):
        total += changed
    return total


def _write_day(log: PredictionLog, day: date, max_seq: int) -> tuple[list[Path], int]:
    """Write the live rows of ``day`` (up to ``max_seq``) that its segments lack."""
    start = schema.day_start_us(day)
    existing = log.segments.ids(day)
    paths: list[Path] = []
    written = 0
    cursor = log.db.cursor(
        f"SELECT {schema.SELECT_COLUMNS} FROM predictions "  # noqa: S608 - constant columns  # nosec B608
        "WHERE ts_us >= ? AND ts_us < ? AND seq <= ? ORDER BY ts_us, seq",
        [start, start + _DAY_US, max_seq],
    )
    try:
        while rows := cursor.fetchmany(log.segment_rows):
            table = rows_to_table(rows)
            if len(existing):
                table = table.filter(pc.invert(pc.is_in(table["request_id"], value_set=existing)))
            if table.num_rows:
                paths.append(log.segments.write_part(day, table))
                written += table.num_rows
    finally:
        cursor.close()
    return paths, written


def delete_compacted(log: PredictionLog, day: date, max_seq: int) -> int:
    """Delete ``day``'s live rows up to ``max_seq`` (all of them are in segments now),
    indexing their ids to ``day`` in the same transactions."""
    start = schema.day_start_us(day)
    select = (
        "SELECT seq, request_id FROM predictions "  # noqa: S608 - a constant limit  # nosec B608
        f"WHERE ts_us >= ? AND ts_us < ? AND seq <= ? LIMIT {DELETE_CHUNK}"
    )
    total = 0
    while True:
        with log.db.transaction() as conn:
            rows = conn.execute(select, [start, start + _DAY_US, max_seq]).fetchall()
            conn.executemany(
                "INSERT OR IGNORE INTO segment_index (request_id, day) VALUES (?, ?)",
                [(request_id, day.isoformat()) for _, request_id in rows],
            )
            conn.executemany("DELETE FROM predictions WHERE seq = ?", [(seq,) for seq, _ in rows])
        if not rows:
            return total
        total += len(rows)


def relayed_up_to(log: PredictionLog) -> int | None:
    """The highest ``seq`` every event relay has published (``outbox`` table), or None when
    no relay has run on this log."""
    if not log.db.query("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'outbox'"):
        return None
    value = log.db.query("SELECT min(seq) FROM outbox")[0][0]
    return None if value is None else int(value)


def compact(log: PredictionLog, before: date) -> CompactionResult:
    """Move every live row dated before ``before`` (UTC) into its day's Parquet segments.

    Rows appended to a closed day meanwhile are picked up by the same call; the result lists
    the segment files written. Rows an event relay has not yet published stay live.
    """
    cutoff = schema.day_start_us(before)
    relayed = relayed_up_to(log)
    days: list[date] = []
    paths: list[Path] = []
    written = deleted = 0
    with log.segments.lock():
        while True:
            oldest = log.db.query("SELECT min(ts_us) FROM predictions WHERE ts_us < ?", [cutoff])
            if oldest[0][0] is None:
                break
            day = schema.day_of_us(int(oldest[0][0]))
            start = schema.day_start_us(day)
            max_seq = int(
                log.db.query(
                    "SELECT max(seq) FROM predictions WHERE ts_us >= ? AND ts_us < ?",
                    [start, start + _DAY_US],
                )[0][0]
            )
            if relayed is not None:  # never compact what the event relay has not published
                max_seq = min(max_seq, relayed)
                pending = log.db.query(
                    "SELECT count(*) FROM predictions WHERE ts_us >= ? AND ts_us < ? AND seq <= ?",
                    [start, start + _DAY_US, max_seq],
                )[0][0]
                if not pending:
                    break
            new_paths, rows = _write_day(log, day, max_seq)
            written += rows
            paths.extend(new_paths)
            removed = delete_compacted(log, day, max_seq)
            if removed == 0:
                raise MonitoringError(f"compaction of {day} deleted no rows; stopping")
            deleted += removed
            if day not in days:
                days.append(day)
    return CompactionResult(tuple(days), written, deleted, tuple(paths))


def apply_retention(
    log: PredictionLog, days: int, *, image_days: int | None = None, today: date | None = None
) -> RetentionResult:
    """Delete predictions (live and compacted) dated more than ``days`` days before ``today``
    (UTC), and the feedback on them; with ``image_days``, also clear the stored inputs of the
    predictions older than that (0: all of them)."""
    if days < 1:
        raise MonitoringError(f"retention days must be at least 1, got {days}")
    if image_days is not None and image_days < 0:
        raise MonitoringError(f"image retention days must be at least 0, got {image_days}")
    today = today or datetime.now(UTC).date()
    cutoff = today - timedelta(days=days)
    cutoff_us = schema.day_start_us(cutoff)
    with log.segments.lock():
        partitions = log.segments.drop_before(cutoff)
    rows = _delete_chunked(log, "predictions", "ts_us < ?", [cutoff_us])
    feedback = _delete_chunked(log, "feedback", "prediction_ts_us < ?", [cutoff_us])
    _delete_chunked(log, "segment_index", "day < ?", [cutoff.isoformat()], key="request_id")
    if image_days is None:
        return RetentionResult(cutoff, rows, feedback, partitions)
    from fmnist.monitoring.erasure import clear_images

    # the same cutoff rule as for records; 0 days clears today's inputs too
    image_cutoff = today - timedelta(days=image_days) if image_days else today + timedelta(days=1)
    images = clear_images(log, image_cutoff)
    return RetentionResult(
        cutoff, rows, feedback, partitions, images.live_rows, images.segments_rewritten
    )
