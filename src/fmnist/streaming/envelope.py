"""CloudEvents 1.0 envelopes (structured JSON) of predictions and feedback."""

from __future__ import annotations

import socket
from collections.abc import Mapping
from typing import Any

PREDICTION_TYPE = "io.fmnist.prediction.v1"
FEEDBACK_TYPE = "io.fmnist.feedback.v1"
PREDICTIONS_TOPIC = "predictions"
FEEDBACK_TOPIC = "feedback"
SCHEMA_VERSION = 1


def envelope(kind: str, event_id: str, time: str, data: Mapping[str, Any]) -> dict[str, Any]:
    """A CloudEvents envelope; ``id`` is stable for a record, so a redelivery is recognisable."""
    return {
        "specversion": "1.0",
        "id": event_id,
        "type": kind,
        "source": f"fmnist://{socket.gethostname()}/prediction-log",
        "time": time,
        "datacontenttype": "application/json",
        "dataschema": f"fmnist:{kind}#{SCHEMA_VERSION}",
        "data": dict(data),
    }
