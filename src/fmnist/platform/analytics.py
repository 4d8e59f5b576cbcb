"""The analytics port: SQL over the prediction log, feedback, KPIs and features.

Queries are written once in BigQuery's dialect. Adapters: :class:`DuckDbAnalytics` (``local``,
``agnostic``: a DuckDB file whose tables are views over Parquet in the lake; sqlglot translates
each query to DuckDB's dialect) and BigQuery (``gcp``), which runs the same text unchanged.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol, TypeVar

T = TypeVar("T")

BIGQUERY_TO_DUCKDB = {
    "STRING": "VARCHAR",
    "INTEGER": "BIGINT",
    "INT64": "BIGINT",
    "FLOAT": "DOUBLE",
    "FLOAT64": "DOUBLE",
    "BOOLEAN": "BOOLEAN",
    "TIMESTAMP": "TIMESTAMPTZ",
    "DATE": "DATE",
}
"""Column types of the BigQuery JSON schemas and their DuckDB names."""


class Analytics(Protocol):
    """What dashboards, the monitor and the rollout readout need from an analytics store."""

    def register_parquet(self, table: str, url_glob: str) -> None:
        """Expose Parquet files matching ``url_glob`` as table ``table``."""
        ...

    def query(self, sql: str, parameters: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
        """Run ``sql`` (BigQuery dialect, ``@name`` parameters); rows as dicts."""
        ...

    def ensure_table(self, table: str, schema: Sequence[Mapping[str, str]], key: str) -> None:
        """Create ``table`` from a BigQuery JSON schema if it does not exist; ``key`` is the
        column that makes a row unique (the deduplication key of :meth:`insert_rows`)."""
        ...

    def insert_rows(self, table: str, rows: Sequence[Mapping[str, Any]]) -> int:
        """Insert ``rows``, skipping those whose key is already there; returns rows added."""
        ...


def to_duckdb(sql: str) -> str:
    """``sql`` in BigQuery's dialect rewritten for DuckDB (``@name`` becomes ``$name``)."""
    import sqlglot

    return str(sqlglot.transpile(sql, read="bigquery", write="duckdb")[0])


class DuckDbAnalytics:
    """:class:`Analytics` on an embedded DuckDB database file (no server)."""

    LOCK_WAIT_S = 30.0
    """How long an operation waits for another process's hold on the file."""

    def __init__(self, path: Path) -> None:
        """Use (or create) the database at ``path``. Each operation opens the file and closes
        it again, so a consumer writing and a person querying take turns instead of one
        process locking the others out."""
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._lock = threading.Lock()

    def _run(self, work: Callable[[Any], T]) -> T:
        import duckdb

        deadline = time.monotonic() + self.LOCK_WAIT_S
        with self._lock:
            while True:
                try:
                    db = duckdb.connect(str(self.path))
                except duckdb.IOException:  # another process holds the file: take turns
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.05)
                    continue
                try:
                    return work(db)
                finally:
                    db.close()

    def register_parquet(self, table: str, url_glob: str) -> None:
        """``CREATE OR REPLACE VIEW table AS`` the Parquet files matching ``url_glob``."""
        _identifier(table)
        quoted = url_glob.replace("'", "''")
        self._run(
            lambda db: db.execute(
                f"CREATE OR REPLACE VIEW {table} AS "  # noqa: S608 - identifier checked above  # nosec B608
                f"SELECT * FROM read_parquet('{quoted}', hive_partitioning = true, "
                "union_by_name = true)"
            )
        )

    def query(self, sql: str, parameters: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
        """Translate ``sql`` from BigQuery's dialect and run it."""

        def work(db: Any) -> list[dict[str, Any]]:
            cursor = db.execute(to_duckdb(sql), dict(parameters or {}))
            columns = [d[0] for d in cursor.description or []]
            return [dict(zip(columns, row, strict=True)) for row in cursor.fetchall()]

        return self._run(work)

    def ensure_table(self, table: str, schema: Sequence[Mapping[str, str]], key: str) -> None:
        """``CREATE TABLE IF NOT EXISTS`` from the BigQuery JSON schema, ``key`` unique."""
        columns = []
        for field in schema:
            name = _identifier(field["name"])
            kind = BIGQUERY_TO_DUCKDB[field["type"].upper()]
            required = " NOT NULL" if field.get("mode", "NULLABLE").upper() == "REQUIRED" else ""
            primary = " PRIMARY KEY" if name == key else ""
            columns.append(f"{name} {kind}{required}{primary}")
        ddl = f"CREATE TABLE IF NOT EXISTS {_identifier(table)} ({', '.join(columns)})"
        self._run(lambda db: db.execute(ddl))

    def insert_rows(self, table: str, rows: Sequence[Mapping[str, Any]]) -> int:
        """``INSERT OR IGNORE`` the rows (in one transaction); returns how many were new."""
        if not rows:
            return 0
        names = [_identifier(n) for n in rows[0]]
        sql = (
            f"INSERT OR IGNORE INTO {_identifier(table)} ({', '.join(names)}) "  # noqa: S608
            f"VALUES ({', '.join('?' * len(names))})"
        )

        def work(db: Any) -> int:
            before = db.execute(f"SELECT count(*) FROM {table}").fetchone()[0]  # noqa: S608  # nosec B608
            db.execute("BEGIN")
            db.executemany(sql, [[row[n] for n in names] for row in rows])
            db.execute("COMMIT")
            after = db.execute(f"SELECT count(*) FROM {table}").fetchone()[0]  # noqa: S608  # nosec B608
            return int(after - before)

        return self._run(work)


def _identifier(name: str) -> str:
    if not name.isidentifier():
        raise ValueError(f"invalid identifier {name!r}")
    return name
