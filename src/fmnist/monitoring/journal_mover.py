"""The journal mover process: ``python -m fmnist.monitoring.journal_mover --db LOG ...``.

Started by :class:`~fmnist.monitoring.journal.PredictionJournal` on its first append (one per
server process). Every ``--interval`` seconds it moves new journal frames into the SQLite log
(:class:`~fmnist.monitoring.journal.JournalMover`). Only the holder of the folder's mover lock
moves; the others wait as standbys and take over when it goes. It makes a last pass and exits
on SIGTERM (its server's shutdown), or when the process that started it (``--parent``) is gone.

A pass that fails (the log's disk is full or read-only, its file is locked) leaves the frames in
the journal; the mover retries with a growing pause (up to :data:`MAX_RETRY_DELAY_S`) and logs
the first failure with its traceback, then one line per :data:`REPORT_INTERVAL_S` with the
count, then the recovery: a broken log does not flood the server's log five times a second.
"""

from __future__ import annotations

import argparse
import fcntl
import logging
import os
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

from fmnist.monitoring import log_schema as schema
from fmnist.monitoring.journal import MOVER_LOCK, JournalMover, journal_dir, process_alive
from fmnist.monitoring.log_database import SYNCHRONOUS, FsyncPolicy, LogDatabase

logger = logging.getLogger("fmnist.monitoring.journal_mover")

MAX_RETRY_DELAY_S = 5.0
"""The longest pause between passes while they fail."""
REPORT_INTERVAL_S = 60.0
"""While passes keep failing, one log line per this many seconds."""


@dataclass
class FailedPasses:
    """Backoff and log throttling for passes that fail."""

    interval_s: float
    clock: Callable[[], float] = time.monotonic
    count: int = 0
    _next_report: float = field(default=float("-inf"), repr=False)
    _unreported: int = field(default=0, repr=False)

    def failed(self, error: Exception) -> None:
        """Count a failed pass; log it now and then (the first with its traceback)."""
        self.count += 1
        self._unreported += 1
        now = self.clock()
        if now < self._next_report:
            return
        self._next_report = now + REPORT_INTERVAL_S
        if self.count == 1:
            logger.error(
                "moving prediction journal frames into the log failed (the frames stay in "
                "the journal; retrying)",
                exc_info=error,
            )
        else:
            logger.error(
                "moving prediction journal frames into the log still fails: %s (%d failed "
                "passes since the last report, %d in all)",
                error,
                self._unreported,
                self.count,
            )
        self._unreported = 0

    def succeeded(self) -> None:
        """A pass went through: log the recovery after failures, reset."""
        if self.count:
            logger.warning(
                "moving prediction journal frames resumed after %d failed passes", self.count
            )
        self.count, self._unreported, self._next_report = 0, 0, float("-inf")

    def delay(self) -> float:
        """The pause before the next pass: the interval, doubled per failure, capped."""
        if not self.count:
            return self.interval_s
        return min(MAX_RETRY_DELAY_S, self.interval_s * 2.0 ** min(self.count, 30))


def _try_lock(fd: int) -> bool:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def run(
    db_path: Path,
    *,
    fsync: FsyncPolicy = "normal",
    busy_timeout_ms: int = 5000,
    interval_s: float = 0.2,
    parent_pid: int | None = None,
    stop: threading.Event | None = None,
) -> int:
    """Move journal frames into the log at ``db_path`` until ``stop`` is set or ``parent_pid``
    is gone, then make a last pass; returns the rows moved."""
    stop = stop or threading.Event()
    db = LogDatabase(
        db_path, schema.DDL, schema.SCHEMA_VERSION, fsync=fsync, busy_timeout_ms=busy_timeout_ms
    )
    folder = journal_dir(db.path)
    folder.mkdir(parents=True, exist_ok=True)
    mover = JournalMover(db, folder)
    lock_fd = os.open(folder / MOVER_LOCK, os.O_RDWR | os.O_CREAT, 0o644)
    active, moved = False, 0
    failures = FailedPasses(interval_s)
    try:
        while True:
            finishing = stop.is_set() or (parent_pid is not None and not process_alive(parent_pid))
            active = active or _try_lock(lock_fd)
            if active:
                try:
                    moved += mover.move()
                except Exception as exc:  # the frames stay in the journal: the next pass retries
                    failures.failed(exc)
                else:
                    failures.succeeded()
            if finishing:
                return moved
            stop.wait(failures.delay())
    finally:
        os.close(lock_fd)  # releases the lock: a standby takes over
        db.close()


def main(argv: list[str] | None = None) -> int:
    """Parse the arguments, stop on SIGTERM, run the mover."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", type=Path, required=True, help="the prediction log's SQLite file")
    parser.add_argument("--fsync", choices=sorted(SYNCHRONOUS), default="normal")
    parser.add_argument("--busy-timeout-ms", type=int, default=5000)
    parser.add_argument("--interval", type=float, default=0.2, help="seconds between passes")
    parser.add_argument("--parent", type=int, default=None, help="exit when this pid is gone")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    stop = threading.Event()

    def request_stop(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, request_stop)
    # Ctrl-C in a terminal reaches the whole process group: the server stops this process
    # itself (SIGTERM) once its last request is journalled.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    run(
        args.db,
        fsync=args.fsync,
        busy_timeout_ms=args.busy_timeout_ms,
        interval_s=args.interval,
        parent_pid=args.parent,
        stop=stop,
    )
    return 0


if __name__ == "__main__":  # pragma: no cover - the process entry point
    raise SystemExit(main())
