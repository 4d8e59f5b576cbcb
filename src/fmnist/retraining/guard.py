"""Storm protection: one retrain at a time (a file lock) and a cooldown between retrains.

The state of the last retrain lives in ``<home>/retraining/state.json`` (written atomically);
the lock is an exclusive ``flock`` on ``<home>/retraining/retrain.lock``, released by the
kernel when its holder dies, so a killed retrain never blocks the next one.
"""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fmnist.atomic import atomic_write_bytes


@dataclass(frozen=True)
class RetrainState:
    """What the last retrain was and where the feedback it used ended."""

    started_at: str | None = None
    finished_at: str | None = None
    trigger: str | None = None
    outcome: str | None = None
    version: int | None = None
    feedback_seen: int = 0
    """Labelled feedback rows when the last retrain started (the feedback trigger counts on)."""
    window_end: str | None = None
    """The end of the last retrain's log window (a manual retrain starts from it)."""

    def seconds_since_start(self, now: datetime) -> float | None:
        """Seconds since the last retrain started, or None when there was none."""
        if self.started_at is None:
            return None
        return (now - datetime.fromisoformat(self.started_at)).total_seconds()


def retraining_dir(home: Path) -> Path:
    """The folder of the retraining state and lock."""
    return home / "retraining"


def read_state(home: Path) -> RetrainState:
    """The last retrain's state (an empty one before the first retrain)."""
    try:
        payload: dict[str, Any] = json.loads((retraining_dir(home) / "state.json").read_bytes())
    except FileNotFoundError:
        return RetrainState()
    known = RetrainState.__dataclass_fields__
    return RetrainState(**{k: v for k, v in payload.items() if k in known})


def write_state(home: Path, state: RetrainState) -> None:
    """Persist ``state`` atomically."""
    path = retraining_dir(home) / "state.json"
    atomic_write_bytes(path, json.dumps(asdict(state), indent=2).encode())


class RetrainBusyError(RuntimeError):
    """Another retrain holds the lock."""


@contextmanager
def retrain_lock(home: Path) -> Iterator[None]:
    """Hold the retrain lock for the block; :class:`RetrainBusyError` when it is taken."""
    path = retraining_dir(home) / "retrain.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise RetrainBusyError("another retrain is running") from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()} {datetime.now(UTC).isoformat()}\n".encode())
        yield
    finally:
        os.close(fd)
