"""The SQLite engine under the prediction log and the feedback store (WAL mode).

Writes go through one connection per process, serialised by a thread lock and, across
processes, by ``flock`` on ``<file>.writelock``: a waiting writer is woken the moment the lock
is free instead of sleeping in SQLite's busy handler (which sleeps 1, 2, 5, ... ms between
tries; with two server processes that put p95 of an append at 3.5 ms instead of 0.2 ms). Other
SQLite clients still wait up to ``busy_timeout_ms`` for the database's own lock. Reads use one
connection per thread, so a long read never holds up an append.

``fsync`` sets SQLite's ``synchronous``. In WAL mode a commit is written to the operating system
before it returns under every policy, so it survives ``kill -9``; ``full`` also fsyncs the WAL on
every commit (it survives a machine crash); ``normal`` syncs at checkpoints only (a machine crash
may lose the last commits, never corrupts the file); ``off`` never syncs.
"""

from __future__ import annotations

import fcntl
import os
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal

from fmnist.monitoring.errors import MonitoringError

FsyncPolicy = Literal["off", "normal", "full"]
SYNCHRONOUS: dict[str, str] = {"off": "OFF", "normal": "NORMAL", "full": "FULL"}


CACHE_KIB = 64 * 1024
"""SQLite page cache per connection, in KiB."""


class LogDatabase:
    """One SQLite file in WAL mode, shared by threads and processes; see the module docstring."""

    def __init__(
        self,
        path: Path,
        ddl: str,
        schema_version: int,
        *,
        fsync: FsyncPolicy = "normal",
        busy_timeout_ms: int = 5000,
    ) -> None:
        """Open ``path`` (creating it), and run ``ddl`` when its ``user_version`` is older than
        ``schema_version``."""
        if fsync not in SYNCHRONOUS:
            raise MonitoringError(f"fsync must be off, normal or full, got {fsync!r}")
        self.path = Path(path)
        self.fsync: FsyncPolicy = fsync
        self._busy_timeout_ms = busy_timeout_ms
        self._write_lock = threading.Lock()
        self._writer_conn: sqlite3.Connection | None = None
        self._writer_pid = -1
        self._lock_fd = -1
        self._local = threading.local()
        self._opened: list[tuple[int, sqlite3.Connection]] = []
        self._opened_lock = threading.Lock()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._exclusive() as conn:
            if conn.execute("PRAGMA user_version").fetchone()[0] < schema_version:
                conn.executescript(ddl)
                conn.execute(f"PRAGMA user_version = {int(schema_version)}")

    @property
    def busy_timeout_ms(self) -> int:
        """How long a write waits for another SQLite client's lock, in milliseconds."""
        return self._busy_timeout_ms

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(
            self.path,
            timeout=self._busy_timeout_ms / 1000,
            isolation_level=None,
            check_same_thread=False,
            cached_statements=32,
        )
        conn.execute(f"PRAGMA busy_timeout = {int(self._busy_timeout_ms)}")
        if conn.execute("PRAGMA journal_mode = WAL").fetchone()[0].lower() != "wal":
            raise MonitoringError(f"{self.path}: SQLite cannot use WAL mode on this file")
        conn.execute(f"PRAGMA synchronous = {SYNCHRONOUS[self.fsync]}")
        # A day of traffic is hundreds of thousands of rows before compaction: keep the
        # request-id index in memory (the default 2 MB cache made each insert read pages).
        conn.execute(f"PRAGMA cache_size = -{CACHE_KIB}")
        with self._opened_lock:
            self._opened.append((os.getpid(), conn))
        return conn

    @contextmanager
    def _exclusive(self) -> Iterator[sqlite3.Connection]:
        """The process's write connection, held against this process's other threads and
        against other processes using this class; reopened after a fork."""
        with self._write_lock:
            fresh = self._writer_conn is None or self._writer_pid != os.getpid()
            if fresh:
                self._lock_fd = os.open(f"{self.path}.writelock", os.O_RDWR | os.O_CREAT, 0o644)
            # Locked before connecting: a new file's switch to WAL mode must not race another
            # process doing the same.
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX)
            if fresh:
                try:
                    self._writer_conn = self._connect()
                except BaseException:
                    fcntl.flock(self._lock_fd, fcntl.LOCK_UN)
                    raise
                self._writer_pid = os.getpid()
            assert self._writer_conn is not None
            try:
                yield self._writer_conn
            finally:
                fcntl.flock(self._lock_fd, fcntl.LOCK_UN)

    def _reader(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None or getattr(self._local, "pid", None) != os.getpid():
            conn = self._connect()
            conn.execute("PRAGMA query_only = 1")
            self._local.conn, self._local.pid = conn, os.getpid()
        return conn

    def write(self, sql: str, params: Sequence[Any] = ()) -> int:
        """Run one write statement, committed on return; return the rows it changed."""
        with self._exclusive() as conn:
            return conn.execute(sql, params).rowcount

    def write_many(self, sql: str, rows: Sequence[Sequence[Any]]) -> int:
        """Run ``sql`` for every row in one transaction, committed on return; return the rows
        changed (a single row takes one call into SQLite, without BEGIN/COMMIT)."""
        if len(rows) == 1:
            return self.write(sql, rows[0])
        with self.transaction() as conn:
            return conn.executemany(sql, rows).rowcount

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """The write connection inside ``BEGIN IMMEDIATE`` ... ``COMMIT`` (rolled back on error);
        keep the block short, appends wait for it."""
        with self._exclusive() as conn:
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Rows of one read-only statement (this thread's read connection)."""
        return self._reader().execute(sql, params).fetchall()

    def cursor(self, sql: str, params: Sequence[Any] = ()) -> sqlite3.Cursor:
        """An open cursor over a read-only statement, for reading in batches (close it)."""
        return self._reader().execute(sql, params)

    def close(self) -> None:
        """Close the connections opened in this process (used again, it reconnects);
        connections inherited over a fork are left alone, as SQLite requires."""
        pid = os.getpid()
        with self._write_lock, self._opened_lock:
            for owner, conn in self._opened:
                if owner == pid:
                    conn.close()
            self._opened.clear()
            if self._writer_conn is not None and self._writer_pid == pid:
                os.close(self._lock_fd)
            self._writer_conn = None
            self._local = threading.local()
