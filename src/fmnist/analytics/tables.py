"""The analytics tables (BigQuery JSON schemas, shared with Terraform) and named queries."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from importlib import resources
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fmnist.platform.analytics import Analytics

TABLES: dict[str, str] = {
    "prediction_events": "event_id",
    "feedback_events": "event_id",
}
"""Table name -> its unique key."""

DEFAULT_PARAMETERS: dict[str, Any] = {"since": datetime(1970, 1, 1, tzinfo=UTC)}
"""Values of the ``@name`` parameters a query uses when the caller gives none (``@since``:
the whole log)."""


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


def query_parameters(text: str, given: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The ``@name`` parameters ``text`` uses, from ``given`` else :data:`DEFAULT_PARAMETERS`
    (a query is sent only the parameters it names)."""
    names = set(re.findall(r"@([A-Za-z_]\w*)", re.sub(r"--[^\n]*", "", text)))
    values = {**DEFAULT_PARAMETERS, **(given or {})}
    missing = sorted(names - values.keys())
    if missing:
        raise KeyError(f"no value for the query parameters {missing}")
    return {name: values[name] for name in sorted(names)}


def run_query(
    analytics: Analytics, name: str, parameters: Mapping[str, Any] | None = None
) -> list[dict[str, Any]]:
    """Run the named query ``name`` with ``parameters`` (defaults: :data:`DEFAULT_PARAMETERS`);
    the tables are created first, so an empty store answers with no rows, not an error."""
    ensure_tables(analytics)
    text = query_text(name)
    return analytics.query(text, query_parameters(text, parameters) or None)
