"""The analytics tables (BigQuery JSON schemas, shared with Terraform) and named queries."""

from __future__ import annotations

import json
from importlib import resources
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fmnist.platform.analytics import Analytics

TABLES: dict[str, str] = {
    "prediction_events": "event_id",
    "feedback_events": "event_id",
}
"""Table name -> its unique key."""


def schema(table: str) -> list[dict[str, str]]:
    """The BigQuery JSON schema of ``table``."""
    text = resources.files("fmnist.analytics").joinpath("schemas", f"{table}.json").read_text()
    fields: list[dict[str, str]] = json.loads(text)
    return fields


def ensure_tables(analytics: Analytics) -> None:
    """Create every analytics table that does not exist yet."""
    for table, key in TABLES.items():
        analytics.ensure_table(table, schema(table), key)


def query_names() -> list[str]:
    """The named queries, sorted."""
    folder = resources.files("fmnist.analytics").joinpath("queries")
    return sorted(p.name.removesuffix(".sql") for p in folder.iterdir() if p.name.endswith(".sql"))


def query_text(name: str) -> str:
    """The BigQuery-dialect text of the named query ``name``."""
    if name not in query_names():
        raise KeyError(name)
    return resources.files("fmnist.analytics").joinpath("queries", f"{name}.sql").read_text()


def run_query(analytics: Analytics, name: str) -> list[dict[str, Any]]:
    """Run the named query ``name`` (the tables are created first, so an empty store answers
    with no rows rather than an error)."""
    ensure_tables(analytics)
    return analytics.query(query_text(name))
