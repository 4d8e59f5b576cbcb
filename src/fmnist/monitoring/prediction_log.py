"""The durable prediction log: SQLite in WAL mode for live rows, Parquet segments for closed days.

:meth:`PredictionLog.append` commits one transaction per call and returns after the commit, so
the record is in the operating system's hands and survives ``kill -9``; ``fsync: full`` adds an
fsync per commit for machine crashes (see :mod:`fmnist.monitoring.log_database`). Reads see the
live rows plus the compacted ones (:mod:`fmnist.monitoring.compaction` moves closed days into
Parquet) and return a row found in both once.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds

from fmnist.errors import ConfigError
from fmnist.monitoring import log_schema as schema
from fmnist.monitoring.errors import MonitoringError
from fmnist.monitoring.log_database import FsyncPolicy, LogDatabase
from fmnist.monitoring.log_schema import LogArrays
from fmnist.monitoring.records import PredictionRecord
from fmnist.monitoring.segments import SegmentStore

if TYPE_CHECKING:
    from fmnist.config import Settings
    from fmnist.monitoring.compaction import CompactionResult, RetentionResult

__all__ = ["FsyncPolicy", "PredictionLog", "default_paths", "open_prediction_log"]


class PredictionLog:
    """Append-only log of served predictions (SQLite file ``path``, segments under
    ``segments_path``); safe to share between threads and between processes."""

    def __init__(
        self,
        path: Path,
        segments_path: Path,
        *,
        fsync: FsyncPolicy = "normal",
        busy_timeout_ms: int = 5000,
        segment_rows: int = 100_000,
    ) -> None:
        """Open the log, creating the SQLite file and its tables when missing."""
        self.segments = SegmentStore(Path(segments_path))
        self.segment_rows = segment_rows
        self.db = LogDatabase(
            Path(path),
            schema.DDL,
            schema.SCHEMA_VERSION,
            fsync=fsync,
            busy_timeout_ms=busy_timeout_ms,
        )
        self.path = self.db.path
        self.fsync: FsyncPolicy = fsync

    def close(self) -> None:
        """Close the database connections of this process (used again, it reconnects)."""
        self.db.close()

    # -- writing -------------------------------------------------------------------------------

    def append(self, records: Sequence[PredictionRecord]) -> int:
        """Commit ``records`` in one transaction; return after the commit.

        Returns how many were written: a request id already in the live log is kept as first
        written (a client retrying with the same ``X-Request-ID`` is not logged twice).
        """
        if not records:
            return 0
        return self.db.write_many(schema.INSERT_SQL, [schema.to_row(r) for r in records])

    # -- reading -------------------------------------------------------------------------------

    def get(self, request_id: str) -> PredictionRecord | None:
        """The record of ``request_id``, live or compacted, or None."""
        table = self._live(["request_id = ?"], [request_id], None)
        if table.num_rows == 0:
            found = self.db.query(
                "SELECT day FROM segment_index WHERE request_id = ?", [request_id]
            )
            if not found:
                return None
            where = (pc.field("date") == found[0][0]) & (pc.field("request_id") == request_id)
            table = self.segments.read(where)
        records = schema.table_to_records(table.slice(0, 1))
        return records[0] if records else None

    def count(self) -> int:
        """The number of records, live and compacted."""
        live = int(self.db.query("SELECT count(*) FROM predictions")[0][0])
        return live + self.segments.count() - self._overlap()

    def _overlap(self) -> int:
        """Live rows also in a segment (left by a compaction interrupted before its delete)."""
        days = self.segments.days()
        if not days:
            return 0
        end = schema.day_start_us(days[-1]) + 86_400_000_000
        rows = self.db.query("SELECT request_id FROM predictions WHERE ts_us < ?", [end])
        if not rows:
            return 0
        ids = pa.array([r[0] for r in rows], type=pa.string())
        return self.segments.count(pc.field("request_id").isin(ids))

    def window(
        self,
        last: int | None = None,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        model_name: str | None = None,
    ) -> list[PredictionRecord]:
        """Records with ``since <= timestamp < until`` (UTC; naive means UTC) of ``model_name``,
        the newest ``last`` of them when given, oldest first."""
        table = self.window_table(last, since=since, until=until, model_name=model_name)
        return schema.table_to_records(table)

    def window_arrays(
        self,
        last: int | None = None,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        model_name: str | None = None,
    ) -> LogArrays:
        """:meth:`window` as numpy arrays (pixels, probabilities, classes, times, kinds)."""
        table = self.window_table(
            last, since=since, until=until, model_name=model_name, columns=schema.ARRAY_COLUMNS
        )
        return schema.table_to_arrays(table)

    def window_table(
        self,
        last: int | None = None,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        model_name: str | None = None,
        columns: Sequence[str] | None = None,
    ) -> pa.Table:
        """:meth:`window` as an Arrow table of :data:`~fmnist.monitoring.log_schema.ARROW_SCHEMA`
        (only ``columns`` plus ``seq``, ``request_id`` and ``ts`` when given).

        Live rows are read before segments, so a compaction running meanwhile moves rows into
        what is read next, never out of sight; a row in both is returned once.
        """
        if last is not None and last < 1:
            raise MonitoringError(f"last must be at least 1, got {last}")
        names = list(schema.ARROW_SCHEMA.names)
        if columns is not None:
            unknown = set(columns) - set(names)
            if unknown:
                raise MonitoringError(f"no such log columns: {', '.join(sorted(unknown))}")
            names = [n for n in names if n in columns or n in schema.KEY_COLUMNS]
        since_us = schema.to_us(since) if since is not None else None
        until_us = schema.to_us(until) if until is not None else None
        clauses, params = _sql_filter(since_us, until_us, model_name)
        live = self._live(clauses, params, last, names)
        if last is None:
            stored = self.segments.read(_segment_filter(since_us, until_us, model_name), names)
        elif live.num_rows >= last:  # only segment rows newer than the oldest live one count
            oldest = int(pc.min(live.column("ts").cast(pa.int64())).as_py())
            lower = oldest if since_us is None else max(since_us, oldest)
            stored = self.segments.read(_segment_filter(lower, until_us, model_name), names)
        else:
            stored = self._newest_segments(
                live,
                last,
                _segment_filter(since_us, until_us, model_name),
                since_us,
                until_us,
                names,
            )
        if stored.num_rows:
            duplicate = pc.is_in(live.column("request_id"), value_set=stored.column("request_id"))
            live = live.filter(pc.invert(duplicate))
            table = pa.concat_tables([stored, live])
        else:
            table = live
        table = table.sort_by([("ts", "ascending"), ("seq", "ascending")])
        if last is not None and table.num_rows > last:
            table = table.slice(table.num_rows - last)
        return table.combine_chunks()

    def _newest_segments(
        self,
        live: pa.Table,
        last: int,
        where: ds.Expression | None,
        since_us: int | None,
        until_us: int | None,
        names: list[str],
    ) -> pa.Table:
        """Segment rows matching ``where``, newest day first, until the ``last`` newest rows of
        segments and ``live`` (all live rows of the window) are certainly among them."""
        first = schema.day_of_us(since_us) if since_us is not None else None
        final = schema.day_of_us(until_us) if until_us is not None else None
        days = [
            d
            for d in self.segments.days()
            if (first is None or d >= first) and (final is None or d <= final)
        ]
        live_ts = live.column("ts").cast(pa.int64()).to_numpy()
        live_ids = live.column("request_id")
        parts: list[pa.Table] = []
        distinct = 0
        for day in reversed(days):
            in_day = pc.field("date") == day.isoformat()
            part = self.segments.read(in_day if where is None else in_day & where, names)
            parts.append(part)
            duplicates = pc.sum(pc.is_in(part["request_id"], value_set=live_ids)).as_py() or 0
            distinct += part.num_rows - int(duplicates)
            newer_live = int((live_ts >= schema.day_start_us(day)).sum())
            if distinct + newer_live >= last:
                break
        if not parts:
            return pa.schema([schema.ARROW_SCHEMA.field(n) for n in names]).empty_table()
        return pa.concat_tables(parts)

    def _live(
        self,
        clauses: list[str],
        params: list[Any],
        last: int | None,
        names: Sequence[str] = schema.ARROW_SCHEMA.names,
    ) -> pa.Table:
        where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
        limit = f" LIMIT {int(last)}" if last is not None else ""
        sql = (
            f"SELECT {schema.sql_columns(names)} FROM predictions{where} "  # noqa: S608  # nosec B608
            f"ORDER BY ts_us DESC, seq DESC{limit}"
        )
        rows = self.db.query(sql, params)
        rows.reverse()
        return schema.rows_to_table(rows, names)

    # -- maintenance ---------------------------------------------------------------------------

    def compact(self, before: date) -> CompactionResult:
        """Move the days before ``before`` (UTC) into Parquet segments; see
        :func:`fmnist.monitoring.compaction.compact`."""
        from fmnist.monitoring.compaction import compact

        return compact(self, before)

    def apply_retention(self, days: int, *, today: date | None = None) -> RetentionResult:
        """Delete predictions and feedback older than ``days`` days; see
        :func:`fmnist.monitoring.compaction.apply_retention`."""
        from fmnist.monitoring.compaction import apply_retention

        return apply_retention(self, days, today=today)


def _sql_filter(
    since_us: int | None, until_us: int | None, model_name: str | None
) -> tuple[list[str], list[Any]]:
    clauses: list[str] = []
    params: list[Any] = []
    if since_us is not None:
        clauses.append("ts_us >= ?")
        params.append(since_us)
    if until_us is not None:
        clauses.append("ts_us < ?")
        params.append(until_us)
    if model_name is not None:
        clauses.append("model_name = ?")
        params.append(model_name)
    return clauses, params


def _segment_filter(
    since_us: int | None, until_us: int | None, model_name: str | None
) -> ds.Expression | None:
    """The same window over segments; the ``date`` terms prune partitions before reading."""
    terms: list[ds.Expression] = []
    if since_us is not None:
        terms.append(pc.field("date") >= schema.day_of_us(since_us).isoformat())
        terms.append(pc.field("ts") >= pa.scalar(since_us, type=schema.TS_TYPE))
    if until_us is not None:
        terms.append(pc.field("date") <= schema.day_of_us(until_us).isoformat())
        terms.append(pc.field("ts") < pa.scalar(until_us, type=schema.TS_TYPE))
    if model_name is not None:
        terms.append(pc.field("model_name") == model_name)
    if not terms:
        return None
    expression = terms[0]
    for term in terms[1:]:
        expression = expression & term
    return expression


def default_paths(settings: Settings) -> tuple[Path, Path]:
    """The SQLite file and the segment root the settings give (see ``MonitoringSettings``)."""
    config = settings.monitoring
    db = config.log_path or settings.home / "monitoring" / "predictions.db"
    if config.segments_path is not None:
        return db, config.segments_path
    try:
        lake: str | None = settings.resolved_lake_url
    except ConfigError:  # a remote profile without its location: fall back to home
        lake = None
    if lake is not None and lake.startswith("file://"):
        lake = lake.removeprefix("file://")
    if lake is not None and "://" not in lake:
        return db, Path(lake) / "monitoring" / "predictions"
    return db, settings.home / "monitoring" / "predictions"


def open_prediction_log(settings: Settings, *, create: bool = True) -> PredictionLog:
    """The prediction log the settings describe (``monitoring.*``).

    With ``create=False`` a missing log file raises :class:`MonitoringError` instead of being
    created (commands that only read use it). The API's journals are replayed into it first
    (:func:`~fmnist.monitoring.journal.replay_journals`), so every acknowledged record is there.
    """
    db, segments = default_paths(settings)
    if not create and not db.exists():
        raise MonitoringError(f"no prediction log at {db} (set monitoring.log_path or FMNIST_HOME)")
    from fmnist.monitoring.journal import replay_journals

    config = settings.monitoring
    log = PredictionLog(
        db,
        segments,
        fsync=config.fsync,
        busy_timeout_ms=config.busy_timeout_ms,
        segment_rows=config.compaction_segment_rows,
    )
    replay_journals(log)
    return log
