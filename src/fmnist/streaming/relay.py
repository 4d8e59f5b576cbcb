"""The outbox relay: publish what the prediction log holds, in order, at least once.

Cursors (the last published prediction ``seq`` and feedback ``rowid``) live in the log's own
``outbox`` table and move only after the events are published, so a relay killed at any point
publishes again from the last cursor (the event ids are the records' ids: consumers and the
local queue deduplicate). When the sink is down the records simply wait in the log; serving
never notices. Compaction leaves rows the relay has not passed in the live table.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

from fmnist import CLASS_NAMES
from fmnist.streaming.envelope import (
    FEEDBACK_TOPIC,
    FEEDBACK_TYPE,
    PREDICTION_TYPE,
    PREDICTIONS_TOPIC,
    envelope,
)

if TYPE_CHECKING:
    from fmnist.monitoring.prediction_log import PredictionLog
    from fmnist.platform.events import EventBus

logger = logging.getLogger(__name__)

_OUTBOX = """
CREATE TABLE IF NOT EXISTS outbox (
    name TEXT PRIMARY KEY,
    seq INTEGER NOT NULL,
    feedback_rowid INTEGER NOT NULL
)
"""
_PREDICTIONS = (
    "SELECT seq, request_id, timestamp, model_name, model_version, model_alias, arm, "
    "input_kind, predicted_class, confidence, latency_ms, route FROM predictions "
    "WHERE seq > ? ORDER BY seq LIMIT ?"
)
_FEEDBACK = (
    "SELECT rowid, request_id, label, unknown, timestamp, model_name, model_version, "
    "predicted_class FROM feedback WHERE rowid > ? ORDER BY rowid LIMIT ?"
)


@dataclass(frozen=True)
class RelayResult:
    """Events published by one pass, and the cursors after it."""

    predictions: int
    feedback: int
    seq: int
    feedback_rowid: int


def _cursors(log: PredictionLog, name: str) -> tuple[int, int]:
    log.db.write(_OUTBOX)
    rows = log.db.query("SELECT seq, feedback_rowid FROM outbox WHERE name = ?", [name])
    if rows:
        return int(rows[0][0]), int(rows[0][1])
    log.db.write("INSERT OR IGNORE INTO outbox VALUES (?, 0, 0)", [name])
    return 0, 0


def relay_once(
    log: PredictionLog, bus: EventBus, *, name: str = "default", batch: int = 500
) -> RelayResult:
    """Publish every record after the relay's cursors; move each cursor after its batch."""
    seq, rowid = _cursors(log, name)
    published = [0, 0]
    while rows := log.db.query(_PREDICTIONS, [seq, batch]):
        for row in rows:
            data = {
                "request_id": row[1],
                "model_name": row[3],
                "model_version": int(row[4]),
                "model_alias": row[5],
                "arm": row[6],
                "input_kind": row[7],
                "predicted_class": row[8],
                "confidence": float(row[9]),
                "latency_ms": float(row[10]),
                "route": row[11],
            }
            event_id = f"prediction:{row[1]}"
            bus.publish(
                PREDICTIONS_TOPIC,
                envelope(PREDICTION_TYPE, event_id, row[2], data),
                event_id=event_id,
            )
        seq = int(rows[-1][0])
        log.db.write("UPDATE outbox SET seq = ? WHERE name = ?", [seq, name])
        published[0] += len(rows)
    while rows := log.db.query(_FEEDBACK, [rowid, batch]):
        for row in rows:
            data = {
                "request_id": row[1],
                "label": None if row[2] is None else int(row[2]),
                "label_name": None if row[2] is None else CLASS_NAMES[int(row[2])],
                "unknown": bool(row[3]),
                "model_name": row[5],
                "model_version": int(row[6]),
                "predicted_class": row[7],
            }
            event_id = f"feedback:{row[1]}"
            bus.publish(
                FEEDBACK_TOPIC, envelope(FEEDBACK_TYPE, event_id, row[4], data), event_id=event_id
            )
        rowid = int(rows[-1][0])
        log.db.write("UPDATE outbox SET feedback_rowid = ? WHERE name = ?", [rowid, name])
        published[1] += len(rows)
    return RelayResult(published[0], published[1], seq, rowid)
