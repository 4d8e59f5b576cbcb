"""The analytics consumer: events into the analytics tables, idempotently, at least once.

Each pass pulls a batch per topic with the subscription ``analytics``, inserts the rows keyed
by the CloudEvents id (a redelivered event changes nothing) and acknowledges only what was
written. A consumer that stops (or dies) mid-stream loses nothing: unacknowledged events are
delivered again on the next pass.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from fmnist.analytics.tables import ensure_tables
from fmnist.streaming.envelope import FEEDBACK_TOPIC, PREDICTIONS_TOPIC

if TYPE_CHECKING:
    from fmnist.platform.analytics import Analytics
    from fmnist.platform.events import Event, EventBus

SUBSCRIPTION = "analytics"
TABLE_OF_TOPIC = {PREDICTIONS_TOPIC: "prediction_events", FEEDBACK_TOPIC: "feedback_events"}


@dataclass(frozen=True)
class ConsumeResult:
    """Events received and rows newly written by one pass, per table."""

    received: dict[str, int]
    written: dict[str, int]


def _row(event: Event) -> dict[str, Any]:
    envelope = event.payload
    return {"event_id": envelope["id"], "time": envelope["time"], **envelope["data"]}


def consume_once(
    bus: EventBus, analytics: Analytics, *, batch: int = 500, max_batches: int | None = None
) -> ConsumeResult:
    """Drain both topics (or ``max_batches`` batches of each) into the analytics tables."""
    ensure_tables(analytics)
    received = dict.fromkeys(TABLE_OF_TOPIC.values(), 0)
    written = dict.fromkeys(TABLE_OF_TOPIC.values(), 0)
    for topic, table in TABLE_OF_TOPIC.items():
        done = 0
        while max_batches is None or done < max_batches:
            events = bus.pull(topic, SUBSCRIPTION, batch)
            if not events:
                break
            written[table] += analytics.insert_rows(table, [_row(e) for e in events])
            bus.ack(SUBSCRIPTION, [e.event_id for e in events])
            received[table] += len(events)
            done += 1
    return ConsumeResult(received, written)
