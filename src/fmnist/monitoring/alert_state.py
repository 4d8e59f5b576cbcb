"""The persisted state of the alerts: a small JSON file, rewritten atomically under a file lock.

One entry per deduplication key remembers whether the alert is firing, since when, when it was
last delivered and whether a delivery is still owed (a webhook that failed after its retries), so
a restarted monitor neither re-sends what it delivered nor forgets what it owes.
"""

from __future__ import annotations

import fcntl
import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from fmnist.atomic import atomic_write_text

logger = logging.getLogger(__name__)

AlertState = Literal["firing", "resolved"]
STATE_FORMAT = 1
STATE_FILE = "state.json"


def default_state_path(home: Path) -> Path:
    """``<home>/monitoring/alerts/state.json``."""
    return home / "monitoring" / "alerts" / STATE_FILE


@dataclass
class AlertEntry:
    """What is remembered about one alert (times are ISO 8601, UTC)."""

    alert: str
    state: AlertState
    since: str
    last_sent: str | None = None
    pending: bool = False

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> AlertEntry:
        """Read an entry written by :meth:`to_json`."""
        return cls(
            alert=str(data["alert"]),
            state="firing" if data["state"] == "firing" else "resolved",
            since=str(data["since"]),
            last_sent=data.get("last_sent"),
            pending=bool(data.get("pending", False)),
        )

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready copy."""
        return asdict(self)


def _read(path: Path) -> dict[str, AlertEntry]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    try:
        data = json.loads(text)
        return {key: AlertEntry.from_json(v) for key, v in data["alerts"].items()}
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        # Atomic writes make this unlikely; keep the evidence and start over rather than stop.
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        aside = path.with_name(f"{path.name}.corrupt-{stamp}")
        path.replace(aside)
        logger.error("alert state %s is unreadable (%s); moved to %s", path, exc, aside)
        return {}


def _write(path: Path, entries: dict[str, AlertEntry]) -> None:
    data = {
        "format": STATE_FORMAT,
        "alerts": {key: entry.to_json() for key, entry in sorted(entries.items())},
    }
    atomic_write_text(path, json.dumps(data, indent=2, sort_keys=True) + "\n")


@contextmanager
def locked_state(path: Path) -> Iterator[dict[str, AlertEntry]]:
    """The entries of ``path`` for a read-modify-write: changes are saved when the block exits.

    An exclusive lock on a sibling ``.lock`` file serialises monitors sharing one state file.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.with_name(f"{path.name}.lock").open("a+b") as lock:
        fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
        try:
            entries = _read(path)
            before = {key: entry.to_json() for key, entry in entries.items()}
            yield entries
            if {key: entry.to_json() for key, entry in entries.items()} != before:
                _write(path, entries)
        finally:
            fcntl.flock(lock.fileno(), fcntl.LOCK_UN)


def read_state(path: Path) -> dict[str, AlertEntry]:
    """The entries of ``path`` (empty when it does not exist yet)."""
    with locked_state(path) as entries:
        return dict(entries)
