"""The online API's write path: an append-only journal in front of the prediction log.

Serving a request must cost little, and its record must be safe before the response goes out.
The API encodes each prediction as one binary frame (:mod:`fmnist.monitoring.journal_frames`)
and :meth:`PredictionJournal.write` hands a request's frames to the operating system with one
``write`` on a file opened with ``O_APPEND``: from then on they survive ``kill -9`` of the
process (``monitoring.fsync: full`` adds an fsync for machine crashes).

A separate **mover process** (:mod:`fmnist.monitoring.journal_mover`, started by the journal
on its first write) moves new frames into the SQLite log every ``move_interval_s`` in one
transaction per file (``INSERT OR IGNORE``, so replaying a frame twice is harmless) and removes
journal files that are fully moved and finished. It is a process, not a thread, on purpose: a
thread of the server would compete with the event loop for the GIL on every SQLite step (a
convoy that cost about a tenth of the server's throughput on two cores). One mover per journal
folder is active at a time (a ``flock``); the movers of the other server workers wait as
standbys.

Every reader that opens the log replays the journals first (:func:`replay_journals`), so a
record acknowledged by a process that died before its frames were moved is found all the same.
A frame that a crash cut short is ignored: its request never got an answer.

A write that fails (a full disk, an I/O error) raises :class:`JournalWriteError`. When part of
it reached the file, the file is closed right away: its torn last frame ends it, and the mover
reports that tail and skips it once the whole frames before it are moved (with a batch, those
may include predictions of the failed request: a record without an answer, never an answer
without a record). The next write opens a new file, so appends resume once space is back.
:attr:`PredictionJournal.failing` says whether the last write failed, and
:meth:`PredictionJournal.probe` checks whether one would go through now (the readiness probe's
question while no prediction arrives to try).
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from fmnist.monitoring import log_schema as schema
from fmnist.monitoring.errors import MonitoringError
from fmnist.monitoring.journal_frames import frame_of_row, read_frames

if TYPE_CHECKING:
    from fmnist.monitoring.log_database import LogDatabase
    from fmnist.monitoring.prediction_log import PredictionLog
    from fmnist.monitoring.records import PredictionRecord

logger = logging.getLogger(__name__)

SUFFIX = ".jnl"
CLOSED_SUFFIX = ".closed.jnl"
"""A journal file its process has closed: nothing more will be written to it."""
MOVER_LOCK = ".mover.lock"
"""The file whose ``flock`` the active mover of a journal folder holds."""
PROBE_BYTES = 4096
"""What :meth:`PredictionJournal.probe` writes: one page, as a journal write may need."""


class JournalWriteError(MonitoringError):
    """Frames could not all be handed to the operating system (a full disk, an I/O error)."""

    def __init__(self, error: OSError) -> None:
        """Wrap the operating system's ``error`` (its message has no path)."""
        super().__init__(f"the prediction journal could not be written: {error.strerror or error}")
        self.errno = error.errno


def journal_dir(log_path: Path) -> Path:
    """Where the journals of the log at ``log_path`` live: ``<log file>.journal/``."""
    return log_path.parent / f"{log_path.name}.journal"


def owner_pid(path: Path) -> int | None:
    """The process id a journal file's name starts with (``<pid>-<time ns>-<token>.jsonl``)."""
    pid_text = path.name.split("-", 1)[0]
    return int(pid_text) if pid_text.isdigit() else None


def process_alive(pid: int | None) -> bool:
    """Whether process ``pid`` exists (None: no)."""
    if pid is None:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class JournalMover:
    """Moves the frames of every journal file in ``folder`` into ``db``, remembering how far it
    has read each file, and removes the files that are done: fully moved and either closed by
    their journal (``*.closed.jsonl``) or left by a process that is gone."""

    def __init__(self, db: LogDatabase, folder: Path) -> None:
        """Move from the journals in ``folder`` into ``db`` (nothing is read until
        :meth:`move`)."""
        self.db = db
        self.folder = folder
        self._offsets: dict[Path, int] = {}

    def move(self) -> int:
        """One pass over the folder; returns the rows newly inserted."""
        if not self.folder.is_dir():
            return 0
        paths = sorted(self.folder.glob(f"*{SUFFIX}"))
        inserted = 0
        for path in paths:
            inserted += self._move_file(path, finished=path.name.endswith(CLOSED_SUFFIX))
        for gone in set(self._offsets) - set(paths):
            del self._offsets[gone]
        return inserted

    def _move_file(self, path: Path, *, finished: bool) -> int:
        start = self._offsets.get(path, 0)
        try:
            with path.open("rb") as handle:
                handle.seek(start)
                data = handle.read()
        except FileNotFoundError:  # another mover or reader removed it meanwhile
            self._offsets.pop(path, None)
            return 0
        rows, used, broken = read_frames(data)
        if broken:
            logger.warning(
                "%s: unreadable bytes at offset %d: the rest is skipped", path, start + used
            )
            used = len(data)
        elif finished and used < len(data):  # nothing more will come: a torn last frame
            logger.warning(
                "%s: a partial frame of %d bytes at offset %d (a write that failed) is skipped",
                path,
                len(data) - used,
                start + used,
            )
            used = len(data)
        inserted = self.db.write_many(schema.INSERT_SQL, rows) if rows else 0
        self._offsets[path] = start + used
        dead = not process_alive(owner_pid(path))
        if dead or (finished and used == len(data)):
            path.unlink(missing_ok=True)
            self._offsets.pop(path, None)
        return inserted


