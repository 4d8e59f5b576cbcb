"""What every prediction costs after it is answered, whichever platform serves it.

Per prediction: its CloudEvents envelope (built by :func:`fmnist.streaming.envelope.envelope`
from a representative record) counted ``pubsub_deliveries`` times by Pub/Sub (the publish and
the analytics subscription's delivery), its ``prediction_events`` row ingested into BigQuery by
the Storage Write API (the row's logical size by BigQuery's rules) and stored for
``retention_months`` (active for 3, long-term after), and ``log_bytes_per_request`` of Cloud
Logging (an estimate: Cloud Run's request log and the API's access line). Fixed:
``storage_gib`` in Cloud Storage (the lake, model artifacts, exports). The legacy streaming
insert (each row counted as at least 1 KB) is computed for comparison, not added.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Any

from fmnist.costing.prices import Prices
from fmnist.costing.profile import DAYS_PER_MONTH, TrafficProfile

GIB = 1024**3
TIB = 1024**4
ACTIVE_STORAGE_MONTHS = 3
"""BigQuery bills a partition untouched for 90 days at the long-term rate."""
STREAMING_MIN_ROW_BYTES = 1024


@dataclass(frozen=True)
class DataPathAssumptions:
    """The data path's figures that are neither measured nor prices (options)."""

    log_bytes_per_request: int = 1500
    retention_months: int = 12
    storage_gib: float = 5.0
    pubsub_deliveries: int = 2

    def as_dict(self) -> dict[str, Any]:
        """The assumptions as written to the result."""
        return asdict(self)


def bigquery_row_bytes(row: dict[str, Any]) -> int:
    """BigQuery's logical size of one ``prediction_events`` row (STRING: 2 + UTF-8 bytes;
    INTEGER, FLOAT, TIMESTAMP: 8; BOOLEAN: 1; NULL: 0)."""
    from fmnist.analytics.tables import schema

    sizes = {"INTEGER": 8, "FLOAT": 8, "TIMESTAMP": 8, "BOOLEAN": 1}
    total = 0
    for column in schema("prediction_events"):
        value = row.get(column["name"])
        if value is None:
            continue
        if column["type"] == "STRING":
            total += 2 + len(str(value).encode())
        else:
            total += sizes[column["type"]]
    return total


def prediction_event() -> tuple[int, int]:
    """(bytes of the CloudEvents envelope, BigQuery bytes of its row) for a representative
    prediction: an uploaded image answered by the champion."""
    from fmnist.streaming.envelope import PREDICTION_TYPE, envelope

    request_id = "0" * 32  # uuid4().hex
    data = {
        "request_id": request_id,
        "model_name": "fmnist",
        "model_version": 3,
        "model_alias": "champion",
        "arm": None,
        "input_kind": "upload",
        "predicted_class": "Trouser",
        "confidence": 0.998213,
        "latency_ms": 1.734,
        "route": "/v1/predict",
    }
    event_id = f"prediction:{request_id}"
    time = "2026-01-01T00:00:00.000000+00:00"
    event = envelope(PREDICTION_TYPE, event_id, time, data)
    row = {"event_id": event_id, "time": time, **data}
    return len(json.dumps(event).encode()), bigquery_row_bytes(row)


def per_prediction(p: Prices, a: DataPathAssumptions, event: tuple[int, int]) -> dict[str, float]:
    """USD per prediction of each per-prediction component."""
    envelope_bytes, row_bytes = event
    active = min(a.retention_months, ACTIVE_STORAGE_MONTHS)
    long_term = max(0, a.retention_months - ACTIVE_STORAGE_MONTHS)
    storage_per_gib = p["bigquery_active_storage_gib_month"] * active
    storage_per_gib += p["bigquery_long_term_storage_gib_month"] * long_term
    return {
        "pubsub": envelope_bytes * a.pubsub_deliveries / TIB * p["pubsub_throughput_tib"],
        "bigquery_ingestion": row_bytes / GIB * p["bigquery_storage_write_api_gib"],
        "bigquery_storage": row_bytes / GIB * storage_per_gib,
        "cloud_logging": a.log_bytes_per_request / GIB * p["cloud_logging_ingestion_gib"],
    }


def data_path(
    profile: TrafficProfile, p: Prices, a: DataPathAssumptions, event: tuple[int, int]
) -> dict[str, Any]:
    """The data path for ``profile``: per component per day and month, and per 1,000."""
    per_day = {k: v * profile.per_day for k, v in per_prediction(p, a, event).items()}
    per_day["cloud_storage"] = (
        a.storage_gib * p["cloud_storage_standard_regional_gib_month"] / DAYS_PER_MONTH
    )
    streaming_row = max(event[1], STREAMING_MIN_ROW_BYTES)
    streaming_per_day = (
        profile.per_day * streaming_row / (200 * 1024**2) * p["bigquery_streaming_insert_200mib"]
    )
    total = sum(per_day.values())
    return {
        "envelope_bytes": event[0],
        "bigquery_row_bytes": event[1],
        "components_usd_per_day": per_day,
        "components_usd_per_month": {k: v * DAYS_PER_MONTH for k, v in per_day.items()},
        "usd_per_day": total,
        "usd_per_month": total * DAYS_PER_MONTH,
        "usd_per_1000": total / profile.per_day * 1000,
        "legacy_streaming_insert_usd_per_month": streaming_per_day * DAYS_PER_MONTH,
    }
