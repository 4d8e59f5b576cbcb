"""The journal mover process: ``python -m fmnist.monitoring.journal_mover --db LOG ...``.

Started by :class:`~fmnist.monitoring.journal.PredictionJournal` on its first append (one per
server process). Every ``--interval`` seconds it moves new journal frames into the SQLite log
(:class:`~fmnist.monitoring.journal.JournalMover`). Only the holder of the folder's mover lock
moves; the others wait as standbys and take over when it goes. It makes a last pass and exits
on SIGTERM (its server's shutdown), or when the process that started it (``--parent``) is gone.
"""

from __future__ import annotations

import argparse
import fcntl
import logging
import os
import signal
import threading
from pathlib import Path
from types import FrameType

from fmnist.monitoring import log_schema as schema
from fmnist.monitoring.journal import MOVER_LOCK, JournalMover, journal_dir, process_alive
from fmnist.monitoring.log_database import SYNCHRONOUS, FsyncPolicy, LogDatabase

logger = logging.getLogger("fmnist.monitoring.journal_mover")


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
    try:
        while True:
            finishing = stop.is_set() or (parent_pid is not None and not process_alive(parent_pid))
            active = active or _try_lock(lock_fd)
            if active:
                try:
                    moved += mover.move()
                except Exception:  # the frames stay in the journal: the next pass retries
                    logger.exception("moving prediction journal frames into the log failed")
            if finishing:
                return moved
            stop.wait(interval_s)
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