def replay_journals(log: PredictionLog) -> int:
    """Insert every journal frame into ``log`` (idempotent) and remove the journal files that
    are done; returns the rows newly inserted. Readers call it before they read."""
    return JournalMover(log.db, journal_dir(log.path)).move()


class PredictionJournal:
    """The journal of one process (see the module docstring)."""

    def __init__(
        self,
        log: PredictionLog,
        *,
        move_interval_s: float = 0.2,
        rotate_bytes: int = 8 * 1024 * 1024,
        start_mover: bool = True,
    ) -> None:
        """Journal for ``log``; the first :meth:`append` opens the file and, with
        ``start_mover``, starts the mover process."""
        self.log = log
        self.move_interval_s = move_interval_s
        self.rotate_bytes = rotate_bytes
        self.start_mover = start_mover
        self.sync = log.fsync == "full"
        self.folder = journal_dir(log.path)
        self._lock = threading.Lock()  # the file descriptor, the write position, the mover
        self._fd: int | None = None
        self.path: Path | None = None
        self._written = 0
        self._mover: subprocess.Popen[bytes] | None = None
        self.failing = False
        """Whether the last write (or probe) failed."""

    def _open(self) -> int:
        """A new journal file (called with ``_lock`` held)."""
        self.folder.mkdir(parents=True, exist_ok=True)
        name = f"{os.getpid()}-{time.time_ns():020d}-{uuid.uuid4().hex[:8]}{SUFFIX}"
        self.path = self.folder / name
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        self._written = 0
        return self._fd

    def append(self, records: Sequence[PredictionRecord]) -> None:
        """Hand ``records`` to the operating system (one ``write``); return after it."""
        self.write(b"".join([frame_of_row(schema.to_row(r)) for r in records]))

    def write(self, frames: bytes) -> None:
        """Hand encoded frames (:func:`~fmnist.monitoring.journal_frames.encode_frame`) to the
        operating system with one ``write``; return after it (the API's write path).

        Raises :class:`JournalWriteError` when they could not all be written (see the module
        docstring); the next call tries again.
        """
        with self._lock:
            try:
                if self._fd is None or self._written >= self.rotate_bytes:
                    self._close_file()
                    self._open()
                    if self.start_mover and self._mover is None:
                        self._mover = self._spawn_mover()
                self._append(frames)
            except OSError as exc:
                self.failing = True
                raise JournalWriteError(exc) from exc
            self.failing = False

    def probe(self) -> bool:
        """Whether a write would go through now: ``True`` while the last one did; else a page
        written to (and removed from) a probe file beside the journal decides, and clears
        :attr:`failing` when it goes through."""
        if not self.failing:
            return True
        probe = self.folder / f".probe-{os.getpid()}"
        with self._lock:
            try:
                fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
                try:
                    if os.write(fd, b"\0" * PROBE_BYTES) < PROBE_BYTES:
                        raise OSError(errno.ENOSPC, "short write")
                    if self.sync:
                        os.fsync(fd)
                finally:
                    os.close(fd)
            except OSError as exc:
                logger.debug("journal probe failed: %s", exc)
                return False
            finally:
                with contextlib.suppress(OSError):
                    probe.unlink()
            self.failing = False
            return True

    def _append(self, frames: bytes) -> None:
        """Write ``frames`` at the end of the open file (``_lock`` held). A failure after part
        of them was written closes the file, so its torn last frame ends it (readers skip
        that) and nothing is appended after it; the :class:`OSError` is raised."""
        fd = self._fd
        assert fd is not None
        view = memoryview(frames)
        try:
            while view:
                done = os.write(fd, view)
                view = view[done:]
                self._written += done
            if self.sync:
                os.fsync(fd)
        except OSError:
            if 0 < len(view) < len(frames):
                self._close_file()
            raise

    def _spawn_mover(self) -> subprocess.Popen[bytes]:
        db = self.log.db
        command = [
            sys.executable,
            "-m",
            "fmnist.monitoring.journal_mover",
            "--db",
            str(db.path),
            "--fsync",
            db.fsync,
            "--busy-timeout-ms",
            str(db.busy_timeout_ms),
            "--interval",
            str(self.move_interval_s),
            "--parent",
            str(os.getpid()),
        ]
        return subprocess.Popen(command, stdin=subprocess.DEVNULL, close_fds=True)

    def _close_file(self) -> None:
        """Close the current file and mark it finished (``*.closed.jsonl``): the mover removes
        it once moved (``_lock`` held)."""
        if self._fd is not None:
            with contextlib.suppress(OSError):  # e.g. a delayed write error: nothing to redo
                os.close(self._fd)
        self._fd = None
        if self.path is not None:
            closed = self.path.with_name(self.path.name.removesuffix(SUFFIX) + CLOSED_SUFFIX)
            try:
                self.path.rename(closed)
            except FileNotFoundError:  # a reader removed it: nothing to do
                pass
            except OSError as exc:  # left as it is: movers finish it once this process is gone
                logger.warning("%s could not be marked closed: %s", self.path, exc)
        self.path = None

    def close(self, timeout_s: float = 10.0) -> None:
        """Close the file and stop the mover after its last pass (frames it could not move
        stay in the journal for the next mover or reader)."""
        with self._lock:
            self._close_file()
            mover, self._mover = self._mover, None
        if mover is None:
            return
        mover.send_signal(signal.SIGTERM)
        try:
            mover.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            logger.warning("the journal mover did not stop within %.0f s: killed", timeout_s)
            mover.kill()
            mover.wait()
        if mover.returncode != 0:  # stopped before its last pass (e.g. still starting): do it
            JournalMover(self.log.db, self.folder).move()
