"""The analytics port: SQL over the prediction log, feedback, KPIs and features.

Queries are written once in BigQuery's dialect. Adapters: :class:`DuckDbAnalytics` (``local``,
``agnostic``: a DuckDB file whose tables are views over Parquet in the lake; sqlglot translates
each query to DuckDB's dialect) and BigQuery (``gcp``), which runs the same text unchanged.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol


class Analytics(Protocol):
    """What dashboards, the monitor and the rollout readout need from an analytics store."""

    def register_parquet(self, table: str, url_glob: str) -> None:
        """Expose Parquet files matching ``url_glob`` as table ``table``."""
        ...

    def query(self, sql: str, parameters: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
        """Run ``sql`` (BigQuery dialect, ``@name`` parameters); rows as dicts."""
        ...


def to_duckdb(sql: str) -> str:
    """``sql`` in BigQuery's dialect rewritten for DuckDB (``@name`` becomes ``$name``)."""
    import sqlglot

    return str(sqlglot.transpile(sql, read="bigquery", write="duckdb")[0])


class DuckDbAnalytics:
    """:class:`Analytics` on an embedded DuckDB database file (no server)."""

    def __init__(self, path: Path) -> None:
        """Open (or create) the database at ``path``."""
        import duckdb

        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._db = duckdb.connect(str(path))
        self._lock = threading.Lock()

    def register_parquet(self, table: str, url_glob: str) -> None:
        """``CREATE OR REPLACE VIEW table AS`` the Parquet files matching ``url_glob``."""
        if not table.isidentifier():
            raise ValueError(f"invalid table name {table!r}")
        quoted = url_glob.replace("'", "''")
        with self._lock:
            self._db.execute(
                f"CREATE OR REPLACE VIEW {table} AS "  # noqa: S608 - identifier checked above
                f"SELECT * FROM read_parquet('{quoted}', hive_partitioning = true, "
                "union_by_name = true)"
            )

    def query(self, sql: str, parameters: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
        """Translate ``sql`` from BigQuery's dialect and run it."""
        with self._lock:
            cursor = self._db.execute(to_duckdb(sql), dict(parameters or {}))
            columns = [d[0] for d in cursor.description or []]
            return [dict(zip(columns, row, strict=True)) for row in cursor.fetchall()]
