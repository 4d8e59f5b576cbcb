"""Points in time given on the command line or in a query: ISO 8601 or an age like ``24h``."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from fmnist.monitoring.errors import MonitoringError

_AGE = re.compile(r"^(\d+(?:\.\d+)?)([smhdw])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_time(text: str, *, now: datetime | None = None) -> datetime:
    """``text`` as an aware UTC datetime.

    Accepts an ISO 8601 date or time (naive means UTC), or an age before ``now``: a number and
    one of ``s m h d w`` (``90m``, ``24h``, ``7d``). Anything else raises
    :class:`MonitoringError` naming the value.
    """
    value = text.strip()
    match = _AGE.match(value)
    if match:
        age = timedelta(**{_UNITS[match.group(2)]: float(match.group(1))})
        return (now or datetime.now(UTC)) - age
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise MonitoringError(
            f"invalid time {text!r}: use ISO 8601 (2024-05-01, 2024-05-01T12:00:00Z) "
            "or an age such as 30m, 24h, 7d"
        ) from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
