"""The durable prediction log: SQLite in WAL mode for live rows, Parquet segments for closed days.

:meth:`PredictionLog.append` commits one transaction per call and returns after the commit, so
the record is in the operating system's hands and survives ``kill -9``; ``fsync: full`` adds an
fsync per commit for machine crashes (see :mod:`fmnist.monitoring.log_database`). Reads see the
live rows plus the compacted ones (:mod:`fmnist.monitoring.compaction` moves closed days into
Parquet) and return a row found in both once.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from fmnist.errors import ConfigError
from fmnist.monitoring import log_schema as schema
from fmnist.monitoring.errors import MonitoringError
from fmnist.monitoring.log_database import FsyncPolicy, LogDatabase
from fmnist.monitoring.records import PredictionRecord

if TYPE_CHECKING:
    import pyarrow as pa

    from fmnist.config import Settings
    from fmnist.monitoring.compaction import CompactionResult, RetentionResult
    from fmnist.monitoring.log_arrow import LogArrays
    from fmnist.monitoring.segments import SegmentStore

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
        self.segments_path = Path(segments_path)
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

    @functools.cached_property
    def segments(self) -> SegmentStore:
        """The Parquet segments (pyarrow is imported on first use: appending needs none)."""
        from fmnist.monitoring.segments import SegmentStore

        return SegmentStore(self.segments_path)

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
        rows = self.db.query(
            f"SELECT {', '.join(schema.RECORD_COLUMNS)} FROM predictions "  # noqa: S608  # nosec B608
            "WHERE request_id = ?",
            [request_id],
        )
        if rows:  # a live row: read without pyarrow (the serving-only install has none)
            return schema.record_of_row(rows[0])
        found = self.db.query("SELECT day FROM segment_index WHERE request_id = ?", [request_id])
        if not found:
            return None
        from fmnist.monitoring import log_reads

        return log_reads.compacted(self, found[0][0], request_id)

    def count(self) -> int:
        """The number of records, live and compacted."""
        from fmnist.monitoring import log_reads

        return log_reads.count(self)

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
        from fmnist.monitoring.log_arrow import table_to_records

        table = self.window_table(last, since=since, until=until, model_name=model_name)
        return table_to_records(table)

    def window_arrays(
        self,
        last: int | None = None,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        model_name: str | None = None,
    ) -> LogArrays:
        """:meth:`window` as numpy arrays (pixels, probabilities, classes, times, kinds)."""
        from fmnist.monitoring.log_arrow import table_to_arrays

        table = self.window_table(
            last, since=since, until=until, model_name=model_name, columns=schema.ARRAY_COLUMNS
        )
        return table_to_arrays(table)

    def window_table(
        self,
        last: int | None = None,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        model_name: str | None = None,
        columns: Sequence[str] | None = None,
    ) -> pa.Table:
        """:meth:`window` as an Arrow table of :data:`~fmnist.monitoring.log_arrow.ARROW_SCHEMA`
        (only ``columns`` plus ``seq``, ``request_id`` and ``ts`` when given); see
        :func:`fmnist.monitoring.log_reads.window_table`."""
        from fmnist.monitoring import log_reads

        return log_reads.window_table(
            self, last, since=since, until=until, model_name=model_name, columns=columns
        )

    # -- maintenance ---------------------------------------------------------------------------

    def compact(self, before: date) -> CompactionResult:
        """Move the days before ``before`` (UTC) into Parquet segments; see
        :func:`fmnist.monitoring.compaction.compact`."""
        from fmnist.monitoring.compaction import compact

        return compact(self, before)

    def apply_retention(
        self, days: int, *, image_days: int | None = None, today: date | None = None
    ) -> RetentionResult:
        """Delete predictions and feedback older than ``days`` days (and clear inputs older than
        ``image_days``); see :func:`fmnist.monitoring.compaction.apply_retention`."""
        from fmnist.monitoring.compaction import apply_retention

        return apply_retention(self, days, image_days=image_days, today=today)


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
