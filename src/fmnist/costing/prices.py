"""The price list: dated list prices with their sources, loaded and validated.

The file (``benchmarks/prices/gcp.json``) holds ``{"prices": {name: entry}}`` where each entry
has ``value`` (a non-negative number), ``unit``, ``what``, ``as_published`` (``YYYY-MM`` or
``YYYY-MM-DD``) and ``source`` (an ``https://`` URL). The prices are inputs to update, never
claimed to be current.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fmnist.costing.errors import CostInputError

FIELDS = ("value", "unit", "what", "as_published", "source")
"""Every entry has these fields."""
DATE = re.compile(r"^\d{4}-\d{2}(-\d{2})?$")


@dataclass(frozen=True)
class Price:
    """One list price: its value in ``unit``, what it covers, when and where it was published."""

    name: str
    value: float
    unit: str
    what: str
    as_published: str
    source: str


class Prices:
    """The validated price list of one file; ``prices[name]`` is the value."""

    def __init__(self, entries: dict[str, Price], path: Path, about: str = "") -> None:
        """Hold ``entries`` read from ``path``."""
        self.entries = entries
        self.path = path
        self.about = about
        self.used: set[str] = set()

    def __getitem__(self, name: str) -> float:
        """The value of price ``name``; a missing one raises :class:`CostInputError`."""
        entry = self.entries.get(name)
        if entry is None:
            raise CostInputError(f"{self.path}: the price list lacks {name!r}")
        self.used.add(name)
        return entry.value

    def require(self, names: set[str] | list[str] | tuple[str, ...]) -> None:
        """Raise :class:`CostInputError` naming every price of ``names`` the file lacks."""
        missing = sorted(set(names) - set(self.entries))
        if missing:
            raise CostInputError(f"{self.path}: the price list lacks {missing}")

    def used_entries(self) -> dict[str, dict[str, Any]]:
        """The entries read so far, as written to the result (sorted by name)."""
        return {
            name: {
                "value": e.value,
                "unit": e.unit,
                "what": e.what,
                "as_published": e.as_published,
                "source": e.source,
            }
            for name, e in sorted(self.entries.items())
            if name in self.used
        }


def parse_prices(data: Any, path: Path) -> Prices:
    """Validate the parsed JSON ``data`` of ``path``; every problem names the file and entry."""
    if not isinstance(data, dict) or not isinstance(data.get("prices"), dict):
        raise CostInputError(f"{path}: expected an object with a 'prices' object")
    entries: dict[str, Price] = {}
    for name, entry in data["prices"].items():
        if not isinstance(entry, dict):
            raise CostInputError(f"{path}: price {name!r} is not an object")
        missing = [f for f in FIELDS if f not in entry]
        if missing:
            raise CostInputError(f"{path}: price {name!r} lacks {missing}")
        value = entry["value"]
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise CostInputError(f"{path}: price {name!r} has a non-numeric value {value!r}")
        if not math.isfinite(value) or value < 0:
            raise CostInputError(f"{path}: price {name!r} must be finite and >= 0, got {value}")
        if not DATE.match(str(entry["as_published"])):
            raise CostInputError(
                f"{path}: price {name!r}: as_published must be YYYY-MM or YYYY-MM-DD, "
                f"got {entry['as_published']!r}"
            )
        if not str(entry["source"]).startswith("https://"):
            raise CostInputError(f"{path}: price {name!r}: source must be an https:// URL")
        entries[name] = Price(
            name,
            float(value),
            str(entry["unit"]),
            str(entry["what"]),
            str(entry["as_published"]),
            str(entry["source"]),
        )
    return Prices(entries, path, str(data.get("about", "")))


def read_json(path: Path, what: str) -> Any:
    """Parsed JSON of ``path``; a missing or malformed file raises :class:`CostInputError`."""
    if not path.is_file():
        raise CostInputError(f"{path} is missing: {what}")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CostInputError(f"{path} is not valid JSON ({exc}): {what}") from None


def load_prices(path: Path) -> Prices:
    """The validated price list in ``path``."""
    return parse_prices(read_json(path, "the price list (benchmarks/prices/gcp.json)"), path)
