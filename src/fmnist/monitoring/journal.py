"""The online API's write path: an append-only journal in front of the prediction log.

Serving a request must cost little, and its record must be safe before the response goes out.
:meth:`PredictionJournal.append` encodes the request's rows (the exact values the log's table
takes) as JSON lines and hands them to the operating system with one ``write`` on a file opened
with ``O_APPEND``: from then on they survive ``kill -9`` of the process (``monitoring.fsync:
full`` adds an fsync for machine crashes). A thread of the same process moves new lines into the
SQLite log every ``flush_interval_s`` in one transaction (``INSERT OR IGNORE``, so replaying a
line twice is harmless) and starts a new journal file once everything in a large one is in.

Every reader that opens the log replays the journals first (:func:`replay_journals`): the lines
of a process that died before its thread moved them are inserted then, and its file removed; the
files of live processes are read, not removed. A journal line that a crash cut short is ignored:
its request never got an answer.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import threading
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fmnist.monitoring import log_schema as schema

if TYPE_CHECKING:
    from fmnist.monitoring.prediction_log import PredictionLog
    from fmnist.monitoring.records import PredictionRecord

logger = logging.getLogger(__name__)

SUFFIX = ".jsonl"


def journal_dir(log: PredictionLog) -> Path:
    """Where the journals of ``log`` live: ``<log file>.journal/``."""
    return log.path.parent / f"{log.path.name}.journal"


def _encode(row: tuple[Any, ...]) -> bytes:
    values = [
        {"b": base64.b64encode(v).decode("ascii")} if isinstance(v, bytes) else v for v in row
    ]
    return json.dumps(values, separators=(",", ":")).encode() + b"\n"


def _decode(line: bytes) -> tuple[Any, ...]:
    values = json.loads(line)
    return tuple(base64.b64decode(v["b"]) if isinstance(v, dict) else v for v in values)


def _rows(data: bytes) -> tuple[list[tuple[Any, ...]], int]:
    """The complete lines of ``data`` as rows, and how many bytes they took."""
    end = data.rfind(b"\n") + 1
    rows = []
    for line in data[:end].splitlines():
        try:
            rows.append(_decode(line))
        except (ValueError, KeyError, TypeError):  # a line a crash cut short, then more lines
            logger.warning("skipping an unreadable prediction journal line")
    return rows, end


def _owner_alive(path: Path) -> bool:
    pid_text = path.name.split("-", 1)[0]
    if not pid_text.isdigit():
        return False
    try:
        os.kill(int(pid_text), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def replay_journals(log: PredictionLog) -> int:
    """Insert every journal line into ``log`` (idempotent); remove the journals of processes
    that are gone. Returns the rows newly inserted."""
    folder = journal_dir(log)
    if not folder.is_dir():
        return 0
    inserted = 0
    for path in sorted(folder.glob(f"*{SUFFIX}")):
        alive = _owner_alive(path)
        try:
            data = path.read_bytes()
        except FileNotFoundError:  # its owner rotated or closed it meanwhile
            continue
        rows, _ = _rows(data)
        if rows:
            inserted += log.db.write_many(schema.INSERT_SQL, rows)
        if not alive:
            path.unlink(missing_ok=True)
    return inserted


class PredictionJournal:
    """The journal of one process (see the module docstring)."""

    def __init__(
        self,
        log: PredictionLog,
        *,
        flush_interval_s: float = 0.2,
        rotate_bytes: int = 8 * 1024 * 1024,
    ) -> None:
        """Open a new journal file for ``log``; nothing is moved until :meth:`start`."""
        self.log = log
        self.flush_interval_s = flush_interval_s
        self.rotate_bytes = rotate_bytes
        self.sync = log.fsync == "full"
        self.folder = journal_dir(log)
        self.folder.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()  # the file descriptor and the write position
        self._flush_lock = threading.Lock()  # one mover at a time
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._fd: int | None = None
        self.path: Path | None = None
        self._written = 0
        self._moved = 0

    def _open(self) -> int:
        """A new journal file (called with ``_lock`` held)."""
        self.path = self.folder / f"{os.getpid()}-{uuid.uuid4().hex[:12]}{SUFFIX}"
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        self._written = 0
        self._moved = 0
        return self._fd

    def append(self, records: Sequence[PredictionRecord]) -> None:
        """Hand ``records`` to the operating system (one ``write``); return after it."""
        data = b"".join(_encode(schema.to_row(r)) for r in records)
        with self._lock:
            fd = self._fd if self._fd is not None else self._open()
            view = memoryview(data)
            while view:
                done = os.write(fd, view)
                view = view[done:]
            if self.sync:
                os.fsync(fd)
            self._written += len(data)

    def flush(self) -> int:
        """Move the lines not yet in the log into it (one transaction); returns the rows."""
        with self._flush_lock:
            with self._lock:
                path, start, end = self.path, self._moved, self._written
            if path is None or end <= start:
                return 0
            with path.open("rb") as handle:
                handle.seek(start)
                data = handle.read(end - start)
            rows, used = _rows(data)
            if rows:
                self.log.db.write_many(schema.INSERT_SQL, rows)
            with self._lock:
                if path == self.path:
                    self._moved = start + used
                    if self._moved == self._written and self._written >= self.rotate_bytes:
                        self._rotate()
            return len(rows)

    def _rotate(self) -> None:
        """Drop the file, fully in the log; the next append opens a new one (``_lock`` held)."""
        if self._fd is not None:
            os.close(self._fd)
        if self.path is not None:
            self.path.unlink(missing_ok=True)
        self._fd, self.path = None, None

    def start(self) -> None:
        """Start the thread that moves lines into the log (again after :meth:`close`)."""
        if self._thread is not None and self._thread.is_alive():
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="fmnist-journal", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.flush_interval_s):
            try:
                self.flush()
            except Exception:  # the lines stay in the journal: the next flush or reader retries
                logger.exception("moving prediction journal lines into the log failed")

    def close(self) -> None:
        """Move what is left, stop the thread and remove the (fully moved) journal file."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None
        self.flush()
        with self._lock:
            if self._moved == self._written:
                self._rotate()  # a later append (a second lifespan) opens a new file
