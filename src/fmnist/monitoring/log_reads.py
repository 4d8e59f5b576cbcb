"""Reading the prediction log: windows over live rows (SQLite) and Parquet segments (pyarrow).

The functions behind :meth:`PredictionLog.get`, :meth:`~PredictionLog.count` and
:meth:`~PredictionLog.window_table`; a separate module so that writing the log needs no pyarrow.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds

from fmnist.monitoring import log_arrow as arrow
from fmnist.monitoring import log_schema as schema
from fmnist.monitoring.errors import MonitoringError
from fmnist.monitoring.records import PredictionRecord

if TYPE_CHECKING:
    from fmnist.monitoring.prediction_log import PredictionLog


def compacted(log: PredictionLog, day: str, request_id: str) -> PredictionRecord | None:
    """The record of ``request_id`` from the Parquet partition of ``day``, or None."""
    where = (pc.field("date") == day) & (pc.field("request_id") == request_id)
    table = log.segments.read(where)
    records = arrow.table_to_records(table.slice(0, 1))
    return records[0] if records else None


def count(log: PredictionLog) -> int:
    """The number of records, live and compacted."""
    live = int(log.db.query("SELECT count(*) FROM predictions")[0][0])
    return live + log.segments.count() - _overlap(log)


def _overlap(log: PredictionLog) -> int:
    """Live rows also in a segment (left by a compaction interrupted before its delete)."""
    days = log.segments.days()
    if not days:
        return 0
    end = schema.day_start_us(days[-1]) + 86_400_000_000
    rows = log.db.query("SELECT request_id FROM predictions WHERE ts_us < ?", [end])
    if not rows:
        return 0
    ids = pa.array([r[0] for r in rows], type=pa.string())
    return log.segments.count(pc.field("request_id").isin(ids))


def window_table(
    log: PredictionLog,
    last: int | None = None,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    model_name: str | None = None,
    columns: Sequence[str] | None = None,
) -> pa.Table:
    """Records with ``since <= timestamp < until`` of ``model_name`` (the newest ``last`` when
    given, oldest first) as an Arrow table of :data:`~fmnist.monitoring.log_arrow.ARROW_SCHEMA`
    (only ``columns`` plus ``seq``, ``request_id`` and ``ts`` when given).

    Live rows are read before segments, so a compaction running meanwhile moves rows into
    what is read next, never out of sight; a row in both is returned once.
    """
    if last is not None and last < 1:
        raise MonitoringError(f"last must be at least 1, got {last}")
    names = list(arrow.ARROW_SCHEMA.names)
    if columns is not None:
        unknown = set(columns) - set(names)
        if unknown:
            raise MonitoringError(f"no such log columns: {', '.join(sorted(unknown))}")
        names = [n for n in names if n in columns or n in schema.KEY_COLUMNS]
    since_us = schema.to_us(since) if since is not None else None
    until_us = schema.to_us(until) if until is not None else None
    clauses, params = _sql_filter(since_us, until_us, model_name)
    live = live_table(log, clauses, params, last, names)
    if last is None:
        stored = log.segments.read(_segment_filter(since_us, until_us, model_name), names)
    elif live.num_rows >= last:  # only segment rows newer than the oldest live one count
        oldest = int(pc.min(live.column("ts").cast(pa.int64())).as_py())
        lower = oldest if since_us is None else max(since_us, oldest)
        stored = log.segments.read(_segment_filter(lower, until_us, model_name), names)
    else:
        stored = _newest_segments(
            log,
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
    log: PredictionLog,
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
        for d in log.segments.days()
        if (first is None or d >= first) and (final is None or d <= final)
    ]
    live_ts = live.column("ts").cast(pa.int64()).to_numpy()
    live_ids = live.column("request_id")
    parts: list[pa.Table] = []
    distinct = 0
    for day in reversed(days):
        in_day = pc.field("date") == day.isoformat()
        part = log.segments.read(in_day if where is None else in_day & where, names)
        parts.append(part)
        duplicates = pc.sum(pc.is_in(part["request_id"], value_set=live_ids)).as_py() or 0
        distinct += part.num_rows - int(duplicates)
        newer_live = int((live_ts >= schema.day_start_us(day)).sum())
        if distinct + newer_live >= last:
            break
    if not parts:
        return pa.schema([arrow.ARROW_SCHEMA.field(n) for n in names]).empty_table()
    return pa.concat_tables(parts)


def live_table(
    log: PredictionLog,
    clauses: list[str],
    params: list[Any],
    last: int | None,
    names: Sequence[str] = arrow.ARROW_SCHEMA.names,
) -> pa.Table:
    """Live (SQLite) rows matching ``clauses``, the newest ``last`` when given, oldest first."""
    where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
    limit = f" LIMIT {int(last)}" if last is not None else ""
    sql = (
        f"SELECT {schema.sql_columns(names)} FROM predictions{where} "  # noqa: S608  # nosec B608
        f"ORDER BY ts_us DESC, seq DESC{limit}"
    )
    rows = log.db.query(sql, params)
    rows.reverse()
    return arrow.rows_to_table(rows, names)


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
        terms.append(pc.field("ts") >= pa.scalar(since_us, type=arrow.TS_TYPE))
    if until_us is not None:
        terms.append(pc.field("date") <= schema.day_of_us(until_us).isoformat())
        terms.append(pc.field("ts") < pa.scalar(until_us, type=arrow.TS_TYPE))
    if model_name is not None:
        terms.append(pc.field("model_name") == model_name)
    if not terms:
        return None
    expression = terms[0]
    for term in terms[1:]:
        expression = expression & term
    return expression
