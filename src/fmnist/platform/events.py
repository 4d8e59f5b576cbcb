"""The events port: durable topics of prediction, feedback, drift and retraining events.

Adapters: :class:`LocalEventQueue`, a SQLite file in WAL mode (``local`` and ``agnostic`` on one
machine: a published event survives ``kill -9`` once :meth:`publish` returns), and Pub/Sub
(``gcp``). Consumers read with a named subscription and acknowledge what they processed;
unacknowledged events are delivered again (at-least-once), as on Pub/Sub.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol


@dataclass(frozen=True)
class Event:
    """One delivered event."""

    event_id: str
    topic: str
    published_at: str
    payload: Mapping[str, Any]


class EventBus(Protocol):
    """What producers and consumers need from an event stream."""

    def publish(
        self, topic: str, payload: Mapping[str, Any], *, event_id: str | None = None
    ) -> str:
        """Publish durably; returns the event id (``event_id`` when given: publishing the same
        id again is allowed, consumers deduplicate by it)."""
        ...

    def pull(self, topic: str, subscription: str, max_events: int = 100) -> list[Event]:
        """Events of ``topic`` not yet acknowledged by ``subscription``, oldest first."""
        ...

    def ack(self, subscription: str, event_ids: Sequence[str]) -> None:
        """Mark events as processed by ``subscription``."""
        ...


_SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id TEXT NOT NULL UNIQUE,
    topic TEXT NOT NULL,
    published_at TEXT NOT NULL,
    payload TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS events_topic ON events (topic, seq);
CREATE TABLE IF NOT EXISTS acks (
    subscription TEXT NOT NULL,
    event_id TEXT NOT NULL,
    PRIMARY KEY (subscription, event_id)
);
"""


class LocalEventQueue:
    """:class:`EventBus` on a SQLite file (WAL, ``synchronous=NORMAL``): safe across threads and
    processes on one machine."""

    def __init__(self, path: Path) -> None:
        """Open (or create) the queue file at ``path``."""
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        with self._connection() as db:
            db.executescript(_SCHEMA)

    def _connection(self) -> sqlite3.Connection:
        db: sqlite3.Connection | None = getattr(self._local, "db", None)
        if db is None:
            db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            self._local.db = db
        return db

    def publish(
        self, topic: str, payload: Mapping[str, Any], *, event_id: str | None = None
    ) -> str:
        """Append one event; it is on disk (in the WAL) when this returns. An ``event_id``
        already in the queue is not stored twice."""
        event_id = event_id or uuid.uuid4().hex
        self._connection().execute(
            "INSERT OR IGNORE INTO events (event_id, topic, published_at, payload) "
            "VALUES (?, ?, ?, ?)",
            (event_id, topic, datetime.now(UTC).isoformat(), json.dumps(dict(payload))),
        )
        return event_id

    def pull(self, topic: str, subscription: str, max_events: int = 100) -> list[Event]:
        """Unacknowledged events of ``topic`` for ``subscription``, oldest first."""
        rows = (
            self._connection()
            .execute(
                "SELECT e.event_id, e.topic, e.published_at, e.payload FROM events e "
                "WHERE e.topic = ? AND NOT EXISTS (SELECT 1 FROM acks a "
                "WHERE a.subscription = ? AND a.event_id = e.event_id) ORDER BY e.seq LIMIT ?",
                (topic, subscription, max_events),
            )
            .fetchall()
        )
        return [Event(r[0], r[1], r[2], json.loads(r[3])) for r in rows]

    def ack(self, subscription: str, event_ids: Sequence[str]) -> None:
        """Record that ``subscription`` processed ``event_ids`` (idempotent)."""
        self._connection().executemany(
            "INSERT OR IGNORE INTO acks (subscription, event_id) VALUES (?, ?)",
            [(subscription, event_id) for event_id in event_ids],
        )
